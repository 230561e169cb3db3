//! Admin changes made by another process (the command-line tool, another host) reach a
//! running host: every few seconds, if anyone else committed to the database, the host
//! compares each plugin's revision with the one it last saw, and stops the instances of
//! every plugin that changed or was removed. They start again, as now registered, on their
//! next call; the health kept for them starts afresh.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use crate::registry::{Registry, RegistryError, Revisions};
use crate::supervisor::Supervisor;

/// The revisions this host has applied.
pub(super) struct AdminChanges {
    registry: Arc<Registry>,
    seen: Mutex<Revisions>,
}

impl AdminChanges {
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry, seen: Mutex::default() }
    }

    /// A change this host made itself, and applied: not to be applied again.
    pub fn acknowledge(&self, plugin: &str) {
        match self.registry.revision(plugin) {
            Ok(Some(revision)) => drop(self.seen().insert(plugin.to_owned(), revision)),
            Ok(None) => drop(self.seen().remove(plugin)),
            Err(error) => tracing::warn!(plugin, "could not read the plugin's revision: {error}"),
        }
    }

    /// Watches for changes every `interval`, until the host is gone or the task aborted.
    pub fn spawn(self: Arc<Self>, supervisor: Weak<Supervisor>, interval: Duration) -> AdminWatch {
        AdminWatch(tokio::spawn(async move {
            // The version first: a change made between the two reads shows as a new version.
            let mut version = self.registry.data_version().ok();
            if let Err(error) = self.refresh() {
                tracing::warn!("could not read the registry's revisions: {error}");
            }
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(supervisor) = supervisor.upgrade() else { return };
                match self.registry.data_version() {
                    Ok(now) if Some(now) == version => continue,
                    Ok(now) => version = Some(now),
                    Err(error) => {
                        tracing::warn!("could not check the registry for changes: {error}");
                        continue;
                    }
                }
                match self.refresh() {
                    Ok(changed) => {
                        for plugin in changed {
                            tracing::info!(plugin, "changed in the registry: its instances restart on their next call");
                            supervisor.stop_plugin(&plugin).await;
                        }
                    }
                    Err(error) => tracing::warn!("could not read the registry's revisions: {error}"),
                }
            }
        }))
    }

    /// Reads the revisions; gives the plugins whose revision changed since last seen, or
    /// that are gone.
    fn refresh(&self) -> Result<Vec<String>, RegistryError> {
        let current = self.registry.revisions()?;
        let mut seen = self.seen();
        let changed = seen
            .iter()
            .filter(|(plugin, revision)| current.get(*plugin) != Some(revision))
            .map(|(plugin, _)| plugin.clone())
            .collect();
        *seen = current;
        Ok(changed)
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Revisions> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The watching task; it ends when dropped.
pub(super) struct AdminWatch(tokio::task::JoinHandle<()>);

impl Drop for AdminWatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}
