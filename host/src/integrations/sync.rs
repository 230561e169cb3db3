//! Syncing one user's reading progress with one plugin (orchestration.md §7): the account,
//! every page pulled, matched and applied, then the user's progress pushed in batches, all
//! on one instance, under a lease so that one connection syncs once at a time.

use codex_plugin_protocol::manifest::Manifest;
use codex_plugin_protocol::types::sync::UserInfo;
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::report::SyncReport;
use super::sync_job::{Job, LeaseRenewer, Timings};
use super::{IntegrationError, Integrations, now_micros};
use crate::metadata::settings::ActiveSettings;
use crate::plugin::PluginError;
use crate::sync::{EntryContents, MAX_PAGES, MetadataPolicy, SyncSettings};

/// Entries per `sync/pushProgress` (orchestration.md §9).
pub const PUSH_BATCH: usize = 100;
/// Entries asked for per page (the reference's one page was 500).
pub const PAGE_SIZE: i64 = 500;
/// How long a sync's lease holds unless renewed (a quarter of it, on a timer).
pub(super) const LEASE: Duration = Duration::from_secs(120);

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

/// How far a sync got. `Applied` is told once what it counts is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "stage", rename_all = "camelCase", rename_all_fields = "camelCase")]
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
pub(super) struct SyncPlan {
    pub plugin: String,
    pub user: String,
    pub settings: SyncSettings,
    pub contents: EntryContents,
    pub source: Option<String>,
    pub active: ActiveSettings,
}
