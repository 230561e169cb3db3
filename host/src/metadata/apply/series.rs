//! A series' fields, as the reference's series applier writes them (upstream-host.md §6.2).

use super::decode::Decoded;
use super::{Applier, FieldChange, Report, text, word};
use crate::library::{Credit, LabelledTitle, Series, SeriesLock};
use crate::protocol::types::metadata::{AlternateTitle, SeriesMetadata};

/// The series as the answer would leave it, and the report. Nothing is written here.
pub fn plan_series(
    series: &Series,
    decoded: &Decoded<SeriesMetadata>,
    applier: Applier<'_>,
) -> (Series, Vec<FieldChange>) {
    let answer = &decoded.metadata;
    let work = &answer.work;
    let mut report = Report::new(applier, &decoded.problems);
    let mut next = series.clone();
    let locked = |lock| series.locks.contains(&lock);
    let metadata = &mut next.metadata;

    macro_rules! scalar {
        ($field:literal, $permission:literal, $lock:expr, $slot:ident, $value:expr) => {
            if let Some(after) = $value {
                let after = Some(after);
                if report.decide($field, $permission, locked($lock), &metadata.$slot, &after) {
                    metadata.$slot = after;
                }
            }
        };
    }

    if let Some(title) = text(&work.title) {
        let title = Some(title);
        if report.decide("title", "title", locked(SeriesLock::Title), &metadata.title, &title) {
            metadata.title = title.clone();
            // The sort title follows the title, unless it is locked or filtered out.
            if report.decide("titleSort", "title", locked(SeriesLock::TitleSort), &metadata.title_sort, &title) {
                metadata.title_sort = title;
            }
        }
    }
    if !work.alternate_titles.is_empty() {
        let after = labelled(&work.alternate_titles);
        if report.decide(
            "alternateTitles",
            "title",
            locked(SeriesLock::AlternateTitles),
            &metadata.alternate_titles,
            &after,
        ) {
            metadata.alternate_titles = after;
        }
    }
    scalar!("summary", "summary", SeriesLock::Summary, summary, text(&work.summary));
    scalar!("year", "year", SeriesLock::Year, year, work.year);
    scalar!("status", "status", SeriesLock::Status, status, word(&answer.status));
    scalar!("publisher", "publisher", SeriesLock::Publisher, publisher, text(&work.publisher));
    scalar!("ageRating", "age_rating", SeriesLock::AgeRating, age_rating, answer.age_rating);
    scalar!("language", "language", SeriesLock::Language, language, text(&work.language));
    scalar!(
        "readingDirection",
        "reading_direction",
        SeriesLock::ReadingDirection,
        reading_direction,
        word(&answer.reading_direction)
    );
    scalar!(
        "totalVolumeCount",
        "total_volume_count",
        SeriesLock::TotalVolumeCount,
        total_volume_count,
        answer.total_volume_count
    );
    scalar!(
        "totalChapterCount",
        "total_chapter_count",
        SeriesLock::TotalChapterCount,
        total_chapter_count,
        answer.total_chapter_count
    );
    if !work.genres.is_empty()
        && report.decide("genres", "genres", locked(SeriesLock::Genres), &metadata.genres, &work.genres)
    {
        metadata.genres = work.genres.clone();
    }
    if !work.tags.is_empty() && report.decide("tags", "tags", locked(SeriesLock::Tags), &metadata.tags, &work.tags) {
        metadata.tags = work.tags.clone();
    }
    if !work.authors.is_empty() {
        let after = credits(&work.authors);
        if report.decide("authors", "authors", locked(SeriesLock::Authors), &metadata.authors, &after) {
            metadata.authors = after;
        }
    }
    report.links(&mut metadata.external_links, &work.external_links);
    report.ratings(&mut metadata.external_ratings, work.rating.as_ref(), &work.external_ratings);
    scalar!("coverUrl", "covers", SeriesLock::Cover, cover_url, text(&work.cover_url));
    report.external_ids(&mut next.external_ids, &work.external_ids, &work.external_id, &work.external_url);
    (next, report.changes)
}

/// Alternate titles labelled by language, else title type, else `alternate`; a label used
/// twice gets `-2`, `-3`…
pub(crate) fn labelled(titles: &[AlternateTitle]) -> Vec<LabelledTitle> {
    let mut seen: Vec<String> = Vec::new();
    titles
        .iter()
        .filter(|title| !title.title.trim().is_empty())
        .map(|title| {
            let base = text(&title.language).or_else(|| text(&title.title_type)).unwrap_or_else(|| "alternate".into());
            let uses = seen.iter().filter(|label| **label == base).count();
            seen.push(base.clone());
            let label = if uses == 0 { base } else { format!("{base}-{}", uses + 1) };
            LabelledTitle { label, title: title.title.clone() }
        })
        .collect()
}

pub(crate) fn credits(authors: &[crate::protocol::types::metadata::Author]) -> Vec<Credit> {
    authors
        .iter()
        .filter(|author| !author.name.trim().is_empty())
        .map(|author| Credit {
            name: author.name.clone(),
            role: word(&author.role),
            sort_name: author.sort_name.clone(),
        })
        .collect()
}
