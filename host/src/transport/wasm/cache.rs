//! Compiled components on disk, so a plugin compiles once, not at every start.
//!
//! An entry is named by the sha256 of the `.wasm` and by the engine's compatibility hash
//! (wasmtime version, compiler settings, CPU features): a different engine never reads an
//! entry it cannot use. Loading a precompiled artifact runs native code, so only entries
//! this host wrote are read: the cache folder is created private (0700), and an entry not
//! owned by this user, or writable by anyone else, is ignored and recompiled.

use sha2::{Digest, Sha256};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Whether a load found its compiled code on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
}

/// A folder of compiled components.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
}

impl ComponentCache {
    /// Uses (and creates, private) `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        Ok(Self { dir: dir.to_path_buf() })
    }

    /// The component for `bytes`: from the cache when a trusted entry exists, else
    /// compiled and stored.
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<(Component, CacheOutcome)> {
        let entry = self.dir.join(entry_name(engine, bytes));
        if is_ours(&entry) {
            // SAFETY: the entry was written by this host (same user, not writable by anyone
            // else) for this exact engine configuration, as its name says.
            match unsafe { Component::deserialize_file(engine, &entry) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(error) => tracing::warn!(entry = %entry.display(), "ignoring an unreadable cache entry: {error}"),
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(error) = self.store(&entry, &component.serialize()?) {
            tracing::warn!(entry = %entry.display(), "could not cache a compiled component: {error}");
        }
        Ok((component, CacheOutcome::Miss))
    }

    /// Writes beside the entry, then renames: a reader never sees half an entry.
    fn store(&self, entry: &Path, compiled: &[u8]) -> std::io::Result<()> {
        let mut partial = tempfile::NamedTempFile::new_in(&self.dir)?;
        partial.write_all(compiled)?;
        partial.as_file().set_permissions(std::fs::Permissions::from_mode(0o600))?;
        partial.persist(entry).map_err(|error| error.error)?;
        Ok(())
    }
}

fn entry_name(engine: &Engine, bytes: &[u8]) -> String {
    let source: String = Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect();
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{source}-{:016x}.cwasm", hasher.finish())
}

/// An entry this host can trust: a regular file of this user that nobody else may write.
fn is_ours(entry: &Path) -> bool {
    let Ok(metadata) = std::fs::symlink_metadata(entry) else { return false };
    metadata.is_file() && metadata.uid() == nix::unistd::getuid().as_raw() && metadata.mode() & 0o022 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid component, `(component)`, in its binary encoding.
    const EMPTY_COMPONENT: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        Engine::new(&config).unwrap()
    }

    #[test]
    fn the_second_load_is_a_hit_and_a_tampered_entry_is_recompiled() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ComponentCache::open(&dir.path().join("cache")).unwrap();
        let engine = engine();
        let bytes = EMPTY_COMPONENT;
        assert_eq!(cache.load(&engine, &bytes).unwrap().1, CacheOutcome::Miss);
        assert_eq!(cache.load(&engine, &bytes).unwrap().1, CacheOutcome::Hit);
        let entry = std::fs::read_dir(dir.path().join("cache")).unwrap().next().unwrap().unwrap().path();
        std::fs::write(&entry, b"not an ELF file").unwrap();
        assert_eq!(cache.load(&engine, &bytes).unwrap().1, CacheOutcome::Miss, "garbage is recompiled");
        assert_eq!(cache.load(&engine, &bytes).unwrap().1, CacheOutcome::Hit, "and rewritten");
    }

    #[test]
    fn entries_anyone_else_may_write_are_never_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ComponentCache::open(&dir.path().join("cache")).unwrap();
        let engine = engine();
        let bytes = EMPTY_COMPONENT;
        cache.load(&engine, &bytes).unwrap();
        let entry = std::fs::read_dir(dir.path().join("cache")).unwrap().next().unwrap().unwrap().path();
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(cache.load(&engine, &bytes).unwrap().1, CacheOutcome::Miss);
        let mode = std::fs::metadata(dir.path().join("cache")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the cache folder is private");
    }

    #[test]
    fn another_engine_configuration_uses_another_entry() {
        let bytes = EMPTY_COMPONENT;
        let plain = Engine::new(&wasmtime::Config::new()).unwrap();
        assert_ne!(entry_name(&engine(), &bytes), entry_name(&plain, &bytes));
        assert_ne!(entry_name(&plain, &bytes), entry_name(&plain, b"\0asm\x0d\0\x01\0\0"));
    }
}
