//! OAuth in the host's database: flows waiting for their callback, and each connection's
//! token state (expiry, reconnect needed, the refresh breaker, who refreshes it now).

use rusqlite::{OptionalExtension, params};
use std::path::Path;

use super::IntegrationError;
use super::records::{Records, failed};
use crate::oauth::Breaker;

pub struct OAuthStore {
    records: Records,
}

/// A flow waiting for its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFlow {
    pub plugin: String,
    pub user: String,
    pub verifier: String,
    pub redirect_uri: String,
    /// The token URL when the flow started (pinned for the connection).
    pub token_url: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A connection's token state (the tokens are sealed in the credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenState {
    pub issued_at: i64,
    pub expires_at: Option<i64>,
    /// Where its refresh token goes: pinned when the user connected.
    pub token_url: String,
    pub scope: Option<String>,
    /// Set when the grant is gone: calls for the user fail with it until they reconnect.
    pub reconnect_reason: Option<String>,
    pub breaker: Breaker,
    /// The provider asked not to be called before this (microseconds).
    pub retry_after: Option<i64>,
}

impl OAuthStore {
    pub fn open(path: &Path) -> Result<Self, IntegrationError> {
        Ok(Self { records: Records::open(path)? })
    }

    /// Records a flow, unless the user already has `max` flows pending (answers false).
    pub fn insert_flow(&self, state: &str, flow: &PendingFlow, max: usize) -> Result<bool, IntegrationError> {
        let mut connection = self.records.lock();
        let transaction =
            connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(failed)?;
        transaction.execute("DELETE FROM oauth_flows WHERE expires_at <= ?", [flow.created_at]).map_err(failed)?;
        let pending: i64 = transaction
            .query_row("SELECT COUNT(*) FROM oauth_flows WHERE user_id = ?", [&flow.user], |row| row.get(0))
            .map_err(failed)?;
        if pending as usize >= max {
            return Ok(false);
        }
        transaction
            .execute(
                "INSERT INTO oauth_flows (state, plugin_id, user_id, verifier, redirect_uri, token_url, created_at, expires_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    state,
                    flow.plugin,
                    flow.user,
                    flow.verifier,
                    flow.redirect_uri,
                    flow.token_url,
                    flow.created_at,
                    flow.expires_at
                ],
            )
            .map_err(failed)?;
        transaction.commit().map_err(failed)?;
        Ok(true)
    }

    /// Takes the flow of `state` out, once: a second callback with it finds nothing.
    pub fn consume(&self, state: &str) -> Result<Option<PendingFlow>, IntegrationError> {
        self.records
            .lock()
            .query_row(
                "DELETE FROM oauth_flows WHERE state = ?
                 RETURNING plugin_id, user_id, verifier, redirect_uri, token_url, created_at, expires_at",
                [state],
                |row| {
                    Ok(PendingFlow {
                        plugin: row.get(0)?,
                        user: row.get(1)?,
                        verifier: row.get(2)?,
                        redirect_uri: row.get(3)?,
                        token_url: row.get(4)?,
                        created_at: row.get(5)?,
                        expires_at: row.get(6)?,
                    })
                },
            )
            .optional()
            .map_err(failed)
    }

    pub fn token_state(&self, plugin: &str, user: &str) -> Result<Option<TokenState>, IntegrationError> {
        let row = self
            .records
            .lock()
            .query_row(
                "SELECT issued_at, expires_at, scope, reconnect_reason, failures, retry_after, token_url
                 FROM oauth_tokens WHERE plugin_id = ? AND user_id = ?",
                [plugin, user],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, Option<i64>>(1)?,
                        row.get::<_, Option<String>>(2)?,
                        row.get::<_, Option<String>>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, Option<i64>>(5)?,
                        row.get::<_, String>(6)?,
                    ))
                },
            )
            .optional()
            .map_err(failed)?;
        let Some((issued_at, expires_at, scope, reconnect_reason, failures, retry_after, token_url)) = row else {
            return Ok(None);
        };
        let failures = serde_json::from_str(&failures).unwrap_or_default();
        Ok(Some(TokenState {
            issued_at,
            expires_at,
            token_url,
            scope,
            reconnect_reason,
            breaker: Breaker { failures },
            retry_after,
        }))
    }

    /// New tokens: the state starts over (no reconnect needed, no failures).
    pub fn tokens_granted(
        &self,
        plugin: &str,
        user: &str,
        issued_at: i64,
        expires_at: Option<i64>,
        token_url: &str,
        scope: Option<&str>,
    ) -> Result<(), IntegrationError> {
        self.records.lock()
            .execute(
                "INSERT INTO oauth_tokens (plugin_id, user_id, issued_at, expires_at, token_url, scope)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (plugin_id, user_id) DO UPDATE SET issued_at = ?3, expires_at = ?4, token_url = ?5,
                     scope = COALESCE(?6, oauth_tokens.scope), reconnect_reason = NULL, failures = '[]', retry_after = NULL",
                params![plugin, user, issued_at, expires_at, token_url, scope],
            )
            .map_err(failed)?;
        Ok(())
    }

    /// Marks the grant issued at `issued_at` as gone (a newer one, from a reconnect, is
    /// left alone); answers whether it was still the connection's.
    pub fn needs_reconnect(
        &self,
        plugin: &str,
        user: &str,
        issued_at: i64,
        reason: &str,
    ) -> Result<bool, IntegrationError> {
        let marked = self
            .records
            .lock()
            .execute(
                "UPDATE oauth_tokens SET reconnect_reason = ? WHERE plugin_id = ? AND user_id = ? AND issued_at = ?",
                params![reason, plugin, user, issued_at],
            )
            .map_err(failed)?;
        Ok(marked == 1)
    }

    pub fn refresh_failed(
        &self,
        plugin: &str,
        user: &str,
        breaker: &Breaker,
        retry_after: Option<i64>,
    ) -> Result<(), IntegrationError> {
        let failures = serde_json::to_string(&breaker.failures).map_err(failed)?;
        self.records
            .lock()
            .execute(
                "UPDATE oauth_tokens SET failures = ?, retry_after = ? WHERE plugin_id = ? AND user_id = ?",
                params![failures, retry_after, plugin, user],
            )
            .map_err(failed)?;
        Ok(())
    }

    /// Takes the right to refresh the connection's token until `until`: one refresh at a
    /// time across every host on the database (a rotating refresh token used twice would
    /// end the grant).
    pub fn claim_refresh(
        &self,
        plugin: &str,
        user: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, IntegrationError> {
        let claimed = self
            .records
            .lock()
            .execute(
                "UPDATE oauth_tokens SET refresher = ?1, refreshing_until = ?2
                 WHERE plugin_id = ?3 AND user_id = ?4 AND (refresher IS NULL OR refreshing_until < ?5 OR refresher = ?1)",
                params![holder, until, plugin, user, now],
            )
            .map_err(failed)?;
        Ok(claimed == 1)
    }

    pub fn release_refresh(&self, plugin: &str, user: &str, holder: &str) -> Result<(), IntegrationError> {
        self.records
            .lock()
            .execute(
                "UPDATE oauth_tokens SET refresher = NULL, refreshing_until = NULL
                 WHERE plugin_id = ? AND user_id = ? AND refresher = ?",
                params![plugin, user, holder],
            )
            .map_err(failed)?;
        Ok(())
    }

    /// Connections whose token expires before `horizon` and may be refreshed.
    pub fn expiring(&self, horizon: i64) -> Result<Vec<(String, String)>, IntegrationError> {
        let connection = self.records.lock();
        let mut statement = connection
            .prepare_cached(
                "SELECT plugin_id, user_id FROM oauth_tokens
                 WHERE expires_at IS NOT NULL AND expires_at < ? AND reconnect_reason IS NULL ORDER BY expires_at",
            )
            .map_err(failed)?;
        let rows = statement.query_map([horizon], |row| Ok((row.get(0)?, row.get(1)?))).map_err(failed)?;
        rows.collect::<Result<_, _>>().map_err(failed)
    }
}
