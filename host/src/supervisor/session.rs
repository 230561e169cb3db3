//! Sessions: a job that needs one instance across several calls (a sync: `getUserInfo`,
//! every pull page, every push batch; `call --then`) holds a lease on it. While the lease
//! lives the instance is not idle: it is never evicted nor stopped for idleness, and an
//! admin's change restarts it only once the lease ends, or after [`LEASE_WAIT`]; a call
//! that then finds another instance than the session's first is refused with the reason,
//! never silently sent to a fresh instance that lacks the session's state.

use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::activity::Lease;
use super::{PluginEntry, Slot, Supervisor};
use crate::plugin::PluginError;

/// How long a restart waits for the sessions on an instance to end before it goes ahead.
pub const LEASE_WAIT: Duration = Duration::from_secs(60);

/// The instance generation a session is pinned to, once its first call found one.
#[derive(Debug, Default)]
pub(super) struct Pin(AtomicU64);

impl Pin {
    /// Refuses a session already pinned whose instance is no longer the published one.
    pub fn check_published(&self, plugin: &str, published: Option<u64>) -> Result<(), PluginError> {
        match self.0.load(Ordering::Acquire) {
            0 => Ok(()),
            pinned if published == Some(pinned) => Ok(()),
            _ => Err(lost(plugin)),
        }
    }

    /// Pins the session to `generation`, or refuses if it was pinned to another.
    pub fn check(&self, plugin: &str, generation: u64) -> Result<(), PluginError> {
        match self.0.compare_exchange(0, generation, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Ok(()),
            Err(pinned) if pinned == generation => Ok(()),
            Err(_) => Err(lost(plugin)),
        }
    }
}

fn lost(plugin: &str) -> PluginError {
    PluginError::SessionLost {
        plugin: plugin.to_owned(),
        why: "its instance was stopped under it (a fault, a removal, or an admin's change that waited long enough)"
            .into(),
    }
}

/// One job's hold on one instance; calls made through it all go to that instance.
pub struct Session<'a> {
    supervisor: &'a Supervisor,
    entry: Arc<PluginEntry>,
    slot: Arc<Slot>,
    plugin: String,
    pin: Pin,
    _lease: Lease,
}

impl<'a> Session<'a> {
    pub(super) fn new(
        supervisor: &'a Supervisor,
        entry: Arc<PluginEntry>,
        slot: Arc<Slot>,
        plugin: &str,
        _user: Option<&str>,
    ) -> Self {
        let lease = slot.activity.lease();
        Self { supervisor, entry, slot, plugin: plugin.to_owned(), pin: Pin::default(), _lease: lease }
    }

    /// Calls `method` on the session's instance (started by the first call if needed).
    pub async fn call(&self, method: &str, params: Value, timeout: Option<Duration>) -> Result<Value, PluginError> {
        if self.slot.commands.is_closed() {
            let why = "its instance was stopped (an admin's change that waited long enough)".into();
            return Err(PluginError::SessionLost { plugin: self.plugin.clone(), why });
        }
        let started = std::time::Instant::now();
        let result = self
            .supervisor
            .call_slot(&self.entry, &self.slot, &self.plugin, method, params, timeout, Some(&self.pin))
            .await;
        self.entry.shared.counter.record(method, result.as_ref().map(drop), started.elapsed());
        result
    }

    /// The session's instance itself, once a call has started it. Calls made on it bypass
    /// the supervisor (no health, no metrics, no restart on a fault): this exists so a
    /// bench can measure the supervisor's own cost on one and the same instance.
    pub fn instance(&self) -> Option<Arc<crate::plugin::Plugin>> {
        self.slot.live().map(|live| live.plugin)
    }
}
