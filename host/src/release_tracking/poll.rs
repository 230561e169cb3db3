//! One poll of one source: `releases/poll` under its own deadline, the candidates it
//! answers recorded as `releases/record` records them, its upstream's status fed to the
//! backoff, and the source's state written (its etag, summary and last error).

use codex_plugin_protocol::types::releases::{PollParams, PollResponse};
use serde::Serialize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::record::{Recorded, Refused};
use super::store::ReleaseSource;
use super::{Inner, ReleaseError, ReleaseEvent, ReleaseTracker, now_micros, rfc3339_utc};
use crate::plugin::PluginError;
use crate::protocol::ErrorCode;
use crate::releases::backoff::{UpstreamAnswer, upstream_host};
use crate::releases::{PollCounts, check_etag, summary_line};

/// Progress a plugin reports while it polls (`releases/report_progress`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PollProgress {
    pub current: u64,
    pub total: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Progress closer than this to the last shown is dropped, unless it is the last (Codex:
/// `MIN_PROGRESS_EMIT_INTERVAL`).
pub const MIN_PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

type ProgressCallback = Box<dyn Fn(PollProgress) + Send + Sync>;

/// A poll in progress: what its plugin recorded for it, and who watches its progress.
pub(super) struct ActivePoll {
    source_id: String,
    counts: Mutex<PollCounts>,
    /// Why candidates were refused, the first [`MAX_REFUSALS`].
    refusals: Mutex<Vec<String>>,
    last_shown: Mutex<Option<Instant>>,
    on_progress: Option<ProgressCallback>,
}

/// How many refusals a poll's report names.
pub const MAX_REFUSALS: usize = 10;

impl ActivePoll {
    /// Shows the progress unless the last was under [`MIN_PROGRESS_INTERVAL`] ago and
    /// this is not the end; says whether it was shown.
    pub fn report(&self, current: u64, total: u64, message: Option<String>) -> bool {
        let mut last = self.last_shown.lock().unwrap_or_else(PoisonError::into_inner);
        let last_one = total > 0 && current >= total;
        if !last_one && last.is_some_and(|at| at.elapsed() < MIN_PROGRESS_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        if let Some(callback) = &self.on_progress {
            callback(PollProgress { current, total, message });
        }
        true
    }

    fn count(&self, change: impl FnOnce(&mut PollCounts)) {
        change(&mut self.counts.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn refused(&self, why: &str) {
        self.count(|counts| counts.rejected += 1);
        let mut refusals = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        if refusals.len() < MAX_REFUSALS {
            refusals.push(why.to_owned());
        }
    }
}

/// Keeps a poll in its plugin's list while it runs, and takes it out however it ends.
struct Listed<'a> {
    inner: &'a Inner,
    plugin: String,
    poll: Arc<ActivePoll>,
}

impl Drop for Listed<'_> {
    fn drop(&mut self) {
        let mut progress = self.inner.running.progress.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(polls) = progress.get_mut(&self.plugin) {
            polls.retain(|other| !Arc::ptr_eq(other, &self.poll));
            if polls.is_empty() {
                progress.remove(&self.plugin);
            }
        }
    }
}

/// What a poll did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PollReport {
    pub source_id: String,
    pub plugin: String,
    pub display_name: String,
    pub counts: PollCounts,
    /// The source's summary line, as `releases sources` shows it.
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    /// Why the poll failed, or was not made (the source's `last_error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Until when the source's upstream host is left alone after this poll (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_until: Option<String>,
    /// Why candidates were refused (the first ten).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
}

impl ReleaseTracker {
    /// Polls a source now (by id or `plugin:key`), even while its upstream host backs off
    /// (an admin asked); a poll of it already running is joined. `on_progress` hears the
    /// plugin's `releases/report_progress`.
    pub async fn poll(
        &self,
        source: &str,
        on_progress: Option<Box<dyn Fn(PollProgress) + Send + Sync>>,
    ) -> Result<PollReport, ReleaseError> {
        let (this, name) = (self.clone(), source.to_owned());
        let found = tokio::task::spawn_blocking(move || this.source(&name)).await;
        let source = found.map_err(|error| ReleaseError::Store(format!("a records task stopped: {error}")))??;
        if !source.enabled {
            return Err(ReleaseError::Invalid(format!(
                "source `{}` is disabled; `releases enable {}` enables it",
                source.id, source.id
            )));
        }
        let key = (source.plugin.clone(), source.id.clone());
        let inner = self.inner.clone();
        let running = self.inner.running.polls.join_or_start(key, move || {
            Ok::<_, ReleaseError>(async move { Ok(inner.poll(source, on_progress).await) })
        })?;
        match running.await {
            Ok(report) => Ok(report.as_ref().clone()),
            Err(why) => Err(ReleaseError::Joined(why.to_string())),
        }
    }
}

/// The key a source's upstream backs off under: its plugin's, and its host (a plugin's
/// throttled upstream never holds back another plugin's sources).
pub(super) fn backoff_key(source: &ReleaseSource) -> String {
    format!("{}@{}", source.plugin, upstream_host(source.config.as_ref(), &source.plugin))
}

/// The upstream's throttle in a plugin's error: RATE_LIMITED (with its
/// `retryAfterSeconds`), or a status 429 or 503 named in its message (Tsundoku answers a
/// throttled first page with -32603 "feed fetch failed (status 429): …").
fn throttle_in(error: &PluginError) -> Option<UpstreamAnswer> {
    let PluginError::Answered { error, .. } = error else { return None };
    if error.code == ErrorCode::RateLimited.code() {
        let seconds =
            error.data.as_ref().and_then(|data| data.get("retryAfterSeconds")).and_then(|value| value.as_i64());
        let retry_after = seconds.and_then(chrono::Duration::try_seconds);
        return Some(UpstreamAnswer::Throttled { retry_after });
    }
    let named = ["(status 429)", "(status 503)"].iter().any(|status| error.message.contains(status));
    named.then_some(UpstreamAnswer::Throttled { retry_after: None })
}

impl Inner {
    pub(super) async fn poll(&self, source: ReleaseSource, on_progress: Option<ProgressCallback>) -> PollReport {
        let active = Arc::new(ActivePoll {
            source_id: source.id.clone(),
            counts: Mutex::default(),
            refusals: Mutex::default(),
            last_shown: Mutex::default(),
            on_progress,
        });
        self.running
            .progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(source.plugin.clone())
            .or_default()
            .push(active.clone());
        let listed = Listed { inner: self, plugin: source.plugin.clone(), poll: active.clone() };
        let answered = self.ask(&source).await;
        drop(listed);
        let report = match answered {
            Ok(response) => self.answered(&source, &active, response).await,
            Err(error) => self.failed(&source, &active, error).await,
        };
        let _ = self.events.send(ReleaseEvent::ReleaseSourcePolled {
            source_id: source.id.clone(),
            plugin_id: source.plugin.clone(),
            had_error: report.error.is_some(),
            timestamp: rfc3339_utc(now_micros()),
        });
        report
    }

    async fn ask(&self, source: &ReleaseSource) -> Result<PollResponse, String> {
        let params = PollParams {
            source_id: source.id.clone(),
            source_key: Some(source.source_key.clone()),
            config: source.config.clone(),
            etag: source.state.etag.clone(),
        };
        let params = serde_json::to_value(params).map_err(|error| error.to_string())?;
        let timeout = self.config.poll_timeout;
        let answer = self.host.call_with_timeout(&source.plugin, None, "releases/poll", params, timeout).await;
        let answer = answer.map_err(|error| {
            if let Some(throttle) = throttle_in(&error) {
                self.backoff(source, throttle);
            }
            format!("plugin call failed: {error}")
        })?;
        serde_json::from_value(answer)
            .map_err(|error| format!("the plugin's answer is not a releases/poll result: {error}"))
    }

    /// Records what the poll said of its upstream; answers until when it is left alone.
    fn backoff(&self, source: &ReleaseSource, answer: UpstreamAnswer) -> Option<chrono::DateTime<chrono::Utc>> {
        let (key, now) = (backoff_key(source), chrono::Utc::now());
        let mut backoffs = self.pacing.backoffs.lock().unwrap_or_else(PoisonError::into_inner);
        backoffs.record(&key, answer, now);
        backoffs.waiting_until(&key, now)
    }

    async fn answered(&self, source: &ReleaseSource, active: &ActivePoll, response: PollResponse) -> PollReport {
        for candidate in &response.candidates {
            match self.record(source, candidate).await {
                Ok(recorded) => count(active, &recorded),
                Err(Refused::Candidate(why)) => {
                    tracing::warn!(plugin = source.plugin, source = source.id, "a candidate was refused: {why}");
                    active.refused(&why);
                }
                Err(Refused::Host(error)) => {
                    tracing::error!(
                        plugin = source.plugin,
                        source = source.id,
                        "a candidate was not recorded: {error}"
                    );
                    active.refused(&error.to_string());
                }
            }
        }
        // What the plugin read upstream: its own count when it gives one, and never less
        // than what reached the host.
        active.count(|counts| {
            let reached = counts.recorded + counts.deduped + counts.rejected;
            counts.fetched = response.parsed.map_or(reached, u64::from).max(reached);
        });
        let counts = *active.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let status = response.upstream_status;
        let backoff_until = self.backoff(source, UpstreamAnswer::from_status(status));
        let summary = summary_line(&counts, response.not_modified == Some(true), status);
        let warning =
            status.filter(|status| matches!(status, 429 | 503)).map(|status| format!("upstream returned {status}"));
        let etag = response.etag.clone().filter(|etag| match check_etag(etag) {
            Ok(()) => true,
            Err(why) => {
                tracing::warn!(source = source.id, "the poll's etag is not kept: {why}");
                false
            }
        });
        let (id, line, kept_warning) = (source.id.clone(), summary.clone(), warning.clone());
        let written = self
            .stored(move |store| {
                store.poll_answered(&id, etag.as_deref(), &line, kept_warning.as_deref(), now_micros())
            })
            .await;
        if let Err(error) = written {
            tracing::error!(source = source.id, "could not keep the poll's state: {error}");
        }
        report(source, active, summary, status, warning, backoff_until)
    }

    async fn failed(&self, source: &ReleaseSource, active: &ActivePoll, error: String) -> PollReport {
        let (id, kept) = (source.id.clone(), error.clone());
        if let Err(written) = self.stored(move |store| store.poll_failed(&id, &kept, now_micros())).await {
            tracing::error!(source = source.id, "could not keep the poll's error: {written}");
        }
        let key = backoff_key(source);
        let backoff_until =
            self.pacing.backoffs.lock().unwrap_or_else(PoisonError::into_inner).waiting_until(&key, chrono::Utc::now());
        report(source, active, format!("Failed: {error}"), None, Some(error), backoff_until)
    }

    /// A record the plugin made while polling, counted in that source's poll.
    pub(super) fn count_recorded(&self, plugin: &str, source_id: &str, recorded: &Recorded) {
        if let Some(active) = self.active_poll(plugin, Some(source_id)) {
            count(&active, recorded);
        }
    }

    pub(super) fn count_rejected(&self, plugin: &str, source_id: &str, why: &str) {
        if let Some(active) = self.active_poll(plugin, Some(source_id)) {
            active.refused(why);
        }
    }

    /// The plugin's poll of `source` in progress; with no source, its latest.
    pub(super) fn active_poll(&self, plugin: &str, source_id: Option<&str>) -> Option<Arc<ActivePoll>> {
        let progress = self.running.progress.lock().unwrap_or_else(PoisonError::into_inner);
        let polls = progress.get(plugin)?;
        match source_id {
            Some(id) => polls.iter().rev().find(|poll| poll.source_id == id).cloned(),
            None => polls.last().cloned(),
        }
    }
}

fn report(
    source: &ReleaseSource,
    active: &ActivePoll,
    summary: String,
    upstream_status: Option<u16>,
    error: Option<String>,
    backoff_until: Option<chrono::DateTime<chrono::Utc>>,
) -> PollReport {
    PollReport {
        source_id: source.id.clone(),
        plugin: source.plugin.clone(),
        display_name: source.display_name.clone(),
        counts: *active.counts.lock().unwrap_or_else(PoisonError::into_inner),
        summary,
        upstream_status,
        error,
        backoff_until: backoff_until.map(|until| until.to_rfc3339()),
        refused: active.refusals.lock().unwrap_or_else(PoisonError::into_inner).clone(),
    }
}

fn count(active: &ActivePoll, recorded: &Recorded) {
    active.count(|counts| {
        if recorded.result.deduped {
            counts.deduped += 1;
        } else {
            counts.recorded += 1;
            counts.announced += u64::from(recorded.announced);
        }
    });
}
