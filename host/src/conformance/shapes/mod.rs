//! The strict shape of every answer a plugin gives, as the SDK's types write it: what
//! `check` holds an answer to. The host's own types read answers tolerantly (a wrongly
//! typed optional field is left out, an unknown one ignored, legacy names accepted); here
//! the author hears of each: a missing required field or a wrong type fails, an unknown
//! field, an unknown vocabulary value or a legacy name warns.
//!
//! The unit tests hold these shapes to the host's types: an answer built from a shape, with
//! every field filled, must read through the type and write back the same fields.

use serde_json::Value;

use super::Finding;
use crate::protocol::HostMethod;
use crate::protocol::types::metadata::{AuthorRole, LinkType, ReadingDirection, SeriesStatus};
use crate::protocol::types::releases::MediaUrlKind;
use crate::protocol::types::sync::{EntryResultStatus, ReadingStatus};

/// What a JSON value must be.
#[derive(Debug)]
pub enum Shape {
    /// A string.
    Text,
    /// A string that is not blank: an id.
    Id,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    Bool,
    /// Anything at all.
    Any,
    /// A string, one of these values (another is kept by the host, but means nothing to it).
    Vocabulary(&'static [&'static str]),
    /// An object with these fields, in groups (a type that flattens another has two).
    Object(&'static [&'static [Field]]),
    /// An array of values of one shape.
    List(&'static Shape),
    /// A bare string, or this object (an author: "Ann" or `{"name": "Ann", …}`).
    TextOr(&'static Shape),
    /// `null` or this shape.
    Nullable(&'static Shape),
    /// An object whose values all have this shape.
    Map(&'static Shape),
}

/// A field of an object.
#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub shape: Shape,
    pub presence: Presence,
}

/// Whether a field must be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
    /// An old name the host still reads; the advice says what to write instead.
    Legacy(&'static str),
}

const fn required(name: &'static str, shape: Shape) -> Field {
    Field { name, shape, presence: Presence::Required }
}

const fn optional(name: &'static str, shape: Shape) -> Field {
    Field { name, shape, presence: Presence::Optional }
}

const fn legacy(name: &'static str, advice: &'static str) -> Field {
    Field { name, shape: Shape::Any, presence: Presence::Legacy(advice) }
}

use Shape::{Any, Bool, Id, Integer, List, Number, Object, Text, Vocabulary};

const TEXTS: Shape = List(&Text);

static SEARCH_PREVIEW: Shape = Object(&[&[
    optional("status", Text),
    optional("genres", TEXTS),
    optional("rating", Number),
    optional("description", Text),
    optional("bookCount", Integer),
    optional("authors", TEXTS),
    optional("format", Text),
]]);

pub static SEARCH_RESULT: Shape = Object(&[&[
    required("externalId", Id),
    required("title", Text),
    optional("alternateTitles", TEXTS),
    optional("year", Integer),
    optional("coverUrl", Text),
    optional("relevanceScore", Number),
    optional("preview", Shape::Nullable(&SEARCH_PREVIEW)),
]]);

static SEARCH_RESPONSE: Shape =
    Object(&[&[required("results", List(&SEARCH_RESULT)), optional("nextCursor", Shape::Nullable(&Text))]]);

pub static MATCH_RESPONSE: Shape = Object(&[&[
    required("match", Shape::Nullable(&SEARCH_RESULT)),
    optional("confidence", Number),
    optional("alternatives", List(&SEARCH_RESULT)),
]]);

static AUTHOR: Shape = Shape::TextOr(&Object(&[&[
    required("name", Text),
    optional("role", Vocabulary(AuthorRole::KNOWN)),
    optional("sortName", Text),
]]));

static RATING: Shape =
    Object(&[&[required("score", Number), optional("voteCount", Integer), required("source", Text)]]);

const WORK: &[Field] = &[
    required("externalId", Id),
    required("externalUrl", Text),
    optional("title", Text),
    optional(
        "alternateTitles",
        List(&Object(&[&[required("title", Text), optional("language", Text), optional("titleType", Text)]])),
    ),
    optional("summary", Text),
    optional("year", Integer),
    optional("language", Text),
    optional("genres", TEXTS),
    optional("tags", TEXTS),
    optional("authors", List(&AUTHOR)),
    optional("artists", TEXTS),
    optional("publisher", Text),
    optional("coverUrl", Text),
    optional("rating", Shape::Nullable(&RATING)),
    optional("externalRatings", List(&RATING)),
    optional(
        "externalLinks",
        List(&Object(&[&[
            required("url", Text),
            required("label", Text),
            optional("linkType", Vocabulary(LinkType::KNOWN)),
        ]])),
    ),
    optional("externalIds", List(&Object(&[&[required("source", Text), required("externalId", Id)]]))),
];

static SERIES_METADATA: Shape = Object(&[
    WORK,
    &[
        optional("status", Vocabulary(SeriesStatus::KNOWN)),
        optional("totalVolumeCount", Integer),
        optional("totalChapterCount", Number),
        optional("ageRating", Integer),
        optional("readingDirection", Vocabulary(ReadingDirection::KNOWN)),
        optional("bannerUrl", Text),
        legacy(
            "totalBookCount",
            "the legacy `totalBookCount` fills nothing: send `totalVolumeCount` and, where chapters are counted, `totalChapterCount`",
        ),
    ],
]);

static BOOK_METADATA: Shape = Object(&[
    WORK,
    &[
        optional("subtitle", Text),
        optional("bookType", Text),
        optional("volume", Number),
        optional("chapter", Number),
        optional("pageCount", Integer),
        optional("releaseDate", Text),
        optional("isbn", Text),
        optional("isbns", TEXTS),
        optional("edition", Text),
        optional("originalTitle", Text),
        optional("originalYear", Integer),
        optional("translator", Text),
        optional("seriesPosition", Number),
        optional("seriesTotal", Integer),
        optional("subjects", TEXTS),
        optional(
            "covers",
            List(&Object(&[&[
                required("url", Text),
                optional("width", Integer),
                optional("height", Integer),
                optional("size", Text),
            ]])),
        ),
        optional(
            "awards",
            List(&Object(&[&[
                required("name", Text),
                optional("year", Integer),
                optional("category", Text),
                optional("won", Bool),
            ]])),
        ),
    ],
]);

static USER_INFO: Shape = Object(&[&[
    required("externalId", Id),
    required("username", Text),
    optional("avatarUrl", Text),
    optional("profileUrl", Text),
]]);

static ENTRY_RESULT: Shape = Object(&[&[
    required("externalId", Id),
    required("status", Vocabulary(EntryResultStatus::KNOWN)),
    optional("error", Text),
]]);

static PUSH_RESPONSE: Shape = Object(&[&[
    required("success", List(&ENTRY_RESULT)),
    required("failed", List(&ENTRY_RESULT)),
    legacy("successes", "the guide's `successes` is read, but the SDK answers `success: [{externalId, status}]`"),
    legacy("failures", "the guide's `failures` is read, but the SDK answers `failed: [{externalId, status, error}]`"),
]]);

static BOOK_PROGRESS: Shape = Object(&[&[
    optional("volume", Number),
    optional("chapter", Number),
    optional("completed", Bool),
    optional("currentPage", Integer),
    optional("progressPercentage", Number),
]]);

static PROGRESS: Shape = Object(&[&[
    optional("chapters", Number),
    optional("volumes", Number),
    optional("pages", Integer),
    optional("totalChapters", Number),
    optional("totalVolumes", Number),
    optional("maxVolume", Number),
    optional("maxChapter", Number),
    optional("readBooks", List(&BOOK_PROGRESS)),
]]);

static LIBRARY_METADATA: Shape = Object(&[&[
    optional("summary", Text),
    optional("publisher", Text),
    optional("authors", List(&AUTHOR)),
    optional("ageRating", Integer),
    optional("language", Text),
    optional("readingDirection", Text),
]]);

static SYNC_ENTRY: Shape = Object(&[&[
    required("externalId", Id),
    required("status", Vocabulary(ReadingStatus::KNOWN)),
    optional("progress", Shape::Nullable(&PROGRESS)),
    optional("score", Number),
    legacy("rating", "`rating` is read as `score`; send `score`"),
    optional("startedAt", Text),
    optional("completedAt", Text),
    optional("lastReadAt", Text),
    optional("notes", Text),
    optional("latestUpdatedAt", Text),
    optional("title", Text),
    optional("libraryId", Text),
    optional("libraryName", Text),
    optional("genres", TEXTS),
    optional("tags", TEXTS),
    optional("metadata", Shape::Nullable(&LIBRARY_METADATA)),
    optional("customMetadata", Any),
]]);

static PULL_RESPONSE: Shape = Object(&[&[
    required("entries", List(&SYNC_ENTRY)),
    optional("hasMore", Bool),
    optional("nextPage", Shape::Nullable(&Integer)),
    optional("nextCursor", Shape::Nullable(&Text)),
]]);

static STATUS_RESPONSE: Shape = Object(&[&[
    optional("lastSyncAt", Shape::Nullable(&Text)),
    optional("externalCount", Integer),
    optional("pendingPush", Integer),
    optional("pendingPull", Integer),
    optional("conflicts", Integer),
]]);

static RECOMMENDATION: Shape = Object(&[&[
    required("externalId", Id),
    optional("externalUrl", Text),
    legacy("url", "`url` is read as `externalUrl`; send `externalUrl`"),
    required("title", Text),
    optional("coverUrl", Text),
    optional("summary", Text),
    legacy("description", "`description` is read as `summary`; send `summary`"),
    optional("genres", TEXTS),
    optional("tags", List(&Object(&[&[required("name", Text), optional("rank", Number), optional("category", Text)]]))),
    optional("score", Number),
    optional("reason", Text),
    legacy("why", "`why` is read as `reason`; send `reason`"),
    optional("basedOn", TEXTS),
    optional("codexSeriesId", Text),
    optional("inLibrary", Bool),
    optional("status", Vocabulary(SeriesStatus::KNOWN)),
    optional("format", Text),
    optional("countryOfOrigin", Text),
    optional("startYear", Integer),
    optional("totalVolumeCount", Integer),
    optional("totalChapterCount", Number),
    optional("rating", Number),
    optional("popularity", Number),
]]);

static RECOMMENDATIONS: Shape = Object(&[&[
    required("recommendations", List(&RECOMMENDATION)),
    optional("generatedAt", Text),
    optional("cached", Bool),
]]);

static DISMISSED: Shape =
    Object(&[&[required("dismissed", Bool), legacy("success", "`success` is read as `dismissed`; send `dismissed`")]]);

static SPAN: Shape = Object(&[&[required("start", Number), required("end", Number)]]);

pub static RELEASE_CANDIDATE: Shape = Object(&[&[
    required(
        "seriesMatch",
        Object(&[&[required("codexSeriesId", Id), required("confidence", Number), required("reason", Text)]]),
    ),
    required("externalReleaseId", Id),
    optional("volumes", List(&SPAN)),
    optional("chapters", List(&SPAN)),
    required("language", Text),
    optional("formatHints", Any),
    optional("groupOrUploader", Text),
    required("payloadUrl", Text),
    optional("mediaUrl", Text),
    optional("mediaUrlKind", Vocabulary(MediaUrlKind::KNOWN)),
    optional("infoHash", Text),
    optional("metadata", Any),
    required("observedAt", Text),
    optional("releasedAt", Text),
]]);

static POLL_RESPONSE: Shape = Object(&[&[
    optional("candidates", List(&RELEASE_CANDIDATE)),
    optional("etag", Shape::Nullable(&Text)),
    optional("notModified", Bool),
    optional("upstreamStatus", Integer),
    optional("parsed", Integer),
    optional("matched", Integer),
    optional("recorded", Integer),
    optional("deduped", Integer),
]]);

static ANY_OBJECT: Shape = Shape::Map(&Any);

/// The shape of `method`'s answer.
pub fn of(method: HostMethod) -> &'static Shape {
    use HostMethod::*;
    match method {
        Ping => &Text,
        Initialize | Shutdown => &Any,
        SeriesSearch | BookSearch => &SEARCH_RESPONSE,
        SeriesGet => &SERIES_METADATA,
        BookGet => &BOOK_METADATA,
        SeriesMatch | BookMatch => &MATCH_RESPONSE,
        SyncUserInfo => &USER_INFO,
        SyncPush => &PUSH_RESPONSE,
        SyncPull => &PULL_RESPONSE,
        SyncStatus => &STATUS_RESPONSE,
        RecommendationsGet => &RECOMMENDATIONS,
        RecommendationsDismiss => &DISMISSED,
        RecommendationsClear | RecommendationsUpdateProfile => &ANY_OBJECT,
        ReleasesPoll => &POLL_RESPONSE,
    }
}

/// Everything about `value` that does not fit `shape`; `path` names the value (`result`).
/// Array elements share one path (`results[].year`), and a problem repeated over them is
/// reported once.
pub fn findings(value: &Value, shape: &Shape, path: &str) -> Vec<Finding> {
    let mut found = Vec::new();
    walk(value, shape, path, &mut found);
    let mut seen = std::collections::HashSet::new();
    // The same problem with another value ("found a number (2)", then "(3)") is one problem.
    found.retain(|finding| {
        let problem = finding.problem.split(", found").next().unwrap_or_default().to_owned();
        seen.insert((finding.subject.clone(), problem))
    });
    found
}

fn walk(value: &Value, shape: &Shape, path: &str, found: &mut Vec<Finding>) {
    let wrong = |expected: &str, found: &mut Vec<Finding>| {
        found.push(Finding::fail(
            path,
            format!("expected {expected}, found {}", describe(value)),
            format!("send {expected}: Codex drops a field it cannot read, or refuses the whole answer"),
        ));
    };
    match shape {
        Shape::Any => {}
        Shape::Text if !value.is_string() => wrong("a string", found),
        Shape::Id => match value.as_str() {
            None => wrong("a string id", found),
            Some(id) if id.trim().is_empty() => found.push(Finding::fail(
                path,
                "an empty id",
                "send the provider's id: an empty one cannot be fetched again or matched",
            )),
            Some(_) => {}
        },
        Shape::Integer if !is_whole(value) => wrong("a whole number", found),
        Shape::Number if !value.is_number() => wrong("a number", found),
        Shape::Bool if !value.is_boolean() => wrong("true or false", found),
        Shape::Vocabulary(known) => match value.as_str() {
            None => wrong("a string", found),
            Some(text) if !known.contains(&text) => found.push(Finding::warn(
                path,
                format!("`{text}` is not a value Codex knows"),
                format!("use one of {}", known.join(", ")),
            )),
            Some(_) => {}
        },
        Shape::Nullable(inner) => {
            if !value.is_null() {
                walk(value, inner, path, found);
            }
        }
        Shape::TextOr(inner) => {
            if !value.is_string() {
                walk(value, inner, path, found);
            }
        }
        Shape::List(item) => match value.as_array() {
            None => wrong("an array", found),
            Some(items) => {
                let item_path = format!("{path}[]");
                items.iter().for_each(|element| walk(element, item, &item_path, found));
            }
        },
        Shape::Map(inner) => match value.as_object() {
            None => wrong("an object", found),
            Some(fields) => {
                fields.iter().for_each(|(key, element)| walk(element, inner, &format!("{path}.{key}"), found))
            }
        },
        Shape::Object(groups) => match value.as_object() {
            None => wrong("an object", found),
            Some(fields) => object(fields, groups, path, found),
        },
        Shape::Text | Shape::Integer | Shape::Number | Shape::Bool => {}
    }
}

fn object(fields: &serde_json::Map<String, Value>, groups: &[&[Field]], path: &str, found: &mut Vec<Finding>) {
    let known = || groups.iter().flat_map(|group| group.iter());
    for field in known() {
        let field_path = format!("{path}.{}", field.name);
        match (fields.get(field.name), field.presence) {
            (None, Presence::Required) | (Some(Value::Null), Presence::Required)
                if !matches!((fields.get(field.name), &field.shape), (Some(_), Shape::Nullable(_))) =>
            {
                found.push(Finding::fail(
                    field_path,
                    "a required field is missing",
                    format!("send `{}`: the SDK's types require it", field.name),
                ))
            }
            (Some(_), Presence::Legacy(advice)) => found.push(Finding::warn(field_path, "a legacy field", advice)),
            (Some(value), _) => walk(value, &field.shape, &field_path, found),
            (None, _) => {}
        }
    }
    for name in fields.keys() {
        if known().all(|field| field.name != name) {
            found.push(Finding::warn(
                format!("{path}.{name}"),
                "a field the protocol does not define",
                "check its spelling, or leave it out: Codex ignores it",
            ));
        }
    }
}

fn is_whole(value: &Value) -> bool {
    value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|number| number.fract() == 0.0)
}

/// A value in a few words, for a message.
pub fn describe(value: &Value) -> String {
    let shown = value.to_string();
    let shown =
        if shown.chars().count() > 40 { format!("{}…", shown.chars().take(40).collect::<String>()) } else { shown };
    let kind = match value {
        Value::Null => return "null".into(),
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    format!("{kind} ({shown})")
}

#[cfg(test)]
mod tests;
