//! `library auto-match`: a whole library with a plugin, with a progress bar on a terminal
//! (plain lines otherwise), a tally at the end, and `--json` for scripts.

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal as _;

use super::Failure;
use super::pipeline_host::{HostArgs, pipeline_failure, runtime};
use super::table;
use crate::pipeline::{LibraryRun, MatchOutcome, Progress, RunOptions};

#[derive(Debug, Args)]
pub struct AutoMatchArgs {
    /// The library to match.
    #[arg(long, value_name = "ID")]
    library: String,
    /// The metadata plugin to match it with.
    #[arg(long, value_name = "ID")]
    plugin: String,
    /// Report what would be applied; write nothing (and record no run).
    #[arg(long)]
    dry_run: bool,
    /// Series or books matched at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    in_flight: u16,
    /// Start over instead of resuming a run that was interrupted.
    #[arg(long)]
    fresh: bool,
    /// Print the run as JSON (every item's outcome and report) instead of tables.
    #[arg(long)]
    json: bool,
}

pub fn run(args: AutoMatchArgs, host: &HostArgs) -> Result<(), Failure> {
    let runtime = runtime()?;
    let outcome = runtime.block_on(async {
        let (host, pipeline) = host.open()?;
        let options = RunOptions { dry_run: args.dry_run, in_flight: usize::from(args.in_flight), fresh: args.fresh };
        let display = Display::new();
        let run = pipeline
            .auto_match_library(&args.plugin, &args.library, &options, &|progress| display.show(progress))
            .await;
        display.finish();
        drop(pipeline);
        if let Ok(host) = std::sync::Arc::try_unwrap(host) {
            host.shutdown().await;
        }
        run.map_err(pipeline_failure)
    })?;
    if args.json {
        super::print_line(&serde_json::to_string(&outcome).expect("a run serializes"));
    } else {
        print_run(&outcome);
    }
    Ok(())
}

/// Progress on stderr: a bar with counts and rate on a terminal, a line per item otherwise.
struct Display(Option<ProgressBar>);

impl Display {
    fn new() -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = ProgressBar::new(0);
        let style = ProgressStyle::with_template("{bar:30} {pos}/{len} items · {per_sec} · eta {eta} · {msg}")
            .expect("a valid progress template");
        bar.set_style(style);
        Self(Some(bar))
    }

    fn show(&self, progress: &Progress) {
        match &self.0 {
            Some(bar) => {
                bar.set_length(progress.total as u64);
                bar.set_position(progress.done as u64);
                bar.set_message(progress.last.clone());
            }
            None => eprintln!("[{}/{}] {}", progress.done, progress.total, progress.last),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

fn print_run(run: &LibraryRun) {
    let rows = run.reports.iter().map(|report| {
        let (external_id, detail) = match &report.outcome {
            MatchOutcome::Applied { report } => {
                let changed =
                    report.changes.iter().filter(|change| change.outcome == crate::metadata::apply::Outcome::Applied);
                (report.external_id.clone(), format!("{} fields", changed.count()))
            }
            MatchOutcome::Skipped { detail, .. } => (String::new(), detail.clone().unwrap_or_default()),
            MatchOutcome::Error { why } => (String::new(), why.clone()),
        };
        let target = serde_json::to_value(report.target).ok().and_then(|value| value.as_str().map(str::to_owned));
        vec![
            target.unwrap_or_default(),
            report.id.clone(),
            report.outcome.label().to_owned(),
            report
                .query
                .clone()
                .or_else(|| report.reused.as_ref().map(|id| format!("(reused {id})")))
                .unwrap_or_default(),
            external_id,
            table::cell(&serde_json::Value::String(detail), 60),
        ]
    });
    table::print(&["", "id", "outcome", "query", "external id", "detail"], rows);
    let mut tally: Vec<Vec<String>> =
        run.tally.outcomes.iter().map(|(outcome, count)| vec![outcome.clone(), count.to_string()]).collect();
    if run.tally.already_done > 0 {
        tally.push(vec!["already done (resumed)".into(), run.tally.already_done.to_string()]);
    }
    if run.tally.rate_limited > 0 {
        tally.push(vec!["paused: plugin asked to wait".into(), run.tally.rate_limited.to_string()]);
    }
    table::print(&["outcome", "count"], tally);
    let done = run.reports.len();
    let rate = if run.seconds > 0.0 { done as f64 / run.seconds } else { 0.0 };
    let what = if run.dry_run { "dry run: nothing written" } else { "written" };
    eprintln!(
        "{done} items in {:.1} s ({rate:.0}/s) with `{}` on library `{}`; {what}",
        run.seconds, run.plugin, run.library
    );
}
