//! A plugin process's environment: it starts empty.
//!
//! The plugin gets a fixed `PATH`, `HOME` set to its own data directory, `LANG` and a
//! private `TMPDIR`, plus the variables its admin configured and, when so registered, its
//! credentials, minus every variable an interpreter, package manager, loader or shell reads
//! to load or run code or to fetch it from elsewhere. Those are blocked by family, not by
//! name (any `PYTHON*`, `NODE_*`, `npm_config_*`, `LD_*`, `GIT_*`, …), without regard to
//! case: a name list lets the next variable of the same family through
//! (`PYTHONWARNINGS` with `BROWSER` ran a shell command; `npm_config_registry` chose where
//! `npx` fetched its package). The host's own `CODEX_` namespace is blocked too. What the
//! host itself sets is added after the filter. A dropped variable is logged with its name,
//! never its value.

use std::path::Path;

/// Where allowlisted interpreters live; the plugin's `PATH`.
pub const FIXED_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Families blocked by prefix (compared in upper case).
pub const BLOCKED_PREFIXES: &[&str] = &[
    // The dynamic loader and the C library.
    "LD_",
    "DYLD_",
    "MALLOC_",
    "GLIBC_",
    "GCONV_",
    "LOCPATH",
    "NLSPATH",
    "LC_",
    // Interpreters and their package managers.
    "PYTHON",
    "PIP_",
    "UV_",
    "CONDA",
    "VIRTUAL_ENV",
    "NODE_",
    "NPM_",
    "YARN_",
    "PNPM_",
    "COREPACK_",
    "BUN_",
    "DENO_",
    "PERL",
    "RUBY",
    "GEM_",
    "BUNDLE_",
    "IRBRC",
    "JAVA_",
    "_JAVA_",
    "JDK_",
    "CLASSPATH",
    "DOTNET_",
    "COMPLUS_",
    "CORECLR_",
    "PHP",
    "LUA_",
    "TCL",
    "GOFLAGS",
    "GODEBUG",
    "GOENV",
    "GOPROXY",
    "GOTOOLCHAIN",
    "GOROOT",
    "GOPATH",
    "R_LIBS",
    "R_PROFILE",
    "JULIA_",
    // Shells, tools that run a command they are given, and their configuration.
    "BASH_",
    "BASHOPTS",
    "SHELL",
    "ZDOTDIR",
    "PS4",
    "PROMPT_",
    "INPUTRC",
    "LESSOPEN",
    "LESSCLOSE",
    "GIT_",
    "SSH_",
    "SUDO_",
    "GNUPG",
    "GPG_",
    "XDG_",
    "WGETRC",
    "CURL_",
    // TLS trust, proxies and name resolution: where the plugin's traffic goes.
    "SSL_",
    "OPENSSL_",
    "REQUESTS_CA_",
    "HOSTALIASES",
    "RES_OPTIONS",
    "LOCALDOMAIN",
    // Service managers' sockets.
    "NOTIFY_SOCKET",
    "LISTEN_",
    // The host's own settings, where its secrets live.
    "CODEX_",
];

/// Single names blocked outright (compared in upper case); the host sets some of them itself.
pub const BLOCKED_NAMES: &[&str] = &[
    "PATH", "IFS", "HOME", "USER", "LOGNAME", "USERNAME", "ENV", "CDPATH", "LANG", "LANGUAGE", "TMPDIR", "TMP", "TEMP",
    "TERMINFO", "TERMCAP", "TZDIR", "BROWSER", "EDITOR", "VISUAL", "PAGER", "MANPAGER", "NODE",
];

/// Blocked by suffix: proxies (`http_proxy`, `ALL_PROXY`, `NO_PROXY`, …).
const BLOCKED_SUFFIXES: &[&str] = &["_PROXY"];

/// Why a configured variable may not be passed on, or `None` if it may.
pub fn refusal(name: &str) -> Option<String> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        return Some("it is not a valid variable name".into());
    }
    let upper = name.to_ascii_uppercase();
    if let Some(prefix) = BLOCKED_PREFIXES.iter().find(|prefix| upper.starts_with(*prefix)) {
        return Some(format!("variables starting with `{prefix}` can make a program load or run other code"));
    }
    if BLOCKED_NAMES.contains(&upper.as_str()) || BLOCKED_SUFFIXES.iter().any(|suffix| upper.ends_with(suffix)) {
        return Some("the host sets it, or it changes what a program loads or where it connects".into());
    }
    None
}

/// What the host itself gives every plugin, added after the filter.
pub struct HostProvided<'a> {
    /// The plugin's data directory: its `HOME`.
    pub home: &'a Path,
    /// Its private temporary directory: its `TMPDIR`.
    pub temp: Option<&'a Path>,
    /// The resolved program's directory, put before the fixed `PATH`.
    pub command_dir: Option<&'a Path>,
}

/// The whole environment of a plugin process: the host's own settings, then whatever of
/// `configured` (admin variables and credentials delivered as variables) passes the filter.
pub fn plugin_environment(configured: &[(String, String)], host: &HostProvided<'_>) -> Vec<(String, String)> {
    let path = match host.command_dir.map(Path::to_string_lossy) {
        Some(dir) if !FIXED_PATH.split(':').any(|fixed| fixed == dir) => format!("{dir}:{FIXED_PATH}"),
        _ => FIXED_PATH.to_owned(),
    };
    let mut environment = vec![
        ("PATH".to_owned(), path),
        ("HOME".to_owned(), host.home.to_string_lossy().into_owned()),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
    ];
    if let Some(temp) = host.temp {
        environment.push(("TMPDIR".to_owned(), temp.to_string_lossy().into_owned()));
    }
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

    fn names_passed(names: &[&str]) -> Vec<String> {
        let home = PathBuf::from("/h");
        let host = HostProvided { home: &home, temp: None, command_dir: None };
        plugin_environment(&configured(names), &host).into_iter().skip(3).map(|(name, _)| name).collect()
    }

    #[test]
    fn the_host_settings_come_first_and_safe_configured_variables_pass() {
        let home = PathBuf::from("/data/plugins/x");
        let temp = PathBuf::from("/data/plugins/x/.tmp");
        let host = HostProvided { home: &home, temp: Some(&temp), command_dir: None };
        let environment =
            plugin_environment(&configured(&["API_REGION", "TMPDIR", "HOME", "A=B", "MAX_RESULTS"]), &host);
        let names: Vec<_> = environment.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["PATH", "HOME", "LANG", "TMPDIR", "API_REGION", "MAX_RESULTS"]);
        assert_eq!(environment[0].1, FIXED_PATH);
        assert_eq!(environment[1].1, "/data/plugins/x");
        assert_eq!(environment[3].1, "/data/plugins/x/.tmp");
    }

    /// One member of each family, in mixed case, including the ones that ran code or chose
    /// a registry in the attack: every one is dropped.
    #[test]
    fn every_family_is_blocked_whatever_the_case() {
        let attacks = [
            "PYTHONWARNINGS",
            "pythonStartup",
            "BROWSER",
            "npm_config_registry",
            "NPM_CONFIG_USERCONFIG",
            "NODE_OPTIONS",
            "node_extra_ca_certs",
            "NODE_PATH",
            "LD_PRELOAD",
            "ld_audit",
            "DYLD_INSERT_LIBRARIES",
            "GLIBC_TUNABLES",
            "GCONV_PATH",
            "PERL5OPT",
            "perllib",
            "RUBYOPT",
            "GEM_HOME",
            "BUNDLE_GEMFILE",
            "GIT_SSH_COMMAND",
            "git_config_global",
            "SSH_AUTH_SOCK",
            "JAVA_TOOL_OPTIONS",
            "_JAVA_OPTIONS",
            "JDK_JAVA_OPTIONS",
            "CLASSPATH",
            "DOTNET_STARTUP_HOOKS",
            "COMPlus_EnableDiagnostics",
            "PHPRC",
            "LUA_INIT",
            "TCLLIBPATH",
            "GOFLAGS",
            "PIP_INDEX_URL",
            "UV_INDEX_URL",
            "YARN_REGISTRY",
            "COREPACK_NPM_REGISTRY",
            "BASH_ENV",
            "ENV",
            "SHELLOPTS",
            "PS4",
            "PROMPT_COMMAND",
            "LESSOPEN",
            "EDITOR",
            "PAGER",
            "XDG_CONFIG_HOME",
            "SSL_CERT_FILE",
            "OPENSSL_CONF",
            "REQUESTS_CA_BUNDLE",
            "CURL_CA_BUNDLE",
            "http_proxy",
            "Https_Proxy",
            "NO_PROXY",
            "HOSTALIASES",
            "LC_ALL",
            "LANG",
            "IFS",
            "CODEX_ENCRYPTION_KEY",
            "codex_database_url",
            "NOTIFY_SOCKET",
            "LISTEN_FDS",
            "MALLOC_CHECK_",
            "TMPDIR",
            "PATH",
            "HOME",
        ];
        for name in attacks {
            assert!(refusal(name).is_some(), "{name} should be blocked");
        }
        assert!(names_passed(&attacks).is_empty(), "{:?}", names_passed(&attacks));
    }

    #[test]
    fn ordinary_plugin_settings_pass() {
        let fine =
            ["API_KEY", "TOKEN", "MAX_RESULTS", "REGION", "GOOGLE_BOOKS_KEY", "NODES_LIMIT", "LESSON", "HISTORY_DAYS"];
        assert_eq!(names_passed(&fine), fine);
    }

    #[test]
    fn the_command_directory_joins_the_path() {
        let home = PathBuf::from("/h");
        let custom = HostProvided { home: &home, temp: None, command_dir: Some(Path::new("/opt/node/bin")) };
        assert_eq!(plugin_environment(&[], &custom)[0].1, format!("/opt/node/bin:{FIXED_PATH}"));
        let system = HostProvided { home: &home, temp: None, command_dir: Some(Path::new("/usr/bin")) };
        assert_eq!(plugin_environment(&[], &system)[0].1, FIXED_PATH);
    }
}
