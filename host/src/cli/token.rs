//! `token …`: the API tokens of the host's HTTP API and page (`serve`). `create` prints the
//! token once, on stdout (nothing else can show it again: only its digest is kept);
//! `list` shows who each one is for; `revoke` ends one.

use clap::{Args, Subcommand};
use std::path::PathBuf;

use super::Failure;
use super::input::absolute;
use super::pipeline_host::host_failure;
use super::table;
use crate::access::Principal;
use crate::access::store::{TokenError, TokenStore};
use crate::host::DATABASE_FILE;

/// API tokens for the HTTP API and the page.
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    /// The host's data directory (the database is in it).
    #[arg(long, value_name = "DIR", default_value = "data", global = true)]
    data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Make a token and print it once: an admin's, or a user's (which acts only for them).
    Create {
        /// An admin's token: it may do everything.
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        admin: bool,
        /// A user's token, for this user.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// A note of what the token is for (shown by `token list`).
        #[arg(long, value_name = "TEXT")]
        label: Option<String>,
    },
    /// The tokens: who each is for, when it was made, whether it was revoked.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: it opens nothing from now on.
    Revoke {
        /// The token's id (`token list` shows it).
        id: String,
    },
}

fn token_failure(error: TokenError) -> Failure {
    match error {
        TokenError::Store(_) => host_failure(error.to_string()),
        other => Failure::usage(other.to_string()),
    }
}

pub fn run(args: TokenArgs) -> Result<(), Failure> {
    let dir = absolute(&args.data_dir)?;
    crate::host::create_private_dir(&dir).map_err(|error| host_failure(error.to_string()))?;
    let store = TokenStore::open(&dir.join(DATABASE_FILE)).map_err(token_failure)?;
    match args.command {
        TokenCommand::Create { admin, user, label } => {
            let principal = match (admin, user) {
                (true, _) => Principal::Admin,
                (false, Some(user)) => Principal::User(user),
                (false, None) => return Err(Failure::usage("`token create` needs --admin or --user USER")),
            };
            let (record, token) = store.create(&principal, label.as_deref()).map_err(token_failure)?;
            super::print_line(&token);
            let whom = match &record.principal {
                Principal::Admin => "an admin".to_owned(),
                Principal::User(user) => format!("user `{user}`"),
            };
            eprintln!(
                "made token {} for {whom}: it is printed above and is not kept, so store it now; `token revoke {}` ends it",
                record.id, record.id
            );
            Ok(())
        }
        TokenCommand::List { json } => {
            let records = store.list().map_err(token_failure)?;
            if json {
                super::print_line(&serde_json::to_string_pretty(&records).expect("records serialize"));
                return Ok(());
            }
            let time = |micros: i64| crate::release_tracking::rfc3339_utc(micros);
            table::print(
                &["id", "for", "label", "created", "revoked"],
                records.iter().map(|record| {
                    vec![
                        record.id.clone(),
                        match &record.principal {
                            Principal::Admin => "admin".to_owned(),
                            Principal::User(user) => format!("user {user}"),
                        },
                        record.label.clone().unwrap_or_default(),
                        time(record.created_at),
                        record.revoked_at.map(time).unwrap_or_default(),
                    ]
                }),
            );
            Ok(())
        }
        TokenCommand::Revoke { id } => store.revoke(&id).map_err(token_failure),
    }
}
