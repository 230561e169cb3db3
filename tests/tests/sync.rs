//! Reading-progress sync end to end (orchestration.md §7): the sample library in a real
//! database file, sync-echo registered as a wasm component and as a native process, a user
//! connected with a token; every page pulled, matched and applied, pushes in batches, the
//! settings, two syncs at once, a plugin whose pages loop, and what each entry carries.

use codex_plugin_host::integrations::{IntegrationError, Integrations, SyncOptions};
use codex_plugin_host::library::{BookProgress, LibraryFile, LibraryPort, SeriesRating, SqliteLibrary};
use codex_plugin_host::plugin::PluginId;
use codex_plugin_host::registry::{Launch, PluginDefinition};
use codex_plugin_host_tests::integrations::{IntegrationHost, Mode, example, recorder, sample_library};
use codex_plugin_host_tests::on_both_modes;
use codex_plugin_host_tests::wasm_component_path;
use serde_json::{Map, Value, json};
use std::sync::Arc;

type Setup = IntegrationHost;

fn sample() -> String {
    sample_library()
}

/// A host with the library `file`, `launch` registered as `sync` with `admin` as its admin
/// configuration and `permissions` granted, and `ann` connected with `user_config` and an
/// access token.
async fn setup_with(launch: Launch, file: &str, admin: Value, permissions: &[&str], user_config: Value) -> Setup {
    let setup = IntegrationHost::new(file);
    setup.add("sync", launch, admin, permissions);
    setup.connect("sync", "ann", user_config, "t0ken-ann");
    setup
}

fn sync_echo(mode: Mode) -> Launch {
    example("sync-echo", mode)
}

async fn echo_setup(mode: Mode, admin: Value, user_config: Value) -> Setup {
    setup_with(sync_echo(mode), &sample(), admin, &["library:read"], user_config).await
}

fn pages_of(size: i64) -> SyncOptions {
    SyncOptions { page_size: size, ..SyncOptions::default() }
}

/// What sync-echo counted of its pushes (`{batches, entries}`), none if it was sent none.
fn push_log(setup: &Setup) -> Option<Value> {
    let connection = rusqlite::Connection::open(setup.host.database_path()).unwrap();
    let data: Option<String> =
        connection.query_row("SELECT data FROM plugin_storage WHERE key = 'pushLog'", [], |row| row.get(0)).ok();
    data.map(|data| serde_json::from_str(&data).unwrap())
}

/// Books ann has read, over the whole library.
fn books_read(setup: &Setup) -> usize {
    let connection = rusqlite::Connection::open(setup.host.database_path()).unwrap();
    connection
        .query_row("SELECT COUNT(*) FROM reading_progress WHERE user_id = 'ann' AND completed = 1", [], |row| {
            row.get::<_, i64>(0)
        })
        .unwrap() as usize
}

/// What sync-echo's entry `index` should change, by the reference's rules: completed
/// (every fourth, from the second) marks every book, else its volumes (`index mod 7`).
fn expected_marks(library: &SqliteLibrary, series: &str, index: usize) -> usize {
    let books = library.books(series).unwrap().len();
    if index % 4 == 1 { books } else { (index % 7).min(books) }
}

on_both_modes! {
    a_sync_pulls_every_page_applies_and_pushes => full_sync;
    ten_thousand_entries_over_a_hundred_pages => ten_thousand;
    a_page_repeated_stops_the_pull_and_writes_nothing => repeated_page;
    two_syncs_at_once_run_once => two_at_once;
}

async fn full_sync(mode: Mode) {
    let setup = echo_setup(mode, json!({"failIds": ["series-03"]}), json!({})).await;
    let own = SeriesRating { series_id: "manga-naruto".into(), rating: 12, notes: Some("mine".into()), updated_at: 1 };
    setup.library.save_rating("ann", &own).unwrap();
    let report = setup.integrations.sync("sync", "ann", pages_of(10)).await.unwrap();
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!(report.account.as_ref().map(|account| account.username.as_str()), Some("reader-t0ke"));
    assert_eq!((report.pages, report.pulled, report.matched, report.unmatched), (3, 23, 12, 11));
    let manga: Vec<String> = setup.library.series_page("manga", None, 100).unwrap().ids;
    let sample = LibraryFile::parse(&sample()).unwrap();
    let mapped: Vec<&str> = sample.libraries[0].series[..12].iter().map(|series| series.id.as_str()).collect();
    let expected: usize =
        mapped.iter().enumerate().map(|(index, series)| expected_marks(&setup.library, series, index)).sum();
    assert!(manga.len() > 12);
    assert_eq!(report.books_marked, expected);
    assert_eq!(books_read(&setup), expected);
    assert_eq!(report.ratings_taken, 11, "every matched series but the one ann rated");
    assert_eq!(setup.library.rating("ann", "manga-naruto").unwrap(), Some(own), "a local rating wins");
    let rated = setup.library.rating("ann", "manga-one-piece").unwrap().unwrap();
    assert_eq!(rated.rating, 50, "series-00's score");
    // Pushed: every mapped series ann has read something of, series-03's failing.
    let read_series =
        mapped.iter().enumerate().filter(|(index, series)| expected_marks(&setup.library, series, *index) > 0);
    let pushed_entries = read_series.count();
    assert_eq!(report.pushed + report.failed.len(), pushed_entries);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].external_id, "series-03");
    assert!(report.failed[0].error.contains("no series series-03"), "{:?}", report.failed);
    assert_eq!(push_log(&setup), Some(json!({"batches": 1, "entries": pushed_entries})));

    let record = setup.integrations.sync_record("sync", "ann").unwrap().unwrap();
    assert_eq!(record.last_result.as_ref(), Some(report.as_ref()), "the result is kept");
    assert_eq!(record.last_success_at, Some(report.started_at));
    assert_eq!(record.held, None, "the lease was given back");

    // Incremental: the next pull asks for what changed since this one began.
    let again = setup.integrations.sync("sync", "ann", pages_of(10)).await.unwrap();
    assert!(again.updated_since.as_deref().is_some_and(|since| since.starts_with("20")), "{again:?}");
    assert_eq!((again.pulled, again.books_marked), (0, 0), "sync-echo's entries changed before the first sync");
    assert_eq!(again.pushed, report.pushed, "the push sends the whole local state again");
}

/// A library of `count` series, one book each, `api:echo` id `series-<i>` each.
fn big_library(count: usize) -> String {
    let series: Vec<Value> = (0..count)
        .map(|index| {
            json!({
                "id": format!("s{index:05}"), "name": format!("Series {index}"),
                "externalIds": {"api:echo": {"id": format!("series-{index:02}")}},
                "books": [{"id": format!("b{index:05}"), "position": 1, "title": "v1", "pageCount": 20}]
            })
        })
        .collect();
    json!({"format": "codex-plugin-host/library", "version": 1,
           "libraries": [{"id": "big", "name": "Big", "series": series}]})
    .to_string()
}

async fn ten_thousand(mode: Mode) {
    let setup =
        setup_with(sync_echo(mode), &big_library(10_000), json!({"entries": 10_000}), &["library:read"], json!({}))
            .await;
    let report = setup.integrations.sync("sync", "ann", pages_of(100)).await.unwrap();
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!((report.pages, report.pulled, report.matched, report.unmatched), (100, 10_000, 10_000, 0));
    // Every entry but those with zero volumes and not completed marks the one book.
    let marked = (0..10_000).filter(|index| index % 4 == 1 || index % 7 > 0).count();
    assert_eq!((report.books_marked, books_read(&setup)), (marked, marked));
    assert_eq!(report.pushed, marked);
    assert_eq!(report.push_batches, marked.div_ceil(100));
    assert_eq!(push_log(&setup), Some(json!({"batches": marked.div_ceil(100), "entries": marked})));
}

async fn repeated_page(mode: Mode) {
    for pagination in ["page", "cursor"] {
        let admin = json!({"repeatPage": 2, "pagination": pagination});
        let setup = echo_setup(mode, admin, json!({})).await;
        let report = setup.integrations.sync("sync", "ann", pages_of(5)).await.unwrap();
        let error = report.error.clone().unwrap_or_default();
        assert!(error.contains("a second time") && error.contains("nothing pulled was applied"), "{report:?}");
        assert_eq!(books_read(&setup), 0, "{pagination}: something pulled was applied");
        // As the reference, the push still runs: ann read nothing here, so it is empty.
        assert_eq!(push_log(&setup), Some(json!({"batches": 1, "entries": 0})), "{pagination}");
        let record = setup.integrations.sync_record("sync", "ann").unwrap().unwrap();
        assert_eq!(record.last_success_at, None, "a failed sync is no starting point");
        assert_eq!(record.last_result.unwrap().error, report.error);
    }
}

async fn two_at_once(mode: Mode) {
    let setup = echo_setup(mode, json!({}), json!({})).await;
    let (first, second) = tokio::join!(
        setup.integrations.sync("sync", "ann", pages_of(10)),
        setup.integrations.sync("sync", "ann", pages_of(10))
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert!(Arc::ptr_eq(&first, &second), "the second joined the first");
    assert_eq!(push_log(&setup).unwrap()["batches"], json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_hosts_sync_of_the_connection_is_refused_not_doubled() {
    // A pull that takes a second: the first sync holds the lease meanwhile.
    let answers = json!({"sync/pullProgress": {"entries": [], "hasMore": false}});
    let admin = json!({"answers": answers, "delays": {"sync/pullProgress": 1000}});
    let setup = setup_with(recorder(), &sample(), admin, &["library:read"], json!({"syncMode": "pull"})).await;
    let first = {
        let integrations = setup.integrations.clone();
        tokio::spawn(async move { integrations.sync("sync", "ann", SyncOptions::default()).await })
    };
    while setup.integrations.sync_record("sync", "ann").unwrap().is_none_or(|record| record.held.is_none()) {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let library: Arc<SqliteLibrary> = setup.library.clone();
    let other = Integrations::new(setup.host.clone(), library).unwrap();
    let error = other.sync("sync", "ann", SyncOptions::default()).await.unwrap_err();
    assert!(matches!(error, IntegrationError::Busy { .. }), "{error}");
    assert!(error.to_string().contains("already running on another host"), "{error}");
    assert_eq!(first.await.unwrap().unwrap().error, None);
    assert_eq!(setup.recorded("sync", "sync/pullProgress").len(), 1, "the connection was pulled once");
    let after = other.sync("sync", "ann", SyncOptions::default()).await.unwrap();
    assert_eq!(after.error, None, "the lease was given back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_decide_what_runs_and_what_is_sent() {
    // syncMode pull: nothing pushed.
    let setup = echo_setup(Mode::Wasm, json!({}), json!({"syncMode": "pull"})).await;
    let report = setup.integrations.sync("sync", "ann", pages_of(10)).await.unwrap();
    assert!(report.books_marked > 0 && report.pushed == 0 && push_log(&setup).is_none(), "{report:?}");
    // syncMode push: nothing pulled; the push sends what ann read before; the next pull
    // still starts from the beginning.
    let setup = setup_for_push(json!({"syncMode": "push"})).await;
    let report = setup.integrations.sync("sync", "ann", pages_of(10)).await.unwrap();
    assert_eq!((report.pages, report.pushed), (0, 1), "{report:?}");
    assert_eq!(setup.integrations.sync_record("sync", "ann").unwrap().unwrap().last_success_at, None);
    // An unknown mode: neither.
    let setup = setup_for_push(json!({"syncMode": "sideways"})).await;
    let report = setup.integrations.sync("sync", "ann", pages_of(10)).await.unwrap();
    assert_eq!((report.pages, report.pushed), (0, 0), "{report:?}");
    // syncRatings off: no rating taken.
    let setup = echo_setup(Mode::Wasm, json!({}), json!({"_codex": {"syncRatings": false}})).await;
    let report = setup.integrations.sync("sync", "ann", pages_of(10)).await.unwrap();
    assert_eq!(report.ratings_taken, 0);
    assert_eq!(setup.library.rating("ann", "manga-one-piece").unwrap(), None);
    // searchFallback: a series read without an api:echo id is pushed by title.
    let setup = setup_for_push(json!({"syncMode": "push", "_codex": {"searchFallback": true}})).await;
    progress(&setup, "manga-akira-v01", true);
    let report = setup.integrations.sync("sync", "ann", pages_of(10)).await.unwrap();
    assert_eq!(report.pushed, 2, "{report:?}");
    // includeInProgress off: a series half read is not pushed.
    let setup = setup_for_push(json!({"syncMode": "push", "_codex": {"includeInProgress": false}})).await;
    let report = setup.integrations.sync("sync", "ann", pages_of(10)).await.unwrap();
    assert_eq!(report.pushed, 0, "{report:?}");
}

fn progress(setup: &Setup, book: &str, completed: bool) {
    let progress =
        BookProgress { book_id: book.into(), page: 5, completed, completed_at: None, started_at: None, updated_at: 7 };
    setup.library.save_progress("ann", &progress).unwrap();
}

/// sync-echo with ann half through One Piece (`series-00`).
async fn setup_for_push(user_config: Value) -> Setup {
    let setup = echo_setup(Mode::Wasm, json!({}), user_config).await;
    progress(&setup, "manga-one-piece-v01", true);
    setup
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_may_not_read_the_library_is_sent_no_entries() {
    let setup = setup_with(sync_echo(Mode::Wasm), &sample(), json!({}), &[], json!({})).await;
    progress(&setup, "manga-one-piece-v01", true);
    let report = setup.integrations.sync("sync", "ann", pages_of(10)).await.unwrap();
    assert_eq!(report.error, None);
    assert!(report.books_marked > 0, "the pull still applies");
    assert_eq!((report.pushed, push_log(&setup)), (0, None));
    assert!(report.notes.iter().any(|note| note.contains("--grant library:read")), "{:?}", report.notes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_clear_errors() {
    let setup = echo_setup(Mode::Wasm, json!({}), json!({})).await;
    let error = setup.integrations.sync("sync", "bo", SyncOptions::default()).await.unwrap_err();
    assert!(error.to_string().contains("user `bo` is not connected"), "{error}");
    let error = setup.integrations.sync("nope", "ann", SyncOptions::default()).await.unwrap_err();
    assert!(error.to_string().contains("no plugin is registered as `nope`"), "{error}");
    let metadata = PluginDefinition::new(Launch::Wasm { file: wasm_component_path("metadata-echo") });
    setup.host.registry().add(&PluginId::new("meta").unwrap(), &metadata).unwrap();
    setup.host.registry().connect_user("meta", "ann", Map::new()).unwrap();
    let error = setup.integrations.sync("meta", "ann", SyncOptions::default()).await.unwrap_err();
    assert!(error.to_string().contains("capabilities.userReadSync"), "{error}");
    // hasMore forever: the pull stops at its page limit.
    let setup = echo_setup(Mode::Wasm, json!({"entries": 1_000_000}), json!({})).await;
    let options = SyncOptions { page_size: 1, max_pages: 20, ..SyncOptions::default() };
    let report = setup.integrations.sync("sync", "ann", options).await.unwrap();
    assert!(report.error.as_deref().is_some_and(|error| error.contains("after 20 pages")), "{report:?}");
    assert_eq!(books_read(&setup), 0);
}

/// The wire recorder as a sync plugin: what it answers comes from its admin config, and
/// every line it received is in its data directory.
async fn recorder_setup(answers: Value, capabilities: Value, codex: Value) -> Setup {
    let admin = json!({"answers": answers, "capabilities": capabilities, "_codex": codex});
    let setup = setup_with(recorder(), &sample(), admin, &["library:read"], json!({"syncMode": "push"})).await;
    progress(&setup, "manga-one-piece-v01", true);
    progress(&setup, "manga-one-piece-v02", false);
    let mut series = setup.library.series("manga-one-piece").unwrap();
    series.custom_metadata = json!({"shelf": 2}).as_object().cloned();
    series.metadata.tags = vec!["Pirates".into()];
    setup.library.save_series(&series).unwrap();
    setup
}

/// The `sync/pushProgress` requests the recorder received.
fn pushed_requests(setup: &Setup) -> Vec<Value> {
    setup.recorded("sync", "sync/pushProgress")
}

const PUSH_ANSWER: &str = r#"{"success": [], "failed": []}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_carry_what_the_manifest_asks_and_the_admin_allows() {
    let answers = json!({"sync/getUserInfo": {"externalId": "1", "username": "ann"},
                         "sync/pushProgress": serde_json::from_str::<Value>(PUSH_ANSWER).unwrap()});
    let cases = [
        (json!({}), json!({}), vec![]),
        (json!({"wantsFullMetadata": true}), json!({}), vec!["genres", "tags", "metadata"]),
        (
            json!({"wantsFullMetadata": true}),
            json!({"allowCustomMetadata": true, "sendGenres": false}),
            vec!["tags", "metadata", "customMetadata"],
        ),
        (json!({"wantsFullMetadata": true}), json!({"sendMetadata": false, "sendTags": false}), vec!["genres"]),
        (json!({"wantsDetailedProgress": true}), json!({}), vec!["readBooks"]),
    ];
    for (capabilities, codex, present) in cases {
        let mut capabilities = capabilities;
        capabilities["externalIdSource"] = json!("api:echo");
        let setup = recorder_setup(answers.clone(), capabilities.clone(), codex.clone()).await;
        let report = setup.integrations.sync("sync", "ann", SyncOptions::default()).await.unwrap();
        assert_eq!(report.error, None, "{report:?}");
        let requests = pushed_requests(&setup);
        assert_eq!(requests.len(), 1, "{capabilities} {codex}");
        let entry = &requests[0]["entries"][0];
        assert_eq!((entry["libraryId"].clone(), entry["libraryName"].clone()), (json!("manga"), json!("Manga")));
        for field in ["genres", "tags", "metadata", "customMetadata"] {
            assert_eq!(
                entry.get(field).is_some(),
                present.contains(&field),
                "{field} with {capabilities} {codex}: {entry}"
            );
        }
        let read_books = entry["progress"].get("readBooks");
        assert_eq!(read_books.is_some(), present.contains(&"readBooks"), "{entry}");
        if let Some(read_books) = read_books {
            assert_eq!(read_books.as_array().unwrap().len(), 2, "{entry}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_answering_nonsense_fails_the_sync_and_writes_nothing() {
    let wrong_types = json!({"sync/pullProgress": {"entries": "none", "hasMore": false},
                             "sync/pushProgress": serde_json::from_str::<Value>(PUSH_ANSWER).unwrap()});
    let setup = recorder_setup(wrong_types, json!({"externalIdSource": "api:echo"}), json!({})).await;
    setup.host.registry().connect_user("sync", "ann", Map::new()).unwrap();
    let report = setup.integrations.sync("sync", "ann", SyncOptions::default()).await.unwrap();
    assert!(report.error.as_deref().is_some_and(|error| error.contains("sync/pullProgress")), "{report:?}");
    assert_eq!(books_read(&setup), 1, "only what ann read herself");

    let strangers =
        json!({"sync/pushProgress": {"success": [{"externalId": "ghost", "status": "updated"}], "failed": []}});
    let setup = recorder_setup(strangers, json!({"externalIdSource": "api:echo"}), json!({})).await;
    let report = setup.integrations.sync("sync", "ann", SyncOptions::default()).await.unwrap();
    assert_eq!((report.error.as_deref(), report.pushed), (None, 0));
    assert!(report.notes.iter().any(|note| note.contains("never sent (ghost)")), "{:?}", report.notes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_pushed_by_title_count_under_the_id_the_plugin_found() {
    let answers = json!({"sync/pushProgress": {"success": [
        {"externalId": "series-00", "status": "updated"}, {"externalId": "found-akira", "status": "created"}
    ], "failed": []}});
    let setup = recorder_setup(answers, json!({"externalIdSource": "api:echo"}), json!({})).await;
    let config = json!({"syncMode": "push", "_codex": {"searchFallback": true}});
    setup.host.registry().connect_user("sync", "ann", config.as_object().cloned().unwrap()).unwrap();
    progress(&setup, "manga-akira-v01", true);
    let report = setup.integrations.sync("sync", "ann", SyncOptions::default()).await.unwrap();
    assert_eq!((report.error.as_deref(), report.pushed), (None, 2), "{report:?}");
    assert!(!report.notes.iter().any(|note| note.contains("never sent")), "{:?}", report.notes);
    let sent = pushed_requests(&setup);
    let titles: Vec<(&str, &str)> = sent[0]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| (entry["externalId"].as_str().unwrap(), entry["title"].as_str().unwrap()))
        .collect();
    assert_eq!(titles, [("series-00", "One Piece (Digital)"), ("", "Akira (Digital)")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_whose_lease_was_taken_keeps_no_result() {
    let answers = json!({"sync/pullProgress": {"entries": [], "hasMore": false}});
    let admin = json!({"answers": answers, "delays": {"sync/pullProgress": 800}});
    let setup = setup_with(recorder(), &sample(), admin, &["library:read"], json!({"syncMode": "pull"})).await;
    let running = {
        let integrations = setup.integrations.clone();
        tokio::spawn(async move { integrations.sync("sync", "ann", SyncOptions::default()).await })
    };
    while setup.integrations.sync_record("sync", "ann").unwrap().is_none_or(|record| record.held.is_none()) {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Another host takes the lease over (as if this one had stalled past it).
    let database = rusqlite::Connection::open(setup.host.database_path()).unwrap();
    database.execute("UPDATE sync_state SET holder = 'another-host'", []).unwrap();
    let error = running.await.unwrap().unwrap_err();
    assert!(error.to_string().contains("lost its lease"), "{error}");
    let record = setup.integrations.sync_record("sync", "ann").unwrap().unwrap();
    assert_eq!((record.last_result, record.last_success_at), (None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autosync_connections_sync_on_the_admins_schedule() {
    let admin = json!({"_codex": {"syncCronSchedule": "* * * * * *"}});
    let setup = echo_setup(Mode::Wasm, admin, json!({"_codex": {"autoSync": true}})).await;
    setup.connect("sync", "bo", json!({}), "t0ken-bo");
    // The manifest is known once the plugin started.
    setup.host.call("sync", Some("ann"), "ping", Value::Null).await.unwrap();
    let now = chrono::Utc::now();
    let started = setup.integrations.start_due_syncs(now - chrono::Duration::seconds(2), now).unwrap();
    assert_eq!(started, [("sync".to_owned(), "ann".to_owned())], "bo did not turn autoSync on");
    let none = setup.integrations.start_due_syncs(now, now).unwrap();
    assert!(none.is_empty(), "nothing falls due in an empty window");

    let _scheduler = setup.integrations.spawn_sync_scheduler(std::time::Duration::from_millis(300));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while setup.integrations.sync_record("sync", "ann").unwrap().and_then(|record| record.last_result).is_none() {
        assert!(std::time::Instant::now() < deadline, "no scheduled sync ran");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(setup.integrations.sync_record("sync", "bo").unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_users_setting_changes_what_is_pushed() {
    let answers = json!({"sync/pushProgress": serde_json::from_str::<Value>(PUSH_ANSWER).unwrap()});
    let rating = SeriesRating { series_id: "manga-one-piece".into(), rating: 70, notes: None, updated_at: 1 };
    // Ann read One Piece's first book of three and opened the second.
    let cases = [
        (json!({}), Some(1), true),
        (json!({"countPartialProgress": true}), Some(2), true),
        (json!({"syncRatings": false}), Some(1), false),
        (json!({"includeInProgress": false}), None, false),
    ];
    for (codex, volumes, rated) in cases {
        let setup = recorder_setup(answers.clone(), json!({"externalIdSource": "api:echo"}), json!({})).await;
        setup.library.save_rating("ann", &rating).unwrap();
        let config = json!({"syncMode": "push", "_codex": codex});
        setup.host.registry().connect_user("sync", "ann", config.as_object().cloned().unwrap()).unwrap();
        let report = setup.integrations.sync("sync", "ann", SyncOptions::default()).await.unwrap();
        assert_eq!(report.error, None, "{codex}: {report:?}");
        let sent = pushed_requests(&setup);
        let entry = sent.last().and_then(|push| push["entries"].get(0).cloned());
        assert_eq!(entry.as_ref().and_then(|entry| entry["progress"]["volumes"].as_i64()), volumes, "{codex}");
        if let Some(entry) = entry {
            assert_eq!(entry.get("score").is_some(), rated, "{codex}: {entry}");
        }
    }
    // Read to the end: pushed unless includeCompleted is off.
    for (codex, pushed) in [(json!({}), true), (json!({"includeCompleted": false}), false)] {
        let setup = recorder_setup(answers.clone(), json!({"externalIdSource": "api:echo"}), json!({})).await;
        progress(&setup, "manga-one-piece-v02", true);
        progress(&setup, "manga-one-piece-v03", true);
        let config = json!({"syncMode": "push", "_codex": codex});
        setup.host.registry().connect_user("sync", "ann", config.as_object().cloned().unwrap()).unwrap();
        setup.integrations.sync("sync", "ann", SyncOptions::default()).await.unwrap();
        let sent = pushed_requests(&setup);
        let entries = sent.last().map(|push| push["entries"].as_array().unwrap().len());
        assert_eq!(entries, Some(usize::from(pushed)), "{codex}");
    }
}
