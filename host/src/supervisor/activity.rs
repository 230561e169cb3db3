//! What callers tell an instance's task without a message: how many calls are in flight,
//! and when it was last used. Eviction picks the least recently used instance with none.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// The clock last uses are counted on (tokio's, so a test can pause it), in microseconds
/// since the first use.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_micros() -> u64 {
    u64::try_from(EPOCH.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// One instance's use.
#[derive(Debug)]
pub(super) struct Activity {
    in_flight: AtomicUsize,
    /// Sessions holding the instance.
    leases: AtomicUsize,
    last_used: AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Self { in_flight: AtomicUsize::new(0), leases: AtomicUsize::new(0), last_used: AtomicU64::new(now_micros()) }
    }
}

impl Activity {
    /// A call starts; it ends when the guard drops.
    pub fn begin(&self) -> Busy<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.last_used.store(now_micros(), Ordering::Relaxed);
        Busy(self)
    }

    /// No call in flight and no session holding it.
    pub fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && self.leases.load(Ordering::Acquire) == 0
    }

    /// A session holds the instance until the lease drops.
    pub fn lease(self: &std::sync::Arc<Self>) -> Lease {
        self.leases.fetch_add(1, Ordering::AcqRel);
        self.last_used.store(now_micros(), Ordering::Relaxed);
        Lease(self.clone())
    }

    /// Waits until no session holds the instance, at most `wait`; says whether none does.
    pub async fn leases_ended(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while self.leases.load(Ordering::Acquire) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(LEASE_POLL).await;
        }
        true
    }

    pub fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    /// How long since its last call ended (or began, while one is in flight).
    pub fn unused_for(&self) -> Duration {
        Duration::from_micros(now_micros().saturating_sub(self.last_used()))
    }
}

/// How often a restart waiting for sessions to end looks again.
const LEASE_POLL: Duration = Duration::from_millis(20);

/// A session's hold on an instance.
#[derive(Debug)]
pub(super) struct Lease(std::sync::Arc<Activity>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.last_used.store(now_micros(), Ordering::Relaxed);
        self.0.leases.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A call in flight.
pub(super) struct Busy<'a>(&'a Activity);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.last_used.store(now_micros(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
