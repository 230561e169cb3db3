//! `metadata/series/*` and `metadata/book/*`: search, get and match.

use serde::{Deserialize, Deserializer, Serialize};

use super::numbers::optional_integer;
use super::vocabulary;

vocabulary!(
    /// Publication status of a series.
    SeriesStatus { Ongoing => "ongoing", Ended => "ended", Hiatus => "hiatus", Abandoned => "abandoned", Unknown => "unknown" }
);
vocabulary!(
    /// Reading direction of a series.
    ReadingDirection { Ltr => "ltr", Rtl => "rtl", Ttb => "ttb" }
);
vocabulary!(
    /// What an external link points at.
    LinkType { Provider => "provider", Official => "official", Social => "social", Purchase => "purchase", Read => "read", Other => "other" }
);
vocabulary!(
    /// The part a person played in a work.
    AuthorRole {
        Author => "author", CoAuthor => "co_author", Editor => "editor", Translator => "translator",
        Illustrator => "illustrator", Contributor => "contributor", Writer => "writer", Penciller => "penciller",
        Inker => "inker", Colorist => "colorist", Letterer => "letterer", CoverArtist => "cover_artist",
    }
);

/// `metadata/series/search` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesSearchParams {
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `metadata/book/search` params: an ISBN or a query is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookSearchParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isbn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub year: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl BookSearchParams {
    /// The host API's rule: a book search needs an ISBN or a query.
    pub fn check(&self) -> Result<(), String> {
        let given = |field: &Option<String>| field.as_deref().is_some_and(|text| !text.is_empty());
        if given(&self.isbn) || given(&self.query) {
            Ok(())
        } else {
            Err("a book search needs `isbn` or `query`".into())
        }
    }
}

/// `metadata/*/get` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    pub external_id: String,
}

/// `metadata/series/match` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesMatchParams {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub year: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// `metadata/book/match` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookMatchParams {
    pub title: String,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isbn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub year: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
}

/// The answer to a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResponse {
    #[serde(default)]
    pub results: Vec<SearchResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResult {
    pub external_id: String,
    pub title: String,
    #[serde(default)]
    pub alternate_titles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub year: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relevance_score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<SearchPreview>,
}

impl SearchResult {
    /// A result with just an id and a title; every other field empty.
    pub fn new(external_id: impl Into<String>, title: impl Into<String>) -> Self {
        Self {
            external_id: external_id.into(),
            title: title.into(),
            alternate_titles: Vec::new(),
            year: None,
            cover_url: None,
            relevance_score: None,
            preview: None,
        }
    }
}

/// What a search result shows before it is opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchPreview {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default)]
    pub genres: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub book_count: Option<i64>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// The answer to a match, normalized.
///
/// Two shapes exist: `{match, confidence, alternatives}` (the SDK and every published
/// plugin) and a bare `SearchResult | null` (what the reference host expects). Both are
/// read; a bare result has no stated confidence and no alternatives.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchResponse {
    #[serde(rename = "match")]
    pub best: Option<SearchResult>,
    pub confidence: Option<f64>,
    pub alternatives: Vec<SearchResult>,
}

impl<'de> Deserialize<'de> for MatchResponse {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped {
            #[serde(rename = "match")]
            best: Option<SearchResult>,
            #[serde(default)]
            confidence: Option<f64>,
            #[serde(default)]
            alternatives: Option<Vec<SearchResult>>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Wrapped(Wrapped),
            Bare(Option<SearchResult>),
        }
        let value = serde_json::Value::deserialize(deserializer)?;
        let shape = if value.get("match").is_some() {
            serde_json::from_value(value).map(Shape::Wrapped)
        } else {
            serde_json::from_value(value).map(Shape::Bare)
        };
        Ok(match shape.map_err(serde::de::Error::custom)? {
            Shape::Wrapped(wrapped) => MatchResponse {
                best: wrapped.best,
                confidence: wrapped.confidence,
                alternatives: wrapped.alternatives.unwrap_or_default(),
            },
            Shape::Bare(best) => MatchResponse { best, confidence: None, alternatives: Vec::new() },
        })
    }
}

/// A title in another language or script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlternateTitle {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_type: Option<String>,
}

/// A person credited on a work: a bare name, or a name with a role.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Author {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<AuthorRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_name: Option<String>,
}

impl<'de> Deserialize<'de> for Author {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Full {
            name: String,
            #[serde(default)]
            role: Option<AuthorRole>,
            #[serde(default)]
            sort_name: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Name(String),
            Full(Full),
        }
        Ok(match Shape::deserialize(deserializer)? {
            Shape::Name(name) => Author { name, role: None, sort_name: None },
            Shape::Full(full) => Author { name: full.name, role: full.role, sort_name: full.sort_name },
        })
    }
}

/// A rating on an external site, normalized to 0-100.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalRating {
    pub score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub vote_count: Option<i64>,
    pub source: String,
}

/// A link to another site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalLink {
    pub url: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_type: Option<LinkType>,
}

/// An id of the same work on another service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalId {
    pub source: String,
    pub external_id: String,
}

/// What series and books have in common, flattened into both on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkMetadata {
    pub external_id: String,
    pub external_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default)]
    pub alternate_titles: Vec<AlternateTitle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub year: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default)]
    pub genres: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub authors: Vec<Author>,
    #[serde(default)]
    pub artists: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<ExternalRating>,
    #[serde(default)]
    pub external_ratings: Vec<ExternalRating>,
    #[serde(default)]
    pub external_links: Vec<ExternalLink>,
    #[serde(default)]
    pub external_ids: Vec<ExternalId>,
}

/// `metadata/series/get` result.
///
/// `totalVolumeCount` and `totalChapterCount` are independent; the legacy
/// `totalBookCount` is dropped without error and fills neither.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesMetadata {
    #[serde(flatten)]
    pub work: WorkMetadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SeriesStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub total_volume_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_chapter_count: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub age_rating: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading_direction: Option<ReadingDirection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner_url: Option<String>,
}

/// A cover image of a book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookCover {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub width: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub height: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

/// An award a book won or was nominated for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookAward {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub year: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default)]
    pub won: bool,
}

/// `metadata/book/get` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookMetadata {
    #[serde(flatten)]
    pub work: WorkMetadata,
    #[serde(flatten)]
    pub edition: BookEdition,
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub covers: Vec<BookCover>,
    #[serde(default)]
    pub awards: Vec<BookAward>,
}

/// Where a book stands among its editions and its series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookEdition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub book_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chapter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub page_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isbn: Option<String>,
    #[serde(default)]
    pub isbns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub original_year: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_position: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub series_total: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn match_accepts_both_shapes() {
        let wrapped: MatchResponse = serde_json::from_value(json!({
            "match": {"externalId": "1", "title": "A", "alternateTitles": []},
            "confidence": 0.85,
            "alternatives": [{"externalId": "2", "title": "B"}]
        }))
        .unwrap();
        assert_eq!(wrapped.best.unwrap().external_id, "1");
        assert_eq!(wrapped.confidence, Some(0.85));
        assert_eq!(wrapped.alternatives.len(), 1);

        let bare: MatchResponse = serde_json::from_value(json!({"externalId": "9", "title": "Z"})).unwrap();
        assert_eq!(bare.best.unwrap().external_id, "9");
        assert_eq!(bare.confidence, None);

        let none: MatchResponse = serde_json::from_value(json!(null)).unwrap();
        assert_eq!(none.best, None);
        let no_match: MatchResponse = serde_json::from_value(json!({"match": null, "confidence": 0})).unwrap();
        assert_eq!(no_match.best, None);
        assert!(no_match.alternatives.is_empty());
    }

    #[test]
    fn series_counts_are_independent_and_total_book_count_is_dropped() {
        let metadata: SeriesMetadata = serde_json::from_value(json!({
            "externalId": "x", "externalUrl": "https://e/x",
            "totalVolumeCount": 14.0, "totalChapterCount": 47.5, "totalBookCount": 99,
            "authors": ["Ann", {"name": "Bo", "role": "illustrator", "sortName": "Bo, B"}, {"name": "Cy", "role": "dancer"}],
            "status": "cancelled", "readingDirection": "rtl", "futureField": {"a": 1}
        }))
        .unwrap();
        assert_eq!(metadata.total_volume_count, Some(14));
        assert_eq!(metadata.total_chapter_count, Some(47.5));
        let authors = &metadata.work.authors;
        assert_eq!(authors[0], Author { name: "Ann".into(), role: None, sort_name: None });
        assert_eq!(authors[1].role, Some(AuthorRole::Illustrator));
        assert_eq!(authors[2].role, Some(AuthorRole::Unrecognized("dancer".into())));
        assert_eq!(metadata.status, Some(SeriesStatus::Unrecognized("cancelled".into())));
        let out = serde_json::to_value(&metadata).unwrap();
        assert!(out.get("totalBookCount").is_none());
        assert_eq!(out["genres"], json!([]), "required arrays are always sent");
        assert_eq!(out["status"], json!("cancelled"), "unknown values are kept as they came");
    }

    #[test]
    fn book_metadata_reads_every_part_and_writes_one_flat_object() {
        let wire = json!({
            "externalId": "b1", "externalUrl": "https://e/b1", "title": "Dune", "subtitle": "A Novel",
            "isbns": ["9780441013593"], "volume": 1, "pageCount": 412.0, "year": 1965,
            "authors": [{"name": "Frank Herbert", "role": "author"}],
            "covers": [{"url": "https://e/c.jpg", "size": "large"}],
            "awards": [{"name": "Hugo", "year": 1966, "won": true}], "unknownField": true
        });
        let book: BookMetadata = serde_json::from_value(wire).unwrap();
        assert_eq!(book.work.title.as_deref(), Some("Dune"));
        assert_eq!(book.edition.page_count, Some(412));
        assert_eq!(book.awards[0].year, Some(1966));
        let out = serde_json::to_value(&book).unwrap();
        assert_eq!(out["subtitle"], json!("A Novel"));
        assert_eq!(out["externalRatings"], json!([]));
        assert_eq!(out["subjects"], json!([]));
        assert!(out.get("work").is_none() && out.get("edition").is_none(), "flattened: {out}");
        assert!(out.get("unknownField").is_none());
    }

    #[test]
    fn book_search_needs_isbn_or_query() {
        let params: BookSearchParams = serde_json::from_value(json!({"author": "x"})).unwrap();
        assert!(params.check().is_err());
        let params: BookSearchParams = serde_json::from_value(json!({"isbn": "978"})).unwrap();
        assert!(params.check().is_ok());
        let params: BookSearchParams = serde_json::from_value(json!({"query": ""})).unwrap();
        assert!(params.check().is_err());
    }
}
