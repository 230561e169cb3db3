//! `recommendations/*`: suggestions drawn from a user's library.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::library::{LibraryExternalId, LibrarySeriesMetadata};
use super::metadata::SeriesStatus;
use super::numbers::{optional_integer, whole_as_integer, whole_number_as_integer};
use super::vocabulary;

vocabulary!(
    /// Why a user dismissed a recommendation.
    DismissReason { NotInterested => "not_interested", AlreadyRead => "already_read", AlreadyOwned => "already_owned" }
);

/// One series of the user's library, as sent to a recommendation plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LibraryEntry {
    pub series_id: String,
    /// The Codex library the series is in: always sent by Codex, `""` when unknown.
    #[serde(default)]
    pub library_id: String,
    #[serde(default)]
    pub library_name: String,
    pub title: String,
    #[serde(default)]
    pub alternate_titles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub year: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default)]
    pub genres: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub total_volume_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_chapter_count: Option<f64>,
    #[serde(default)]
    pub external_ids: Vec<LibraryExternalId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading_status: Option<String>,
    #[serde(default, deserialize_with = "super::numbers::integer_or_zero")]
    pub books_read: i64,
    #[serde(default, deserialize_with = "super::numbers::integer_or_zero")]
    pub books_owned: i64,
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "whole_as_integer")]
    pub user_rating: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// Sent to plugins whose manifest says `wantsFullMetadata`, as the admin allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<LibrarySeriesMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_metadata: Option<Value>,
}

/// `recommendations/get` params. `excludeIds` is always sent, `[]` when empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    #[serde(default)]
    pub library: Vec<LibraryEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub limit: Option<i64>,
    #[serde(default)]
    pub exclude_ids: Vec<String>,
}

/// A tag with its weight, as some providers rank them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedTag {
    pub name: String,
    #[serde(default, serialize_with = "whole_number_as_integer")]
    pub rank: f64,
    #[serde(default)]
    pub category: String,
}

/// One recommended series. The guide's field names (`url`, `description`, `why`) are read
/// as the SDK's (`externalUrl`, `summary`, `reason`); a fractional rating is fine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    pub external_id: String,
    #[serde(default, alias = "url", skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_url: Option<String>,
    #[serde(default, alias = "description", skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default)]
    pub genres: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<RankedTag>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, alias = "why", skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub based_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codex_series_id: Option<String>,
    #[serde(default)]
    pub in_library: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SeriesStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_of_origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub start_year: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub total_volume_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_chapter_count: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "whole_as_integer")]
    pub rating: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "whole_as_integer")]
    pub popularity: Option<f64>,
}

/// `recommendations/get` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetResponse {
    #[serde(default)]
    pub recommendations: Vec<Recommendation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<String>,
    #[serde(default)]
    pub cached: bool,
}

/// `recommendations/dismiss` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DismissParams {
    pub external_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DismissReason>,
}

/// `recommendations/dismiss` result: `{dismissed}` (reference) or `{success}` (guide).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DismissResponse {
    pub dismissed: bool,
}

impl<'de> Deserialize<'de> for DismissResponse {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            dismissed: Option<bool>,
            success: Option<bool>,
        }
        let wire = Wire::deserialize(deserializer)?;
        match wire.dismissed.or(wire.success) {
            Some(dismissed) => Ok(DismissResponse { dismissed }),
            None => Err(serde::de::Error::custom("expected `dismissed` or `success`")),
        }
    }
}

/// An answer that is any JSON object (`recommendations/clear`, `updateProfile`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AnyObject(pub Map<String, Value>);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn guide_and_sdk_recommendations_both_read() {
        let response: GetResponse = serde_json::from_value(json!({"recommendations": [
            {"externalId": "1", "title": "A", "url": "https://a", "description": "d", "why": "because", "rating": 8.5},
            {"externalId": "2", "title": "B", "score": 0.9, "reason": "r", "basedOn": ["x"], "inLibrary": false}
        ]}))
        .unwrap();
        assert_eq!(response.recommendations[0].reason.as_deref(), Some("because"));
        assert_eq!(response.recommendations[0].external_url.as_deref(), Some("https://a"));
        assert_eq!(response.recommendations[0].rating, Some(8.5));
        assert_eq!(response.recommendations[1].score, Some(0.9));
    }

    #[test]
    fn exclude_ids_are_always_sent() {
        let params = GetParams { library: vec![], limit: None, exclude_ids: vec![] };
        assert_eq!(serde_json::to_value(params).unwrap(), json!({"library": [], "excludeIds": []}));
    }

    #[test]
    fn dismiss_reads_both_shapes_and_rejects_neither() {
        let a: DismissResponse = serde_json::from_value(json!({"success": true})).unwrap();
        let b: DismissResponse = serde_json::from_value(json!({"dismissed": true})).unwrap();
        assert_eq!(a, b);
        assert!(serde_json::from_value::<DismissResponse>(json!({})).is_err());
    }

    #[test]
    fn clear_answers_must_be_objects() {
        assert!(serde_json::from_value::<AnyObject>(json!({"cleared": true})).is_ok());
        assert!(serde_json::from_value::<AnyObject>(json!("ok")).is_err());
    }
}
