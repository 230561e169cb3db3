//! Syncing one user's reading progress with one plugin (orchestration.md §7): the account,
//! every page pulled, matched and applied, then the user's progress pushed in batches, all
//! on one instance, under a lease so that one connection syncs once at a time.

use codex_plugin_protocol::manifest::Manifest;
use codex_plugin_protocol::types::sync::{PullResponse, PushParams, PushResponse, SyncEntry, UserInfo};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::report::{EntryFailure, SyncReport};
use super::{IntegrationError, Integrations, now_micros};
use crate::library::{LibraryError, LibraryPort, SeriesReading};
use crate::metadata::settings::ActiveSettings;
use crate::plugin::PluginError;
use crate::supervisor::Session;
use crate::sync::{
    EntryContents, MAX_PAGES, MetadataPolicy, PullPager, PullStep, PulledChanges, SyncSettings, push_entry, reconcile,
    rfc3339,
};

/// Entries per `sync/pushProgress` (orchestration.md §9).
pub const PUSH_BATCH: usize = 100;
/// Entries asked for per page (the reference's one page was 500).
pub const PAGE_SIZE: i64 = 500;
/// How long a sync's lease holds unless renewed; it is renewed at every page and batch.
const LEASE: Duration = Duration::from_secs(120);

/// How one sync runs.
#[derive(Clone)]
pub struct SyncOptions {
    /// Pull and decide, write nothing and push nothing (the result is not kept either).
    pub dry_run: bool,
    /// Pull everything, not only what changed since the last complete pull.
    pub full: bool,
    pub push_batch: usize,
    pub page_size: i64,
    pub max_pages: usize,
    /// Told as the sync goes.
    pub progress: Option<Arc<dyn Fn(SyncProgress) + Send + Sync>>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            full: false,
            push_batch: PUSH_BATCH,
            page_size: PAGE_SIZE,
            max_pages: MAX_PAGES,
            progress: None,
        }
    }
}

/// How far a sync got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncProgress {
    Pulled { pages: usize, entries: usize },
    Applied { matched: usize, books_marked: usize },
    Pushing { entries: usize },
    Pushed { sent: usize, of: usize },
}

impl Integrations {
    /// Syncs `user`'s reading progress with `plugin`. A sync of the same connection already
    /// running in this host is joined (both get its report); one running on another host
    /// sharing the database is [`IntegrationError::Busy`]. A sync that ran and failed is a
    /// report with its error, kept as the connection's last result like any other.
    pub async fn sync(
        &self,
        plugin: &str,
        user: &str,
        options: SyncOptions,
    ) -> Result<Arc<SyncReport>, IntegrationError> {
        let plan = self.plan_sync(plugin, user).await?;
        if options.dry_run {
            return Ok(Arc::new(self.clone().run_sync(plan, options, None).await));
        }
        let key = (plugin.to_owned(), user.to_owned());
        let running = self.syncing.join_or_start(key, || self.start_sync(plan, options))?;
        running.await.map_err(|why| IntegrationError::Joined(why.to_string()))
    }

    /// Takes the lease; the job then runs the sync and records its result.
    fn start_sync(
        &self,
        plan: SyncPlan,
        options: SyncOptions,
    ) -> Result<impl Future<Output = Result<SyncReport, String>> + use<>, IntegrationError> {
        let now = now_micros();
        let until = now + LEASE.as_micros() as i64;
        if let Err((holder, held_until)) = self.syncs.claim(&plan.plugin, &plan.user, &self.holder, now, until)? {
            return Err(IntegrationError::Busy {
                plugin: plan.plugin,
                user: plan.user,
                holder,
                seconds: (held_until - now).max(0) / 1_000_000,
            });
        }
        let this = self.clone();
        Ok(async move {
            let renewer = LeaseRenewer::start(&this, &plan);
            let report = this.clone().run_sync(plan, options, Some(renewer.lost.clone())).await;
            drop(renewer);
            this.syncs.finish(&report, &this.holder).map_err(|error| error.to_string())?;
            Ok(report)
        })
    }

    /// Gives back every sync lease this host holds (a command stopped by a signal: its
    /// syncs will not finish, and another host may take them at once).
    pub fn release_leases(&self) -> Result<(), IntegrationError> {
        self.syncs.release_all(&self.holder)
    }

    /// Everything a sync needs to know before it starts, checked.
    async fn plan_sync(&self, plugin: &str, user: &str) -> Result<SyncPlan, IntegrationError> {
        let registry = self.host.registry();
        registry.get(plugin)?;
        let connection = registry.user_connection(plugin, user)?;
        let manifest = self.manifest(plugin, user).await?;
        if !manifest.capabilities.user_read_sync {
            return Err(IntegrationError::NotCapable {
                plugin: plugin.to_owned(),
                what: "sync reading progress",
                capability: "userReadSync",
            });
        }
        let record = registry.get(plugin)?;
        let active = registry
            .metadata_settings(plugin)?
            .compile()
            .map_err(|why| IntegrationError::Settings { plugin: plugin.to_owned(), why })?;
        Ok(SyncPlan {
            plugin: plugin.to_owned(),
            user: user.to_owned(),
            settings: SyncSettings::from_user_config(&connection.config),
            contents: EntryContents::new(
                &manifest.capabilities,
                MetadataPolicy::from_admin_config(&record.definition.admin_config),
            ),
            source: manifest.capabilities.external_id_source.clone(),
            active,
        })
    }

    /// The tracker account `user` is connected as (`sync/getUserInfo`); none for a plugin
    /// that does not sync.
    pub async fn account(&self, plugin: &str, user: &str) -> Result<Option<UserInfo>, IntegrationError> {
        self.host.registry().user_connection(plugin, user)?;
        if !self.manifest(plugin, user).await?.capabilities.user_read_sync {
            return Ok(None);
        }
        let value = self.host.call(plugin, Some(user), "sync/getUserInfo", json!({})).await?;
        let account = serde_json::from_value(value).map_err(|error| IntegrationError::Fault {
            plugin: plugin.to_owned(),
            why: format!("it answered sync/getUserInfo without an account: {error}"),
        })?;
        Ok(Some(account))
    }

    /// The plugin's manifest, as its last start recorded it (started once, as the user, if
    /// no start did).
    pub(super) async fn manifest(&self, plugin: &str, user: &str) -> Result<Manifest, IntegrationError> {
        let registry = self.host.registry();
        let mut record = registry.get(plugin)?;
        if record.manifest.is_none() {
            // Any answer means it started; its manifest is then recorded.
            match self.host.call(plugin, Some(user), "ping", Value::Null).await {
                Ok(_) | Err(PluginError::Answered { .. }) => {}
                Err(error) => return Err(error.into()),
            }
            record = registry.get(plugin)?;
        }
        record.manifest.and_then(|manifest| serde_json::from_value(manifest).ok()).ok_or_else(|| {
            IntegrationError::Fault {
                plugin: plugin.to_owned(),
                why: "it started, but no readable manifest was recorded".into(),
            }
        })
    }

    async fn run_sync(self, plan: SyncPlan, options: SyncOptions, lost: Option<Arc<AtomicBool>>) -> SyncReport {
        let mut report = SyncReport {
            plugin: plan.plugin.clone(),
            user: plan.user.clone(),
            started_at: now_micros(),
            dry_run: options.dry_run,
            pulls: plan.settings.mode.pulls(),
            pushes: plan.settings.mode.pushes(),
            ..SyncReport::default()
        };
        let session = self.host.session(&plan.plugin, Some(&plan.user));
        let job = Job {
            integrations: &self,
            plan: &plan,
            options: &options,
            session: &session,
            lost,
            timings: Timings::default(),
        };
        if let Err(error) = job.run(&mut report).await {
            report.error = Some(error);
        }
        report.finished_at = now_micros();
        report.plugin_seconds = job.timings.plugin.load(Ordering::Relaxed) as f64 / 1e6;
        report.library_seconds = job.timings.library.load(Ordering::Relaxed) as f64 / 1e6;
        report
    }
}

/// A sync's settings, checked before it starts.
struct SyncPlan {
    plugin: String,
    user: String,
    settings: SyncSettings,
    contents: EntryContents,
    source: Option<String>,
    active: ActiveSettings,
}

/// One sync running.
struct Job<'a> {
    integrations: &'a Integrations,
    plan: &'a SyncPlan,
    options: &'a SyncOptions,
    session: &'a Session<'a>,
    /// Set when the lease was lost (none for a dry run, which holds none).
    lost: Option<Arc<AtomicBool>>,
    timings: Timings,
}

/// Where a sync's time went, in microseconds.
#[derive(Default)]
struct Timings {
    plugin: AtomicU64,
    library: AtomicU64,
}

/// Renews a sync's lease on a timer of its own, whatever the job waits for (a plugin call
/// may take longer than the lease); stops when dropped.
struct LeaseRenewer {
    lost: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaseRenewer {
    fn start(integrations: &Integrations, plan: &SyncPlan) -> Self {
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
    async fn run(&self, report: &mut SyncReport) -> Result<(), String> {
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
            self.tell(super::SyncProgress::Pulled { pages: report.pages, entries: entries.len() });
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
        self.tell(super::SyncProgress::Applied { matched: report.matched, books_marked: report.books_marked });
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
        self.tell(super::SyncProgress::Pushing { entries: entries.len() });
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
            self.tell(super::SyncProgress::Pushed { sent, of: entries.len() });
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
