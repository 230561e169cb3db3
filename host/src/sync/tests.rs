use codex_plugin_protocol::manifest::Capabilities;
use codex_plugin_protocol::types::sync::{Progress, PullResponse, ReadingStatus, SyncEntry};
use serde_json::{Map, Value, json};

use super::*;
use crate::library::{BookProgress, BookReading, Series, SeriesRating, SeriesReading};

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

/// A series of `books` books, the first `read` of them read and the next `opened` opened.
fn reading(books: usize, read: usize, opened: usize) -> SeriesReading {
    let series: Series = serde_json::from_value(json!({
        "id": "s1", "libraryId": "manga", "name": "One Piece (Digital)",
        "metadata": {"title": "One Piece", "totalVolumeCount": 3, "genres": ["Action"], "tags": ["Pirates"],
                     "summary": "Pirates.", "authors": [{"name": "Oda", "role": "writer"}]},
        "customMetadata": {"shelf": 2}
    }))
    .unwrap();
    let books = (0..books)
        .map(|index| BookReading {
            book_id: format!("b{index}"),
            volume: Some(index as f64 + 1.0),
            chapter: None,
            page_count: Some(100),
            progress: (index < read + opened).then(|| BookProgress {
                book_id: format!("b{index}"),
                page: 10,
                completed: index < read,
                completed_at: (index < read).then_some(2_000_000 + index as i64),
                started_at: Some(1_000_000 + index as i64),
                updated_at: 3_000_000 + index as i64,
            }),
        })
        .collect();
    SeriesReading { series, library_name: "Manga".into(), books, rating: None }
}

fn defaults() -> SyncSettings {
    SyncSettings::from_user_config(&Map::new())
}

#[test]
fn settings_follow_the_reference_defaults_and_modes() {
    let settings = defaults();
    assert_eq!(settings.mode, SyncMode::Both);
    assert!(settings.include_completed && settings.include_in_progress && settings.sync_ratings);
    assert!(!settings.count_partial_progress && !settings.search_fallback && !settings.auto_sync);
    for (value, mode) in [
        (json!("pull"), SyncMode::Pull),
        (json!("push"), SyncMode::Push),
        (json!("sideways"), SyncMode::Neither),
        (json!(3), SyncMode::Both),
    ] {
        assert_eq!(SyncMode::from_user_config(&object(json!({ "syncMode": value }))), mode);
    }
    let settings = SyncSettings::from_user_config(&object(json!({"_codex": {"syncRatings": false, "autoSync": true}})));
    assert!(!settings.sync_ratings && settings.auto_sync);
    let policy = MetadataPolicy::from_admin_config(&Map::new());
    assert_eq!(
        (policy.send_tags, policy.send_genres, policy.send_metadata, policy.allow_custom_metadata),
        (true, true, true, false)
    );
}

#[test]
fn entry_contents_need_the_capability_and_the_policy() {
    let wants = Capabilities { wants_full_metadata: true, ..Capabilities::default() };
    let all = MetadataPolicy::from_admin_config(&object(json!({"_codex": {"allowCustomMetadata": true}})));
    let contents = EntryContents::new(&wants, all);
    assert!(contents.tags && contents.genres && contents.metadata && contents.custom_metadata);
    assert!(!contents.detailed_progress);
    let none = EntryContents::new(&Capabilities::default(), all);
    assert!(!none.tags && !none.genres && !none.metadata && !none.custom_metadata);
    let no_tags = MetadataPolicy::from_admin_config(&object(json!({"_codex": {"sendTags": false}})));
    assert!(!EntryContents::new(&wants, no_tags).tags);
}

#[test]
fn a_pushed_entry_is_what_the_reference_sends() {
    let mut series = reading(3, 2, 1);
    series.rating =
        Some(SeriesRating { series_id: "s1".into(), rating: 85, notes: Some("good".into()), updated_at: 1 });
    let entry = push_entry(&series, "21", &defaults(), EntryContents::default()).unwrap();
    assert_eq!(
        serde_json::to_value(&entry).unwrap(),
        json!({
            "externalId": "21", "status": "reading",
            "progress": {"volumes": 2, "totalVolumes": 3, "maxVolume": 2},
            "score": 85.0, "notes": "good",
            "startedAt": "1970-01-01T00:00:01+00:00", "latestUpdatedAt": "1970-01-01T00:00:03.000002+00:00",
            "title": "One Piece", "libraryId": "manga", "libraryName": "Manga",
        })
    );
    let partial = SyncSettings { count_partial_progress: true, sync_ratings: false, ..defaults() };
    let entry = push_entry(&series, "21", &partial, EntryContents::default()).unwrap();
    assert_eq!(entry.progress.unwrap().volumes, Some(3.0));
    assert_eq!((entry.score, entry.notes), (None, None));
}

#[test]
fn completed_needs_every_book_read_and_the_whole_run() {
    let entry = push_entry(&reading(3, 3, 0), "21", &defaults(), EntryContents::default()).unwrap();
    assert_eq!(entry.status, ReadingStatus::Completed);
    assert_eq!(entry.completed_at.as_deref(), Some("1970-01-01T00:00:02.000002+00:00"));
    let mut short = reading(2, 2, 0);
    short.series.metadata.total_volume_count = Some(40);
    assert_eq!(push_entry(&short, "21", &defaults(), EntryContents::default()).unwrap().status, ReadingStatus::Reading);
    let settings = SyncSettings { include_completed: false, ..defaults() };
    assert_eq!(push_entry(&reading(3, 3, 0), "21", &settings, EntryContents::default()), None);
    let settings = SyncSettings { include_in_progress: false, ..defaults() };
    assert_eq!(push_entry(&reading(3, 1, 0), "21", &settings, EntryContents::default()), None);
    assert_eq!(push_entry(&reading(3, 0, 0), "21", &defaults(), EntryContents::default()), None, "nothing read");
}

#[test]
fn full_metadata_and_detailed_progress_are_sent_only_when_asked_and_allowed() {
    let contents = EntryContents {
        tags: true,
        genres: false,
        metadata: true,
        custom_metadata: true,
        detailed_progress: true,
        full_metadata: true,
    };
    let entry = push_entry(&reading(3, 1, 1), "21", &defaults(), contents).unwrap();
    let wire = serde_json::to_value(&entry).unwrap();
    assert_eq!(wire["tags"], json!(["Pirates"]));
    assert!(wire.get("genres").is_none());
    assert_eq!(wire["metadata"], json!({"summary": "Pirates.", "authors": [{"name": "Oda", "role": "writer"}]}));
    assert_eq!(wire["customMetadata"], json!({"shelf": 2}));
    assert_eq!(
        wire["progress"]["readBooks"],
        json!([{"volume": 1, "completed": true, "currentPage": 10}, {"volume": 2, "completed": false, "currentPage": 10}])
    );
}

fn pulled(status: ReadingStatus, volumes: Option<f64>, score: Option<f64>) -> SyncEntry {
    SyncEntry {
        progress: Some(Progress { volumes, ..Progress::default() }),
        score,
        notes: Some("theirs".into()),
        ..SyncEntry::new("21", status)
    }
}

#[test]
fn a_pull_only_ever_upgrades() {
    let local = reading(4, 1, 1);
    let mut changes = PulledChanges::default();
    reconcile(&pulled(ReadingStatus::Reading, Some(3.0), Some(77.6)), &local, &defaults(), 9, &mut changes);
    let marked: Vec<&str> = changes.changes.mark_read.iter().map(|read| read.book_id.as_str()).collect();
    assert_eq!(marked, ["b1", "b2"], "b0 was read already");
    assert_eq!(changes.changes.ratings_if_unrated[0].rating, 78);
    reconcile(&pulled(ReadingStatus::Reading, Some(3.0), None), &local, &defaults(), 9, &mut changes);
    assert_eq!(changes.books_marked, 2, "an entry pulled twice marks a book once");

    let mut completed = PulledChanges::default();
    reconcile(&pulled(ReadingStatus::Completed, None, Some(400.0)), &local, &defaults(), 9, &mut completed);
    assert_eq!(completed.books_marked, 3);
    assert_eq!(completed.changes.ratings_if_unrated[0].rating, 100);

    let mut rated = local.clone();
    rated.rating = Some(SeriesRating { series_id: "s1".into(), rating: 10, notes: None, updated_at: 1 });
    let mut none = PulledChanges::default();
    reconcile(&pulled(ReadingStatus::Reading, Some(0.0), Some(90.0)), &rated, &defaults(), 9, &mut none);
    assert_eq!(none, PulledChanges::default(), "a local rating wins, and zero volumes marks nothing");
    let no_ratings = SyncSettings { sync_ratings: false, ..defaults() };
    reconcile(&pulled(ReadingStatus::Reading, Some(9.0), Some(90.0)), &local, &no_ratings, 9, &mut none);
    assert_eq!((none.books_marked, none.changes.ratings_if_unrated.len()), (3, 0));
}

fn page(has_more: bool, next_page: Option<i64>, next_cursor: Option<&str>) -> PullResponse {
    PullResponse { entries: vec![], has_more, next_page, next_cursor: next_cursor.map(Into::into) }
}

#[test]
fn the_pager_follows_pages_or_cursors_and_stops_a_loop() {
    let mut pager = PullPager::new(100, Some("2026-01-01T00:00:00+00:00".into()), 10);
    let first = pager.first();
    assert_eq!((first.limit, first.updated_since.as_deref()), (Some(100), Some("2026-01-01T00:00:00+00:00")));
    let PullStep::Next(next) = pager.after(&page(true, Some(2), None)) else { panic!() };
    assert_eq!(next.page, Some(2));
    let PullStep::Next(next) = pager.after(&page(true, None, None)) else { panic!() };
    assert_eq!(next.page, Some(3), "no next page given: the one after");
    assert!(matches!(pager.after(&page(true, Some(2), None)), PullStep::Fault(why) if why.contains("page 2")));

    let mut pager = PullPager::new(100, None, 10);
    assert!(
        matches!(pager.after(&page(true, None, Some("c1"))), PullStep::Next(next) if next.cursor.as_deref() == Some("c1"))
    );
    assert!(matches!(pager.after(&page(true, None, Some("c1"))), PullStep::Fault(why) if why.contains("\"c1\"")));
    assert_eq!(PullPager::new(100, None, 10).after(&page(false, Some(2), None)), PullStep::Done);

    let mut pager = PullPager::new(100, None, 3);
    pager.after(&page(true, None, Some("a")));
    pager.after(&page(true, None, Some("b")));
    assert!(matches!(pager.after(&page(true, None, Some("c"))), PullStep::Fault(why) if why.contains("3 pages")));
}

#[test]
fn a_user_config_whose_sync_settings_would_be_misread_is_refused_naming_the_key() {
    let checked = |value: Value| SyncSettings::check_user_config(&object(value));
    assert_eq!(checked(json!({"syncMode": "pull", "_codex": {"autoSync": true}, "other": 1})), Ok(()));
    assert_eq!(checked(json!({})), Ok(()));
    assert!(checked(json!({"syncMode": "sideways"})).unwrap_err().contains("syncMode"));
    assert!(checked(json!({"syncMode": 3})).unwrap_err().contains("syncMode"));
    assert!(checked(json!({"_codex": []})).unwrap_err().contains("_codex"));
    let error = checked(json!({"_codex": {"autoSync": "yes"}})).unwrap_err();
    assert!(error.contains("_codex.autoSync"), "{error}");
}
