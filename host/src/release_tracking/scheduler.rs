//! Scheduled polls: each enabled source on its cron schedule (its own, else the host's,
//! else Codex's daily midnight UTC), one poll per source at a time, and none while its
//! upstream host backs off: a poll that fell due then is made once the wait ends.

use chrono::{DateTime, Utc};
use codex_plugin_protocol::manifest::Manifest;
use croner::Cron;
use std::sync::PoisonError;
use std::time::Duration;

use super::poll::backoff_key;
use super::{ReleaseError, ReleaseTracker};
use crate::sync::schedule::{due, parse_cron};

/// The scheduler; stops when dropped (polls it started run to their end).
pub struct ReleaseScheduler(tokio::task::JoinHandle<()>);

impl Drop for ReleaseScheduler {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A cron schedule: five fields, or six with seconds, in UTC.
pub(super) fn parse_schedule(text: &str) -> Result<Cron, String> {
    parse_cron(text)
        .map_err(|error| format!("{text:?} is not a cron expression (five fields, or six with seconds): {error}"))
}

impl ReleaseTracker {
    /// Starts every enabled release-source plugin (so its sources are registered), then
    /// looks every `tick` for polls that fell due since it last looked.
    pub fn spawn_scheduler(&self, tick: Duration) -> ReleaseScheduler {
        let this = self.clone();
        ReleaseScheduler(tokio::spawn(async move {
            this.start_release_plugins().await;
            let mut since = Utc::now();
            loop {
                tokio::time::sleep(tick).await;
                let now = Utc::now();
                // It reads the records and the registry: off the async workers.
                let ticking = this.clone();
                match tokio::task::spawn_blocking(move || ticking.start_due_polls(since, now)).await {
                    Ok(Ok(started)) if !started.is_empty() => tracing::info!("scheduled polls started: {started:?}"),
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => tracing::warn!("scheduled polls: {error}"),
                    Err(error) => tracing::warn!("scheduled polls stopped: {error}"),
                }
                since = now;
            }
        }))
    }

    /// Starts each enabled plugin whose manifest (as last seen) declares a release source,
    /// and each that never started (its manifest unknown, it may be one).
    pub async fn start_release_plugins(&self) {
        let Ok(records) = self.inner.host.registry().list() else { return };
        for record in records {
            let releases = match record.manifest {
                None => true,
                Some(manifest) => serde_json::from_value::<Manifest>(manifest)
                    .is_ok_and(|manifest| manifest.capabilities.release_source.is_some()),
            };
            if record.enabled
                && releases
                && let Err(error) = self.refresh_sources(record.id.as_str()).await
            {
                tracing::warn!(plugin = record.id.as_str(), "a release source did not start: {error}");
            }
        }
    }

    /// Starts the polls of enabled sources whose schedule has a run in `(since, now]`, or
    /// that were deferred and whose upstream host waits no more; answers their ids.
    pub fn start_due_polls(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<Vec<String>, ReleaseError> {
        let default = self.default_schedule()?;
        let sources = self.inner.store.sources(None)?;
        let registry = self.inner.host.registry();
        let enabled_plugins: std::collections::HashSet<String> = registry
            .list()
            .map_err(|error| ReleaseError::Store(error.to_string()))?
            .into_iter()
            .filter(|record| record.enabled)
            .map(|record| record.id.as_str().to_owned())
            .collect();
        // A deferred source that is gone or disabled is forgotten.
        self.inner.pacing.deferred.lock().unwrap_or_else(PoisonError::into_inner).retain(|id| {
            sources.iter().any(|source| &source.id == id && source.enabled && enabled_plugins.contains(&source.plugin))
        });
        let mut started = Vec::new();
        for source in sources {
            // Codex skips the sources of a disabled plugin too, without an error.
            if !source.enabled || !enabled_plugins.contains(&source.plugin) {
                continue;
            }
            let text = source.cron_schedule.as_deref().unwrap_or(&default);
            let cron = match parse_schedule(text) {
                Ok(cron) => cron,
                Err(why) => {
                    tracing::warn!(source = source.id, "not scheduled: {why}");
                    continue;
                }
            };
            let mut deferred = self.inner.pacing.deferred.lock().unwrap_or_else(PoisonError::into_inner);
            if !due(&cron, since, now) && !deferred.contains(&source.id) {
                continue;
            }
            let key = backoff_key(&source);
            let waiting =
                self.inner.pacing.backoffs.lock().unwrap_or_else(PoisonError::into_inner).waiting_until(&key, now);
            if let Some(until) = waiting {
                tracing::info!(source = source.id, key, %until, "poll deferred: its upstream host backs off");
                deferred.insert(source.id.clone());
                continue;
            }
            deferred.remove(&source.id);
            drop(deferred);
            if self.inner.running.polls.is_running(&(source.plugin.clone(), source.id.clone())) {
                continue;
            }
            started.push(source.id.clone());
            let this = self.clone();
            tokio::spawn(async move {
                match this.poll(&source.id, None).await {
                    Ok(report) => match &report.error {
                        None => tracing::info!(source = source.id, "scheduled poll: {}", report.summary),
                        Some(error) => tracing::warn!(source = source.id, "scheduled poll: {error}"),
                    },
                    Err(error) => tracing::warn!(source = source.id, "scheduled poll could not run: {error}"),
                }
            });
        }
        Ok(started)
    }
}
