//! The context a search template renders and auto-match conditions read: a series (or a
//! book) as JSON, in the reference's camelCase shape (`type`, `seriesId`, `bookCount`,
//! `metadata` with every field and its lock, `externalIds`, `customMetadata`). `book_count`
//! is there too, as the seeds document it.

use serde_json::{Map, Value, json};

use crate::library::{Book, BookLock, Series, SeriesLock};

/// The reference's lock names, and the lock of ours that each one reads (none: never set).
const SERIES_LOCKS: [(&str, Option<SeriesLock>); 18] = [
    ("titleLock", Some(SeriesLock::Title)),
    ("titleSortLock", Some(SeriesLock::TitleSort)),
    ("summaryLock", Some(SeriesLock::Summary)),
    ("publisherLock", Some(SeriesLock::Publisher)),
    ("imprintLock", None),
    ("statusLock", Some(SeriesLock::Status)),
    ("ageRatingLock", Some(SeriesLock::AgeRating)),
    ("languageLock", Some(SeriesLock::Language)),
    ("readingDirectionLock", Some(SeriesLock::ReadingDirection)),
    ("yearLock", Some(SeriesLock::Year)),
    ("totalVolumeCountLock", Some(SeriesLock::TotalVolumeCount)),
    ("totalChapterCountLock", Some(SeriesLock::TotalChapterCount)),
    ("genresLock", Some(SeriesLock::Genres)),
    ("tagsLock", Some(SeriesLock::Tags)),
    ("customMetadataLock", None),
    ("coverLock", Some(SeriesLock::Cover)),
    ("authorsJsonLock", Some(SeriesLock::Authors)),
    ("alternateTitlesLock", Some(SeriesLock::AlternateTitles)),
];

/// Every metadata field, present or `null`, as the reference's context has them.
const SERIES_FIELDS: [&str; 12] = [
    "title",
    "titleSort",
    "summary",
    "publisher",
    "imprint",
    "status",
    "ageRating",
    "language",
    "readingDirection",
    "year",
    "totalVolumeCount",
    "totalChapterCount",
];

/// A series' context. `title` is the metadata title, else the name a scan found (what the
/// template should search for either way), replaced by `cleaned_title` when the title rules
/// cleaned it.
pub fn series_context(series: &Series, cleaned_title: Option<&str>) -> Value {
    let mut metadata = match serde_json::to_value(&series.metadata) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    for field in SERIES_FIELDS {
        metadata.entry(field).or_insert(Value::Null);
    }
    let title =
        cleaned_title.map(str::to_owned).or_else(|| series.metadata.title.clone()).unwrap_or(series.name.clone());
    metadata.insert("title".into(), Value::String(title));
    for (name, lock) in SERIES_LOCKS {
        metadata.insert(name.into(), Value::Bool(lock.is_some_and(|lock| series.locks.contains(&lock))));
    }
    let mut context = json!({
        "type": "series",
        "seriesId": series.id,
        "libraryId": series.library_id,
        "bookCount": series.book_count,
        "book_count": series.book_count,
        "metadata": metadata,
        "externalIds": series.external_ids,
    });
    if let Some(custom) = &series.custom_metadata {
        context["customMetadata"] = Value::Object(custom.clone());
    }
    context
}

/// A book's context, with its series' under `series`.
pub fn book_context(book: &Book, series: &Series, cleaned_title: Option<&str>) -> Value {
    let mut metadata = match serde_json::to_value(&book.metadata) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let title = cleaned_title.map(str::to_owned).or_else(|| book.metadata.title.clone()).unwrap_or(book.title.clone());
    metadata.insert("title".into(), Value::String(title));
    for lock in [
        BookLock::Title,
        BookLock::TitleSort,
        BookLock::Subtitle,
        BookLock::Summary,
        BookLock::Publisher,
        BookLock::Year,
        BookLock::Volume,
        BookLock::Chapter,
        BookLock::Isbns,
        BookLock::Authors,
        BookLock::Cover,
    ] {
        let name =
            serde_json::to_value(lock).ok().and_then(|name| name.as_str().map(str::to_owned)).unwrap_or_default();
        metadata.insert(format!("{name}Lock"), Value::Bool(book.locks.contains(&lock)));
    }
    let mut context = json!({
        "type": "book",
        "bookId": book.id,
        "seriesId": book.series_id,
        "libraryId": series.library_id,
        "fileFormat": book.file_format,
        "pageCount": book.page_count,
        "isbn": book.isbn,
        "volume": book.volume,
        "chapter": book.chapter,
        "metadata": metadata,
        "externalIds": book.external_ids,
        "series": series_context(series, None),
    });
    if let Some(custom) = &book.custom_metadata {
        context["customMetadata"] = Value::Object(custom.clone());
    }
    context
}

/// The most items of a list a template sees: `{{#each}}` nested over lists a plugin filled
/// (a quarter of a million tags fit in one answer) must stay a bounded amount of work.
pub const TEMPLATE_LIST_ITEMS: usize = 100;

/// `context` with every list cut to [`TEMPLATE_LIST_ITEMS`], for a template to render.
pub fn for_template(mut context: Value) -> Value {
    fn cut(value: &mut Value) {
        match value {
            Value::Array(items) => {
                items.truncate(TEMPLATE_LIST_ITEMS);
                items.iter_mut().for_each(cut);
            }
            Value::Object(fields) => fields.values_mut().for_each(cut),
            _ => {}
        }
    }
    cut(&mut context);
    context
}
