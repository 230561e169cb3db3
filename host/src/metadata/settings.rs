//! How one plugin is allowed to touch the library and how it searches and matches, as an
//! admin sets it (orchestration.md §1 to §4). Checked whole when saved: a template that
//! does not parse, a rule with an invalid pattern, a condition that could never mean
//! anything, an unknown permission or a threshold outside 0-1 is refused, naming it.

use serde::{Deserialize, Serialize};

use super::best_match::DEFAULT_THRESHOLD;
use super::conditions::Conditions;
use super::permissions::Grants;
use super::rules::{CompiledRules, TitleRule};
use super::template::SearchTemplate;

/// What a plugin may be asked to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Series,
    Book,
}

/// One plugin's metadata settings; the defaults are no permission, every library, the
/// cleaned title as the query, threshold 0.8, external ids reused, both targets its
/// manifest declares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetadataSettings {
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Libraries the plugin may see; empty: all.
    #[serde(default)]
    pub library_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_template: Option<String>,
    #[serde(default)]
    pub title_rules: Vec<TitleRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_match_conditions: Option<Conditions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse_external_id: Option<bool>,
    /// Take an unscored best result as sure (for plugins that never score).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_unscored: Option<bool>,
    /// What auto-match asks it for; none: whatever its manifest provides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<Target>>,
    /// At most this many calls a minute from the pipeline (its rate limit); none: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
}

/// Settings checked and compiled, ready for the pipeline.
#[derive(Debug)]
pub struct ActiveSettings {
    pub grants: Grants,
    pub library_ids: Vec<String>,
    pub template: Option<SearchTemplate>,
    pub rules: CompiledRules,
    pub conditions: Option<Conditions>,
    pub threshold: f64,
    pub reuse_external_id: bool,
    pub accept_unscored: bool,
    pub targets: Option<Vec<Target>>,
    pub requests_per_minute: Option<u32>,
}

impl MetadataSettings {
    /// Checks and compiles every part; the first problem is the error.
    pub fn compile(&self) -> Result<ActiveSettings, String> {
        let grants = Grants::parse(&self.permissions)?;
        let template = match self.search_template.as_deref().map(str::trim) {
            Some(source) if !source.is_empty() => {
                Some(SearchTemplate::parse(source).map_err(|error| error.to_string())?)
            }
            _ => None,
        };
        let rules = CompiledRules::compile(&self.title_rules).map_err(|error| error.to_string())?;
        if let Some(conditions) = &self.auto_match_conditions {
            conditions.check().map_err(|error| error.to_string())?;
        }
        let threshold = self.confidence_threshold.unwrap_or(DEFAULT_THRESHOLD);
        if !(0.0..=1.0).contains(&threshold) {
            return Err(format!("the confidence threshold is 0 to 1, not {threshold}"));
        }
        if self.requests_per_minute == Some(0) {
            return Err("requests per minute must be at least 1; leave it out for no limit".into());
        }
        if self.targets.as_ref().is_some_and(Vec::is_empty) {
            return Err("targets cannot be empty: name `series`, `book` or both, or leave them out".into());
        }
        Ok(ActiveSettings {
            grants,
            library_ids: self.library_ids.clone(),
            template,
            rules,
            conditions: self.auto_match_conditions.clone(),
            threshold,
            reuse_external_id: self.reuse_external_id.unwrap_or(true),
            accept_unscored: self.accept_unscored.unwrap_or(false),
            targets: self.targets.clone(),
            requests_per_minute: self.requests_per_minute,
        })
    }
}

impl ActiveSettings {
    /// Whether the plugin may see `library`.
    pub fn sees_library(&self, library: &str) -> bool {
        self.library_ids.is_empty() || self.library_ids.iter().any(|id| id == library)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(value: serde_json::Value) -> Result<ActiveSettings, String> {
        serde_json::from_value::<MetadataSettings>(value).map_err(|error| error.to_string())?.compile()
    }

    #[test]
    fn defaults_grant_nothing_and_match_at_the_reference_threshold() {
        let active = settings(json!({})).unwrap();
        assert!(active.grants.0.is_empty());
        assert_eq!((active.threshold, active.reuse_external_id, active.accept_unscored), (0.8, true, false));
        assert!(active.sees_library("any"));
    }

    #[test]
    fn every_bad_part_is_refused_naming_it() {
        let cases = [
            (json!({"permissions": ["metadata:write:everything"]}), "unknown permission"),
            (json!({"searchTemplate": "{{#if}}"}), "does not parse"),
            (json!({"titleRules": [{"pattern": "(", "replacement": ""}]}), "title rule 1"),
            (
                json!({"autoMatchConditions": {"rules": [{"field": "metadata.colour", "operator": "is_null"}]}}),
                "no such field",
            ),
            (json!({"confidenceThreshold": 1.5}), "0 to 1"),
            (json!({"targets": []}), "cannot be empty"),
            (json!({"requestsPerMinute": 0}), "at least 1"),
            (json!({"targets": ["movie"]}), "unknown variant"),
            (json!({"treshold": 0.5}), "unknown field"),
        ];
        for (value, expected) in cases {
            let error = settings(value.clone()).unwrap_err();
            assert!(error.contains(expected), "{value}: {error}");
        }
    }
}
