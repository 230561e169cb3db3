//! One sync running (see [`super::sync`]): the account, the pull page by page, matching and
//! applying, the push in batches; the lease kept on a timer meanwhile.

use codex_plugin_protocol::types::sync::{PullResponse, PushParams, PushResponse, SyncEntry, UserInfo};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::Integrations;
use super::now_micros;
use super::report::{EntryFailure, SyncReport};
use super::sync::{LEASE, SyncOptions, SyncPlan, SyncProgress};
use crate::library::{LibraryError, LibraryPort, SeriesReading};
use crate::supervisor::Session;
use crate::sync::{PullPager, PullStep, PulledChanges, push_entry, reconcile, rfc3339};

/// One sync running.
pub(super) struct Job<'a> {
    pub integrations: &'a Integrations,
    pub plan: &'a SyncPlan,
    pub options: &'a SyncOptions,
    pub session: &'a Session<'a>,
    /// Set when the lease was lost (none for a dry run, which holds none).
    pub lost: Option<Arc<AtomicBool>>,
    pub timings: Timings,
}

/// Where a sync's time went, in microseconds.
#[derive(Default)]
pub(super) struct Timings {
    pub plugin: AtomicU64,
    pub library: AtomicU64,
}

/// Renews a sync's lease on a timer of its own, whatever the job waits for (a plugin call
/// may take longer than the lease); stops when dropped.
pub(super) struct LeaseRenewer {
    pub lost: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaseRenewer {
    pub fn start(integrations: &Integrations, plan: &SyncPlan) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let (syncs, holder) = (integrations.syncs.clone(), integrations.holder.clone());
        let (plugin, user, flag) = (plan.plugin.clone(), plan.user.clone(), lost.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE / 4).await;
                let until = now_micros() + LEASE.as_micros() as i64;
                let renewing = (syncs.clone(), holder.clone(), plugin.clone(), user.clone());
                let renewed = tokio::task::spawn_blocking(move || {
                    let (syncs, holder, plugin, user) = renewing;
                    syncs.renew(&plugin, &user, &holder, until)
                })
                .await;
                match renewed {
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) => {
                        flag.store(true, Ordering::Release);
                        return;
                    }
                    // A busy database: tried again at the next tick, well within the lease.
                    Ok(Err(error)) => tracing::warn!(plugin, user, "could not renew the sync lease: {error}"),
                    Err(_) => return,
                }
            }
        });
        Self { lost, task }
    }
}

impl Drop for LeaseRenewer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Job<'_> {
    pub async fn run(&self, report: &mut SyncReport) -> Result<(), String> {
        match self.call("sync/getUserInfo", json!({})).await {
            Ok(value) => match serde_json::from_value::<UserInfo>(value) {
                Ok(account) => report.account = Some(account),
                Err(error) => report.notes.push(format!("sync/getUserInfo answered no account: {error}")),
            },
            // As the reference: the account is for show; its pull and push say more.
            Err(error) => report.notes.push(format!("sync/getUserInfo failed: {error}")),
        }
        // As the reference, a pull that fails does not stop the push: what the user read
        // here still reaches the tracker. Nothing the failed pull brought is applied.
        let pulled = if report.pulls {
            self.pull(report).await
        } else {
            report.notes.push(format!("pull skipped: syncMode {} does not pull", self.plan.settings.mode.name()));
            Ok(())
        };
        self.check_lease()?;
        let pushed = if report.pushes {
            self.push(report).await
        } else {
            report.notes.push(format!("push skipped: syncMode {} does not push", self.plan.settings.mode.name()));
            Ok(())
        };
        match (pulled, pushed) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(pull), Ok(())) => Err(format!("the pull failed: {pull}")),
            (Ok(()), Err(push)) => Err(format!("the push failed: {push}")),
            (Err(pull), Err(push)) => Err(format!("the pull failed: {pull}; the push failed too: {push}")),
        }
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        let started = std::time::Instant::now();
        let answer = self.session.call(method, params, None).await.map_err(|error| error.to_string());
        self.timings.plugin.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        answer
    }

    fn tell(&self, progress: super::SyncProgress) {
        if let Some(tell) = &self.options.progress {
            tell(progress);
        }
    }

    /// Stops the sync if its lease was lost: another host may be syncing the connection.
    fn check_lease(&self) -> Result<(), String> {
        match &self.lost {
            Some(lost) if lost.load(Ordering::Acquire) => {
                Err("this sync lost its lease (the database was unreachable for too long, and another host may have taken over); it stopped".into())
            }
            _ => Ok(()),
        }
    }

    async fn library<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn LibraryPort) -> Result<T, LibraryError> + Send + 'static,
    ) -> Result<T, String> {
        let library = self.integrations.library.clone();
        let started = std::time::Instant::now();
        let done = match tokio::task::spawn_blocking(move || work(library.as_ref())).await {
            Ok(result) => result.map_err(|error| error.to_string()),
            Err(error) => Err(format!("a library read stopped: {error}")),
        };
        self.timings.library.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        done
    }

    /// The readings of `series` in the plugin's libraries, by series id.
    async fn readings_in_scope(&self, series: Vec<String>) -> Result<HashMap<String, SeriesReading>, String> {
        let user = self.plan.user.clone();
        let readings = self.library(move |library| library.readings(&user, &series)).await?;
        Ok(readings
            .into_iter()
            .filter(|reading| self.plan.active.sees_library(&reading.series.library_id))
            .map(|reading| (reading.series.id.clone(), reading))
            .collect())
    }

    async fn pull(&self, report: &mut SyncReport) -> Result<(), String> {
        let plugin = &self.plan.plugin;
        let since = match self.integrations.syncs.last_success(plugin, &self.plan.user) {
            Ok(_) if self.options.full => None,
            Ok(since) => since.and_then(rfc3339),
            Err(error) => return Err(error.to_string()),
        };
        report.updated_since = since.clone();
        let mut pager = PullPager::new(self.options.page_size, since, self.options.max_pages);
        let mut params = pager.first();
        let mut entries: Vec<SyncEntry> = Vec::new();
        loop {
            let value = self.call("sync/pullProgress", json!(params)).await?;
            let page: PullResponse = serde_json::from_value(value).map_err(|error| {
                format!("plugin `{plugin}` answered a page it cannot have meant: {error}; nothing pulled was applied")
            })?;
            report.pages += 1;
            entries.extend(page.entries.iter().cloned());
            report.pulled = entries.len();
            self.tell(SyncProgress::Pulled { pages: report.pages, entries: entries.len() });
            self.check_lease()?;
            match pager.after(&page) {
                PullStep::Next(next) => params = next,
                PullStep::Done => break,
                PullStep::Fault(why) => {
                    return Err(format!("plugin `{plugin}`'s pull {why}; nothing pulled was applied"));
                }
            }
        }
        let Some(source) = self.plan.source.clone() else {
            report.unmatched = entries.len();
            report.notes.push("pulled entries not matched: the manifest names no externalIdSource".into());
            return Ok(());
        };
        let ids: Vec<String> =
            entries.iter().map(|entry| entry.external_id.clone()).collect::<HashSet<_>>().into_iter().collect();
        let found = self.library(move |library| library.series_by_external_ids(&source, &ids)).await?;
        let series: Vec<String> = found.values().flatten().cloned().collect::<HashSet<_>>().into_iter().collect();
        let readings = self.readings_in_scope(series).await?;
        let now = now_micros();
        let mut pulled = PulledChanges::default();
        for entry in &entries {
            let matches: Vec<&SeriesReading> =
                found.get(&entry.external_id).into_iter().flatten().filter_map(|id| readings.get(id)).collect();
            if matches.is_empty() {
                report.unmatched += 1;
                continue;
            }
            report.matched += 1;
            for reading in matches {
                reconcile(entry, reading, &self.plan.settings, now, &mut pulled);
            }
        }
        report.books_marked = pulled.books_marked;
        report.ratings_taken = pulled.changes.ratings_if_unrated.len();
        if !self.options.dry_run && !pulled.changes.is_empty() {
            let user = self.plan.user.clone();
            self.library(move |library| library.apply_reading(&user, &pulled.changes)).await?;
        }
        self.tell(SyncProgress::Applied { matched: report.matched, books_marked: report.books_marked });
        report.pull_complete = true;
        Ok(())
    }

    async fn push(&self, report: &mut SyncReport) -> Result<(), String> {
        let plugin = &self.plan.plugin;
        if !self.plan.active.grants.may_read_library() {
            report.notes.push(format!(
                "push skipped: plugin `{plugin}` may not read the library (grant it with `plugin permissions {plugin} --grant library:read`)"
            ));
            return Ok(());
        }
        let Some(source) = self.plan.source.clone() else {
            report.notes.push("push skipped: the manifest names no externalIdSource".into());
            return Ok(());
        };
        let entries = self.push_entries(source).await?;
        self.tell(SyncProgress::Pushing { entries: entries.len() });
        let mut sent = 0;
        // As the reference, a push is sent even with no entries.
        let empty: [SyncEntry; 0] = [];
        let batches: Vec<&[SyncEntry]> = match entries.is_empty() {
            true => vec![&empty],
            false => entries.chunks(self.options.push_batch.max(1)).collect(),
        };
        for batch in batches {
            if self.options.dry_run {
                report.pushed += batch.len();
                continue;
            }
            let params = PushParams { entries: batch.to_vec() };
            let value = self.call("sync/pushProgress", json!(params)).await?;
            let answer: PushResponse = serde_json::from_value(value)
                .map_err(|error| format!("plugin `{plugin}` answered a push it cannot have meant: {error}"))?;
            report.push_batches += 1;
            account_for_batch(batch, answer, report);
            sent += batch.len();
            self.tell(SyncProgress::Pushed { sent, of: entries.len() });
            self.check_lease()?;
        }
        Ok(())
    }

    /// The user's entries: each series of the plugin's libraries with an id under its
    /// source, then (with `searchFallback`) each series read that has none, by title.
    async fn push_entries(&self, source: String) -> Result<Vec<SyncEntry>, String> {
        let (with_source, read) = {
            let (source, user) = (source.clone(), self.plan.user.clone());
            self.library(move |library| Ok((library.series_with_source(&source)?, library.series_read_by(&user)?)))
                .await?
        };
        // Only series the user opened a book of have anything to push.
        let read: HashSet<String> = read.into_iter().collect();
        let with_source: Vec<(String, String)> =
            with_source.into_iter().filter(|(series, _)| read.contains(series)).collect();
        let series: Vec<String> = with_source.iter().map(|(series, _)| series.clone()).collect();
        let readings = self.readings_in_scope(series).await?;
        let (settings, contents) = (&self.plan.settings, self.plan.contents);
        let mut entries: Vec<SyncEntry> = with_source
            .iter()
            .filter_map(|(series, external_id)| push_entry(readings.get(series)?, external_id, settings, contents))
            .collect();
        if settings.search_fallback {
            let known: HashSet<&String> = with_source.iter().map(|(series, _)| series).collect();
            let mut unmatched: Vec<String> = read.iter().filter(|series| !known.contains(series)).cloned().collect();
            unmatched.sort();
            let readings = self.readings_in_scope(unmatched.clone()).await?;
            entries.extend(
                unmatched.iter().filter_map(|series| push_entry(readings.get(series)?, "", settings, contents)),
            );
        }
        Ok(entries)
    }
}

/// Counts a batch's answer into the report: each entry sent is pushed or failed; answers
/// for entries never sent are noted, not counted.
fn account_for_batch(batch: &[SyncEntry], answer: PushResponse, report: &mut SyncReport) {
    let sent: HashSet<&str> = batch.iter().map(|entry| entry.external_id.as_str()).collect();
    // Entries sent by title (search fallback, id `""`) come back under the id the plugin
    // found: as many answers under ids not sent are theirs.
    let mut by_title = batch.iter().filter(|entry| entry.external_id.is_empty()).count();
    let mut strangers = Vec::new();
    for done in answer.success {
        if sent.contains(done.external_id.as_str()) {
            report.pushed += 1;
        } else if by_title > 0 {
            by_title -= 1;
            report.pushed += 1;
        } else {
            strangers.push(done.external_id);
        }
    }
    for failed in answer.failed {
        if !sent.contains(failed.external_id.as_str()) && by_title > 0 {
            by_title -= 1;
            report.failed.push(EntryFailure {
                error: failed.error.unwrap_or_else(|| "the plugin gave no reason".into()),
                external_id: failed.external_id,
            });
            continue;
        }
        match sent.contains(failed.external_id.as_str()) {
            true => report.failed.push(EntryFailure {
                error: failed.error.unwrap_or_else(|| "the plugin gave no reason".into()),
                external_id: failed.external_id,
            }),
            false => strangers.push(failed.external_id),
        }
    }
    if !strangers.is_empty() {
        let shown: Vec<&str> = strangers.iter().take(5).map(String::as_str).collect();
        report.notes.push(format!(
            "the plugin answered for {} entries it was never sent ({}{}); they were ignored",
            strangers.len(),
            shown.join(", "),
            if strangers.len() > 5 { ", …" } else { "" }
        ));
    }
}
