//! `library auto-match`: a whole library with a plugin, with a progress bar on a terminal
//! (plain lines otherwise), a tally at the end, and `--json` for scripts.

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::task::{JoinError, JoinHandle};

use super::Failure;
use super::pipeline_host::{HostArgs, pipeline_failure, runtime};
use super::table;
use super::termination::Termination;
use crate::pipeline::{DEFAULT_IN_FLIGHT, LibraryRun, MatchOutcome, Progress, RunOptions};

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
    /// Series or books matched at once (the plugin's requestsPerMinute still bounds its calls).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_IN_FLIGHT as u16, value_parser = clap::value_parser!(u16).range(1..=64))]
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
        let mut termination = Termination::listen();
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
        let run = stoppable(job, &mut termination).await;
        display.finish();
        if let Ok(host) = Arc::try_unwrap(host) {
            // A signal now cuts the plugins' grace period short (the host dropped kills them).
            tokio::select! {
                () = host.shutdown() => {}
                _ = termination.recv() => {}
            }
        }
        match run {
            Ok(run) => run.map_err(pipeline_failure),
            Err(signal) => Err(stopped(signal, &display)),
        }
    })?;
    if args.json {
        super::print_line(&serde_json::to_string(&outcome).expect("a run serializes"));
    } else {
        print_run(&outcome);
    }
    Ok(())
}

/// The job's end, or the signal that stopped it first: the job is dropped (items in flight
/// are given up; those that ended are recorded) before this returns. A second signal
/// stops the process at once.
async fn stoppable<T>(mut job: JoinHandle<T>, termination: &mut Termination) -> Result<T, &'static str> {
    let joined = |ended: Result<T, JoinError>| match ended {
        Ok(ended) => Some(ended),
        Err(error) if error.is_cancelled() => None,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    };
    let signal = tokio::select! {
        ended = &mut job => return Ok(joined(ended).expect("only a signal cancels the job")),
        signal = termination.recv() => signal,
    };
    job.abort();
    tokio::select! {
        // Ended meanwhile: the run is whole.
        ended = &mut job => joined(ended).ok_or(signal),
        again = termination.recv() => {
            eprintln!("stopped by a second {again}; the last outcomes may not be recorded");
            std::process::exit(130)
        }
    }
}

fn stopped(signal: &str, display: &Display) -> Failure {
    Failure {
        message: format!(
            "stopped by {signal} after {} of {} items; those are written and recorded: run the same command again to go on from there",
            display.done(),
            display.total()
        ),
        exit_code: 130,
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
