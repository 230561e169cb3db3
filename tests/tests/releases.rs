//! Release sources end to end with `release-echo`, on both transports, against the sample
//! library with two series tracked: One Piece (both axes; it holds volumes 1-3) and Naruto
//! (chapters only); the sample library tracks a third.

use codex_plugin_host::library::LibraryPort;
use codex_plugin_host::release_tracking::{LedgerFilter, PollProgress, ReleaseEvent, ReleaseTracker, TrackerConfig};
use codex_plugin_host_tests::integrations::{IntegrationHost, Mode, example, sample_library};
use codex_plugin_host_tests::on_both_modes;
use serde_json::{Value, json};
use std::time::Duration;

const ONE_PIECE: &str = "manga-one-piece";
const NARUTO: &str = "manga-naruto";

fn host() -> (IntegrationHost, ReleaseTracker) {
    let host = IntegrationHost::new(&sample_library());
    for (id, volumes) in [(ONE_PIECE, true), (NARUTO, false)] {
        let mut series = host.library.series(id).unwrap();
        series.tracking.tracked = true;
        series.tracking.track_volumes = volumes;
        host.library.save_series(&series).unwrap();
    }
    let config = TrackerConfig { poll_timeout: Duration::from_secs(3), backoff_base: Duration::from_secs(60) };
    let tracker = ReleaseTracker::new(host.host.clone(), host.library.clone(), config).unwrap();
    (host, tracker)
}

async fn registered(tracker: &ReleaseTracker, plugin: &str, keys: &[&str]) {
    tracker.refresh_sources(plugin).await.unwrap();
    for _ in 0..100 {
        let found: Vec<String> =
            tracker.sources(Some(plugin)).unwrap().into_iter().map(|source| source.source_key).collect();
        if found == keys {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{plugin} did not register {keys:?}: {:?}", tracker.sources(Some(plugin)).unwrap());
}

fn states(tracker: &ReleaseTracker, series: &str) -> Vec<(String, String)> {
    let filter = LedgerFilter { series: Some(series.into()), limit: 100, ..LedgerFilter::default() };
    let mut rows: Vec<_> = tracker
        .ledger(&filter)
        .unwrap()
        .into_iter()
        .map(|entry| (entry.release.external_release_id.rsplit('/').next().unwrap().to_owned(), entry.state))
        .collect();
    rows.sort();
    rows
}

async fn a_poll_records_dedupes_ignores_and_advances(mode: Mode) {
    let (host, tracker) = host();
    // Two tracked series a page: the plugin follows `nextOffset` to the third.
    host.add("echo", example("release-echo", mode), json!({"pageSize": 2}), &[]);
    registered(&tracker, "echo", &["a", "b"]).await;
    let mut events = tracker.subscribe();
    let shown = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let heard = shown.clone();
    let progress = Box::new(move |progress: PollProgress| heard.lock().unwrap().push(progress));
    let first = tracker.poll("echo:a", Some(progress)).await.unwrap();
    let shown = shown.lock().unwrap().clone();
    let last = shown.last().expect("progress was shown");
    assert_eq!((last.current, last.total, last.message.as_deref()), (3, 3, Some("Polled 3/3 series")), "{shown:?}");
    assert_eq!(first.error, None, "{first:?}");
    // Three tracked series (the sample library tracks one already), four releases each.
    assert_eq!((first.counts.recorded, first.counts.deduped, first.counts.fetched), (12, 0, 12), "{first:?}");
    let pair = |what: &str, state: &str| (what.to_owned(), state.to_owned());
    assert_eq!(
        states(&tracker, ONE_PIECE),
        vec![
            pair("c1-en", "announced"),
            pair("c1-fr", "announced"),
            pair("c2-en", "announced"),
            pair("v1-en", "ignored")
        ],
        "volume 1 is in the library"
    );
    assert_eq!(states(&tracker, NARUTO)[3], pair("v1-en", "ignored"), "Naruto's volumes are not tracked");
    let one_piece = host.library.series(ONE_PIECE).unwrap().tracking;
    assert_eq!((one_piece.latest_chapter, one_piece.latest_volume), (Some(2.0), Some(1.0)));
    let naruto = host.library.series(NARUTO).unwrap().tracking;
    assert_eq!((naruto.latest_chapter, naruto.latest_volume), (Some(2.0), None));
    let mut announced = 0;
    while let Ok(event) = events.try_recv() {
        if let ReleaseEvent::ReleaseAnnounced { plugin_id, .. } = event {
            assert_eq!(plugin_id, "echo");
            announced += 1;
        }
    }
    assert_eq!((announced, first.counts.announced), (9, 9));
    let second = tracker.poll("echo:a", None).await.unwrap();
    assert_eq!((second.counts.recorded, second.counts.deduped), (0, 12), "{second:?}");
    let source = tracker.source("echo:a").unwrap();
    assert_eq!(source.state.etag.as_deref(), Some("e++"), "the etag went back to the plugin");
    assert_eq!(source.state.last_summary.as_deref(), Some("Fetched 12 items, recorded 0 (12 already in ledger)"));
    assert!(source.state.last_polled_at.is_some() && source.state.last_error.is_none());
}

async fn re_registration_replaces_the_set(mode: Mode) {
    let (host, tracker) = host();
    host.add("echo", example("release-echo", mode), json!({}), &[]);
    registered(&tracker, "echo", &["a", "b"]).await;
    let kept = tracker.source("echo:a").unwrap().id;
    tracker.poll("echo:b", None).await.unwrap();
    let config = json!({"sources": ["a", "c"]}).as_object().cloned().unwrap();
    host.host.configure("echo", config).await.unwrap();
    host.host.call("echo", None, "ping", Value::Null).await.unwrap();
    registered(&tracker, "echo", &["a", "c"]).await;
    assert_eq!(tracker.source("echo:a").unwrap().id, kept, "a source keeps its id");
    let gone = LedgerFilter { limit: 100, ..LedgerFilter::default() };
    assert!(tracker.ledger(&gone).unwrap().iter().all(|entry| !entry.release.external_release_id.starts_with("b/")));
}

async fn a_throttled_upstream_backs_off_alone(mode: Mode) {
    let (host, tracker) = host();
    host.add("echo", example("release-echo", mode), json!({"upstreamStatus": {"b": 429}}), &[]);
    registered(&tracker, "echo", &["a", "b"]).await;
    let throttled = tracker.poll("echo:b", None).await.unwrap();
    assert_eq!(throttled.upstream_status, Some(429));
    assert!(throttled.backoff_until.is_some(), "{throttled:?}");
    let source = tracker.source("echo:b").unwrap();
    assert_eq!(source.state.last_error.as_deref(), Some("upstream returned 429"));
    tracker.set_default_schedule("* * * * * *").unwrap();
    let (a, b) = (tracker.source("echo:a").unwrap().id, tracker.source("echo:b").unwrap().id);
    let now = chrono::Utc::now();
    let started = tracker.start_due_polls(now - chrono::Duration::seconds(2), now).unwrap();
    assert_eq!(started, vec![a.clone()], "only b's host waits");
    // Its wait (2 × the 60 s base) over, the deferred poll is made.
    let later = now + chrono::Duration::minutes(3);
    let started = tracker.start_due_polls(later, later).unwrap();
    assert_eq!(started, vec![b], "b's deferred poll, and nothing else fell due");
}

async fn bad_candidates_are_refused_and_the_rest_recorded(mode: Mode) {
    let (host, tracker) = host();
    let config = json!({"inlineCandidates": true, "untrackedSeries": "manga-berserk"});
    host.add("echo", example("release-echo", mode), config, &[]);
    registered(&tracker, "echo", &["a", "b"]).await;
    let report = tracker.poll("echo:a", None).await.unwrap();
    assert_eq!((report.counts.recorded, report.counts.rejected), (12, 2), "{report:?}");
    assert!(report.refused[0].contains("`payloadUrl`"), "refused by name: {:?}", report.refused);
    assert!(report.refused[1].contains("series `manga-berserk` is not tracked"), "{:?}", report.refused);
    assert!(states(&tracker, "manga-berserk").is_empty(), "Berserk is not tracked");
}

async fn another_plugins_sources_are_out_of_reach(mode: Mode) {
    let (host, tracker) = host();
    host.add("echo", example("release-echo", mode), json!({}), &[]);
    registered(&tracker, "echo", &["a", "b"]).await;
    let theirs = tracker.source("echo:a").unwrap().id;
    // The same program under another id: the same manifest name, "release-echo".
    host.add("intruder", example("release-echo", mode), json!({"probeSource": theirs}), &[]);
    registered(&tracker, "intruder", &["a", "b"]).await;
    assert_eq!(tracker.sources(Some("echo")).unwrap().len(), 2, "its own sources did not replace echo's");
    let probed = tracker.poll("intruder:a", None).await.unwrap();
    let error = probed.error.unwrap();
    assert!(error.contains("list=-32003 count=-32003 record=-32003 get=-32003 set=-32003"), "{error}");
    assert_eq!(tracker.source("echo:a").unwrap().state.etag, None, "its etag was not written");
    let theirs = LedgerFilter { source: Some(tracker.source("echo:a").unwrap().id), ..LedgerFilter::default() };
    assert!(tracker.ledger(&theirs).unwrap().is_empty(), "nothing was recorded on it");
}

async fn a_poll_that_never_answers_is_stopped(mode: Mode) {
    let (host, tracker) = host();
    host.add("echo", example("release-echo", mode), json!({"hang": true}), &[]);
    registered(&tracker, "echo", &["a", "b"]).await;
    let report = tracker.poll("echo:a", None).await.unwrap();
    let error = report.error.unwrap();
    assert!(
        error.starts_with("plugin call failed") && error.contains("did not answer `releases/poll` within 3 s"),
        "{error}"
    );
    assert_eq!(tracker.source("echo:a").unwrap().state.last_error, Some(error));
}

async fn the_scheduler_polls_sources_on_their_schedule(mode: Mode) {
    let (host, tracker) = host();
    host.add("echo", example("release-echo", mode), json!({"sources": ["a"]}), &[]);
    registered(&tracker, "echo", &["a"]).await;
    tracker.set_source_settings("echo:a", None, Some(Some("* * * * * *"))).unwrap();
    let mut events = tracker.subscribe();
    let _scheduler = tracker.spawn_scheduler(Duration::from_millis(200));
    let polled = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(ReleaseEvent::ReleaseSourcePolled { had_error, .. }) = events.recv().await {
                return had_error;
            }
        }
    });
    assert_eq!(polled.await, Ok(false), "a scheduled poll ran, every second");
    let summary = tracker.source("echo:a").unwrap().state.last_summary.unwrap();
    assert!(summary.starts_with("Fetched 12 items"), "{summary}");
    tracker.set_source_settings("echo:a", Some(false), None).unwrap();
    let disabled = tracker.poll("echo:a", None).await.unwrap_err();
    assert!(disabled.to_string().contains("is disabled"), "{disabled}");
}

/// A plugin whose manifest declares no release source (the test plugin, a metadata
/// provider) asks for every `releases/*` method while a tracker runs: -32601 each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_without_the_capability_is_refused_every_release_method() {
    let (host, tracker) = host();
    let launch = codex_plugin_host::registry::Launch::Process {
        command: "node".into(),
        args: vec![codex_plugin_host_tests::test_plugin()],
    };
    host.add("curious", launch, json!({}), &[]);
    let methods = codex_plugin_host::protocol::types::releases::RELEASE_HOST_METHODS;
    let query: Vec<String> = methods.iter().map(|method| format!("release:{method}")).collect();
    let found = host.host.call("curious", None, "metadata/series/search", json!({"query": query.join(";")})).await;
    let results = found.unwrap()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), methods.len());
    for (method, step) in methods.iter().zip(results) {
        let answer: Value = serde_json::from_str(step["title"].as_str().unwrap()).unwrap();
        assert_eq!(answer["error"]["code"], json!(-32601), "{method}: {answer}");
    }
    assert!(tracker.sources(Some("curious")).unwrap().is_empty());
}

async fn bad_registrations_are_refused_and_the_set_kept(mode: Mode) {
    let (host, tracker) = host();
    host.add("echo", example("release-echo", mode), json!({}), &[]);
    registered(&tracker, "echo", &["a", "b"]).await;
    let before = tracker.sources(Some("echo")).unwrap();
    let too_many: Vec<String> = (0..501).map(|n| format!("k{n}")).collect();
    for sources in [json!(["a", "k".repeat(10_000)]), json!(too_many)] {
        let config = json!({"sources": sources}).as_object().cloned().unwrap();
        host.host.configure("echo", config).await.unwrap();
        // The new instance's registration is refused; the plugin keeps running.
        tracker.refresh_sources("echo").await.unwrap();
        assert_eq!(tracker.sources(Some("echo")).unwrap(), before, "nothing lost");
    }
}

on_both_modes! {
    bad_registrations => bad_registrations_are_refused_and_the_set_kept;
    scheduler => the_scheduler_polls_sources_on_their_schedule;
    poll => a_poll_records_dedupes_ignores_and_advances;
    registration => re_registration_replaces_the_set;
    backoff => a_throttled_upstream_backs_off_alone;
    bad_candidates => bad_candidates_are_refused_and_the_rest_recorded;
    ownership => another_plugins_sources_are_out_of_reach;
    deadline => a_poll_that_never_answers_is_stopped;
}
