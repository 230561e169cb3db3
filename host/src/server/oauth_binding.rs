//! An OAuth flow is finished only by the browser that started it (RFC 6749 §10.12): the
//! start gives that browser a random cookie, kept here as its digest under the flow's
//! state; the callback must bring it back. Without it, anyone could start a flow for
//! themselves and have someone else's signed-in provider account linked to it by sending
//! them the address.

use axum_extra::extract::cookie::{Cookie, SameSite};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq as _;

use crate::oauth::STATE_LIFETIME;

/// The cookie: SameSite=Lax, since the provider's redirect back is a cross-site navigation.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure { "__Secure-codex_oauth" } else { "codex_oauth" }
}

/// The flows waiting for their callback, by state: the digest of their browser's cookie.
#[derive(Default)]
pub struct Bindings(Mutex<HashMap<String, ([u8; 32], Instant)>>);

impl Bindings {
    /// Binds the flow `state` to a new random value; answers the cookie that carries it.
    pub fn bind(&self, state: &str, secure: bool) -> Cookie<'static> {
        let value = crate::oauth::flow::random_text();
        let mut bindings = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        bindings.retain(|_, (_, at)| at.elapsed() < STATE_LIFETIME);
        bindings.insert(state.to_owned(), (digest(&value), Instant::now()));
        Cookie::build((cookie_name(secure), value))
            .path("/oauth/callback")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .build()
    }

    /// Whether `cookie` is the one given to the browser that started `state` (the binding
    /// is used up either way only when it matched).
    pub fn check(&self, state: &str, cookie: Option<&str>) -> bool {
        let mut bindings = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let matched = match (bindings.get(state), cookie) {
            (Some((expected, at)), Some(cookie)) => {
                at.elapsed() < STATE_LIFETIME + Duration::from_secs(60) && bool::from(digest(cookie).ct_eq(expected))
            }
            _ => false,
        };
        if matched {
            bindings.remove(state);
        }
        matched
    }
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_cookie_given_for_a_flow_finishes_it_once() {
        let bindings = Bindings::default();
        let cookie = bindings.bind("state-1", false);
        assert_eq!(cookie.name(), "codex_oauth");
        assert!(cookie.http_only().unwrap_or(false) && cookie.same_site() == Some(SameSite::Lax));
        assert!(!bindings.check("state-1", None), "a callback without the cookie");
        assert!(!bindings.check("state-1", Some("forged")), "another browser's value");
        assert!(!bindings.check("state-2", Some(cookie.value())), "another flow");
        assert!(bindings.check("state-1", Some(cookie.value())));
        assert!(!bindings.check("state-1", Some(cookie.value())), "used up");
        assert_eq!(bindings.bind("s", true).name(), "__Secure-codex_oauth");
    }
}
