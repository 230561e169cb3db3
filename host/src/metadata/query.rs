//! The search query for a series or a book (orchestration.md §2): the title cleaned by the
//! rules (library rules, then the plugin's), then rendered by the template with the cleaned
//! title in its context; without a template, the cleaned title. The reference runs its
//! rules on the rendered query instead (plugin rules first); see the README.

use serde::Serialize;

use super::context::{book_context, for_template, series_context};
use super::rules::CompiledRules;
use super::template::SearchTemplate;
use crate::library::{Book, Series};

/// A query, and why it is not what the template would have made, if it is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchQuery {
    pub query: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The query for `series`.
pub fn series_query(series: &Series, rules: &CompiledRules, template: Option<&SearchTemplate>) -> SearchQuery {
    let title = series.metadata.title.as_deref().unwrap_or(&series.name);
    let cleaned = non_empty(rules.clean(title), &series.name);
    let render = |template: &SearchTemplate| template.render(&for_template(series_context(series, Some(&cleaned))));
    finish(cleaned.clone(), &series.name, template.map(render))
}

/// The query for `book` of `series`.
pub fn book_query(
    book: &Book,
    series: &Series,
    rules: &CompiledRules,
    template: Option<&SearchTemplate>,
) -> SearchQuery {
    let title = book.metadata.title.as_deref().unwrap_or(&book.title);
    let cleaned = non_empty(rules.clean(title), &book.title);
    let render = |template: &SearchTemplate| template.render(&for_template(book_context(book, series, Some(&cleaned))));
    finish(cleaned.clone(), &book.title, template.map(render))
}

fn non_empty(text: String, fallback: &str) -> String {
    if text.is_empty() { fallback.trim().to_owned() } else { text }
}

fn finish(
    cleaned: String,
    name: &str,
    rendered: Option<Result<String, super::template::TemplateError>>,
) -> SearchQuery {
    match rendered {
        None => SearchQuery { query: cleaned, warning: None },
        Some(Ok(query)) if !query.is_empty() => SearchQuery { query, warning: None },
        Some(Ok(_)) => SearchQuery {
            query: name.trim().to_owned(),
            warning: Some("the search template rendered nothing; the name was searched".into()),
        },
        Some(Err(error)) => {
            SearchQuery { query: cleaned, warning: Some(format!("{error}; the cleaned title was searched")) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::{SeriesMetadata, Tracking};
    use crate::metadata::rules::TitleRule;

    fn series(title: Option<&str>, name: &str, year: Option<i64>) -> Series {
        Series {
            id: "s1".into(),
            library_id: "l".into(),
            name: name.into(),
            metadata: SeriesMetadata { title: title.map(str::to_owned), year, ..Default::default() },
            locks: Default::default(),
            external_ids: Default::default(),
            custom_metadata: None,
            tracking: Tracking::default(),
            book_count: 3,
            revision: 1,
        }
    }

    fn rules(pairs: &[(&str, &str)]) -> CompiledRules {
        let rules: Vec<TitleRule> = pairs
            .iter()
            .map(|(pattern, replacement)| TitleRule {
                pattern: (*pattern).into(),
                replacement: (*replacement).into(),
                description: None,
                enabled: true,
            })
            .collect();
        CompiledRules::compile(&rules).unwrap()
    }

    #[test]
    fn nested_loops_over_a_plugins_lists_stay_bounded() {
        let mut big = series(Some("Title"), "Name", None);
        big.metadata.tags = (0..250_000).map(|index| format!("t{index}")).collect();
        let template = SearchTemplate::parse("{{#each metadata.tags}}{{#each ../metadata.tags}}{{#each ../../metadata.tags}}{{/each}}{{/each}}{{/each}}x").unwrap();
        let started = std::time::Instant::now();
        let query = series_query(&big, &CompiledRules::default(), Some(&template));
        assert_eq!(query.query, "x");
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
    }

    #[test]
    fn the_seeds_pair_cleans_the_title_before_the_template_renders() {
        let template = SearchTemplate::parse("{{metadata.title}} {{metadata.year}}").unwrap();
        let digital = rules(&[(r"\s*\(Digital\)$", "")]);
        let query =
            series_query(&series(Some("Title (Digital)"), "title-digital", Some(2020)), &digital, Some(&template));
        assert_eq!(query, SearchQuery { query: "Title 2020".into(), warning: None });
    }

    #[test]
    fn library_rules_then_plugin_rules_then_the_template_with_fallbacks() {
        let library = rules(&[("_", " ")]);
        let plugin = rules(&[(r"\s*v\d+$", "")]);
        let both = library.then(plugin);
        let plain = series_query(&series(None, "Blue_Period v03", None), &both, None);
        assert_eq!(plain.query, "Blue Period");
        let template =
            SearchTemplate::parse("{{lowercase metadata.title}} ({{bookCount}} books, {{book_count}})").unwrap();
        let rendered = series_query(&series(None, "Blue_Period v03", None), &both, Some(&template));
        assert_eq!(rendered.query, "blue period (3 books, 3)");
        // Rules that clean everything away: the name is searched.
        let everything = rules(&[(".*", "")]);
        assert_eq!(series_query(&series(Some("Gone"), "Name", None), &everything, None).query, "Name");
        // A template that renders nothing, or fails: the name, or the cleaned title, with a warning.
        let blank = SearchTemplate::parse("{{missing}}").unwrap();
        let query = series_query(&series(Some("Title"), "Name", None), &CompiledRules::default(), Some(&blank));
        assert_eq!(query.query, "Name");
        assert!(query.warning.is_some());
        let failing = SearchTemplate::parse("{{padStart metadata.title 99999}}").unwrap();
        let query = series_query(&series(Some("Title (Digital)"), "Name", None), &digital_rules(), Some(&failing));
        assert_eq!(query.query, "Title");
        assert!(query.warning.unwrap().contains("cleaned title was searched"));
    }

    fn digital_rules() -> CompiledRules {
        rules(&[(r"\s*\(Digital\)$", "")])
    }
}
