//! A plugin's `releases/register_sources`, checked whole before anything is written: Codex's
//! checks and messages, and bounds Codex does not have.

use codex_plugin_protocol::manifest::{RELEASE_SOURCE_KINDS, ReleaseSourceCapability};
use codex_plugin_protocol::types::releases::SourceRegistration;
use std::collections::BTreeSet;

/// The most sources one plugin may register.
pub const MAX_SOURCES_PER_PLUGIN: usize = 500;
/// The longest source key and display name, in characters (Codex's column sizes).
pub const MAX_SOURCE_KEY_CHARS: usize = 255;
pub const MAX_DISPLAY_NAME_CHARS: usize = 255;
/// The largest config a source may carry, as JSON.
pub const MAX_SOURCE_CONFIG_BYTES: usize = 64 * 1024;

/// The longest etag a source keeps (Codex's column size).
pub const MAX_ETAG_CHARS: usize = 255;

/// Whether a source may keep `etag`; why not, when it may not.
pub fn check_etag(etag: &str) -> Result<(), String> {
    let chars = etag.chars().count();
    if chars > MAX_ETAG_CHARS {
        return Err(format!("etag is {chars} characters, more than {MAX_ETAG_CHARS}"));
    }
    Ok(())
}

/// Checks the whole set, in Codex's order (each source's key, name and kind, then repeats);
/// the first fault is the answer.
pub fn check_sources(sources: &[SourceRegistration], declared: &ReleaseSourceCapability) -> Result<(), String> {
    if sources.len() > MAX_SOURCES_PER_PLUGIN {
        return Err(format!(
            "{} sources is more than the {MAX_SOURCES_PER_PLUGIN} one plugin may register",
            sources.len()
        ));
    }
    for source in sources {
        if source.source_key.trim().is_empty() {
            return Err("source_key cannot be empty".into());
        }
        let key_chars = source.source_key.chars().count();
        if key_chars > MAX_SOURCE_KEY_CHARS {
            return Err(format!("source_key is {key_chars} characters, more than {MAX_SOURCE_KEY_CHARS}"));
        }
        if source.display_name.trim().is_empty() {
            return Err("display_name cannot be empty".into());
        }
        let name_chars = source.display_name.chars().count();
        if name_chars > MAX_DISPLAY_NAME_CHARS {
            return Err(format!("display_name is {name_chars} characters, more than {MAX_DISPLAY_NAME_CHARS}"));
        }
        // Codex knows `metadata-piggyback` too (its own sources), which no plugin declares.
        if !RELEASE_SOURCE_KINDS.contains(&source.kind.as_str()) && source.kind != "metadata-piggyback" {
            return Err(format!("invalid kind: {}", source.kind));
        }
        if !declared.kinds.contains(&source.kind) {
            return Err(format!("kind {} not declared in plugin's release_source capability", source.kind));
        }
        if let Some(config) = &source.config {
            let bytes = serde_json::to_string(config).map_or(0, |text| text.len());
            if bytes > MAX_SOURCE_CONFIG_BYTES {
                return Err(format!(
                    "the config of source {} is {bytes} bytes, more than {MAX_SOURCE_CONFIG_BYTES}",
                    source.source_key
                ));
            }
        }
    }
    let mut seen = BTreeSet::new();
    for source in sources {
        if !seen.insert(source.source_key.as_str()) {
            return Err(format!("duplicate source_key in request: {}", source.source_key));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(key: &str, kind: &str) -> SourceRegistration {
        SourceRegistration {
            source_key: key.into(),
            display_name: format!("Feed {key}"),
            kind: kind.into(),
            config: None,
        }
    }

    fn declared() -> ReleaseSourceCapability {
        serde_json::from_value(json!({"kinds": ["rss-uploader", "api-feed"]})).unwrap()
    }

    #[test]
    fn an_etag_is_at_most_255_characters() {
        assert!(check_etag("").is_ok() && check_etag(&"é".repeat(255)).is_ok());
        assert_eq!(check_etag(&"e".repeat(256)).unwrap_err(), "etag is 256 characters, more than 255");
    }

    #[test]
    fn a_good_set_passes_and_an_empty_one_too() {
        assert!(check_sources(&[source("a", "rss-uploader"), source("b", "api-feed")], &declared()).is_ok());
        assert!(check_sources(&[], &declared()).is_ok());
    }

    #[test]
    fn every_fault_is_named() {
        let long_key = "k".repeat(10_000);
        let mut unnamed = source("a", "api-feed");
        unnamed.display_name = " ".into();
        let mut huge = source("a", "api-feed");
        huge.config = Some(json!({"blob": "x".repeat(MAX_SOURCE_CONFIG_BYTES)}));
        let cases = [
            (vec![source(" ", "api-feed")], "source_key cannot be empty"),
            (vec![source(&long_key, "api-feed")], "source_key is 10000 characters, more than 255"),
            (vec![unnamed], "display_name cannot be empty"),
            (vec![source("a", "ftp")], "invalid kind: ftp"),
            (vec![source("a", "rss-series")], "kind rss-series not declared"),
            (vec![source("a", "metadata-piggyback")], "kind metadata-piggyback not declared"),
            (vec![huge], "the config of source a is"),
            (vec![source("a", "api-feed"), source("a", "api-feed")], "duplicate source_key in request: a"),
            ((0..501).map(|n| source(&n.to_string(), "api-feed")).collect(), "501 sources is more than the 500"),
        ];
        for (sources, expected) in cases {
            let error = check_sources(&sources, &declared()).unwrap_err();
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }
}
