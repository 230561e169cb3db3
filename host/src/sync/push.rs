//! The entry pushed for one series, as the reference builds it (its `project_sync_entry`).

use codex_plugin_protocol::types::library::LibrarySeriesMetadata;
use codex_plugin_protocol::types::metadata::{Author, AuthorRole};
use codex_plugin_protocol::types::sync::{BookProgress, Progress, ReadingStatus, SyncEntry};

use super::engagement::{Engagement, opened};
use super::settings::{EntryContents, SyncSettings};
use crate::library::SeriesReading;

/// A library time (microseconds since the epoch) as Codex writes times (RFC 3339, UTC).
pub fn rfc3339(micros: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_micros(micros).map(|time| time.to_rfc3339())
}

/// The entry pushed for `reading` under `external_id` (`""` for a search-fallback entry,
/// which the plugin finds by title), or none: nothing read, or left out by the settings.
pub fn push_entry(
    reading: &SeriesReading,
    external_id: &str,
    settings: &SyncSettings,
    contents: EntryContents,
) -> Option<SyncEntry> {
    let engagement = Engagement::of(reading);
    if !engagement.has_any_progress() {
        return None;
    }
    let all_read = engagement.all_read();
    if (all_read && !settings.include_completed) || (!all_read && !settings.include_in_progress) {
        return None;
    }
    let count = engagement.books_read + if settings.count_partial_progress { engagement.in_progress } else { 0 };
    let metadata = &reading.series.metadata;
    let total_volumes = metadata.total_volume_count.filter(|total| *total > 0);
    let total_chapters = metadata.total_chapter_count.filter(|total| total.is_finite() && *total > 0.0);
    // Completed only when the tracker's whole run is here and read: a local shelf of three
    // read volumes of a forty-volume series is still being read.
    let completed = all_read && total_volumes.is_some_and(|total| engagement.books_read >= total);
    let status = if completed { ReadingStatus::Completed } else { ReadingStatus::Reading };
    let counted = || {
        opened(&reading.books).filter(|book| {
            book.progress.as_ref().is_some_and(|progress| progress.completed) || settings.count_partial_progress
        })
    };
    let max_volume = counted().filter_map(|book| book.volume).reduce(f64::max);
    let max_chapter = counted().filter_map(|book| book.chapter).reduce(f64::max);
    let read_books = contents.detailed_progress.then(|| {
        opened(&reading.books)
            .filter_map(|book| {
                let progress = book.progress.as_ref()?;
                Some(BookProgress {
                    volume: book.volume,
                    chapter: book.chapter,
                    completed: progress.completed,
                    current_page: Some(progress.page),
                    progress_percentage: None,
                })
            })
            .collect()
    });
    let (score, notes) = match (&reading.rating, settings.sync_ratings) {
        (Some(rating), true) => (Some(rating.rating as f64), rating.notes.clone()),
        _ => (None, None),
    };
    Some(SyncEntry {
        progress: Some(Progress {
            volumes: Some(count as f64),
            // The reference truncates the chapter total to a whole number.
            total_chapters: total_chapters.map(f64::trunc),
            total_volumes: total_volumes.map(|total| total as f64),
            max_volume,
            max_chapter,
            read_books,
            ..Progress::default()
        }),
        score,
        notes,
        completed_at: if completed { engagement.latest_completed.and_then(rfc3339) } else { None },
        started_at: engagement.earliest_started.and_then(rfc3339),
        latest_updated_at: engagement.latest_read.and_then(rfc3339),
        title: Some(title(reading)),
        library_id: reading.series.library_id.clone(),
        library_name: reading.library_name.clone(),
        genres: if contents.genres { metadata.genres.clone() } else { Vec::new() },
        tags: if contents.tags { metadata.tags.clone() } else { Vec::new() },
        metadata: if contents.metadata { metadata_block(reading) } else { None },
        custom_metadata: if contents.custom_metadata { custom_metadata(reading) } else { None },
        ..SyncEntry::new(external_id, status)
    })
}

/// The series' title: its metadata's, else the name its files gave it.
pub fn title(reading: &SeriesReading) -> String {
    reading.series.metadata.title.clone().unwrap_or_else(|| reading.series.name.clone())
}

/// The bibliographic block Codex shares, none when it would be empty.
pub fn metadata_block(reading: &SeriesReading) -> Option<LibrarySeriesMetadata> {
    let metadata = &reading.series.metadata;
    let block = LibrarySeriesMetadata {
        summary: metadata.summary.clone(),
        publisher: metadata.publisher.clone(),
        authors: metadata
            .authors
            .iter()
            .map(|credit| Author {
                name: credit.name.clone(),
                role: credit.role.as_deref().map(AuthorRole::from),
                sort_name: credit.sort_name.clone(),
            })
            .collect(),
        age_rating: metadata.age_rating,
        language: metadata.language.clone(),
        reading_direction: metadata.reading_direction.clone(),
    };
    (block != LibrarySeriesMetadata::default()).then_some(block)
}

pub fn custom_metadata(reading: &SeriesReading) -> Option<serde_json::Value> {
    reading.series.custom_metadata.clone().map(serde_json::Value::Object)
}
