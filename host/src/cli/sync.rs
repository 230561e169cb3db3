//! `sync`: one user's reading progress with one plugin, with progress on stderr and a
//! summary (`--json` for scripts); `sync status`: every connection's last sync.

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal as _;
use std::sync::Arc;

use super::Failure;
use super::pipeline_host::{HostArgs, integration_failure, runtime};
use super::table;
use super::termination::Termination;
use crate::integrations::{SyncOptions, SyncProgress, SyncRecord, SyncReport};
use crate::sync::rfc3339;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SyncArgs {
    #[command(subcommand)]
    command: Option<SyncCommand>,
    /// The sync plugin (its manifest says `userReadSync`).
    #[arg(value_name = "PLUGIN", required = true)]
    plugin: Option<String>,
    /// The user whose progress to sync; they must be connected (`plugin connect`).
    #[arg(long, value_name = "USER", required = true)]
    user: Option<String>,
    /// Pull and decide, but write nothing, push nothing and keep no result.
    #[arg(long)]
    dry_run: bool,
    /// Pull everything the tracker has, not only what changed since the last complete pull.
    #[arg(long)]
    full: bool,
    /// Entries asked for per page.
    #[arg(long, value_name = "N", default_value_t = crate::integrations::PAGE_SIZE, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    page_size: i64,
    /// Entries per push request.
    #[arg(long, value_name = "N", default_value_t = crate::integrations::PUSH_BATCH as u32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    push_batch: u32,
    /// Print the report as JSON instead of a summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(Debug, Subcommand)]
enum SyncCommand {
    /// Each connection's last sync: when, what it did, whether it is running now.
    Status {
        /// Only this plugin's connections.
        #[arg(long, value_name = "ID")]
        plugin: Option<String>,
        /// Only this user's connections.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Print the records as JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        host: HostArgs,
    },
}

pub fn run(args: SyncArgs) -> Result<(), Failure> {
    if let Some(SyncCommand::Status { plugin, user, json, host }) = args.command {
        return status(plugin.as_deref(), user.as_deref(), json, &host);
    }
    let (Some(plugin), Some(user)) = (args.plugin, args.user) else {
        return Err(Failure::usage("`sync` needs a plugin and --user; `sync --help` says more"));
    };
    let display = Arc::new(Display::new());
    let options = SyncOptions {
        dry_run: args.dry_run,
        full: args.full,
        push_batch: args.push_batch as usize,
        page_size: args.page_size,
        progress: Some({
            let display = display.clone();
            Arc::new(move |progress| display.show(progress))
        }),
        ..SyncOptions::default()
    };
    let report = runtime()?.block_on(async {
        let mut termination = Termination::listen();
        let (host, integrations) = args.host.open_integrations()?;
        let sync = integrations.sync(&plugin, &user, options);
        let report = tokio::select! {
            report = sync => report.map_err(integration_failure),
            signal = termination.recv() => {
                if let Err(error) = integrations.release_leases() {
                    tracing::warn!("{error}");
                }
                Err(Failure {
                    message: format!(
                        "stopped by {signal}; what the pull applied is written, and the next sync pulls from where the last complete one did"
                    ),
                    exit_code: 130,
                })
            }
        };
        display.finish();
        drop(integrations);
        if let Ok(host) = Arc::try_unwrap(host) {
            tokio::select! {
                () = host.shutdown() => {}
                _ = termination.recv() => {}
            }
        }
        report
    })?;
    if args.json {
        super::print_line(&serde_json::to_string(report.as_ref()).expect("a report serializes"));
    } else {
        print_report(&report);
    }
    match &report.error {
        None => Ok(()),
        Some(error) => Err(Failure { message: format!("the sync failed: {error}"), exit_code: 1 }),
    }
}

/// Progress on stderr: a spinner with counts on a terminal, a line per step otherwise.
struct Display {
    bar: Option<ProgressBar>,
}

impl Display {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} {elapsed} · {msg}").expect("a valid template"));
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Self { bar }
    }

    fn show(&self, progress: SyncProgress) {
        let line = match progress {
            SyncProgress::Pulled { pages, entries } => format!("pulled {entries} entries in {pages} pages"),
            SyncProgress::Applied { matched, books_marked } => {
                format!("matched {matched} entries, {books_marked} books to mark read")
            }
            SyncProgress::Pushing { entries } => format!("pushing {entries} entries"),
            SyncProgress::Pushed { sent, of } => format!("pushed {sent} of {of} entries"),
        };
        match &self.bar {
            Some(bar) => bar.set_message(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn when(micros: Option<i64>) -> String {
    micros.and_then(rfc3339).unwrap_or_else(|| "never".into())
}

fn print_report(report: &SyncReport) {
    let account = report.account.as_ref().map(|account| format!("{} ({})", account.username, account.external_id));
    let seconds = (report.finished_at - report.started_at) as f64 / 1e6;
    let rows = vec![
        vec!["account".into(), account.unwrap_or_else(|| "unknown".into())],
        vec!["pulled".into(), format!("{} entries in {} pages", report.pulled, report.pages)],
        vec!["since".into(), report.updated_since.clone().unwrap_or_else(|| "the beginning".into())],
        vec!["matched".into(), format!("{} ({} unmatched)", report.matched, report.unmatched)],
        vec![
            "applied".into(),
            format!("{} books marked read, {} ratings taken", report.books_marked, report.ratings_taken),
        ],
        vec!["pushed".into(), format!("{} entries in {} requests", report.pushed, report.push_batches)],
        vec!["failed".into(), report.failed.len().to_string()],
    ];
    table::print(&["sync", "what it did"], rows);
    if !report.failed.is_empty() {
        let failures = report.failed.iter().map(|failure| vec![failure.external_id.clone(), failure.error.clone()]);
        table::print(&["external id", "why it failed"], failures);
    }
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    let what = match (&report.error, report.dry_run) {
        (_, true) => "dry run: nothing written, nothing pushed",
        (Some(_), false) => "failed (see below); the result is kept",
        (None, false) => "written, and the result kept",
    };
    eprintln!("sync of `{}` for `{}` in {seconds:.1} s; {what}", report.plugin, report.user);
}

fn status(plugin: Option<&str>, user: Option<&str>, json: bool, host: &HostArgs) -> Result<(), Failure> {
    let records = runtime()?.block_on(async {
        let (_host, integrations) = host.open_integrations()?;
        integrations.sync_records(plugin, user).map_err(integration_failure)
    })?;
    if json {
        let records: Vec<serde_json::Value> = records.iter().map(SyncRecord::to_json).collect();
        super::print_line(&serde_json::Value::Array(records).to_string());
        return Ok(());
    }
    if records.is_empty() {
        eprintln!("no sync has run yet; `sync <plugin> --user <user>` runs one");
        return Ok(());
    }
    let rows = records.iter().map(|record| {
        let result = record.last_result.as_ref();
        vec![
            record.plugin.clone(),
            record.user.clone(),
            when(record.last_sync_at),
            match result.map(|result| &result.error) {
                None => String::new(),
                Some(None) => "ok".into(),
                Some(Some(error)) => format!("failed: {}", table::cell(&serde_json::json!(error), 50)),
            },
            result
                .map(|result| format!("{}/{}/{}", result.pulled, result.matched, result.books_marked))
                .unwrap_or_default(),
            result.map(|result| format!("{}/{}", result.pushed, result.failed.len())).unwrap_or_default(),
            if record.held.is_some() { "running".into() } else { String::new() },
        ]
    });
    table::print(&["plugin", "user", "last sync", "result", "pulled/matched/marked", "pushed/failed", "now"], rows);
    Ok(())
}
