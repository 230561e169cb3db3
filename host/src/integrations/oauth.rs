//! Connecting a user's tracker account by OAuth (orchestration.md §6): a flow started for
//! a user and a plugin whose manifest has `oauth`, finished from its callback (the state
//! consumed once, the code exchanged with the PKCE verifier), the tokens sealed in the
//! vault for the connection; then kept fresh: before a user's instance starts and, in a
//! long-running host, before they expire, one refresh at a time per connection.

use codex_plugin_protocol::manifest::OAuthConfig;
use codex_plugin_protocol::types::sync::UserInfo;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

use super::oauth_store::{OAuthStore, PendingFlow};
use super::single_flight::SingleFlight;
use super::{IntegrationError, Integrations, now_micros};
use crate::host::{BeforeUserStart, PluginHost};
use crate::oauth::{
    ENDPOINT_TIMEOUT, FlowSecrets, MAX_PENDING_FLOWS, RefreshFailure, STATE_LIFETIME, TokenGrant, authorization_url,
    check_endpoint, classify_failure, needs_refresh, parse_grant,
};
use crate::registry::HOST_SECRET_PREFIX;
use crate::vault::Secret;
use codex_plugin_protocol::manifest::Manifest;
use futures::future::BoxFuture;
use std::sync::Weak;

/// The credential the plugin reads its access token from, as Codex delivers it.
pub const ACCESS_TOKEN: &str = "access_token";
/// The host's own: the refresh token, and the plugin's client secret (plugin-wide).
pub fn refresh_token_name() -> String {
    format!("{HOST_SECRET_PREFIX}refresh_token")
}
pub fn client_secret_name() -> String {
    format!("{HOST_SECRET_PREFIX}oauth_client_secret")
}

/// How long one host holds the right to refresh a connection's token.
const REFRESH_LEASE: Duration = Duration::from_secs(45);

/// A flow started: the URL to open, and until when its callback is taken.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthStart {
    pub authorization_url: String,
    pub state: String,
    pub redirect_uri: String,
    pub expires_at: i64,
}

/// A flow finished: whose connection, and the account it reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthConnected {
    pub plugin: String,
    pub user: String,
    pub account: Option<UserInfo>,
}

/// What a plugin's OAuth needs, from its manifest and admin configuration.
struct Client {
    oauth: OAuthConfig,
    client_id: String,
    token_url: Url,
    internal_allowed: bool,
}

impl Integrations {
    /// Starts a flow for `user` with `plugin` (connecting them if they are not), answering
    /// the URL they open. `redirect_uri`: where the provider sends them back (the command
    /// line's loopback listener); none: the plugin's configured `oauth_redirect_uri`.
    pub async fn start_oauth(
        &self,
        plugin: &str,
        user: &str,
        redirect_uri: Option<&str>,
    ) -> Result<OAuthStart, IntegrationError> {
        let registry = self.host.registry();
        let record = registry.get(plugin)?;
        if registry.user_connection(plugin, user).is_err() {
            registry.connect_user(plugin, user, serde_json::Map::new())?;
        }
        self.manifest(plugin, user).await?;
        let client = self.tokens.client(plugin)?;
        let redirect_uri = match redirect_uri {
            Some(uri) => uri.to_owned(),
            None => record
                .definition
                .admin_config
                .get("oauth_redirect_uri")
                .and_then(|uri| uri.as_str())
                .map(str::to_owned)
                .ok_or_else(|| {
                    IntegrationError::Invalid(format!(
                        "plugin `{plugin}` has no configured redirect URI (`oauth_redirect_uri` in its admin config)"
                    ))
                })?,
        };
        Url::parse(&redirect_uri)
            .map_err(|error| IntegrationError::Invalid(format!("redirect URI {redirect_uri:?}: {error}")))?;
        let endpoint = check_endpoint("authorization URL", &client.oauth.authorization_url, client.internal_allowed)
            .map_err(IntegrationError::Invalid)?;
        let secrets = FlowSecrets::new();
        let now = now_micros();
        let flow = PendingFlow {
            plugin: plugin.to_owned(),
            user: user.to_owned(),
            verifier: secrets.verifier.clone(),
            redirect_uri: redirect_uri.clone(),
            created_at: now,
            expires_at: now + STATE_LIFETIME.as_micros() as i64,
        };
        if !self.tokens.store.insert_flow(&secrets.state, &flow, MAX_PENDING_FLOWS)? {
            return Err(IntegrationError::Invalid(format!(
                "user `{user}` already has {MAX_PENDING_FLOWS} OAuth flows waiting for their callback; finish one, or wait {} minutes for them to expire",
                STATE_LIFETIME.as_secs() / 60
            )));
        }
        let url = authorization_url(
            &endpoint,
            &client.client_id,
            &redirect_uri,
            &client.oauth.scopes,
            &secrets,
            client.oauth.pkce,
        );
        Ok(OAuthStart {
            authorization_url: url.into(),
            state: secrets.state,
            redirect_uri,
            expires_at: flow.expires_at,
        })
    }

    /// Finishes a flow from its callback's parameters: the state is consumed (once, even
    /// under races) before anything else, then the code exchanged and the tokens sealed.
    pub async fn finish_oauth(
        &self,
        state: &str,
        code: Option<&str>,
        provider_error: Option<&str>,
    ) -> Result<OAuthConnected, IntegrationError> {
        let flow = self.tokens.store.consume(state)?.ok_or_else(|| {
            IntegrationError::Invalid(
                "this OAuth callback's state is unknown or was already used; start the flow again".into(),
            )
        })?;
        if now_micros() > flow.expires_at {
            return Err(IntegrationError::Invalid(format!(
                "this OAuth flow expired ({} minutes after it started); start it again",
                STATE_LIFETIME.as_secs() / 60
            )));
        }
        if let Some(error) = provider_error {
            return Err(IntegrationError::Invalid(format!("the provider refused the authorization: {error}")));
        }
        let code = code.filter(|code| !code.is_empty()).ok_or_else(|| {
            IntegrationError::Invalid("the OAuth callback carries no code; start the flow again".into())
        })?;
        let (plugin, user) = (flow.plugin.as_str(), flow.user.as_str());
        let client = self.tokens.client(plugin)?;
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("client_id", client.client_id.clone()),
            ("redirect_uri", flow.redirect_uri.clone()),
        ];
        if client.oauth.pkce {
            form.push(("code_verifier", flow.verifier.clone()));
        }
        let issued_at = now_micros();
        let grant = self.tokens.token_request(plugin, &client, form).await.map_err(|failure| {
            IntegrationError::Invalid(format!("the code could not be exchanged for tokens: {}", failure_text(&failure)))
        })?;
        self.tokens.store_grant(plugin, user, issued_at, &grant, None)?;
        // Its instance (started to read the manifest) restarts with the token.
        self.host.restart_user(plugin, user).await;
        let account = self.account(plugin, user).await?;
        Ok(OAuthConnected { plugin: plugin.to_owned(), user: user.to_owned(), account })
    }

    /// Makes sure `user`'s OAuth token for `plugin` is fresh (see [`TokenKeeper`]).
    pub async fn ensure_token(&self, plugin: &str, user: &str) -> Result<(), String> {
        self.tokens.ensure_token(plugin, user).await
    }

    /// Refreshes due tokens in the background (see [`TokenKeeper::spawn_token_refresher`]).
    pub fn spawn_token_refresher(&self, interval: Duration) -> TokenRefresher {
        self.tokens.spawn_token_refresher(interval)
    }
}

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
}

impl TokenKeeper {
    pub(super) fn new(host: &Arc<PluginHost>, store: Arc<OAuthStore>, holder: Arc<str>) -> Self {
        Self { host: Arc::downgrade(host), store, refreshing: Arc::default(), holder }
    }

    fn host(&self) -> Result<Arc<PluginHost>, String> {
        self.host.upgrade().ok_or_else(|| "the host is shutting down".to_owned())
    }

    /// What a plugin's OAuth needs, from its manifest (as its last start recorded it) and
    /// admin configuration.
    fn client(&self, plugin: &str) -> Result<Client, IntegrationError> {
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
        let token_url =
            check_endpoint("token URL", &oauth.token_url, internal_allowed).map_err(IntegrationError::Invalid)?;
        Ok(Client { oauth, client_id, token_url, internal_allowed })
    }

    /// POSTs a token request (with the client secret, when the vault holds one).
    async fn token_request(
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
        let answer = crate::outbound::post_form(&client.token_url, &pairs, client.internal_allowed, ENDPOINT_TIMEOUT)
            .await
            .map_err(RefreshFailure::Temporary)?;
        if !(200..300).contains(&answer.status) {
            return Err(classify_failure(answer.status, answer.retry_after.as_deref(), &answer.body));
        }
        parse_grant(&answer.body).map_err(RefreshFailure::Temporary)
    }

    /// Seals the tokens for the connection (a refresh token not sent is kept) and records
    /// their state; the connection's revision changes, so its instance restarts with them.
    fn store_grant(
        &self,
        plugin: &str,
        user: &str,
        issued_at: i64,
        grant: &TokenGrant,
        kept_refresh_token: Option<Secret>,
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
            (None, None) => {}
        }
        host.registry().set_credentials(vault, plugin, Some(user), &values)?;
        let expires_at = grant.expires_in.map(|seconds| issued_at + (seconds as i64).saturating_mul(1_000_000));
        self.store.tokens_granted(plugin, user, issued_at, expires_at, grant.scope.as_deref())
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
            .join_or_start(key.clone(), move || Ok(async move { this.refresh(&key.0, &key.1).await }))
            .map_err(|error| error.to_string())?;
        running.await.map(|_| ()).map_err(|why| why.to_string())
    }

    async fn refresh(&self, plugin: &str, user: &str) -> Result<(), String> {
        let text = |error: IntegrationError| error.to_string();
        let now = now_micros();
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
        let refreshed = self.refresh_claimed(plugin, user, now).await;
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
            let reason = "the provider gave no refresh token, and the access token expired".to_owned();
            self.store.needs_reconnect(plugin, user, &reason).map_err(text)?;
            return Err(reconnect_message(plugin, user, &reason));
        };
        let client = self.client(plugin).map_err(text)?;
        let form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.expose().to_owned()),
            ("client_id", client.client_id.clone()),
        ];
        let issued_at = now_micros();
        match self.token_request(plugin, &client, form).await {
            Ok(grant) => {
                self.store_grant(plugin, user, issued_at, &grant, Some(refresh_token)).map_err(text)?;
                tracing::info!(plugin, user, "OAuth token refreshed");
                Ok(())
            }
            Err(RefreshFailure::Reconnect(why)) => {
                self.store.needs_reconnect(plugin, user, &why).map_err(text)?;
                Err(reconnect_message(plugin, user, &why))
            }
            Err(RefreshFailure::RateLimited { retry_after, why }) => {
                let until = retry_after.map(|seconds| now_micros() + (seconds as i64).saturating_mul(1_000_000));
                self.store.refresh_failed(plugin, user, &state.breaker, until).map_err(text)?;
                if still_valid { Ok(()) } else { Err(format!("refreshing the token failed: {why}")) }
            }
            Err(RefreshFailure::Temporary(why)) => {
                state.breaker.record_failure(now_micros());
                self.store.refresh_failed(plugin, user, &state.breaker, None).map_err(text)?;
                if still_valid { Ok(()) } else { Err(format!("refreshing the token failed: {why}")) }
            }
        }
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

fn failure_text(failure: &RefreshFailure) -> String {
    match failure {
        RefreshFailure::Reconnect(why) | RefreshFailure::Temporary(why) => why.clone(),
        RefreshFailure::RateLimited { why, .. } => why.clone(),
    }
}

fn reconnect_message(plugin: &str, user: &str, why: &str) -> String {
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
            });
            keeper.ensure_token(plugin, user).await
        })
    }
}
