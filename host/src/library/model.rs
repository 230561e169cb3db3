//! What the library port carries (orchestration.md §0), named as the reference names it,
//! camelCase in JSON (the import format, templates and conditions read these names).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A library: a collection of series, with how its titles are cleaned and which of its
/// series may be matched automatically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Library {
    pub id: String,
    pub name: String,
    /// Rules that clean a title before it is searched, in order (orchestration.md §2).
    #[serde(default)]
    pub title_rules: Vec<crate::metadata::rules::TitleRule>,
    /// Which series may be auto-matched (orchestration.md §3); none: every series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_match_conditions: Option<crate::metadata::conditions::Conditions>,
}

/// An id of the same work on another service, under a source such as `plugin:anilist`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StoredExternalId {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// External ids by source.
pub type ExternalIds = BTreeMap<String, StoredExternalId>;

/// A title in another language or script, labelled (`en`, `ja-romaji`, `alternate-2`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelledTitle {
    pub label: String,
    pub title: String,
}

/// A person credited on a work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Credit {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_name: Option<String>,
}

/// A rating on an external site, 0-100.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rating {
    pub source: String,
    pub rating: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub votes: Option<i64>,
}

/// A link to another site, keyed by its label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Link {
    pub label: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_type: Option<String>,
}

/// A series' metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeriesMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_sort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_rating: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading_direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_volume_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_chapter_count: Option<f64>,
    #[serde(default)]
    pub genres: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub alternate_titles: Vec<LabelledTitle>,
    #[serde(default)]
    pub authors: Vec<Credit>,
    #[serde(default)]
    pub external_ratings: Vec<Rating>,
    #[serde(default)]
    pub external_links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_url: Option<String>,
}

/// A series' lockable fields: a locked field is never written by a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SeriesLock {
    Title,
    TitleSort,
    AlternateTitles,
    Summary,
    Year,
    Status,
    Publisher,
    AgeRating,
    Language,
    ReadingDirection,
    TotalVolumeCount,
    TotalChapterCount,
    Genres,
    Tags,
    Authors,
    Cover,
}

/// A book's lockable fields (the reference's book applier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BookLock {
    Title,
    TitleSort,
    Subtitle,
    Summary,
    Publisher,
    Year,
    Language,
    BookType,
    Volume,
    Chapter,
    SeriesPosition,
    SeriesTotal,
    Translator,
    Edition,
    OriginalTitle,
    OriginalYear,
    Isbns,
    Subjects,
    Awards,
    Authors,
    Cover,
}

/// The release tracking settings Codex keeps per series, which release sources read and
/// advance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tracking {
    #[serde(default)]
    pub tracked: bool,
    #[serde(default = "yes")]
    pub track_volumes: bool,
    #[serde(default = "yes")]
    pub track_chapters: bool,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_chapter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_volume: Option<f64>,
    /// Names a release may carry besides the series' own titles, added by an admin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The confidence a release of this series needs, instead of the host's 0.7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_threshold: Option<f64>,
}

fn yes() -> bool {
    true
}

impl Default for Tracking {
    fn default() -> Self {
        Self {
            tracked: false,
            track_volumes: true,
            track_chapters: true,
            languages: Vec::new(),
            latest_chapter: None,
            latest_volume: None,
            aliases: Vec::new(),
            confidence_threshold: None,
        }
    }
}

/// A series: what a scan found (`name`), what is known of it, and what may not change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Series {
    pub id: String,
    pub library_id: String,
    pub name: String,
    #[serde(default)]
    pub metadata: SeriesMetadata,
    #[serde(default)]
    pub locks: BTreeSet<SeriesLock>,
    #[serde(default)]
    pub external_ids: ExternalIds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub tracking: Tracking,
    /// How many books the library holds (read, never imported).
    #[serde(default, skip_deserializing)]
    pub book_count: i64,
    /// Changes with every save: a save of an older copy is refused (see
    /// [`super::LibraryError::Changed`]). Not part of the import format.
    #[serde(default, skip)]
    pub revision: i64,
}

/// A book award.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Award {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default)]
    pub won: bool,
}

/// A book's own metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BookMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_sort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub book_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_year: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_position: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_total: Option<i64>,
    #[serde(default)]
    pub isbns: Vec<String>,
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub awards: Vec<Award>,
    #[serde(default)]
    pub authors: Vec<Credit>,
    #[serde(default)]
    pub external_links: Vec<Link>,
    #[serde(default)]
    pub external_ratings: Vec<Rating>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_url: Option<String>,
}

/// A book of a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Book {
    pub id: String,
    /// Set from the series it is listed under in an import file (and not written there).
    #[serde(default, skip_deserializing, skip_serializing_if = "String::is_empty")]
    pub series_id: String,
    /// Its place in the series (1, 2, 2.5…).
    pub position: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chapter: Option<f64>,
    /// What the file is called (a scan's title).
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isbn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_format: Option<String>,
    #[serde(default)]
    pub metadata: BookMetadata,
    #[serde(default)]
    pub locks: BTreeSet<BookLock>,
    #[serde(default)]
    pub external_ids: ExternalIds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_metadata: Option<Map<String, Value>>,
    #[serde(default, skip)]
    pub revision: i64,
}

/// Where a user is in a book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BookProgress {
    pub book_id: String,
    pub page: i64,
    pub completed: bool,
    /// Microseconds since the Unix epoch, as every time here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<i64>,
    /// When the user opened the book first (unknown for progress older than the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    pub updated_at: i64,
}

/// A user's rating of a series, 0-100, with notes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeriesRating {
    pub series_id: String,
    pub rating: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub updated_at: i64,
}

/// A book as a reader's progress sees it: where it sits, and how far the user got.
#[derive(Debug, Clone, PartialEq)]
pub struct BookReading {
    pub book_id: String,
    pub volume: Option<f64>,
    pub chapter: Option<f64>,
    pub page_count: Option<i64>,
    /// None: the user never opened it.
    pub progress: Option<BookProgress>,
}

/// A series with what one user did with it: what sync and recommendations read.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesReading {
    pub series: Series,
    pub library_name: String,
    /// By position.
    pub books: Vec<BookReading>,
    pub rating: Option<SeriesRating>,
}

/// What a pull writes for a user, all of it an upgrade: books marked read (a book already
/// read keeps its first completion), and ratings for series the user has not rated (the
/// user's own rating always wins, even one given while the sync ran).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadingChanges {
    pub mark_read: Vec<BookRead>,
    pub ratings_if_unrated: Vec<SeriesRating>,
}

/// A book to mark read, at its last page.
#[derive(Debug, Clone, PartialEq)]
pub struct BookRead {
    pub book_id: String,
    pub page_count: Option<i64>,
    pub at: i64,
}

impl ReadingChanges {
    pub fn is_empty(&self) -> bool {
        self.mark_read.is_empty() && self.ratings_if_unrated.is_empty()
    }
}
