//! `release-echo`: a release source that announces deterministic releases of the series
//! the host tracks.
//!
//! It shows the release surface of the SDK: when initialized it registers its sources
//! (`releases/register_sources`, its whole set); each `releases/poll` reads the source's
//! state (`releases/source_state/get`: the etag the host sent must be the one it keeps),
//! counts and lists every tracked series page by page, records releases one by one with
//! `releases/record` and reports progress after each series, then keeps a new etag (the
//! old one with `+` added; `releases/source_state/set`) and answers with it and its
//! counters.
//!
//! For tracked series `s`, source `k` announces, in English: chapters 1 to `chapters`
//! (default 2) and volume 1; and chapter 1 in French. Release ids are
//! `<k>/<s>/<what>-<language>`, so a second poll records nothing new.
//!
//! The admin config shapes it, for tests:
//! - `sources`: the source keys it registers (default `["a", "b"]`); source `k` is kind
//!   `rss-uploader` (`a`) or `api-feed` (others), its config `{"url": "https://k.example/feed"}`;
//! - `chapters`: how many chapters it announces per series;
//! - `pageSize`: how many tracked series it asks for at once (default 200);
//! - `upstreamStatus`: `{key: status}`: that source's upstream answers with it (429, 503,
//!   304) and nothing is recorded;
//! - `inlineCandidates`: `true`: the releases come back in the poll's answer instead of
//!   being recorded one by one, with one more candidate that has no `payloadUrl`, and one
//!   for the series `untrackedSeries` names, if it does;
//! - `probeSource`: a source id it then asks the host about in every way (list, count,
//!   record, state get and set) as if it were its own: the poll fails, saying how each
//!   was answered (`list=-32003 …`);
//! - `hang`: `true`: a poll never answers.
//!
//! ```sh
//! cargo build -p release-echo
//! codex-plugin-host plugin add echo-releases --plugins-dir target -- target/debug/release-echo
//! codex-plugin-host releases sources --plugin echo-releases
//! ```

use codex_plugin_sdk::manifest::ReleaseSourceCapability;
use codex_plugin_sdk::prelude::*;
use codex_plugin_sdk::types::releases::{
    NumericSpan, ReleaseCandidate, SeriesMatch, SourceRegistration, TrackedSeries,
};
use serde_json::{Value, json};
use std::process::ExitCode;

struct Echo;

fn keys(ctx: &Context) -> Vec<String> {
    match ctx.admin_config().get("sources").and_then(Value::as_array) {
        Some(keys) => keys.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        None => vec!["a".into(), "b".into()],
    }
}

fn release(
    source_key: &str,
    series: &TrackedSeries,
    what: &str,
    language: &str,
    span: NumericSpan,
) -> ReleaseCandidate {
    let id = format!("{source_key}/{}/{what}-{language}", series.series_id);
    let volume = what.starts_with('v');
    ReleaseCandidate {
        series_match: SeriesMatch {
            codex_series_id: series.series_id.clone(),
            confidence: 0.9,
            reason: "alias-exact".into(),
        },
        external_release_id: id.clone(),
        volumes: volume.then(|| vec![span]),
        chapters: (!volume).then(|| vec![span]),
        language: language.into(),
        format_hints: None,
        group_or_uploader: Some("echo".into()),
        payload_url: format!("https://{source_key}.example/{id}"),
        media_url: None,
        media_url_kind: None,
        info_hash: None,
        metadata: None,
        observed_at: "2026-01-01T00:00:00Z".into(),
        released_at: None,
    }
}

fn releases_of(ctx: &Context, source_key: &str, series: &TrackedSeries) -> Vec<ReleaseCandidate> {
    let chapters = ctx.admin_integer("chapters").unwrap_or(2).max(0);
    let one = |n: f64| NumericSpan { start: n, end: n };
    let mut releases: Vec<_> =
        (1..=chapters).map(|n| release(source_key, series, &format!("c{n}"), "en", one(n as f64))).collect();
    releases.push(release(source_key, series, "v1", "en", one(1.0)));
    releases.push(release(source_key, series, "c1", "fr", one(1.0)));
    releases
}

/// Asks the host about another plugin's source in every way, and says how each was answered:
/// `name=code` for a refusal, `name=ok` for an answer.
async fn probe(host: &codex_plugin_sdk::Releases, source: &str) -> String {
    let said = |name: &str, outcome: std::result::Result<(), codex_plugin_sdk::HostError>| match outcome {
        Ok(()) => format!("{name}=ok"),
        Err(codex_plugin_sdk::HostError::Refused(error)) => format!("{name}={}", error.code),
        Err(other) => format!("{name}={other}"),
    };
    let series = TrackedSeries {
        series_id: "manga-naruto".into(),
        aliases: None,
        external_ids: None,
        latest_known_chapter: None,
        latest_known_volume: None,
    };
    let candidate = release("probe", &series, "c1", "en", NumericSpan { start: 1.0, end: 1.0 });
    [
        said("list", host.list_tracked(source, 0, 10).await.map(drop)),
        said("count", host.count_tracked(source).await.map(drop)),
        said("record", host.record(source, &candidate).await.map(drop)),
        said("get", host.source_state(source).await.map(drop)),
        said("set", host.set_etag(source, "mine").await),
    ]
    .join(" ")
}

fn host_error(what: &str, error: impl std::fmt::Display) -> PluginError {
    PluginError::Api { message: format!("{what}: {error}"), status_code: None }
}

impl ReleaseProvider for Echo {
    fn capability(&self) -> ReleaseSourceCapability {
        serde_json::from_value(json!({
            "kinds": ["rss-uploader", "api-feed"],
            "requiresAliases": true,
            "requiresExternalIds": ["mangaupdates"]
        }))
        .expect("a release source capability")
    }

    fn sources(&self, ctx: &Context) -> Option<Vec<SourceRegistration>> {
        let registration = |key: String| SourceRegistration {
            display_name: format!("Echo feed {key}"),
            kind: if key == "a" { "rss-uploader".into() } else { "api-feed".into() },
            config: Some(json!({"url": format!("https://{key}.example/feed")})),
            source_key: key,
        };
        Some(keys(ctx).into_iter().map(registration).collect())
    }

    async fn poll(&self, ctx: &Context, params: PollParams) -> Result<PollResponse> {
        let config = ctx.admin_config();
        if config.get("hang").and_then(Value::as_bool) == Some(true) {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        let host = ctx.releases();
        if let Some(other) = config.get("probeSource").and_then(Value::as_str) {
            return Err(host_error("probe", probe(host, other).await));
        }
        let source_key = params.source_key.clone().unwrap_or_default();
        let state = host.source_state(&params.source_id).await.map_err(|error| host_error("source state", error))?;
        if state.etag != params.etag {
            return Err(host_error("etag", format!("sent {:?}, kept {:?}", params.etag, state.etag)));
        }
        let etag = format!("{}+", params.etag.unwrap_or_else(|| "e".into()));
        let status =
            config.get("upstreamStatus").and_then(|statuses| statuses.get(&source_key)).and_then(Value::as_u64);
        if let Some(status) = status {
            return Ok(PollResponse {
                not_modified: Some(status == 304),
                upstream_status: Some(status as u16),
                ..PollResponse::default()
            });
        }
        let total = host.count_tracked(&params.source_id).await.map_err(|error| host_error("count", error))?;
        let page_size = ctx.admin_integer("pageSize").unwrap_or(200).clamp(1, 1000) as u32;
        let inline = config.get("inlineCandidates").and_then(Value::as_bool) == Some(true);
        let (mut seen, mut parsed, mut recorded, mut deduped, mut candidates) = (0, 0, 0, 0, Vec::new());
        let mut offset = Some(0);
        while let Some(from) = offset {
            let page = host.list_tracked(&params.source_id, from, page_size).await;
            let page = page.map_err(|error| host_error("list", error))?;
            for series in &page.tracked {
                for candidate in releases_of(ctx, &source_key, series) {
                    parsed += 1;
                    if inline {
                        candidates.push(serde_json::to_value(&candidate).expect("a candidate serializes"));
                        continue;
                    }
                    match host.record(&params.source_id, &candidate).await {
                        Ok(answer) if answer.deduped => deduped += 1,
                        Ok(_) => recorded += 1,
                        Err(error) => {
                            ctx.log().warn(format!("record failed for {}: {error}", candidate.external_release_id))
                        }
                    }
                }
                seen += 1;
                let _ =
                    host.report_progress(seen, total.max(seen), Some(format!("Polled {seen}/{total} series"))).await;
            }
            offset = page.next_offset.filter(|_| !page.tracked.is_empty());
        }
        if inline {
            candidates.push(json!({"seriesMatch": {"codexSeriesId": "x", "confidence": 1, "reason": "bad"},
                "externalReleaseId": "no-payload", "language": "en", "observedAt": "2026-01-01T00:00:00Z"}));
            if let Some(untracked) = config.get("untrackedSeries").and_then(Value::as_str) {
                let series = TrackedSeries {
                    series_id: untracked.to_owned(),
                    aliases: None,
                    external_ids: None,
                    latest_known_chapter: None,
                    latest_known_volume: None,
                };
                let candidate = release(&source_key, &series, "c1", "en", NumericSpan { start: 1.0, end: 1.0 });
                candidates.push(serde_json::to_value(candidate).expect("a candidate serializes"));
            }
        }
        host.set_etag(&params.source_id, &etag).await.map_err(|error| host_error("set etag", error))?;
        Ok(PollResponse {
            candidates,
            etag: Some(etag),
            not_modified: Some(false),
            upstream_status: Some(200),
            parsed: Some(parsed),
            matched: Some(parsed),
            recorded: Some(recorded),
            deduped: Some(deduped),
        })
    }
}

fn main() -> ExitCode {
    Plugin::new(PluginInfo::new("release-echo", "Release Echo", "1.0.0", "Deterministic releases of tracked series"))
        .releases(Echo)
        .run()
}
