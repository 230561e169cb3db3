//! Codex's published release plugins (`@ashdev/codex-plugin-release-nyaa`, `-mangaupdates`
//! and `-tsundoku`, 2.5.0), unchanged, under `node` through our host, each against an
//! upstream of ours on loopback serving its feed format: registration, a poll recording
//! real candidates for tracked series, the ledger and the latest known chapter.
//!
//! The sample library tracks Frieren; One Piece (with the alias "One Piece", since its
//! name is "One Piece (Digital)") and Naruto are tracked here too.

use codex_plugin_host::library::{LibraryPort, StoredExternalId};
use codex_plugin_host::registry::{Launch, PluginDefinition};
use codex_plugin_host::release_tracking::{LedgerEntry, LedgerFilter, ReleaseTracker, TrackerConfig};
use codex_plugin_host_tests::feed_server::{FeedServer, Reply};
use codex_plugin_host_tests::integrations::{IntegrationHost, sample_library};
use codex_plugin_host_tests::release_plugin;
use serde_json::{Value, json};
use std::time::Duration;

const ONE_PIECE: &str = "manga-one-piece";
const NARUTO: &str = "manga-naruto";
const FRIEREN: &str = "manga-frieren";

fn host() -> (IntegrationHost, ReleaseTracker) {
    let host = IntegrationHost::new(&sample_library());
    let external = |id: &str| StoredExternalId { id: id.into(), url: None, hash: None };
    for id in [ONE_PIECE, NARUTO, FRIEREN] {
        let mut series = host.library.series(id).unwrap();
        series.tracking.tracked = true;
        match id {
            ONE_PIECE => {
                series.tracking.aliases = vec!["One Piece".into()];
                series.external_ids.insert("plugin:mangaupdates".into(), external("15180124327"));
            }
            FRIEREN => {
                series.external_ids.insert("plugin:mangabaka".into(), external("1234"));
            }
            _ => {}
        }
        host.library.save_series(&series).unwrap();
    }
    let tracker = ReleaseTracker::new(host.host.clone(), host.library.clone(), TrackerConfig::default()).unwrap();
    (host, tracker)
}

fn add(host: &IntegrationHost, id: &str, args: Vec<String>, admin: Value, env: &[(&str, &str)]) {
    let mut definition = PluginDefinition::new(Launch::Process { command: "node".into(), args });
    definition.admin_config = admin.as_object().cloned().unwrap();
    definition.env = env.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
    host.add_defined(id, definition, &[]);
}

async fn registered(tracker: &ReleaseTracker, plugin: &str) -> Vec<String> {
    tracker.refresh_sources(plugin).await.unwrap();
    for _ in 0..100 {
        let keys: Vec<String> =
            tracker.sources(Some(plugin)).unwrap().into_iter().map(|source| source.source_key).collect();
        if !keys.is_empty() {
            return keys;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{plugin} registered no source");
}

fn ledger(tracker: &ReleaseTracker, series: &str) -> Vec<LedgerEntry> {
    tracker.ledger(&LedgerFilter { series: Some(series.into()), limit: 100, ..LedgerFilter::default() }).unwrap()
}

const NYAA_FEED: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<rss xmlns:nyaa="https://nyaa.si/xmlns/nyaa" version="2.0">
  <channel>
    <title>Nyaa - "1r0n" - Torrent File RSS</title>
    <item>
      <title>[1r0n] One Piece - Chapter 1100 (Digital)</title>
      <link>{BASE}/download/1900001.torrent</link>
      <guid isPermaLink="true">{BASE}/view/1900001</guid>
      <pubDate>Mon, 30 Nov 2026 02:31:00 -0000</pubDate>
      <nyaa:infoHash>0123456789ABCDEF0123456789ABCDEF01234567</nyaa:infoHash>
    </item>
    <item>
      <title>[1r0n] Naruto v05 (Digital)</title>
      <link>{BASE}/download/1900002.torrent</link>
      <guid isPermaLink="true">{BASE}/view/1900002</guid>
      <pubDate>Mon, 30 Nov 2026 03:00:00 -0000</pubDate>
      <nyaa:infoHash>89abcdef0123456789abcdef0123456789abcdef</nyaa:infoHash>
    </item>
    <item>
      <title>[1r0n] Some Other Series c12</title>
      <link>{BASE}/download/1900003.torrent</link>
      <guid isPermaLink="true">{BASE}/view/1900003</guid>
    </item>
  </channel>
</rss>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nyaa_records_its_uploaders_releases_and_keeps_the_feeds_etag() {
    let upstream = FeedServer::start().await;
    let feed = NYAA_FEED.replace("{BASE}", &upstream.base_url);
    upstream.route("GET", "/?page=rss&u=1r0n", Reply::ok(feed).with_etag("\"nyaa-1\""));
    let (host, tracker) = host();
    let admin = json!({"uploaders": ["1r0n"], "baseUrl": upstream.base_url});
    add(&host, "nyaa", vec![release_plugin("release-nyaa")], admin, &[]);
    assert_eq!(registered(&tracker, "nyaa").await, ["user:1r0n"]);

    let report = tracker.poll("nyaa:user:1r0n", None).await.unwrap();
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!((report.counts.recorded, report.counts.fetched), (2, 3), "{report:?}");
    let one_piece = ledger(&tracker, ONE_PIECE);
    assert_eq!(one_piece.len(), 1);
    let release = &one_piece[0];
    assert_eq!((release.state.as_str(), release.chapter, release.language.as_str()), ("announced", Some(1100.0), "en"));
    assert_eq!(release.release.payload_url, format!("{}/view/1900001", upstream.base_url));
    assert_eq!(release.release.info_hash.as_deref(), Some("0123456789abcdef0123456789abcdef01234567"));
    assert_eq!(ledger(&tracker, NARUTO)[0].volume, Some(5));
    assert_eq!(host.library.series(ONE_PIECE).unwrap().tracking.latest_chapter, Some(1100.0));
    assert_eq!(host.library.series(NARUTO).unwrap().tracking.latest_volume, Some(5.0));

    let again = tracker.poll("nyaa:user:1r0n", None).await.unwrap();
    assert_eq!(again.summary, "Up to date — upstream returned 304 (not modified)", "{again:?}");
    let requests = upstream.seen();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].headers.get("if-none-match").map(String::as_str), Some("\"nyaa-1\""), "the etag went back");
    assert_eq!(tracker.source("nyaa:user:1r0n").unwrap().state.etag.as_deref(), Some("\"nyaa-1\""));
}

const MANGAUPDATES_FEED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
  <channel>
    <title>One Piece - MangaUpdates</title>
    <link>https://www.mangaupdates.com/series/6z1uqw7/one-piece</link>
    <item><title>One Piece c.1101</title><description>Some Scans</description></item>
    <item><title>One Piece v.108 c.1100.5</title><description>Other Group</description></item>
    <item><title>One Piece</title><description>no numbers: dropped</description></item>
  </channel>
</rss>"#;

/// The MangaUpdates plugin calls `https://api.mangaupdates.com` with no setting to change
/// it; a fetch wrapper loaded before it (`node --import`) sends those calls to loopback.
/// The plugin's own code is the published one.
fn redirect_shim(dir: &std::path::Path) -> String {
    let path = dir.join("mangaupdates-to-loopback.mjs");
    std::fs::write(
        &path,
        "const target = process.env.MU_REDIRECT_TO;\n\
         const fetchUpstream = globalThis.fetch;\n\
         globalThis.fetch = (input, init) => {\n\
           const url = typeof input === 'string' ? input : input.url;\n\
           return fetchUpstream(url.replace('https://api.mangaupdates.com', target), init);\n\
         };\n",
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mangaupdates_records_a_tracked_series_releases_by_its_id() {
    let upstream = FeedServer::start().await;
    upstream.route("GET", "/v1/series/15180124327/rss", Reply::ok(MANGAUPDATES_FEED));
    let (host, tracker) = host();
    // In a folder of its own: the host's folder holds the vault key, which no plugin may see.
    let shim_dir = tempfile::tempdir().unwrap();
    let shim = redirect_shim(shim_dir.path());
    let args = vec!["--import".into(), shim, release_plugin("release-mangaupdates")];
    add(&host, "mangaupdates", args, json!({}), &[("MU_REDIRECT_TO", &upstream.base_url)]);
    assert_eq!(registered(&tracker, "mangaupdates").await, ["default"]);

    let report = tracker.poll("mangaupdates:default", None).await.unwrap();
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!(report.counts.recorded, 2, "{report:?}");
    let mut chapters: Vec<_> = ledger(&tracker, ONE_PIECE).iter().map(|entry| (entry.chapter, entry.volume)).collect();
    chapters.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    assert_eq!(chapters, [(Some(1100.5), Some(108)), (Some(1101.0), None)]);
    let tracking = host.library.series(ONE_PIECE).unwrap().tracking;
    assert_eq!((tracking.latest_chapter, tracking.latest_volume), (Some(1101.0), Some(108.0)));
    assert_eq!(upstream.seen().len(), 1, "only One Piece has a MangaUpdates id");

    upstream.route("GET", "/v1/series/15180124327/rss", Reply::status(503));
    let throttled = tracker.poll("mangaupdates:default", None).await.unwrap();
    assert_eq!(throttled.upstream_status, Some(503));
    assert!(throttled.backoff_until.is_some(), "{throttled:?}");
    let state = tracker.source("mangaupdates:default").unwrap().state;
    assert_eq!(state.last_error.as_deref(), Some("upstream returned 503"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsundoku_records_coverage_matched_by_external_ids() {
    let upstream = FeedServer::start().await;
    let feed = json!({"items": [{
        "seriesId": 42, "canonicalTitle": "Frieren",
        "externalIds": [{"provider": "mangabaka", "externalId": "1234", "fetchedAt": 1777800000}],
        "volumeCoverage": [{"start": 1, "end": 13}], "chapterCoverage": [{"start": 1, "end": 140}],
        "highestVolume": 13, "highestChapter": 140, "updatedAt": 1777860000
    }], "hasMore": false});
    upstream.route("POST", "/api/v1/series/feed", Reply::ok(feed.to_string()));
    let (host, tracker) = host();
    add(&host, "tsundoku", vec![release_plugin("release-tsundoku")], json!({"baseUrl": upstream.base_url}), &[]);
    assert_eq!(registered(&tracker, "tsundoku").await, ["default"]);

    let report = tracker.poll("tsundoku:default", None).await.unwrap();
    assert_eq!((report.error.as_deref(), report.counts.recorded), (None, 1), "{report:?}");
    let frieren = ledger(&tracker, FRIEREN);
    assert_eq!(frieren[0].release.external_release_id, "tsundoku:42:v13:c140");
    assert_eq!(
        (frieren[0].state.as_str(), frieren[0].chapter, frieren[0].volume),
        ("announced", Some(140.0), Some(13))
    );
    let tracking = host.library.series(FRIEREN).unwrap().tracking;
    assert_eq!((tracking.latest_chapter, tracking.latest_volume), (Some(140.0), Some(13.0)));
    let asked: Value = serde_json::from_str(&upstream.seen()[0].body).unwrap();
    assert_eq!(
        asked["externalIds"],
        json!(["mangabaka:1234", "mangaupdates:15180124327"]),
        "the tracked series' ids it matches by, from list_tracked"
    );

    let again = tracker.poll("tsundoku:default", None).await.unwrap();
    assert_eq!((again.counts.recorded, again.counts.deduped), (0, 1), "{again:?}");
    upstream.route("POST", "/api/v1/series/feed", Reply::status(429));
    let throttled = tracker.poll("tsundoku:default", None).await.unwrap();
    let error = throttled.error.clone().unwrap();
    assert!(error.contains("feed fetch failed (status 429)"), "{error}");
    assert!(throttled.backoff_until.is_some(), "the 429 in its error backs its host off: {throttled:?}");
    assert_eq!(tracker.source("tsundoku:default").unwrap().state.last_error, Some(error));
}
