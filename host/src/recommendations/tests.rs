use codex_plugin_protocol::types::recommendations::{LibraryEntry, Recommendation};
use serde_json::{Map, json};
use std::collections::{HashMap, HashSet};

use super::*;
use crate::library::{BookProgress, BookReading, Series, SeriesRating, SeriesReading};
use crate::sync::EntryContents;

/// Series `id` with `read` of its 2 books read, last read at `last`, rated `rating`.
fn reading(id: &str, read: usize, last: i64, rating: Option<i64>) -> SeriesReading {
    let series: Series = serde_json::from_value(json!({
        "id": id, "libraryId": "manga", "name": id,
        "metadata": {"status": "ongoing", "genres": ["Drama"], "tags": ["Quiet"], "summary": "S."},
        "externalIds": {"api:echo": {"id": format!("x-{id}")}}
    }))
    .unwrap();
    let books = (0..2)
        .map(|index| BookReading {
            book_id: format!("{id}-{index}"),
            volume: None,
            chapter: None,
            page_count: None,
            progress: (index < read).then(|| BookProgress {
                book_id: format!("{id}-{index}"),
                page: 1,
                completed: true,
                completed_at: Some(last),
                started_at: Some(last),
                updated_at: last,
            }),
        })
        .collect();
    let rating = rating.map(|rating| SeriesRating { series_id: id.into(), rating, notes: None, updated_at: 0 });
    SeriesReading { series, library_name: "Manga".into(), books, rating }
}

fn entries(readings: &[SeriesReading]) -> Vec<LibraryEntry> {
    readings.iter().map(library_entry).collect()
}

fn ids(entries: &[LibraryEntry]) -> Vec<&str> {
    entries.iter().map(|entry| entry.series_id.as_str()).collect()
}

#[test]
fn settings_clamp_as_the_reference() {
    let settings = RecommendationSettings::from_user_config(&Map::new());
    assert_eq!((settings.max_recommendations, settings.max_seeds, settings.drop_threshold), (20, 10, 0));
    let config = json!({"_codex": {"maxRecommendations": 500, "maxSeeds": 0, "dropThreshold": 7.5}});
    let settings = RecommendationSettings::from_user_config(config.as_object().unwrap());
    assert_eq!((settings.max_recommendations, settings.max_seeds, settings.drop_threshold), (100, 1, 75));
    assert_eq!(max_age_hours(json!({"recommendations_max_age_hours": 2}).as_object().unwrap()), 2);
    assert_eq!(max_age_hours(&Map::new()), DEFAULT_MAX_AGE_HOURS);
}

#[test]
fn a_library_entry_says_how_far_the_user_got() {
    let entry = library_entry(&reading("a", 1, 5_000_000, Some(80)));
    let wire = serde_json::to_value(&entry).unwrap();
    assert_eq!(wire["readingStatus"], json!("reading"));
    assert_eq!((wire["booksRead"].clone(), wire["booksOwned"].clone()), (json!(1), json!(2)));
    assert_eq!(wire["userRating"], json!(80));
    assert_eq!(wire["externalIds"], json!([{"source": "api:echo", "externalId": "x-a"}]));
    assert_eq!(wire["status"], json!("ongoing"));
    assert_eq!(library_entry(&reading("b", 2, 1, None)).reading_status.as_deref(), Some("completed"));
    assert_eq!(library_entry(&reading("c", 0, 1, None)).reading_status.as_deref(), Some("unread"));
}

#[test]
fn seeds_are_liked_series_first_then_recent_ones() {
    let readings = [
        reading("old-loved", 1, 1, Some(90)),
        reading("new-liked", 2, 9, Some(60)),
        reading("disliked", 1, 8, Some(20)),
        reading("recent", 1, 10, None),
        reading("unread", 0, 0, Some(100)),
    ];
    let library = entries(&readings);
    let settings = RecommendationSettings { max_recommendations: 20, max_seeds: 10, drop_threshold: 50 };
    let none = HashMap::new();
    let seeds = seeds(&library, &settings, EntryContents::default(), &none);
    assert_eq!(ids(&seeds), ["old-loved", "new-liked", "recent", "disliked"], "unread series are no seeds");
    let two = RecommendationSettings { max_seeds: 2, ..settings };
    assert_eq!(ids(&super::seeds(&library, &two, EntryContents::default(), &none)), ["old-loved", "new-liked"]);
    let nothing_read = entries(&[reading("p", 0, 0, None), reading("q", 0, 0, Some(70))]);
    assert_eq!(ids(&super::seeds(&nothing_read, &settings, EntryContents::default(), &none)), ["q", "p"]);
    assert_eq!(exclude_ids(&library, "api:echo"), ["x-old-loved", "x-new-liked", "x-disliked", "x-recent"]);
    assert!(exclude_ids(&library, "api:other").is_empty());
}

#[test]
fn seeds_carry_what_the_contents_allow() {
    let readings = [reading("a", 1, 1, None)];
    let by_id: HashMap<String, SeriesReading> = readings.iter().map(|r| (r.series.id.clone(), r.clone())).collect();
    let settings = RecommendationSettings::from_user_config(&Map::new());
    let plain = seeds(&entries(&readings), &settings, EntryContents::default(), &by_id);
    assert_eq!((plain[0].genres.len(), plain[0].metadata.is_some()), (1, false), "genres without full metadata");
    let full = EntryContents { metadata: true, tags: true, full_metadata: true, ..EntryContents::default() };
    let seeded = seeds(&entries(&readings), &settings, full, &by_id);
    assert_eq!((seeded[0].genres.len(), seeded[0].tags.len()), (0, 1), "the policy left genres out");
    assert_eq!(seeded[0].metadata.as_ref().and_then(|m| m.summary.as_deref()), Some("S."));
}

fn recommended(id: &str, score: f64, reason: &str, based_on: &[&str]) -> Recommendation {
    Recommendation {
        external_id: id.into(),
        title: id.into(),
        score: Some(score),
        reason: Some(reason.into()),
        based_on: based_on.iter().map(|seed| seed.to_string()).collect(),
        ..Recommendation::default()
    }
}

#[test]
fn merging_keeps_the_best_score_and_every_reason() {
    let merged = merge(
        [
            ("one".to_owned(), recommended("1", 0.5, "low one", &["a"])),
            ("one".to_owned(), recommended("42", 0.6, "from manga", &["a"])),
            ("two".to_owned(), recommended("42", 0.9, "from comics", &["b"])),
            ("two".to_owned(), recommended("7", 0.7, "dismissed", &[])),
            ("two".to_owned(), recommended("3", 0.5, "tie, after 1", &[])),
        ],
        &HashSet::from(["7".to_owned()]),
    );
    let order: Vec<&str> = merged.iter().map(|m| m.recommendation.external_id.as_str()).collect();
    assert_eq!(order, ["42", "1", "3"]);
    assert_eq!(merged[0].recommendation.score, Some(0.9));
    assert_eq!(merged[0].recommendation.reason.as_deref(), Some("from manga · from comics"));
    assert_eq!(merged[0].recommendation.based_on, ["a", "b"]);
    assert_eq!(merged[0].plugins, ["one", "two"]);
}
