//! The page in a real browser (headless Chromium over WebDriver): an admin adds the
//! published Open Library plugin and makes it healthy; a user connects a sync plugin
//! through the provider's sign-in and syncs; a user previews and applies metadata; a user
//! dismisses a recommendation. Each saves a screenshot in docs/screenshots/.

use codex_plugin_host::library::{LibraryPort, SqliteLibrary};
use codex_plugin_host_tests::browser::{Browser, ONE_AT_A_TIME, PHONE};
use codex_plugin_host_tests::oauth_server::AuthorizationServer;
use codex_plugin_host_tests::server::TestServer;
use codex_plugin_host_tests::{openlibrary, wasm_component_path, wire_recorder};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn base(server: &TestServer) -> String {
    server.url("")
}

async fn add_wasm(server: &TestServer, id: &str, example: &str, permissions: &[&str]) {
    let definition = json!({"launch": {"mode": "wasm", "file": wasm_component_path(example)}});
    let (status, added) = server
        .post("/api/v1/plugins", &server.admin, json!({"id": id, "definition": definition, "enable": true}))
        .await;
    assert_eq!(status, 201, "{added}");
    let body = json!({"permissions": permissions});
    let path = format!("/api/v1/plugins/{id}/permissions");
    let (status, granted) = server.send(Method::PUT, &path, Some(&server.admin), Some(body)).await;
    assert_eq!(status, 200, "{granted}");
}

fn library(server: &TestServer) -> SqliteLibrary {
    SqliteLibrary::open(&server.dir.path().join("data").join(codex_plugin_host::host::DATABASE_FILE)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_open_library_reviews_its_permissions_configures_it_and_sees_it_healthy() {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = TestServer::start().await;
    let browser = Browser::start().await;
    let base = base(&server);
    browser.sign_in(&base, &server.admin).await;
    browser.wait_for_text("No plugin is registered yet", WAIT).await;
    browser.open(&format!("{base}/plugins/new")).await;
    // As the seeds describe: the command, then its arguments one per line.
    browser.fill("plugin-id", "openlibrary").await;
    browser.fill("plugin-command", "node").await;
    browser.fill("plugin-arguments", "-y @ashdev/codex-plugin-metadata-openlibrary").await;
    browser.click("add-plugin").await;
    let refused = browser.wait_for_text("several arguments", WAIT).await;
    assert!(refused.contains("line 1"), "{refused}");
    let (_, listed) = server.get("/api/v1/plugins", Some(&server.admin)).await;
    assert_eq!(listed["plugins"], json!([]), "a refused form stored a plugin");
    browser.fill("plugin-command", "node").await;
    browser.fill("plugin-arguments", &openlibrary()).await;
    browser.click("add-plugin").await;
    browser.wait_for_text("review its permissions, then enable it", WAIT).await;
    // The review: nothing granted until the admin ticks it.
    assert!(!browser.element("permission-metadata:write:*").await.is_selected().await.unwrap());
    browser.click("permission-metadata:write:*").await;
    browser.screenshot("admin-permission-review").await;
    browser.click("grant").await;
    let enabled = browser.wait_for_text("Enabled and started", WAIT).await;
    assert!(enabled.contains("healthy"), "{enabled}");
    // Its configuration form, generated from its configSchema.
    // A client that does not check the number field itself (the browser would).
    browser.script("document.getElementById('field-maxResults').type = 'text';").await;
    browser.fill("field-maxResults", "lots").await;
    browser.click("save-config").await;
    let refused = browser.wait_for_text("was not saved", WAIT).await;
    assert!(refused.contains("maxResults"), "the fault names its field: {refused}");
    browser.fill("field-maxResults", "12").await;
    browser.click("save-config").await;
    browser.wait_for_text("Configuration saved", WAIT).await;
    let (_, shown) = server.get("/api/v1/plugins/openlibrary", Some(&server.admin)).await;
    assert_eq!(shown["definition"]["adminConfig"], json!({"maxResults": 12}), "{shown}");
    assert_eq!(shown["metadataSettings"]["permissions"], json!(["metadata:write:*"]));
    assert_eq!(shown["health"]["state"], "healthy");
    assert_eq!(shown["definition"]["launch"], json!({"mode": "process", "command": "node", "args": [openlibrary()]}));
    browser.screenshot("admin-plugin").await;
    browser.open(&format!("{base}/plugins")).await;
    let list = browser.wait_for_text("Open Library", WAIT).await;
    assert!(list.contains("healthy"), "{list}");
    browser.screenshot("admin-plugins").await;
    browser.resize(PHONE).await;
    browser.open(&format!("{base}/plugins/openlibrary")).await;
    assert_eq!(browser.overflowing().await, Vec::<String>::new(), "the plugin page is wider than a phone");
    browser.screenshot("phone-admin-plugin").await;
    browser.quit().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_connects_through_the_providers_sign_in_syncs_and_sees_the_result() {
    let _one = ONE_AT_A_TIME.lock().await;
    let provider = AuthorizationServer::start(true, 3600);
    let server = TestServer::start().await;
    let entry = json!({"externalId": "series-00", "status": "completed", "progress": {"volumes": 3.0}});
    let admin_config = json!({
        "manifest": {"displayName": "Tracker", "oauth": {
            "authorizationUrl": provider.url("/auth"),
            "tokenUrl": provider.url("/token"),
            "scopes": ["openid", "offline_access"], "clientId": "codex-host"
        }},
        "capabilities": {"userReadSync": true, "externalIdSource": "api:echo"},
        "answers": {
            "sync/getUserInfo": {"externalId": "ann-1", "username": "ann"},
            "sync/pullProgress": {"entries": [entry], "hasMore": false},
            "sync/pushProgress": {"success": [], "failed": []},
            "ping": "pong"
        },
        "delays": {"sync/pullProgress": 1500}
    });
    let definition = json!({
        "launch": {"mode": "process", "command": "node", "args": [wire_recorder()]},
        "adminConfig": admin_config,
        "allowInternalAddresses": true,
    });
    let body = json!({"id": "tracker", "definition": definition, "enable": true});
    let (status, added) = server.post("/api/v1/plugins", &server.admin, body).await;
    assert_eq!(status, 201, "{added}");
    let (status, tested) = server.post("/api/v1/plugins/tracker/test", &server.admin, json!({})).await;
    assert_eq!(status, 200, "its manifest is known: {tested}");
    let ann = server.user_token("ann");
    let browser = Browser::start().await;
    let base = base(&server);
    browser.sign_in(&base, &ann).await;
    browser.wait_for_text("Integrations", WAIT).await;
    browser.open(&format!("{base}/integrations/tracker")).await;
    browser.wait_for_text("not connected yet", WAIT).await;
    browser.click("connect-oauth").await;
    // The provider signs ann in and sends the browser back to the server's callback.
    browser.wait_for_text("account is connected to tracker", WAIT).await;
    browser.click("back").await;
    browser.wait_for_text("Your connections", WAIT).await;
    browser.open(&format!("{base}/integrations/tracker")).await;
    browser.wait_for_text("Your account is connected", WAIT).await;
    browser.screenshot("user-integration").await;
    browser.click("sync-now").await;
    // The job page follows the sync live, then shows its result.
    browser.wait_for_text("running", WAIT).await;
    let done = browser.wait_for_text("succeeded", WAIT).await;
    assert_eq!(browser.element("books-marked").await.text().await.unwrap(), "3", "{done}");
    browser.screenshot("user-sync-result").await;
    let books = library(&server).progress("ann", "manga-one-piece").unwrap();
    assert_eq!(books.iter().filter(|book| book.completed).count(), 3, "{books:?}");
    browser.click("back").await;
    let page = browser.wait_for_text("Last sync", WAIT).await;
    assert!(page.contains("succeeded"), "{page}");
    browser.quit().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_previews_and_applies_metadata_to_a_series() {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = TestServer::start().await;
    add_wasm(&server, "echo", "metadata-echo", &["metadata:write:*"]).await;
    let (status, _) = server.post("/api/v1/plugins/echo/test", &server.admin, json!({})).await;
    assert_eq!(status, 200);
    let ann = server.user_token("ann");
    let browser = Browser::start().await;
    let base = base(&server);
    browser.sign_in(&base, &ann).await;
    browser.open(&format!("{base}/library")).await;
    browser.wait_for_text("Berserk", WAIT).await;
    browser.screenshot("library").await;
    browser.open(&format!("{base}/series/manga-berserk")).await;
    browser.click("search-button").await;
    browser.wait_for_text("Results for", WAIT).await;
    browser.css("tr[data-external-id='berserk-0'] button").await.click().await.unwrap();
    browser.wait_for_text("What applying berserk-0 would change", WAIT).await;
    let before = library(&server).series("manga-berserk").unwrap();
    assert_eq!(browser.css("tr[data-field='genres'] .outcome-applied").await.text().await.unwrap(), "applied");
    assert_eq!(browser.css("tr[data-field='summary'] .outcome-locked").await.text().await.unwrap(), "locked");
    browser.screenshot("series-preview").await;
    assert_eq!(library(&server).series("manga-berserk").unwrap(), before, "the preview wrote");
    browser.click("apply").await;
    browser.wait_for_text("Applied berserk-0", WAIT).await;
    assert_eq!(browser.element("genres").await.text().await.unwrap(), "Adventure, Science Fiction");
    assert_eq!(library(&server).series("manga-berserk").unwrap().metadata.genres, ["Adventure", "Science Fiction"]);
    browser.resize(PHONE).await;
    assert_eq!(browser.overflowing().await, Vec::<String>::new(), "the series page is wider than a phone");
    browser.screenshot("phone-series-applied").await;
    browser.quit().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_sees_recommendations_and_dismisses_one() {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = TestServer::start().await;
    add_wasm(&server, "recs", "recommendations-echo", &["library:read"]).await;
    let ann = server.user_token("ann");
    let store = library(&server);
    codex_plugin_host_tests::integrations::finished(&store, "ann", &["manga-one-piece-v01", "manga-berserk-v01"]);
    let (status, connected) = server.post("/api/v1/connections/recs/token", &ann, json!({"token": "t0ken"})).await;
    assert_eq!(status, 200, "{connected}");
    let browser = Browser::start().await;
    let base = base(&server);
    browser.sign_in(&base, &ann).await;
    browser.open(&format!("{base}/recommendations")).await;
    browser.click("refresh").await;
    browser.wait_for_text("asked for again", WAIT).await;
    let deadline = std::time::Instant::now() + WAIT;
    while !browser.has("tr[data-external-id='more-manga-berserk']").await {
        assert!(std::time::Instant::now() < deadline, "{}", browser.text().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
        browser.open(&format!("{base}/recommendations")).await;
    }
    browser.screenshot("user-recommendations").await;
    browser.css("tr[data-external-id='more-manga-berserk'] button").await.click().await.unwrap();
    let page = browser.wait_for_text("will not be recommended again", WAIT).await;
    assert!(!browser.has("tr[data-external-id='more-manga-berserk']").await, "{page}");
    let (_, listed) = server.get("/api/v1/recommendations", Some(&ann)).await;
    let ids: Vec<&str> = listed["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|merged| merged["externalId"].as_str())
        .collect();
    assert!(!ids.contains(&"more-manga-berserk") && !ids.is_empty(), "{listed}");
    browser.quit().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_form_without_its_csrf_token_or_from_another_session_changes_nothing() {
    let server = TestServer::start().await;
    add_wasm(&server, "echo", "metadata-echo", &[]).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookie = format!("codex_token={}", server.admin);
    let post = |path: &str, body: String| {
        client
            .post(server.url(path))
            .header("cookie", cookie.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    for body in ["permission=metadata%3Awrite%3A*", "csrf=forged&permission=metadata%3Awrite%3A*"] {
        let refused = post("/plugins/echo/permissions", body.to_owned()).await.unwrap();
        assert_eq!(refused.status(), 403, "{body}");
    }
    let (_, shown) = server.get("/api/v1/plugins/echo", Some(&server.admin)).await;
    assert_eq!(shown["metadataSettings"]["permissions"], json!([]), "a forged form changed the permissions");
    // The session's own token works; a page without a session goes to sign in.
    let csrf = codex_plugin_host::server::pages::session::csrf_token(&server.admin);
    let granted = post("/plugins/echo/permissions", format!("csrf={csrf}&permission=library%3Aread")).await.unwrap();
    assert_eq!(granted.status(), 303);
    let (_, shown) = server.get("/api/v1/plugins/echo", Some(&server.admin)).await;
    assert_eq!(shown["metadataSettings"]["permissions"], json!(["library:read"]));
    let anonymous = client.get(server.url("/plugins")).send().await.unwrap();
    assert_eq!((anonymous.status().as_u16(), anonymous.headers()["location"].to_str().unwrap()), (303, "/login"));
    // A user's session may not use the admin's pages.
    let ann = server.user_token("ann");
    let page = client.get(server.url("/plugins")).header("cookie", format!("codex_token={ann}")).send().await.unwrap();
    assert_eq!(page.status(), 403);
    let page: Value = Value::String(page.text().await.unwrap());
    assert!(page.as_str().unwrap().contains("for admins"), "{page}");
    server.stop().await;
}
