//! Title preprocessing rules (orchestration.md §2): regular expressions that clean a series
//! title before it is searched, library rules first, then the plugin's.
//!
//! Patterns are compiled by the `regex` crate (linear time: no pattern can hang the host)
//! and checked when they are saved; `$1` in a replacement is the first capture; every match
//! is replaced.

use regex::Regex;
use serde::{Deserialize, Serialize};

/// One rule as an admin writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TitleRule {
    pub pattern: String,
    #[serde(default)]
    pub replacement: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn enabled() -> bool {
    true
}

/// A rule whose pattern does not compile, named by its place and description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("title rule {number}{described}: the pattern {pattern:?} is not a valid regular expression: {why}")]
pub struct InvalidRule {
    /// Counted from 1, as a person reads a list.
    pub number: usize,
    pub described: String,
    pub pattern: String,
    pub why: String,
}

/// Rules ready to run: the enabled ones, compiled, in order.
#[derive(Debug, Clone, Default)]
pub struct CompiledRules(Vec<(Regex, String)>);

/// The most a compiled pattern may take, so that a pattern like `a{1000}{1000}` is refused
/// rather than built.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;
/// The longest replacement a rule may have.
pub const MAX_REPLACEMENT: usize = 1_000;
/// The longest a title may grow to while the rules run (an empty pattern matches between
/// every character; `$0$0` doubles the text): past it, the rules are not applied.
pub const MAX_CLEANED_BYTES: usize = 10_000;

impl CompiledRules {
    /// Compiles `rules`, refusing the first invalid one (disabled ones are checked too: an
    /// admin who enables one later must not find it broken then).
    pub fn compile(rules: &[TitleRule]) -> Result<Self, InvalidRule> {
        let mut compiled = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            let regex =
                regex::RegexBuilder::new(&rule.pattern).size_limit(PATTERN_SIZE_LIMIT).build().map_err(|error| {
                    InvalidRule {
                        number: index + 1,
                        described: rule.description.as_deref().map(|text| format!(" ({text})")).unwrap_or_default(),
                        pattern: rule.pattern.clone(),
                        why: error.to_string().lines().last().unwrap_or_default().trim().to_owned(),
                    }
                })?;
            if rule.replacement.chars().count() > MAX_REPLACEMENT {
                return Err(InvalidRule {
                    number: index + 1,
                    described: rule.description.as_deref().map(|text| format!(" ({text})")).unwrap_or_default(),
                    pattern: rule.pattern.clone(),
                    why: format!("its replacement is over {MAX_REPLACEMENT} characters"),
                });
            }
            if rule.enabled {
                compiled.push((regex, rule.replacement.clone()));
            }
        }
        Ok(Self(compiled))
    }

    /// `title` with every rule applied in order, trimmed; the title as it was if the rules
    /// would grow it past [`MAX_CLEANED_BYTES`].
    pub fn clean(&self, title: &str) -> String {
        let mut cleaned = title.to_owned();
        for (regex, replacement) in &self.0 {
            // One step grows a text of at most MAX_CLEANED_BYTES by at most a replacement of
            // MAX_REPLACEMENT characters per character: bounded, then checked.
            let grown = regex.replace_all(&cleaned, replacement.as_str());
            if grown.len() > MAX_CLEANED_BYTES {
                tracing::warn!("title rules would grow {title:?} past {MAX_CLEANED_BYTES} bytes; not applied");
                return title.trim().to_owned();
            }
            cleaned = grown.into_owned();
        }
        cleaned.trim().to_owned()
    }

    /// These rules, then `more`.
    pub fn then(mut self, more: CompiledRules) -> Self {
        self.0.extend(more.0);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, replacement: &str) -> TitleRule {
        TitleRule { pattern: pattern.into(), replacement: replacement.into(), description: None, enabled: true }
    }

    #[test]
    fn rules_apply_in_order_every_match_with_captures_and_the_result_is_trimmed() {
        let cases: &[(&[TitleRule], &str, &str)] = &[
            (&[rule(r"\s*\(Digital\)$", "")], "Title (Digital)", "Title"),
            (&[rule(r"_", " ")], "a_b_c", "a b c"),
            (&[rule(r"^(.+), The$", "The $1")], "Expanse, The", "The Expanse"),
            (&[rule(r"Vol\.", "Volume"), rule(r"Volume", "Tome")], "Vol. 1", "Tome 1"),
            (&[rule(r"\[.*?\]", "")], "  [Group] Name [1080p] ", "Name"),
            (&[], "  untouched  ", "untouched"),
        ];
        for (rules, title, cleaned) in cases {
            assert_eq!(CompiledRules::compile(rules).unwrap().clean(title), *cleaned, "{title:?} with {rules:?}");
        }
    }

    #[test]
    fn a_disabled_rule_does_nothing_but_must_still_compile() {
        let mut disabled = rule("x", "y");
        disabled.enabled = false;
        assert_eq!(CompiledRules::compile(&[disabled.clone()]).unwrap().clean("x"), "x");
        disabled.pattern = "(".into();
        assert!(CompiledRules::compile(&[disabled]).is_err());
    }

    #[test]
    fn an_invalid_pattern_is_refused_naming_the_rule() {
        let mut broken = rule("([a-z]", "");
        broken.description = Some("strip group".into());
        let error = CompiledRules::compile(&[rule("ok", ""), broken]).unwrap_err();
        assert_eq!(error.number, 2);
        let text = error.to_string();
        assert!(text.starts_with("title rule 2 (strip group): the pattern \"([a-z]\""), "{text}");
        let huge = rule("a{1000}{1000}", "");
        assert!(CompiledRules::compile(&[huge]).is_err(), "a pattern too big to build was accepted");
    }

    #[test]
    fn rules_that_would_grow_a_title_without_bound_are_not_applied() {
        let long = "x".repeat(MAX_REPLACEMENT + 1);
        assert!(CompiledRules::compile(&[rule("", &long)]).unwrap_err().to_string().contains("replacement is over"));
        let doubling: Vec<TitleRule> = (0..40).map(|_| rule(".", "$0$0")).collect();
        assert_eq!(CompiledRules::compile(&doubling).unwrap().clean("A title"), "A title");
        let everywhere = vec![rule("", &"y".repeat(MAX_REPLACEMENT)); 3];
        assert_eq!(CompiledRules::compile(&everywhere).unwrap().clean(" Short "), "Short");
        assert_eq!(CompiledRules::compile(&[rule(".", "$0$0")]).unwrap().clean("ab"), "aabb", "a small growth is fine");
    }

    #[test]
    fn library_rules_run_before_plugin_rules() {
        let library = CompiledRules::compile(&[rule("Digital", "Web")]).unwrap();
        let plugin = CompiledRules::compile(&[rule("Web", "Online")]).unwrap();
        assert_eq!(library.then(plugin).clean("Digital"), "Online");
    }
}
