use std::path::{Path, PathBuf};

use super::file::{FORMAT, LibraryFile};
use super::testing::WithSaveAll;
use super::{BookProgress, LibraryError, LibraryFileError, LibraryPort, Save, SeriesLock, SeriesRating, SqliteLibrary};

fn sample() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/sample-library.json")).unwrap()
}

fn fresh() -> (tempfile::TempDir, PathBuf, SqliteLibrary) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.sqlite3");
    let library = SqliteLibrary::open(&path).unwrap();
    (dir, path, library)
}

/// Every row of every library table, as text, to compare a database before and after.
pub fn dump(path: &Path) -> Vec<String> {
    let connection = rusqlite::Connection::open(path).unwrap();
    let mut rows = Vec::new();
    for table in ["libraries", "series", "series_external_ids", "series_tracking", "books", "book_external_ids"] {
        let mut statement = connection.prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2")).unwrap();
        let columns = statement.column_count();
        let mut query = statement.query([]).unwrap();
        while let Some(row) = query.next().unwrap() {
            let values: Vec<String> =
                (0..columns).map(|column| format!("{:?}", row.get_ref(column).unwrap())).collect();
            rows.push(format!("{table}: {}", values.join(" | ")));
        }
    }
    rows
}

#[test]
fn the_sample_imports_and_exports_to_the_same_file() {
    let (_dir, _path, library) = fresh();
    let file = LibraryFile::parse(&sample()).unwrap();
    let report = file.import(&library).unwrap();
    assert_eq!((report.libraries, report.series, report.books), (2, 31, 60));
    let exported = LibraryFile::export(&library, &[]).unwrap();
    assert!(exported == by_id(&file), "export is not what was imported");
    // Importing it again replaces, and adds nothing.
    let again = file.import(&library).unwrap();
    assert_eq!(again, report);
    assert!(LibraryFile::export(&library, &[]).unwrap() == by_id(&file));
    let berserk = library.series("manga-berserk").unwrap();
    assert!(berserk.locks.contains(&SeriesLock::Title));
    assert_eq!(berserk.book_count, 2);
    assert_eq!(library.series_by_external_id("plugin:echo", "naruto").unwrap(), vec!["manga-naruto".to_owned()]);
    assert!(library.library("manga").unwrap().auto_match_conditions.is_some());
}

/// The file with its series in id order, as an export lists them.
fn by_id(file: &LibraryFile) -> LibraryFile {
    let mut sorted = file.clone();
    for library in &mut sorted.libraries {
        library.series.sort_by(|a, b| a.id.cmp(&b.id));
    }
    sorted
}

#[test]
fn series_pages_walk_a_library_in_id_order() {
    let (_dir, _path, library) = fresh();
    LibraryFile::parse(&sample()).unwrap().import(&library).unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = library.series_page("manga", after.as_deref(), 5).unwrap();
        assert!(page.ids.len() <= 5);
        seen.extend(page.ids.clone());
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 23);
    assert!(seen.windows(2).all(|pair| pair[0] < pair[1]));
    assert!(matches!(library.series_page("comics", None, 5), Err(LibraryError::NoLibrary(_))));
}

#[test]
fn a_save_of_an_older_copy_is_refused_and_changes_nothing() {
    let (_dir, path, library) = fresh();
    LibraryFile::parse(&sample()).unwrap().import(&library).unwrap();
    let first = library.series("manga-monster").unwrap();
    let mut mine = first.clone();
    mine.metadata.summary = Some("mine".into());
    let revision = library.save_series(&mine).unwrap();
    assert_eq!(revision, first.revision + 1);
    let before = dump(&path);
    let mut stale = first.clone();
    stale.metadata.summary = Some("stale".into());
    let error = library.save_series(&stale).unwrap_err();
    assert!(matches!(error, LibraryError::Changed { .. }), "{error}");
    assert!(error.to_string().contains("nothing was written"), "{error}");
    assert_eq!(dump(&path), before);
    assert_eq!(library.series("manga-monster").unwrap().metadata.summary.as_deref(), Some("mine"));
    let mut book = library.book("manga-monster-v01").unwrap();
    book.metadata.subtitle = Some("Herr Doktor".into());
    library.save_book(&book).unwrap();
    assert!(matches!(library.save_book(&book), Err(LibraryError::Changed { .. })));
}

#[test]
fn saves_sharing_a_commit_are_each_whole_or_not_at_all() {
    let (_dir, path, library) = fresh();
    LibraryFile::parse(&sample()).unwrap().import(&library).unwrap();
    let mut fresh_series = library.series("manga-monster").unwrap();
    fresh_series.metadata.summary = Some("written".into());
    let mut stale = library.series("manga-naruto").unwrap();
    stale.revision -= 1;
    stale.metadata.summary = Some("stale".into());
    let mut orphan = library.series("manga-berserk").unwrap();
    orphan.id = "manga-orphan".into();
    orphan.library_id = "no-such-library".into();
    let mut book = library.book("manga-monster-v01").unwrap();
    book.metadata.subtitle = Some("Herr Doktor".into());
    // A save that fails halfway, after its series row is written: its external ids are refused.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON series_external_ids WHEN NEW.source = 'poison'
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
        )
        .unwrap();
    let mut halfway = library.series("manga-akira").unwrap();
    halfway.metadata.summary = Some("half written".into());
    halfway.external_ids.insert("poison".into(), super::StoredExternalId { id: "1".into(), url: None, hash: None });
    let before = dump(&path);
    let saves = [
        Save::Series(fresh_series.clone()),
        Save::Series(stale),
        Save::Series(orphan),
        Save::Series(halfway),
        Save::Book(book.clone()),
    ];
    let answers = library.save_all(&saves);
    assert_eq!(answers.len(), 5);
    assert_eq!(*answers[0].as_ref().unwrap(), fresh_series.revision + 1);
    assert!(matches!(answers[1], Err(LibraryError::Changed { .. })), "{:?}", answers[1]);
    assert!(matches!(answers[2], Err(LibraryError::NoLibrary(_))), "{:?}", answers[2]);
    assert!(answers[3].as_ref().is_err_and(|error| error.to_string().contains("poisoned")), "{:?}", answers[3]);
    assert_eq!(*answers[4].as_ref().unwrap(), book.revision + 1);
    assert_eq!(library.series("manga-monster").unwrap().metadata.summary.as_deref(), Some("written"));
    assert_ne!(library.series("manga-akira").unwrap().metadata.summary.as_deref(), Some("half written"));
    assert_ne!(library.series("manga-naruto").unwrap().metadata.summary.as_deref(), Some("stale"));
    assert!(matches!(library.series("manga-orphan"), Err(LibraryError::NoSeries(_))));
    assert_eq!(library.book("manga-monster-v01").unwrap().metadata.subtitle.as_deref(), Some("Herr Doktor"));
    // Exactly two rows changed: the two saves that succeeded.
    let after = dump(&path);
    let changed = after.iter().filter(|row| !before.contains(row)).count();
    assert_eq!(changed, 2, "{:?}", after.iter().filter(|row| !before.contains(row)).collect::<Vec<_>>());
}

#[test]
fn the_default_save_all_answers_each_save_in_order() {
    let (_dir, _path, library) = fresh();
    LibraryFile::parse(&sample()).unwrap().import(&library).unwrap();
    let mut good = library.series("manga-monster").unwrap();
    good.metadata.summary = Some("written".into());
    let mut stale = library.series("manga-naruto").unwrap();
    stale.revision += 5;
    let answers = WithSaveAll::new(library, None).save_all(&[Save::Series(stale), Save::Series(good.clone())]);
    assert!(matches!(answers[0], Err(LibraryError::Changed { .. })), "{:?}", answers[0]);
    assert_eq!(*answers[1].as_ref().unwrap(), good.revision + 1);
}

#[test]
fn unknown_ids_are_clear_errors() {
    let (_dir, _path, library) = fresh();
    assert_eq!(
        library.series("nope").unwrap_err().to_string(),
        "no series `nope`; `library show --library ID` lists a library's series"
    );
    assert!(matches!(library.book("nope"), Err(LibraryError::NoBook(_))));
    assert!(matches!(library.library("nope"), Err(LibraryError::NoLibrary(_))));
}

#[test]
fn reading_progress_and_ratings_are_kept_per_user() {
    let (_dir, _path, library) = fresh();
    LibraryFile::parse(&sample()).unwrap().import(&library).unwrap();
    let progress = BookProgress {
        book_id: "manga-monster-v01".into(),
        page: 40,
        completed: false,
        completed_at: None,
        started_at: Some(5),
        updated_at: 5,
    };
    library.save_progress("ann", &progress).unwrap();
    assert_eq!(library.progress("ann", "manga-monster").unwrap(), vec![progress]);
    assert!(library.progress("bo", "manga-monster").unwrap().is_empty());
    let rating =
        SeriesRating { series_id: "manga-monster".into(), rating: 90, notes: Some("tense".into()), updated_at: 6 };
    library.save_rating("ann", &rating).unwrap();
    assert_eq!(library.rating("ann", "manga-monster").unwrap(), Some(rating.clone()));
    let error = library.save_rating("ann", &SeriesRating { rating: 101, ..rating }).unwrap_err();
    assert!(error.to_string().contains("0 to 100"), "{error}");
}

#[test]
fn a_bad_file_names_its_first_problem_and_imports_nothing() {
    let (_dir, path, library) = fresh();
    LibraryFile::parse(&sample()).unwrap().import(&library).unwrap();
    let before = dump(&path);
    let sample = sample();
    let cases: Vec<(String, &str)> = vec![
        ("{\"format\": ".into(), "line 1"),
        (sample.replacen("\"position\": 1", "\"position\": \"one\"", 1), "libraries[0].series[0].books[0].position"),
        (sample.replacen("\"metadata\": {", "\"metadata\": {\"colour\": 1, ", 1), "unknown field `colour`"),
        (sample.replacen("\"title\"", "\"titel\"", 1), "libraries[0].series[0]"),
        (
            sample.replacen("\"locks\": [\n            \"title\"", "\"locks\": [\n            \"spine\"", 1),
            "unknown variant `spine`",
        ),
        (sample.replacen(FORMAT, "something-else", 1), "format"),
        (sample.replacen("\"version\": 1", "\"version\": 2", 1), "version"),
        (sample.replacen("\"id\": \"manga-naruto\"", "\"id\": \"manga-one-piece\"", 1), "appears twice"),
        (sample.replacen("\"pattern\": \"_\"", "\"pattern\": \"(\"", 1), "libraries[0].titleRules"),
        (sample.replacen("\"operator\": \"gte\"", "\"operator\": \"like\"", 1), "unknown variant `like`"),
        (sample.replacen("\"value\": 1", "\"value\": \"one\"", 1), "needs a number"),
    ];
    for (text, expected) in cases {
        let error = match LibraryFile::parse(&text) {
            Ok(file) => match file.import(&library) {
                Ok(_) => panic!("imported, though {expected:?} is wrong"),
                Err(error) => error,
            },
            Err(error) => error,
        };
        assert!(matches!(error, LibraryFileError::Malformed { .. } | LibraryFileError::Invalid { .. }), "{error}");
        assert!(error.to_string().contains(expected), "expected {expected:?} in: {error}");
    }
    assert_eq!(dump(&path), before, "a refused file changed the database");
}

fn read_at(book: &str, at: i64) -> super::BookRead {
    super::BookRead { book_id: book.into(), page_count: Some(200), at }
}

#[test]
fn readings_in_bulk_are_what_the_single_reads_say() {
    let (_dir, path, library) = fresh();
    LibraryFile::parse(&sample()).unwrap().import(&library).unwrap();
    let progress = |book: &str, completed: bool| BookProgress {
        book_id: book.into(),
        page: 12,
        completed,
        completed_at: completed.then_some(20),
        started_at: Some(10),
        updated_at: 20,
    };
    library.save_progress("ann", &progress("manga-one-piece-v02", true)).unwrap();
    library.save_progress("ann", &progress("manga-one-piece-v01", false)).unwrap();
    let rating = SeriesRating { series_id: "manga-one-piece".into(), rating: 80, notes: None, updated_at: 3 };
    library.save_rating("ann", &rating).unwrap();
    let ids: Vec<String> = vec!["manga-one-piece".into(), "gone".into(), "manga-monster".into()];
    let bulk = library.readings("ann", &ids).unwrap();
    let single = WithSaveAll::new(SqliteLibrary::open(&path).unwrap(), None).readings("ann", &ids).unwrap();
    assert_eq!(bulk, single);
    assert_eq!(bulk.len(), 2, "a series that is gone is left out");
    assert_eq!((bulk[0].library_name.as_str(), bulk[0].rating.as_ref()), ("Manga", Some(&rating)));
    let opened: Vec<_> = bulk[0].books.iter().map(|book| book.progress.as_ref().map(|p| p.completed)).collect();
    assert_eq!(&opened[..3], [Some(false), Some(true), None]);
    assert_eq!(library.series_read_by("ann").unwrap(), vec!["manga-one-piece".to_owned()]);
    assert!(library.series_read_by("bo").unwrap().is_empty());
}

#[test]
fn applied_reading_only_ever_upgrades_and_a_users_own_rating_wins() {
    let (_dir, _path, library) = fresh();
    LibraryFile::parse(&sample()).unwrap().import(&library).unwrap();
    let first = BookProgress {
        book_id: "manga-one-piece-v01".into(),
        page: 181,
        completed: true,
        completed_at: Some(5),
        started_at: Some(1),
        updated_at: 5,
    };
    library.save_progress("ann", &first).unwrap();
    let own =
        SeriesRating { series_id: "manga-one-piece".into(), rating: 30, notes: Some("mine".into()), updated_at: 1 };
    library.save_rating("ann", &own).unwrap();
    let changes = super::ReadingChanges {
        mark_read: vec![read_at("manga-one-piece-v01", 99), read_at("manga-one-piece-v02", 99)],
        ratings_if_unrated: vec![
            SeriesRating { series_id: "manga-one-piece".into(), rating: 90, notes: None, updated_at: 99 },
            SeriesRating {
                series_id: "manga-monster".into(),
                rating: 70,
                notes: Some("theirs".into()),
                updated_at: 99,
            },
        ],
    };
    library.apply_reading("ann", &changes).unwrap();
    let progress = library.progress("ann", "manga-one-piece").unwrap();
    assert_eq!(progress[0], first, "a book read before keeps its completion");
    assert_eq!((progress[1].completed, progress[1].page, progress[1].completed_at), (true, 200, Some(99)));
    assert_eq!(library.rating("ann", "manga-one-piece").unwrap(), Some(own));
    assert_eq!(library.rating("ann", "manga-monster").unwrap().map(|rating| rating.rating), Some(70));
}

#[test]
fn applied_reading_with_an_unknown_book_writes_nothing() {
    let (_dir, _path, library) = fresh();
    LibraryFile::parse(&sample()).unwrap().import(&library).unwrap();
    let changes = super::ReadingChanges {
        mark_read: vec![read_at("manga-one-piece-v01", 9), read_at("no-such-book", 9)],
        ratings_if_unrated: vec![SeriesRating {
            series_id: "manga-monster".into(),
            rating: 70,
            notes: None,
            updated_at: 9,
        }],
    };
    let error = library.apply_reading("ann", &changes).unwrap_err();
    assert!(matches!(error, LibraryError::NoBook(ref book) if book == "no-such-book"), "{error}");
    assert!(library.progress("ann", "manga-one-piece").unwrap().is_empty());
    assert_eq!(library.rating("ann", "manga-monster").unwrap(), None);
    let bad = super::ReadingChanges {
        mark_read: vec![],
        ratings_if_unrated: vec![SeriesRating {
            series_id: "manga-monster".into(),
            rating: 101,
            notes: None,
            updated_at: 9,
        }],
    };
    assert!(library.apply_reading("ann", &bad).unwrap_err().to_string().contains("0 to 100"));
}

#[test]
fn the_latest_known_chapter_never_goes_down() {
    let (_dir, _path, library) = fresh();
    LibraryFile::parse(&sample()).unwrap().import(&library).unwrap();
    let copy = library.series("manga-frieren").unwrap();
    assert_eq!(library.count_tracked().unwrap(), 1);
    assert_eq!(library.tracked_series(0, 10).unwrap()[0].id, "manga-frieren");
    library.raise_latest_known("manga-frieren", Some(140.0), Some(13.0)).unwrap();
    library.raise_latest_known("manga-frieren", Some(120.0), None).unwrap();
    // A copy read before the raise, saved after it (the pipeline applying metadata).
    library.save_series(&copy).unwrap();
    let tracking = library.series("manga-frieren").unwrap().tracking;
    assert_eq!((tracking.latest_chapter, tracking.latest_volume), (Some(140.0), Some(13.0)));
    let mut higher = library.series("manga-frieren").unwrap();
    higher.tracking.latest_chapter = Some(141.0);
    library.save_series(&higher).unwrap();
    assert_eq!(library.series("manga-frieren").unwrap().tracking.latest_chapter, Some(141.0));
}
