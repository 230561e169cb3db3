use std::time::Duration;
use url::Url;

use super::*;

const SECOND: i64 = 1_000_000;

#[test]
fn flow_secrets_are_random_and_the_challenge_is_s256() {
    let (a, b) = (FlowSecrets::new(), FlowSecrets::new());
    assert_ne!(a.state, b.state);
    assert_ne!(a.verifier, b.verifier);
    assert_eq!((a.state.len(), a.verifier.len()), (43, 43));
    // RFC 7636 appendix B.
    let known = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    assert_eq!(flow::challenge(known), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    assert_eq!(a.challenge, flow::challenge(&a.verifier));
}

#[test]
fn the_authorization_url_keeps_the_endpoints_query() {
    let secrets = FlowSecrets { state: "s t".into(), verifier: "v".into(), challenge: "c".into() };
    let endpoint = Url::parse("https://tracker.example/oauth/authorize?tenant=eu").unwrap();
    let url = authorization_url(
        &endpoint,
        "id 1",
        "http://127.0.0.1:4000/callback",
        &["read".into(), "write".into()],
        &secrets,
        true,
    );
    assert_eq!(
        url.as_str(),
        "https://tracker.example/oauth/authorize?tenant=eu&response_type=code&client_id=id+1&redirect_uri=http%3A%2F%2F127.0.0.1%3A4000%2Fcallback&state=s+t&scope=read+write&code_challenge=c&code_challenge_method=S256"
    );
    let plain = authorization_url(&endpoint, "id", "https://h/cb", &[], &secrets, false);
    assert!(!plain.as_str().contains("code_challenge") && !plain.as_str().contains("scope"), "{plain}");
}

#[test]
fn endpoints_are_https_unless_a_loopback_test_server_is_allowed() {
    assert!(check_endpoint("token URL", "https://a.example/token", false).is_ok());
    let error = check_endpoint("token URL", "http://a.example/token", false).unwrap_err();
    assert!(error.contains("must be https"), "{error}");
    assert!(check_endpoint("token URL", "http://127.0.0.1:9/token", true).is_ok());
    assert!(check_endpoint("token URL", "http://tracker.example/token", true).is_err(), "http only to loopback");
    assert!(check_endpoint("token URL", "ftp://a.example", true).unwrap_err().contains("scheme"));
    assert!(check_endpoint("token URL", "not a url", true).unwrap_err().contains("not a URL"));
}

#[test]
fn token_answers_are_read_or_refused_clearly() {
    let grant =
        parse_grant(br#"{"access_token": "a", "refresh_token": "r", "expires_in": "3600", "token_type": "Bearer"}"#)
            .unwrap();
    assert_eq!(
        (grant.access_token.as_str(), grant.refresh_token.as_deref(), grant.expires_in),
        ("a", Some("r"), Some(3600))
    );
    let not_rotated = parse_grant(br#"{"access_token": "a", "expires_in": 60}"#).unwrap();
    assert_eq!(not_rotated.refresh_token, None);
    assert!(parse_grant(b"<html>oops</html>").unwrap_err().contains("not a token response"));
    assert!(parse_grant(br#"{"token": "a"}"#).unwrap_err().contains("without an access_token"));
    let shaped_wrong = parse_grant(br#"{"access_token": "s3cret", "scope": ["a"]}"#).unwrap_err();
    assert!(!shaped_wrong.contains("s3cret") && shaped_wrong.contains("access_token"), "{shaped_wrong}");
}

#[test]
fn failures_are_classified_as_the_spec_says() {
    let reconnect =
        |status, body: &str| matches!(classify_failure(status, None, body.as_bytes()), RefreshFailure::Reconnect(_));
    assert!(reconnect(401, ""));
    for error in ["invalid_grant", "invalid_client", "unauthorized_client"] {
        assert!(reconnect(400, &format!(r#"{{"error": "{error}"}}"#)), "{error}");
    }
    assert!(!reconnect(400, r#"{"error": "invalid_request"}"#));
    assert_eq!(
        classify_failure(429, Some(" 17 "), b"{}"),
        RefreshFailure::RateLimited { retry_after: Some(17), why: "the token endpoint answered 429".into() }
    );
    assert!(matches!(classify_failure(503, None, b"junk"), RefreshFailure::Temporary(why) if why.contains("503")));
}

#[test]
fn refresh_comes_five_minutes_early_or_at_half_life() {
    let hour = 3600 * SECOND;
    assert!(!needs_refresh(0, Some(hour), hour - 301 * SECOND));
    assert!(needs_refresh(0, Some(hour), hour - 300 * SECOND));
    assert!(!needs_refresh(0, Some(60 * SECOND), 29 * SECOND), "a one-minute token: at half its life");
    assert!(needs_refresh(0, Some(60 * SECOND), 30 * SECOND));
    assert!(!needs_refresh(0, None, i64::MAX / 2), "no expiry: never");
    assert_eq!(refresh_margin(Some(Duration::from_secs(7200))), REFRESH_MARGIN);
}

#[test]
fn the_breaker_opens_at_three_failures_in_an_hour_and_closes_after() {
    let mut breaker = Breaker::default();
    for at in [0, 10, 20] {
        assert!(!breaker.is_open(at * SECOND));
        breaker.record_failure(at * SECOND);
    }
    assert!(breaker.is_open(30 * SECOND));
    assert_eq!(breaker.closes_at(30 * SECOND), Some(3600 * SECOND));
    assert!(!breaker.is_open(3601 * SECOND), "the first failure left the window");
    breaker.record_success();
    assert!(!breaker.is_open(40 * SECOND));
}
