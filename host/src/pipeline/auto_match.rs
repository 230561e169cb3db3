//! Auto-match (orchestration.md §4): for one series or book, targets → scope → library
//! conditions → plugin conditions → external-id reuse, else query → search → best result →
//! threshold → `get` → apply with the match's id stored. For a library: every series (and
//! every book, for a book provider), several in flight, paced, paused when the plugin asks,
//! each outcome recorded as it ends so that a run started again after an interruption
//! redoes nothing.

use futures::StreamExt as _;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::runs::Recorder;
use super::target::{ApplyOptions, ApplyReport, SEARCH_LIMIT};
use super::{Pipeline, PipelineError, Provider};
use crate::library::{Book, Library, Series};
use crate::metadata::best_match::{Pick, pick};
use crate::metadata::context::series_context;
use crate::metadata::settings::Target;
use crate::plugin::PluginError;
use crate::protocol::ErrorCode;

/// Why an item was not matched (the reference's reasons, and one of ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    NoMatchingTargets,
    /// The plugin's settings keep it out of this library.
    LibraryNotInScope,
    LibraryConditionsNotMet,
    PluginConditionsNotMet,
    NoMatch,
    LowConfidence,
}

impl SkipReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::NoMatchingTargets => "no_matching_targets",
            Self::LibraryNotInScope => "library_not_in_scope",
            Self::LibraryConditionsNotMet => "library_conditions_not_met",
            Self::PluginConditionsNotMet => "plugin_conditions_not_met",
            Self::NoMatch => "no_match",
            Self::LowConfidence => "low_confidence",
        }
    }
}

/// How one item ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum MatchOutcome {
    /// Matched and applied (or, in a dry run, what would be).
    Applied { report: ApplyReport },
    Skipped {
        reason: SkipReason,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The plugin or the library failed for this item; the others go on.
    Error { why: String },
}

impl MatchOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Applied { .. } => "applied",
            Self::Skipped { reason, .. } => reason.label(),
            Self::Error { .. } => "error",
        }
    }

    fn skipped(reason: SkipReason, detail: impl Into<Option<String>>) -> Self {
        Self::Skipped { reason, detail: detail.into() }
    }
}

/// One item's auto-match.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchReport {
    pub target: Target,
    pub id: String,
    /// The query sent, when there was a search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The external id reused instead of searching.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reused: Option<String>,
    #[serde(flatten)]
    pub outcome: MatchOutcome,
}

/// Items a library run keeps in flight unless told otherwise: enough to overlap a remote
/// plugin's latency (a plugin answering in 200 ms matches 40 items a second at 8) and
/// to keep both of a small host's cores busy with a local one (the pipeline bench). The
/// plugin's pace bounds the calls it receives whatever this is.
pub const DEFAULT_IN_FLIGHT: usize = 8;

/// How a library run goes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub dry_run: bool,
    /// Items in flight at once.
    pub in_flight: usize,
    /// Start over instead of resuming an interrupted run.
    pub fresh: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { dry_run: false, in_flight: DEFAULT_IN_FLIGHT, fresh: false }
    }
}

/// Where a library run is.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    /// Items an earlier, interrupted run already did.
    pub resumed: usize,
    pub last: String,
}

/// Outcomes of a library run, by label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub outcomes: BTreeMap<String, usize>,
    /// Items skipped because an interrupted run had done them.
    pub already_done: usize,
    /// Times the plugin asked the job to wait.
    pub rate_limited: usize,
}

/// A finished library run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LibraryRun {
    pub plugin: String,
    pub library: String,
    pub dry_run: bool,
    pub tally: Tally,
    pub seconds: f64,
    pub reports: Vec<MatchReport>,
}

/// How many times one item is tried again after RateLimited answers.
const RATE_LIMIT_RETRIES: usize = 5;
/// `retryAfterSeconds` when a RateLimited answer has none (protocol.md §5).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The longest a RateLimited answer may pause a job.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

impl Pipeline {
    /// Auto-matches one series with `plugin`.
    pub async fn auto_match_series(
        &self,
        plugin: &str,
        series: &str,
        dry_run: bool,
    ) -> Result<MatchReport, PipelineError> {
        let provider = self.provider(plugin).await?;
        provider.require(Target::Series)?;
        let series = self.library.series(series)?;
        self.match_series(&provider, &series, dry_run).await
    }

    /// Auto-matches one book with `plugin`.
    pub async fn auto_match_book(&self, plugin: &str, book: &str, dry_run: bool) -> Result<MatchReport, PipelineError> {
        let provider = self.provider(plugin).await?;
        provider.require(Target::Book)?;
        let book = self.library.book(book)?;
        let series = self.library.series(&book.series_id)?;
        self.match_book(&provider, &book, &series, dry_run).await
    }

    /// The steps before any plugin call; `Some` when they already decided.
    fn precheck(provider: &Provider, target: Target, library: &Library, series: &Series) -> Option<MatchOutcome> {
        if !provider.targets().contains(&target) {
            let detail = format!("its targets are {:?}", provider.targets());
            return Some(MatchOutcome::skipped(SkipReason::NoMatchingTargets, detail));
        }
        if !provider.settings.sees_library(&series.library_id) {
            return Some(MatchOutcome::skipped(SkipReason::LibraryNotInScope, None));
        }
        if library.auto_match_conditions.is_none() && provider.settings.conditions.is_none() {
            return None;
        }
        let context = series_context(series, None);
        if let Some(conditions) = &library.auto_match_conditions
            && let Err(why) = conditions.evaluate(&context)
        {
            return Some(MatchOutcome::skipped(SkipReason::LibraryConditionsNotMet, why));
        }
        if let Some(conditions) = &provider.settings.conditions
            && let Err(why) = conditions.evaluate(&context)
        {
            return Some(MatchOutcome::skipped(SkipReason::PluginConditionsNotMet, why));
        }
        None
    }

    pub(crate) async fn match_series(
        &self,
        provider: &Provider,
        series: &Series,
        dry_run: bool,
    ) -> Result<MatchReport, PipelineError> {
        let library = self.library.library(&series.library_id)?;
        let search = async { self.search_series_with(provider, &library, series, SEARCH_LIMIT).await };
        let found =
            Self::find(provider, Target::Series, &series.id, &library, series, &series.external_ids, search).await?;
        let (mut report, external_id) = match found {
            Found::Decided(report) => return Ok(report),
            Found::Id(report, external_id) => (report, external_id),
        };
        let options = ApplyOptions { dry_run, only: None };
        let applied = self.apply_series_with(provider, series, &external_id, &options).await?;
        report.outcome = MatchOutcome::Applied { report: applied };
        Ok(report)
    }

    pub(crate) async fn match_book(
        &self,
        provider: &Provider,
        book: &Book,
        series: &Series,
        dry_run: bool,
    ) -> Result<MatchReport, PipelineError> {
        let library = self.library.library(&series.library_id)?;
        let search = async { self.search_book_with(provider, &library, book, series, SEARCH_LIMIT).await };
        let found = Self::find(provider, Target::Book, &book.id, &library, series, &book.external_ids, search).await?;
        let (mut report, external_id) = match found {
            Found::Decided(report) => return Ok(report),
            Found::Id(report, external_id) => (report, external_id),
        };
        let options = ApplyOptions { dry_run, only: None };
        let applied = self.apply_book_with(provider, book, &external_id, &options).await?;
        report.outcome = MatchOutcome::Applied { report: applied };
        Ok(report)
    }

    /// The steps up to the external id to apply: the prechecks, then the stored id of this
    /// plugin (when reused), else the search and the best result.
    async fn find(
        provider: &Provider,
        target: Target,
        id: &str,
        library: &Library,
        series: &Series,
        stored: &crate::library::ExternalIds,
        search: impl Future<Output = Result<super::SearchOutcome, PipelineError>>,
    ) -> Result<Found, PipelineError> {
        let mut report = MatchReport {
            target,
            id: id.to_owned(),
            query: None,
            reused: None,
            outcome: MatchOutcome::Error { why: String::new() },
        };
        if let Some(decided) = Self::precheck(provider, target, library, series) {
            report.outcome = decided;
            return Ok(Found::Decided(report));
        }
        let known = stored.get(&format!("plugin:{}", provider.id)).map(|known| known.id.clone());
        if let Some(known) = known.filter(|_| provider.settings.reuse_external_id) {
            report.reused = Some(known.clone());
            return Ok(Found::Id(report, known));
        }
        let found = search.await?;
        report.query = Some(found.query.query.clone());
        match Self::decide(provider, &found.results) {
            Ok(external_id) => Ok(Found::Id(report, external_id)),
            Err(skipped) => {
                report.outcome = skipped;
                Ok(Found::Decided(report))
            }
        }
    }

    /// The best result's id, or why there is none.
    fn decide(
        provider: &Provider,
        results: &[crate::protocol::types::metadata::SearchResult],
    ) -> Result<String, MatchOutcome> {
        match pick(results, provider.settings.threshold, provider.settings.accept_unscored) {
            Pick::Matched { result } => Ok(result.external_id),
            Pick::NoMatch => Err(MatchOutcome::skipped(SkipReason::NoMatch, None)),
            Pick::LowConfidence { result, score, threshold } => {
                let detail = match score {
                    Some(score) => format!("best: `{}` scored {score} (threshold {threshold})", result.external_id),
                    None => format!("best: `{}` has no score (threshold {threshold})", result.external_id),
                };
                Err(MatchOutcome::skipped(SkipReason::LowConfidence, detail))
            }
        }
    }

    /// Auto-matches every series of `library` (and every book, for a book provider) with
    /// `plugin`, calling `progress` as items end.
    pub async fn auto_match_library(
        &self,
        plugin: &str,
        library: &str,
        options: &RunOptions,
        progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<LibraryRun, PipelineError> {
        let started = Instant::now();
        let provider = self.provider(plugin).await?;
        if provider.targets().is_empty() {
            provider.require(Target::Series)?;
            provider.require(Target::Book)?;
        }
        provider.check_scope(library)?;
        self.library.library(library)?;
        let items = self.items(&provider, library)?;
        let (mut record, done) = match options.dry_run {
            true => (None, Default::default()),
            false => {
                let (run, done) = self.runs.resume_or_start(plugin, library, options.fresh)?;
                (Some(Recorder::new(&self.runs, run)), done)
            }
        };
        let (todo, skipped): (Vec<Item>, Vec<Item>) = items.into_iter().partition(|item| !done.contains(&item.key()));
        let total = todo.len() + skipped.len();
        let mut tally = Tally { already_done: skipped.len(), ..Tally::default() };
        let mut reports = Vec::new();
        let mut finished = skipped.len();
        let mut ends = futures::stream::iter(todo)
            .map(|item| {
                let provider = provider.clone();
                async move { self.run_item(&provider, item, options.dry_run).await }
            })
            .buffer_unordered(options.in_flight.max(1));
        loop {
            // Outcomes waiting to be recorded are written on time even while no item ends
            // (a plugin that asked the job to pause, a slow answer).
            let next = match record.as_ref().and_then(Recorder::due_in) {
                Some(due) => match tokio::time::timeout(due, ends.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        record.as_mut().map(Recorder::flush).transpose()?;
                        continue;
                    }
                },
                None => ends.next().await,
            };
            let Some((key, report, waits)) = next else { break };
            tally.rate_limited += waits;
            *tally.outcomes.entry(report.outcome.label().to_owned()).or_default() += 1;
            if let Some(record) = &mut record
                && !matches!(report.outcome, MatchOutcome::Error { .. })
            {
                record.add(key.clone(), report.outcome.label())?;
            }
            finished += 1;
            progress(&Progress {
                done: finished,
                total,
                resumed: skipped.len(),
                last: format!("{} {}: {}", key.split(':').next().unwrap_or(""), report.id, report.outcome.label()),
            });
            reports.push(report);
        }
        // A run with failed items stays open: run again, it tries only those.
        if let Some(mut record) = record {
            match tally.outcomes.contains_key("error") {
                true => record.flush()?,
                false => record.finish()?,
            }
        }
        reports.sort_by(|a, b| (a.target, &a.id).cmp(&(b.target, &b.id)));
        Ok(LibraryRun {
            plugin: plugin.to_owned(),
            library: library.to_owned(),
            dry_run: options.dry_run,
            tally,
            seconds: started.elapsed().as_secs_f64(),
            reports,
        })
    }

    /// Every series of the library, then (for a book provider) their books.
    fn items(&self, provider: &Provider, library: &str) -> Result<Vec<Item>, PipelineError> {
        let books_too = provider.targets().contains(&Target::Book);
        let mut items = Vec::new();
        let mut after = None;
        loop {
            let page = self.library.series_page(library, after.as_deref(), 500)?;
            for id in &page.ids {
                items.push(Item::Series(id.clone()));
                if books_too {
                    items.extend(self.library.books(id)?.into_iter().map(|book| Item::Book(book.id)));
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(items),
            }
        }
    }

    /// One item, paced, tried again while the plugin asks to wait; a failure is the item's
    /// outcome, not the job's.
    async fn run_item(&self, provider: &Provider, item: Item, dry_run: bool) -> (String, MatchReport, usize) {
        let key = item.key();
        let mut waits = 0;
        loop {
            let attempt = match &item {
                Item::Series(id) => match self.library.series(id) {
                    Ok(series) => self.match_series(provider, &series, dry_run).await,
                    Err(error) => Err(error.into()),
                },
                Item::Book(id) => {
                    match self.library.book(id).and_then(|book| Ok((self.library.series(&book.series_id)?, book))) {
                        Ok((series, book)) => self.match_book(provider, &book, &series, dry_run).await,
                        Err(error) => Err(error.into()),
                    }
                }
            };
            match attempt {
                Ok(report) => return (key, report, waits),
                Err(PipelineError::Plugin(error))
                    if error.code() == ErrorCode::RateLimited && waits < RATE_LIMIT_RETRIES =>
                {
                    waits += 1;
                    let wait = retry_after(&error);
                    tracing::info!(plugin = provider.id, "asked to wait {} s; the job pauses", wait.as_secs());
                    provider.pacer.pause(wait);
                }
                Err(error) => {
                    let (target, id) = item.parts();
                    let report = MatchReport {
                        target,
                        id: id.to_owned(),
                        query: None,
                        reused: None,
                        outcome: MatchOutcome::Error { why: error.to_string() },
                    };
                    return (key, report, waits);
                }
            }
        }
    }
}

/// The pause a RateLimited answer asks for.
fn retry_after(error: &PluginError) -> Duration {
    match error {
        PluginError::Answered { error, .. } => pause_asked(error.data.as_ref()),
        _ => DEFAULT_RETRY_AFTER,
    }
}

/// `retryAfterSeconds` of an error's data: absent or unusable is 60 s, and at most an hour.
fn pause_asked(data: Option<&serde_json::Value>) -> Duration {
    let asked = data.and_then(|data| data.get("retryAfterSeconds")).and_then(serde_json::Value::as_f64);
    match asked {
        Some(seconds) if seconds.is_finite() && seconds >= 0.0 => {
            Duration::from_secs_f64(seconds.min(MAX_RETRY_AFTER.as_secs_f64()))
        }
        _ => DEFAULT_RETRY_AFTER,
    }
}

/// Where [`Pipeline::find`] got to: an outcome already, or the id to apply.
enum Found {
    Decided(MatchReport),
    Id(MatchReport, String),
}

/// One thing a library run matches.
#[derive(Debug, Clone)]
enum Item {
    Series(String),
    Book(String),
}

impl Item {
    fn parts(&self) -> (Target, &str) {
        match self {
            Self::Series(id) => (Target::Series, id),
            Self::Book(id) => (Target::Book, id),
        }
    }

    fn key(&self) -> String {
        match self {
            Self::Series(id) => format!("series:{id}"),
            Self::Book(id) => format!("book:{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pause_asked_for_is_bounded_and_defaults_to_a_minute() {
        let cases = [
            (Some(json!({"retryAfterSeconds": 2})), Duration::from_secs(2)),
            (Some(json!({"retryAfterSeconds": 0.5})), Duration::from_millis(500)),
            (Some(json!({"retryAfterSeconds": 1e20})), MAX_RETRY_AFTER),
            (Some(json!({"retryAfterSeconds": -3})), DEFAULT_RETRY_AFTER),
            (Some(json!({"retryAfterSeconds": "soon"})), DEFAULT_RETRY_AFTER),
            (Some(json!({})), DEFAULT_RETRY_AFTER),
            (None, DEFAULT_RETRY_AFTER),
        ];
        for (data, expected) in cases {
            assert_eq!(pause_asked(data.as_ref()), expected, "{data:?}");
        }
    }
}
