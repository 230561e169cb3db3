//! The task that owns one plugin instance: starts it when first needed, watches it die,
//! applies the health verdicts, pings it when idle, and stops it.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{InstanceKey, Launcher, PluginEntry, Verdict};
use crate::dispatch::ConnectionClosed;
use crate::metrics::Metrics;
use crate::plugin::{Plugin, PluginError};
use crate::protocol::methods::{NoParams, Ping};

/// What callers ask of an instance task.
pub(super) enum Command {
    /// The running instance, started first if needed; waits at most `wait` for a restart
    /// that is due.
    Acquire { wait: Duration, reply: oneshot::Sender<Result<Arc<Plugin>, PluginError>> },
    /// A live instance faulted (timeout, -32603, malformed answer).
    Fault(String),
    /// Stop the instance gracefully and end the task.
    Stop(oneshot::Sender<()>),
}

/// How long a stopping instance's calls in flight may take to finish before it is shut
/// down anyway.
const DRAIN: Duration = Duration::from_secs(5);

pub(super) struct Instance {
    pub key: InstanceKey,
    pub launcher: Arc<dyn Launcher>,
    pub plugin: Arc<PluginEntry>,
    pub metrics: Arc<Metrics>,
    pub commands: mpsc::Receiver<Command>,
    /// Where ping tasks report faults; weak, so the task ends when the supervisor drops
    /// its sender.
    pub ping_results: mpsc::WeakSender<Command>,
}

impl Instance {
    pub async fn run(mut self) {
        let mut current: Option<Arc<Plugin>> = None;
        let mut restarted = false;
        let mut pings = JoinSet::new();
        let interval = self.plugin.health().policy().ping_interval;
        let mut next_ping = Instant::now() + interval;
        loop {
            let watched = current.clone();
            let died = async move {
                match watched {
                    Some(plugin) => plugin.closed().await,
                    None => std::future::pending::<ConnectionClosed>().await,
                }
            };
            tokio::select! {
                command = self.commands.recv() => match command {
                    None => break,
                    Some(Command::Acquire { wait, reply }) => {
                        let result = self.acquire(&mut current, &mut restarted, wait).await;
                        let _ = reply.send(result);
                        next_ping = Instant::now() + interval;
                    }
                    Some(Command::Fault(fault)) => {
                        let verdict = self.plugin.health().record_fault(Instant::now(), fault);
                        self.apply(verdict, &mut current, &mut restarted);
                    }
                    Some(Command::Stop(done)) => {
                        if let Some(plugin) = current.take() {
                            retire(plugin).await;
                        }
                        let _ = done.send(());
                        break;
                    }
                },
                closed = died => {
                    current = None;
                    if closed.reason.is_fault() {
                        tracing::warn!(plugin = self.key.plugin, user = self.key.user, "{closed}");
                        let verdict = self.plugin.health().record_death(Instant::now(), closed.to_string());
                        self.apply(verdict, &mut current, &mut restarted);
                    }
                }
                () = tokio::time::sleep_until(next_ping), if current.is_some() => {
                    next_ping = Instant::now() + interval;
                    if let Some(plugin) = &current {
                        self.ping(plugin.clone(), &mut pings);
                    }
                }
                Some(_) = pings.join_next(), if !pings.is_empty() => {}
            }
        }
        pings.abort_all();
    }

    /// The running instance, or a new one if the plugin may start.
    async fn acquire(
        &self,
        current: &mut Option<Arc<Plugin>>,
        restarted: &mut bool,
        wait: Duration,
    ) -> Result<Arc<Plugin>, PluginError> {
        let plugin = &self.key.plugin;
        let may_start = self.plugin.health().may_start();
        match may_start {
            Err(disabled) => {
                current.take();
                return Err(PluginError::Disabled { plugin: plugin.clone(), reason: disabled.reason });
            }
            Ok(restart_at) => {
                if let Some(running) = current.as_ref().filter(|running| running.closed_reason().is_none()) {
                    return Ok(running.clone());
                }
                if let Some(at) = restart_at.filter(|at| *at > Instant::now()) {
                    let retry_in = at - Instant::now();
                    if retry_in > wait {
                        return Err(PluginError::Restarting { plugin: plugin.clone(), retry_in });
                    }
                    tokio::time::sleep_until(at).await;
                }
            }
        }
        match self.launcher.launch(plugin, self.key.user.as_deref()).await {
            Ok(started) => {
                if std::mem::take(restarted) {
                    self.metrics.record_restart(plugin);
                }
                let started = Arc::new(started);
                *current = Some(started.clone());
                Ok(started)
            }
            Err(error) => {
                if error.is_fault() {
                    let verdict = self.plugin.health().record_death(Instant::now(), error.to_string());
                    self.apply(verdict, current, restarted);
                }
                Err(error)
            }
        }
    }

    /// Acts on a health verdict: a restarted or disabled instance is let go (it is killed
    /// when its last call in flight ends).
    fn apply(&self, verdict: Verdict, current: &mut Option<Arc<Plugin>>, restarted: &mut bool) {
        match verdict {
            Verdict::Keep => {}
            Verdict::Restart { at } => {
                let wait = at.saturating_duration_since(Instant::now());
                tracing::warn!(plugin = self.key.plugin, "restarting in {} ms", wait.as_millis());
                current.take();
                *restarted = true;
            }
            Verdict::Disable(disabled) => {
                tracing::error!(
                    plugin = self.key.plugin,
                    "{}; last faults: {:?}",
                    disabled.reason,
                    disabled.recent_faults
                );
                current.take();
                self.launcher.record_disabled(&self.key.plugin, &disabled);
            }
        }
    }

    /// Pings the instance in a task of its own; a fault comes back as a command.
    fn ping(&self, plugin: Arc<Plugin>, pings: &mut JoinSet<()>) {
        let results = self.ping_results.clone();
        let metrics = self.metrics.clone();
        let name = self.key.plugin.clone();
        pings.spawn(async move {
            let started = Instant::now();
            let result = plugin.call::<Ping>(&NoParams).await;
            metrics.record(&name, "ping", result.as_ref().map(drop), started.elapsed());
            if let Err(error) = result
                && error.is_fault()
                && !matches!(error, PluginError::Closed { .. })
                && let Some(results) = results.upgrade()
            {
                let _ = results.send(Command::Fault(error.to_string())).await;
            }
        });
    }
}

/// Shuts an instance down gracefully once its calls in flight have ended (or after
/// [`DRAIN`]); if they have not, dropping it kills it.
async fn retire(mut plugin: Arc<Plugin>) {
    let deadline = Instant::now() + DRAIN;
    loop {
        match Arc::try_unwrap(plugin) {
            Ok(owned) => return owned.shutdown().await,
            Err(shared) if Instant::now() < deadline => {
                plugin = shared;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => return,
        }
    }
}
