//! The package the host installs for an npx plugin: made in a staging folder by npm, as the
//! plugin, in its sandbox; then handed to the host and made read-only, and put in place of
//! the last install in one rename. At each start the plugin may read and run it, never
//! change it, so no plugin can rewrite the code it (or another instance of it) runs next.
//!
//! ```text
//! plugins/<plugin>/
//!   .install-staging/     the plugin's, 0700: npm's HOME and cache
//!     package/            npm's --prefix: package.json, package-lock.json, node_modules/
//!   install/              host, 0755 (files 0644 or 0755): package/ once sealed,
//!                         exchanged with the previous install in one rename
//! ```

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, RenameFlags, openat, renameat, renameat2};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fchmodat, fstatat};
use nix::unistd::{Gid, Uid, fchown, fchownat};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::data_dir::{
    DataDirError, INSTALL_FOLDER, INSTALL_LOCK_FILE, INSTALL_STAGING_FOLDER, InstanceDir, Owner, PLUGINS_FOLDER,
    Traversal, entry_names, exists, open_level,
};

/// npm's `--prefix` inside the staging folder: what becomes the install.
pub const STAGED_PACKAGE_FOLDER: &str = "package";

#[derive(Debug, thiserror::Error)]
pub enum InstallDirError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error("{path} has other hard links: an install may not share its files with anything; nothing was installed")]
    HardLink { path: String },
    #[error("{path} is a {kind}, which a package may not hold; nothing was installed")]
    UnexpectedFile { path: String, kind: &'static str },
    #[error("npm left no {path}; nothing was installed")]
    NothingStaged { path: String },
    #[error("{path} holds no npm cache (no _cacache folder in it): give the folder npm caches in, such as ~/.npm")]
    NotACache { path: String },
    #[error(
        "{path} is owned by uid {owner} or writable by others: whoever can write an npm cache chooses the code installed from it, so it must be the host's user's and writable by no one else"
    )]
    UntrustedSeed { path: String, owner: u32 },
    #[error("the npm cache {path} holds more than 4 GiB or is nested too deep to copy")]
    SeedTooLarge { path: String },
}

/// Held while one install of a plugin runs: a second waits for the first to end.
pub type InstallLock = nix::fcntl::Flock<std::fs::File>;

/// Takes the plugin's install lock (`plugins/<plugin>/.install.lock`, the host's), waiting
/// for an install under way to end.
pub fn lock_installs(data_root: &Path, plugin: &str, traversal: Traversal) -> Result<InstallLock, DataDirError> {
    let (folder, folder_path) = open_plugin_folder(data_root, plugin, traversal)?;
    let path = folder_path.join(INSTALL_LOCK_FILE);
    let io = |source| DataDirError::Io { path: path.display().to_string(), source };
    let flags = OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_RDWR | OFlag::O_CLOEXEC;
    let file = openat(folder.as_fd(), INSTALL_LOCK_FILE, flags, Mode::from_bits_truncate(0o600))
        .map_err(|error| super::data_dir::refusal(error, &path))?;
    let stat = nix::sys::stat::fstat(file.as_fd()).map_err(io)?;
    if stat.st_uid != Uid::effective().as_raw()
        || SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG
    {
        return Err(DataDirError::NotADirectory { path: path.display().to_string() });
    }
    nix::fcntl::Flock::lock(std::fs::File::from(file), nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| io(errno))
}

/// Removes the plugin's install (an install whose registration failed).
pub fn remove_install(data_root: &Path, plugin: &str, traversal: Traversal) -> Result<(), DataDirError> {
    let (folder, folder_path) = open_plugin_folder(data_root, plugin, traversal)?;
    remove_entry(folder.as_fd(), INSTALL_FOLDER, &folder_path.join(INSTALL_FOLDER))
}

/// The path of a plugin's install, without opening anything.
pub fn install_path(data_root: &Path, plugin: &str) -> PathBuf {
    data_root.join(PLUGINS_FOLDER).join(plugin).join(INSTALL_FOLDER)
}

/// Opens the plugin's folder (the host's) from the data root, without following links.
fn open_plugin_folder(
    data_root: &Path,
    plugin: &str,
    traversal: Traversal,
) -> Result<(OwnedFd, PathBuf), DataDirError> {
    let root = std::fs::File::open(data_root)
        .map_err(|source| DataDirError::Root { path: data_root.display().to_string(), source })?;
    let root: OwnedFd = root.into();
    let mut path = data_root.join(PLUGINS_FOLDER);
    let plugins = open_level(root.as_fd(), PLUGINS_FOLDER, &path, Owner::HOST, traversal.mode())?;
    path.push(plugin);
    let folder = open_level(plugins.as_fd(), plugin, &path, Owner::HOST, traversal.mode())?;
    Ok((folder, path))
}

/// A fresh, empty staging folder owned by `owner`, whatever an earlier install left there.
pub fn fresh_staging_dir(
    data_root: &Path,
    plugin: &str,
    owner: Owner,
    traversal: Traversal,
) -> Result<InstanceDir, DataDirError> {
    let (folder, folder_path) = open_plugin_folder(data_root, plugin, traversal)?;
    let path = folder_path.join(INSTALL_STAGING_FOLDER);
    remove_entry(folder.as_fd(), INSTALL_STAGING_FOLDER, &path)?;
    let dir = open_level(folder.as_fd(), INSTALL_STAGING_FOLDER, &path, owner, Mode::from_bits_truncate(0o700))?;
    Ok(InstanceDir::new(path, dir))
}

/// Seals what npm staged: the host's, read-only, no hard links, no devices, no setuid.
/// Returns the staged package's path, for the host to check before it commits it.
pub fn seal_staged(data_root: &Path, plugin: &str, traversal: Traversal) -> Result<PathBuf, InstallDirError> {
    let (folder, folder_path) = open_plugin_folder(data_root, plugin, traversal)?;
    let staging_path = folder_path.join(INSTALL_STAGING_FOLDER);
    seal_staging(folder.as_fd(), &staging_path)?;
    Ok(staging_path.join(STAGED_PACKAGE_FOLDER))
}

/// Puts the sealed package in place of the plugin's install in one rename, and removes the
/// staging folder. Returns the install's path.
pub fn commit_staged(data_root: &Path, plugin: &str, traversal: Traversal) -> Result<PathBuf, InstallDirError> {
    let (folder, folder_path) = open_plugin_folder(data_root, plugin, traversal)?;
    let staging_path = folder_path.join(INSTALL_STAGING_FOLDER);
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    let staging = openat(folder.as_fd(), INSTALL_STAGING_FOLDER, flags, Mode::empty())
        .map_err(|error| super::data_dir::refusal(error, &staging_path))?;
    let staged = staging_path.join(STAGED_PACKAGE_FOLDER);
    let installed = replace_install(folder.as_fd(), staging.as_fd(), &folder_path, &staged)?;
    remove_entry(folder.as_fd(), INSTALL_STAGING_FOLDER, &staging_path)?;
    Ok(installed)
}

/// Removes the staging folder and whatever is in it; the install in place is untouched.
pub fn discard_staged(data_root: &Path, plugin: &str, traversal: Traversal) -> Result<(), DataDirError> {
    let (folder, folder_path) = open_plugin_folder(data_root, plugin, traversal)?;
    remove_entry(folder.as_fd(), INSTALL_STAGING_FOLDER, &folder_path.join(INSTALL_STAGING_FOLDER))
}

/// The most an operator's npm cache may hold to be copied, and how deep.
const MAX_SEED_BYTES: u64 = 4 << 30;
const MAX_SEED_DEPTH: usize = 32;

/// Copies an operator's npm cache (`cache_dir`, such as a warmed `~/.npm`; its `_cacache`
/// folder) to `folder` in a fresh staging folder, so npm finds there what the registry
/// would send. The cache chooses the code installed, so it must be the host's user's and
/// writable by no one else, folder by folder and file by file; links are skipped, never
/// followed; at most 4 GiB. The copy is `owner_uid`'s (the installer) when given; the
/// plugin never gets the original. Returns the bytes copied.
pub fn seed_cache(
    staging: &InstanceDir,
    folder: &Path,
    cache_dir: &Path,
    owner_uid: Option<u32>,
) -> Result<u64, InstallDirError> {
    let cache = std::fs::File::open(cache_dir).map_err(|error| io_error(cache_dir, error))?;
    let cacache_path = cache_dir.join(NPM_CACACHE);
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    let cacache = openat(cache.as_fd(), NPM_CACACHE, flags, Mode::empty()).map_err(|error| match error {
        Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP => {
            InstallDirError::NotACache { path: cache_dir.display().to_string() }
        }
        source => DataDirError::Io { path: cacache_path.display().to_string(), source }.into(),
    })?;
    let mut parent = staging.fd().try_clone_to_owned().map_err(|error| io_error(staging.path(), error))?;
    let mut path = staging.path().to_path_buf();
    let mut created = None;
    for component in folder.components() {
        let name = component.as_os_str().to_string_lossy().into_owned();
        path.push(&name);
        let dir = open_level(parent.as_fd(), &name, &path, Owner::HOST, Mode::from_bits_truncate(0o700))?;
        if created.is_none() {
            created = Some((dir.try_clone().map_err(|error| io_error(&path, error))?, path.clone()));
        }
        parent = dir;
    }
    let mut copied = 0;
    copy_tree(cacache.as_fd(), &cacache_path, parent.as_fd(), &path, &mut copied, 0)?;
    if let (Some(uid), Some((top, top_path))) = (owner_uid, created) {
        super::data_dir::chown_tree(top.as_fd(), uid, &top_path)?;
    }
    Ok(copied)
}

/// The folder of an npm cache directory that holds the cache.
const NPM_CACACHE: &str = "_cacache";

/// Copies the folders and files of `source` into `destination`, both opened by descriptor
/// without following a link, each checked to be the host's and writable by no one else.
fn copy_tree(
    source: BorrowedFd<'_>,
    source_path: &Path,
    destination: BorrowedFd<'_>,
    destination_path: &Path,
    copied: &mut u64,
    depth: usize,
) -> Result<(), InstallDirError> {
    check_trusted(source, source_path)?;
    if depth > MAX_SEED_DEPTH {
        return Err(InstallDirError::SeedTooLarge { path: source_path.display().to_string() });
    }
    let io = |path: &Path, source| DataDirError::Io { path: path.display().to_string(), source };
    for name in entry_names(source).map_err(|error| io(source_path, error))? {
        let text = name.to_string_lossy().into_owned();
        let (from, to) = (source_path.join(&text), destination_path.join(&text));
        let stat = fstatat(source, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|error| io(&from, error))?;
        match SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFDIR => {
                let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
                let sub = openat(source, name.as_c_str(), flags, Mode::empty()).map_err(|error| io(&from, error))?;
                let made = open_level(destination, &text, &to, Owner::HOST, Mode::from_bits_truncate(0o700))?;
                copy_tree(sub.as_fd(), &from, made.as_fd(), &to, copied, depth + 1)?;
            }
            SFlag::S_IFREG => {
                let read = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
                let file = openat(source, name.as_c_str(), read, Mode::empty()).map_err(|error| io(&from, error))?;
                check_trusted(file.as_fd(), &from)?;
                let write = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
                let made = openat(destination, name.as_c_str(), write, Mode::from_bits_truncate(0o600))
                    .map_err(|error| io(&to, error))?;
                let budget = MAX_SEED_BYTES.saturating_sub(*copied);
                let mut reader = std::io::Read::take(std::fs::File::from(file), budget + 1);
                let written =
                    std::io::copy(&mut reader, &mut std::fs::File::from(made)).map_err(|error| io_error(&to, error))?;
                *copied += written;
                if *copied > MAX_SEED_BYTES {
                    return Err(InstallDirError::SeedTooLarge { path: source_path.display().to_string() });
                }
            }
            // Links are npm's own shortcuts at most: skipped, never followed.
            _ => {}
        }
    }
    Ok(())
}

/// A folder or file of a seed cache must be the host's and writable by no one else.
fn check_trusted(fd: BorrowedFd<'_>, path: &Path) -> Result<(), InstallDirError> {
    let stat =
        nix::sys::stat::fstat(fd).map_err(|source| DataDirError::Io { path: path.display().to_string(), source })?;
    if stat.st_uid != Uid::effective().as_raw() || stat.st_mode & 0o022 != 0 {
        return Err(InstallDirError::UntrustedSeed { path: path.display().to_string(), owner: stat.st_uid });
    }
    Ok(())
}

fn io_error(path: &Path, error: std::io::Error) -> DataDirError {
    DataDirError::Io {
        path: path.display().to_string(),
        source: error.raw_os_error().map_or(Errno::EIO, Errno::from_raw),
    }
}

/// Opens the staging folder and seals its `package/`; returns the staging folder.
fn seal_staging(folder: BorrowedFd<'_>, staging_path: &Path) -> Result<OwnedFd, InstallDirError> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    let staging = openat(folder, INSTALL_STAGING_FOLDER, flags, Mode::empty())
        .map_err(|error| super::data_dir::refusal(error, staging_path))?;
    // The staging folder first, so nothing can be added to it while its contents are sealed.
    take_over(staging.as_fd(), staging_path)?;
    let staged_path = staging_path.join(STAGED_PACKAGE_FOLDER);
    let staged = match openat(staging.as_fd(), STAGED_PACKAGE_FOLDER, flags, Mode::empty()) {
        Ok(staged) => staged,
        Err(Errno::ENOENT) => return Err(InstallDirError::NothingStaged { path: staged_path.display().to_string() }),
        Err(error) => return Err(super::data_dir::refusal(error, &staged_path).into()),
    };
    seal_tree(staged.as_fd(), &staged_path)?;
    Ok(staging)
}

/// Puts the sealed `package/` at `install/`: exchanged with the previous install in one
/// step when there is one (which then leaves with the staging folder), renamed otherwise.
/// A start sees the old install or the new one, never none.
fn replace_install(
    folder: BorrowedFd<'_>,
    staging: BorrowedFd<'_>,
    folder_path: &Path,
    staged: &Path,
) -> Result<PathBuf, InstallDirError> {
    let install = folder_path.join(INSTALL_FOLDER);
    let io = |source| DataDirError::Io { path: staged.display().to_string(), source };
    if exists(folder, INSTALL_FOLDER, &install)? {
        renameat2(staging, STAGED_PACKAGE_FOLDER, folder, INSTALL_FOLDER, RenameFlags::RENAME_EXCHANGE).map_err(io)?;
    } else {
        renameat(staging, STAGED_PACKAGE_FOLDER, folder, INSTALL_FOLDER).map_err(io)?;
    }
    Ok(install)
}

/// The plugin's install, checked: a real directory owned by the host all the way down from
/// the data root, so the plugin may be given it to read. `None` when there is none.
pub fn open_install_dir(data_root: &Path, plugin: &str, traversal: Traversal) -> Result<Option<PathBuf>, DataDirError> {
    let (folder, folder_path) = open_plugin_folder(data_root, plugin, traversal)?;
    let path = folder_path.join(INSTALL_FOLDER);
    if !exists(folder.as_fd(), INSTALL_FOLDER, &path)? {
        return Ok(None);
    }
    open_level(folder.as_fd(), INSTALL_FOLDER, &path, Owner::HOST, Mode::from_bits_truncate(0o755))?;
    Ok(Some(path))
}

/// Makes a directory the host's and read-only to everyone else, and everything in it:
/// folders 0755, files 0644 (0755 if executable by anyone), links as links. A hard link,
/// a device, a socket or a pipe is refused.
fn seal_tree(dir: BorrowedFd<'_>, path: &Path) -> Result<(), InstallDirError> {
    take_over(dir, path)?;
    let io = |source| DataDirError::Io { path: path.display().to_string(), source };
    for name in entry_names(dir).map_err(io)? {
        let child = path.join(name.to_string_lossy().as_ref());
        let stat = fstatat(dir, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io)?;
        let kind = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
        let host = (Some(Uid::effective()), Some(Gid::effective()));
        match kind {
            SFlag::S_IFDIR => {
                let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
                let sub = openat(dir, name.as_c_str(), flags, Mode::empty()).map_err(io)?;
                seal_tree(sub.as_fd(), &child)?;
            }
            SFlag::S_IFLNK => {
                fchownat(dir, name.as_c_str(), host.0, host.1, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io)?;
            }
            SFlag::S_IFREG if stat.st_nlink > 1 => {
                return Err(InstallDirError::HardLink { path: child.display().to_string() });
            }
            SFlag::S_IFREG => {
                fchownat(dir, name.as_c_str(), host.0, host.1, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io)?;
                let mode = if stat.st_mode & 0o111 != 0 { 0o755 } else { 0o644 };
                fchmodat(dir, name.as_c_str(), Mode::from_bits_truncate(mode), FchmodatFlags::FollowSymlink)
                    .map_err(io)?;
            }
            other => {
                let kind = match other {
                    SFlag::S_IFIFO => "named pipe",
                    SFlag::S_IFSOCK => "socket",
                    _ => "device",
                };
                return Err(InstallDirError::UnexpectedFile { path: child.display().to_string(), kind });
            }
        }
    }
    Ok(())
}

/// The host takes a directory over: its owner, mode 0755.
fn take_over(dir: BorrowedFd<'_>, path: &Path) -> Result<(), DataDirError> {
    let io = |source| DataDirError::Io { path: path.display().to_string(), source };
    fchown(dir, Some(Uid::effective()), Some(Gid::effective())).map_err(io)?;
    nix::sys::stat::fchmod(dir, Mode::from_bits_truncate(0o755)).map_err(io)
}

/// Removes `name` in `parent` and everything below it, links never followed.
fn remove_entry(parent: BorrowedFd<'_>, name: &str, path: &Path) -> Result<(), DataDirError> {
    let io = |source| DataDirError::Io { path: path.display().to_string(), source };
    let stat = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::ENOENT) => return Ok(()),
        Err(source) => return Err(io(source)),
    };
    if SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFDIR {
        return nix::unistd::unlinkat(parent, name, nix::unistd::UnlinkatFlags::NoRemoveDir).map_err(io);
    }
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    let dir = openat(parent, name, flags, Mode::empty()).map_err(io)?;
    for entry in entry_names(dir.as_fd()).map_err(io)? {
        let child = path.join(entry.to_string_lossy().as_ref());
        remove_entry(dir.as_fd(), &entry.to_string_lossy(), &child)?;
    }
    nix::unistd::unlinkat(parent, name, nix::unistd::UnlinkatFlags::RemoveDir).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    const PLUGIN: &str = "npx-plugin";

    /// A staging folder holding `files` (path, mode) in its package, as npm would leave it.
    fn staged(root: &Path, files: &[(&str, u32)]) -> PathBuf {
        let staging = fresh_staging_dir(root, PLUGIN, Owner::HOST, Traversal::HostOnly).unwrap();
        let package = staging.path().join(STAGED_PACKAGE_FOLDER);
        std::fs::create_dir(&package).unwrap();
        for (file, mode) in files {
            let path = package.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, file).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        package
    }

    #[test]
    fn a_sealed_install_is_read_only_and_replaces_the_last_in_one_step() {
        let root = tempfile::tempdir().unwrap();
        staged(root.path(), &[("node_modules/a/index.js", 0o666), ("node_modules/a/cli", 0o777), ("old", 0o600)]);
        seal_staged(root.path(), PLUGIN, Traversal::HostOnly).unwrap();
        let installed = commit_staged(root.path(), PLUGIN, Traversal::HostOnly).unwrap();
        let mode = |path: &str| std::fs::metadata(installed.join(path)).unwrap().mode() & 0o7777;
        assert_eq!((mode("node_modules/a/index.js"), mode("node_modules/a/cli"), mode("old")), (0o644, 0o755, 0o644));
        assert_eq!(mode("node_modules"), 0o755);
        assert!(!root.path().join("plugins").join(PLUGIN).join(INSTALL_STAGING_FOLDER).exists());

        staged(root.path(), &[("new", 0o644)]);
        seal_staged(root.path(), PLUGIN, Traversal::HostOnly).unwrap();
        commit_staged(root.path(), PLUGIN, Traversal::HostOnly).unwrap();
        assert!(installed.join("new").exists() && !installed.join("old").exists());
        assert_eq!(open_install_dir(root.path(), PLUGIN, Traversal::HostOnly).unwrap(), Some(installed));
    }

    #[test]
    fn a_hard_link_or_a_pipe_is_refused_and_the_install_in_place_kept() {
        let root = tempfile::tempdir().unwrap();
        staged(root.path(), &[("kept", 0o644)]);
        seal_staged(root.path(), PLUGIN, Traversal::HostOnly).unwrap();
        let installed = commit_staged(root.path(), PLUGIN, Traversal::HostOnly).unwrap();

        let package = staged(root.path(), &[("a", 0o644)]);
        std::fs::hard_link(package.join("a"), package.join("b")).unwrap();
        let error = seal_staged(root.path(), PLUGIN, Traversal::HostOnly).unwrap_err();
        assert!(matches!(error, InstallDirError::HardLink { .. }), "{error}");
        discard_staged(root.path(), PLUGIN, Traversal::HostOnly).unwrap();

        let package = staged(root.path(), &[]);
        nix::unistd::mkfifo(&package.join("pipe"), Mode::from_bits_truncate(0o644)).unwrap();
        let error = seal_staged(root.path(), PLUGIN, Traversal::HostOnly).unwrap_err();
        assert!(error.to_string().contains("named pipe"), "{error}");
        discard_staged(root.path(), PLUGIN, Traversal::HostOnly).unwrap();
        assert!(installed.join("kept").exists());
    }

    #[test]
    fn an_install_replaced_by_a_link_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let folder = root.path().join("plugins").join(PLUGIN);
        std::fs::create_dir_all(&folder).unwrap();
        std::os::unix::fs::symlink("/usr", folder.join(INSTALL_FOLDER)).unwrap();
        let error = open_install_dir(root.path(), PLUGIN, Traversal::HostOnly).unwrap_err();
        assert!(matches!(error, DataDirError::NotADirectory { .. }), "{error}");
        assert_eq!(open_install_dir(root.path(), "other", Traversal::HostOnly).unwrap(), None);
    }

    #[test]
    fn a_new_instance_folder_leaves_the_install_where_it_is() {
        let root = tempfile::tempdir().unwrap();
        staged(root.path(), &[("index.js", 0o644)]);
        seal_staged(root.path(), PLUGIN, Traversal::HostOnly).unwrap();
        let installed = commit_staged(root.path(), PLUGIN, Traversal::HostOnly).unwrap();
        super::super::data_dir::open_instance_dir(root.path(), PLUGIN, None, Owner::HOST, Traversal::HostOnly).unwrap();
        assert!(installed.join("index.js").exists(), "the flat-layout migration moved the install");
    }
}
