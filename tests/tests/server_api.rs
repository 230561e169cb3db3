//! The server's JSON API over real HTTP on loopback: each route's happy path with real
//! plugins (the examples as wasm components), each refused without a token, with a user's
//! token on an admin route and with another user's ids; bad bodies; jobs to their end.

use codex_plugin_host::library::{LibraryPort, SqliteLibrary};
use codex_plugin_host_tests::oauth_server::AuthorizationServer;
use codex_plugin_host_tests::server::TestServer;
use codex_plugin_host_tests::{wasm_component_path, wire_recorder};
use reqwest::Method;
use serde_json::{Value, json};

fn wasm(example: &str) -> Value {
    json!({"mode": "wasm", "file": wasm_component_path(example)})
}

/// Registers `example` as `id`, enabled, with `permissions`.
async fn add(server: &TestServer, id: &str, example: &str, permissions: &[&str]) {
    let admin = &server.admin;
    let body = json!({"id": id, "definition": {"launch": wasm(example)}, "enable": true});
    let (status, shown) = server.post("/api/v1/plugins", admin, body).await;
    assert_eq!(status, 201, "{shown}");
    let body = json!({"permissions": permissions});
    let (status, shown) =
        server.send(Method::PUT, &format!("/api/v1/plugins/{id}/permissions"), Some(admin), Some(body)).await;
    assert_eq!(status, 200, "{shown}");
}

fn library(server: &TestServer) -> SqliteLibrary {
    SqliteLibrary::open(&server.dir.path().join("data").join(codex_plugin_host::host::DATABASE_FILE)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_reviews_configures_tests_and_removes_a_plugin() {
    let server = TestServer::start().await;
    let admin = Some(server.admin.as_str());
    let body = json!({"id": "echo", "definition": {"launch": wasm("metadata-echo")}});
    let (status, added) = server.post("/api/v1/plugins", &server.admin, body.clone()).await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(
        (added["enabled"].clone(), added["metadataSettings"]["permissions"].clone()),
        (json!(false), json!([])),
        "added disabled, for a review: {added}"
    );
    let (status, again) = server.post("/api/v1/plugins", &server.admin, body).await;
    assert_eq!(status, 409, "{again}");
    let grant = json!({"permissions": ["metadata:write:genres", "metadata:write:tags"]});
    let (status, granted) = server.send(Method::PUT, "/api/v1/plugins/echo/permissions", admin, Some(grant)).await;
    assert_eq!(
        (status, granted["permissions"].clone()),
        (200, json!(["metadata:write:genres", "metadata:write:tags"])),
        "{granted}"
    );
    let (status, refused) = server
        .send(
            Method::PUT,
            "/api/v1/plugins/echo/permissions",
            admin,
            Some(json!({"permissions": ["metadata:write:everything"]})),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    let (status, enabled) = server.post("/api/v1/plugins/echo/enable", &server.admin, json!({})).await;
    assert_eq!((status, enabled["enabled"].clone()), (200, json!(true)), "{enabled}");
    let (status, tested) = server.post("/api/v1/plugins/echo/test", &server.admin, json!({})).await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["test"]["ok"], true, "{tested}");
    assert_eq!(tested["manifest"]["name"], "metadata-echo", "the test's start recorded its manifest: {tested}");
    assert_eq!(tested["health"]["state"], "healthy", "{tested}");
    let settings = json!({"searchTemplate": "{{metadata.title}}", "confidenceThreshold": 0.5});
    let (status, saved) = server.send(Method::PUT, "/api/v1/plugins/echo/search-settings", admin, Some(settings)).await;
    assert_eq!(
        (status, saved["searchTemplate"].clone(), saved["permissions"].clone()),
        (200, json!("{{metadata.title}}"), json!(["metadata:write:genres", "metadata:write:tags"])),
        "{saved}"
    );
    let (status, refused) = server
        .send(Method::PUT, "/api/v1/plugins/echo/search-settings", admin, Some(json!({"searchTemplate": "{{#if}}"})))
        .await;
    assert_eq!(status, 400, "a template that does not parse: {refused}");
    let (status, listed) = server.get("/api/v1/plugins", admin).await;
    assert_eq!((status, listed["plugins"][0]["id"].clone()), (200, json!("echo")), "{listed}");
    let (status, disabled) = server.post("/api/v1/plugins/echo/disable", &server.admin, json!({})).await;
    assert_eq!((status, disabled["health"]["state"].clone()), (200, json!("disabled")), "{disabled}");
    let (status, reset) = server.post("/api/v1/plugins/echo/reset", &server.admin, json!({})).await;
    assert_eq!((status, reset["enabled"].clone()), (200, json!(true)), "{reset}");
    let (status, _) = server.send(Method::DELETE, "/api/v1/plugins/echo", admin, None).await;
    assert_eq!(status, 204);
    let (status, gone) = server.get("/api/v1/plugins/echo", admin).await;
    assert_eq!(status, 404, "{gone}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_registration_is_refused_with_its_reason_and_nothing_stored() {
    let server = TestServer::start().await;
    let admin = &server.admin;
    let cases = [
        (
            json!({"id": "x", "definition": {"launch": {"mode": "process", "command": "/bin/sh", "args": ["-c", "id"]}}}),
            400,
            "allow",
        ),
        (
            json!({"id": "x", "definition": {"launch": {"mode": "process", "command": "npx", "args": ["-y @scope/pkg"]}}}),
            400,
            "one",
        ),
        (
            json!({"id": "x", "definition": {"launch": {"mode": "wasm", "file": "/nowhere/x.wasm"}}}),
            400,
            "no component file",
        ),
        (json!({"id": "../x", "definition": {"launch": wasm("metadata-echo")}}), 400, "invalid plugin id"),
        (json!({"id": "x"}), 422, "definition"),
        (
            json!({"id": "x", "definition": {"launch": wasm("metadata-echo"), "requestTimeoutMs": "soon"}}),
            422,
            "requestTimeoutMs",
        ),
        (
            json!({"id": "x", "definition": {"launch": wasm("metadata-echo"), "adminConfig": {"oauth_client_secret": "s"}}}),
            400,
            "oauth_client_secret",
        ),
    ];
    for (body, expected, says) in cases {
        let (status, refused) = server.post("/api/v1/plugins", admin, body.clone()).await;
        let message = refused["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(status, expected, "{body}: {refused}");
        assert!(message.contains(says), "{body}: {message}");
    }
    let (_, listed) = server.get("/api/v1/plugins", Some(admin)).await;
    assert_eq!(listed["plugins"], json!([]), "a refused registration stored something");
    let (status, malformed) = server
        .raw(|client| {
            client
                .post(server.url("/api/v1/plugins"))
                .bearer_auth(admin)
                .header("content-type", "application/json")
                .body("{\"id\": ")
        })
        .await;
    assert_eq!(status, 400, "{malformed}");
    assert!(malformed["error"]["message"].as_str().unwrap().contains("not valid JSON"), "{malformed}");
    let (status, not_json) =
        server.raw(|client| client.post(server.url("/api/v1/plugins")).bearer_auth(admin).body("id=x")).await;
    assert_eq!(status, 415, "{not_json}");
    let huge = "x".repeat(2 << 20);
    // A client of its own: the server closes the connection of a body it did not read.
    let (status, too_large) = server
        .raw(|_| {
            reqwest::Client::new()
                .post(server.url("/api/v1/plugins"))
                .bearer_auth(admin)
                .header("content-type", "application/json")
                .body(format!("{{\"id\": \"{huge}\"}}"))
        })
        .await;
    assert_eq!(status, 413, "{too_large}");
    assert!(too_large["error"]["message"].as_str().unwrap().contains("larger"), "{too_large}");
    let (status, unknown) = server.post("/api/v1/plugins/ghost/enable", admin, json!({})).await;
    assert_eq!(status, 404, "{unknown}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_with_a_users_token_or_for_another_user_every_route_is_refused() {
    let server = TestServer::start().await;
    add(&server, "sync", "sync-echo", &["library:read"]).await;
    let ann = server.user_token("ann");
    let (status, connected) = server.post("/api/v1/connections/sync/token", &ann, json!({"token": "t0ken-ann"})).await;
    assert_eq!(status, 200, "{connected}");
    let routes: Vec<(Method, &str, bool)> = vec![
        (Method::GET, "/api/v1/plugins", true),
        (Method::POST, "/api/v1/plugins", true),
        (Method::GET, "/api/v1/plugins/sync", true),
        (Method::PUT, "/api/v1/plugins/sync", true),
        (Method::DELETE, "/api/v1/plugins/sync", true),
        (Method::POST, "/api/v1/plugins/sync/enable", true),
        (Method::POST, "/api/v1/plugins/sync/disable", true),
        (Method::POST, "/api/v1/plugins/sync/reset", true),
        (Method::POST, "/api/v1/plugins/sync/test", true),
        (Method::PUT, "/api/v1/plugins/sync/config", true),
        (Method::PUT, "/api/v1/plugins/sync/credentials", true),
        (Method::PUT, "/api/v1/plugins/sync/permissions", true),
        (Method::PUT, "/api/v1/plugins/sync/search-settings", true),
        (Method::POST, "/api/v1/libraries/manga/auto-match", true),
        (Method::POST, "/api/v1/release-sources/x/poll", true),
        (Method::GET, "/api/v1/connections", false),
        (Method::GET, "/api/v1/connections/sync", false),
        (Method::PUT, "/api/v1/connections/sync", false),
        (Method::DELETE, "/api/v1/connections/sync", false),
        (Method::POST, "/api/v1/connections/sync/token", false),
        (Method::POST, "/api/v1/connections/sync/oauth", false),
        (Method::GET, "/api/v1/connections/sync/sync", false),
        (Method::POST, "/api/v1/connections/sync/sync", false),
        (Method::GET, "/api/v1/libraries", false),
        (Method::GET, "/api/v1/libraries/manga/series", false),
        (Method::GET, "/api/v1/series/manga-berserk", false),
        (Method::POST, "/api/v1/series/manga-berserk/search", false),
        (Method::POST, "/api/v1/series/manga-berserk/apply", false),
        (Method::GET, "/api/v1/recommendations", false),
        (Method::POST, "/api/v1/recommendations/refresh", false),
        (Method::POST, "/api/v1/recommendations/dismiss", false),
        (Method::GET, "/api/v1/release-sources", false),
        (Method::GET, "/api/v1/releases", false),
        (Method::GET, "/api/v1/tracked-series", false),
        (Method::GET, "/api/v1/jobs", false),
        (Method::GET, "/api/v1/jobs/x", false),
        (Method::GET, "/api/v1/jobs/x/events", false),
    ];
    let bob = server.user_token("bob");
    for (method, path, admin_only) in &routes {
        let (status, refused) = server.send(method.clone(), path, None, Some(json!({}))).await;
        assert_eq!(status, 401, "{method} {path} without a token: {refused}");
        let (status, refused) = server
            .send(method.clone(), path, Some("cph_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), Some(json!({})))
            .await;
        assert_eq!(status, 401, "{method} {path} with an unknown token: {refused}");
        if *admin_only {
            let (status, refused) = server.send(method.clone(), path, Some(&bob), Some(json!({}))).await;
            assert_eq!(status, 403, "{method} {path} with a user's token: {refused}");
        }
    }
    // Bob names ann: as if she did not exist; her connection, sync and settings are untouched.
    for (method, path, body) in [
        (Method::GET, "/api/v1/connections?user=ann", None),
        (Method::GET, "/api/v1/connections/sync?user=ann", None),
        (Method::PUT, "/api/v1/connections/sync", Some(json!({"user": "ann", "config": {}}))),
        (Method::DELETE, "/api/v1/connections/sync?user=ann", None),
        (Method::POST, "/api/v1/connections/sync/token", Some(json!({"user": "ann", "token": "mine"}))),
        (Method::POST, "/api/v1/connections/sync/oauth?user=ann", None),
        (Method::POST, "/api/v1/connections/sync/sync", Some(json!({"user": "ann"}))),
        (Method::GET, "/api/v1/connections/sync/sync?user=ann", None),
        (Method::GET, "/api/v1/recommendations?user=ann", None),
        (Method::POST, "/api/v1/recommendations/dismiss", Some(json!({"user": "ann", "externalId": "x"}))),
    ] {
        let (status, refused) = server.send(method.clone(), path, Some(&bob), body).await;
        assert_eq!(status, 404, "bob: {method} {path}: {refused}");
    }
    let (_, own) = server.get("/api/v1/connections", Some(&ann)).await;
    assert_eq!(own["connections"][0]["credentials"], json!(["access_token"]), "{own}");
    // Ann's sync job is hers: bob does not see it, the admin does.
    let (status, job) = server.post("/api/v1/connections/sync/sync", &ann, json!({})).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap();
    let (status, _) = server.get(&format!("/api/v1/jobs/{id}"), Some(&bob)).await;
    assert_eq!(status, 404);
    let (_, listed) = server.get("/api/v1/jobs", Some(&bob)).await;
    assert_eq!(listed["jobs"], json!([]));
    let done = server.finished_job(id, &server.admin).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    // A change with the page's cookie instead of the header is refused (CSRF).
    let (status, refused) = server
        .raw(|client| {
            client
                .post(server.url("/api/v1/connections/sync/sync"))
                .header("cookie", format!("codex_token={ann}"))
                .json(&json!({}))
        })
        .await;
    assert_eq!(status, 403, "{refused}");
    let (status, read) = server
        .raw(|client| client.get(server.url("/api/v1/connections")).header("cookie", format!("codex_token={ann}")))
        .await;
    assert_eq!((status, read["user"].clone()), (200, json!("ann")), "the cookie reads: {read}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_connects_syncs_and_follows_the_job_to_its_end() {
    let server = TestServer::start().await;
    add(&server, "sync", "sync-echo", &["library:read"]).await;
    let ann = server.user_token("ann");
    let (status, refused) = server
        .send(
            Method::PUT,
            "/api/v1/connections/sync",
            Some(&ann),
            Some(json!({"config": {"_codex": {"autoSync": "yes"}}})),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("_codex.autoSync"), "{refused}");
    let (status, configured) = server
        .send(Method::PUT, "/api/v1/connections/sync", Some(&ann), Some(json!({"config": {"syncMode": "pull"}})))
        .await;
    assert_eq!((status, configured["config"].clone()), (200, json!({"syncMode": "pull"})), "{configured}");
    let (status, connected) = server.post("/api/v1/connections/sync/token", &ann, json!({"token": "t0ken-ann"})).await;
    assert_eq!(status, 200, "{connected}");
    assert!(connected["account"]["username"].is_string(), "the plugin told who the account is: {connected}");
    let (status, job) = server.post("/api/v1/connections/sync/sync", &ann, json!({})).await;
    assert_eq!((status, job["kind"].clone(), job["status"].clone()), (202, json!("sync"), json!("running")), "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    // Followed as server-sent events: progress, then one `done`, then the stream ends.
    let events = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/jobs/{id}/events")))
        .bearer_auth(&ann)
        .send()
        .await
        .unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let text = events.text().await.unwrap();
    let done: Vec<&str> = text.lines().filter(|line| *line == "event: done").collect();
    assert_eq!(done.len(), 1, "{text}");
    let last_data = text.lines().filter_map(|line| line.strip_prefix("data: ")).next_back().unwrap();
    let last: Value = serde_json::from_str(last_data).unwrap();
    assert_eq!(last["status"], "succeeded", "{last}");
    assert!(last["result"]["pulled"].as_u64().unwrap() > 0, "{last}");
    assert!(last["updates"].as_u64().unwrap() > 0, "progress was reported: {last}");
    let (status, record) = server.get("/api/v1/connections/sync/sync", Some(&ann)).await;
    assert_eq!(status, 200);
    assert_eq!(
        (record["running"].clone(), record["lastResult"]["pulled"].clone()),
        (json!(false), last["result"]["pulled"].clone()),
        "{record}"
    );
    let (status, _) = server.send(Method::DELETE, "/api/v1/connections/sync", Some(&ann), None).await;
    assert_eq!(status, 204);
    let (status, gone) = server.get("/api/v1/connections/sync", Some(&ann)).await;
    assert_eq!(status, 404, "{gone}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_is_searched_previewed_applied_and_a_library_auto_matched() {
    let server = TestServer::start().await;
    add(&server, "echo", "metadata-echo", &["metadata:write:*"]).await;
    let ann = server.user_token("ann");
    let (status, libraries) = server.get("/api/v1/libraries", Some(&ann)).await;
    assert_eq!((status, libraries["libraries"].as_array().unwrap().len()), (200, 2), "{libraries}");
    let (status, page) = server.get("/api/v1/libraries/manga/series?limit=2", Some(&ann)).await;
    assert_eq!((status, page["series"].as_array().unwrap().len()), (200, 2), "{page}");
    assert!(page["next"].is_string(), "{page}");
    let (status, shown) = server.get("/api/v1/series/manga-berserk", Some(&ann)).await;
    assert_eq!(status, 200);
    assert!(!shown["books"].as_array().unwrap().is_empty(), "{shown}");
    let (status, found) = server.post("/api/v1/series/manga-one-piece/search", &ann, json!({"plugin": "echo"})).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        (found["query"]["query"].clone(), found["results"][0]["externalId"].clone()),
        (json!("One Piece"), json!("one-piece-0")),
        "{found}"
    );
    // A change to the search settings reaches the next search at once.
    let settings = json!({"searchTemplate": "{{metadata.title}} manga"});
    let path = "/api/v1/plugins/echo/search-settings";
    let (status, saved) = server.send(Method::PUT, path, Some(&server.admin), Some(settings)).await;
    assert_eq!(status, 200, "{saved}");
    let (_, found) = server.post("/api/v1/series/manga-one-piece/search", &ann, json!({"plugin": "echo"})).await;
    assert_eq!(found["query"]["query"], json!("One Piece manga"), "{found}");
    let before = library(&server).series("manga-berserk").unwrap();
    let (status, preview) = server
        .post(
            "/api/v1/series/manga-berserk/apply",
            &ann,
            json!({"plugin": "echo", "externalId": "berserk-0", "dryRun": true}),
        )
        .await;
    assert_eq!((status, preview["written"].clone()), (200, json!(false)), "{preview}");
    assert_eq!(library(&server).series("manga-berserk").unwrap(), before, "a preview wrote");
    let (status, applied) = server
        .post("/api/v1/series/manga-berserk/apply", &ann, json!({"plugin": "echo", "externalId": "berserk-0"}))
        .await;
    assert_eq!((status, applied["written"].clone()), (200, json!(true)), "{applied}");
    assert_eq!(applied["changes"], preview["changes"], "the apply did what the preview showed");
    assert_eq!(library(&server).series("manga-berserk").unwrap().metadata.genres, ["Adventure", "Science Fiction"]);
    for (path, body, expected) in [
        ("/api/v1/series/manga-nope/search", json!({"plugin": "echo"}), 404),
        ("/api/v1/series/manga-berserk/search", json!({"plugin": "ghost"}), 404),
        ("/api/v1/series/manga-berserk/search", json!({"plugin": "echo", "limit": 0}), 400),
        ("/api/v1/series/manga-berserk/apply", json!({"plugin": "echo", "externalId": " "}), 400),
        ("/api/v1/series/manga-berserk/apply", json!({"plugin": "echo"}), 422),
    ] {
        let before = library(&server).series("manga-berserk").unwrap();
        let (status, refused) = server.post(path, &ann, body.clone()).await;
        assert_eq!(status, expected, "{path} {body}: {refused}");
        assert_eq!(library(&server).series("manga-berserk").unwrap(), before);
    }
    let (status, job) = server
        .post("/api/v1/libraries/manga/auto-match", &server.admin, json!({"plugin": "echo", "dryRun": true}))
        .await;
    assert_eq!(status, 202, "{job}");
    let done = server.finished_job(job["id"].as_str().unwrap(), &server.admin).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["progress"]["total"].as_u64().unwrap() > 0, "{done}");
    assert_eq!(done["progress"]["done"], done["progress"]["total"], "{done}");
    let (status, unknown) =
        server.post("/api/v1/libraries/nope/auto-match", &server.admin, json!({"plugin": "echo"})).await;
    assert_eq!(status, 404, "{unknown}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommendations_are_listed_refreshed_and_one_dismissed() {
    let server = TestServer::start().await;
    add(&server, "recs", "recommendations-echo", &["library:read"]).await;
    let ann = server.user_token("ann");
    let library = library(&server);
    codex_plugin_host_tests::integrations::finished(&library, "ann", &["manga-one-piece-v01", "manga-berserk-v01"]);
    let (status, connected) = server.post("/api/v1/connections/recs/token", &ann, json!({"token": "t0ken"})).await;
    assert_eq!(status, 200, "{connected}");
    let (status, refreshed) = server.post("/api/v1/recommendations/refresh", &ann, json!({})).await;
    assert_eq!(status, 200, "{refreshed}");
    let ids = |list: &Value| -> Vec<String> {
        list["recommendations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|merged| merged["externalId"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, listed) = server.get("/api/v1/recommendations", Some(&ann)).await;
    assert!(ids(&listed).contains(&"more-manga-berserk".to_owned()), "{listed}");
    let (status, dismissed) = server
        .post(
            "/api/v1/recommendations/dismiss",
            &ann,
            json!({"externalId": "more-manga-berserk", "reason": "not_interested"}),
        )
        .await;
    assert_eq!(status, 200, "{dismissed}");
    assert_eq!(dismissed["told"], json!(["recs"]), "{dismissed}");
    let (_, listed) = server.get("/api/v1/recommendations", Some(&ann)).await;
    assert!(!ids(&listed).contains(&"more-manga-berserk".to_owned()), "{listed}");
    let (status, refused) =
        server.post("/api/v1/recommendations/dismiss", &ann, json!({"externalId": "x", "reason": 5})).await;
    assert_eq!(status, 422, "{refused}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_sources_are_listed_polled_as_a_job_and_their_releases_shown() {
    let server = TestServer::start().await;
    add(&server, "echo", "release-echo", &[]).await;
    let admin = server.admin.clone();
    let mut sources = Value::Null;
    for _ in 0..100 {
        let (_, listed) = server.get("/api/v1/release-sources", Some(&admin)).await;
        sources = listed["sources"].clone();
        if sources.as_array().is_some_and(|sources| sources.len() == 2) {
            break;
        }
        // Enabled, it was started to register its sources.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let source = sources
        .as_array()
        .unwrap()
        .iter()
        .find(|source| source["sourceKey"] == "a")
        .unwrap_or_else(|| panic!("{sources}"));
    let id = source["id"].as_str().unwrap();
    let (status, job) = server.post(&format!("/api/v1/release-sources/{id}/poll"), &admin, json!({})).await;
    assert_eq!(status, 202, "{job}");
    let done = server.finished_job(job["id"].as_str().unwrap(), &admin).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["result"]["counts"]["recorded"].as_u64().unwrap() > 0, "{done}");
    let ann = server.user_token("ann");
    let (status, releases) = server.get(&format!("/api/v1/releases?source={id}&limit=100"), Some(&ann)).await;
    assert_eq!(status, 200, "{releases}");
    assert_eq!(
        releases["releases"].as_array().unwrap().len() as u64,
        done["result"]["counts"]["recorded"].as_u64().unwrap(),
        "{releases}"
    );
    let (status, tracked) = server.get("/api/v1/tracked-series", Some(&ann)).await;
    assert_eq!(status, 200);
    assert!(tracked["total"].as_u64().unwrap() > 0, "{tracked}");
    let (status, unknown) = server.post("/api/v1/release-sources/nope/poll", &admin, json!({})).await;
    assert_eq!(status, 404, "{unknown}");
    let (status, bad) = server.get("/api/v1/releases?limit=0", Some(&ann)).await;
    assert_eq!(status, 400, "{bad}");
    let (status, bad) = server.get("/api/v1/releases?state=announce", Some(&ann)).await;
    assert_eq!(status, 400, "a misspelt state is refused, not an empty list: {bad}");
    assert!(bad["error"]["message"].as_str().unwrap().contains("`announce` is not a ledger state"), "{bad}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_connects_by_oauth_through_the_servers_callback_once() {
    let provider = AuthorizationServer::start(true, 3600);
    let server = TestServer::start().await;
    let admin_config = json!({
        "manifest": {"oauth": {
            "authorizationUrl": provider.url("/auth"),
            "tokenUrl": provider.url("/token"),
            "scopes": ["openid", "offline_access"], "clientId": "codex-host"
        }},
        "capabilities": {"userReadSync": true},
        "answers": {"sync/getUserInfo": {"externalId": "ann-1", "username": "ann"}, "ping": "pong"}
    });
    let definition = json!({
        "launch": {"mode": "process", "command": "node", "args": [wire_recorder()]},
        "adminConfig": admin_config,
        "allowInternalAddresses": true,
    });
    let (status, added) = server
        .post("/api/v1/plugins", &server.admin, json!({"id": "tracker", "definition": definition, "enable": true}))
        .await;
    assert_eq!(status, 201, "{added}");
    let ann = server.user_token("ann");
    let started =
        server.raw(|client| client.post(server.url("/api/v1/connections/tracker/oauth")).bearer_auth(&ann)).await;
    assert_eq!(started.0, 200, "{}", started.1);
    let started = started.1;
    let redirect = server.url("/oauth/callback");
    assert_eq!(started["redirectUri"], redirect.as_str(), "the redirect is built from the public URL: {started}");
    let url = started["authorizationUrl"].as_str().unwrap();
    // A browser that did not start the flow (a victim sent the address) cannot finish it.
    let (callback, status, page) = provider.authorize_as(url, None);
    assert!(callback.starts_with(&redirect), "the provider sent the browser back to the server: {callback}");
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("not started in this browser"), "{page}");
    let (_, connection) = server.get("/api/v1/connections/tracker", Some(&ann)).await;
    assert_eq!(connection["connected"], false, "{connection}");
    // The browser that started it, with its cookie, finishes it; no token needed.
    let cookie = server.last_cookie("codex_oauth").expect("the start set the binding cookie");
    let started =
        server.raw(|client| client.post(server.url("/api/v1/connections/tracker/oauth")).bearer_auth(&ann)).await.1;
    let cookie_now = server.last_cookie("codex_oauth").unwrap();
    assert_ne!(cookie, cookie_now, "each flow has a binding of its own");
    let (callback, status, page) = provider
        .authorize_as(started["authorizationUrl"].as_str().unwrap(), Some(&format!("codex_oauth={cookie_now}")));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Connected") && page.contains("ann"), "{page}");
    let (_, connection) = server.get("/api/v1/connections/tracker", Some(&ann)).await;
    assert_eq!(
        (connection["connected"].clone(), connection["credentials"].clone()),
        (json!(true), json!(["access_token"])),
        "{connection}"
    );
    // The same callback again is refused, and the connection stays as it is.
    let again = reqwest::Client::new()
        .get(&callback)
        .header("cookie", format!("codex_oauth={cookie_now}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    let (_, after) = server.get("/api/v1/connections/tracker", Some(&ann)).await;
    assert_eq!(after, connection, "a second callback changed the connection");
    let no_state = reqwest::get(server.url("/oauth/callback?code=x")).await.unwrap();
    assert_eq!(no_state.status(), 400);
    server.stop().await;
}
