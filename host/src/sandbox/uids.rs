//! Each process plugin's own uid, when the host runs as root.
//!
//! Uids come from a configured range; which plugin has which is kept in
//! `plugins/.sandbox-uids` (one `UID PLUGIN` line each, host-only), written under an
//! exclusive lock so two hosts on one data directory never hand one uid to two plugins.
//! A plugin keeps its uid for as long as its line stays, so its files stay its own.

use nix::fcntl::{Flock, FlockArg};
use std::io::{Read, Seek, Write};
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The table of plugins' uids, in the plugins folder.
pub const UIDS_FILE: &str = ".sandbox-uids";

/// The default range: below `nobody` (65534) and within the 65,536 uids a container's user
/// namespace usually maps. Uids that `/etc/passwd` or `/etc/group` name are skipped. The
/// table is per data directory: two hosts on one machine need ranges of their own.
pub const DEFAULT_UID_RANGE: Range<u32> = Range { start: 61_000, end: 65_000 };

#[derive(Debug, thiserror::Error)]
pub enum UidError {
    #[error("could not read or write the uid table {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("every uid of the range {}..{} is taken by a plugin; widen the range", range.start, range.end)]
    Exhausted { range: Range<u32> },
}

/// The uid of `plugin`, allocated on first use from `range`.
pub fn plugin_uid(plugins_dir: &Path, plugin: &str, range: &Range<u32>) -> Result<u32, UidError> {
    let path = plugins_dir.join(UIDS_FILE);
    let io = |source| UidError::Io { path: path.display().to_string(), source };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .map_err(io)?;
    let mut file = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| io(errno.into()))?;
    let mut table = String::new();
    file.read_to_string(&mut table).map_err(io)?;
    let taken: Vec<(u32, &str)> = table
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter_map(|(uid, name)| Some((uid.parse().ok()?, name)))
        .collect();
    if let Some((uid, _)) = taken.iter().find(|(_, name)| *name == plugin) {
        return Ok(*uid);
    }
    let known = known_ids();
    let uid = range.clone().find(|uid| !taken.iter().any(|(taken, _)| taken == uid) && !known.contains(uid));
    let uid = uid.ok_or_else(|| UidError::Exhausted { range: range.clone() })?;
    file.seek(std::io::SeekFrom::End(0)).map_err(io)?;
    writeln!(file, "{uid} {plugin}").map_err(io)?;
    file.sync_data().map_err(io)?;
    Ok(uid)
}

/// Uids and gids the system already gives to users and groups (`/etc/passwd`,
/// `/etc/group`): never handed to a plugin.
fn known_ids() -> Vec<u32> {
    ["/etc/passwd", "/etc/group"]
        .iter()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .flat_map(|text| {
            text.lines().filter_map(|line| line.split(':').nth(2).and_then(|id| id.parse().ok())).collect::<Vec<u32>>()
        })
        .collect()
}

/// The uid `plugin` was given, if it ever was (nothing is created or locked).
pub fn recorded_uid(plugins_dir: &Path, plugin: &str) -> Option<u32> {
    let table = std::fs::read_to_string(plugins_dir.join(UIDS_FILE)).ok()?;
    table.lines().filter_map(|line| line.split_once(' ')).find(|(_, name)| *name == plugin)?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_the_system_uses_is_never_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        // `nobody` is 65534 on every Debian system; the range holds only it and one more.
        assert_eq!(plugin_uid(dir.path(), "a", &(65534..65536)).unwrap(), 65535);
    }

    #[test]
    fn each_plugin_keeps_its_own_uid() {
        let dir = tempfile::tempdir().unwrap();
        let range = 70_000..70_003;
        let a = plugin_uid(dir.path(), "a", &range).unwrap();
        let b = plugin_uid(dir.path(), "b", &range).unwrap();
        assert_ne!(a, b);
        assert_eq!(plugin_uid(dir.path(), "a", &range).unwrap(), a);
        plugin_uid(dir.path(), "c", &range).unwrap();
        assert!(matches!(plugin_uid(dir.path(), "d", &range), Err(UidError::Exhausted { .. })));
        assert_eq!(plugin_uid(dir.path(), "b", &range).unwrap(), b);
    }
}
