//! The library in the host's SQLite file: the embedded default behind the command line and
//! the server. Documents (metadata, locks, custom metadata) are stored as JSON text; the
//! rest are rows. One transaction per save; saves handed over together share one, a
//! savepoint each.

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::tracking;
use super::{
    Book, BookProgress, ExternalIds, Library, LibraryError, LibraryPort, Page, ReadingChanges, Save, Series,
    SeriesRating, SeriesReading, StoredExternalId, Tracking, reading, save_one_by_one,
};
use std::collections::HashMap;

/// The library tables of the host's database.
pub struct SqliteLibrary {
    connection: Mutex<Connection>,
}

impl SqliteLibrary {
    /// Opens the library in the database at `path` (created and migrated if needed).
    /// WAL with `synchronous = NORMAL`, as plugin storage: a transaction survives a crash
    /// of the host, and the database is never corrupted; only a power loss may take the last
    /// transactions back (a re-run of the job redoes them). Without it every save would wait
    /// for an fsync, and a library's auto-match for thousands of them.
    pub fn open(path: &Path) -> Result<Self, LibraryError> {
        let connection = crate::database::open(path)?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        // A library of ten thousand series is tens of MiB: pages are read through a memory
        // map instead of a read call each, and up to 64 MiB of them stay cached.
        connection.pragma_update(None, "mmap_size", 256i64 << 20)?;
        connection.pragma_update(None, "cache_size", -(64i64 << 10))?;
        Ok(Self { connection: Mutex::new(connection) })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `work` in one immediate transaction, committed only if it succeeds.
    pub(super) fn write<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, LibraryError>,
    ) -> Result<T, LibraryError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let done = work(&transaction)?;
        transaction.commit()?;
        Ok(done)
    }
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("library documents serialize")
}

fn document<T: DeserializeOwned>(text: &str, what: &'static str, id: &str) -> Result<T, LibraryError> {
    serde_json::from_str(text).map_err(|error| LibraryError::Corrupt {
        what,
        id: id.to_owned(),
        why: error.to_string(),
    })
}

fn read_library(connection: &Connection, id: &str) -> Result<Option<Library>, LibraryError> {
    let row = connection
        .prepare_cached("SELECT name, title_rules, auto_match_conditions FROM libraries WHERE id = ?")?
        .query_row([id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, Option<String>>(2)?))
        })
        .optional()?;
    let Some((name, rules, conditions)) = row else { return Ok(None) };
    Ok(Some(Library {
        id: id.to_owned(),
        name,
        title_rules: document(&rules, "title rules", id)?,
        auto_match_conditions: conditions.map(|text| document(&text, "auto-match conditions", id)).transpose()?,
    }))
}

fn external_ids(connection: &Connection, table: &str, key: &str, id: &str) -> Result<ExternalIds, LibraryError> {
    let mut statement =
        connection.prepare_cached(&format!("SELECT source, external_id, url, hash FROM {table} WHERE {key} = ?"))?;
    let rows = statement.query_map([id], |row| {
        Ok((row.get::<_, String>(0)?, StoredExternalId { id: row.get(1)?, url: row.get(2)?, hash: row.get(3)? }))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn write_external_ids(
    connection: &Connection,
    table: &str,
    key: &str,
    id: &str,
    ids: &ExternalIds,
) -> Result<(), LibraryError> {
    connection.prepare_cached(&format!("DELETE FROM {table} WHERE {key} = ?"))?.execute([id])?;
    let mut insert = connection.prepare_cached(&format!(
        "INSERT INTO {table} ({key}, source, external_id, url, hash) VALUES (?, ?, ?, ?, ?)"
    ))?;
    for (source, external) in ids {
        insert.execute(params![id, source, external.id, external.url, external.hash])?;
    }
    Ok(())
}

pub(super) fn read_series(connection: &Connection, id: &str) -> Result<Series, LibraryError> {
    let row = connection
        .prepare_cached(
            "SELECT library_id, name, metadata, locks, custom_metadata, revision,
                    (SELECT COUNT(*) FROM books WHERE series_id = series.id)
             FROM series WHERE id = ?",
        )?
        .query_row([id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, i64>(5)?,
                row.get::<_, i64>(6)?,
            ))
        })
        .optional()?
        .ok_or_else(|| LibraryError::NoSeries(id.to_owned()))?;
    let (library_id, name, metadata, locks, custom, revision, book_count) = row;
    Ok(Series {
        id: id.to_owned(),
        library_id,
        name,
        metadata: document(&metadata, "metadata", id)?,
        locks: document(&locks, "locks", id)?,
        external_ids: external_ids(connection, "series_external_ids", "series_id", id)?,
        custom_metadata: custom.map(|text| document(&text, "custom metadata", id)).transpose()?,
        tracking: read_tracking(connection, id)?,
        book_count,
        revision,
    })
}

fn read_tracking(connection: &Connection, series: &str) -> Result<Tracking, LibraryError> {
    let row = connection
        .prepare_cached(
            "SELECT tracked, track_volumes, track_chapters, languages, latest_chapter, latest_volume,
                 aliases, confidence_threshold
             FROM series_tracking WHERE series_id = ?",
        )?
        .query_row([series], |row| {
            Ok((
                row.get::<_, bool>(0)?,
                row.get::<_, bool>(1)?,
                row.get::<_, bool>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<f64>>(4)?,
                row.get::<_, Option<f64>>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, Option<f64>>(7)?,
            ))
        })
        .optional()?;
    let Some((tracked, track_volumes, track_chapters, languages, latest_chapter, latest_volume, aliases, threshold)) =
        row
    else {
        return Ok(Tracking::default());
    };
    Ok(Tracking {
        tracked,
        track_volumes,
        track_chapters,
        languages: document(&languages, "tracking languages", series)?,
        latest_chapter,
        latest_volume,
        aliases: document(&aliases, "tracking aliases", series)?,
        confidence_threshold: threshold,
    })
}

/// Inserts or updates the series if its stored revision is `series.revision` (a new series
/// has none); returns the new revision. Several statements: call it inside a transaction
/// or a savepoint.
pub(super) fn write_series(connection: &Connection, series: &Series) -> Result<i64, LibraryError> {
    let stored: Option<i64> = connection
        .prepare_cached("SELECT revision FROM series WHERE id = ?")?
        .query_row([&series.id], |row| row.get(0))
        .optional()?;
    let revision = match stored {
        Some(stored) if stored != series.revision => {
            return Err(LibraryError::Changed { what: "series", id: series.id.clone() });
        }
        Some(stored) => stored + 1,
        None => 1,
    };
    let custom = series.custom_metadata.as_ref().map(json);
    connection
        .prepare_cached(
            "INSERT INTO series (id, library_id, name, metadata, locks, custom_metadata, revision)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET library_id = ?2, name = ?3, metadata = ?4, locks = ?5,
             custom_metadata = ?6, revision = ?7",
        )?
        .execute(params![
            series.id,
            series.library_id,
            series.name,
            json(&series.metadata),
            json(&series.locks),
            custom,
            revision
        ])?;
    write_external_ids(connection, "series_external_ids", "series_id", &series.id, &series.external_ids)?;
    // The latest known chapter and volume only rise: a save of a copy read before a
    // release source raised them keeps the raised values.
    let tracking = &series.tracking;
    connection.prepare_cached("INSERT INTO series_tracking (series_id, tracked, track_volumes, track_chapters, languages, latest_chapter, latest_volume, aliases, confidence_threshold)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (series_id) DO UPDATE SET tracked = ?2, track_volumes = ?3, track_chapters = ?4,
             languages = ?5, aliases = ?8, confidence_threshold = ?9,
             latest_chapter = MAX(COALESCE(latest_chapter, ?6), COALESCE(?6, latest_chapter)),
             latest_volume = MAX(COALESCE(latest_volume, ?7), COALESCE(?7, latest_volume))")?.execute(
        params![
            series.id,
            tracking.tracked,
            tracking.track_volumes,
            tracking.track_chapters,
            json(&tracking.languages),
            tracking.latest_chapter,
            tracking.latest_volume,
            json(&tracking.aliases),
            tracking.confidence_threshold
        ],
    )?;
    Ok(revision)
}

const BOOK_COLUMNS: &str = "id, series_id, position, volume, chapter, title, isbn, page_count, file_format, metadata, locks, custom_metadata, revision";

fn book_from_row(connection: &Connection, row: &rusqlite::Row<'_>) -> Result<Book, LibraryError> {
    let id: String = row.get(0)?;
    let metadata: String = row.get(9)?;
    let locks: String = row.get(10)?;
    let custom: Option<String> = row.get(11)?;
    Ok(Book {
        series_id: row.get(1)?,
        position: row.get(2)?,
        volume: row.get(3)?,
        chapter: row.get(4)?,
        title: row.get(5)?,
        isbn: row.get(6)?,
        page_count: row.get(7)?,
        file_format: row.get(8)?,
        metadata: document(&metadata, "book metadata", &id)?,
        locks: document(&locks, "book locks", &id)?,
        external_ids: external_ids(connection, "book_external_ids", "book_id", &id)?,
        custom_metadata: custom.map(|text| document(&text, "book custom metadata", &id)).transpose()?,
        revision: row.get(12)?,
        id,
    })
}

/// As [`write_series`], for a book.
pub(super) fn write_book(connection: &Connection, book: &Book) -> Result<i64, LibraryError> {
    let stored: Option<i64> = connection
        .prepare_cached("SELECT revision FROM books WHERE id = ?")?
        .query_row([&book.id], |row| row.get(0))
        .optional()?;
    let revision = match stored {
        Some(stored) if stored != book.revision => {
            return Err(LibraryError::Changed { what: "book", id: book.id.clone() });
        }
        Some(stored) => stored + 1,
        None => 1,
    };
    connection
        .prepare_cached(&format!(
            "INSERT INTO books ({BOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (id) DO UPDATE SET series_id = ?2, position = ?3, volume = ?4, chapter = ?5, title = ?6,
                 isbn = ?7, page_count = ?8, file_format = ?9, metadata = ?10, locks = ?11, custom_metadata = ?12,
                 revision = ?13"
        ))?
        .execute(params![
            book.id,
            book.series_id,
            book.position,
            book.volume,
            book.chapter,
            book.title,
            book.isbn,
            book.page_count,
            book.file_format,
            json(&book.metadata),
            json(&book.locks),
            book.custom_metadata.as_ref().map(json),
            revision
        ])?;
    write_external_ids(connection, "book_external_ids", "book_id", &book.id, &book.external_ids)?;
    Ok(revision)
}

pub(super) fn write_library(transaction: &Transaction<'_>, library: &Library) -> Result<(), LibraryError> {
    transaction
        .prepare_cached(
            "INSERT INTO libraries (id, name, title_rules, auto_match_conditions) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET name = ?2, title_rules = ?3, auto_match_conditions = ?4",
        )?
        .execute(params![
            library.id,
            library.name,
            json(&library.title_rules),
            library.auto_match_conditions.as_ref().map(json)
        ])?;
    Ok(())
}

/// Writes `series` if its library exists (see [`write_series`]).
fn save_series_in(connection: &Connection, series: &Series) -> Result<i64, LibraryError> {
    if read_library(connection, &series.library_id)?.is_none() {
        return Err(LibraryError::NoLibrary(series.library_id.clone()));
    }
    write_series(connection, series)
}

/// Writes `book` if its series exists (see [`write_book`]).
fn save_book_in(connection: &Connection, book: &Book) -> Result<i64, LibraryError> {
    let known: bool = connection
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM series WHERE id = ?)")?
        .query_row([&book.series_id], |row| row.get(0))?;
    if !known {
        return Err(LibraryError::NoSeries(book.series_id.clone()));
    }
    write_book(connection, book)
}

impl SqliteLibrary {
    /// Every save in one transaction, each under its own savepoint; `Err` when the
    /// transaction itself fails (nothing of it was written).
    fn save_together(&self, saves: &[Save]) -> Result<Vec<Result<i64, LibraryError>>, LibraryError> {
        let mut connection = self.lock();
        let mut transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut answers = Vec::with_capacity(saves.len());
        for save in saves {
            let savepoint = transaction.savepoint()?;
            let answer = match save {
                Save::Series(series) => save_series_in(&savepoint, series),
                Save::Book(book) => save_book_in(&savepoint, book),
            };
            match answer {
                Ok(_) => savepoint.commit()?,
                // Dropped, a savepoint rolls back what it wrote.
                Err(_) => savepoint.finish()?,
            }
            answers.push(answer);
        }
        transaction.commit()?;
        Ok(answers)
    }
}

impl LibraryPort for SqliteLibrary {
    fn libraries(&self) -> Result<Vec<Library>, LibraryError> {
        let connection = self.lock();
        let ids: Vec<String> = connection
            .prepare("SELECT id FROM libraries ORDER BY id")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        ids.iter().map(|id| read_library(&connection, id).map(|found| found.expect("listed just now"))).collect()
    }

    fn library(&self, id: &str) -> Result<Library, LibraryError> {
        read_library(&self.lock(), id)?.ok_or_else(|| LibraryError::NoLibrary(id.to_owned()))
    }

    fn save_library(&self, library: &Library) -> Result<(), LibraryError> {
        self.write(|transaction| write_library(transaction, library))
    }

    fn series_page(&self, library: &str, after: Option<&str>, limit: usize) -> Result<Page, LibraryError> {
        let connection = self.lock();
        if read_library(&connection, library)?.is_none() {
            return Err(LibraryError::NoLibrary(library.to_owned()));
        }
        let mut statement =
            connection.prepare_cached("SELECT id FROM series WHERE library_id = ? AND id > ? ORDER BY id LIMIT ?")?;
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let mut ids: Vec<String> = statement
            .query_map(params![library, after.unwrap_or(""), fetch], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        let next = if ids.len() > limit {
            ids.truncate(limit);
            ids.last().cloned()
        } else {
            None
        };
        Ok(Page { ids, next })
    }

    fn series(&self, id: &str) -> Result<Series, LibraryError> {
        // Its three reads in one read transaction: one snapshot, and the log's read lock
        // taken once instead of three times.
        let connection = self.lock();
        let snapshot = connection.unchecked_transaction()?;
        let series = read_series(&snapshot, id)?;
        snapshot.commit()?;
        Ok(series)
    }

    fn series_by_external_id(&self, source: &str, external_id: &str) -> Result<Vec<String>, LibraryError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT series_id FROM series_external_ids WHERE source = ? AND external_id = ? ORDER BY series_id",
        )?;
        Ok(statement.query_map([source, external_id], |row| row.get(0))?.collect::<Result<_, _>>()?)
    }

    fn save_series(&self, series: &Series) -> Result<i64, LibraryError> {
        self.write(|transaction| save_series_in(transaction, series))
    }

    fn books(&self, series: &str) -> Result<Vec<Book>, LibraryError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare_cached(&format!("SELECT {BOOK_COLUMNS} FROM books WHERE series_id = ? ORDER BY position, id"))?;
        let mut rows = statement.query([series])?;
        let mut books = Vec::new();
        while let Some(row) = rows.next()? {
            books.push(book_from_row(&connection, row)?);
        }
        Ok(books)
    }

    fn book(&self, id: &str) -> Result<Book, LibraryError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(&format!("SELECT {BOOK_COLUMNS} FROM books WHERE id = ?"))?;
        let mut rows = statement.query([id])?;
        match rows.next()? {
            Some(row) => book_from_row(&connection, row),
            None => Err(LibraryError::NoBook(id.to_owned())),
        }
    }

    fn save_book(&self, book: &Book) -> Result<i64, LibraryError> {
        self.write(|transaction| save_book_in(transaction, book))
    }

    /// One commit for all, a savepoint each: a save that fails is rolled back alone. If
    /// the shared commit itself fails, each save is tried again on its own, so that each
    /// gets its own answer.
    fn save_all(&self, saves: &[Save]) -> Vec<Result<i64, LibraryError>> {
        if saves.len() == 1 {
            return save_one_by_one(self, saves);
        }
        self.save_together(saves).unwrap_or_else(|error| {
            tracing::warn!("{} saves sharing a commit failed ({error}); each is tried alone", saves.len());
            save_one_by_one(self, saves)
        })
    }

    fn progress(&self, user: &str, series: &str) -> Result<Vec<BookProgress>, LibraryError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT p.book_id, p.page, p.completed, p.completed_at, p.started_at, p.updated_at FROM reading_progress p
             JOIN books b ON b.id = p.book_id WHERE p.user_id = ? AND b.series_id = ? ORDER BY b.position, b.id",
        )?;
        let rows = statement.query_map([user, series], |row| {
            Ok(BookProgress {
                book_id: row.get(0)?,
                page: row.get(1)?,
                completed: row.get(2)?,
                completed_at: row.get(3)?,
                started_at: row.get(4)?,
                updated_at: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn save_progress(&self, user: &str, progress: &BookProgress) -> Result<(), LibraryError> {
        self.write(|transaction| {
            let known: bool = transaction
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM books WHERE id = ?)")?
                .query_row([&progress.book_id], |row| row.get(0))?;
            if !known {
                return Err(LibraryError::NoBook(progress.book_id.clone()));
            }
            transaction.prepare_cached("INSERT INTO reading_progress (user_id, book_id, page, completed, completed_at, started_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, COALESCE(?6, ?7), ?7)
                 ON CONFLICT (user_id, book_id) DO UPDATE SET page = ?3, completed = ?4, completed_at = ?5,
                     started_at = COALESCE(reading_progress.started_at, excluded.started_at), updated_at = ?7")?.execute(
                params![user, progress.book_id, progress.page, progress.completed, progress.completed_at, progress.started_at, progress.updated_at],
            )?;
            Ok(())
        })
    }

    fn rating(&self, user: &str, series: &str) -> Result<Option<SeriesRating>, LibraryError> {
        reading::rating(&self.lock(), user, series)
    }

    fn save_rating(&self, user: &str, rating: &SeriesRating) -> Result<(), LibraryError> {
        if !(0..=100).contains(&rating.rating) {
            return Err(LibraryError::Invalid(format!("a rating is 0 to 100, not {}", rating.rating)));
        }
        self.write(|transaction| {
            transaction.prepare_cached("INSERT INTO series_ratings (user_id, series_id, rating, notes, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (user_id, series_id) DO UPDATE SET rating = ?3, notes = ?4, updated_at = ?5")?.execute(
                params![user, rating.series_id, rating.rating, rating.notes, rating.updated_at],
            )?;
            Ok(())
        })
    }

    fn series_with_source(&self, source: &str) -> Result<Vec<(String, String)>, LibraryError> {
        reading::series_with_source(&self.lock(), source)
    }

    fn series_by_external_ids(
        &self,
        source: &str,
        external_ids: &[String],
    ) -> Result<HashMap<String, Vec<String>>, LibraryError> {
        reading::series_by_external_ids(&self.lock(), source, external_ids)
    }

    fn series_read_by(&self, user: &str) -> Result<Vec<String>, LibraryError> {
        reading::series_read_by(&self.lock(), user)
    }

    fn readings(&self, user: &str, series: &[String]) -> Result<Vec<SeriesReading>, LibraryError> {
        reading::readings(&mut self.lock(), user, series)
    }

    fn apply_reading(&self, user: &str, changes: &ReadingChanges) -> Result<(), LibraryError> {
        self.write(|transaction| reading::apply(transaction, user, changes))
    }

    fn tracked_series(&self, offset: u64, limit: usize) -> Result<Vec<Series>, LibraryError> {
        tracking::tracked_series(&self.lock(), offset, limit)
    }

    fn count_tracked(&self) -> Result<u64, LibraryError> {
        tracking::count_tracked(&self.lock())
    }

    fn raise_latest_known(&self, series: &str, chapter: Option<f64>, volume: Option<f64>) -> Result<(), LibraryError> {
        tracking::raise_latest_known(&self.lock(), series, chapter, volume)
    }

    fn set_latest_known(&self, series: &str, chapter: Option<f64>, volume: Option<f64>) -> Result<(), LibraryError> {
        tracking::set_latest_known(&self.lock(), series, chapter, volume)
    }
}
