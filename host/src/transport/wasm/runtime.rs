//! What every guest of a host shares: the engine, the linker, and the epoch ticker.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi::p2::bindings::CommandPre;

use super::WasmError;
use super::cache::{CacheOutcome, ComponentCache};
use super::guest::GuestState;

/// How often the engine's epoch advances: the granularity at which a running guest yields
/// to other tasks (and, later, at which a spinning guest is stopped).
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Guests one host holds at once unless told otherwise.
pub const DEFAULT_GUEST_CAPACITY: u32 = 1000;

/// Where a linear memory's slot ends and the next begins: accesses past a memory land here
/// and trap. Wasmtime's default on 64-bit hosts.
const GUARD_BYTES: u64 = 32 << 20;

/// What one guest may take from the pool. A Rust `wasm32-wasip2` plugin uses one memory,
/// two tables and four core instances; the headroom is for other toolchains.
const CORE_INSTANCES_PER_GUEST: u32 = 8;
const MEMORIES_PER_GUEST: u32 = 2;
const TABLES_PER_GUEST: u32 = 4;

/// The engine and linker of a host; cheap to clone.
#[derive(Clone)]
pub struct WasmRuntime {
    engine: Engine,
    linker: Arc<Linker<GuestState>>,
    max_memory_bytes: u64,
}

impl WasmRuntime {
    /// [`WasmRuntime::with_capacity`] for [`DEFAULT_GUEST_CAPACITY`] guests of the default
    /// memory limit.
    pub fn new() -> Result<Self, WasmError> {
        Self::with_capacity(DEFAULT_GUEST_CAPACITY, super::DEFAULT_MEMORY_LIMIT_BYTES as u64)
    }

    /// An engine with epoch interruption and a pooling allocator sized for `guests` guests
    /// at once, each memory of at most `max_memory_bytes`, and a linker with WASI 0.2 and
    /// `wasi:http`. Starts the epoch ticker, a thread that ends when the last clone of the
    /// engine is dropped.
    ///
    /// A memory slot reserves `max_memory_bytes` (in whole pages) and a 32 MiB guard of
    /// address space, not the 4 GiB a 32-bit memory could address: thousands of guests fit
    /// well inside a process's address space. Compiled code then checks bounds itself; the
    /// reservation is part of the engine's compatibility hash, so cached code compiled for
    /// another reservation is never loaded.
    pub fn with_capacity(guests: u32, max_memory_bytes: u64) -> Result<Self, WasmError> {
        let memory_bytes = max_memory_bytes.max(64 << 10).next_multiple_of(64 << 10);
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.memory_reservation(memory_bytes).memory_guard_size(GUARD_BYTES).memory_reservation_for_growth(0);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool_for(guests, memory_bytes)));
        let engine = Engine::new(&config).map_err(WasmError::Engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(WasmError::Engine)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(WasmError::Engine)?;
        super::filesystem::link_disk_quota(&mut linker).map_err(WasmError::Engine)?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|error| WasmError::Engine(error.into()))?;
        Ok(Self { engine, linker: Arc::new(linker), max_memory_bytes: memory_bytes })
    }

    /// The most linear memory a guest of this engine may have: its pool's slot size.
    pub fn max_memory_bytes(&self) -> u64 {
        self.max_memory_bytes
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles the component at `path` and checks that it is a WASI command.
    pub fn load(&self, path: &Path) -> Result<WasmComponent, WasmError> {
        let shown = path.display().to_string();
        let component = Component::from_file(&self.engine, path)
            .map_err(|source| WasmError::Load { path: shown.clone(), source })?;
        self.prepare(component, shown)
    }

    /// [`WasmRuntime::load`] through a cache of compiled components: a component compiles
    /// once, then loads from disk.
    pub fn load_cached(&self, path: &Path, cache: &ComponentCache) -> Result<(WasmComponent, CacheOutcome), WasmError> {
        let shown = path.display().to_string();
        let bytes =
            std::fs::read(path).map_err(|error| WasmError::Load { path: shown.clone(), source: error.into() })?;
        self.load_bytes_cached(&bytes, shown, cache)
    }

    /// [`WasmRuntime::load_cached`] of bytes already read; `shown` names them in errors.
    pub fn load_bytes_cached(
        &self,
        bytes: &[u8],
        shown: String,
        cache: &ComponentCache,
    ) -> Result<(WasmComponent, CacheOutcome), WasmError> {
        let (component, outcome) =
            cache.load(&self.engine, bytes).map_err(|source| WasmError::Load { path: shown.clone(), source })?;
        Ok((self.prepare(component, shown)?, outcome))
    }

    /// Checks the component against the plugin world, then links it.
    fn prepare(&self, component: Component, shown: String) -> Result<WasmComponent, WasmError> {
        let forbidden = super::world::forbidden_imports(&self.engine, &component);
        if !forbidden.is_empty() {
            return Err(WasmError::ForbiddenImports { path: shown, imports: forbidden });
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(CommandPre::new)
            .map_err(|source| WasmError::NotACommand { path: shown, source })?;
        Ok(WasmComponent { pre })
    }
}

/// Slots for `guests` guests: instances, memories (each up to `memory_bytes`; a plugin's
/// own limit is the store's limiter), tables and stacks. Slots are address space, reserved
/// once; only what a guest touches becomes resident.
fn pool_for(guests: u32, memory_bytes: u64) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(guests)
        .total_stacks(guests)
        .total_core_instances(guests.saturating_mul(CORE_INSTANCES_PER_GUEST))
        .total_memories(guests.saturating_mul(MEMORIES_PER_GUEST))
        .total_tables(guests.saturating_mul(TABLES_PER_GUEST))
        .max_core_instances_per_component(CORE_INSTANCES_PER_GUEST)
        .max_memories_per_component(MEMORIES_PER_GUEST)
        .max_tables_per_component(TABLES_PER_GUEST)
        .max_memory_size(usize::try_from(memory_bytes).unwrap_or(usize::MAX));
    pool
}

/// A compiled component, ready to instantiate as many guests as needed.
#[derive(Clone)]
pub struct WasmComponent {
    pub(super) pre: CommandPre<GuestState>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reserved_bytes() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|line| line.starts_with("VmSize:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    }

    /// Slots sized from the memory limit, not the 4 GiB a 32-bit memory could address:
    /// 12,000 guests (past the 10,500 that 8 GiB slots allowed) reserve about 2 TiB.
    #[test]
    fn twelve_thousand_guests_fit_when_slots_are_sized_from_the_limit() {
        let before = reserved_bytes();
        let runtime = WasmRuntime::with_capacity(12_000, 64 << 20).unwrap();
        let reserved = reserved_bytes().saturating_sub(before);
        assert_eq!(runtime.max_memory_bytes(), 64 << 20);
        let per_guest = reserved / 12_000;
        assert!(per_guest < 512 << 20, "{} MiB of address space per guest", per_guest >> 20);
        assert_eq!(WasmRuntime::with_capacity(1, 100_000).unwrap().max_memory_bytes(), 131_072, "whole pages");
    }
}
