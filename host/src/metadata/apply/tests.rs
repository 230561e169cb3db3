use serde_json::{Value, json};
use std::collections::BTreeSet;

use super::decode::decode;
use super::{Applier, FieldChange, Outcome, plan_book, plan_series};
use crate::library::{Book, BookLock, Series, SeriesLock, SeriesMetadata, StoredExternalId, Tracking};
use crate::metadata::permissions::{Grants, WRITE_FIELDS};

fn series() -> Series {
    Series {
        id: "s".into(),
        library_id: "l".into(),
        name: "monster".into(),
        metadata: SeriesMetadata { title: Some("monster".into()), year: Some(1994), ..Default::default() },
        locks: Default::default(),
        external_ids: Default::default(),
        custom_metadata: None,
        tracking: Tracking::default(),
        book_count: 18,
        revision: 3,
    }
}

/// A full answer: every field the series applier writes.
fn answer() -> Value {
    json!({
        "externalId": "m-1", "externalUrl": "https://echo/m-1", "title": "Monster",
        "alternateTitles": [{"title": "モンスター", "language": "ja"}, {"title": "Monsutā", "language": "ja"}, {"title": "MONSTER"}],
        "summary": "A surgeon…", "year": 1994, "status": "ended", "publisher": "Shogakukan", "ageRating": 16,
        "language": "ja", "readingDirection": "rtl", "totalVolumeCount": 18, "totalChapterCount": 162,
        "genres": ["Thriller"], "tags": ["Doctors"], "authors": [{"name": "Naoki Urasawa", "role": "author"}],
        "externalLinks": [{"url": "https://mal/1", "label": "MAL"}], "rating": {"score": 91, "source": "echo"},
        "externalRatings": [{"score": 88, "source": "mal", "voteCount": 10}], "coverUrl": "https://echo/c.jpg",
        "externalIds": [{"source": "api:anilist", "externalId": "30001"}], "totalBookCount": 99
    })
}

const SERIES_FIELDS: [(&str, &str); 19] = [
    ("title", "title"),
    ("titleSort", "title"),
    ("alternateTitles", "title"),
    ("summary", "summary"),
    ("status", "status"),
    ("publisher", "publisher"),
    ("ageRating", "age_rating"),
    ("language", "language"),
    ("readingDirection", "reading_direction"),
    ("totalVolumeCount", "total_volume_count"),
    ("totalChapterCount", "total_chapter_count"),
    ("genres", "genres"),
    ("tags", "tags"),
    ("authors", "authors"),
    ("externalLinks", "links"),
    ("externalRatings", "ratings"),
    ("coverUrl", "covers"),
    ("externalIds[api:anilist]", "external_ids"),
    ("year", "year"),
];

fn lock_of(field: &str) -> Option<SeriesLock> {
    serde_json::from_value(Value::String(if field == "coverUrl" { "cover".into() } else { field.into() })).ok()
}

/// Every write permission but `permission`'s.
fn all_but(permission: &str) -> Grants {
    let names = WRITE_FIELDS.iter().filter(|name| **name != permission);
    Grants(names.map(|name| format!("metadata:write:{name}").parse().unwrap()).collect())
}

fn all_grants() -> Grants {
    Grants(["metadata:write:*".parse().unwrap()].into())
}

fn plan(series: &Series, grants: &Grants, only: Option<&BTreeSet<String>>) -> (Series, Vec<FieldChange>) {
    let decoded = decode(&answer()).unwrap();
    plan_series(series, &decoded, Applier { plugin: "echo", grants, only })
}

fn outcome(changes: &[FieldChange], field: &str) -> Outcome {
    changes
        .iter()
        .find(|change| change.field == field)
        .unwrap_or_else(|| panic!("no line for {field}: {changes:?}"))
        .outcome
}

#[test]
fn every_series_field_reaches_every_outcome() {
    let grants = all_grants();
    let (applied, changes) = plan(&series(), &grants, None);
    for (field, _) in SERIES_FIELDS {
        let expected = if field == "year" { Outcome::Unchanged } else { Outcome::Applied };
        assert_eq!(outcome(&changes, field), expected, "{field}");
    }
    // Unchanged: the answer applied once is applied again.
    let (_, again) = plan(&applied, &grants, None);
    for (field, _) in SERIES_FIELDS.iter().filter(|(field, _)| *field != "titleSort") {
        assert_eq!(outcome(&again, field), Outcome::Unchanged, "{field} applied twice");
    }
    assert!(again.iter().all(|change| change.field != "titleSort"), "the sort title follows only a title that changed");
    for (field, permission) in SERIES_FIELDS {
        // Locked: for the fields that have a lock.
        if let Some(lock) = lock_of(field) {
            let mut locked = series();
            locked.locks.insert(lock);
            let (after, changes) = plan(&locked, &grants, None);
            assert_eq!(outcome(&changes, field), Outcome::Locked, "{field} locked");
            if field != "titleSort" {
                assert_eq!(
                    serde_json::to_value(&after.metadata).unwrap()[field],
                    serde_json::to_value(&locked.metadata).unwrap()[field],
                    "{field} written though locked"
                );
            }
        }
        // Not permitted: every permission but this field's.
        let others = all_but(permission);
        let (_, changes) = plan(&series(), &others, None);
        if field != "titleSort" {
            assert_eq!(outcome(&changes, field), Outcome::NotPermitted, "{field} without {permission}");
        }
        // Filtered: only the other fields.
        let only: BTreeSet<String> =
            SERIES_FIELDS.iter().map(|(name, _)| name.to_string()).filter(|name| name != field).collect();
        let (_, changes) = plan(&series(), &grants, Some(&only));
        assert_eq!(outcome(&changes, field), Outcome::Filtered, "{field} filtered");
    }
}

#[test]
fn the_rules_of_the_reference_for_series() {
    let grants = all_grants();
    let (after, changes) = plan(&series(), &grants, None);
    let metadata = &after.metadata;
    assert_eq!(metadata.title_sort.as_deref(), Some("Monster"), "titleSort follows title");
    let labels: Vec<&str> = metadata.alternate_titles.iter().map(|title| title.label.as_str()).collect();
    assert_eq!(labels, ["ja", "ja-2", "alternate"]);
    assert_eq!((metadata.total_volume_count, metadata.total_chapter_count), (Some(18), Some(162.0)),);
    // The legacy count alone fills neither count.
    let legacy = decode(&json!({"externalId": "m-1", "totalBookCount": 99})).unwrap();
    assert!(legacy.legacy_total_book_count);
    let (counted, lines) = plan_series(&series(), &legacy, Applier { plugin: "echo", grants: &grants, only: None });
    assert_eq!((counted.metadata.total_volume_count, counted.metadata.total_chapter_count), (None, None));
    assert!(lines.iter().all(|change| !change.field.starts_with("total")), "{lines:?}");
    let sources: Vec<&str> = metadata.external_ratings.iter().map(|rating| rating.source.as_str()).collect();
    assert_eq!(sources, ["echo", "mal"]);
    assert_eq!(
        after.external_ids["plugin:echo"],
        StoredExternalId { id: "m-1".into(), url: Some("https://echo/m-1".into()), hash: None }
    );
    assert_eq!(after.external_ids["api:anilist"].id, "30001");
    assert_eq!(outcome(&changes, "externalIds[plugin:echo]"), Outcome::Applied);
    // A locked sort title stays while the title changes.
    let mut sort_locked = series();
    sort_locked.locks.insert(SeriesLock::TitleSort);
    sort_locked.metadata.title_sort = Some("Monster (sort)".into());
    let (after, _) = plan(&sort_locked, &grants, None);
    assert_eq!(
        (after.metadata.title.as_deref(), after.metadata.title_sort.as_deref()),
        (Some("Monster"), Some("Monster (sort)"))
    );
    // Volume and chapter counts: separate locks.
    let mut volumes_locked = series();
    volumes_locked.locks.insert(SeriesLock::TotalVolumeCount);
    let (after, _) = plan(&volumes_locked, &grants, None);
    assert_eq!((after.metadata.total_volume_count, after.metadata.total_chapter_count), (None, Some(162.0)));
    // The match's own id is stored even without external_ids granted; nothing else is.
    let (after, changes) = plan(&series(), &Grants::default(), None);
    assert_eq!(after.external_ids.keys().collect::<Vec<_>>(), ["plugin:echo"]);
    assert!(
        changes
            .iter()
            .filter(|change| !change.field.starts_with("externalIds[plugin:"))
            .all(|change| change.outcome == Outcome::NotPermitted || change.outcome == Outcome::Unchanged)
    );
}

#[test]
fn another_plugins_source_is_refused_and_a_bad_field_is_reported() {
    let mut answer = answer();
    answer["externalIds"] = json!([{"source": "plugin:mangabaka", "externalId": "poison"}, {"source": "plugin:echo", "externalId": "other"}]);
    answer["year"] = json!("MCMXCIV");
    let decoded = decode(&answer).unwrap();
    let mut known = series();
    known.external_ids.insert("plugin:mangabaka".into(), StoredExternalId { id: "mb-7".into(), url: None, hash: None });
    let grants = all_grants();
    let (after, changes) = plan_series(&known, &decoded, Applier { plugin: "echo", grants: &grants, only: None });
    assert_eq!(outcome(&changes, "externalIds[plugin:mangabaka]"), Outcome::NotPermitted);
    assert_eq!(after.external_ids["plugin:mangabaka"].id, "mb-7", "another plugin's id was overwritten");
    assert_eq!(after.external_ids["plugin:echo"].id, "m-1", "the match's own id is the answer's externalId");
    let year = changes.iter().find(|change| change.field == "year").unwrap();
    assert_eq!((year.outcome, &year.after), (Outcome::Invalid, &json!("MCMXCIV")));
    assert_eq!(after.metadata.year, Some(1994));
    assert_eq!(after.metadata.summary.as_deref(), Some("A surgeon…"), "the rest applied");
}

fn book() -> Book {
    serde_json::from_value(json!({"id": "b", "position": 1, "title": "dune.epub", "volume": 1})).unwrap()
}

#[test]
fn books_apply_under_their_own_locks() {
    let answer = json!({
        "externalId": "OL1", "externalUrl": "https://ol/OL1", "title": "Dune", "subtitle": "Book One", "summary": "Arrakis",
        "publisher": "Chilton", "year": 1965, "language": "en", "bookType": "novel", "volume": 2, "chapter": 7.5,
        "seriesPosition": 1, "seriesTotal": 6, "translator": "x", "edition": "First", "originalTitle": "Dune", "originalYear": 1965,
        "isbn": "9780441013593", "isbns": ["9780441013593", "0441013597"], "subjects": ["Science fiction"],
        "awards": [{"name": "Hugo", "year": 1966, "won": true}], "authors": ["Frank Herbert"],
        "covers": [{"url": "https://ol/c.jpg"}]
    });
    let decoded = decode(&answer).unwrap();
    let grants = all_grants();
    let applier = Applier { plugin: "openlibrary", grants: &grants, only: None };
    let (after, changes) = plan_book(&book(), &decoded, applier);
    for field in [
        "title",
        "titleSort",
        "subtitle",
        "summary",
        "publisher",
        "year",
        "language",
        "bookType",
        "volume",
        "chapter",
        "seriesPosition",
        "seriesTotal",
        "translator",
        "edition",
        "originalTitle",
        "originalYear",
        "isbns",
        "subjects",
        "awards",
        "authors",
        "coverUrl",
        "externalIds[plugin:openlibrary]",
    ] {
        assert_eq!(outcome(&changes, field), Outcome::Applied, "{field}");
    }
    assert_eq!((after.volume, after.chapter), (Some(2.0), Some(7.5)));
    assert_eq!(after.metadata.isbns, ["9780441013593", "0441013597"]);
    assert_eq!(after.metadata.cover_url.as_deref(), Some("https://ol/c.jpg"));
    let mut locked = book();
    locked.locks.insert(BookLock::Volume);
    let (after, changes) = plan_book(&locked, &decoded, applier);
    assert_eq!(outcome(&changes, "volume"), Outcome::Locked);
    assert_eq!(outcome(&changes, "chapter"), Outcome::Applied, "volume and chapter have separate locks");
    assert_eq!((after.volume, after.chapter), (Some(1.0), Some(7.5)));
    // Every book field reaches every outcome: locked, not permitted, filtered, unchanged.
    let book_fields: [(&str, &str, BookLock); 21] = [
        ("title", "title", BookLock::Title),
        ("titleSort", "title", BookLock::TitleSort),
        ("subtitle", "subtitle", BookLock::Subtitle),
        ("summary", "summary", BookLock::Summary),
        ("publisher", "publisher", BookLock::Publisher),
        ("year", "year", BookLock::Year),
        ("language", "language", BookLock::Language),
        ("bookType", "book_type", BookLock::BookType),
        ("volume", "volume", BookLock::Volume),
        ("chapter", "chapter", BookLock::Chapter),
        ("seriesPosition", "series_position", BookLock::SeriesPosition),
        ("seriesTotal", "series_position", BookLock::SeriesTotal),
        ("translator", "translator", BookLock::Translator),
        ("edition", "edition", BookLock::Edition),
        ("originalTitle", "original_title", BookLock::OriginalTitle),
        ("originalYear", "original_year", BookLock::OriginalYear),
        ("isbns", "isbn", BookLock::Isbns),
        ("subjects", "subjects", BookLock::Subjects),
        ("awards", "awards", BookLock::Awards),
        ("authors", "authors", BookLock::Authors),
        ("coverUrl", "covers", BookLock::Cover),
    ];
    let (applied, _) = plan_book(&book(), &decoded, applier);
    let (_, again) = plan_book(&applied, &decoded, applier);
    for (field, permission, lock) in book_fields {
        if field != "titleSort" {
            assert_eq!(outcome(&again, field), Outcome::Unchanged, "{field} applied twice");
        }
        let mut locked = book();
        locked.locks.insert(lock);
        let (_, changes) = plan_book(&locked, &decoded, applier);
        assert_eq!(outcome(&changes, field), Outcome::Locked, "{field} locked");
        if field != "titleSort" {
            let others = all_but(permission);
            let (_, changes) =
                plan_book(&book(), &decoded, Applier { plugin: "openlibrary", grants: &others, only: None });
            assert_eq!(outcome(&changes, field), Outcome::NotPermitted, "{field} without {permission}");
        }
        let only: BTreeSet<String> =
            book_fields.iter().map(|(name, _, _)| name.to_string()).filter(|name| name != field).collect();
        let (_, changes) =
            plan_book(&book(), &decoded, Applier { plugin: "openlibrary", grants: &grants, only: Some(&only) });
        assert_eq!(outcome(&changes, field), Outcome::Filtered, "{field} filtered");
    }
    let only_volume = Grants(["metadata:write:volume".parse().unwrap()].into());
    let (_, changes) =
        plan_book(&book(), &decoded, Applier { plugin: "openlibrary", grants: &only_volume, only: None });
    assert_eq!(outcome(&changes, "volume"), Outcome::Applied);
    assert_eq!(outcome(&changes, "chapter"), Outcome::NotPermitted);
}
