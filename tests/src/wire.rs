//! One exchange per method, with integers, fractions, fields the host does not know and
//! nested objects in both directions, and the check that nothing was changed on the way:
//! run by a Node plugin (`tests/plugins/wire-recorder.mjs`) and by a Rust one
//! (`guest-examples/wire-echo`) on both transports. Both record every line they receive to
//! `requests.jsonl` in their data directory and answer what the admin config's `answers`
//! hold. Values are compared parsed, where `1` and `1.0` differ.

use serde_json::{Map, Value, json};
use std::path::Path;

use codex_plugin_host::plugin::Plugin;
use codex_plugin_host::protocol::types::initialize::InitializeParams;

/// What the recorders write each line they receive to, in their data directory.
pub const RECORD_FILE: &str = "requests.jsonl";

/// One method: what the caller sends, what must reach the plugin, what the plugin answers
/// (and so what the caller must get back).
pub struct Exchange {
    pub method: &'static str,
    pub params: Value,
    pub arrives_as: Value,
    pub answer: Value,
}

impl Exchange {
    fn unchanged(method: &'static str, params: Value, answer: Value) -> Self {
        Self { method, arrives_as: params.clone(), params, answer }
    }
}

/// Who writes the answers: a Node plugin cannot write a whole float (`2.0` becomes `2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    Node,
    Rust,
}

/// Every host → plugin method but the lifecycle's `initialize` and `shutdown`. Only a Rust
/// plugin's answers hold whole floats (`2.0`).
pub fn exchanges(writer: Writer) -> Vec<Exchange> {
    let mut user = json!({"externalId": "u1", "username": "reader", "avatarUrl": "https://example.test/a.png", "stats": {"count": 12}});
    if writer == Writer::Rust {
        user["stats"]["weight"] = json!(2.0);
    }
    vec![
        Exchange { method: "ping", params: Value::Null, arrives_as: Value::Null, answer: json!("pong") },
        Exchange::unchanged(
            "metadata/series/search",
            json!({"query": "dune", "limit": 5, "cursor": "c1", "region": "eu", "weights": {"title": 2.0, "year": 0.5}}),
            json!({"results": [{
                "externalId": "s1", "title": "Dune", "alternateTitles": [], "year": 1965, "relevanceScore": 0.75,
                "preview": {"genres": ["SF"], "bookCount": 6, "rating": 88}, "sourceRank": 1,
            }], "nextCursor": "c2", "total": 40}),
        ),
        Exchange::unchanged(
            "metadata/series/get",
            json!({"externalId": "s1", "locale": "en"}),
            json!({
                "externalId": "s1", "externalUrl": "https://example.test/s1", "title": "Dune",
                "totalVolumeCount": 6, "totalChapterCount": 48, "ageRating": 13, "totalBookCount": 6,
                "ratings": [{"score": 88, "voteCount": 1200, "source": "example"}], "extra": {"nested": [1, 2.5]},
            }),
        ),
        Exchange::unchanged(
            "metadata/series/match",
            json!({"title": "Dune", "year": 1965, "author": "Herbert", "confidenceFloor": 0.5}),
            json!({
                "match": {"externalId": "s1", "title": "Dune", "alternateTitles": [], "year": 1965},
                "confidence": 1, "alternatives": [], "reasoning": "title",
            }),
        ),
        Exchange::unchanged(
            "metadata/book/search",
            json!({"isbn": "9780441013593", "query": "dune", "author": "Herbert", "year": 1965, "limit": 3, "format": "epub"}),
            json!({"results": [{"externalId": "b1", "title": "Dune", "alternateTitles": [], "year": 1965}]}),
        ),
        Exchange::unchanged(
            "metadata/book/get",
            json!({"externalId": "b1"}),
            json!({
                "externalId": "b1", "externalUrl": "https://example.test/b1", "title": "Dune", "pageCount": 412,
                "year": 1965, "volume": 1, "unknown": {"a": [1, {"b": 2}]},
            }),
        ),
        Exchange::unchanged(
            "metadata/book/match",
            json!({"title": "Dune", "authors": ["Frank Herbert"], "isbn": "9780441013593", "year": 1965, "publisher": "Ace", "edition": 2}),
            json!({"match": null, "confidence": 0, "alternatives": []}),
        ),
        Exchange::unchanged("sync/getUserInfo", json!({}), user),
        Exchange::unchanged(
            "sync/pushProgress",
            json!({"entries": [{
                "externalId": "s1", "status": "reading",
                "progress": {
                    "chapters": 12, "volumes": 2, "pages": 300, "totalChapters": 48, "totalVolumes": 6,
                    "maxVolume": 2, "maxChapter": 12.5,
                    "readBooks": [{"volume": 1, "chapter": 6.5, "completed": true, "currentPage": 210, "progressPercentage": 100.0}],
                },
                "score": 85, "startedAt": "2026-01-01T00:00:00Z", "latestUpdatedAt": "2026-02-01T00:00:00Z",
                "title": "Dune", "libraryId": "lib-1", "libraryName": "Novels", "genres": ["SF"], "tags": ["Desert"],
                "metadata": {
                    "summary": "Spice", "publisher": "Ace", "authors": [{"name": "Frank Herbert", "role": "writer"}],
                    "ageRating": 13, "language": "en", "readingDirection": "ltr",
                },
                "customMetadata": {"shelf": 3, "weight": 1.5},
            }]}),
            json!({"success": [{"externalId": "s1", "status": "updated", "remoteRevision": 7}], "failed": []}),
        ),
        Exchange::unchanged(
            "sync/pullProgress",
            json!({"limit": 500}),
            json!({"entries": [{
                "externalId": "s1", "status": "completed", "score": 90, "extra": 1,
                "progress": {"chapters": 48, "volumes": 6, "totalChapters": 48, "totalVolumes": 6, "maxVolume": 6,
                             "readBooks": [{"volume": 1, "completed": true}]},
            }], "hasMore": false, "nextCursor": "n"}),
        ),
        Exchange::unchanged(
            "sync/status",
            json!({}),
            json!({"lastSyncAt": "2026-02-01T00:00:00Z", "externalCount": 12, "pendingPush": 0, "pendingPull": 1, "conflicts": 0}),
        ),
        recommendations(),
        Exchange::unchanged(
            "recommendations/dismiss",
            json!({"externalId": "r1", "reason": "not_interested", "note": "seen"}),
            json!({"dismissed": true}),
        ),
        Exchange::unchanged("recommendations/clear", json!({}), json!({"cleared": true, "count": 3})),
        Exchange::unchanged(
            "recommendations/updateProfile",
            json!({"entries": [{"seriesId": "s1", "weight": 2.0}]}),
            json!({"updated": true, "entriesProcessed": 1}),
        ),
        Exchange::unchanged(
            "releases/poll",
            json!({"sourceId": "src-1", "sourceKey": "nyaa:tsuna69", "config": {"uploader": "tsuna69", "minSeeders": 2.5},
                   "etag": "W/\"abc\"", "extra": 1}),
            json!({"candidates": [{
                "seriesMatch": {"codexSeriesId": "s1", "confidence": 0.92, "reason": "alias-exact"},
                "externalReleaseId": "rel-123", "chapters": [{"start": 143, "end": 143.5}], "language": "en",
                "formatHints": {"jxl": true}, "payloadUrl": "https://nyaa.example/view/1",
                "mediaUrl": "magnet:?xt=urn:btih:deadbeef", "mediaUrlKind": "magnet", "observedAt": "2026-12-02T10:00:00Z",
                "seeders": 12
            }], "etag": "W/\"abd\"", "notModified": false, "upstreamStatus": 200, "parsed": 40, "matched": 2,
               "recorded": 1, "deduped": 1}),
        ),
    ]
}

/// `recommendations/get`, where the host adds the required arrays the caller left out.
fn recommendations() -> Exchange {
    let entry = json!({
        "seriesId": "s1", "libraryId": "lib-1", "libraryName": "Novels", "title": "Dune", "year": 1965,
        "status": "ended", "totalVolumeCount": 6, "totalChapterCount": 48.5, "readingStatus": "completed",
        "externalIds": [{"source": "wire", "externalId": "w1", "externalUrl": "https://example.test/w1"}],
        "booksRead": 6, "booksOwned": 6, "userRating": 90, "metadata": {"summary": "Spice", "ageRating": 13},
        "customMetadata": {"shelf": 3},
    });
    let mut arrives = entry.clone();
    for array in ["alternateTitles", "genres", "tags"] {
        arrives[array] = json!([]);
    }
    Exchange {
        method: "recommendations/get",
        params: json!({"library": [entry], "limit": 10}),
        arrives_as: json!({"library": [arrives], "limit": 10, "excludeIds": []}),
        answer: json!({"recommendations": [{
            "externalId": "r1", "title": "Hyperion", "score": 0.9, "reason": "Because you read Dune",
            "rating": 85, "popularity": 1200, "tags": [{"name": "Space", "rank": 90, "category": "theme"}],
            "basedOn": ["s1"], "startYear": 1989,
        }], "cached": false, "generatedAt": "2026-02-01T00:00:00Z"}),
    }
}

/// The admin config the recorders start with: their answers, and numbers of both kinds.
pub fn admin_config(writer: Writer) -> Map<String, Value> {
    let answers: Map<String, Value> =
        exchanges(writer).into_iter().map(|exchange| (exchange.method.to_owned(), exchange.answer)).collect();
    let config = json!({"answers": answers, "maxResults": 5, "ratio": 0.25, "scale": 2.0});
    config.as_object().cloned().unwrap_or_default()
}

/// The user config: the host-only `_codex` namespace must not reach the plugin.
pub fn user_config() -> Map<String, Value> {
    json!({"_codex": {"syncRatings": false}, "pageSize": 10, "weight": 1.0}).as_object().cloned().unwrap_or_default()
}

/// The recorders' `initialize` params, with their data directory.
pub fn initialize(data_dir: Option<String>, writer: Writer) -> InitializeParams {
    let mut params = InitializeParams::new(admin_config(writer), user_config(), Default::default());
    params.data_dir = data_dir;
    params
}

/// Sends every exchange to a started recorder and checks each answer came back as
/// written; then shuts it down and checks every request arrived as sent.
pub async fn check_the_wire(plugin: Plugin, record: &Path, writer: Writer) {
    for exchange in exchanges(writer) {
        let result = plugin.call_raw(exchange.method, exchange.params.clone(), None).await;
        let result = result.unwrap_or_else(|error| panic!("{}: {error}", exchange.method));
        assert_eq!(result, exchange.answer, "{}: the answer came back changed", exchange.method);
    }
    plugin.shutdown().await;

    let text = std::fs::read_to_string(record).unwrap_or_else(|error| panic!("{}: {error}", record.display()));
    let requests: Vec<Value> =
        text.lines().map(|line| serde_json::from_str(line).expect("each recorded line is JSON")).collect();
    let methods: Vec<&str> = requests.iter().map(|request| request["method"].as_str().unwrap_or("?")).collect();
    let mut expected = vec!["initialize"];
    expected.extend(exchanges(writer).iter().map(|exchange| exchange.method));
    expected.push("shutdown");
    assert_eq!(methods, expected, "every request arrives once, in order");

    let initialize = &requests[0]["params"];
    assert_eq!(initialize["adminConfig"], Value::Object(admin_config(writer)));
    assert_eq!(initialize["userConfig"], json!({"pageSize": 10, "weight": 1.0}));
    assert_eq!(initialize["config"]["weight"], json!(1.0));
    for (request, exchange) in requests[1..].iter().zip(exchanges(writer)) {
        let arrived = request.get("params").cloned().unwrap_or(Value::Null);
        assert_eq!(arrived, exchange.arrives_as, "{}: the params arrived changed", exchange.method);
    }
    assert_eq!(requests.last().and_then(|request| request.get("params")), None, "shutdown sends no params");
}
