//! `releases …`: release sources and what they found. `sources` lists the sources each
//! release-source plugin registered (starting the plugins, so that they register);
//! `poll` polls one now with a progress display; `list` shows the ledger; `enable`,
//! `disable` and `schedule` are an admin's settings of a source; `settings` the host's.
//! Tables on stdout, `--json` for scripts.

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use super::Failure;
use super::pipeline_host::{HostArgs, release_failure, runtime};
use super::table;
use crate::release_tracking::{LedgerFilter, ReleaseTracker, rfc3339_utc};

/// Release sources: list, poll, the releases they found.
#[derive(Debug, Args)]
pub struct ReleasesArgs {
    #[command(subcommand)]
    command: ReleasesCommand,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(Debug, Subcommand)]
enum ReleasesCommand {
    /// The registered sources, with their last poll. Release-source plugins are started
    /// first, so that what they register now is shown.
    Sources {
        /// Only this plugin's sources.
        #[arg(long, value_name = "ID")]
        plugin: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Poll a source now, even while its upstream host backs off, and print the summary.
    Poll {
        /// The source: its id, or `PLUGIN:KEY`.
        source: String,
        /// JSON instead of a line.
        #[arg(long)]
        json: bool,
    },
    /// Releases found, newest first.
    List {
        /// Only this series' releases.
        #[arg(long, value_name = "ID")]
        series: Option<String>,
        /// Only releases in this state (announced, ignored, dismissed, marked_acquired, hidden).
        #[arg(long, value_name = "STATE")]
        state: Option<String>,
        /// Only this source's releases (its id, or `PLUGIN:KEY`).
        #[arg(long, value_name = "SOURCE")]
        source: Option<String>,
        /// Show at most this many.
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: usize,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set a release's state (dismissed, marked_acquired, hidden, announced).
    Mark {
        /// The release's ledger id (`releases list --json` shows it).
        id: String,
        /// The new state.
        state: String,
    },
    /// Poll a source on its schedule again.
    Enable {
        /// The source: its id, or `PLUGIN:KEY`.
        source: String,
    },
    /// Stop polling a source (a plugin's re-registration keeps it disabled).
    Disable {
        /// The source: its id, or `PLUGIN:KEY`.
        source: String,
    },
    /// Set a source's own cron schedule (five fields, or six with seconds, UTC).
    Schedule {
        /// The source: its id, or `PLUGIN:KEY`.
        source: String,
        /// The schedule; `default` returns to the host's.
        cron: String,
    },
    /// Show or change the host's release settings.
    Settings {
        /// The languages whose releases advance a series' latest known chapter when the
        /// series names none, comma-separated (default: en).
        #[arg(long, value_name = "LIST")]
        languages: Option<String>,
        /// The schedule of sources without their own (default: daily at midnight UTC).
        #[arg(long, value_name = "CRON")]
        schedule: Option<String>,
    },
}

pub fn run(args: ReleasesArgs) -> Result<(), Failure> {
    runtime()?.block_on(async {
        let tracker = args.host.open_releases()?;
        let outcome = command(&tracker, args.command).await;
        // Plugins are shut down, and this host's call counts kept.
        match tracker.into_host().await.map(std::sync::Arc::try_unwrap) {
            Some(Ok(host)) => host.shutdown().await,
            _ => tracing::warn!("the host was still in use; its plugins were stopped without a shutdown"),
        }
        outcome
    })
}

async fn command(tracker: &ReleaseTracker, command: ReleasesCommand) -> Result<(), Failure> {
    match command {
        ReleasesCommand::Sources { plugin, json } => sources(tracker, plugin.as_deref(), json).await,
        ReleasesCommand::Poll { source, json } => poll(tracker, &source, json).await,
        ReleasesCommand::List { series, state, source, limit, json } => {
            let source = source.map(|source| tracker.source(&source).map(|found| found.id)).transpose();
            let filter = LedgerFilter { series, state, source: source.map_err(release_failure)?, limit };
            let entries = tracker.ledger(&filter).map_err(release_failure)?;
            if json {
                super::print_line(&serde_json::to_string_pretty(&entries).expect("entries serialize"));
                return Ok(());
            }
            let number = |value: Option<f64>| value.map(|value| value.to_string()).unwrap_or_default();
            table::print(
                &["series", "chapter", "volume", "language", "state", "group", "plugin", "observed"],
                entries.iter().map(|entry| {
                    vec![
                        entry.series_id.clone(),
                        number(entry.chapter),
                        number(entry.volume.map(|volume| volume as f64)),
                        entry.language.clone(),
                        entry.state.clone(),
                        entry.release.group_or_uploader.clone().unwrap_or_default(),
                        entry.plugin.clone(),
                        entry.release.observed_at.clone(),
                    ]
                }),
            );
            Ok(())
        }
        ReleasesCommand::Mark { id, state } => tracker.set_ledger_state(&id, &state).map_err(release_failure),
        ReleasesCommand::Enable { source } => {
            tracker.set_source_settings(&source, Some(true), None).map_err(release_failure)
        }
        ReleasesCommand::Disable { source } => {
            tracker.set_source_settings(&source, Some(false), None).map_err(release_failure)
        }
        ReleasesCommand::Schedule { source, cron } => {
            let schedule = (cron != "default").then_some(cron.as_str());
            tracker.set_source_settings(&source, None, Some(schedule)).map_err(release_failure)
        }
        ReleasesCommand::Settings { languages, schedule } => {
            if let Some(languages) = languages {
                let list: Vec<String> = languages
                    .split(',')
                    .map(|language| language.trim().to_lowercase())
                    .filter(|l| !l.is_empty())
                    .collect();
                tracker.set_default_languages(&list).map_err(release_failure)?;
            }
            if let Some(schedule) = schedule {
                tracker.set_default_schedule(&schedule).map_err(release_failure)?;
            }
            let settings = serde_json::json!({
                "languages": crate::releases::effective_languages(&[], &tracker.default_languages().map_err(release_failure)?),
                "schedule": tracker.default_schedule().map_err(release_failure)?,
            });
            super::print_line(&serde_json::to_string_pretty(&settings).expect("settings serialize"));
            Ok(())
        }
    }
}

async fn sources(tracker: &ReleaseTracker, plugin: Option<&str>, json: bool) -> Result<(), Failure> {
    match plugin {
        Some(plugin) => tracker.refresh_sources(plugin).await.map_err(release_failure)?,
        None => tracker.start_release_plugins().await,
    }
    let sources = tracker.sources(plugin).map_err(release_failure)?;
    if json {
        super::print_line(&serde_json::to_string_pretty(&sources).expect("sources serialize"));
        return Ok(());
    }
    table::print(
        &["source", "name", "kind", "enabled", "last poll", "summary", "last error"],
        sources.iter().map(|source| {
            vec![
                format!("{}:{}", source.plugin, source.source_key),
                source.display_name.clone(),
                source.kind.clone(),
                if source.enabled { "yes" } else { "no" }.to_owned(),
                source.state.last_polled_at.map(rfc3339_utc).unwrap_or_default(),
                source.state.last_summary.clone().unwrap_or_default(),
                source.state.last_error.clone().unwrap_or_default(),
            ]
        }),
    );
    Ok(())
}

async fn poll(tracker: &ReleaseTracker, source: &str, json: bool) -> Result<(), Failure> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("a valid template"));
    bar.set_message(format!("polling {source}"));
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let shown = bar.clone();
    let progress = Box::new(move |progress: crate::release_tracking::PollProgress| {
        let message = progress.message.unwrap_or_else(|| format!("{}/{}", progress.current, progress.total));
        shown.set_message(message);
    });
    let report = tracker.poll(source, Some(progress)).await;
    bar.finish_and_clear();
    let report = report.map_err(release_failure)?;
    if json {
        super::print_line(&serde_json::to_string_pretty(&report).expect("a report serializes"));
    } else {
        super::print_line(&format!("{}: {}", report.display_name, report.summary));
        if let Some(until) = &report.backoff_until {
            super::print_line(&format!("its upstream host is left alone until {until}"));
        }
    }
    match report.error {
        Some(error) if report.upstream_status.is_none() => Err(Failure { message: error, exit_code: 1 }),
        _ => Ok(()),
    }
}
