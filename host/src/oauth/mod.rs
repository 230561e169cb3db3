//! OAuth decisions (orchestration.md §6), pure: a flow's secrets (state and PKCE), the
//! authorization URL, what a token endpoint's answer means, when a token needs refreshing,
//! and when the refresh breaker is open. The service that runs flows and refreshes is
//! [`crate::integrations`].

pub mod flow;
mod tokens;

pub use flow::{FlowSecrets, authorization_url, check_endpoint};
pub use tokens::{Breaker, RefreshFailure, TokenGrant, classify_failure, needs_refresh, parse_grant, refresh_margin};

use std::time::Duration;

/// A pending flow lives this long (the reference's `OAUTH_STATE_TTL_SECS`).
pub const STATE_LIFETIME: Duration = Duration::from_secs(300);
/// At most this many pending flows per user.
pub const MAX_PENDING_FLOWS: usize = 3;
/// A token is refreshed when it expires within this (or half its lifetime, if shorter).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Refresh failures that open the breaker, within this window.
pub const BREAKER_FAILURES: usize = 3;
pub const BREAKER_WINDOW: Duration = Duration::from_secs(3600);
/// Token and authorization endpoints answer within this.
pub const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests;
