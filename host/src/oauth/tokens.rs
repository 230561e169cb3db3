//! What a token endpoint answered, and when to ask it again.

use serde::Deserialize;
use std::time::Duration;

use super::{BREAKER_FAILURES, BREAKER_WINDOW, REFRESH_MARGIN};

/// Tokens granted: the access token, and what came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub access_token: String,
    /// None: the provider did not rotate it (a refresh keeps the one it had).
    pub refresh_token: Option<String>,
    /// Seconds the access token lives, as the provider said.
    pub expires_in: Option<u64>,
    pub token_type: Option<String>,
    pub scope: Option<String>,
}

/// Reads a token endpoint's 2xx answer.
pub fn parse_grant(body: &[u8]) -> Result<TokenGrant, String> {
    #[derive(Deserialize)]
    struct Wire {
        access_token: Option<String>,
        refresh_token: Option<String>,
        expires_in: Option<serde_json::Value>,
        token_type: Option<String>,
        scope: Option<String>,
    }
    // The body may hold tokens: only the names of its fields are ever shown.
    let fields = || match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body) {
        Ok(object) => format!("fields {:?}", object.keys().collect::<Vec<_>>()),
        Err(_) => format!("{} bytes that are not a JSON object", body.len()),
    };
    let wire: Wire = serde_json::from_slice(body)
        .map_err(|_| format!("the token endpoint answered something that is not a token response ({})", fields()))?;
    let access_token = wire
        .access_token
        .filter(|token| !token.is_empty())
        .ok_or_else(|| format!("the token endpoint answered without an access_token ({})", fields()))?;
    // Some providers send `expires_in` as a string.
    let expires_in = match wire.expires_in {
        Some(serde_json::Value::Number(number)) => number.as_u64(),
        Some(serde_json::Value::String(text)) => text.parse().ok(),
        _ => None,
    };
    Ok(TokenGrant {
        access_token,
        refresh_token: wire.refresh_token.filter(|token| !token.is_empty()),
        expires_in,
        token_type: wire.token_type,
        scope: wire.scope,
    })
}

/// Why a refresh failed, and what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshFailure {
    /// The grant is gone (revoked, expired, the client changed): the user must connect
    /// again; calls for them fail with this until they do.
    Reconnect(String),
    /// The provider asked to wait (429); `retry_after` seconds when it said.
    RateLimited { retry_after: Option<u64>, why: String },
    /// Anything else (a 5xx, junk, no answer): tried again later, counted by the breaker.
    Temporary(String),
}

/// What a token endpoint's non-2xx answer means: 401, or 400 with `invalid_grant`,
/// `invalid_client` or `unauthorized_client`, needs a reconnect; 429 waits; the rest is
/// temporary.
pub fn classify_failure(status: u16, retry_after: Option<&str>, body: &[u8]) -> RefreshFailure {
    let error = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|body| body.get("error").and_then(|error| error.as_str()).map(str::to_owned));
    let why = match &error {
        Some(error) => format!("the token endpoint answered {status} ({error})"),
        None => format!("the token endpoint answered {status}"),
    };
    match (status, error.as_deref()) {
        (401, _) | (400, Some("invalid_grant" | "invalid_client" | "unauthorized_client")) => {
            RefreshFailure::Reconnect(why)
        }
        (429, _) => {
            RefreshFailure::RateLimited { retry_after: retry_after.and_then(|value| value.trim().parse().ok()), why }
        }
        _ => RefreshFailure::Temporary(why),
    }
}

/// How long before expiry a token is refreshed: [`REFRESH_MARGIN`], or half its lifetime
/// when that is shorter (a token living a minute would otherwise always be due).
pub fn refresh_margin(lifetime: Option<Duration>) -> Duration {
    lifetime.map_or(REFRESH_MARGIN, |lifetime| REFRESH_MARGIN.min(lifetime / 2))
}

/// Whether a token issued at `issued_at` and expiring at `expires_at` (microseconds) needs
/// refreshing at `now`. No expiry known: never.
pub fn needs_refresh(issued_at: i64, expires_at: Option<i64>, now: i64) -> bool {
    let Some(expires_at) = expires_at else { return false };
    let lifetime = Duration::from_micros(expires_at.saturating_sub(issued_at).max(0) as u64);
    now.saturating_add(refresh_margin(Some(lifetime)).as_micros() as i64) >= expires_at
}

/// The refresh breaker of one connection: open after [`BREAKER_FAILURES`] failures within
/// [`BREAKER_WINDOW`]; separate from the plugin's health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Breaker {
    /// When the recent failures happened (microseconds), oldest first.
    pub failures: Vec<i64>,
}

impl Breaker {
    fn window_start(now: i64) -> i64 {
        now - BREAKER_WINDOW.as_micros() as i64
    }

    pub fn is_open(&self, now: i64) -> bool {
        self.failures.iter().filter(|at| **at > Self::window_start(now)).count() >= BREAKER_FAILURES
    }

    /// When it closes again, if open.
    pub fn closes_at(&self, now: i64) -> Option<i64> {
        if !self.is_open(now) {
            return None;
        }
        let recent: Vec<i64> = self.failures.iter().copied().filter(|at| *at > Self::window_start(now)).collect();
        let oldest_counted = recent[recent.len() - BREAKER_FAILURES];
        Some(oldest_counted + BREAKER_WINDOW.as_micros() as i64)
    }

    pub fn record_failure(&mut self, now: i64) {
        self.failures.retain(|at| *at > Self::window_start(now));
        self.failures.push(now);
    }

    pub fn record_success(&mut self) {
        self.failures.clear();
    }
}
