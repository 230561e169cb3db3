//! A quota on a wasm guest's `/data`: bytes and entries.
//!
//! wasmtime-wasi has no hook for it, so the host wraps the filesystem calls that consume
//! space ([`super::filesystem`]): every byte written through a file's streams or
//! `descriptor.write`, every growth by `set-size`, and every entry created (`open-at` with
//! `create`, `create-directory-at`, `symlink-at`, `link-at`) is charged before it happens.
//! Charges are an estimate from above (an overwrite is charged as new bytes, a `create` of
//! a file that exists as a new entry; deletions are not credited); when a charge would pass
//! the quota, the directory is measured for real (file sizes and entries, links never
//! followed) and the charge is decided on that. Over the quota the call fails as on a full
//! disk (`insufficient-space`, ENOSPC; a write through a file's stream reaches Rust's std
//! as a plain I/O error, since wasi-libc reads no code from a stream's failure) and nothing
//! is written; the guest runs on, and the host logs which quota it reached.
//!
//! What it does not catch: bytes a single write puts past the quota are refused whole, not
//! cut; a file's blocks are counted by its length (a sparse file counts in full); the
//! measurement is at most every [`REMEASURE_EVERY`], so a guest writing at the quota's edge
//! may be refused until the next one.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::sandbox::InstanceDir;
use std::time::{Duration, Instant};

/// Default quota of a wasm guest's data directory.
pub const DEFAULT_QUOTA_BYTES: u64 = 64 << 20;
/// Default number of files, folders and links it may hold.
pub const DEFAULT_QUOTA_ENTRIES: u64 = 10_000;
/// The least time between two measurements of one directory.
pub const REMEASURE_EVERY: Duration = Duration::from_millis(50);

/// The limits of one guest's data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLimits {
    pub bytes: u64,
    pub entries: u64,
}

impl DiskLimits {
    /// The limits an admin set, each in its own unit (the defaults where unset).
    pub fn from_settings(bytes: Option<u64>, entries: Option<u64>) -> Self {
        let defaults = Self::default();
        Self { bytes: bytes.unwrap_or(defaults.bytes), entries: entries.unwrap_or(defaults.entries) }
    }
}

impl Default for DiskLimits {
    fn default() -> Self {
        Self { bytes: DEFAULT_QUOTA_BYTES, entries: DEFAULT_QUOTA_ENTRIES }
    }
}

/// A charge the quota refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OverQuota {
    #[error("the data directory's quota of {limit} bytes is used up")]
    Bytes { limit: u64 },
    #[error("the data directory's quota of {limit} entries is used up")]
    Entries { limit: u64 },
}

impl OverQuota {
    /// As the guest sees it: "no space left on device" (wasmtime-wasi maps no errno to
    /// `quota`).
    pub fn to_io_error(self) -> std::io::Error {
        std::io::Error::from_raw_os_error(nix::libc::ENOSPC)
    }
}

#[derive(Debug)]
struct Usage {
    bytes: u64,
    entries: u64,
    measured_at: Option<Instant>,
    warned: bool,
}

/// One guest's quota: its limits, its directory, and what it is charged so far.
#[derive(Debug)]
pub struct DiskQuota {
    limits: DiskLimits,
    /// Where to measure: the guest's directory as opened, kept open here.
    dir: Option<Arc<InstanceDir>>,
    plugin: String,
    usage: Mutex<Usage>,
}

impl DiskQuota {
    /// The quota of `dir`, measured now.
    pub fn new(limits: DiskLimits, dir: Arc<InstanceDir>, plugin: &str) -> Self {
        let (bytes, entries) = measure(&dir.pinned_path());
        let usage = Usage { bytes, entries, measured_at: Some(Instant::now()), warned: false };
        Self { limits, dir: Some(dir), plugin: plugin.to_owned(), usage: Mutex::new(usage) }
    }

    /// The quota of a guest with no directory: nothing can be written, so nothing is charged.
    pub fn nothing_to_write() -> Self {
        let usage = Usage { bytes: 0, entries: 0, measured_at: None, warned: false };
        let limits = DiskLimits { bytes: u64::MAX, entries: u64::MAX };
        Self { limits, dir: None, plugin: String::new(), usage: Mutex::new(usage) }
    }

    /// Charges `bytes` about to be written.
    pub fn charge_bytes(&self, bytes: u64) -> Result<(), OverQuota> {
        self.charge(bytes, 0)
    }

    /// Charges one entry about to be created.
    pub fn charge_entry(&self) -> Result<(), OverQuota> {
        self.charge(0, 1)
    }

    fn charge(&self, bytes: u64, entries: u64) -> Result<(), OverQuota> {
        let mut usage = self.usage.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let fits = |usage: &Usage| {
            if usage.bytes.saturating_add(bytes) > self.limits.bytes {
                Err(OverQuota::Bytes { limit: self.limits.bytes })
            } else if usage.entries.saturating_add(entries) > self.limits.entries {
                Err(OverQuota::Entries { limit: self.limits.entries })
            } else {
                Ok(())
            }
        };
        let mut verdict = fits(&usage);
        let due = usage.measured_at.is_none_or(|at| at.elapsed() >= REMEASURE_EVERY);
        if let (Err(_), true, Some(dir)) = (verdict, due, &self.dir) {
            (usage.bytes, usage.entries) = measure(&dir.pinned_path());
            usage.measured_at = Some(Instant::now());
            verdict = fits(&usage);
        }
        match verdict {
            Ok(()) => {
                usage.bytes += bytes;
                usage.entries += entries;
            }
            Err(over) if !usage.warned => {
                usage.warned = true;
                tracing::warn!(plugin = %self.plugin, "plugin `{}` (wasm): {over}; its writes are refused", self.plugin);
            }
            Err(_) => {}
        }
        verdict
    }
}

/// The bytes of the regular files below `dir` and the number of entries, links not
/// followed.
fn measure(dir: &Path) -> (u64, u64) {
    let (mut bytes, mut entries) = (0u64, 0u64);
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(listing) = std::fs::read_dir(&folder) else { continue };
        for entry in listing.filter_map(Result::ok) {
            entries += 1;
            let Ok(metadata) = entry.path().symlink_metadata() else { continue };
            if metadata.is_dir() {
                folders.push(entry.path());
            } else if metadata.is_file() {
                bytes += metadata.len();
            }
        }
    }
    (bytes, entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_past_the_quota_are_refused_after_a_real_measurement() {
        let root = tempfile::tempdir().unwrap();
        let opened = crate::sandbox::data_dir::open_instance_dir(
            root.path(),
            "test",
            None,
            crate::sandbox::Owner::HOST,
            crate::sandbox::data_dir::Traversal::HostOnly,
        );
        let opened = Arc::new(opened.unwrap());
        let dir = opened.path().to_path_buf();
        std::fs::write(dir.join("kept"), vec![0u8; 600]).unwrap();
        let quota = DiskQuota::new(DiskLimits { bytes: 1000, entries: 3 }, opened, "test");
        assert_eq!(quota.charge_bytes(400), Ok(()));
        assert_eq!(quota.charge_bytes(1), Err(OverQuota::Bytes { limit: 1000 }));
        // Deleting frees room, seen at the next measurement.
        std::fs::remove_file(dir.join("kept")).unwrap();
        std::thread::sleep(REMEASURE_EVERY);
        assert_eq!(quota.charge_bytes(900), Ok(()));
        assert_eq!(quota.charge_entry(), Ok(()));
        assert_eq!(quota.charge_entry(), Ok(()));
        assert_eq!(quota.charge_entry(), Ok(()));
        std::thread::sleep(REMEASURE_EVERY);
        // Nothing was really created: the measurement finds room again.
        assert_eq!(quota.charge_entry(), Ok(()));
        for name in ["a", "b", "c"] {
            std::fs::write(dir.join(name), "").unwrap();
        }
        std::thread::sleep(REMEASURE_EVERY);
        assert_eq!(quota.charge_entry(), Ok(()));
        assert_eq!(quota.charge_entry(), Ok(()));
        // The estimate is full, and the measurement finds the three entries: refused.
        assert_eq!(quota.charge_entry(), Err(OverQuota::Entries { limit: 3 }));
    }
}
