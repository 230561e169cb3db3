//! The supervisor: one task per running plugin instance (a plugin, or one user's connection
//! to it) that owns it. It starts the instance on the first call, restarts it after a
//! crash, trap or protocol fault with capped exponential backoff, restarts a live one after
//! three faults in a row, pings it when idle, disables the plugin after repeated faults,
//! and stops it gracefully.
//!
//! Calls do not pass through the task: the running instance is published in a shared slot
//! and a caller calls it directly, so many calls run at once, a call costs no message to
//! the task, and a slow or crash-looping plugin never holds up another. Only starts and
//! faults go to the task; successes are counted in memory.

mod activity;
mod health;
mod instance;
mod session;

pub use health::{Disabled, Health, HealthPolicy, HealthState, Verdict};
pub use session::{LEASE_WAIT, Session};

use futures::future::BoxFuture;
use rustc_hash::FxHashMap;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::metrics::{Metrics, PluginCounter};
use crate::plugin::{Plugin, PluginError};
use crate::registry::{InstanceRevision, Revision, Revisions};
use activity::Activity;
use instance::{Command, Instance, Live};

/// A start: the instance, or why not; and what it was started from, once the registry
/// was read.
pub struct LaunchOutcome {
    pub started: Result<Plugin, PluginError>,
    pub revision: Option<InstanceRevision>,
}

/// Starts plugins as registered, and keeps what the supervisor decides.
pub trait Launcher: Send + Sync + 'static {
    /// Starts and initializes an instance of `plugin`, for `user` when given.
    fn launch<'a>(&'a self, plugin: &'a str, user: Option<&'a str>) -> BoxFuture<'a, LaunchOutcome>;

    /// The plugin was disabled after repeated faults: keep that, with the reason. Gives
    /// the plugin's revision as it was disabled, when known.
    fn record_disabled(&self, plugin: &str, disabled: &Disabled) -> Option<Revision>;
}

/// What changed in the registry since this host started something from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Outdated {
    /// The plugin itself: changed, removed, or reset after this host disabled it.
    Plugin(String),
    /// One user's connection to it.
    User { plugin: String, user: String },
}

/// Which instance: a plugin, or one user's connection to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstanceKey {
    pub plugin: String,
    pub user: Option<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One instance's task and the instance it publishes. The task holds only the published
/// cell, not the sender: when the slot is dropped, the task ends.
struct Slot {
    commands: mpsc::Sender<Command>,
    live: Arc<Mutex<Option<Live>>>,
    activity: Arc<Activity>,
}

impl Slot {
    /// The running instance, if it is alive.
    fn live(&self) -> Option<Live> {
        lock(&self.live).as_ref().filter(|live| !live.plugin.is_closed()).cloned()
    }
}

/// What every instance of one plugin shares. The two flags let a call check and keep the
/// plugin's health without taking the lock, unless something is wrong.
pub(super) struct Shared {
    health: Mutex<Health>,
    /// Set when the plugin is disabled, cleared by a reset.
    disabled: AtomicBool,
    /// A fault was counted since the last answer: the next answer must be recorded.
    suspect: AtomicBool,
    /// The registration this host disabled, once disabled: a change to it is a reset.
    disabled_from: Mutex<Option<Revision>>,
    counter: PluginCounter,
}

impl Shared {
    fn record_success(&self) {
        // A load first: on the healthy path, no read-modify-write at all.
        if self.suspect.load(Ordering::Relaxed) && self.suspect.swap(false, Ordering::Relaxed) {
            lock(&self.health).record_success();
        }
    }

    /// Applies `record` to the health under its lock, and keeps the flags in step.
    pub(super) fn record(&self, record: impl FnOnce(&mut Health) -> Verdict) -> Verdict {
        let verdict = record(&mut lock(&self.health));
        self.suspect.store(true, Ordering::Relaxed);
        if matches!(verdict, Verdict::Disable(_)) {
            self.disabled.store(true, Ordering::Relaxed);
        }
        verdict
    }

    pub(super) fn health(&self) -> MutexGuard<'_, Health> {
        lock(&self.health)
    }
}

/// A plugin's shared state and its instances.
struct PluginEntry {
    shared: Arc<Shared>,
    /// The plugin-wide instance, found without a lookup. Its task ends only when the entry
    /// is stopped, so it is never replaced.
    plugin_wide: std::sync::OnceLock<Arc<Slot>>,
    /// Users' instances, by user id.
    slots: Mutex<FxHashMap<String, Arc<Slot>>>,
}

/// Requests to one instance task waiting at once; callers beyond wait for room.
const COMMAND_QUEUE: usize = 64;

/// How long [`Supervisor::shutdown`] waits for instance tasks before aborting them.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(15);

/// The plugins of a host, each kept alive and healthy.
pub struct Supervisor {
    launcher: Arc<dyn Launcher>,
    policy: HealthPolicy,
    metrics: Arc<Metrics>,
    plugins: Mutex<FxHashMap<String, Arc<PluginEntry>>>,
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
        // The wall clock for latency (tokio's clock can be paused, and costs a lock then).
        let started = std::time::Instant::now();
        let entry = self.entry(plugin);
        let result = self.call_counted(&entry, plugin, user, method, params, timeout).await;
        entry.shared.counter.record(method, result.as_ref().map(drop), started.elapsed());
        if let Err(PluginError::NotRegistered { user: unconnected, .. }) = &result {
            self.forget_unregistered(entry, plugin, unconnected.as_deref());
        }
        result
    }

    /// Lets go of what a call for an unregistered plugin, or an unconnected user, made: the
    /// idle instance task and, for an unknown plugin, its entry and counts. Calls with
    /// made-up ids leave nothing behind; a plugin removed by another process is stopped
    /// here when a start of it finds it gone.
    /// Only what no other caller is using at that moment is let go.
    fn forget_unregistered(&self, entry: Arc<PluginEntry>, plugin: &str, unconnected: Option<&str>) {
        match unconnected {
            Some(user) => {
                let mut slots = lock(&entry.slots);
                if slots.get(user).is_some_and(|slot| Arc::strong_count(slot) == 1) {
                    slots.remove(user);
                }
            }
            None => {
                let mut plugins = lock(&self.plugins);
                // Held by the map and by this call only.
                if plugins.get(plugin).is_some_and(|known| Arc::ptr_eq(known, &entry) && Arc::strong_count(known) == 2)
                {
                    plugins.remove(plugin);
                    self.metrics.forget(plugin);
                }
            }
        }
    }

    /// What this host started from registrations that have changed since: instances
    /// started from older revisions, plugins removed, and plugins it disabled whose
    /// registration changed (an admin's reset). Instances still starting are seen once
    /// they run.
    pub fn outdated(&self, current: &Revisions) -> Vec<Outdated> {
        let entries: Vec<_> =
            lock(&self.plugins).iter().map(|(plugin, entry)| (plugin.clone(), entry.clone())).collect();
        let mut outdated = Vec::new();
        for (plugin, entry) in entries {
            let registered = current.plugins.get(&plugin);
            let disabled_from = *lock(&entry.shared.disabled_from);
            let mut plugin_changed = entry.shared.disabled.load(Ordering::Relaxed)
                && disabled_from.is_some_and(|from| registered != Some(&from));
            let mut users = Vec::new();
            let mut slots: Vec<(Option<String>, Arc<Slot>)> =
                lock(&entry.slots).iter().map(|(user, slot)| (Some(user.clone()), slot.clone())).collect();
            slots.extend(entry.plugin_wide.get().map(|slot| (None, slot.clone())));
            for (user, slot) in slots {
                let Some(started_from) = slot.live().and_then(|live| live.revision) else { continue };
                if !started_from.is_behind(current.of(&plugin, user.as_deref()).as_ref()) {
                    continue;
                }
                match user {
                    Some(user) if registered == Some(&started_from.plugin) => users.push(user),
                    _ => plugin_changed = true,
                }
            }
            if plugin_changed {
                outdated.push(Outdated::Plugin(plugin));
            } else {
                outdated.extend(users.into_iter().map(|user| Outdated::User { plugin: plugin.clone(), user }));
            }
        }
        outdated
    }

    /// Stops one user's instance of `plugin` gracefully, at once (a user disconnected);
    /// a session on it is told on its next call. It starts again on the next call.
    pub async fn stop_user(&self, plugin: &str, user: &str) {
        let entry = lock(&self.plugins).get(plugin).cloned();
        let slot = entry.and_then(|entry| lock(&entry.slots).remove(user));
        if let Some(slot) = slot {
            stop_slot(&slot).await;
        }
    }

    /// Restarts one user's instance after a change to the connection: a session on it is
    /// waited for first, up to [`LEASE_WAIT`], so its job finishes on the instance it
    /// started on.
    pub async fn restart_user(&self, plugin: &str, user: &str) {
        let Some(entry) = lock(&self.plugins).get(plugin).cloned() else { return };
        let Some(slot) = lock(&entry.slots).get(user).cloned() else { return };
        slot.activity.leases_ended(LEASE_WAIT).await;
        let removed = {
            let mut slots = lock(&entry.slots);
            match slots.get(user) {
                Some(current) if Arc::ptr_eq(current, &slot) => slots.remove(user),
                _ => None,
            }
        };
        if let Some(slot) = removed {
            stop_slot(&slot).await;
        }
    }

    /// Evicts the least recently used idle instance of `transport` (`"wasm"`, `"process"`),
    /// of `plugin` only when given, to make room for another: stopped gracefully, started
    /// again on its next call. An instance with a call in flight is never chosen. Returns
    /// whether one was evicted.
    pub async fn evict_idle(&self, transport: &str, plugin: Option<&str>) -> bool {
        let entries: Vec<_> = lock(&self.plugins)
            .iter()
            .filter(|(id, _)| plugin.is_none_or(|plugin| plugin == id.as_str()))
            .map(|(_, entry)| entry.clone())
            .collect();
        let mut candidates: Vec<(u64, Arc<Slot>)> = Vec::new();
        for entry in entries {
            let mut slots: Vec<Arc<Slot>> = lock(&entry.slots).values().cloned().collect();
            slots.extend(entry.plugin_wide.get().cloned());
            let running = slots.into_iter().filter(|slot| {
                slot.activity.is_idle() && slot.live().is_some_and(|live| live.plugin.label().transport() == transport)
            });
            candidates.extend(running.map(|slot| (slot.activity.last_used(), slot)));
        }
        candidates.sort_by_key(|(last_used, _)| *last_used);
        for (_, slot) in candidates {
            let (reply, evicted) = oneshot::channel();
            if slot.commands.send(Command::Evict(reply)).await.is_ok() && evicted.await.unwrap_or(false) {
                return true;
            }
        }
        false
    }

    /// Instance tasks running: one for each plugin, and each user's connection to one,
    /// called since it was last stopped.
    pub fn instance_tasks(&self) -> usize {
        lock(&self.tasks).iter().filter(|task| !task.is_finished()).count()
    }

    async fn call_counted(
        &self,
        entry: &PluginEntry,
        plugin: &str,
        user: Option<&str>,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Value, PluginError> {
        let slot = self.slot(entry, plugin, user);
        self.call_slot(entry, &slot, plugin, method, params, timeout, None).await
    }

    /// A call on one instance's slot. A session passes the generation it is pinned to: an
    /// instance restarted under it is not silently replaced, the session is told.
    #[allow(clippy::too_many_arguments)]
    async fn call_slot(
        &self,
        entry: &PluginEntry,
        slot: &Slot,
        plugin: &str,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
        pinned: Option<&session::Pin>,
    ) -> Result<Value, PluginError> {
        if entry.shared.disabled.load(Ordering::Relaxed)
            && let Err(disabled) = entry.shared.health().may_start()
        {
            return Err(PluginError::Disabled { plugin: plugin.to_owned(), reason: disabled.reason });
        }
        // Counted before the instance is read: an eviction that finds no call in flight
        // unpublishes first, so this call either sees it gone or is seen.
        let busy = slot.activity.begin();
        let published = slot.live();
        if let Some(pin) = pinned {
            // A session whose instance is gone is told, before anything is started for it.
            pin.check_published(plugin, published.as_ref().map(|live| live.generation))?;
        }
        let live = match published {
            Some(live) => live,
            None => acquire(slot, plugin, timeout).await?,
        };
        if let Some(pin) = pinned {
            pin.check(plugin, live.generation)?;
        }
        let result = live.plugin.call_raw(method, params, timeout).await;
        drop(busy);
        match &result {
            // An answer, a result or a domain error, is a sign of health.
            Ok(_) => entry.shared.record_success(),
            Err(error @ PluginError::Answered { .. }) if !error.is_fault() => entry.shared.record_success(),
            // A death is seen by the instance's task itself, once, however many calls it
            // failed; a deadline the caller chose shorter than the plugin's is not its fault.
            Err(PluginError::Closed { .. }) => {}
            Err(PluginError::Timeout { after, .. }) if *after < live.plugin.timeout_for(method) => {}
            Err(error) if error.is_fault() => {
                let fault = Command::Fault { generation: live.generation, fault: error.to_string() };
                drop(live);
                let _ = slot.commands.send(fault).await;
            }
            Err(_) => {}
        }
        result
    }

    /// A session on one instance of `plugin` (for `user`): its calls all go to the same
    /// instance, which is neither evicted nor stopped when idle while the session lives,
    /// and which an admin's change restarts only once the session ends (or, waiting longer
    /// than [`LEASE_WAIT`], under it: the session's next call is then told).
    pub fn session(&self, plugin: &str, user: Option<&str>) -> Session<'_> {
        let entry = self.entry(plugin);
        let slot = self.slot(&entry, plugin, user);
        Session::new(self, entry, slot, plugin, user)
    }

    /// The plugin's health right now.
    pub fn health(&self, plugin: &str) -> HealthState {
        self.entry(plugin).shared.health().state(Instant::now())
    }

    /// Clears the plugin's faults and any disable, in this host (the caller clears the
    /// registry).
    pub fn reset(&self, plugin: &str) {
        let entry = self.entry(plugin);
        entry.shared.health().reset();
        entry.shared.disabled.store(false, Ordering::Relaxed);
        *lock(&entry.shared.disabled_from) = None;
    }

    /// Stops every instance of `plugin` gracefully, at once (it was removed or disabled;
    /// sessions are told on their next call), and forgets its health.
    pub async fn stop_plugin(&self, plugin: &str) {
        let entry = lock(&self.plugins).remove(plugin);
        if let Some(entry) = entry {
            stop_slots(&entry).await;
        }
    }

    /// Restarts every instance of `plugin` after a change to its registration: sessions on
    /// them are waited for first, all within one [`LEASE_WAIT`]. It starts again on the next
    /// call, and its health is forgotten.
    pub async fn restart_plugin(&self, plugin: &str) {
        let Some(known) = lock(&self.plugins).get(plugin).cloned() else { return };
        let mut slots: Vec<Arc<Slot>> = lock(&known.slots).values().cloned().collect();
        slots.extend(known.plugin_wide.get().cloned());
        futures::future::join_all(slots.iter().map(|slot| slot.activity.leases_ended(LEASE_WAIT))).await;
        let entry = {
            let mut plugins = lock(&self.plugins);
            match plugins.get(plugin) {
                Some(current) if Arc::ptr_eq(current, &known) => plugins.remove(plugin),
                _ => None,
            }
        };
        if let Some(entry) = entry {
            stop_slots(&entry).await;
        }
    }

    /// Stops every instance of every plugin gracefully, and waits for their tasks.
    pub async fn shutdown(&self) {
        let entries: Vec<_> = lock(&self.plugins).drain().collect();
        futures::future::join_all(entries.iter().map(|(_, entry)| stop_slots(entry))).await;
        drop(entries);
        let tasks = std::mem::take(&mut *lock(&self.tasks));
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        if tokio::time::timeout(SHUTDOWN_WAIT, futures::future::join_all(tasks)).await.is_err() {
            tracing::warn!("instance tasks still busy after {} s: aborted", SHUTDOWN_WAIT.as_secs());
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
        }
    }

    fn entry(&self, plugin: &str) -> Arc<PluginEntry> {
        let mut plugins = lock(&self.plugins);
        if let Some(entry) = plugins.get(plugin) {
            return entry.clone();
        }
        let shared = Arc::new(Shared {
            health: Mutex::new(Health::new(self.policy)),
            disabled: AtomicBool::new(false),
            suspect: AtomicBool::new(false),
            disabled_from: Mutex::new(None),
            counter: self.metrics.counter(plugin),
        });
        let entry = Arc::new(PluginEntry { shared, plugin_wide: std::sync::OnceLock::new(), slots: Mutex::default() });
        plugins.insert(plugin.to_owned(), entry.clone());
        entry
    }

    /// The instance's slot, its task started on first use.
    fn slot(&self, entry: &PluginEntry, plugin: &str, user: Option<&str>) -> Arc<Slot> {
        if user.is_none() {
            return entry.plugin_wide.get_or_init(|| self.start_slot(entry, plugin, None)).clone();
        }
        let mut slots = lock(&entry.slots);
        if let Some(slot) = slots.get(user.unwrap_or_default()).filter(|slot| !slot.commands.is_closed()) {
            return slot.clone();
        }
        let slot = self.start_slot(entry, plugin, user);
        slots.insert(user.unwrap_or_default().to_owned(), slot.clone());
        slot
    }

    /// Starts an instance's task, and gives its slot.
    fn start_slot(&self, entry: &PluginEntry, plugin: &str, user: Option<&str>) -> Arc<Slot> {
        let (commands, received) = mpsc::channel(COMMAND_QUEUE);
        let live = Arc::new(Mutex::new(None));
        let activity = Arc::new(Activity::default());
        let instance = Instance::new(
            InstanceKey { plugin: plugin.to_owned(), user: user.map(str::to_owned) },
            self.launcher.clone(),
            entry.shared.clone(),
            live.clone(),
            activity.clone(),
            received,
            commands.downgrade(),
        );
        let mut tasks = lock(&self.tasks);
        tasks.retain(|task| !task.is_finished());
        tasks.push(tokio::spawn(instance.run()));
        Arc::new(Slot { commands, live, activity })
    }
}

/// Asks the instance's task for the running instance, started if needed.
async fn acquire(slot: &Slot, plugin: &str, timeout: Option<Duration>) -> Result<Live, PluginError> {
    let wait = timeout.unwrap_or(crate::limits::DEFAULT_REQUEST_TIMEOUT);
    let (reply, answer) = oneshot::channel();
    let gone = || PluginError::Launch { plugin: plugin.to_owned(), why: "the plugin is being stopped".into() };
    slot.commands.send(Command::Acquire { wait, reply }).await.map_err(|_| gone())?;
    answer.await.map_err(|_| gone())?
}

/// Stops a plugin's instances at once, each gracefully, and waits for them.
async fn stop_slots(entry: &PluginEntry) {
    let mut slots: Vec<_> = lock(&entry.slots).drain().map(|(_, slot)| slot).collect();
    slots.extend(entry.plugin_wide.get().cloned());
    futures::future::join_all(slots.iter().map(|slot| stop_slot(slot))).await;
}

/// Stops one instance gracefully, and waits for it.
async fn stop_slot(slot: &Slot) {
    let (done, stopped) = oneshot::channel();
    if slot.commands.send(Command::Stop(done)).await.is_ok() {
        let _ = stopped.await;
    }
}

impl Drop for Supervisor {
    /// No instance task outlives its supervisor: a plugin still running is killed.
    fn drop(&mut self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}
