//! Who may use the host's HTTP API and page (issue 15): API tokens and the principals they
//! stand for. Pure: making a token, its digest, reading a bearer header, and whether a
//! principal may act for a user. The tokens' records are [`store::TokenStore`].

pub mod store;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Every token starts so, which makes one recognizable in a log or a leak scanner.
pub const TOKEN_PREFIX: &str = "cph_";

/// Who a token stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", content = "user", rename_all = "lowercase")]
pub enum Principal {
    /// May do everything.
    Admin,
    /// Acts for this user only: their connections, settings, syncs and recommendations.
    User(String),
}

impl Principal {
    /// Whether this principal may read or change what belongs to `user`.
    pub fn may_act_for(&self, user: &str) -> bool {
        match self {
            Self::Admin => true,
            Self::User(own) => own == user,
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Self::Admin)
    }
}

/// A new token: `cph_` and 256 random bits (43 characters of base64url).
pub fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", crate::oauth::flow::random_text())
}

/// What is kept of a token: its SHA-256. A token of 256 random bits needs no slow hash:
/// nobody can guess one to match a stolen digest, and checking one costs microseconds.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `text` has a token's shape (so a malformed one is refused before any lookup).
pub fn looks_like_token(text: &str) -> bool {
    text.strip_prefix(TOKEN_PREFIX)
        .is_some_and(|rest| rest.len() == 43 && URL_SAFE_NO_PAD.decode(rest).is_ok_and(|bytes| bytes.len() == 32))
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| looks_like_token(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_256_random_bits_with_its_prefix() {
        let (one, two) = (new_token(), new_token());
        assert_ne!(one, two);
        assert_eq!(one.len(), TOKEN_PREFIX.len() + 43);
        assert!(looks_like_token(&one) && looks_like_token(&two));
        assert_eq!(digest(&one), digest(&one));
        assert_ne!(digest(&one), digest(&two));
    }

    #[test]
    fn only_a_bearer_token_of_the_right_shape_is_read() {
        let token = new_token();
        assert_eq!(bearer(&format!("Bearer {token}")), Some(token.as_str()));
        assert_eq!(bearer(&format!("bearer   {token} ")), Some(token.as_str()));
        for header in
            [token.clone(), format!("Basic {token}"), "Bearer cph_short".into(), "Bearer x".into(), String::new()]
        {
            assert_eq!(bearer(&header), None, "{header}");
        }
        assert!(!looks_like_token(&format!("{TOKEN_PREFIX}{}", "!".repeat(43))));
    }

    #[test]
    fn a_user_acts_only_for_themselves() {
        assert!(Principal::Admin.may_act_for("ann"));
        assert!(Principal::User("ann".into()).may_act_for("ann"));
        assert!(!Principal::User("ann".into()).may_act_for("bob"));
        assert_eq!(
            serde_json::to_value(Principal::User("ann".into())).unwrap(),
            serde_json::json!({"role": "user", "user": "ann"})
        );
        assert_eq!(serde_json::to_value(Principal::Admin).unwrap(), serde_json::json!({"role": "admin"}));
    }
}
