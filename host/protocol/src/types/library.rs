//! What Codex tells sync and recommendation plugins about a series in a user's library,
//! beyond its ids: its metadata (for plugins whose manifest says `wantsFullMetadata`), the
//! admin's custom metadata, and its ids on other services.

use serde::{Deserialize, Serialize};

use super::metadata::Author;
use super::numbers::optional_integer;

/// A series' metadata as Codex shares it with sync and recommendation plugins.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LibrarySeriesMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<Author>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub age_rating: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading_direction: Option<String>,
}

/// A series' id on another service, with its page there when Codex knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LibraryExternalId {
    pub source: String,
    pub external_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
}
