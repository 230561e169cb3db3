//! Pulling: which page to ask for next, when to stop, and what a pulled entry changes.

use codex_plugin_protocol::types::sync::{PullParams, PullResponse, ReadingStatus, SyncEntry};
use std::collections::HashSet;

use super::settings::SyncSettings;
use crate::library::{BookRead, ReadingChanges, SeriesRating, SeriesReading};

/// Pages a pull may take before it is taken for a loop (orchestration.md §9).
pub const MAX_PAGES: usize = 10_000;

/// Walks a plugin's pages: by cursor when it gives one, else by page number.
#[derive(Debug)]
pub struct PullPager {
    limit: i64,
    updated_since: Option<String>,
    pages: usize,
    max_pages: usize,
    current_page: i64,
    seen_pages: HashSet<i64>,
    seen_cursors: HashSet<String>,
}

/// What to do after a page.
#[derive(Debug, Clone, PartialEq)]
pub enum PullStep {
    Next(PullParams),
    Done,
    /// The plugin's pages do not end: the pull stops, as a fault of the plugin.
    Fault(String),
}

impl PullPager {
    /// `updated_since`: when the last sync that succeeded started (incremental).
    pub fn new(limit: i64, updated_since: Option<String>, max_pages: usize) -> Self {
        Self {
            limit,
            updated_since,
            pages: 0,
            max_pages,
            current_page: 1,
            seen_pages: HashSet::from([1]),
            seen_cursors: HashSet::new(),
        }
    }

    /// The first request: no page, no cursor (page 1 by the plugin's default).
    pub fn first(&self) -> PullParams {
        PullParams {
            limit: Some(self.limit),
            updated_since: self.updated_since.clone(),
            since: self.updated_since.clone(),
            ..PullParams::default()
        }
    }

    /// After `page` arrived: the next request, the end, or a fault.
    pub fn after(&mut self, page: &PullResponse) -> PullStep {
        self.pages += 1;
        if !page.has_more {
            return PullStep::Done;
        }
        if self.pages >= self.max_pages {
            return PullStep::Fault(format!("still had more after {} pages; a pull stops there", self.pages));
        }
        let mut next = self.first();
        if let Some(cursor) = &page.next_cursor {
            if !self.seen_cursors.insert(cursor.clone()) {
                return PullStep::Fault(format!("gave cursor {cursor:?} a second time (its pages loop)"));
            }
            next.cursor = Some(cursor.clone());
        } else {
            let number = page.next_page.unwrap_or(self.current_page + 1);
            if !self.seen_pages.insert(number) {
                return PullStep::Fault(format!("asked for page {number} a second time (its pages loop)"));
            }
            self.current_page = number;
            next.page = Some(number);
        }
        PullStep::Next(next)
    }
}

/// What pulled entries change for one user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PulledChanges {
    pub changes: ReadingChanges,
    /// Books newly marked read.
    pub books_marked: usize,
    /// Their ids: an entry pulled twice marks a book once.
    marked: HashSet<String>,
}

/// The local changes a pulled `entry` makes to the series it matched (`reading`): it only
/// ever upgrades. Completed marks every book read; else the first N, N the entry's volumes
/// (else chapters); a book read stays read. A score (rounded, 1-100) and notes are taken
/// only when the user has not rated the series.
pub fn reconcile(
    entry: &SyncEntry,
    reading: &SeriesReading,
    settings: &SyncSettings,
    now: i64,
    into: &mut PulledChanges,
) {
    let units = entry.progress.as_ref().and_then(|progress| progress.volumes.or(progress.chapters)).unwrap_or(0.0);
    let marked = if entry.status == ReadingStatus::Completed {
        reading.books.len()
    } else if units >= 1.0 {
        (units.floor() as usize).min(reading.books.len())
    } else {
        0
    };
    for book in &reading.books[..marked] {
        if book.progress.as_ref().is_some_and(|progress| progress.completed)
            || !into.marked.insert(book.book_id.clone())
        {
            continue;
        }
        into.changes.mark_read.push(BookRead { book_id: book.book_id.clone(), page_count: book.page_count, at: now });
        into.books_marked += 1;
    }
    if settings.sync_ratings
        && reading.rating.is_none()
        && let Some(score) = entry.score.filter(|score| score.is_finite())
        && !into.changes.ratings_if_unrated.iter().any(|rating| rating.series_id == reading.series.id)
    {
        into.changes.ratings_if_unrated.push(SeriesRating {
            series_id: reading.series.id.clone(),
            rating: (score.round() as i64).clamp(1, 100),
            notes: entry.notes.clone(),
            updated_at: now,
        });
    }
}
