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
    /// The Landlock rules, when Landlock is one of the layers.
    pub landlock: Option<FsRules>,
    /// `RLIMIT_AS`, if any.
    pub memory_limit_bytes: Option<u64>,
    /// The host's pid: the launcher ends everything if its parent is no longer this.
    pub host_pid: i32,
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

/// System directories of programs and libraries.
const SYSTEM_DIRS: [&str; 10] =
    ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt", "/nix/store", "/snap"];

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
/// `data_dir`. `protected` (the host's data directory, its key file) must be beneath none
/// of the readable paths.
pub fn fs_rules(
    program: &Path,
    args: &[String],
    working_dir: &Path,
    data_dir: &Path,
    protected: &[PathBuf],
) -> Result<FsRules, ExposesHostFiles> {
    let mut read_execute: Vec<PathBuf> = SYSTEM_DIRS.iter().map(PathBuf::from).collect();
    let mut install = Vec::new();
    if let Some(dir) = program.parent() {
        install.push(dir.to_path_buf());
    }
    install.extend(args.iter().filter_map(|arg| install_dir(arg, working_dir)));
    install.retain(|dir| !read_execute.iter().any(|system| dir.starts_with(system)));
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

/// `/etc/python3*`, read by Python at start.
fn python_settings() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/etc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("python"))
        .map(|entry| entry.path())
        .collect()
}

/// The directory an argument installs the plugin from: for an existing script (or
/// package tarball), the nearest folder above it with a `package.json` or `pyproject.toml`
/// (the package root, so its modules load), else its own folder; for an existing
/// directory, itself. An option's value counts too (`npx --package=/opt/plugin.tgz`).
fn install_dir(arg: &str, working_dir: &Path) -> Option<PathBuf> {
    let arg = match arg.strip_prefix("--") {
        Some(option) => option.split_once('=')?.1,
        None if arg.starts_with('-') => return None,
        None => arg,
    };
    if arg.is_empty() {
        return None;
    }
    let path = working_dir.join(arg).canonicalize().ok()?;
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
            fs_rules(Path::new("/usr/bin/node"), &args, repo.path(), &data, &[repo.path().join("data")]).unwrap();
        let package = package.canonicalize().unwrap();
        assert!(rules.read_execute.contains(&package));
        assert!(!rules.read_execute.iter().any(|rule| rule == &repo.path().canonicalize().unwrap()));
        assert_eq!(rules.private, vec![data]);
        assert!(!rules.read.contains(&PathBuf::from("/etc")));
    }

    #[test]
    fn an_options_value_can_name_the_install_directory() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("plugin.tgz"), "").unwrap();
        let option = format!("--package={}", folder.path().join("plugin.tgz").display());
        assert_eq!(install_dir(&option, Path::new("/")), Some(folder.path().canonicalize().unwrap()));
        assert_eq!(install_dir("--yes", Path::new("/")), None);
        assert_eq!(install_dir("-y", Path::new("/")), None);
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
            std::slice::from_ref(&data),
        )
        .unwrap_err();
        assert_eq!(refused.protected, data.display().to_string());
    }
}
