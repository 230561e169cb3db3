//! The user's library as a recommendation plugin sees it (the reference's
//! `build_user_library`), its seeds, and the ids it excludes.

use codex_plugin_protocol::types::library::LibraryExternalId;
use codex_plugin_protocol::types::metadata::SeriesStatus;
use codex_plugin_protocol::types::recommendations::LibraryEntry;

use super::settings::RecommendationSettings;
use crate::library::SeriesReading;
use crate::sync::{Engagement, EntryContents, rfc3339};

const UNREAD: &str = "unread";
const READING: &str = "reading";
const COMPLETED: &str = "completed";

/// One series of the user's library, with genres and tags (left out later for a plugin
/// that asks for full metadata and is not allowed them) and no metadata block yet.
pub fn library_entry(reading: &SeriesReading) -> LibraryEntry {
    let engagement = Engagement::of(reading);
    let series = &reading.series;
    let metadata = &series.metadata;
    let status = match engagement.books_read {
        0 => UNREAD,
        read if read >= engagement.books_owned && engagement.books_owned > 0 => COMPLETED,
        _ => READING,
    };
    LibraryEntry {
        series_id: series.id.clone(),
        library_id: series.library_id.clone(),
        library_name: reading.library_name.clone(),
        title: crate::sync::title(reading),
        alternate_titles: metadata.alternate_titles.iter().map(|title| title.title.clone()).collect(),
        year: metadata.year,
        // A status the reference does not know is left out, as it does.
        status: metadata
            .status
            .as_deref()
            .filter(|status| !matches!(SeriesStatus::from(*status), SeriesStatus::Unrecognized(_)))
            .map(str::to_owned),
        genres: metadata.genres.clone(),
        tags: metadata.tags.clone(),
        total_volume_count: metadata.total_volume_count,
        total_chapter_count: metadata.total_chapter_count,
        external_ids: series
            .external_ids
            .iter()
            .map(|(source, id)| LibraryExternalId {
                source: source.clone(),
                external_id: id.id.clone(),
                external_url: id.url.clone(),
            })
            .collect(),
        reading_status: Some(status.to_owned()),
        books_read: engagement.books_read,
        books_owned: engagement.books_owned,
        user_rating: reading.rating.as_ref().map(|rating| rating.rating as f64),
        user_notes: reading.rating.as_ref().and_then(|rating| rating.notes.clone()),
        started_at: engagement.earliest_started.and_then(rfc3339),
        last_read_at: engagement.latest_read.and_then(rfc3339),
        completed_at: engagement.latest_completed.and_then(rfc3339),
        metadata: None,
        custom_metadata: None,
    }
}

fn engaged(entry: &LibraryEntry) -> bool {
    matches!(entry.reading_status.as_deref(), Some(READING | COMPLETED))
}

/// Ids under the plugin's source of the series the user is reading or has read: the
/// plugin should not recommend those.
pub fn exclude_ids(library: &[LibraryEntry], source: &str) -> Vec<String> {
    library
        .iter()
        .filter(|entry| engaged(entry))
        .flat_map(|entry| entry.external_ids.iter().filter(|id| id.source == source).map(|id| id.external_id.clone()))
        .collect()
}

/// The seeds of a request, as the reference curates them: the series the user reads or
/// read (all of them if none), those rated at least the threshold first (best rated, then
/// most recently read), then the others by most recently read; at most `max_seeds`. Each
/// carries what `contents` allows; `readings` give their metadata blocks.
pub fn seeds(
    library: &[LibraryEntry],
    settings: &RecommendationSettings,
    contents: EntryContents,
    readings: &std::collections::HashMap<String, SeriesReading>,
) -> Vec<LibraryEntry> {
    let engaged_entries: Vec<&LibraryEntry> = library.iter().filter(|entry| engaged(entry)).collect();
    let candidates = if engaged_entries.is_empty() { library.iter().collect() } else { engaged_entries };
    let threshold = settings.drop_threshold as f64;
    let (mut rated, mut unrated): (Vec<&LibraryEntry>, Vec<&LibraryEntry>) =
        candidates.into_iter().partition(|entry| entry.user_rating.is_some_and(|rating| rating >= threshold));
    rated.sort_by(|a, b| {
        b.user_rating
            .partial_cmp(&a.user_rating)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| b.last_read_at.cmp(&a.last_read_at))
    });
    unrated.sort_by(|a, b| b.last_read_at.cmp(&a.last_read_at));
    rated
        .into_iter()
        .chain(unrated)
        .take(settings.max_seeds)
        .map(|entry| {
            let mut seed = entry.clone();
            if let Some(reading) = readings.get(&seed.series_id) {
                if contents.metadata {
                    seed.metadata = crate::sync::metadata_block(reading);
                }
                if contents.custom_metadata {
                    seed.custom_metadata = crate::sync::custom_metadata(reading);
                }
            }
            // A plugin that asks for full metadata gets genres and tags as the policy says.
            if contents.full_metadata && !contents.genres {
                seed.genres.clear();
            }
            if contents.full_metadata && !contents.tags {
                seed.tags.clear();
            }
            seed
        })
        .collect()
}
