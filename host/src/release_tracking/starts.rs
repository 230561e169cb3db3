//! What this host saw of each release plugin's instances: how many started and how many
//! registrations they made, so that whoever starts one can wait for its registration.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Seen {
    pub starts: u64,
    pub registrations: u64,
    /// An instance started and has not tried to register since.
    pub pending: bool,
}

#[derive(Default)]
pub(super) struct Starts {
    seen: Mutex<HashMap<String, Seen>>,
    changed: tokio::sync::Notify,
}

impl Starts {
    pub fn seen(&self, plugin: &str) -> Seen {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).get(plugin).copied().unwrap_or_default()
    }

    pub fn started(&self, plugin: &str) {
        self.count(plugin, |seen| {
            seen.starts += 1;
            seen.pending = true;
        });
    }

    /// A registration came (or was tried: a refused one counts).
    pub fn registered(&self, plugin: &str) {
        self.count(plugin, |seen| {
            seen.registrations += 1;
            seen.pending = false;
        });
    }

    fn count(&self, plugin: &str, change: impl FnOnce(&mut Seen)) {
        change(self.seen.lock().unwrap_or_else(PoisonError::into_inner).entry(plugin.to_owned()).or_default());
        self.changed.notify_waiters();
    }

    /// Waits (at most `wait`) while an instance that started has not registered yet: a
    /// plugin registers its sources as it starts (before it answers `initialize`, or just
    /// after).
    pub async fn registration(&self, plugin: &str, wait: Duration) {
        let registered = async {
            loop {
                let changed = self.changed.notified();
                if !self.seen(plugin).pending {
                    return;
                }
                changed.await;
            }
        };
        let _ = tokio::time::timeout(wait, registered).await;
    }
}
