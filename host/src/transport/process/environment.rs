//! A plugin process's environment: it starts empty.
//!
//! The plugin gets a fixed `PATH`, `HOME` set to its own data directory and `LANG`, plus
//! the variables its admin configured, minus the blocklist: the 48 names of the reference
//! (dynamic loader, interpreter, shell, proxy, ssh/git, locale, systemd; matched without
//! regard to case) and anything in the host's own `CODEX_` namespace, which is where its
//! secrets live. A dropped variable is logged with its name, never its value.

use std::path::Path;

/// Where allowlisted interpreters live; the plugin's `PATH`.
pub const FIXED_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The reference host's blocklist, exactly.
pub const BLOCKED_VARIABLES: [&str; 48] = [
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    "LD_AUDIT",
    "LD_DEBUG",
    "LD_PROFILE",
    "DYLD_LIBRARY_PATH",
    "DYLD_INSERT_LIBRARIES",
    "DYLD_FALLBACK_LIBRARY_PATH",
    "PATH",
    "IFS",
    "HOME",
    "USER",
    "LOGNAME",
    "USERNAME",
    "SHELL",
    "BASH_ENV",
    "ENV",
    "CDPATH",
    "PROMPT_COMMAND",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "NODE_PATH",
    "NODE_OPTIONS",
    "NODE_EXTRA_CA_CERTS",
    "RUBYLIB",
    "RUBYOPT",
    "PERL5LIB",
    "PERL5OPT",
    "LD_DEBUG_OUTPUT",
    "MALLOC_CHECK_",
    "MALLOC_PERTURB_",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "SSH_AUTH_SOCK",
    "SSH_ASKPASS",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "no_proxy",
    "LC_ALL",
    "LANG",
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
];

/// The host's own namespace: never passed to a plugin.
const HOST_SECRET_PREFIX: &str = "CODEX_";

/// Why a configured variable was not passed on.
fn refusal(name: &str) -> Option<&'static str> {
    if BLOCKED_VARIABLES.iter().any(|blocked| blocked.eq_ignore_ascii_case(name)) {
        Some("it is on the blocklist")
    } else if name.to_ascii_uppercase().starts_with(HOST_SECRET_PREFIX) {
        Some("it names the host's own settings")
    } else if name.is_empty() || name.contains('=') || name.contains('\0') {
        Some("it is not a valid variable name")
    } else {
        None
    }
}

/// The whole environment of a plugin process.
pub fn plugin_environment(
    configured: &[(String, String)],
    home: &Path,
    command_dir: Option<&Path>,
) -> Vec<(String, String)> {
    let path = match command_dir.map(Path::to_string_lossy) {
        Some(dir) if !FIXED_PATH.split(':').any(|fixed| fixed == dir) => format!("{dir}:{FIXED_PATH}"),
        _ => FIXED_PATH.to_owned(),
    };
    let mut environment = vec![
        ("PATH".to_owned(), path),
        ("HOME".to_owned(), home.to_string_lossy().into_owned()),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
    ];
    for (name, value) in configured {
        match refusal(name) {
            Some(why) => {
                tracing::warn!(variable = %name, "dropping environment variable `{name}` for the plugin: {why}")
            }
            None if value.contains('\0') => {
                tracing::warn!(variable = %name, "dropping environment variable `{name}` for the plugin: its value contains NUL")
            }
            None => environment.push((name.clone(), value.clone())),
        }
    }
    environment
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn configured(names: &[&str]) -> Vec<(String, String)> {
        names.iter().map(|name| (name.to_string(), "v".to_owned())).collect()
    }

    #[test]
    fn only_the_minimal_set_and_safe_configured_variables_pass() {
        let home = PathBuf::from("/data/plugins/x");
        let environment = plugin_environment(
            &configured(&[
                "API_REGION",
                "ld_preload",
                "Node_Options",
                "CODEX_ENCRYPTION_KEY",
                "codex_database_url",
                "PATH",
                "A=B",
            ]),
            &home,
            None,
        );
        let names: Vec<_> = environment.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["PATH", "HOME", "LANG", "API_REGION"]);
        assert_eq!(environment[0].1, FIXED_PATH);
        assert_eq!(environment[1].1, "/data/plugins/x");
    }

    #[test]
    fn the_blocklist_is_the_reference_list() {
        let distinct: std::collections::BTreeSet<_> =
            BLOCKED_VARIABLES.iter().map(|name| name.to_ascii_uppercase()).collect();
        assert_eq!(BLOCKED_VARIABLES.len(), 48);
        assert_eq!(distinct.len(), 45);
        for name in ["LD_PRELOAD", "dyld_insert_libraries", "Https_Proxy", "LC_ALL", "LISTEN_FDS"] {
            assert!(refusal(name).is_some(), "{name}");
        }
    }

    #[test]
    fn the_command_directory_joins_the_path() {
        let environment = plugin_environment(&[], Path::new("/h"), Some(Path::new("/opt/node/bin")));
        assert_eq!(environment[0].1, format!("/opt/node/bin:{FIXED_PATH}"));
        let environment = plugin_environment(&[], Path::new("/h"), Some(Path::new("/usr/bin")));
        assert_eq!(environment[0].1, FIXED_PATH);
    }
}
