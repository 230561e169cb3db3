//! Scheduled syncs (orchestration.md §7): each sync plugin with a schedule in its admin
//! config (`_codex.syncCronSchedule`) syncs, when the schedule falls due, every connection
//! whose user turned `autoSync` on. A long-running host (a server, an embedding one) runs
//! the scheduler; a sync already running is joined, one running on another host skipped.

use chrono::{DateTime, Utc};
use codex_plugin_protocol::manifest::Manifest;
use std::time::Duration;

use super::{IntegrationError, Integrations, SyncOptions};
use crate::sync::SyncSettings;
use crate::sync::schedule::{due, schedule};

/// The scheduler; stops when dropped (syncs it started run to their end).
pub struct SyncScheduler(tokio::task::JoinHandle<()>);

impl Drop for SyncScheduler {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Integrations {
    /// Looks every `tick` for schedules that fell due since it last looked.
    pub fn spawn_sync_scheduler(&self, tick: Duration) -> SyncScheduler {
        let this = self.clone();
        SyncScheduler(tokio::spawn(async move {
            let mut since = Utc::now();
            loop {
                tokio::time::sleep(tick).await;
                let now = Utc::now();
                match this.start_due_syncs(since, now) {
                    Ok(started) if !started.is_empty() => tracing::info!("scheduled syncs started: {started:?}"),
                    Ok(_) => {}
                    Err(error) => tracing::warn!("scheduled syncs: {error}"),
                }
                since = now;
            }
        }))
    }

    /// Starts the syncs whose plugin's schedule has a run in `(since, now]`, for every
    /// connection with `autoSync`; answers them as (plugin, user). They run on tasks of
    /// their own.
    pub fn start_due_syncs(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, String)>, IntegrationError> {
        let registry = self.host.registry();
        let mut started = Vec::new();
        for record in registry.list()? {
            let plugin = record.id.as_str().to_owned();
            let syncs = record
                .manifest
                .and_then(|manifest| serde_json::from_value::<Manifest>(manifest).ok())
                .is_some_and(|manifest| manifest.capabilities.user_read_sync);
            if !record.enabled || !syncs {
                continue;
            }
            let cron = match schedule(&record.definition.admin_config) {
                None => continue,
                Some(Ok(cron)) => cron,
                Some(Err(why)) => {
                    tracing::warn!(plugin, "no scheduled syncs: {why}");
                    continue;
                }
            };
            if !due(&cron, since, now) {
                continue;
            }
            for connection in registry.users(&plugin)? {
                if !SyncSettings::from_user_config(&connection.config).auto_sync {
                    continue;
                }
                let (this, plugin, user) = (self.clone(), plugin.clone(), connection.user.clone());
                started.push((plugin.clone(), user.clone()));
                tokio::spawn(async move {
                    match this.sync(&plugin, &user, SyncOptions::default()).await {
                        Ok(report) => match &report.error {
                            None => tracing::info!(plugin, user, "scheduled sync done"),
                            Some(error) => tracing::warn!(plugin, user, "scheduled sync failed: {error}"),
                        },
                        Err(error @ IntegrationError::Busy { .. }) => tracing::debug!(plugin, user, "{error}"),
                        Err(error) => tracing::warn!(plugin, user, "scheduled sync could not run: {error}"),
                    }
                });
            }
        }
        Ok(started)
    }
}
