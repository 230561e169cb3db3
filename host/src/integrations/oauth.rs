//! Connecting a user's tracker account by OAuth (orchestration.md §6): a flow started for
//! a user and a plugin whose manifest has `oauth`, finished from its callback (the state
//! consumed once, the code exchanged with the PKCE verifier), the tokens sealed in the
//! vault for the connection (kept fresh by [`super::TokenKeeper`]).

use codex_plugin_protocol::manifest::OAuthConfig;
use codex_plugin_protocol::types::sync::UserInfo;
use serde::Serialize;
use std::time::Duration;
use url::Url;

use super::oauth_store::PendingFlow;
use super::tokens::TokenRefresher;
use super::{IntegrationError, Integrations, now_micros};
use crate::oauth::{FlowSecrets, MAX_PENDING_FLOWS, STATE_LIFETIME, authorization_url, check_endpoint};
use crate::registry::HOST_SECRET_PREFIX;

/// The credential the plugin reads its access token from, as Codex delivers it.
pub const ACCESS_TOKEN: &str = "access_token";
/// The host's own: the refresh token, and the plugin's client secret (plugin-wide).
pub fn refresh_token_name() -> String {
    format!("{HOST_SECRET_PREFIX}refresh_token")
}
pub fn client_secret_name() -> String {
    format!("{HOST_SECRET_PREFIX}oauth_client_secret")
}

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
pub(super) struct Client {
    pub oauth: OAuthConfig,
    pub client_id: String,
    pub token_url: Url,
    pub internal_allowed: bool,
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
        let client = self.tokens.client(plugin, None)?;
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
            token_url: client.token_url.to_string(),
            created_at: now,
            expires_at: now + STATE_LIFETIME.as_micros() as i64,
        };
        if !self.tokens.store().insert_flow(&secrets.state, &flow, MAX_PENDING_FLOWS)? {
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
        let flow = self.tokens.store().consume(state)?.ok_or_else(|| {
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
        let client = self.tokens.client(plugin, Some(&flow.token_url))?;
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
            IntegrationError::Invalid(format!(
                "the code could not be exchanged for tokens: {}",
                super::tokens::failure_text(&failure)
            ))
        })?;
        self.tokens.store_grant(plugin, user, issued_at, &grant, None, &flow.token_url)?;
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
