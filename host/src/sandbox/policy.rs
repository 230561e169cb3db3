//! What a confined process plugin may touch, as data: built here from the plugin's command
//! and directories, handed to the launcher, applied there.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The environment variable that carries the policy to the launcher; the launcher removes
/// it before the plugin starts (the `CODEX_` namespace is never passed to a plugin).
pub const POLICY_VARIABLE: &str = "CODEX_SANDBOX_POLICY";

/// Everything the launcher needs to start one plugin. Holds no secret: the plugin's
/// environment, credentials included, travels as the launcher's environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchPolicy {
    pub program: PathBuf,
    /// The plugin's arguments, after the program.
    pub args: Vec<String>,
    pub working_dir: PathBuf,
    /// The plugin's data directory; its private `tmp/` is made inside it.
    pub data_dir: PathBuf,
    /// The uid (and gid) to run as, or the host's.
    pub uid: Option<u32>,
    /// A root host's plugin that keeps uid 0 (separate uids turned off) loses every
    /// capability.
    pub drop_capabilities: bool,
    /// The Landlock rules, when Landlock is one of the layers.
    pub landlock: Option<FsRules>,
    /// `RLIMIT_AS`, if any.
    pub memory_limit_bytes: Option<u64>,
    /// The host's pid: the launcher ends everything if its parent is no longer this.
    pub host_pid: i32,
    /// No network: a network namespace of its own as root, Landlock's TCP rules otherwise.
    #[serde(default)]
    pub deny_network: bool,
}

/// Landlock's rules: everything else is denied. Paths that do not exist are skipped.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FsRules {
    /// Read and execute: system binaries and libraries, the program, its install directory.
    pub read_execute: Vec<PathBuf>,
    /// Read only: the few `/etc` and `/proc` files a runtime reads. The plugin's own
    /// `/proc/<pid>` is added by the launcher, which knows the pid.
    pub read: Vec<PathBuf>,
    /// Read and write, files only: `/dev/null` and friends.
    pub devices: Vec<PathBuf>,
    /// Everything, below: the plugin's data directory.
    pub private: Vec<PathBuf>,
}

/// System directories of programs and libraries. Not `/opt`, where an admin may keep a
/// service's secrets: a program installed there gets its own prefix (`/opt/node`) only.
const SYSTEM_DIRS: [&str; 9] = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/nix/store", "/snap"];

/// What of `/etc` a runtime reads: TLS roots, name resolution, the loader's cache, users,
/// time zone, npm's and Python's settings. Not `/etc` itself, where an admin may keep keys.
const ETC_ENTRIES: [&str; 24] = [
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "pki",
    "crypto-policies",
    "resolv.conf",
    "hosts",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "localtime",
    "timezone",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "passwd",
    "group",
    "os-release",
    "npmrc",
    "mime.types",
    "protocols",
    "services",
    "debian_version",
];

/// Kernel facts runtimes read (memory, cpus, limits).
const KERNEL_FILES: [&str; 11] = [
    "/proc/meminfo",
    "/proc/stat",
    "/proc/cpuinfo",
    "/proc/loadavg",
    "/proc/uptime",
    "/proc/version",
    "/proc/filesystems",
    "/proc/sys",
    "/sys/fs/cgroup",
    "/sys/devices/system/cpu",
    "/dev/urandom",
];

const DEVICES: [&str; 4] = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random"];

/// A rule that would let the plugin read something of the host's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the plugin could read {protected} through {rule}, which its sandbox must open to it; keep the host's data directory and key file out of the plugin's install directory and of system directories"
)]
pub struct ExposesHostFiles {
    pub protected: String,
    pub rule: String,
}

/// The rules for a plugin run as `program` with `args` from `working_dir`, writing
/// `data_dir`, reading `installed` (the package the host installed for it, checked by the
/// host to be its own, read-only, down from the data root). `protected` (the host's data
/// directory, its key file) must be beneath none of the readable paths.
pub fn fs_rules(
    program: &Path,
    args: &[String],
    working_dir: &Path,
    data_dir: &Path,
    installed: Option<&Path>,
    protected: &[PathBuf],
) -> Result<FsRules, ExposesHostFiles> {
    let mut read_execute: Vec<PathBuf> = SYSTEM_DIRS.iter().map(PathBuf::from).collect();
    // Paths the plugin can change never choose what it may read: not its arguments resolved
    // from a working directory it writes (a registered plugin's is its data directory), nor
    // a path that passes, at any step of its resolution, through the host's data directory,
    // where a plugin could plant a link.
    let mut install: Vec<PathBuf> =
        program_dirs(program).into_iter().filter(|dir| !passes_through(dir, protected)).collect();
    let relative_allowed = !passes_through(working_dir, protected);
    let named = args.iter().filter_map(|arg| arg_path(arg)).map(Path::new);
    let named = named.filter(|path| path.is_absolute() || relative_allowed).map(|path| working_dir.join(path));
    let outside = named.filter(|path| !passes_through(path, protected));
    install.extend(outside.filter_map(|path| install_dir(&path)));
    install.retain(|dir| !read_execute.iter().any(|system| dir.starts_with(system)));
    install.extend(installed.map(Path::to_path_buf));
    install.sort();
    install.dedup();
    read_execute.extend(install.iter().cloned());
    let mut read: Vec<PathBuf> = ETC_ENTRIES.iter().map(|entry| Path::new("/etc").join(entry)).collect();
    read.extend(python_settings());
    read.extend(KERNEL_FILES.iter().map(PathBuf::from));
    let rules = FsRules {
        read_execute,
        read,
        devices: DEVICES.iter().map(PathBuf::from).collect(),
        private: vec![data_dir.to_path_buf()],
    };
    for protected in protected {
        let protected_real = protected.canonicalize().unwrap_or_else(|_| protected.clone());
        let readable = rules.read_execute.iter().chain(&rules.read);
        for rule in readable {
            let rule_real = rule.canonicalize().unwrap_or_else(|_| rule.clone());
            if protected_real.starts_with(&rule_real) {
                return Err(ExposesHostFiles {
                    protected: protected.display().to_string(),
                    rule: rule.display().to_string(),
                });
            }
        }
    }
    Ok(rules)
}

/// The program's own folder and, for a program in a `bin` folder, the `lib` beside it
/// (`/opt/node/bin/node` gets `/opt/node/bin` and `/opt/node/lib`), never the prefix
/// itself: that may be a home directory.
fn program_dirs(program: &Path) -> Vec<PathBuf> {
    let Some(folder) = program.parent() else { return Vec::new() };
    let mut dirs = vec![folder.to_path_buf()];
    if folder.file_name().is_some_and(|name| name == "bin")
        && let Some(prefix) = folder.parent()
    {
        dirs.extend(["lib", "lib64"].iter().map(|lib| prefix.join(lib)).filter(|lib| lib.is_dir()));
    }
    dirs
}

/// Whether `path`, resolved one component at a time and one link at a time, is at any
/// step inside one of `protected` (as given, or as resolved): no link on the way, nor `..`,
/// can lead a path the admin wrote through a folder the plugin writes. A path with more
/// links than the kernel would follow counts as passing through.
fn passes_through(path: &Path, protected: &[PathBuf]) -> bool {
    use std::collections::VecDeque;
    use std::path::Component;
    const MAX_LINKS: usize = 40;
    let protected: Vec<PathBuf> = protected
        .iter()
        .flat_map(|protected| [protected.clone(), protected.canonicalize().unwrap_or_else(|_| protected.clone())])
        .collect();
    let inside = |path: &Path| protected.iter().any(|protected| path.starts_with(protected));
    let owned =
        |path: &Path| -> Vec<PathBuf> { path.components().map(|part| PathBuf::from(part.as_os_str())).collect() };
    let mut pending: VecDeque<PathBuf> = owned(path).into();
    let mut links = 0;
    let mut current = PathBuf::from("/");
    while let Some(part) = pending.pop_front() {
        match part.components().next() {
            Some(Component::RootDir | Component::Prefix(_)) => current = PathBuf::from("/"),
            Some(Component::ParentDir) => {
                current.pop();
            }
            Some(Component::Normal(name)) => {
                let next = current.join(name);
                if inside(&next) {
                    return true;
                }
                match std::fs::read_link(&next) {
                    Ok(_) if links == MAX_LINKS => return true,
                    Ok(target) => {
                        links += 1;
                        for part in owned(&target).into_iter().rev() {
                            pending.push_front(part);
                        }
                    }
                    Err(_) => current = next,
                }
            }
            Some(Component::CurDir) | None => {}
        }
        if inside(&current) {
            return true;
        }
    }
    false
}

/// `/etc/python3*`, read by Python at start.
fn python_settings() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/etc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("python"))
        .map(|entry| entry.path())
        .collect()
}

/// The path an argument may name: itself, or an option's value (`npx
/// --package=/opt/plugin.tgz`); never a flag.
fn arg_path(arg: &str) -> Option<&str> {
    let path = match arg.strip_prefix("--") {
        Some(option) => option.split_once('=')?.1,
        None if arg.starts_with('-') => return None,
        None => arg,
    };
    Some(path).filter(|path| !path.is_empty())
}

/// The directory a path installs the plugin from: for an existing script (or package
/// tarball), the nearest folder above it with a `package.json` or `pyproject.toml` (the
/// package root, so its modules load), else its own folder; for an existing directory,
/// itself.
fn install_dir(path: &Path) -> Option<PathBuf> {
    let path = path.canonicalize().ok()?;
    if path.is_dir() {
        return Some(path);
    }
    let folder = path.parent()?.to_path_buf();
    let package_root = folder
        .ancestors()
        .take(4)
        .find(|dir| dir.join("package.json").is_file() || dir.join("pyproject.toml").is_file());
    Some(package_root.unwrap_or(&folder).to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_gives_its_package_root_and_nothing_of_the_host() {
        let repo = tempfile::tempdir().unwrap();
        let package = repo.path().join("plugins/openlibrary");
        std::fs::create_dir_all(package.join("dist")).unwrap();
        std::fs::write(package.join("package.json"), "{}").unwrap();
        std::fs::write(package.join("dist/index.js"), "").unwrap();
        let data = repo.path().join("data/plugins/x/plugin");
        let args = vec!["plugins/openlibrary/dist/index.js".to_owned(), "--verbose".to_owned()];
        let rules =
            fs_rules(Path::new("/usr/bin/node"), &args, repo.path(), &data, None, &[repo.path().join("data")]).unwrap();
        let package = package.canonicalize().unwrap();
        assert!(rules.read_execute.contains(&package));
        assert!(!rules.read_execute.iter().any(|rule| rule == &repo.path().canonicalize().unwrap()));
        assert_eq!(rules.private, vec![data]);
        assert!(!rules.read.contains(&PathBuf::from("/etc")));
    }

    /// The escape a reviewer found: a registered plugin (working in its own data directory)
    /// plants a link named like its argument, pointing at another plugin's folder or `/etc`;
    /// at its next start that must not widen what it may read.
    #[test]
    fn a_link_the_plugin_planted_never_widens_its_rules() {
        let root = tempfile::tempdir().unwrap();
        let data_root = root.path().join("data");
        let own = data_root.join("plugins/sym/plugin");
        std::fs::create_dir_all(&own).unwrap();
        std::os::unix::fs::symlink("/etc", own.join("settings")).unwrap();
        let rules = fs_rules(
            Path::new("/usr/bin/node"),
            &["settings".into()],
            &own,
            &own,
            None,
            std::slice::from_ref(&data_root),
        )
        .unwrap();
        assert!(!rules.read_execute.iter().any(|rule| rule.starts_with("/etc")), "{rules:?}");
        assert!(!rules.read.contains(&PathBuf::from("/etc")));
        // An absolute argument into the data directory is no install directory either.
        let planted = own.join("settings").display().to_string();
        let rules = fs_rules(Path::new("/usr/bin/node"), &[planted], root.path(), &own, None, &[data_root]).unwrap();
        assert!(!rules.read_execute.iter().any(|rule| rule.starts_with("/etc")), "{rules:?}");
    }

    /// The second review's escapes: a link an admin made into the data directory, and a
    /// `..` route into it, must not let the plugin's own link widen its rules.
    #[test]
    fn no_route_into_the_data_directory_counts() {
        let root = tempfile::tempdir().unwrap();
        let data_root = root.path().join("d");
        let own = data_root.join("plugins/x/plugin");
        std::fs::create_dir_all(&own).unwrap();
        std::os::unix::fs::symlink("/etc", own.join("conf")).unwrap();
        std::os::unix::fs::symlink(own.join("conf"), root.path().join("conf")).unwrap();
        std::fs::create_dir(root.path().join("y")).unwrap();
        let routes = [
            root.path().join("conf").display().to_string(),
            root.path().join("y/../d/plugins/x/plugin/conf").display().to_string(),
        ];
        for route in routes {
            let rules = fs_rules(
                Path::new("/usr/bin/node"),
                std::slice::from_ref(&route),
                root.path(),
                &own,
                None,
                std::slice::from_ref(&data_root),
            );
            let rules = rules.unwrap();
            assert!(!rules.read_execute.iter().any(|rule| rule.starts_with("/etc")), "{route}: {rules:?}");
        }
    }

    /// The package the host installed is in its data directory, where no argument could
    /// name it: it is readable because the host says so, and nothing else there is.
    #[test]
    fn the_install_the_host_checked_is_readable_and_nothing_else_of_the_data_directory() {
        let root = tempfile::tempdir().unwrap();
        let data_root = root.path().join("d");
        let installed = data_root.join("plugins/x/install");
        let own = data_root.join("plugins/x/plugin");
        std::fs::create_dir_all(&installed).unwrap();
        std::fs::create_dir_all(&own).unwrap();
        let program = installed.join("node_modules/p/bin.mjs").display().to_string();
        let protected = std::slice::from_ref(&data_root);
        let rules = fs_rules(Path::new("/usr/bin/node"), std::slice::from_ref(&program), &own, &own, None, protected);
        assert!(!rules.unwrap().read_execute.iter().any(|rule| rule.starts_with(&data_root)));
        let rules = fs_rules(Path::new("/usr/bin/node"), &[program], &own, &own, Some(&installed), protected).unwrap();
        let granted: Vec<&PathBuf> = rules.read_execute.iter().filter(|rule| rule.starts_with(&data_root)).collect();
        assert_eq!(granted, [&installed]);
    }

    #[test]
    fn a_program_in_a_bin_folder_gets_it_and_its_lib_not_the_prefix() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("bin")).unwrap();
        std::fs::create_dir_all(home.path().join("lib")).unwrap();
        let program = home.path().join("bin/plugin");
        let rules = fs_rules(&program, &[], Path::new("/"), Path::new("/d"), None, &[]).unwrap();
        assert!(rules.read_execute.contains(&home.path().join("bin")));
        assert!(rules.read_execute.contains(&home.path().join("lib")));
        assert!(!rules.read_execute.contains(&home.path().to_path_buf()), "{rules:?}");
    }

    #[test]
    fn an_options_value_can_name_the_install_directory() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("plugin.tgz"), "").unwrap();
        let option = format!("--package={}", folder.path().join("plugin.tgz").display());
        let named = arg_path(&option).unwrap();
        assert_eq!(install_dir(Path::new(named)), Some(folder.path().canonicalize().unwrap()));
        assert_eq!(arg_path("--yes"), None);
        assert_eq!(arg_path("-y"), None);
    }

    #[test]
    fn an_install_directory_holding_the_hosts_data_is_refused() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::write(repo.path().join("plugin.js"), "").unwrap();
        let data = repo.path().join("data");
        let refused = fs_rules(
            Path::new("/usr/bin/node"),
            &["plugin.js".into()],
            repo.path(),
            &data,
            None,
            std::slice::from_ref(&data),
        )
        .unwrap_err();
        assert_eq!(refused.protected, data.display().to_string());
    }
}
