//! What an admin registers for a plugin: how it runs, what it is granted, its settings.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::sandbox::Confinement;
use crate::transport::process::environment;
use crate::transport::wasm::disk_quota::DiskLimits;
use crate::transport::wasm::http::{AllowedHost, HttpPolicy};

/// How a registered plugin is started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "camelCase")]
pub enum Launch {
    /// A child process: a command from the allowlist and its arguments, one per entry.
    Process { command: String, args: Vec<String> },
    /// A WASI component run in this process.
    Wasm { file: PathBuf },
}

/// Where a process plugin's credentials go. A wasm plugin always gets them in `initialize`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CredentialDelivery {
    /// In the `initialize` message only.
    #[default]
    Initialize,
    /// Also as environment variables of the process, named after each credential in upper
    /// case (`api_key` → `API_KEY`).
    Environment,
}

/// A plugin's registration, as the admin gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginDefinition {
    pub launch: Launch,
    /// Variables for a process plugin, on top of the empty environment (blocked names are
    /// dropped at start, with a warning).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Each call's deadline, `initialize` included.
    #[serde(default = "default_timeout_ms")]
    pub request_timeout_ms: u64,
    /// `RLIMIT_AS` for a native process, the linear-memory limit for a wasm guest (default
    /// 64 MiB there).
    #[serde(default)]
    pub memory_limit_bytes: Option<u64>,
    /// Hosts a wasm plugin may send HTTP requests to (`name` or `name:port`).
    #[serde(default)]
    pub allowed_http_hosts: Vec<String>,
    /// Lets those hosts resolve to loopback, private or link-local addresses.
    #[serde(default)]
    pub allow_internal_addresses: bool,
    /// Sent as `adminConfig`.
    #[serde(default)]
    pub admin_config: Map<String, Value>,
    #[serde(default)]
    pub credential_delivery: CredentialDelivery,
    /// How strictly a process plugin must be confined before it may start.
    #[serde(default)]
    pub confinement: Confinement,
    /// What a wasm plugin's `/data` may hold, in bytes (default 64 MiB) and entries
    /// (default 10,000). A process plugin's disk is not bounded by the host.
    #[serde(default)]
    pub disk_quota_bytes: Option<u64>,
    #[serde(default)]
    pub disk_quota_entries: Option<u64>,
}

fn default_timeout_ms() -> u64 {
    crate::limits::DEFAULT_REQUEST_TIMEOUT.as_millis() as u64
}

/// The longest request timeout an admin may set.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

impl PluginDefinition {
    /// A definition with the defaults: 30 s calls, no grants, no settings.
    pub fn new(launch: Launch) -> Self {
        Self {
            launch,
            env: BTreeMap::new(),
            request_timeout_ms: default_timeout_ms(),
            memory_limit_bytes: None,
            allowed_http_hosts: Vec::new(),
            allow_internal_addresses: false,
            admin_config: Map::new(),
            credential_delivery: CredentialDelivery::Initialize,
            confinement: Confinement::default(),
            disk_quota_bytes: None,
            disk_quota_entries: None,
        }
    }

    /// A wasm plugin's data directory quota.
    pub fn disk_limits(&self) -> DiskLimits {
        DiskLimits::from_settings(self.disk_quota_bytes, self.disk_quota_entries)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The wasm plugin's HTTP policy (checked by [`PluginDefinition::validate`]).
    pub fn http_policy(&self) -> Result<HttpPolicy, String> {
        let hosts = self.allowed_http_hosts.iter().map(|entry| entry.parse::<AllowedHost>());
        let hosts = hosts.collect::<Result<Vec<_>, _>>().map_err(|error| error.to_string())?;
        Ok(HttpPolicy::allow(hosts).with_internal_addresses(self.allow_internal_addresses))
    }

    /// Every rule a definition must follow, the first one broken said in a sentence.
    pub fn validate(&self) -> Result<(), String> {
        match &self.launch {
            Launch::Process { command, .. } if command.trim().is_empty() => {
                return Err("the command is empty".into());
            }
            Launch::Wasm { file } if !file.is_absolute() => {
                return Err(format!("the component path {} is not absolute", file.display()));
            }
            Launch::Wasm { .. } if !self.env.is_empty() => {
                return Err("a wasm plugin has no environment; remove --env".into());
            }
            _ => {}
        }
        for name in self.env.keys() {
            if let Some(why) = environment::refusal(name) {
                return Err(format!("environment variable `{name}` would be dropped at every start: {why}"));
            }
        }
        if let Some((name, _)) = self.env.iter().find(|(_, value)| value.contains('\0')) {
            return Err(format!("the value of environment variable `{name}` contains NUL"));
        }
        let timeout = self.request_timeout();
        if timeout.is_zero() || timeout > MAX_TIMEOUT {
            return Err(format!(
                "the request timeout must be between 1 ms and 1 hour, not {} ms",
                self.request_timeout_ms
            ));
        }
        if self.memory_limit_bytes.is_some_and(|limit| limit < 1 << 20) {
            return Err("the memory limit must be at least 1 MiB".into());
        }
        let quota_set = self.disk_quota_bytes.is_some() || self.disk_quota_entries.is_some();
        if quota_set && matches!(self.launch, Launch::Process { .. }) {
            return Err("a disk quota applies to wasm plugins; the host does not bound a process plugin's disk".into());
        }
        if !self.allowed_http_hosts.is_empty() && matches!(self.launch, Launch::Process { .. }) {
            return Err("allowed HTTP hosts apply to wasm plugins; a process plugin's network is not confined".into());
        }
        self.http_policy().map(drop)
    }
}
