//! What every guest of a host shares: the engine, the linker, and the epoch ticker.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};
use wasmtime_wasi::p2::bindings::CommandPre;

use super::WasmError;
use super::cache::{CacheOutcome, ComponentCache};
use super::guest::GuestState;

/// How often the engine's epoch advances: the granularity at which a running guest yields
/// to other tasks (and, later, at which a spinning guest is stopped).
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The engine and linker of a host; cheap to clone.
#[derive(Clone)]
pub struct WasmRuntime {
    engine: Engine,
    linker: Arc<Linker<GuestState>>,
}

impl WasmRuntime {
    /// An engine with epoch interruption, and a linker with WASI 0.2. Starts the epoch
    /// ticker, a thread that ends when the last clone of the engine is dropped.
    pub fn new() -> Result<Self, WasmError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(WasmError::Engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(WasmError::Engine)?;
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
        let load = |source: wasmtime::Error| WasmError::Load { path: shown.clone(), source };
        let bytes = std::fs::read(path).map_err(|error| load(error.into()))?;
        let (component, outcome) = cache.load(&self.engine, &bytes).map_err(load)?;
        Ok((self.prepare(component, shown.clone())?, outcome))
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

/// A compiled component, ready to instantiate as many guests as needed.
#[derive(Clone)]
pub struct WasmComponent {
    pub(super) pre: CommandPre<GuestState>,
}
