//! Starting a flow: its secrets, and the URL the user opens.

use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use url::Url;

/// A flow's secrets: its state (32 random bytes) and PKCE verifier (32 random bytes, 43
/// characters) with its S256 challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSecrets {
    pub state: String,
    pub verifier: String,
    pub challenge: String,
}

/// 32 random bytes (256 bits) from the OS, base64url without padding: 43 characters.
pub(crate) fn random_text() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl FlowSecrets {
    pub fn new() -> Self {
        let verifier = random_text();
        Self { state: random_text(), challenge: challenge(&verifier), verifier }
    }
}

/// The S256 challenge of a PKCE verifier.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Default for FlowSecrets {
    fn default() -> Self {
        Self::new()
    }
}

/// An endpoint the host may call: https, or http to a loopback address when the plugin's
/// endpoints may be internal (a test server).
pub fn check_endpoint(what: &str, text: &str, internal_allowed: bool) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|error| format!("the {what} {text:?} is not a URL: {error}"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if internal_allowed && is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "the {what} {text} is plain http; OAuth endpoints must be https (http only for a loopback test server, with internal addresses allowed)"
        )),
        other => Err(format!("the {what} {text} has scheme {other:?}; OAuth endpoints must be https")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    }
}

/// The authorization URL: the endpoint's own query kept, then `response_type`,
/// `client_id`, `redirect_uri`, `state`, `scope` (space-joined) and the PKCE challenge.
pub fn authorization_url(
    endpoint: &Url,
    client_id: &str,
    redirect_uri: &str,
    scopes: &[String],
    secrets: &FlowSecrets,
    pkce: bool,
) -> Url {
    let mut url = endpoint.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", &secrets.state);
        if !scopes.is_empty() {
            query.append_pair("scope", &scopes.join(" "));
        }
        if pkce {
            query.append_pair("code_challenge", &secrets.challenge).append_pair("code_challenge_method", "S256");
        }
    }
    url
}
