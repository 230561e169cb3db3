//! What a user's reading of one series amounts to, as the reference counts it.

use crate::library::{BookReading, SeriesReading};

/// A user's engagement with a series: counts and times over its books.
#[derive(Debug, Clone, PartialEq)]
pub struct Engagement {
    pub books_owned: i64,
    pub books_read: i64,
    /// Books opened and not finished.
    pub in_progress: i64,
    /// Microseconds since the epoch, as the library keeps them.
    pub earliest_started: Option<i64>,
    pub latest_read: Option<i64>,
    pub latest_completed: Option<i64>,
}

impl Engagement {
    pub fn of(reading: &SeriesReading) -> Self {
        let opened = || reading.books.iter().filter_map(|book| book.progress.as_ref());
        let completed = || opened().filter(|progress| progress.completed);
        Self {
            books_owned: reading.books.len() as i64,
            books_read: completed().count() as i64,
            in_progress: opened().filter(|progress| !progress.completed).count() as i64,
            // Progress older than `started_at` counts from its last change.
            earliest_started: opened().map(|progress| progress.started_at.unwrap_or(progress.updated_at)).min(),
            latest_read: opened().map(|progress| progress.updated_at).max(),
            latest_completed: completed().filter_map(|progress| progress.completed_at).max(),
        }
    }

    pub fn has_any_progress(&self) -> bool {
        self.books_read > 0 || self.in_progress > 0
    }

    /// Every book read (and at least one book).
    pub fn all_read(&self) -> bool {
        self.books_read == self.books_owned
    }
}

/// The books with progress, in order.
pub(super) fn opened(books: &[BookReading]) -> impl Iterator<Item = &BookReading> {
    books.iter().filter(|book| book.progress.is_some())
}
