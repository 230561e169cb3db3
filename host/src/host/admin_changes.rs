//! Admin changes made elsewhere (the command-line tool, another host, a direct registry
//! call) reach a running host. Every few seconds the host compares what each running
//! instance was started from with the registry's revisions, read again whenever SQLite's
//! `data_version` says another connection committed. An instance started from an older
//! revision is stopped and starts again, as now registered, on its next call: a user's
//! instance alone when only that connection changed, every instance of the plugin (with
//! fresh health) when the plugin changed, was removed, or was reset after this host
//! disabled it. Changes made through `PluginHost` itself apply at once, and only once:
//! what they restart is started from the new revision.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::registry::{Registry, RegistryError, Revisions};
use crate::supervisor::{Outdated, Supervisor};

/// What [`Registry::data_version`] gives.
type DataVersion = (i64, u64);

/// The shortest interval between two looks.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// The watching task; it ends when dropped.
pub(super) struct AdminWatch(tokio::task::JoinHandle<()>);

impl AdminWatch {
    /// Looks every `interval`, until the supervisor is gone or the watch dropped.
    pub fn spawn(registry: Arc<Registry>, supervisor: Weak<Supervisor>, interval: Duration) -> Self {
        Self(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval.max(MIN_INTERVAL));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut known: Option<(DataVersion, Revisions)> = None;
            let applying: Arc<Mutex<HashSet<Outdated>>> = Arc::default();
            loop {
                ticks.tick().await;
                let Some(supervisor) = supervisor.upgrade() else { return };
                match refresh(&registry, known.take()) {
                    Ok(current) => {
                        // Each in a task of its own: a restart waiting for a session holds up
                        // neither the others nor the next look.
                        for outdated in supervisor.outdated(&current.1) {
                            if lock(&applying).insert(outdated.clone()) {
                                let (registry, supervisor, applying) =
                                    (registry.clone(), supervisor.clone(), applying.clone());
                                tokio::spawn(async move {
                                    apply(&registry, &supervisor, outdated.clone()).await;
                                    lock(&applying).remove(&outdated);
                                });
                            }
                        }
                        known = Some(current);
                    }
                    Err(error) => tracing::warn!("could not read the registry's revisions: {error}"),
                }
            }
        }))
    }
}

/// The registry's revisions: those already known while nobody else has committed, else
/// read again (the version first, so a change made between the two reads shows as a new
/// version next time).
fn refresh(
    registry: &Registry,
    known: Option<(DataVersion, Revisions)>,
) -> Result<(DataVersion, Revisions), RegistryError> {
    let version = registry.data_version()?;
    match known {
        Some((known_version, revisions)) if known_version == version => Ok((version, revisions)),
        _ => Ok((version, registry.revisions()?)),
    }
}

/// Stops what a change outdated: at once when the plugin or connection is gone or
/// disabled (a session on it is told on its next call), after its sessions end otherwise.
async fn apply(registry: &Registry, supervisor: &Supervisor, outdated: Outdated) {
    match outdated {
        Outdated::Plugin(plugin) => {
            let runs = registry.get(&plugin).is_ok_and(|record| record.enabled);
            tracing::info!(plugin, "changed in the registry: its instances restart on their next call");
            if runs { supervisor.restart_plugin(&plugin).await } else { supervisor.stop_plugin(&plugin).await }
        }
        Outdated::User { plugin, user } => {
            let connected = registry.user_connection(&plugin, &user).is_ok();
            tracing::info!(plugin, user, "connection changed in the registry: restarts on its next call");
            if connected {
                supervisor.restart_user(&plugin, &user).await
            } else {
                supervisor.stop_user(&plugin, &user).await
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for AdminWatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}
