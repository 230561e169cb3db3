//! The library port (orchestration.md §0): what the host needs to know about a collection,
//! as a trait an embedding server implements over its own database, and the host's own
//! implementation over its SQLite file ([`SqliteLibrary`]).
//!
//! The port is synchronous, as database drivers are; the services call it from blocking
//! tasks. A save carries the revision the caller read: a series or book changed in between
//! is refused ([`LibraryError::Changed`]) rather than overwritten.

mod file;
pub mod model;
mod reading;
mod sqlite;
mod tracking;

pub use file::{ImportReport, LibraryFile, LibraryFileError};
pub use model::*;
pub use sqlite::SqliteLibrary;

use std::collections::HashMap;

/// Why a library operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("no library `{0}`; `library show` lists them")]
    NoLibrary(String),
    #[error("no series `{0}`; `library show --library ID` lists a library's series")]
    NoSeries(String),
    #[error("no book `{0}`; `library show --series ID` lists a series' books")]
    NoBook(String),
    #[error("{what} `{id}` changed while this was being decided; nothing was written, run it again")]
    Changed { what: &'static str, id: String },
    #[error("{0}")]
    Invalid(String),
    #[error("the stored {what} of `{id}` is unreadable: {why}")]
    Corrupt { what: &'static str, id: String, why: String },
    #[error(transparent)]
    File(#[from] crate::database::DatabaseError),
    #[error("library database error: {0}")]
    Database(#[from] rusqlite::Error),
}

/// A page of series ids: those after `after`, in id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub ids: Vec<String>,
    /// Where the next page starts; none at the end.
    pub next: Option<String>,
}

/// A series or a book to write, for [`LibraryPort::save_all`].
#[derive(Debug, Clone, PartialEq)]
pub enum Save {
    Series(Series),
    Book(Book),
}

/// What the host reads and writes of a collection.
pub trait LibraryPort: Send + Sync {
    /// Every library, by id.
    fn libraries(&self) -> Result<Vec<Library>, LibraryError>;
    fn library(&self, id: &str) -> Result<Library, LibraryError>;
    /// Creates the library or replaces its name, rules and conditions.
    fn save_library(&self, library: &Library) -> Result<(), LibraryError>;

    /// A page of at most `limit` series of `library` after `after`, by id.
    fn series_page(&self, library: &str, after: Option<&str>, limit: usize) -> Result<Page, LibraryError>;
    fn series(&self, id: &str) -> Result<Series, LibraryError>;
    /// Series with `external_id` under `source`.
    fn series_by_external_id(&self, source: &str, external_id: &str) -> Result<Vec<String>, LibraryError>;
    /// Writes the series (metadata, locks, external ids, custom metadata, tracking) in one
    /// transaction, if its revision is still `series.revision`; returns the new revision.
    fn save_series(&self, series: &Series) -> Result<i64, LibraryError>;

    /// A series' books, by position.
    fn books(&self, series: &str) -> Result<Vec<Book>, LibraryError>;
    fn book(&self, id: &str) -> Result<Book, LibraryError>;
    /// As [`LibraryPort::save_series`], for a book.
    fn save_book(&self, book: &Book) -> Result<i64, LibraryError>;
    /// Writes each of `saves` as [`LibraryPort::save_series`] or [`LibraryPort::save_book`]
    /// would, each whole or not at all and whatever becomes of the others; answers each
    /// one's new revision or error, in order. The default writes them one by one. An
    /// implementation may share one commit between them (the SQLite adapter does, with a
    /// savepoint each): a library run hands it the saves of its items in flight together.
    fn save_all(&self, saves: &[Save]) -> Vec<Result<i64, LibraryError>> {
        save_one_by_one(self, saves)
    }

    /// A user's progress in the books of a series.
    fn progress(&self, user: &str, series: &str) -> Result<Vec<BookProgress>, LibraryError>;
    fn save_progress(&self, user: &str, progress: &BookProgress) -> Result<(), LibraryError>;
    fn rating(&self, user: &str, series: &str) -> Result<Option<SeriesRating>, LibraryError>;
    fn save_rating(&self, user: &str, rating: &SeriesRating) -> Result<(), LibraryError>;

    /// Every series with an id under `source`, as (series id, external id), by series id.
    fn series_with_source(&self, source: &str) -> Result<Vec<(String, String)>, LibraryError>;
    /// For each of `external_ids`, the series that have it under `source` (none: absent).
    /// The default asks [`LibraryPort::series_by_external_id`] for each.
    fn series_by_external_ids(
        &self,
        source: &str,
        external_ids: &[String],
    ) -> Result<HashMap<String, Vec<String>>, LibraryError> {
        let mut found = HashMap::new();
        for id in external_ids {
            let series = self.series_by_external_id(source, id)?;
            if !series.is_empty() {
                found.insert(id.clone(), series);
            }
        }
        Ok(found)
    }
    /// Series the user has progress in (any book opened), by id.
    fn series_read_by(&self, user: &str) -> Result<Vec<String>, LibraryError>;
    /// Each of `series` with the user's progress and rating, in the order given; a series
    /// that is gone is left out. The default reads them one by one.
    fn readings(&self, user: &str, series: &[String]) -> Result<Vec<SeriesReading>, LibraryError> {
        readings_one_by_one(self, user, series)
    }
    /// Writes `changes` for `user`, all or nothing.
    fn apply_reading(&self, user: &str, changes: &ReadingChanges) -> Result<(), LibraryError>;

    /// Series whose release tracking is on, by id: `limit` of them after the first `offset`.
    fn tracked_series(&self, offset: u64, limit: usize) -> Result<Vec<Series>, LibraryError>;
    /// How many series have release tracking on.
    fn count_tracked(&self) -> Result<u64, LibraryError>;
    /// Raises a series' latest known chapter and volume to these when they are larger (a
    /// `None` leaves that one). They never go down: [`LibraryPort::save_series`] only
    /// raises them too.
    fn raise_latest_known(&self, series: &str, chapter: Option<f64>, volume: Option<f64>) -> Result<(), LibraryError>;
    /// Sets a series' latest known chapter and volume to exactly these (an admin's
    /// correction: the only way they go down).
    fn set_latest_known(&self, series: &str, chapter: Option<f64>, volume: Option<f64>) -> Result<(), LibraryError>;
}

/// [`LibraryPort::readings`] as the trait does it, from the port's single reads.
pub fn readings_one_by_one(
    port: &(impl LibraryPort + ?Sized),
    user: &str,
    series: &[String],
) -> Result<Vec<SeriesReading>, LibraryError> {
    let mut library_names: HashMap<String, String> = HashMap::new();
    let mut readings = Vec::with_capacity(series.len());
    for id in series {
        let series = match port.series(id) {
            Ok(series) => series,
            Err(LibraryError::NoSeries(_)) => continue,
            Err(error) => return Err(error),
        };
        let library_name = match library_names.get(&series.library_id) {
            Some(name) => name.clone(),
            None => {
                let name = port.library(&series.library_id)?.name;
                library_names.insert(series.library_id.clone(), name.clone());
                name
            }
        };
        let mut progress: HashMap<String, BookProgress> =
            port.progress(user, id)?.into_iter().map(|progress| (progress.book_id.clone(), progress)).collect();
        let books = port
            .books(id)?
            .into_iter()
            .map(|book| BookReading {
                progress: progress.remove(&book.id),
                book_id: book.id,
                volume: book.volume,
                chapter: book.chapter,
                page_count: book.page_count,
            })
            .collect();
        let rating = port.rating(user, id)?;
        readings.push(SeriesReading { series, library_name, books, rating });
    }
    Ok(readings)
}

/// [`LibraryPort::save_all`] as the trait does it: each save on its own, in order.
pub fn save_one_by_one(port: &(impl LibraryPort + ?Sized), saves: &[Save]) -> Vec<Result<i64, LibraryError>> {
    saves
        .iter()
        .map(|save| match save {
            Save::Series(series) => port.save_series(series),
            Save::Book(book) => port.save_book(book),
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
