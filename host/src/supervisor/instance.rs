//! The task that owns one plugin instance: starts it when first needed (in a task of its
//! own, so the owner keeps listening), publishes it, watches it die, applies the health
//! verdicts, pings it when idle, and stops it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::activity::Activity;
use super::{InstanceKey, LaunchOutcome, Launcher, Shared, Verdict, lock};
use crate::dispatch::ConnectionClosed;
use crate::plugin::{Plugin, PluginError};
use crate::protocol::methods::{NoParams, Ping};
use crate::registry::InstanceRevision;

/// A running instance and its generation: a fault names the generation it happened in,
/// so a late fault of a replaced instance is not held against its successor.
#[derive(Clone)]
pub(super) struct Live {
    pub plugin: Arc<Plugin>,
    pub generation: u64,
    /// What it was started from.
    pub revision: Option<InstanceRevision>,
}

type Reply = oneshot::Sender<Result<Live, PluginError>>;

/// What callers ask of an instance task.
pub(super) enum Command {
    /// The running instance, started first if needed; waits at most `wait` for a restart
    /// that is due.
    Acquire { wait: Duration, reply: Reply },
    /// A live instance faulted (timeout, -32603, malformed answer).
    Fault { generation: u64, fault: String },
    /// Stop the instance gracefully and end the task.
    Stop(oneshot::Sender<()>),
    /// Stop the instance gracefully to make room, if it is still idle, and keep the task:
    /// the next call starts it again. Answers whether it was stopped, once it is.
    Evict(oneshot::Sender<bool>),
}

/// How long a stopping instance's calls in flight may take to finish before it is shut
/// down anyway.
const DRAIN: Duration = Duration::from_secs(5);

/// A death this soon after a counted fault of the same instance is its consequence (a call
/// timed out, then the guest's own deadline stopped it), not a second fault.
const CONSEQUENCE_WINDOW: Duration = Duration::from_secs(2);

pub(super) struct Instance {
    key: InstanceKey,
    launcher: Arc<dyn Launcher>,
    shared: Arc<Shared>,
    /// Where the running instance is published for callers.
    published: Arc<Mutex<Option<Live>>>,
    /// Its calls in flight and last use, kept by callers.
    activity: Arc<Activity>,
    commands: mpsc::Receiver<Command>,
    /// Where ping tasks report faults; weak, so it never keeps the task alive.
    ping_results: mpsc::WeakSender<Command>,
    current: Option<Live>,
    generation: u64,
    /// The start in progress, and the callers waiting for it.
    starting: Option<JoinHandle<LaunchOutcome>>,
    waiting: VecDeque<(Duration, Reply)>,
    /// The instance being started replaces one that faulted.
    restarted: bool,
    last_fault: Option<(u64, Instant)>,
    /// What the latest start read from the registry.
    last_revision: Option<InstanceRevision>,
}

impl Instance {
    pub fn new(
        key: InstanceKey,
        launcher: Arc<dyn Launcher>,
        shared: Arc<Shared>,
        published: Arc<Mutex<Option<Live>>>,
        activity: Arc<Activity>,
        commands: mpsc::Receiver<Command>,
        ping_results: mpsc::WeakSender<Command>,
    ) -> Self {
        Self {
            key,
            launcher,
            shared,
            published,
            activity,
            commands,
            ping_results,
            current: None,
            generation: 0,
            starting: None,
            waiting: VecDeque::new(),
            restarted: false,
            last_fault: None,
            last_revision: None,
        }
    }

    pub async fn run(mut self) {
        let mut pings = JoinSet::new();
        let (interval, idle_timeout) = {
            let health = self.shared.health();
            (health.policy().ping_interval, health.policy().idle_timeout)
        };
        let mut next_ping = Instant::now() + interval;
        let stopped = loop {
            let watched = self.current.as_ref().map(|live| (live.plugin.clone(), live.generation));
            let died = async move {
                match watched {
                    Some((plugin, generation)) => (plugin.closed().await, generation),
                    None => std::future::pending::<(ConnectionClosed, u64)>().await,
                }
            };
            let starting = async {
                match self.starting.as_mut() {
                    Some(task) => task.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                (closed, generation) = died => self.died(generation, &closed),
                started = starting => {
                    self.starting = None;
                    let outcome = started.unwrap_or_else(|error| {
                        let why = format!("the start panicked: {error}");
                        LaunchOutcome { started: Err(PluginError::Launch { plugin: self.key.plugin.clone(), why }), revision: None }
                    });
                    self.started(outcome);
                    next_ping = Instant::now() + interval;
                }
                command = self.commands.recv() => match command {
                    None => break None,
                    Some(Command::Stop(done)) => break Some(done),
                    Some(Command::Acquire { wait, reply }) => self.acquire(wait, reply),
                    Some(Command::Fault { generation, fault }) => self.faulted(generation, fault),
                    Some(Command::Evict(evicted)) => self.evict(evicted),
                },
                () = tokio::time::sleep_until(next_ping), if self.current.is_some() => {
                    next_ping = Instant::now() + interval;
                    if self.activity.is_idle() && self.activity.unused_for() >= idle_timeout {
                        self.stop_idle();
                    } else {
                        self.ping(&mut pings);
                    }
                }
                Some(_) = pings.join_next(), if !pings.is_empty() => {}
            }
        };
        pings.abort_all();
        if let Some(starting) = self.starting.take() {
            starting.abort();
        }
        for (_, reply) in self.waiting.drain(..) {
            let why = "the plugin is being stopped".to_owned();
            let _ = reply.send(Err(PluginError::Launch { plugin: self.key.plugin.clone(), why }));
        }
        self.publish(None);
        if let Some(live) = self.current.take() {
            retire(live.plugin).await;
        }
        if let Some(done) = stopped {
            let _ = done.send(());
        }
    }

    /// Lets the running instance go to make room, if no call is using it: it is shut
    /// down gracefully in a task of its own, which answers once its place is free.
    fn evict(&mut self, evicted: oneshot::Sender<bool>) {
        if !self.activity.is_idle() || self.starting.is_some() {
            let _ = evicted.send(false);
            return;
        }
        let Some(live) = self.current.take() else {
            let _ = evicted.send(false);
            return;
        };
        self.publish(None);
        // A call that began before the unpublishing is counted by now: keep the instance.
        if !self.activity.is_idle() {
            self.publish(Some(live.clone()));
            self.current = Some(live);
            let _ = evicted.send(false);
            return;
        }
        tracing::debug!(plugin = self.key.plugin, user = self.key.user, "evicted, idle, to make room");
        tokio::spawn(async move {
            retire(live.plugin).await;
            let _ = evicted.send(true);
        });
    }

    /// The instance went unused for the idle timeout: it is let go, gracefully; the task
    /// stays, and the next call starts it again.
    fn stop_idle(&mut self) {
        let Some(live) = self.current.take() else { return };
        self.publish(None);
        tracing::debug!(plugin = self.key.plugin, user = self.key.user, "stopped after its idle timeout");
        tokio::spawn(retire(live.plugin));
    }

    /// Answers with the running instance, or queues the caller for a start if the plugin
    /// may start within its wait.
    fn acquire(&mut self, wait: Duration, reply: Reply) {
        let dead = self.current.as_ref().and_then(|live| Some((live.plugin.closed_reason()?, live.generation)));
        if let Some((closed, generation)) = dead {
            // It died and the watcher has not run yet: the death counts all the same.
            self.died(generation, &closed);
        }
        if let Some(live) = &self.current {
            let _ = reply.send(Ok(live.clone()));
            return;
        }
        let plugin = self.key.plugin.clone();
        let may_start = self.shared.health().may_start();
        let restart_at = match may_start {
            Err(disabled) => {
                let _ = reply.send(Err(PluginError::Disabled { plugin, reason: disabled.reason }));
                return;
            }
            Ok(restart_at) => restart_at.filter(|at| *at > Instant::now()),
        };
        if let Some(at) = restart_at {
            let retry_in = at - Instant::now();
            if retry_in > wait {
                let _ = reply.send(Err(PluginError::Restarting { plugin, retry_in }));
                return;
            }
        }
        self.waiting.push_back((wait, reply));
        if self.starting.is_none() {
            let launcher = self.launcher.clone();
            let user = self.key.user.clone();
            self.starting = Some(tokio::spawn(async move {
                if let Some(at) = restart_at {
                    tokio::time::sleep_until(at).await;
                }
                launcher.launch(&plugin, user.as_deref()).await
            }));
        }
    }

    /// A start finished: the waiting callers get the instance, or the first of them the
    /// error (the others try again, as the health now allows).
    fn started(&mut self, outcome: LaunchOutcome) {
        if outcome.revision.is_some() {
            self.last_revision = outcome.revision;
        }
        match outcome.started {
            Ok(plugin) => {
                if std::mem::take(&mut self.restarted) {
                    self.shared.counter.record_restart();
                }
                self.generation += 1;
                let live = Live { plugin: Arc::new(plugin), generation: self.generation, revision: outcome.revision };
                self.publish(Some(live.clone()));
                self.current = Some(live.clone());
                for (_, reply) in self.waiting.drain(..) {
                    let _ = reply.send(Ok(live.clone()));
                }
            }
            // The host is full: every caller waiting is told at once, none waits again.
            Err(PluginError::AtCapacity { plugin, why }) => {
                for (_, reply) in self.waiting.drain(..) {
                    let _ = reply.send(Err(PluginError::AtCapacity { plugin: plugin.clone(), why: why.clone() }));
                }
            }
            Err(error) => {
                if error.is_fault() {
                    let verdict = self.shared.record(|health| health.record_death(Instant::now(), error.to_string()));
                    self.apply(verdict);
                }
                let mut waiting = std::mem::take(&mut self.waiting);
                if let Some((_, first)) = waiting.pop_front() {
                    let _ = first.send(Err(error));
                }
                for (wait, reply) in waiting {
                    self.acquire(wait, reply);
                }
            }
        }
    }

    fn died(&mut self, generation: u64, closed: &ConnectionClosed) {
        if self.current.as_ref().is_none_or(|live| live.generation != generation) {
            return;
        }
        self.current = None;
        self.publish(None);
        if !closed.reason.is_fault() {
            return;
        }
        tracing::warn!(plugin = self.key.plugin, user = self.key.user, "{closed}");
        let now = Instant::now();
        let consequence = self
            .last_fault
            .is_some_and(|(faulted, at)| faulted == generation && now.duration_since(at) < CONSEQUENCE_WINDOW);
        let verdict = if consequence {
            self.shared.record(|health| health.record_consequence(now))
        } else {
            self.shared.record(|health| health.record_death(now, closed.to_string()))
        };
        self.apply(verdict);
    }

    fn faulted(&mut self, generation: u64, fault: String) {
        if self.current.as_ref().is_none_or(|live| live.generation != generation) {
            return;
        }
        let now = Instant::now();
        self.last_fault = Some((generation, now));
        let verdict = self.shared.record(|health| health.record_fault(now, fault));
        self.apply(verdict);
    }

    /// Acts on a health verdict: a restarted or disabled instance is let go (it is killed
    /// when its last call in flight ends).
    fn apply(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Keep => return,
            Verdict::Restart { at } => {
                let wait = at.saturating_duration_since(Instant::now());
                tracing::warn!(plugin = self.key.plugin, "restarting in {} ms", wait.as_millis());
                self.restarted = true;
            }
            Verdict::Disable(disabled) => {
                tracing::error!(
                    plugin = self.key.plugin,
                    "{}; last faults: {:?}",
                    disabled.reason,
                    disabled.recent_faults
                );
                let disabled_from = self.launcher.record_disabled(&self.key.plugin, &disabled);
                *lock(&self.shared.disabled_from) =
                    disabled_from.or(self.last_revision.map(|revision| revision.plugin));
            }
        }
        self.current = None;
        self.publish(None);
    }

    fn publish(&self, live: Option<Live>) {
        *lock(&self.published) = live;
    }

    /// Pings the instance in a task of its own; a fault comes back as a command.
    fn ping(&self, pings: &mut JoinSet<()>) {
        let Some(live) = self.current.clone() else { return };
        let results = self.ping_results.clone();
        let counter = self.shared.counter.clone();
        pings.spawn(async move {
            let started = std::time::Instant::now();
            let result = live.plugin.call::<Ping>(&NoParams).await;
            counter.record("ping", result.as_ref().map(drop), started.elapsed());
            if let Err(error) = result
                && error.is_fault()
                && !matches!(error, PluginError::Closed { .. })
                && let Some(results) = results.upgrade()
            {
                let fault = Command::Fault { generation: live.generation, fault: error.to_string() };
                let _ = results.send(fault).await;
            }
        });
    }
}

/// Shuts an instance down gracefully once its calls in flight have ended; after [`DRAIN`]
/// it is dropped instead, and killed when the last of them ends.
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
