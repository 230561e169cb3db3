//! `codex-plugin-host metadata ...`: search a plugin for a series or a book (showing the
//! query the host built), apply a result field by field (with a dry run), or auto-match one.

use clap::{Args, Subcommand};
use std::collections::BTreeSet;

use super::Failure;
use super::pipeline_host::{HostArgs, pipeline_failure, runtime};
use super::table;
use crate::pipeline::{ApplyOptions, ApplyReport, MatchOutcome, Pipeline};

/// Metadata from a plugin, for the library's series and books.
#[derive(Debug, Args)]
pub struct MetadataArgs {
    #[command(subcommand)]
    command: MetadataCommand,
    #[command(flatten)]
    host: HostArgs,
}

/// Which series or book, and which plugin.
#[derive(Debug, Args)]
struct Target {
    /// The series (or, with `--book`, the book).
    id: String,
    /// The id is a book's.
    #[arg(long)]
    book: bool,
    /// The metadata plugin.
    #[arg(long, value_name = "ID")]
    plugin: String,
    /// JSON instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum MetadataCommand {
    /// Search: the query built from the title rules and the template, and the results.
    Search {
        #[command(flatten)]
        target: Target,
        /// How many results to ask for (default 10).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..=100))]
        limit: Option<i64>,
    },
    /// Apply one result: `get` it, then write it field by field under locks and permissions.
    Apply {
        #[command(flatten)]
        target: Target,
        /// The result's external id (from `metadata search`).
        #[arg(long, value_name = "ID")]
        external_id: String,
        /// Show the field-by-field report; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only these fields (comma-separated report names: `title,summary,genres`).
        #[arg(long, value_name = "FIELDS", value_delimiter = ',')]
        fields: Vec<String>,
    },
    /// Auto-match one series or book: conditions, search, best result, threshold, apply.
    Match {
        #[command(flatten)]
        target: Target,
        /// Show what would be applied; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(args: MetadataArgs) -> Result<(), Failure> {
    let runtime = runtime()?;
    runtime.block_on(async {
        let (host, pipeline) = args.host.open()?;
        let outcome = execute(&pipeline, args.command).await;
        drop(pipeline);
        if let Ok(host) = std::sync::Arc::try_unwrap(host) {
            host.shutdown().await;
        }
        outcome
    })
}

async fn execute(pipeline: &Pipeline, command: MetadataCommand) -> Result<(), Failure> {
    match command {
        MetadataCommand::Search { target, limit } => {
            let found = match target.book {
                true => pipeline.search_book(&target.plugin, &target.id, limit).await,
                false => pipeline.search_series(&target.plugin, &target.id, limit).await,
            }
            .map_err(pipeline_failure)?;
            if target.json {
                super::print_line(&serde_json::to_string(&found).expect("a search serializes"));
                return Ok(());
            }
            eprintln!("query: {:?}", found.query.query);
            if let Some(warning) = &found.query.warning {
                eprintln!("warning: {warning}");
            }
            let rows = found.results.iter().map(|result| {
                vec![
                    result.external_id.clone(),
                    result.title.clone(),
                    result.year.map(|year| year.to_string()).unwrap_or_default(),
                    result.relevance_score.map(|score| format!("{score:.2}")).unwrap_or_else(|| "—".into()),
                ]
            });
            table::print(&["external id", "title", "year", "score"], rows);
            Ok(())
        }
        MetadataCommand::Apply { target, external_id, dry_run, fields } => {
            let only = (!fields.is_empty()).then(|| fields.into_iter().collect::<BTreeSet<String>>());
            let options = ApplyOptions { dry_run, only };
            let report = match target.book {
                true => pipeline.apply_book(&target.plugin, &target.id, &external_id, &options).await,
                false => pipeline.apply_series(&target.plugin, &target.id, &external_id, &options).await,
            }
            .map_err(pipeline_failure)?;
            print_report(&report, target.json);
            Ok(())
        }
        MetadataCommand::Match { target, dry_run } => {
            let report = match target.book {
                true => pipeline.auto_match_book(&target.plugin, &target.id, dry_run).await,
                false => pipeline.auto_match_series(&target.plugin, &target.id, dry_run).await,
            }
            .map_err(pipeline_failure)?;
            if target.json {
                super::print_line(&serde_json::to_string(&report).expect("a match serializes"));
                return Ok(());
            }
            if let Some(query) = &report.query {
                eprintln!("query: {query:?}");
            }
            if let Some(reused) = &report.reused {
                eprintln!("reused the stored external id {reused:?}");
            }
            match &report.outcome {
                MatchOutcome::Applied { report } => print_report(report, false),
                MatchOutcome::Skipped { reason, detail } => {
                    eprintln!(
                        "skipped: {}{}",
                        reason.label(),
                        detail.as_ref().map(|text| format!(" ({text})")).unwrap_or_default()
                    )
                }
                MatchOutcome::Error { why } => eprintln!("error: {why}"),
            }
            Ok(())
        }
    }
}

/// The field-by-field report: a table, or JSON.
fn print_report(report: &ApplyReport, as_json: bool) {
    if as_json {
        super::print_line(&serde_json::to_string(report).expect("a report serializes"));
        return;
    }
    let rows = report.changes.iter().map(|change| {
        let outcome = serde_json::to_value(change.outcome).ok().and_then(|value| value.as_str().map(str::to_owned));
        vec![
            change.field.clone(),
            outcome.unwrap_or_default(),
            table::cell(&change.before, 40),
            table::cell(&change.after, 40),
            change.why.clone().unwrap_or_default(),
        ]
    });
    table::print(&["field", "outcome", "before", "after", "why"], rows);
    let written = match (report.dry_run, report.written) {
        (true, _) => "dry run: nothing written",
        (false, true) => "written",
        (false, false) => "nothing to write",
    };
    eprintln!(
        "{} `{}` from `{}` ({}): {written}",
        match report.target {
            crate::pipeline::TargetKind::Series => "series",
            crate::pipeline::TargetKind::Book => "book",
        },
        report.id,
        report.plugin,
        report.external_id
    );
}
