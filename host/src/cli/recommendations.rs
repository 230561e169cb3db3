//! `recommendations USER`: a user's recommendations from every recommendation plugin they
//! are connected to, merged, as a table (`--json` for scripts); `recommendations dismiss`.

use clap::{Args, Subcommand, ValueEnum};

use super::Failure;
use super::pipeline_host::{HostArgs, integration_failure, runtime};
use super::table;
use crate::integrations::RecommendationList;
use crate::protocol::types::recommendations::DismissReason;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct RecommendationsArgs {
    #[command(subcommand)]
    command: Option<RecommendationsCommand>,
    /// The user whose recommendations to show.
    #[arg(value_name = "USER", required = true)]
    user: Option<String>,
    /// Ask every plugin again now, instead of answering from the cache (a stale cache is
    /// refreshed either way, before this command ends).
    #[arg(long)]
    refresh: bool,
    /// Show at most this many.
    #[arg(long, value_name = "N", default_value_t = 50)]
    limit: usize,
    /// Print the list as JSON (with each plugin's freshness) instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(Debug, Subcommand)]
enum RecommendationsCommand {
    /// Never show a recommendation again, and tell the plugins that made it.
    Dismiss {
        /// The user.
        user: String,
        /// The recommendation's external id (the table's `id` column).
        external_id: String,
        /// Why, as Codex lets a user say it.
        #[arg(long, value_enum)]
        reason: Option<Reason>,
        #[command(flatten)]
        host: HostArgs,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Reason {
    NotInterested,
    AlreadyRead,
    AlreadyOwned,
}

impl From<Reason> for DismissReason {
    fn from(reason: Reason) -> Self {
        match reason {
            Reason::NotInterested => DismissReason::NotInterested,
            Reason::AlreadyRead => DismissReason::AlreadyRead,
            Reason::AlreadyOwned => DismissReason::AlreadyOwned,
        }
    }
}

pub fn run(args: RecommendationsArgs) -> Result<(), Failure> {
    if let Some(RecommendationsCommand::Dismiss { user, external_id, reason, host }) = args.command {
        let report = runtime()?.block_on(async {
            let (_host, integrations) = host.open_integrations()?;
            integrations.dismiss(&user, &external_id, reason.map(Into::into)).await.map_err(integration_failure)
        })?;
        super::print_line(&serde_json::to_string(&report).expect("a report serializes"));
        for error in &report.errors {
            eprintln!("warning: a plugin was not told: {error}");
        }
        return Ok(());
    }
    let Some(user) = args.user else {
        return Err(Failure::usage("`recommendations` needs a user; `recommendations --help` says more"));
    };
    let list = runtime()?.block_on(async {
        let (host, integrations) = args.host.open_integrations()?;
        let list = integrations.recommendations(&user, args.refresh).await.map_err(integration_failure);
        // A stale cache's refresh runs on: wait for it, so the next call has its answer.
        if list.as_ref().is_ok_and(|list| list.sources.iter().any(|source| source.refreshing)) {
            eprintln!("refreshing stale recommendations…");
            integrations.refreshes_ended().await;
        }
        drop(integrations);
        if let Ok(host) = std::sync::Arc::try_unwrap(host) {
            host.shutdown().await;
        }
        list
    })?;
    if args.json {
        super::print_line(&serde_json::to_string(&list).expect("a list serializes"));
    } else {
        print_list(&list, args.limit);
    }
    Ok(())
}

fn print_list(list: &RecommendationList, limit: usize) {
    let rows = list.recommendations.iter().take(limit).map(|merged| {
        let item = &merged.recommendation;
        vec![
            item.score.map(|score| format!("{score:.2}")).unwrap_or_default(),
            item.external_id.clone(),
            table::cell(&serde_json::json!(item.title), 40),
            table::cell(&serde_json::json!(item.reason.clone().unwrap_or_default()), 50),
            merged.plugins.join(", "),
        ]
    });
    table::print(&["score", "id", "title", "why", "from"], rows);
    for source in &list.sources {
        let when = source.generated_at.clone().unwrap_or_else(|| "never".into());
        let state = match (&source.error, source.stale) {
            (Some(error), _) => format!("refresh failed: {error}"),
            (None, true) => "stale (refreshed now)".into(),
            (None, false) => "fresh".into(),
        };
        eprintln!("{}: answered {when}, {state}", source.plugin);
    }
    if list.recommendations.len() > limit {
        eprintln!("{} more; --limit shows more", list.recommendations.len() - limit);
    }
}
