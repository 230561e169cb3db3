//! A user's reading in the SQLite library: what sync and recommendations read in bulk, and
//! the changes a pull writes, in one transaction.

use rusqlite::{Connection, Transaction, params};
use std::collections::HashMap;

use super::sqlite::read_series;
use super::{BookProgress, BookReading, LibraryError, ReadingChanges, SeriesRating, SeriesReading};

pub(super) fn series_with_source(connection: &Connection, source: &str) -> Result<Vec<(String, String)>, LibraryError> {
    let mut statement = connection
        .prepare_cached("SELECT series_id, external_id FROM series_external_ids WHERE source = ? ORDER BY series_id")?;
    Ok(statement.query_map([source], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()?)
}

pub(super) fn series_by_external_ids(
    connection: &Connection,
    source: &str,
    external_ids: &[String],
) -> Result<HashMap<String, Vec<String>>, LibraryError> {
    let mut statement = connection.prepare_cached(
        "SELECT series_id FROM series_external_ids WHERE source = ? AND external_id = ? ORDER BY series_id",
    )?;
    let mut found = HashMap::new();
    for id in external_ids {
        let series: Vec<String> = statement.query_map([source, id], |row| row.get(0))?.collect::<Result<_, _>>()?;
        if !series.is_empty() {
            found.insert(id.clone(), series);
        }
    }
    Ok(found)
}

pub(super) fn series_read_by(connection: &Connection, user: &str) -> Result<Vec<String>, LibraryError> {
    let mut statement = connection.prepare_cached(
        "SELECT DISTINCT b.series_id FROM reading_progress p JOIN books b ON b.id = p.book_id
         WHERE p.user_id = ? ORDER BY b.series_id",
    )?;
    Ok(statement.query_map([user], |row| row.get(0))?.collect::<Result<_, _>>()?)
}

/// One read transaction for all of them, so they are one state of the library.
pub(super) fn readings(
    connection: &mut Connection,
    user: &str,
    series: &[String],
) -> Result<Vec<SeriesReading>, LibraryError> {
    let transaction = connection.transaction()?;
    let mut library_names = HashMap::new();
    let mut readings = Vec::with_capacity(series.len());
    for id in series {
        let series = match read_series(&transaction, id) {
            Ok(series) => series,
            Err(LibraryError::NoSeries(_)) => continue,
            Err(error) => return Err(error),
        };
        let library_name = match library_names.get(&series.library_id) {
            Some(name) => String::clone(name),
            None => {
                let name: String = transaction
                    .prepare_cached("SELECT name FROM libraries WHERE id = ?")?
                    .query_row([&series.library_id], |row| row.get(0))?;
                library_names.insert(series.library_id.clone(), name.clone());
                name
            }
        };
        let books = books_with_progress(&transaction, user, id)?;
        let rating = rating(&transaction, user, id)?;
        readings.push(SeriesReading { series, library_name, books, rating });
    }
    transaction.commit()?;
    Ok(readings)
}

fn books_with_progress(connection: &Connection, user: &str, series: &str) -> Result<Vec<BookReading>, LibraryError> {
    let mut statement = connection.prepare_cached(
        "SELECT b.id, b.volume, b.chapter, b.page_count,
                p.page, p.completed, p.completed_at, p.started_at, p.updated_at
         FROM books b LEFT JOIN reading_progress p ON p.book_id = b.id AND p.user_id = ?
         WHERE b.series_id = ? ORDER BY b.position, b.id",
    )?;
    let rows = statement.query_map([user, series], |row| {
        let book_id: String = row.get(0)?;
        let progress = match row.get::<_, Option<i64>>(4)? {
            Some(page) => Some(BookProgress {
                book_id: book_id.clone(),
                page,
                completed: row.get(5)?,
                completed_at: row.get(6)?,
                started_at: row.get(7)?,
                updated_at: row.get(8)?,
            }),
            None => None,
        };
        Ok(BookReading { book_id, volume: row.get(1)?, chapter: row.get(2)?, page_count: row.get(3)?, progress })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn rating(connection: &Connection, user: &str, series: &str) -> Result<Option<SeriesRating>, LibraryError> {
    use rusqlite::OptionalExtension as _;
    Ok(connection
        .prepare_cached("SELECT rating, notes, updated_at FROM series_ratings WHERE user_id = ? AND series_id = ?")?
        .query_row([user, series], |row| {
            Ok(SeriesRating {
                series_id: series.to_owned(),
                rating: row.get(0)?,
                notes: row.get(1)?,
                updated_at: row.get(2)?,
            })
        })
        .optional()?)
}

/// Marks books read (a book read before keeps its first completion and its page, if further)
/// and rates unrated series, in the caller's transaction.
pub(super) fn apply(transaction: &Transaction<'_>, user: &str, changes: &ReadingChanges) -> Result<(), LibraryError> {
    let mut mark = transaction.prepare_cached(
        "INSERT INTO reading_progress (user_id, book_id, page, completed, completed_at, started_at, updated_at)
         VALUES (?1, ?2, ?3, 1, ?4, ?4, ?4)
         ON CONFLICT (user_id, book_id) DO UPDATE SET
             page = MAX(reading_progress.page, excluded.page),
             completed = 1,
             completed_at = COALESCE(reading_progress.completed_at, excluded.completed_at),
             started_at = COALESCE(reading_progress.started_at, excluded.started_at),
             updated_at = excluded.updated_at
         WHERE reading_progress.completed = 0",
    )?;
    for read in &changes.mark_read {
        let changed = mark.execute(params![user, read.book_id, read.page_count.unwrap_or(0), read.at]);
        match changed {
            Err(rusqlite::Error::SqliteFailure(error, _)) if error.code == rusqlite::ErrorCode::ConstraintViolation => {
                return Err(LibraryError::NoBook(read.book_id.clone()));
            }
            other => {
                other?;
            }
        }
    }
    let mut rate = transaction.prepare_cached(
        "INSERT INTO series_ratings (user_id, series_id, rating, notes, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (user_id, series_id) DO NOTHING",
    )?;
    for rating in &changes.ratings_if_unrated {
        if !(0..=100).contains(&rating.rating) {
            return Err(LibraryError::Invalid(format!("a rating is 0 to 100, not {}", rating.rating)));
        }
        rate.execute(params![user, rating.series_id, rating.rating, rating.notes, rating.updated_at])?;
    }
    Ok(())
}
