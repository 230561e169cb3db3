//! Components kept in memory, one per file content: every instance of every plugin whose
//! `.wasm` has the same bytes shares one compiled component, loaded from disk (or compiled)
//! once. A start checks the file's identity (device, inode, size, change time) and reads
//! nothing else when it is unchanged; a changed file is read, hashed and loaded again.

use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::WasmError;
use super::cache::ComponentCache;
use super::runtime::{WasmComponent, WasmRuntime};

/// What tells a file changed without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    device: u64,
    inode: u64,
    size: u64,
    changed_ns: i128,
    modified_ns: i128,
}

impl FileIdentity {
    fn of(metadata: &std::fs::Metadata) -> Self {
        Self {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
            changed_ns: i128::from(metadata.ctime()) * 1_000_000_000 + i128::from(metadata.ctime_nsec()),
            modified_ns: i128::from(metadata.mtime()) * 1_000_000_000 + i128::from(metadata.mtime_nsec()),
        }
    }
}

#[derive(Default)]
struct Tables {
    /// The content hash each file had when last read.
    files: FxHashMap<PathBuf, (FileIdentity, [u8; 32])>,
    /// One component per content hash.
    components: FxHashMap<[u8; 32], WasmComponent>,
}

/// The components a host has loaded.
#[derive(Default)]
pub struct LoadedComponents {
    tables: Mutex<Tables>,
    /// One lock per file: starts that find a file not loaded yet load it one at a time,
    /// and the ones after the first find it loaded.
    loading: Mutex<FxHashMap<PathBuf, Arc<Mutex<()>>>>,
    loads: AtomicU64,
}

impl LoadedComponents {
    /// The component of the file at `path`: from memory when its content was loaded before,
    /// else from the disk cache (or compiled) and kept. Blocks while another start loads
    /// the same file: call it off the async workers.
    pub fn get(&self, runtime: &WasmRuntime, cache: &ComponentCache, path: &Path) -> Result<WasmComponent, WasmError> {
        let file_lock = {
            let mut loading = self.loading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            loading.entry(path.to_path_buf()).or_default().clone()
        };
        let _one_at_a_time = file_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.get_locked(runtime, cache, path)
    }

    fn get_locked(
        &self,
        runtime: &WasmRuntime,
        cache: &ComponentCache,
        path: &Path,
    ) -> Result<WasmComponent, WasmError> {
        let shown = || path.display().to_string();
        let metadata =
            std::fs::metadata(path).map_err(|error| WasmError::Load { path: shown(), source: error.into() })?;
        let identity = FileIdentity::of(&metadata);
        {
            let tables = self.lock();
            if let Some((known, hash)) = tables.files.get(path)
                && *known == identity
                && let Some(component) = tables.components.get(hash)
            {
                return Ok(component.clone());
            }
        }
        let bytes = std::fs::read(path).map_err(|error| WasmError::Load { path: shown(), source: error.into() })?;
        let hash: [u8; 32] = Sha256::digest(&bytes).into();
        let known = self.lock().components.get(&hash).cloned();
        let component = match known {
            Some(component) => component,
            None => {
                self.loads.fetch_add(1, Ordering::Relaxed);
                let (component, outcome) = runtime.load_bytes_cached(&bytes, shown(), cache)?;
                tracing::debug!(path = %path.display(), "component loaded ({outcome:?} in the disk cache)");
                component
            }
        };
        let mut tables = self.lock();
        tables.files.insert(path.to_path_buf(), (identity, hash));
        tables.components.entry(hash).or_insert_with(|| component.clone());
        Ok(component)
    }

    /// The component of `path` when its file is unchanged since it was loaded: one `stat`,
    /// no read. `None` means [`LoadedComponents::get`] has work to do.
    pub fn cached(&self, path: &Path) -> Option<WasmComponent> {
        let identity = FileIdentity::of(&std::fs::metadata(path).ok()?);
        let tables = self.lock();
        let (known, hash) = tables.files.get(path)?;
        (*known == identity).then(|| tables.components.get(hash).cloned()).flatten()
    }

    /// How many components were loaded from the disk cache or compiled: once per content.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
