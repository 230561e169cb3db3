//! OAuth end to end against a real authorization server nobody on this project wrote:
//! oidc-provider on loopback (PKCE required, one-minute or shorter access tokens, refresh
//! tokens rotating or not), the wire recorder as the plugin whose manifest names it, its
//! every `initialize` recorded (so a test sees which token a started instance was given).

use codex_plugin_host::host::HostConfig;
use codex_plugin_host::integrations::IntegrationError;
use codex_plugin_host::registry::PluginDefinition;
use codex_plugin_host_tests::LoopbackServer;
use codex_plugin_host_tests::integrations::{IntegrationHost, recorder, sample_library};
use codex_plugin_host_tests::oauth_server::AuthorizationServer;
use serde_json::{Value, json};
use std::time::Duration;

/// A host with the recorder registered as `tracker`: a sync plugin whose manifest's
/// `oauth` names `server`'s endpoints (or `token_url`), allowed to reach loopback.
fn host_for(server: &AuthorizationServer, token_url: Option<&str>, internal_allowed: bool) -> IntegrationHost {
    let host = IntegrationHost::configured(&sample_library(), |config: &mut HostConfig| {
        config.admin_changes_interval = Duration::from_millis(100);
    });
    let oauth = json!({
        "authorizationUrl": server.url("/auth"),
        "tokenUrl": token_url.map_or_else(|| server.url("/token"), str::to_owned),
        "scopes": ["openid", "offline_access"],
        "pkce": true,
        "clientId": "codex-host",
    });
    let mut definition = PluginDefinition::new(recorder());
    definition.allow_internal_addresses = internal_allowed;
    definition.admin_config = json!({
        "manifest": {"oauth": oauth},
        "capabilities": {"userReadSync": true},
        "answers": {"sync/getUserInfo": {"externalId": "ann-1", "username": "ann"}, "ping": "pong"}
    })
    .as_object()
    .cloned()
    .unwrap();
    host.add_defined("tracker", definition, &["library:read"]);
    host
}

/// The callback URL's `code` and `state`.
fn callback_params(callback: &str) -> (String, String) {
    let url = url::Url::parse(callback).unwrap_or_else(|error| panic!("{callback:?}: {error}"));
    let get = |name: &str| url.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned());
    (get("code").unwrap_or_default(), get("state").unwrap_or_default())
}

const REDIRECT: &str = "http://127.0.0.1:45321/callback";

/// A whole flow for ann: started, signed in, finished.
async fn connect(host: &IntegrationHost, server: &AuthorizationServer) {
    let started = host.integrations.start_oauth("tracker", "ann", Some(REDIRECT)).await.unwrap();
    let (code, state) = callback_params(&server.authorize(&started.authorization_url));
    assert_eq!(state, started.state);
    let connected = host.integrations.finish_oauth(&state, Some(&code), None).await.unwrap();
    assert_eq!(connected.account.map(|account| account.username), Some("ann".to_owned()));
}

/// The access token each started instance of the tracker was given, in order.
fn tokens_given(host: &IntegrationHost) -> Vec<String> {
    host.recorded("tracker", "initialize")
        .into_iter()
        .filter_map(|params| params["credentials"]["access_token"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_flow_connects_and_its_state_is_used_once() {
    let server = AuthorizationServer::start(true, 60);
    let host = host_for(&server, None, true);
    let started = host.integrations.start_oauth("tracker", "ann", Some(REDIRECT)).await.unwrap();
    let url = url::Url::parse(&started.authorization_url).unwrap();
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert!(query.contains(&("code_challenge_method".into(), "S256".into())), "{query:?}");
    assert!(query.contains(&("redirect_uri".into(), REDIRECT.into())), "{query:?}");
    let (code, state) = callback_params(&server.authorize(&started.authorization_url));
    let connected = host.integrations.finish_oauth(&state, Some(&code), None).await.unwrap();
    assert_eq!(connected.account.unwrap().external_id, "ann-1");
    assert_eq!(server.stats(), (1, 0));
    let given = tokens_given(&host);
    assert!(!given.is_empty() && !given.last().unwrap().is_empty(), "the plugin was given the access token");
    let all = host.recorded("tracker", "initialize").iter().map(Value::to_string).collect::<String>();
    assert!(!all.contains("refresh_token"), "the plugin saw the refresh token");

    let replayed = host.integrations.finish_oauth(&state, Some(&code), None).await.unwrap_err();
    assert!(replayed.to_string().contains("unknown or was already used"), "{replayed}");
    assert_eq!(server.stats(), (1, 0), "a replayed state reached the token endpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_too_many_and_refused_flows_are_clear_errors() {
    let server = AuthorizationServer::start(true, 60);
    let host = host_for(&server, None, true);
    let database = rusqlite::Connection::open(host.host.database_path()).unwrap();
    // Expired.
    let started = host.integrations.start_oauth("tracker", "ann", Some(REDIRECT)).await.unwrap();
    database.execute("UPDATE oauth_flows SET expires_at = 0", []).unwrap();
    let error = host.integrations.finish_oauth(&started.state, Some("code"), None).await.unwrap_err();
    assert!(error.to_string().contains("expired"), "{error}");
    // A fourth pending flow.
    for _ in 0..3 {
        host.integrations.start_oauth("tracker", "ann", Some(REDIRECT)).await.unwrap();
    }
    let error = host.integrations.start_oauth("tracker", "ann", Some(REDIRECT)).await.unwrap_err();
    assert!(error.to_string().contains("already has 3 OAuth flows"), "{error}");
    database.execute("DELETE FROM oauth_flows", []).unwrap();
    // The provider's own refusal.
    let started = host.integrations.start_oauth("tracker", "ann", Some(REDIRECT)).await.unwrap();
    let error = host.integrations.finish_oauth(&started.state, None, Some("access_denied")).await.unwrap_err();
    assert!(error.to_string().contains("refused the authorization: access_denied"), "{error}");
    // A wrong PKCE verifier: refused by the server itself.
    let started = host.integrations.start_oauth("tracker", "ann", Some(REDIRECT)).await.unwrap();
    let (code, state) = callback_params(&server.authorize(&started.authorization_url));
    database.execute("UPDATE oauth_flows SET verifier = 'a-verifier-that-is-not-the-right-one-at-all-x'", []).unwrap();
    let error = host.integrations.finish_oauth(&state, Some(&code), None).await.unwrap_err();
    assert!(
        error.to_string().contains("could not be exchanged") && error.to_string().contains("invalid_grant"),
        "{error}"
    );
    assert!(
        host.recorded("tracker", "initialize").iter().all(|params| params["credentials"].get("access_token").is_none())
    );
    // An unknown state.
    let error = host.integrations.finish_oauth("forged", Some("code"), None).await.unwrap_err();
    assert!(matches!(error, IntegrationError::Invalid(_)) && error.to_string().contains("unknown"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refreshed_before_expiry_reaches_the_running_plugin() {
    // Four-second tokens: refreshed at half their life.
    let server = AuthorizationServer::start(true, 4);
    let host = host_for(&server, None, true);
    connect(&host, &server).await;
    host.host.call("tracker", Some("ann"), "sync/getUserInfo", json!({})).await.unwrap();
    let first = tokens_given(&host).last().cloned().unwrap();
    let _refresher = host.integrations.spawn_token_refresher(Duration::from_millis(200));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        host.host.call("tracker", Some("ann"), "sync/getUserInfo", json!({})).await.unwrap();
        let latest = tokens_given(&host).last().cloned().unwrap();
        if latest != first {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the plugin never saw a new token");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(server.stats().1 >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_does_not_rotate_keeps_the_old_refresh_token_working() {
    let server = AuthorizationServer::start(false, 60);
    let host = host_for(&server, None, true);
    connect(&host, &server).await;
    let database = rusqlite::Connection::open(host.host.database_path()).unwrap();
    for round in 1..=2 {
        // As if the token were about to expire.
        database.execute("UPDATE oauth_tokens SET expires_at = issued_at + 1", []).unwrap();
        host.integrations.ensure_token("tracker", "ann").await.unwrap();
        assert_eq!(server.stats().1, round, "refresh {round} did not reach the server");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_needs_a_reconnect_and_calls_say_so() {
    let server = AuthorizationServer::start(true, 60);
    let host = host_for(&server, None, true);
    connect(&host, &server).await;
    server.revoke_all();
    let database = rusqlite::Connection::open(host.host.database_path()).unwrap();
    database.execute("UPDATE oauth_tokens SET expires_at = issued_at + 1", []).unwrap();
    let error = host.integrations.ensure_token("tracker", "ann").await.unwrap_err();
    assert!(error.contains("must be made again") && error.contains("invalid_grant"), "{error}");
    assert!(error.contains("--oauth"), "{error}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = host.host.call("tracker", Some("ann"), "sync/getUserInfo", json!({})).await.unwrap_err();
    assert!(refused.to_string().contains("must be made again"), "{refused}");
    // Connecting again clears it.
    connect(&host, &server).await;
    host.integrations.ensure_token("tracker", "ann").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_calls_needing_a_refresh_make_one() {
    let server = AuthorizationServer::start(true, 60);
    let host = host_for(&server, None, true);
    connect(&host, &server).await;
    let database = rusqlite::Connection::open(host.host.database_path()).unwrap();
    database.execute("UPDATE oauth_tokens SET expires_at = issued_at + 1", []).unwrap();
    // Two calls in this host, and one in another host on the same database.
    let library: std::sync::Arc<codex_plugin_host::library::SqliteLibrary> = host.library.clone();
    let other = codex_plugin_host::integrations::Integrations::new(host.host.clone(), library).unwrap();
    let (a, b, c) = tokio::join!(
        host.integrations.ensure_token("tracker", "ann"),
        host.integrations.ensure_token("tracker", "ann"),
        other.ensure_token("tracker", "ann")
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    assert_eq!(server.stats().1, 1, "two refreshes of a rotating token would end the grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_url_on_a_private_address_is_refused() {
    let server = AuthorizationServer::start(true, 60);
    // https, so only the address policy can refuse it: localhost is loopback.
    let host = host_for(&server, Some("https://localhost:9/token"), false);
    let error = host.integrations.start_oauth("tracker", "ann", Some(REDIRECT)).await.unwrap_err();
    // The authorization URL is plain http on loopback: refused first, as not https.
    assert!(error.to_string().contains("must be https"), "{error}");
    let mut definition = host.host.registry().get("tracker").unwrap().definition;
    definition.admin_config["manifest"]["oauth"]["authorizationUrl"] = json!("https://localhost:9/auth");
    host.host.registry().set_admin_config("tracker", definition.admin_config).unwrap();
    host.host.registry().set_enabled("tracker", true).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    host.host.call("tracker", Some("ann"), "ping", Value::Null).await.unwrap();
    let started = host.integrations.start_oauth("tracker", "ann", Some(REDIRECT)).await.unwrap();
    let error = host.integrations.finish_oauth(&started.state, Some("code"), None).await.unwrap_err();
    assert!(error.to_string().contains("internal address"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_answering_junk_failing_or_hanging_is_a_clear_bounded_error() {
    let server = AuthorizationServer::start(true, 60);
    let junk = LoopbackServer::answering(b"HTTP/1.0 200 OK\r\nContent-Length: 11\r\n\r\n<html></html>");
    let failing = LoopbackServer::answering(b"HTTP/1.0 500 Oops\r\nContent-Length: 2\r\n\r\n{}");
    let hanging = LoopbackServer::stalling(b"", Duration::from_secs(20));
    let cases = [(&junk, "not a token response"), (&failing, "answered 500"), (&hanging, "did not answer within 1 s")];
    for (endpoint, expected) in cases {
        let token_url = format!("http://{}/token", endpoint.address);
        let host = host_for(&server, Some(&token_url), true);
        host.integrations.set_endpoint_timeout(Duration::from_secs(1));
        let started = host.integrations.start_oauth("tracker", "ann", Some(REDIRECT)).await.unwrap();
        let (code, state) = callback_params(&server.authorize(&started.authorization_url));
        let begun = std::time::Instant::now();
        let error = host.integrations.finish_oauth(&state, Some(&code), None).await.unwrap_err();
        assert!(begun.elapsed() < Duration::from_secs(5), "{expected}: not bounded");
        assert!(error.to_string().contains(expected), "expected {expected:?}: {error}");
        let names = host.host.registry().credential_names("tracker", Some("ann")).unwrap();
        assert!(names.is_empty(), "{expected}: something was stored: {names:?}");
    }
}
