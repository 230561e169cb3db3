//! How many plugin instances a host holds at once. A wasm instance takes a slot of the
//! engine's pool (address space reserved up front); the host admits no more instances than
//! it has slots, so a full pool is a condition the host handles (an idle instance is
//! evicted, or the caller waits, bounded, then is told the host is at capacity) and never
//! a plugin's fault.

use nix::sys::resource::{Resource, getrlimit};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Wasm instances a host admits unless told otherwise, when the machine allows it.
pub const DEFAULT_WASM_CAPACITY: u32 = 1000;
/// Open files a host keeps for itself (its database, sockets, logs) before counting what
/// its instances need.
const RESERVED_FILES: u64 = 256;
/// Open files one wasm instance needs (its data directory, its disk quota's handles).
const FILES_PER_WASM_INSTANCE: u64 = 2;
/// Address space one pool slot reserves for a guest of the default limit: two memories of
/// 64 MiB with their 32 MiB guards, tables and a stack, rounded up. A host given larger
/// limits has fewer places than this suggests; set its capacity then.
const ADDRESS_SPACE_PER_SLOT: u64 = 256 << 20;

/// A place in the host's capacity, held by an instance for as long as it lives.
#[derive(Debug)]
pub struct Place(#[allow(dead_code)] OwnedSemaphorePermit);

/// The places of one kind of instance.
#[derive(Debug, Clone)]
pub struct Capacity {
    places: Arc<Semaphore>,
    total: u32,
}

impl Capacity {
    pub fn new(total: u32) -> Self {
        Self { places: Arc::new(Semaphore::new(total as usize)), total }
    }

    /// A free place, if there is one and no start is waiting for one.
    pub fn try_take(&self) -> Option<Place> {
        self.places.clone().try_acquire_owned().ok().map(Place)
    }

    /// The next place that comes free, in the order starts asked (the semaphore is fair).
    pub async fn take(&self) -> Place {
        match self.places.clone().acquire_owned().await {
            Ok(permit) => Place(permit),
            Err(_) => unreachable!("the places are never closed"),
        }
    }

    pub fn total(&self) -> u32 {
        self.total
    }

    /// Places in use now.
    pub fn in_use(&self) -> u32 {
        self.total - self.places.available_permits() as u32
    }
}

/// How many wasm instances this machine lets a host hold: [`DEFAULT_WASM_CAPACITY`], or
/// fewer when the open-file limit (already raised to its hard limit) or an address-space
/// limit would not hold that many.
pub fn default_wasm_capacity() -> u32 {
    let files = getrlimit(Resource::RLIMIT_NOFILE).map_or(u64::MAX, |(soft, _)| soft);
    let by_files = files.saturating_sub(RESERVED_FILES) / FILES_PER_WASM_INSTANCE;
    let address_space = getrlimit(Resource::RLIMIT_AS).map_or(u64::MAX, |(soft, _)| soft);
    let by_address_space = address_space / ADDRESS_SPACE_PER_SLOT;
    let capacity = u64::from(DEFAULT_WASM_CAPACITY).min(by_files).min(by_address_space).max(1);
    u32::try_from(capacity).unwrap_or(DEFAULT_WASM_CAPACITY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_taken_and_come_back_when_let_go() {
        let capacity = Capacity::new(2);
        let first = capacity.try_take().unwrap();
        let _second = capacity.try_take().unwrap();
        assert!(capacity.try_take().is_none());
        assert_eq!(capacity.in_use(), 2);
        drop(first);
        assert!(capacity.try_take().is_some());
    }

    #[tokio::test]
    async fn places_go_to_waiting_starts_in_order() {
        let capacity = Capacity::new(1);
        let held = capacity.try_take().unwrap();
        let mut first = Box::pin(capacity.take());
        assert!(futures::FutureExt::now_or_never(&mut first).is_none(), "the first waiter queues");
        let mut second = Box::pin(capacity.take());
        assert!(futures::FutureExt::now_or_never(&mut second).is_none());
        drop(held);
        assert!(capacity.try_take().is_none(), "a newcomer does not jump the queue");
        assert!(futures::FutureExt::now_or_never(&mut second).is_none(), "the second waits behind the first");
        let place = first.await;
        drop(place);
        second.await;
    }

    #[test]
    fn the_default_fits_the_machine() {
        let capacity = default_wasm_capacity();
        assert!((1..=DEFAULT_WASM_CAPACITY).contains(&capacity));
    }
}
