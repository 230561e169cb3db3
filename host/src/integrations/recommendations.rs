//! A user's recommendations (orchestration.md §8): each recommendation plugin they are
//! connected to is asked with seeds from their library, its answer cached; a read answers
//! from the caches at once and refreshes a stale one in the background, one refresh per
//! connection at a time; the answers merge into one list without what the user dismissed
//! or already has.

use codex_plugin_protocol::manifest::Manifest;
use codex_plugin_protocol::types::recommendations::{DismissReason, GetParams, GetResponse, Recommendation};
use serde::Serialize;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{IntegrationError, Integrations, now_micros};
use crate::library::{LibraryPort, SeriesReading};
use crate::recommendations::{Merged, RecommendationSettings, exclude_ids, library_entry, max_age_hours, merge, seeds};
use crate::sync::{EntryContents, MetadataPolicy, rfc3339};

/// Series read from the library per page when the whole library is listed.
const PAGE: usize = 1_000;

/// One plugin's part of a list: how fresh, and whether a refresh runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecommendationSource {
    pub plugin: String,
    /// When its answer was made; none if it never answered.
    pub generated_at: Option<String>,
    /// Older than the plugin's cache age (or missing).
    pub stale: bool,
    /// A refresh runs now (the next read has its answer).
    pub refreshing: bool,
    /// Why a refresh asked for now failed (the cached answer is shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A user's recommendations from every plugin, merged, best first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecommendationList {
    pub recommendations: Vec<Merged>,
    pub sources: Vec<RecommendationSource>,
}

/// What a dismissal did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DismissReport {
    pub external_id: String,
    /// The plugins whose cached answer held it (it is gone from them).
    pub recommended_by: Vec<String>,
    /// The plugins told (`recommendations/dismiss`), and those that could not be.
    pub told: Vec<String>,
    pub errors: Vec<String>,
}

impl Integrations {
    /// The recommendation plugins `user` is connected to (enabled ones), with manifests.
    async fn recommenders(&self, user: &str) -> Result<Vec<(String, Manifest)>, IntegrationError> {
        let registry = self.host.registry();
        let mut found = Vec::new();
        for record in registry.list()? {
            let plugin = record.id.as_str().to_owned();
            if !record.enabled || registry.user_connection(&plugin, user).is_err() {
                continue;
            }
            let recorded = record.manifest.and_then(|manifest| serde_json::from_value::<Manifest>(manifest).ok());
            let manifest = match recorded {
                Some(manifest) => manifest,
                None => match self.manifest(&plugin, user).await {
                    Ok(manifest) => manifest,
                    Err(error) => {
                        tracing::warn!(plugin, "left out of recommendations, it did not start: {error}");
                        continue;
                    }
                },
            };
            if manifest.capabilities.user_recommendation_provider {
                found.push((plugin, manifest));
            }
        }
        if found.is_empty() {
            return Err(IntegrationError::NoRecommenders(user.to_owned()));
        }
        Ok(found)
    }

    /// `user`'s recommendations: from the caches at once, stale ones refreshed in the
    /// background; with `refresh`, every plugin asked again first.
    pub async fn recommendations(&self, user: &str, refresh: bool) -> Result<RecommendationList, IntegrationError> {
        let now = now_micros();
        let mut sources = Vec::new();
        let mut answers: Vec<(String, Recommendation)> = Vec::new();
        for (plugin, manifest) in self.recommenders(user).await? {
            let admin = self.host.registry().get(&plugin)?.definition.admin_config;
            let max_age = max_age_hours(&admin).saturating_mul(3_600_000_000);
            let mut error = None;
            if refresh && let Err(failed) = self.refresh_recommendations(&plugin, user).await {
                error = Some(failed.to_string());
            }
            let cached = self.recommendation_store.cached(&plugin, user)?;
            let stale = cached.as_ref().is_none_or(|(at, _)| now.saturating_sub(*at) >= max_age);
            if stale && !refresh {
                let key = (plugin.clone(), user.to_owned());
                if !self.recommending.is_running(&key) {
                    // Not awaited: it ends on its own task, and the next read has it.
                    let _ = self.start_refresh(&plugin, user, manifest.clone());
                }
            }
            let key = (plugin.clone(), user.to_owned());
            sources.push(RecommendationSource {
                plugin: plugin.clone(),
                generated_at: cached.as_ref().and_then(|(at, _)| rfc3339(*at)),
                stale,
                refreshing: self.recommending.is_running(&key),
                error,
            });
            if let Some((_, answer)) = cached {
                let owned = self.owned(&manifest, &answer.recommendations).await?;
                let kept = answer.recommendations.into_iter().filter(|item| !owned.contains(&item.external_id));
                answers.extend(kept.map(|item| (plugin.clone(), item)));
            }
        }
        let dismissed = self.recommendation_store.dismissed(user)?;
        Ok(RecommendationList { recommendations: merge(answers, &dismissed), sources })
    }

    /// Ids of `recommendations` naming a series already in the library (under the plugin's
    /// source).
    async fn owned(
        &self,
        manifest: &Manifest,
        recommendations: &[Recommendation],
    ) -> Result<HashSet<String>, IntegrationError> {
        let Some(source) = manifest.capabilities.external_id_source.clone() else { return Ok(HashSet::new()) };
        let ids: Vec<String> = recommendations.iter().map(|item| item.external_id.clone()).collect();
        let library = self.library.clone();
        let found = tokio::task::spawn_blocking(move || library.series_by_external_ids(&source, &ids))
            .await
            .map_err(|error| IntegrationError::Store(format!("a library read stopped: {error}")))??;
        Ok(found.into_keys().collect())
    }

    /// Asks `plugin` for `user`'s recommendations now and caches the answer; a refresh
    /// already running for them is joined.
    pub async fn refresh_recommendations(
        &self,
        plugin: &str,
        user: &str,
    ) -> Result<Arc<GetResponse>, IntegrationError> {
        self.host.registry().user_connection(plugin, user)?;
        let manifest = self.manifest(plugin, user).await?;
        if !manifest.capabilities.user_recommendation_provider {
            return Err(IntegrationError::NotCapable {
                plugin: plugin.to_owned(),
                what: "recommend series",
                capability: "userRecommendationProvider",
            });
        }
        let running = self.start_refresh(plugin, user, manifest)?;
        running.await.map_err(|why| IntegrationError::Joined(why.to_string()))
    }

    fn start_refresh(
        &self,
        plugin: &str,
        user: &str,
        manifest: Manifest,
    ) -> Result<super::single_flight::Running<GetResponse>, IntegrationError> {
        let key = (plugin.to_owned(), user.to_owned());
        let this = self.clone();
        self.recommending.join_or_start(key.clone(), move || {
            Ok::<_, IntegrationError>(async move { this.refresh(&key.0, &key.1, &manifest).await })
        })
    }

    /// Every background refresh running now, ended (a command waits for them).
    pub async fn refreshes_ended(&self) {
        futures::future::join_all(self.recommending.all()).await;
    }

    async fn refresh(&self, plugin: &str, user: &str, manifest: &Manifest) -> Result<GetResponse, String> {
        let registry = self.host.registry();
        let text = |error: &dyn std::fmt::Display| error.to_string();
        let connection = registry.user_connection(plugin, user).map_err(|error| text(&error))?;
        let record = registry.get(plugin).map_err(|error| text(&error))?;
        let active = registry
            .metadata_settings(plugin)
            .map_err(|error| text(&error))?
            .compile()
            .map_err(|why| format!("plugin `{plugin}`'s settings are not usable: {why}"))?;
        let settings = RecommendationSettings::from_user_config(&connection.config);
        let contents = EntryContents::new(
            &manifest.capabilities,
            MetadataPolicy::from_admin_config(&record.definition.admin_config),
        );
        let session = self.host.session(plugin, Some(user));
        // As the reference: the plugin forgets what it cached; errors (an optional method)
        // do not matter.
        if let Err(error) = session.call("recommendations/clear", json!({}), None).await {
            tracing::debug!(plugin, "recommendations/clear: {error}");
        }
        // A plugin that may not read the library is sent none of it.
        let readings = if active.grants.may_read_library() {
            let (library, user) = (self.library.clone(), user.to_owned());
            let scope = move |id: &str| active.sees_library(id);
            tokio::task::spawn_blocking(move || whole_library(library.as_ref(), &user, scope))
                .await
                .map_err(|error| format!("a library read stopped: {error}"))?
                .map_err(|error| error.to_string())?
        } else {
            Vec::new()
        };
        let library: Vec<_> = readings.iter().map(library_entry).collect();
        let by_id: HashMap<String, SeriesReading> =
            readings.into_iter().map(|reading| (reading.series.id.clone(), reading)).collect();
        let exclude = manifest.capabilities.external_id_source.as_deref().map(|source| exclude_ids(&library, source));
        let params = GetParams {
            library: seeds(&library, &settings, contents, &by_id),
            limit: Some(settings.max_recommendations),
            exclude_ids: exclude.unwrap_or_default(),
        };
        let value = session.call("recommendations/get", json!(params), None).await.map_err(|error| text(&error))?;
        let answer: GetResponse = serde_json::from_value(value)
            .map_err(|error| format!("plugin `{plugin}` answered recommendations/get with something else: {error}"))?;
        self.recommendation_store.store(plugin, user, now_micros(), &answer).map_err(|error| text(&error))?;
        Ok(answer)
    }

    /// Dismisses `external_id` for `user`: gone from every cached answer at once, never
    /// shown again, and each plugin that recommended it told.
    pub async fn dismiss(
        &self,
        user: &str,
        external_id: &str,
        reason: Option<DismissReason>,
    ) -> Result<DismissReport, IntegrationError> {
        if external_id.trim().is_empty() {
            return Err(IntegrationError::Invalid("the external id to dismiss is empty".into()));
        }
        let recommenders = self.recommenders(user).await?;
        let reason_text = reason.as_ref().map(|reason| reason.as_str().to_owned());
        let recommended_by =
            self.recommendation_store.dismiss(user, external_id, reason_text.as_deref(), now_micros())?;
        let mut report = DismissReport {
            external_id: external_id.to_owned(),
            recommended_by: recommended_by.clone(),
            told: Vec::new(),
            errors: Vec::new(),
        };
        let params = json!({"externalId": external_id, "reason": reason});
        for (plugin, _) in recommenders.iter().filter(|(plugin, _)| recommended_by.contains(plugin)) {
            match self.host.call(plugin, Some(user), "recommendations/dismiss", params.clone()).await {
                Ok(_) => report.told.push(plugin.clone()),
                Err(error) => report.errors.push(format!("{plugin}: {error}")),
            }
        }
        Ok(report)
    }
}

/// Every series of the libraries `scope` allows, with `user`'s reading.
fn whole_library(
    library: &dyn LibraryPort,
    user: &str,
    scope: impl Fn(&str) -> bool,
) -> Result<Vec<SeriesReading>, crate::library::LibraryError> {
    let mut ids = Vec::new();
    for shelf in library.libraries()?.into_iter().filter(|shelf| scope(&shelf.id)) {
        let mut after: Option<String> = None;
        loop {
            let page = library.series_page(&shelf.id, after.as_deref(), PAGE)?;
            ids.extend(page.ids);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    library.readings(user, &ids)
}
