//! Keeping users' OAuth tokens fresh (orchestration.md §6): before a user's instance
//! starts (the host asks, through [`BeforeUserStart`]) and, in a long-running host, before
//! they expire; one refresh at a time per connection, across hosts.

use codex_plugin_protocol::manifest::Manifest;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::oauth::{ACCESS_TOKEN, Client, client_secret_name, refresh_token_name};
use super::oauth_store::OAuthStore;
use super::single_flight::SingleFlight;
use super::{IntegrationError, now_micros};
use crate::host::{BeforeUserStart, PluginHost};
use crate::oauth::{
    ENDPOINT_TIMEOUT, RefreshFailure, TokenGrant, check_endpoint, classify_failure, needs_refresh, parse_grant,
};
use crate::vault::Secret;

/// How long one host holds the right to refresh a connection's token.
const REFRESH_LEASE: Duration = Duration::from_secs(45);
/// Longer lifetimes and waits a provider names are taken as this (a year, a day).
const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);
/// After a failed refresh, the next waits this, doubled at each failure in a row (up to
/// [`MAX_BACKOFF`]); a 429 that names no wait waits [`DEFAULT_RATE_WAIT`].
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
const DEFAULT_RATE_WAIT: Duration = Duration::from_secs(60);

/// Keeps users' OAuth tokens fresh: what the host asks before a user's instance starts,
/// and what a long-running host's refresher runs. Holds the host weakly (the host holds
/// it, as its [`BeforeUserStart`](crate::host::BeforeUserStart) hook).
pub struct TokenKeeper {
    host: Weak<PluginHost>,
    store: Arc<OAuthStore>,
    /// One refresh per connection at a time in this host.
    refreshing: Arc<SingleFlight<()>>,
    /// Who this host is, in the refresh leases it takes.
    holder: Arc<str>,
    /// How long a token endpoint may take (milliseconds).
    endpoint_timeout: Arc<AtomicU64>,
}

impl TokenKeeper {
    pub(super) fn new(host: &Arc<PluginHost>, store: Arc<OAuthStore>, holder: Arc<str>) -> Self {
        let endpoint_timeout = Arc::new(AtomicU64::new(ENDPOINT_TIMEOUT.as_millis() as u64));
        Self { host: Arc::downgrade(host), store, refreshing: Arc::default(), holder, endpoint_timeout }
    }

    /// Bounds every call to a token endpoint ([`ENDPOINT_TIMEOUT`] by default).
    pub fn set_endpoint_timeout(&self, timeout: Duration) {
        self.endpoint_timeout.store(timeout.as_millis() as u64, Ordering::Relaxed);
    }

    pub(super) fn store(&self) -> &OAuthStore {
        &self.store
    }

    fn host(&self) -> Result<Arc<PluginHost>, String> {
        self.host.upgrade().ok_or_else(|| "the host is shutting down".to_owned())
    }

    /// What a plugin's OAuth needs, from its manifest (as its last start recorded it) and
    /// admin configuration.
    /// `pinned`: the connection's token URL, used instead of the manifest's.
    pub(super) fn client(&self, plugin: &str, pinned: Option<&str>) -> Result<Client, IntegrationError> {
        let host = self.host().map_err(IntegrationError::Store)?;
        let record = host.registry().get(plugin)?;
        let manifest: Option<Manifest> = record.manifest.and_then(|manifest| serde_json::from_value(manifest).ok());
        let oauth = manifest.and_then(|manifest| manifest.oauth).ok_or_else(|| IntegrationError::NotCapable {
            plugin: plugin.to_owned(),
            what: "connect by OAuth",
            capability: "oauth` (an `oauth` block in the manifest",
        })?;
        let admin = &record.definition.admin_config;
        let client_id = admin
            .get("oauth_client_id")
            .and_then(|id| id.as_str())
            .or_else(|| oauth.other.get("clientId").and_then(|id| id.as_str()))
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                IntegrationError::Invalid(format!(
                    "plugin `{plugin}` has no OAuth client id: its manifest names none, so the admin sets one with `plugin config {plugin} --admin '{{\"oauth_client_id\": \"…\"}}'`"
                ))
            })?
            .to_owned();
        let internal_allowed = record.definition.allow_internal_addresses;
        let token_url = check_endpoint("token URL", pinned.unwrap_or(&oauth.token_url), internal_allowed)
            .map_err(IntegrationError::Invalid)?;
        Ok(Client { oauth, client_id, token_url, internal_allowed })
    }

    /// POSTs a token request (with the client secret, when the vault holds one).
    pub(super) async fn token_request(
        &self,
        plugin: &str,
        client: &Client,
        mut form: Vec<(&str, String)>,
    ) -> Result<TokenGrant, RefreshFailure> {
        let host = self.host().map_err(RefreshFailure::Temporary)?;
        let vault = host.vault().map_err(|error| RefreshFailure::Temporary(error.to_string()))?;
        let secret = host
            .registry()
            .host_secret(vault, plugin, None, &client_secret_name())
            .map_err(|error| RefreshFailure::Temporary(error.to_string()))?;
        if let Some(secret) = &secret {
            form.push(("client_secret", secret.expose().to_owned()));
        }
        let pairs: Vec<(&str, &str)> = form.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let deadline = Duration::from_millis(self.endpoint_timeout.load(Ordering::Relaxed));
        let answer = crate::outbound::post_form(&client.token_url, &pairs, client.internal_allowed, deadline)
            .await
            .map_err(RefreshFailure::Temporary)?;
        if !(200..300).contains(&answer.status) {
            return Err(classify_failure(answer.status, answer.retry_after.as_deref(), &answer.body));
        }
        parse_grant(&answer.body).map_err(RefreshFailure::Temporary)
    }

    /// Seals the tokens for the connection (a refresh token not sent is kept) and records
    /// their state; the connection's revision changes, so its instance restarts with them.
    pub(super) fn store_grant(
        &self,
        plugin: &str,
        user: &str,
        issued_at: i64,
        grant: &TokenGrant,
        kept_refresh_token: Option<Secret>,
        token_url: &str,
    ) -> Result<(), IntegrationError> {
        let host = self.host().map_err(IntegrationError::Store)?;
        let vault = host.vault().map_err(|error| IntegrationError::Store(error.to_string()))?;
        let mut values = BTreeMap::from([(ACCESS_TOKEN.to_owned(), Secret::new(grant.access_token.clone()))]);
        match (&grant.refresh_token, kept_refresh_token) {
            (Some(new), _) => {
                values.insert(refresh_token_name(), Secret::new(new.clone()));
            }
            (None, Some(kept)) => {
                values.insert(refresh_token_name(), kept);
            }
            // A new grant without a refresh token: the old grant's must not outlive it.
            (None, None) => host.registry().remove_credentials(plugin, Some(user), &[&refresh_token_name()])?,
        }
        host.registry().set_credentials(vault, plugin, Some(user), &values)?;
        let lifetime = grant.expires_in.map(|seconds| seconds.min(MAX_LIFETIME.as_secs()) as i64 * 1_000_000);
        let expires_at = lifetime.map(|lifetime| issued_at.saturating_add(lifetime));
        self.store.tokens_granted(plugin, user, issued_at, expires_at, token_url, grant.scope.as_deref())
    }

    /// Makes sure `user`'s token for `plugin` is usable: refreshed if it expires soon. A
    /// connection without OAuth is fine as it is. Fails, with what to do, when the user
    /// must connect again or the provider cannot be reached.
    pub async fn ensure_token(self: &Arc<Self>, plugin: &str, user: &str) -> Result<(), String> {
        let state = self.store.token_state(plugin, user).map_err(|error| error.to_string())?;
        let Some(state) = state else { return Ok(()) };
        if let Some(reason) = state.reconnect_reason {
            return Err(reconnect_message(plugin, user, &reason));
        }
        if !needs_refresh(state.issued_at, state.expires_at, now_micros()) {
            return Ok(());
        }
        let key = (plugin.to_owned(), user.to_owned());
        let this = self.clone();
        let running = self
            .refreshing
            .join_or_start(key.clone(), move || {
                Ok::<_, IntegrationError>(async move { this.refresh(&key.0, &key.1).await })
            })
            .map_err(|error| error.to_string())?;
        running.await.map(|_| ()).map_err(|why| why.to_string())
    }

    async fn refresh(&self, plugin: &str, user: &str) -> Result<(), String> {
        let text = |error: IntegrationError| error.to_string();
        // One refresh at a time across hosts: wait for another's to end, then look again.
        let mut waited = Duration::ZERO;
        loop {
            let until = now_micros() + REFRESH_LEASE.as_micros() as i64;
            if self.store.claim_refresh(plugin, user, &self.holder, now_micros(), until).map_err(text)? {
                break;
            }
            if waited >= REFRESH_LEASE {
                return Err(format!(
                    "another host has been refreshing the token of `{user}` for `{plugin}` for {} s; try again",
                    waited.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += Duration::from_millis(100);
        }
        let refreshed = self.refresh_claimed(plugin, user, now_micros()).await;
        if let Err(error) = self.store.release_refresh(plugin, user, &self.holder) {
            tracing::warn!(plugin, user, "could not release the refresh lease: {error}");
        }
        refreshed
    }

    async fn refresh_claimed(&self, plugin: &str, user: &str, now: i64) -> Result<(), String> {
        let text = |error: IntegrationError| error.to_string();
        let Some(mut state) = self.store.token_state(plugin, user).map_err(text)? else { return Ok(()) };
        if let Some(reason) = &state.reconnect_reason {
            return Err(reconnect_message(plugin, user, reason));
        }
        // Another host refreshed it meanwhile.
        if !needs_refresh(state.issued_at, state.expires_at, now_micros()) {
            return Ok(());
        }
        let still_valid = state.expires_at.is_some_and(|expires_at| now < expires_at);
        if let Some(closes) = state.breaker.closes_at(now) {
            let why = format!(
                "refreshing the token of `{user}` for `{plugin}` failed 3 times within an hour; it is tried again after {}",
                crate::sync::rfc3339(closes).unwrap_or_default()
            );
            return if still_valid { Ok(()) } else { Err(why) };
        }
        if let Some(retry_after) = state.retry_after.filter(|at| *at > now) {
            let why =
                format!("the provider asked to wait until {}", crate::sync::rfc3339(retry_after).unwrap_or_default());
            return if still_valid { Ok(()) } else { Err(why) };
        }
        let host = self.host()?;
        let vault = host.vault().map_err(|error| error.to_string())?;
        let registry = host.registry();
        let refresh_token = registry
            .host_secret(vault, plugin, Some(user), &refresh_token_name())
            .map_err(|error| error.to_string())?;
        let Some(refresh_token) = refresh_token else {
            if still_valid {
                return Ok(());
            }
            let reason = "the provider gave no refresh token, and the access token expired".to_owned();
            self.reconnect_needed(plugin, user, state.issued_at, &reason)?;
            return Err(reconnect_message(plugin, user, &reason));
        };
        // The connection's pinned token URL, never one the plugin names later.
        let client = self.client(plugin, Some(&state.token_url)).map_err(text)?;
        let form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.expose().to_owned()),
            ("client_id", client.client_id.clone()),
        ];
        let issued_at = now_micros();
        let answer = self.token_request(plugin, &client, form).await;
        // A reconnect while this ran made a newer grant: this one's outcome is moot.
        let current = self.store.token_state(plugin, user).map_err(text)?;
        if current.as_ref().is_none_or(|current| current.issued_at != state.issued_at) {
            return Ok(());
        }
        match answer {
            Ok(grant) => {
                self.store_grant(plugin, user, issued_at, &grant, Some(refresh_token), &state.token_url)
                    .map_err(text)?;
                tracing::info!(plugin, user, "OAuth token refreshed");
                Ok(())
            }
            Err(RefreshFailure::Reconnect(why)) => {
                self.reconnect_needed(plugin, user, state.issued_at, &why)?;
                Err(reconnect_message(plugin, user, &why))
            }
            Err(RefreshFailure::RateLimited { retry_after, why }) => {
                let wait = retry_after.map_or(DEFAULT_RATE_WAIT, |seconds| Duration::from_secs(seconds).min(MAX_WAIT));
                let until = now_micros().saturating_add(wait.as_micros() as i64);
                self.store.refresh_failed(plugin, user, &state.breaker, Some(until)).map_err(text)?;
                if still_valid { Ok(()) } else { Err(format!("refreshing the token failed: {why}")) }
            }
            Err(RefreshFailure::Temporary(why)) => {
                state.breaker.record_failure(now_micros());
                let in_a_row = state.breaker.failures.len().saturating_sub(1).min(10) as u32;
                let wait = (FIRST_BACKOFF * 2u32.pow(in_a_row)).min(MAX_BACKOFF);
                let until = now_micros().saturating_add(wait.as_micros() as i64);
                self.store.refresh_failed(plugin, user, &state.breaker, Some(until)).map_err(text)?;
                if still_valid { Ok(()) } else { Err(format!("refreshing the token failed: {why}")) }
            }
        }
    }

    /// Records that the grant issued at `issued_at` is gone, and restarts the user's
    /// instance (its connection's revision changes), so its calls fail with the reason.
    fn reconnect_needed(&self, plugin: &str, user: &str, issued_at: i64, reason: &str) -> Result<(), String> {
        if self.store.needs_reconnect(plugin, user, issued_at, reason).map_err(|error| error.to_string())? {
            let host = self.host()?;
            host.registry().touch_connection(plugin, user).map_err(|error| error.to_string())?;
        }
        Ok(())
    }

    /// Refreshes, every `interval`, the tokens that expire within the margin, so a running
    /// plugin's next call sees the new one (its instance restarts with it). A long-running
    /// host (a server) runs it; dropping the handle stops it.
    pub fn spawn_token_refresher(self: &Arc<Self>, interval: Duration) -> TokenRefresher {
        let this = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let horizon = now_micros() + crate::oauth::REFRESH_MARGIN.as_micros() as i64;
                match this.store.expiring(horizon) {
                    Ok(due) => {
                        for (plugin, user) in due {
                            let issued = |this: &Self| {
                                this.store.token_state(&plugin, &user).ok().flatten().map(|state| state.issued_at)
                            };
                            let before = issued(&this);
                            if let Err(error) = this.ensure_token(&plugin, &user).await {
                                tracing::warn!(plugin, user, "{error}");
                            }
                            // Refreshed: the running instance restarts with the new token.
                            if issued(&this) != before
                                && let Ok(host) = this.host()
                            {
                                host.restart_user(&plugin, &user).await;
                            }
                        }
                    }
                    Err(error) => tracing::warn!("could not list expiring tokens: {error}"),
                }
                tokio::time::sleep(interval).await;
            }
        });
        TokenRefresher(task)
    }
}

/// The background refresher; stops when dropped.
pub struct TokenRefresher(tokio::task::JoinHandle<()>);

impl Drop for TokenRefresher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) fn failure_text(failure: &RefreshFailure) -> String {
    match failure {
        RefreshFailure::Reconnect(why) | RefreshFailure::Temporary(why) => why.clone(),
        RefreshFailure::RateLimited { why, .. } => why.clone(),
    }
}

pub(super) fn reconnect_message(plugin: &str, user: &str, why: &str) -> String {
    format!(
        "the OAuth connection of `{user}` to `{plugin}` must be made again ({why}); run `plugin connect {plugin} --user {user} --oauth`"
    )
}

impl BeforeUserStart for TokenKeeper {
    fn before_user_start<'a>(&'a self, plugin: &'a str, user: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            // The hook is held by the host as `Arc<dyn …>`: a keeper of its own for the call.
            let keeper = Arc::new(TokenKeeper {
                host: self.host.clone(),
                store: self.store.clone(),
                refreshing: self.refreshing.clone(),
                holder: self.holder.clone(),
                endpoint_timeout: self.endpoint_timeout.clone(),
            });
            keeper.ensure_token(plugin, user).await
        })
    }
}
