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
}

impl WasmRuntime {
    /// [`WasmRuntime::with_capacity`] for [`DEFAULT_GUEST_CAPACITY`] guests.
    pub fn new() -> Result<Self, WasmError> {
        Self::with_capacity(DEFAULT_GUEST_CAPACITY)
    }

    /// An engine with epoch interruption and a pooling allocator sized for `guests` guests
    /// at once, and a linker with WASI 0.2 and `wasi:http`. Starts the epoch ticker, a
    /// thread that ends when the last clone of the engine is dropped.
    pub fn with_capacity(guests: u32) -> Result<Self, WasmError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool_for(guests)));
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
        Ok(Self { engine, linker: Arc::new(linker) })
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

/// Slots for `guests` guests: instances, memories (each up to 4 GiB, the most a 32-bit
/// memory can address; a plugin's own limit is the store's limiter), tables and stacks.
/// Slots are address space, reserved once; only what a guest touches becomes resident.
fn pool_for(guests: u32) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(guests)
        .total_stacks(guests)
        .total_core_instances(guests.saturating_mul(CORE_INSTANCES_PER_GUEST))
        .total_memories(guests.saturating_mul(MEMORIES_PER_GUEST))
        .total_tables(guests.saturating_mul(TABLES_PER_GUEST))
        .max_core_instances_per_component(CORE_INSTANCES_PER_GUEST)
        .max_memories_per_component(MEMORIES_PER_GUEST)
        .max_tables_per_component(TABLES_PER_GUEST)
        .max_memory_size(1 << 32);
    pool
}

/// A compiled component, ready to instantiate as many guests as needed.
#[derive(Clone)]
pub struct WasmComponent {
    pub(super) pre: CommandPre<GuestState>,
}
