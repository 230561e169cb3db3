//! `codex-plugin-host plugin ...` and `vault ...`: the admin's commands on the registry.
//! Each prints JSON on stdout (or nothing), and exits 2 on bad input, 3 on a host failure.

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::PathBuf;

use super::Failure;
use super::input::{absolute, parse_object, parse_pair};
use super::install;
use crate::host::DATABASE_FILE;
use crate::plugin::PluginId;
use crate::registry::{CredentialDelivery, Launch, PluginDefinition, Registry, RegistryError};
use crate::sandbox::{Confinement, Sandbox, SandboxConfig};
use crate::vault::{EncryptionKey, Secret, Vault, VaultError};

/// Where the registry is, and the vault key.
#[derive(Debug, Args)]
pub struct Location {
    /// The host's data directory (the database is in it).
    #[arg(long, value_name = "DIR", default_value = "data", global = true)]
    data_dir: PathBuf,
    /// The vault key's file (base64 of 32 bytes); by default `CODEX_ENCRYPTION_KEY`.
    #[arg(long, value_name = "FILE", global = true)]
    key_file: Option<PathBuf>,
}

/// Register and manage plugins.
#[derive(Debug, Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    command: PluginCommand,
    #[command(flatten)]
    location: Location,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Register a plugin: `--wasm FILE`, or its command after `--`.
    Add(AddArgs),
    /// Every registered plugin, a line of JSON each.
    List,
    /// One plugin: its registration, health, manifest, metrics and credential names.
    Show {
        id: String,
    },
    /// Install again the package of an npx plugin: to update one not pinned to a version,
    /// or to repair an install. Its instances restart on the new install.
    Install {
        id: String,
        /// The registry to install from (default: the one it was installed from).
        #[arg(long, value_name = "URL")]
        npm_registry: Option<String>,
        /// A warmed npm cache to install from without the registry (see `plugin add`).
        #[arg(long, value_name = "DIR")]
        npm_cache: Option<PathBuf>,
    },
    /// Remove a plugin with its users, credentials and storage.
    Remove {
        id: String,
    },
    Enable {
        id: String,
    },
    Disable {
        id: String,
    },
    /// Enable a plugin the supervisor disabled, and forget its faults.
    Reset {
        id: String,
    },
    /// Replace the admin configuration (`adminConfig`).
    Config {
        id: String,
        #[arg(long = "admin", value_name = "JSON")]
        admin: String,
    },
    /// Connect a user to a plugin: their configuration, and their account (a personal
    /// access token, or OAuth).
    Connect(super::connect::ConnectArgs),
    /// Disconnect a user: their configuration, credentials, tokens, sync records and cached
    /// recommendations are deleted.
    Disconnect {
        /// The plugin.
        id: String,
        /// The user to disconnect.
        #[arg(long, value_name = "USER")]
        user: String,
    },
    /// Store the plugin's OAuth client secret, sealed; sent to the token endpoint only,
    /// never to the plugin.
    OauthSecret {
        /// The plugin whose OAuth client the secret is.
        id: String,
        /// `-` reads it from the first line of stdin, `@FILE` from a file.
        #[arg(long, value_name = "-|@FILE")]
        secret: String,
    },
    /// What the plugin may write and which libraries it sees (none and all, by default).
    Permissions(super::plugin_metadata::PermissionsArgs),
    /// How the plugin searches and matches: template, title rules, conditions, threshold.
    SearchSettings(super::plugin_metadata::SearchSettingsArgs),
    /// Store credentials, sealed by the vault.
    Credentials {
        id: String,
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// `KEY=-` reads the value from the first line of stdin (one key at most), `KEY=@FILE`
        /// from a file. A value on the command line is refused: every user can read it there.
        #[arg(long = "set", value_name = "KEY=VALUE", required = true, num_args = 1..)]
        set: Vec<String>,
    },
}

#[derive(Debug, Args)]
struct AddArgs {
    /// The plugin's id: its storage scope and data directory, and what `call --plugin` names.
    id: String,
    /// A WebAssembly component (wasm32-wasip2) to run in process instead of a command.
    #[arg(long, value_name = "FILE", conflicts_with = "command")]
    wasm: Option<PathBuf>,
    /// An environment variable for a process plugin (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Seconds each call may take.
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// Cap on the plugin's memory, in MiB: the address space of a native process, the
    /// store of a wasm guest (default 64).
    #[arg(long, value_name = "MIB")]
    memory_limit_mib: Option<u64>,
    /// A host a wasm plugin may send HTTP requests to (repeatable).
    #[arg(long = "allow-http-host", value_name = "HOST")]
    allow_http_hosts: Vec<String>,
    /// Let the allowed hosts resolve to loopback, private or link-local addresses.
    #[arg(long)]
    allow_internal_addresses: bool,
    /// The admin configuration (JSON object), sent to the plugin as `adminConfig`.
    #[arg(long, value_name = "JSON")]
    admin_config: Option<String>,
    /// Also give a process plugin its credentials as environment variables.
    #[arg(long)]
    credentials_in_env: bool,
    /// The registry an npx plugin's package is installed from (default
    /// https://registry.npmjs.org/).
    #[arg(long, value_name = "URL", conflicts_with = "no_install")]
    npm_registry: Option<String>,
    /// A warmed npm cache (such as the `~/.npm` an image build's `npx -y PKG@1.2.3 --version`
    /// left) to install an npx plugin's package from without the registry: the host copies
    /// it into the install's own cache; the plugin never gets the original.
    #[arg(long, value_name = "DIR", conflicts_with = "no_install")]
    npm_cache: Option<PathBuf>,
    /// Register an npx plugin as its command line says, without installing its package: npx
    /// then fetches it into the plugin's data directory at every start, which needs the
    /// registry each time (what Codex does).
    #[arg(long)]
    no_install: bool,
    /// How strictly a process plugin is confined: `required` (Landlock or a uid of its own,
    /// the default), `strict` (every layer), or `unconfined` (you trust it; a warning says so
    /// at every start).
    #[arg(long, value_name = "LEVEL", value_parser = Confinement::parse, conflicts_with = "wasm")]
    confinement: Option<Confinement>,
    /// What a wasm plugin's /data may hold, in MiB (default 64).
    #[arg(long, value_name = "MIB", requires = "wasm")]
    disk_quota_mib: Option<u64>,
    /// How many files, folders and links a wasm plugin's /data may hold (default 10000).
    #[arg(long, value_name = "N", requires = "wasm")]
    disk_quota_entries: Option<u64>,
    #[arg(last = true, required_unless_present = "wasm", value_name = "COMMAND")]
    command: Vec<String>,
}

/// The vault's key.
#[derive(Debug, Args)]
pub struct VaultArgs {
    #[command(subcommand)]
    command: VaultCommand,
    #[command(flatten)]
    location: Location,
}

#[derive(Debug, Subcommand)]
enum VaultCommand {
    /// Print a new random key (base64 of 32 bytes).
    GenerateKey,
    /// Re-seal every credential under a new key; safe to interrupt and run again.
    Rotate {
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
}

impl Location {
    fn registry(&self) -> Result<Registry, Failure> {
        let dir = absolute(&self.data_dir)?;
        std::fs::create_dir_all(&dir)
            .map_err(|error| host_failure(format!("could not create {}: {error}", dir.display())))?;
        Registry::open(&dir.join(DATABASE_FILE)).map_err(registry_failure)
    }

    fn key(&self) -> Result<EncryptionKey, Failure> {
        EncryptionKey::from_environment(self.key_file.as_deref()).map_err(vault_failure)
    }
}

pub fn run_plugin(args: PluginArgs) -> Result<(), Failure> {
    let registry = args.location.registry()?;
    match args.command {
        PluginCommand::Add(add) => {
            let id = PluginId::new(&add.id).map_err(Failure::usage)?;
            let (no_install, npm_registry, npm_cache) =
                (add.no_install, add.npm_registry.clone(), add.npm_cache.clone());
            let definition = definition(add)?;
            definition
                .validate()
                .map_err(|why| registry_failure(RegistryError::Invalid { plugin: id.to_string(), why }))?;
            let command = if no_install { None } else { install::npx_command(&definition)? };
            let Some(command) = command else {
                registry.add(&id, &definition).map_err(registry_failure)?;
                tell_about_permissions(&id);
                return Ok(());
            };
            let location = &args.location;
            let installs = install::Installs::lock(&location.data_dir, location.key_file.as_deref(), id.as_str())?;
            if registry.get(id.as_str()).is_ok() {
                return Err(registry_failure(RegistryError::AlreadyRegistered(id.to_string())));
            }
            let installed =
                installs.install(id.as_str(), &command, &definition, npm_registry.as_deref(), npm_cache.as_deref())?;
            registry.add_installed(&id, &definition, &installed, true).map_err(|error| {
                installs.abandon();
                registry_failure(error)
            })?;
            tell_about_permissions(&id);
            Ok(())
        }
        PluginCommand::Install { id, npm_registry, npm_cache } => {
            let record = registry.get(&id).map_err(registry_failure)?;
            let command = install::npx_command(&record.definition)?.ok_or_else(|| {
                Failure::usage(format!("plugin `{id}` is not run with npx: there is no package to install"))
            })?;
            let npm_registry = npm_registry.or_else(|| record.install.as_ref().map(|install| install.registry.clone()));
            let location = &args.location;
            let installs = install::Installs::lock(&location.data_dir, location.key_file.as_deref(), &id)?;
            let installed =
                installs.install(&id, &command, &record.definition, npm_registry.as_deref(), npm_cache.as_deref())?;
            registry.record_install(&id, &installed).map_err(registry_failure)?;
            print_json(&serde_json::to_value(&installed).expect("an install record serializes"));
            Ok(())
        }
        PluginCommand::List => {
            for record in registry.list().map_err(registry_failure)? {
                let state = if record.enabled { "enabled" } else { "disabled" };
                print_json(&json!({"id": record.id.as_str(), "launch": record.definition.launch, "state": state}));
            }
            Ok(())
        }
        PluginCommand::Show { id } => {
            let record = registry.get(&id).map_err(registry_failure)?;
            let credentials = registry.credential_names(&id, None).map_err(registry_failure)?;
            let mut users = Vec::new();
            for connection in registry.users(&id).map_err(registry_failure)? {
                let names = registry.credential_names(&id, Some(&connection.user)).map_err(registry_failure)?;
                users.push(json!({"user": connection.user, "config": connection.config, "credentials": names}));
            }
            let sandbox = sandbox_report(&args.location, &record.definition)?;
            let metadata_settings = registry.metadata_settings(&id).map_err(registry_failure)?;
            print_json(&json!({
                "id": record.id.as_str(),
                "definition": record.definition,
                "sandbox": sandbox,
                "enabled": record.enabled,
                "disabledReason": record.disabled_reason,
                "recentFaults": record.recent_faults,
                "credentials": credentials,
                "users": users,
                "install": record.install,
                "metadataSettings": metadata_settings,
                "manifest": record.manifest,
                "metrics": record.metrics,
            }));
            Ok(())
        }
        PluginCommand::Remove { id } => {
            registry.remove(&id).map_err(registry_failure)?;
            crate::host::remove_plugin_files(&absolute(&args.location.data_dir)?, &id);
            Ok(())
        }
        PluginCommand::Enable { id } | PluginCommand::Reset { id } => {
            registry.set_enabled(&id, true).map_err(registry_failure)
        }
        PluginCommand::Disable { id } => registry.set_enabled(&id, false).map_err(registry_failure),
        PluginCommand::Config { id, admin } => {
            let config = parse_object("--admin", Some(&admin))?;
            refuse_secret_in_config("--admin", &id, &config)?;
            registry.set_admin_config(&id, config).map_err(registry_failure)
        }
        PluginCommand::Connect(connect) => {
            let location = &args.location;
            let vault = || Ok(Vault::new(location.key()?));
            let key_file = location.key_file.as_deref().map(absolute).transpose()?;
            super::connect::run(connect, &registry, vault, absolute(&location.data_dir)?, key_file)
        }
        PluginCommand::Disconnect { id, user } => registry.disconnect_user(&id, &user).map_err(registry_failure),
        PluginCommand::OauthSecret { id, secret } => {
            let secret = super::connect::read_secret("--secret", &secret)?;
            let vault = Vault::new(args.location.key()?);
            let values = BTreeMap::from([(crate::integrations::client_secret_name(), secret)]);
            registry.set_credentials(&vault, &id, None, &values).map_err(registry_failure)
        }
        PluginCommand::Permissions(permissions) => {
            let dir = absolute(&args.location.data_dir)?;
            let library = crate::library::SqliteLibrary::open(&dir.join(DATABASE_FILE))
                .map_err(|error| host_failure(error.to_string()))?;
            super::plugin_metadata::permissions(&registry, &library, permissions)
        }
        PluginCommand::SearchSettings(settings) => super::plugin_metadata::search_settings(&registry, settings),
        PluginCommand::Credentials { id, user, set } => {
            let values = secret_values(&set)?;
            let vault = Vault::new(args.location.key()?);
            registry.set_credentials(&vault, &id, user.as_deref(), &values).map_err(registry_failure)
        }
    }
}

pub fn run_vault(args: VaultArgs) -> Result<(), Failure> {
    match args.command {
        VaultCommand::GenerateKey => {
            super::print_line(&EncryptionKey::generate());
            Ok(())
        }
        VaultCommand::Rotate { new_key_file } => {
            let registry = args.location.registry()?;
            let old = args.location.key()?;
            let new = EncryptionKey::from_file(&new_key_file).map_err(vault_failure)?;
            let vault = Vault::new(new.clone()).with_older_key(old);
            let report =
                registry.rotate_credentials(&vault, |_| ControlFlow::Continue(())).map_err(registry_failure)?;
            print_json(&json!({
                "rotated": report.rotated,
                "unreadable": report.unreadable,
                "finished": report.finished,
                "keyId": new.id(),
            }));
            if report.unreadable > 0 {
                return Err(host_failure(format!(
                    "{} values open under neither key and were left as they are (see the log)",
                    report.unreadable
                )));
            }
            eprintln!("every credential is now sealed with key {}; give the host that key from now on", new.id());
            Ok(())
        }
    }
}

/// A new plugin may write nothing in the library until an admin grants it.
fn tell_about_permissions(id: &PluginId) {
    eprintln!(
        "registered `{id}`; it may not write library metadata until you grant it: `plugin permissions {id} --grant metadata:write:<field>` (its capabilities show in `plugin show {id}` after its first start)"
    );
}

/// `KEY=VALUE` pairs; `KEY=-` reads that one value from the first line of stdin, so it
/// stays out of the process list and the shell history.
/// The admin config is sent to the plugin: an OAuth client secret there would reach it
/// (the reference's weakness 4).
fn refuse_secret_in_config(flag: &str, id: &str, config: &serde_json::Map<String, Value>) -> Result<(), Failure> {
    if config.contains_key("oauth_client_secret") {
        return Err(Failure::usage(format!(
            "{flag}: `oauth_client_secret` would be sent to the plugin with its admin config; store it sealed with `plugin oauth-secret {id} --secret -`"
        )));
    }
    Ok(())
}

fn secret_values(pairs: &[String]) -> Result<BTreeMap<String, Secret>, Failure> {
    let mut from_stdin = false;
    let mut values = BTreeMap::new();
    for pair in pairs {
        let (name, mut value) = parse_pair("--set", pair)?;
        if name.starts_with(crate::registry::HOST_SECRET_PREFIX) {
            return Err(Failure::usage(format!(
                "--set {name}: names starting with `{}` are the host's own; `plugin oauth-secret` sets the OAuth client secret",
                crate::registry::HOST_SECRET_PREFIX
            )));
        }
        if let Some(file) = value.strip_prefix('@') {
            value = std::fs::read_to_string(file)
                .map_err(|error| Failure::usage(format!("could not read {name} from {file}: {error}")))?;
            value.truncate(value.trim_end_matches(['\r', '\n']).len());
        } else if value == "-" {
            if std::mem::replace(&mut from_stdin, true) {
                return Err(Failure::usage("only one credential can be read from stdin"));
            }
            value.clear();
            std::io::stdin()
                .read_line(&mut value)
                .map_err(|error| Failure::usage(format!("could not read {name} from stdin: {error}")))?;
            value.truncate(value.trim_end_matches(['\r', '\n']).len());
        } else {
            return Err(Failure::usage(format!(
                "--set {name}=…: a credential's value is never taken from the command line, where every user can read it; give `{name}=-` and the value on stdin, or `{name}=@FILE`"
            )));
        }
        values.insert(name, Secret::new(value));
    }
    Ok(values)
}

fn definition(add: AddArgs) -> Result<PluginDefinition, Failure> {
    let launch = match (add.wasm, add.command.split_first()) {
        (Some(file), _) => Launch::Wasm { file: absolute(&file)? },
        (None, Some((command, args))) => Launch::Process { command: command.clone(), args: args.to_vec() },
        (None, None) => return Err(Failure::usage("give `--wasm FILE` or the plugin's command after `--`")),
    };
    let mut definition = PluginDefinition::new(launch);
    definition.env = add.env.iter().map(|pair| parse_pair("--env", pair)).collect::<Result<_, _>>()?;
    definition.confinement = add.confinement.unwrap_or_default();
    definition.disk_quota_bytes = add.disk_quota_mib.map(|mebibytes| mebibytes.saturating_mul(1 << 20));
    definition.disk_quota_entries = add.disk_quota_entries;
    if let Some(seconds) = add.timeout {
        let valid = seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0;
        if !valid {
            return Err(Failure::usage(format!("--timeout must be between 0.001 and 3600 seconds, got {seconds}")));
        }
        definition.request_timeout_ms = (seconds * 1000.0).round() as u64;
    }
    definition.memory_limit_bytes = add.memory_limit_mib.map(|mebibytes| mebibytes.saturating_mul(1 << 20));
    definition.allowed_http_hosts = add.allow_http_hosts;
    definition.allow_internal_addresses = add.allow_internal_addresses;
    definition.admin_config = parse_object("--admin-config", add.admin_config.as_deref())?;
    refuse_secret_in_config("--admin-config", &add.id, &definition.admin_config)?;
    if add.credentials_in_env {
        definition.credential_delivery = CredentialDelivery::Environment;
    }
    Ok(definition)
}

/// What a process plugin's next start gets on this machine: its layers, or why it would
/// not start.
fn sandbox_report(location: &Location, definition: &PluginDefinition) -> Result<Value, Failure> {
    if matches!(definition.launch, Launch::Wasm { .. }) {
        return Ok(
            json!({"mode": "wasm", "layers": "in-process: no file but /data, no sockets, memory and CPU limits"}),
        );
    }
    let sandbox = Sandbox::new(SandboxConfig::default(), &absolute(&location.data_dir)?, Vec::new());
    Ok(match sandbox.plan(definition.confinement) {
        Ok(plan) => json!({"confinement": definition.confinement.as_str(), "layers": plan.describe()}),
        Err(refused) => json!({"confinement": definition.confinement.as_str(), "refused": refused.to_string()}),
    })
}

fn print_json(value: &Value) {
    super::print_line(&serde_json::to_string(value).expect("JSON values serialize"));
}

fn host_failure(message: String) -> Failure {
    Failure { message, exit_code: 3 }
}

/// Bad input (an unknown id, an invalid registration) exits 2; the rest 3.
pub(super) fn registry_failure(error: RegistryError) -> Failure {
    match error {
        RegistryError::NotRegistered(_)
        | RegistryError::AlreadyRegistered(_)
        | RegistryError::NotConnected { .. }
        | RegistryError::Invalid { .. }
        | RegistryError::KeyRotating { .. }
        | RegistryError::StaleKey { .. } => Failure::usage(error.to_string()),
        RegistryError::Vault(error) => vault_failure(error),
        other => host_failure(other.to_string()),
    }
}

fn vault_failure(error: VaultError) -> Failure {
    match error {
        VaultError::MissingKey | VaultError::MalformedKey { .. } => Failure::usage(error.to_string()),
        other => host_failure(other.to_string()),
    }
}
