//! Plugin data directories, opened so that no plugin can redirect another's.
//!
//! Layout under the host's data directory:
//!
//! ```text
//! plugins/                      host, 0711 (0700 when no plugin runs as another uid)
//!   <plugin>/                   host, same mode: no instance may write here
//!     plugin/                   the plugin-wide instance's directory, owned by the plugin
//!     install/                  host, 0755: the npm package the host installed, read-only
//!     .install-staging/         the plugin, while an install runs
//!     users/                    host
//!       <sha256(user)[..8]>/    one user's instance, owned by the plugin
//! ```
//!
//! No instance's directory is inside another's, and every directory an instance can write
//! to is a leaf. Each is opened component by component from the data directory with
//! `O_NOFOLLOW`, so a symlink planted anywhere on the way is refused instead of followed,
//! and each must be a real directory owned by whoever should own it: the host for every
//! level above an instance and for a wasm plugin's instance, the plugin's uid for a process
//! plugin that runs as one. A refusal is an error naming the path and a warning in the log.

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, mkdirat};
use nix::unistd::{Gid, Uid, fchown};
use sha2::{Digest, Sha256};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The folder of every plugin's data, in the host's data directory.
pub const PLUGINS_FOLDER: &str = "plugins";
/// The plugin-wide instance's folder, in the plugin's folder.
pub const PLUGIN_WIDE_FOLDER: &str = "plugin";
/// The folder of the users' instances, in the plugin's folder.
pub const USERS_FOLDER: &str = "users";
/// The package the host installed for the plugin, in the plugin's folder (see
/// [`super::install_dir`]).
pub const INSTALL_FOLDER: &str = "install";
/// Where an install is made before it replaces the last, in the plugin's folder.
pub const INSTALL_STAGING_FOLDER: &str = ".install-staging";
/// Held by the host while it installs the plugin's package, in the plugin's folder.
pub const INSTALL_LOCK_FILE: &str = ".install.lock";

/// Who must own an instance's directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The host's own uid: wasm plugins, and process plugins that run as the host's user.
    /// A root host takes back, with everything in it, a directory owned by the uid given
    /// here: the plugin's own, from when it ran as it (an admin turned separate uids off).
    Host { formerly: Option<u32> },
    /// A process plugin's own uid (and gid of the same number).
    Plugin(u32),
}

impl Owner {
    /// The host, with no former owner to take a directory back from.
    pub const HOST: Owner = Owner::Host { formerly: None };
}

impl Owner {
    pub(super) fn uid(self) -> u32 {
        match self {
            Owner::Host { .. } => Uid::effective().as_raw(),
            Owner::Plugin(uid) => uid,
        }
    }

    fn describe(self) -> String {
        match self {
            Owner::Host { .. } => format!("the host's uid {}", Uid::effective()),
            Owner::Plugin(uid) => format!("the plugin's uid {uid}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("could not open the data directory {path}: {source}")]
    Root { path: String, source: std::io::Error },
    #[error(
        "{path} is not a real directory (a symlink or another kind of file is there); it was refused rather than followed: remove it, and check what put it there"
    )]
    NotADirectory { path: String },
    #[error("{path} is owned by uid {found}, not by {expected}; it was refused: check what changed it")]
    WrongOwner { path: String, found: u32, expected: String },
    #[error("could not prepare {path}: {source}")]
    Io { path: String, source: Errno },
}

/// An instance's data directory: its path, and the directory itself, open.
#[derive(Debug)]
pub struct InstanceDir {
    path: PathBuf,
    dir: OwnedFd,
}

impl InstanceDir {
    pub(super) fn new(path: PathBuf, dir: OwnedFd) -> Self {
        Self { path, dir }
    }

    /// The directory's path, for a process plugin (its `HOME` and `dataDir`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory, open.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// A path that names exactly the directory opened, whatever happens to the path above
    /// it since: `/proc/self/fd/N`. Valid while `self` lives.
    pub fn pinned_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_raw_fd()))
    }
}

/// How the directories above the instances are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traversal {
    /// Only the host's user may enter them (0700): every plugin runs as the host's user.
    HostOnly,
    /// Any user may pass through, none may list (0711): plugins with their own uids must
    /// reach their directories by path.
    PassThrough,
}

impl Traversal {
    pub(super) fn mode(self) -> Mode {
        match self {
            Traversal::HostOnly => Mode::from_bits_truncate(0o700),
            Traversal::PassThrough => Mode::from_bits_truncate(0o711),
        }
    }
}

/// The folder of one user's instance: the first 8 bytes of the user's SHA-256, in hex.
pub fn user_folder(user: &str) -> String {
    Sha256::digest(user.as_bytes())[..8].iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The path of an instance's directory, without opening anything.
pub fn instance_path(data_root: &Path, plugin: &str, user: Option<&str>) -> PathBuf {
    let plugin_dir = data_root.join(PLUGINS_FOLDER).join(plugin);
    match user {
        Some(user) => plugin_dir.join(USERS_FOLDER).join(user_folder(user)),
        None => plugin_dir.join(PLUGIN_WIDE_FOLDER),
    }
}

/// Opens (creating what is missing) the plugins folder, checked like every level below it;
/// returns its path.
pub fn ensure_plugins_folder(data_root: &Path, traversal: Traversal) -> Result<PathBuf, DataDirError> {
    let root = std::fs::File::open(data_root)
        .map_err(|source| DataDirError::Root { path: data_root.display().to_string(), source })?;
    let root: OwnedFd = root.into();
    set_mode(root.as_fd(), traversal.mode(), data_root)?;
    let path = data_root.join(PLUGINS_FOLDER);
    open_level(root.as_fd(), PLUGINS_FOLDER, &path, Owner::HOST, traversal.mode())?;
    Ok(path)
}

/// Opens (creating what is missing) the directory of `plugin`'s instance for `user`, or the
/// plugin-wide one, refusing anything on the way that is not a real directory owned as it
/// should be. The data root itself is the admin's choice and is followed as given.
pub fn open_instance_dir(
    data_root: &Path,
    plugin: &str,
    user: Option<&str>,
    owner: Owner,
    traversal: Traversal,
) -> Result<InstanceDir, DataDirError> {
    let root = std::fs::File::open(data_root)
        .map_err(|source| DataDirError::Root { path: data_root.display().to_string(), source })?;
    let root: OwnedFd = root.into();
    set_mode(root.as_fd(), traversal.mode(), data_root)?;
    let mut path = data_root.join(PLUGINS_FOLDER);
    let plugins = open_level(root.as_fd(), PLUGINS_FOLDER, &path, Owner::HOST, traversal.mode())?;
    path.push(plugin);
    let plugin_dir = open_level(plugins.as_fd(), plugin, &path, Owner::HOST, traversal.mode())?;
    let dir = match user {
        Some(user) => {
            path.push(USERS_FOLDER);
            let users = open_level(plugin_dir.as_fd(), USERS_FOLDER, &path, Owner::HOST, traversal.mode())?;
            let folder = user_folder(user);
            path.push(&folder);
            open_level(users.as_fd(), &folder, &path, owner, Mode::from_bits_truncate(0o700))?
        }
        None => {
            path.push(PLUGIN_WIDE_FOLDER);
            let created = !exists(plugin_dir.as_fd(), PLUGIN_WIDE_FOLDER, &path)?;
            let dir =
                open_level(plugin_dir.as_fd(), PLUGIN_WIDE_FOLDER, &path, owner, Mode::from_bits_truncate(0o700))?;
            if created {
                migrate_flat_layout(plugin_dir.as_fd(), dir.as_fd(), &path);
                // What moved in was the host's: the plugin's now.
                if let Owner::Plugin(uid) = owner {
                    chown_tree(dir.as_fd(), uid, &path)?;
                }
            }
            dir
        }
    };
    Ok(InstanceDir { path, dir })
}

/// Whether `name` exists in `parent` (as anything, links not followed).
pub(super) fn exists(parent: BorrowedFd<'_>, name: &str, path: &Path) -> Result<bool, DataDirError> {
    match nix::sys::stat::fstatat(parent, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(source) => Err(DataDirError::Io { path: path.display().to_string(), source }),
    }
}

/// Opens one directory below `parent` without following a link, creating it (owned by
/// `owner`, with `mode`) if missing, and checks what it is and who owns it.
pub(super) fn open_level(
    parent: BorrowedFd<'_>,
    name: &str,
    path: &Path,
    owner: Owner,
    mode: Mode,
) -> Result<OwnedFd, DataDirError> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    let io = |source| DataDirError::Io { path: path.display().to_string(), source };
    let (dir, created) = match openat(parent, name, flags, Mode::empty()) {
        Ok(dir) => (dir, false),
        Err(Errno::ENOENT) => {
            match mkdirat(parent, name, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(source) => return Err(io(source)),
            }
            (openat(parent, name, flags, Mode::empty()).map_err(|error| refusal(error, path))?, true)
        }
        Err(error) => return Err(refusal(error, path)),
    };
    let stat = fstat(dir.as_fd()).map_err(io)?;
    if created && matches!(owner, Owner::Plugin(_)) && stat.st_uid != owner.uid() {
        fchown(dir.as_fd(), Some(Uid::from_raw(owner.uid())), Some(Gid::from_raw(owner.uid()))).map_err(io)?;
    } else if stat.st_uid != owner.uid() {
        adopt_or_refuse(&dir, &stat, path, owner)?;
    }
    set_mode(dir.as_fd(), mode, path)?;
    Ok(dir)
}

/// A directory owned by someone else: a plugin's directory left by the host's user before
/// plugins had their own uids is handed over, with everything in it; anything else is
/// refused.
fn adopt_or_refuse(dir: &OwnedFd, stat: &FileStat, path: &Path, owner: Owner) -> Result<(), DataDirError> {
    let host = Uid::effective().as_raw();
    match owner {
        Owner::Plugin(uid) if stat.st_uid == host => {
            tracing::info!("handing {} over to the plugin's uid {uid}", path.display());
            return chown_tree(dir.as_fd(), uid, path);
        }
        Owner::Host { formerly: Some(former) } if stat.st_uid == former && Uid::effective().is_root() => {
            tracing::info!("taking {} back from the plugin's former uid {former}", path.display());
            return chown_tree(dir.as_fd(), host, path);
        }
        _ => {}
    }
    let error =
        DataDirError::WrongOwner { path: path.display().to_string(), found: stat.st_uid, expected: owner.describe() };
    tracing::warn!("refused a plugin data directory: {error}");
    Err(error)
}

pub(super) fn refusal(error: Errno, path: &Path) -> DataDirError {
    match error {
        Errno::ELOOP | Errno::ENOTDIR => {
            let error = DataDirError::NotADirectory { path: path.display().to_string() };
            tracing::warn!("refused a plugin data directory: {error}");
            error
        }
        source => DataDirError::Io { path: path.display().to_string(), source },
    }
}

pub(super) fn set_mode(dir: BorrowedFd<'_>, mode: Mode, path: &Path) -> Result<(), DataDirError> {
    let stat = fstat(dir).map_err(|source| DataDirError::Io { path: path.display().to_string(), source })?;
    if stat.st_mode & 0o7777 != mode.bits() {
        fchmod(dir, mode).map_err(|source| DataDirError::Io { path: path.display().to_string(), source })?;
    }
    Ok(())
}

/// Gives `dir` and everything below it to `uid`, links included as links (never followed).
pub(super) fn chown_tree(dir: BorrowedFd<'_>, uid: u32, path: &Path) -> Result<(), DataDirError> {
    let io = |source| DataDirError::Io { path: path.display().to_string(), source };
    let (uid, gid) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(uid)));
    fchown(dir, uid, gid).map_err(io)?;
    for name in entry_names(dir).map_err(io)? {
        let child = path.join(name.to_string_lossy().as_ref());
        let stat =
            nix::sys::stat::fstatat(dir, name.as_c_str(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io)?;
        if SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR {
            let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
            let sub = openat(dir, name.as_c_str(), flags, Mode::empty()).map_err(io)?;
            chown_tree(sub.as_fd(), uid.map_or(0, Uid::as_raw), &child)?;
        } else if stat.st_nlink > 1 && SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFLNK
        {
            // A hard link may share its file with something outside: left as it is.
            tracing::warn!("not handing {} over to the plugin: it has other hard links", child.display());
        } else {
            nix::unistd::fchownat(dir, name.as_c_str(), uid, gid, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(io)?;
        }
    }
    Ok(())
}

/// Before this layout the plugin-wide instance's files lay in the plugin's folder itself,
/// beside `users/`: they are moved into the new `plugin/` folder (entries renamed, never
/// followed), so no data is lost on upgrade.
fn migrate_flat_layout(plugin_dir: BorrowedFd<'_>, instance: BorrowedFd<'_>, path: &Path) {
    let Ok(names) = entry_names(plugin_dir) else { return };
    let kept = [PLUGIN_WIDE_FOLDER, USERS_FOLDER, INSTALL_FOLDER, INSTALL_STAGING_FOLDER, INSTALL_LOCK_FILE]
        .map(str::as_bytes);
    for name in names.into_iter().filter(|name| !kept.contains(&name.as_bytes())) {
        if let Err(error) = nix::fcntl::renameat(plugin_dir, name.as_c_str(), instance, name.as_c_str()) {
            tracing::warn!("could not move {:?} into {}: {error}", name, path.display());
        }
    }
}

/// The names in a directory, `.` and `..` left out.
pub(super) fn entry_names(dir: BorrowedFd<'_>) -> Result<Vec<std::ffi::CString>, Errno> {
    let listing = openat(dir, ".", OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    let mut entries = nix::dir::Dir::from_fd(listing)?;
    let names = entries.iter().filter_map(Result::ok).map(|entry| entry.file_name().to_owned());
    Ok(names.filter(|name| name.as_bytes() != b"." && name.as_bytes() != b"..").collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, symlink};

    fn open(root: &Path, user: Option<&str>) -> Result<InstanceDir, DataDirError> {
        open_instance_dir(root, "reader", user, Owner::HOST, Traversal::HostOnly)
    }

    #[test]
    fn no_instance_directory_is_inside_another() {
        let root = tempfile::tempdir().unwrap();
        let plugin_wide = open(root.path(), None).unwrap();
        let alice = open(root.path(), Some("alice")).unwrap();
        assert_eq!(plugin_wide.path(), root.path().join("plugins/reader/plugin"));
        assert!(!alice.path().starts_with(plugin_wide.path()));
        assert!(!plugin_wide.path().starts_with(alice.path()));
        assert_eq!(alice.path(), instance_path(root.path(), "reader", Some("alice")));
        let mode = std::fs::metadata(alice.path()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    /// The attack of the issue: the users' folder replaced by a link to `/`, before and after
    /// the user's first start. The host refuses; it never opens the link's target.
    #[test]
    fn a_planted_link_is_refused_not_followed() {
        let root = tempfile::tempdir().unwrap();
        open(root.path(), Some("alice")).unwrap();
        let users = root.path().join("plugins/reader/users");
        let folder = users.join(user_folder("alice"));
        std::fs::remove_dir(&folder).unwrap();
        symlink("../../../../../../../../../..", &folder).unwrap();
        assert!(matches!(open(root.path(), Some("alice")), Err(DataDirError::NotADirectory { .. })));
        // Not yet connected: the link planted in advance under the user's future folder.
        symlink("/", users.join(user_folder("bob"))).unwrap();
        assert!(matches!(open(root.path(), Some("bob")), Err(DataDirError::NotADirectory { .. })));
        // A link higher up, in place of the users' folder itself.
        std::fs::remove_file(&folder).unwrap();
        std::fs::remove_file(users.join(user_folder("bob"))).unwrap();
        std::fs::remove_dir(&users).unwrap();
        symlink("/", &users).unwrap();
        assert!(matches!(open(root.path(), Some("carol")), Err(DataDirError::NotADirectory { .. })));
    }

    #[test]
    fn the_old_flat_layout_moves_into_the_plugin_wide_folder() {
        let root = tempfile::tempdir().unwrap();
        let old = root.path().join("plugins/reader");
        std::fs::create_dir_all(old.join("users/0011223344556677")).unwrap();
        std::fs::write(old.join("cache.json"), "{}").unwrap();
        std::fs::create_dir(old.join("covers")).unwrap();
        let plugin_wide = open(root.path(), None).unwrap();
        assert_eq!(std::fs::read_to_string(plugin_wide.path().join("cache.json")).unwrap(), "{}");
        assert!(plugin_wide.path().join("covers").is_dir());
        assert!(old.join("users/0011223344556677").is_dir());
        assert!(!old.join("cache.json").exists());
    }

    /// Under a root host the moved files become the plugin's, so it can still write them.
    #[test]
    fn what_the_old_layout_moves_in_belongs_to_the_plugins_uid() {
        if !Uid::effective().is_root() {
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let old = root.path().join("plugins/reader");
        std::fs::create_dir_all(old.join("covers")).unwrap();
        std::fs::write(old.join("covers/1.jpg"), "x").unwrap();
        let dir =
            open_instance_dir(root.path(), "reader", None, Owner::Plugin(70_001), Traversal::PassThrough).unwrap();
        for moved in ["", "covers", "covers/1.jpg"] {
            assert_eq!(std::fs::metadata(dir.path().join(moved)).unwrap().uid(), 70_001, "{moved}");
        }
    }

    #[test]
    fn the_pinned_path_names_the_opened_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = open(root.path(), None).unwrap();
        std::fs::write(dir.path().join("mark"), "here").unwrap();
        assert_eq!(std::fs::read_to_string(dir.pinned_path().join("mark")).unwrap(), "here");
    }
}
