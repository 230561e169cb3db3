//! `library auto-match`: a whole library with a plugin, with a progress bar on a terminal
//! (plain lines otherwise), a tally at the end, and `--json` for scripts.

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
        let display = Arc::new(Display::new());
        // On a worker, as a server runs it: the job and the plugin it calls hand work to
        // each other there, without waking this thread.
        let job = {
            let (plugin, library, display) = (args.plugin.clone(), args.library.clone(), display.clone());
            tokio::spawn(async move {
                pipeline.auto_match_library(&plugin, &library, &options, &|progress| display.show(progress)).await
            })
        };
        let run = interruptible(job).await;
        display.finish();
        if let Ok(host) = Arc::try_unwrap(host) {
            host.shutdown().await;
        }
        match run {
            Some(run) => run.map_err(pipeline_failure),
            None => Err(Failure {
                message: format!(
                    "interrupted after {} of {} items; what they did is written and recorded: run the same command again to go on from there",
                    display.done(),
                    display.total()
                ),
                exit_code: 130,
            }),
        }
    })?;
    if args.json {
        super::print_line(&serde_json::to_string(&outcome).expect("a run serializes"));
    } else {
        print_run(&outcome);
    }
    Ok(())
}

/// The job's end, or `None` when Ctrl-C stopped it first: the job is dropped (items in
/// flight are given up; those that ended are recorded) before this returns.
async fn interruptible<T>(mut job: tokio::task::JoinHandle<T>) -> Option<T> {
    tokio::select! {
        ended = &mut job => Some(ended.unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()))),
        _ = tokio::signal::ctrl_c() => {
            job.abort();
            let _ = job.await;
            None
        }
    }
}

/// Progress on stderr: a bar with counts and rate on a terminal, a line per item otherwise.
struct Display {
    bar: Option<ProgressBar>,
    done: AtomicUsize,
    total: AtomicUsize,
}

impl Display {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template("{bar:30} {pos}/{len} items · {per_sec} · eta {eta} · {msg}")
                .expect("a valid progress template");
            bar.set_style(style);
            bar
        });
        Self { bar, done: AtomicUsize::new(0), total: AtomicUsize::new(0) }
    }

    fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    fn show(&self, progress: &Progress) {
        self.done.store(progress.done, Ordering::Relaxed);
        self.total.store(progress.total, Ordering::Relaxed);
        match &self.bar {
            Some(bar) => {
                bar.set_length(progress.total as u64);
                bar.set_position(progress.done as u64);
                bar.set_message(progress.last.clone());
            }
            None => eprintln!("[{}/{}] {}", progress.done, progress.total, progress.last),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
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
