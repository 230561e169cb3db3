//! The supervisor: one task per running plugin instance (a plugin, or one user's connection
//! to it) that owns it. It starts the instance on the first call, restarts it after a
//! crash, trap or protocol fault with capped exponential backoff, restarts a live one after
//! three faults in a row, pings it when idle, disables the plugin after repeated faults,
//! and stops it gracefully.
//!
//! Calls do not pass through the task: a caller borrows the instance from it and calls the
//! plugin directly, so many calls run at once and a slow or crash-looping plugin never
//! holds up another. Only faults go back to the task; successes are counted in memory.

mod health;
mod instance;

pub use health::{Disabled, Health, HealthPolicy, HealthState, Verdict};

use futures::future::BoxFuture;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::plugin::{Plugin, PluginError};
use instance::{Command, Instance};

/// Starts plugins as registered, and keeps what the supervisor decides.
pub trait Launcher: Send + Sync + 'static {
    /// Starts and initializes an instance of `plugin`, for `user` when given.
    fn launch<'a>(&'a self, plugin: &'a str, user: Option<&'a str>) -> BoxFuture<'a, Result<Plugin, PluginError>>;

    /// The plugin was disabled after repeated faults: keep that, with the reason.
    fn record_disabled(&self, plugin: &str, disabled: &Disabled);
}

/// Which instance: a plugin, or one user's connection to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstanceKey {
    pub plugin: String,
    pub user: Option<String>,
}

/// What the supervisor shares with each instance task of one plugin.
struct PluginEntry {
    health: Mutex<Health>,
    instances: Mutex<HashMap<Option<String>, mpsc::Sender<Command>>>,
}

impl PluginEntry {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Requests to one instance task waiting at once; callers beyond wait for room.
const COMMAND_QUEUE: usize = 64;

/// The plugins of a host, each kept alive and healthy.
pub struct Supervisor {
    launcher: Arc<dyn Launcher>,
    policy: HealthPolicy,
    metrics: Arc<Metrics>,
    plugins: Mutex<HashMap<String, Arc<PluginEntry>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Supervisor {
    pub fn new(launcher: Arc<dyn Launcher>, policy: HealthPolicy, metrics: Arc<Metrics>) -> Self {
        Self { launcher, policy, metrics, plugins: Mutex::default(), tasks: Mutex::default() }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Calls `method` on `plugin` (for `user`, when given), starting it if needed.
    /// `timeout` overrides the plugin's own for this call, and also bounds the wait for a
    /// restart that is due.
    pub async fn call(
        &self,
        plugin: &str,
        user: Option<&str>,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Value, PluginError> {
        let started = Instant::now();
        let entry = self.entry(plugin);
        let result = match self.acquire(&entry, plugin, user, timeout).await {
            Ok(instance) => {
                let result = instance.call_raw(method, params, timeout).await;
                self.account(&entry, plugin, user, &result).await;
                result
            }
            Err(error) => Err(error),
        };
        self.metrics.record(plugin, method, result.as_ref().map(drop), started.elapsed());
        result
    }

    /// The plugin's health right now.
    pub fn health(&self, plugin: &str) -> HealthState {
        self.entry(plugin).health().state(Instant::now())
    }

    /// Clears the plugin's faults and any disable, in this host (the caller clears the
    /// registry).
    pub fn reset(&self, plugin: &str) {
        self.entry(plugin).health().reset();
    }

    /// Stops every instance of `plugin` gracefully (it starts again on the next call).
    pub async fn stop_plugin(&self, plugin: &str) {
        let entry = self.plugins.lock().unwrap_or_else(PoisonError::into_inner).remove(plugin);
        if let Some(entry) = entry {
            stop_instances(&entry).await;
        }
    }

    /// Stops every instance of every plugin gracefully, and waits for their tasks.
    pub async fn shutdown(&self) {
        let entries: Vec<_> = self.plugins.lock().unwrap_or_else(PoisonError::into_inner).drain().collect();
        futures::future::join_all(entries.iter().map(|(_, entry)| stop_instances(entry))).await;
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            let _ = task.await;
        }
    }

    fn entry(&self, plugin: &str) -> Arc<PluginEntry> {
        let mut plugins = self.plugins.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = plugins.get(plugin) {
            return entry.clone();
        }
        let entry = Arc::new(PluginEntry { health: Mutex::new(Health::new(self.policy)), instances: Mutex::default() });
        plugins.insert(plugin.to_owned(), entry.clone());
        entry
    }

    /// The instance's task, started on first use.
    fn sender(&self, entry: &Arc<PluginEntry>, plugin: &str, user: Option<&str>) -> mpsc::Sender<Command> {
        let mut instances = entry.instances.lock().unwrap_or_else(PoisonError::into_inner);
        let key = user.map(str::to_owned);
        if let Some(sender) = instances.get(&key).filter(|sender| !sender.is_closed()) {
            return sender.clone();
        }
        let (sender, commands) = mpsc::channel(COMMAND_QUEUE);
        let instance = Instance {
            key: InstanceKey { plugin: plugin.to_owned(), user: key.clone() },
            launcher: self.launcher.clone(),
            plugin: entry.clone(),
            metrics: self.metrics.clone(),
            commands,
            ping_results: sender.downgrade(),
        };
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.retain(|task| !task.is_finished());
        tasks.push(tokio::spawn(instance.run()));
        instances.insert(key, sender.clone());
        sender
    }

    async fn acquire(
        &self,
        entry: &Arc<PluginEntry>,
        plugin: &str,
        user: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Arc<Plugin>, PluginError> {
        if let Err(disabled) = entry.health().may_start() {
            return Err(PluginError::Disabled { plugin: plugin.to_owned(), reason: disabled.reason });
        }
        let wait = timeout.unwrap_or(crate::limits::DEFAULT_REQUEST_TIMEOUT);
        let (reply, answer) = oneshot::channel();
        let gone = || PluginError::Launch { plugin: plugin.to_owned(), why: "the host is shutting down".into() };
        self.sender(entry, plugin, user).send(Command::Acquire { wait, reply }).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Counts a call's outcome: an answer (result or domain error) is a success for
    /// health; a fault of a live instance goes to its task. A death is seen by the task
    /// itself, once, however many calls it failed.
    async fn account(
        &self,
        entry: &Arc<PluginEntry>,
        plugin: &str,
        user: Option<&str>,
        result: &Result<Value, PluginError>,
    ) {
        match result {
            Err(error) if error.is_fault() => {
                if !matches!(error, PluginError::Closed { .. }) {
                    let fault = Command::Fault(error.to_string());
                    let _ = self.sender(entry, plugin, user).send(fault).await;
                }
            }
            Err(error) if !is_answer(error) => {}
            _ => entry.health().record_success(),
        }
    }
}

/// Whether the plugin itself answered (a result, or an error that is not a fault).
fn is_answer(error: &PluginError) -> bool {
    matches!(error, PluginError::Answered { .. })
}

async fn stop_instances(entry: &PluginEntry) {
    let senders: Vec<_> = entry.instances.lock().unwrap_or_else(PoisonError::into_inner).drain().collect();
    for (_, sender) in senders {
        let (done, stopped) = oneshot::channel();
        if sender.send(Command::Stop(done)).await.is_ok() {
            let _ = stopped.await;
        }
    }
}

impl Drop for Supervisor {
    /// No instance task outlives its supervisor: a plugin still running is killed.
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            task.abort();
        }
    }
}
