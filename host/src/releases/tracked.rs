//! A tracked series as a release source is told of it: the aliases it is matched by and
//! the external ids the plugin asked for.

use codex_plugin_protocol::manifest::ReleaseSourceCapability;
use codex_plugin_protocol::types::releases::TrackedSeries;
use std::collections::BTreeMap;

use crate::library::Series;

/// The names a release is matched by: the series' name, title, sort title and alternate
/// titles in Latin script (as Codex seeds them), and the aliases an admin added; sorted,
/// without repeats.
pub fn aliases(series: &Series) -> Vec<String> {
    let metadata = &series.metadata;
    let seeded = std::iter::once(series.name.as_str())
        .chain(metadata.title.as_deref())
        .chain(metadata.title_sort.as_deref())
        .chain(metadata.alternate_titles.iter().map(|title| title.title.as_str()))
        .filter(|name| is_latin(name));
    let mut aliases: Vec<String> = seeded
        .chain(series.tracking.aliases.iter().map(String::as_str))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    aliases.sort();
    aliases.dedup();
    aliases
}

/// Whether every letter of `name` is a Latin one.
fn is_latin(name: &str) -> bool {
    name.chars()
        .filter(|c| c.is_alphabetic())
        .all(|c| matches!(c as u32, 0x41..=0x5A | 0x61..=0x7A | 0xC0..=0x24F | 0x1E00..=0x1EFF))
}

/// The series' external ids the plugin matches by, keyed by bare source (`mangaupdates`
/// for `plugin:mangaupdates` or `api:mangaupdates`); `None` when it has none of them.
pub fn external_ids(series: &Series, wanted: &[String]) -> Option<BTreeMap<String, String>> {
    let ids: BTreeMap<String, String> = series
        .external_ids
        .iter()
        .filter_map(|(source, id)| {
            let bare = source.strip_prefix("api:").or_else(|| source.strip_prefix("plugin:")).unwrap_or(source);
            wanted.iter().any(|wanted| wanted == bare).then(|| (bare.to_owned(), id.id.clone()))
        })
        .collect();
    (!ids.is_empty()).then_some(ids)
}

/// What `releases/list_tracked` says of one series.
pub fn tracked_series(series: &Series, capability: &ReleaseSourceCapability) -> TrackedSeries {
    TrackedSeries {
        series_id: series.id.clone(),
        aliases: capability.requires_aliases.then(|| aliases(series)),
        external_ids: if capability.requires_external_ids.is_empty() {
            None
        } else {
            external_ids(series, &capability.requires_external_ids)
        },
        latest_known_chapter: series.tracking.latest_chapter,
        latest_known_volume: series.tracking.latest_volume.map(|volume| volume.trunc() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::{LabelledTitle, StoredExternalId};
    use serde_json::json;

    fn series() -> Series {
        let mut series: Series = serde_json::from_value(json!({
            "id": "s1", "libraryId": "l", "name": "One Piece",
            "metadata": {"title": "One Piece", "titleSort": "One Piece", "alternateTitles": [
                {"label": "ja", "title": "ワンピース"}, {"label": "fr", "title": "Één Stück"}
            ]},
            "tracking": {"tracked": true, "aliases": ["OP "], "latestChapter": 1100.5, "latestVolume": 107.0}
        }))
        .unwrap();
        let id = |id: &str| StoredExternalId { id: id.into(), url: None, hash: None };
        series.external_ids.insert("plugin:mangaupdates".into(), id("mu-1"));
        series.external_ids.insert("plugin:anilist".into(), id("al-1"));
        series.metadata.alternate_titles.push(LabelledTitle { label: "x".into(), title: "  ".into() });
        series
    }

    #[test]
    fn aliases_are_latin_names_and_the_admins_own() {
        assert_eq!(aliases(&series()), vec!["OP", "One Piece", "Één Stück"]);
    }

    #[test]
    fn a_source_gets_what_its_manifest_asks_for() {
        let wants = |value| serde_json::from_value::<ReleaseSourceCapability>(value).unwrap();
        let full = tracked_series(
            &series(),
            &wants(json!({"requiresAliases": true, "requiresExternalIds": ["mangaupdates"]})),
        );
        assert_eq!(
            serde_json::to_value(full).unwrap(),
            json!({"seriesId": "s1", "aliases": ["OP", "One Piece", "Één Stück"], "externalIds": {"mangaupdates": "mu-1"},
                   "latestKnownChapter": 1100.5, "latestKnownVolume": 107})
        );
        let bare = tracked_series(&series(), &wants(json!({"requiresExternalIds": ["mangadex"]})));
        assert_eq!((bare.aliases, bare.external_ids), (None, None));
    }
}
