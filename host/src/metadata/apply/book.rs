//! A book's fields, under the reference's book locks (upstream-host.md §6.2). Volume and
//! chapter are the book's own numbers, each under its own lock and permission.

use super::decode::Decoded;
use super::series::credits;
use super::{Applier, FieldChange, Report, text};
use crate::library::{Award, Book, BookLock};
use crate::protocol::types::metadata::BookMetadata;

/// The book as the answer would leave it, and the report. Nothing is written here.
pub fn plan_book(book: &Book, decoded: &Decoded<BookMetadata>, applier: Applier<'_>) -> (Book, Vec<FieldChange>) {
    let answer = &decoded.metadata;
    let (work, edition) = (&answer.work, &answer.edition);
    let mut report = Report::new(applier, &decoded.problems);
    let mut next = book.clone();
    let locked = |lock| book.locks.contains(&lock);

    macro_rules! scalar {
        ($field:literal, $permission:literal, $lock:expr, $($slot:ident).+, $value:expr) => {
            if let Some(after) = $value {
                let after = Some(after);
                if report.decide($field, $permission, locked($lock), &next.$($slot).+, &after) {
                    next.$($slot).+ = after;
                }
            }
        };
    }
    macro_rules! list {
        ($field:literal, $permission:literal, $lock:expr, $($slot:ident).+, $value:expr) => {
            let after = $value;
            if !after.is_empty() && report.decide($field, $permission, locked($lock), &next.$($slot).+, &after) {
                next.$($slot).+ = after;
            }
        };
    }

    if let Some(title) = text(&work.title) {
        let title = Some(title);
        if report.decide("title", "title", locked(BookLock::Title), &next.metadata.title, &title) {
            next.metadata.title = title.clone();
            if report.decide("titleSort", "title", locked(BookLock::TitleSort), &next.metadata.title_sort, &title) {
                next.metadata.title_sort = title;
            }
        }
    }
    scalar!("subtitle", "subtitle", BookLock::Subtitle, metadata.subtitle, text(&edition.subtitle));
    scalar!("summary", "summary", BookLock::Summary, metadata.summary, text(&work.summary));
    scalar!("publisher", "publisher", BookLock::Publisher, metadata.publisher, text(&work.publisher));
    scalar!("year", "year", BookLock::Year, metadata.year, work.year);
    scalar!("language", "language", BookLock::Language, metadata.language, text(&work.language));
    scalar!("bookType", "book_type", BookLock::BookType, metadata.book_type, text(&edition.book_type));
    scalar!("volume", "volume", BookLock::Volume, volume, edition.volume);
    scalar!("chapter", "chapter", BookLock::Chapter, chapter, edition.chapter);
    scalar!(
        "seriesPosition",
        "series_position",
        BookLock::SeriesPosition,
        metadata.series_position,
        edition.series_position
    );
    scalar!("seriesTotal", "series_position", BookLock::SeriesTotal, metadata.series_total, edition.series_total);
    scalar!("translator", "translator", BookLock::Translator, metadata.translator, text(&edition.translator));
    scalar!("edition", "edition", BookLock::Edition, metadata.edition, text(&edition.edition));
    scalar!(
        "originalTitle",
        "original_title",
        BookLock::OriginalTitle,
        metadata.original_title,
        text(&edition.original_title)
    );
    scalar!("originalYear", "original_year", BookLock::OriginalYear, metadata.original_year, edition.original_year);
    let mut isbns: Vec<String> =
        edition.isbn.iter().chain(&edition.isbns).filter(|isbn| !isbn.trim().is_empty()).cloned().collect();
    let mut seen = std::collections::HashSet::new();
    isbns.retain(|isbn| seen.insert(isbn.clone()));
    list!("isbns", "isbn", BookLock::Isbns, metadata.isbns, isbns);
    list!("subjects", "subjects", BookLock::Subjects, metadata.subjects, answer.subjects.clone());
    let awards: Vec<Award> = answer
        .awards
        .iter()
        .map(|award| Award {
            name: award.name.clone(),
            year: award.year,
            category: award.category.clone(),
            won: award.won,
        })
        .collect();
    list!("awards", "awards", BookLock::Awards, metadata.awards, awards);
    list!("authors", "authors", BookLock::Authors, metadata.authors, credits(&work.authors));
    report.links(&mut next.metadata.external_links, &work.external_links);
    report.ratings(&mut next.metadata.external_ratings, work.rating.as_ref(), &work.external_ratings);
    let cover = text(&work.cover_url).or_else(|| answer.covers.first().map(|cover| cover.url.clone()));
    scalar!("coverUrl", "covers", BookLock::Cover, metadata.cover_url, cover);
    report.external_ids(&mut next.external_ids, &work.external_ids, &work.external_id, &work.external_url);
    (next, report.changes)
}
