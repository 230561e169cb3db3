//! Which commands may start a plugin.
//!
//! Allowed: a bare name on the allowlist (`node`, `npx`, `python`, `python3`, `uv`, `uvx`,
//! plus the admin's additions), found on the plugin's fixed `PATH` (never the host's); an absolute path that resolves
//! (symlinks followed) inside the configured plugins directory; or an absolute path in a
//! standard bin directory whose name is on the allowlist and which resolves into a system
//! location (never into `/tmp` or a home directory). Anything else is refused, naming the
//! command and the allowlist.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::ProcessError;

/// The reference's default allowlist.
pub const DEFAULT_ALLOWED_COMMANDS: [&str; 6] = ["node", "npx", "python", "python3", "uv", "uvx"];

const STANDARD_BIN_DIRS: [&str; 3] = ["/usr/bin", "/usr/local/bin", "/bin"];
/// Where the target of a standard-bin-dir symlink may live.
const SYSTEM_PREFIXES: [&str; 6] = ["/usr/", "/bin/", "/lib/", "/opt/", "/nix/store/", "/snap/"];

/// The command policy of a host.
#[derive(Debug, Clone)]
pub struct CommandAllowlist {
    names: BTreeSet<String>,
    plugins_dir: Option<PathBuf>,
}

impl Default for CommandAllowlist {
    fn default() -> Self {
        Self { names: DEFAULT_ALLOWED_COMMANDS.iter().map(|name| name.to_string()).collect(), plugins_dir: None }
    }
}

impl CommandAllowlist {
    /// Adds a bare command name (`deno`, `bun`). Blank names are ignored.
    pub fn allow(mut self, name: &str) -> Self {
        let name = name.trim();
        if !name.is_empty() {
            self.names.insert(name.to_owned());
        }
        self
    }

    /// Allows any executable that resolves inside `dir`.
    pub fn with_plugins_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.plugins_dir = Some(dir.into());
        self
    }

    /// The absolute path to run for `command`, or why it may not run.
    pub fn resolve(&self, command: &str) -> Result<PathBuf, ProcessError> {
        if !command.contains('/') {
            if !self.names.contains(command) {
                return Err(self.not_allowed(command, "it is not on the allowlist"));
            }
            return find_on_path(command).ok_or_else(|| ProcessError::NotFound { command: command.to_owned() });
        }
        let path = Path::new(command);
        if !path.is_absolute() {
            return Err(self.not_allowed(command, "a path must be absolute"));
        }
        let resolved = path.canonicalize().map_err(|_| ProcessError::NotFound { command: command.to_owned() })?;
        if let Some(dir) = self.plugins_dir.as_ref().and_then(|dir| dir.canonicalize().ok())
            && resolved.starts_with(&dir)
        {
            return Ok(resolved);
        }
        let in_standard_dir =
            path.parent().is_some_and(|parent| STANDARD_BIN_DIRS.iter().any(|dir| parent == Path::new(dir)));
        let allowed_name =
            path.file_name().and_then(|name| name.to_str()).is_some_and(|name| self.names.contains(name));
        let system_target = SYSTEM_PREFIXES.iter().any(|prefix| resolved.starts_with(prefix));
        if in_standard_dir && allowed_name && system_target {
            return Ok(resolved);
        }
        let why = if in_standard_dir && allowed_name {
            format!("it resolves to {}, outside the system directories", resolved.display())
        } else {
            "it is neither inside the plugins directory nor an allowlisted name in a standard bin directory".to_owned()
        };
        Err(self.not_allowed(command, &why))
    }

    fn not_allowed(&self, command: &str, why: &str) -> ProcessError {
        let mut allowed: Vec<String> = self.names.iter().map(|name| format!("`{name}`")).collect();
        match &self.plugins_dir {
            Some(dir) => allowed.push(format!("absolute paths under {}", dir.display())),
            None => allowed.push("no plugins directory".to_owned()),
        }
        ProcessError::NotAllowed { command: command.to_owned(), why: why.to_owned(), allowed: allowed.join(", ") }
    }
}

/// Looks a bare name up on the fixed `PATH` the plugin itself gets, never on the host's
/// own: a directory an attacker put first on the host's `PATH` must not choose the plugin.
fn find_on_path(name: &str) -> Option<PathBuf> {
    super::environment::FIXED_PATH
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn executable(path: &Path) {
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn allowlisted_names_resolve_and_others_are_refused_with_the_list() {
        let allowlist = CommandAllowlist::default();
        let error = allowlist.resolve("cat").unwrap_err().to_string();
        assert!(error.contains("`cat`") && error.contains("`node`") && error.contains("`uvx`"), "{error}");
        let error = allowlist.resolve("bash").unwrap_err();
        assert!(matches!(error, ProcessError::NotAllowed { .. }));
        assert!(CommandAllowlist::default().allow("sh").resolve("sh").unwrap().is_absolute());
        assert!(matches!(allowlist.resolve("./node"), Err(ProcessError::NotAllowed { .. })));
    }

    #[test]
    fn paths_inside_the_plugins_dir_are_allowed_and_symlinks_out_of_it_are_not() {
        let plugins = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let inside = plugins.path().join("my-plugin");
        executable(&inside);
        let escaping = plugins.path().join("escape");
        executable(&outside.path().join("evil"));
        symlink(outside.path().join("evil"), &escaping).unwrap();
        let allowlist = CommandAllowlist::default().with_plugins_dir(plugins.path());
        assert_eq!(allowlist.resolve(inside.to_str().unwrap()).unwrap(), inside.canonicalize().unwrap());
        assert!(matches!(allowlist.resolve(escaping.to_str().unwrap()), Err(ProcessError::NotAllowed { .. })));
        let traversal =
            format!("{}/../{}/evil", plugins.path().display(), outside.path().file_name().unwrap().to_str().unwrap());
        assert!(matches!(allowlist.resolve(&traversal), Err(ProcessError::NotAllowed { .. })));
        let missing = plugins.path().join("missing");
        assert!(matches!(allowlist.resolve(missing.to_str().unwrap()), Err(ProcessError::NotFound { .. })));
    }

    #[test]
    fn standard_bin_paths_need_an_allowlisted_name_and_a_system_target() {
        assert!(matches!(CommandAllowlist::default().resolve("/bin/sh"), Err(ProcessError::NotAllowed { .. })));
        // `/bin/sh` is a symlink on most systems; its target is a system file either way.
        let resolved = CommandAllowlist::default().allow("sh").resolve("/bin/sh").unwrap();
        assert!(SYSTEM_PREFIXES.iter().any(|prefix| resolved.starts_with(prefix)), "{}", resolved.display());
    }
}
