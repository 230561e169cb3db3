//! `plugin connect`: a user's connection to a plugin: their configuration, and the way in
//! to their tracker account, a personal access token read from stdin or a file (never the
//! command line). With a token, the plugin is asked who the account is (`sync/getUserInfo`)
//! and the answer printed, so a wrong token shows at once.

use clap::Args;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Failure;
use super::input::parse_object;
use super::pipeline_host::{HostArgs, integration_failure, runtime};
use crate::registry::Registry;
use crate::vault::{Secret, Vault};

/// The credential a personal access token is stored under, as Codex's plugins read it.
pub const ACCESS_TOKEN: &str = "access_token";

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The plugin to connect the user to.
    id: String,
    /// The user (1-128 printable characters).
    #[arg(long, value_name = "USER")]
    user: String,
    /// The user's configuration (JSON object, with their `_codex` sync settings); kept as
    /// it is when not given.
    #[arg(long, value_name = "JSON")]
    config: Option<String>,
    /// A personal access token for their tracker account: `-` reads it from the first line
    /// of stdin, `@FILE` from a file. Stored sealed, as the `access_token` credential.
    #[arg(long, value_name = "-|@FILE", conflicts_with = "oauth")]
    token: Option<String>,
    /// Connect their account by OAuth: prints the address to sign in at (and opens it when
    /// a desktop is there), takes the provider's redirect on a loopback port, stores the
    /// tokens sealed.
    #[arg(long)]
    oauth: bool,
    /// The loopback port for the OAuth redirect (for a provider that allows one port only);
    /// by default a free port per flow, or the plugin's configured `oauth_redirect_uri`.
    #[arg(long, value_name = "PORT", requires = "oauth")]
    redirect_port: Option<u16>,
    /// Print the sign-in address only; never open a browser.
    #[arg(long, requires = "oauth")]
    no_browser: bool,
    /// Let process plugins run executables inside this directory (to ask for the account).
    #[arg(long, value_name = "DIR")]
    plugins_dir: Option<PathBuf>,
    /// Add a bare command name to the allowlist (repeatable).
    #[arg(long = "allow-command", value_name = "NAME")]
    allow_commands: Vec<String>,
}

pub fn run(
    args: ConnectArgs,
    registry: &Registry,
    vault: impl Fn() -> Result<Vault, Failure>,
    data_dir: PathBuf,
    key_file: Option<PathBuf>,
) -> Result<(), Failure> {
    let token = args.token.as_deref().map(|source| read_secret("--token", source)).transpose()?;
    let config = match args.config.as_deref() {
        Some(text) => parse_object("--config", Some(text))?,
        None => match registry.user_connection(&args.id, &args.user) {
            Ok(connection) => connection.config,
            Err(crate::registry::RegistryError::NotConnected { .. }) => serde_json::Map::new(),
            Err(error) => return Err(super::admin::registry_failure(error)),
        },
    };
    registry.connect_user(&args.id, &args.user, config).map_err(super::admin::registry_failure)?;
    if args.oauth {
        let host = HostArgs { data_dir, key_file, plugins_dir: args.plugins_dir, allow_commands: args.allow_commands };
        let connected = runtime()?.block_on(async {
            let (host, integrations) = host.open_integrations()?;
            let connected = super::oauth_callback::connect(
                &integrations,
                &args.id,
                &args.user,
                args.redirect_port,
                !args.no_browser,
            )
            .await;
            drop(integrations);
            if let Ok(host) = std::sync::Arc::try_unwrap(host) {
                host.shutdown().await;
            }
            connected
        })?;
        super::print_line(&serde_json::to_string(&connected).expect("a connection serializes"));
        return Ok(());
    }
    let Some(token) = token else {
        return Ok(());
    };
    let credentials = BTreeMap::from([(ACCESS_TOKEN.to_owned(), token)]);
    registry
        .set_credentials(&vault()?, &args.id, Some(&args.user), &credentials)
        .map_err(super::admin::registry_failure)?;
    let host = HostArgs { data_dir, key_file, plugins_dir: args.plugins_dir, allow_commands: args.allow_commands };
    let account = runtime()?.block_on(async {
        let (host, integrations) = host.open_integrations()?;
        let account = integrations.account(&args.id, &args.user).await.map_err(|error| {
            let mut failure = integration_failure(error);
            failure.message = format!(
                "the token is stored, but the plugin did not accept it: {}; connect again with the right token",
                failure.message
            );
            failure
        });
        drop(integrations);
        if let Ok(host) = std::sync::Arc::try_unwrap(host) {
            host.shutdown().await;
        }
        account
    })?;
    let account = account.map(|account| json!(account)).unwrap_or(Value::Null);
    super::print_line(&json!({"plugin": args.id, "user": args.user, "account": account}).to_string());
    Ok(())
}

/// A secret from stdin (`-`) or a file (`@FILE`), never from the command line.
pub fn read_secret(flag: &str, source: &str) -> Result<Secret, Failure> {
    let mut secret = match source.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file)
            .map_err(|error| Failure::usage(format!("{flag}: could not read {file}: {error}")))?,
        None if source == "-" => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|error| Failure::usage(format!("{flag}: could not read stdin: {error}")))?;
            line
        }
        None => {
            return Err(Failure::usage(format!(
                "{flag}: a secret is never taken from the command line, where every user can read it; give `{flag} -` and the value on stdin, or `{flag} @FILE`"
            )));
        }
    };
    secret.truncate(secret.trim_end_matches(['\r', '\n']).len());
    if secret.trim().is_empty() {
        return Err(Failure::usage(format!("{flag}: the value is empty")));
    }
    Ok(Secret::new(secret))
}
