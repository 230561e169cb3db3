//! A real server for the API tests: `serve` over a host with a real database file, the
//! sample library imported and a vault key, on a loopback port; an admin token and users'
//! tokens made as `token create` makes them; a client sending real HTTP requests.

use codex_plugin_host::access::Principal;
use codex_plugin_host::host::HostConfig;
use codex_plugin_host::library::{LibraryFile, SqliteLibrary};
use codex_plugin_host::server::{RunningServer, ServerConfig, Services};
use codex_plugin_host::transport::process::CommandAllowlist;
use codex_plugin_host::vault::EncryptionKey;
use serde_json::Value;
use std::time::Duration;

use crate::binary_dir;
use crate::integrations::sample_library;

/// A server running on a loopback port until [`TestServer::stop`].
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub address: std::net::SocketAddr,
    pub admin: String,
    client: reqwest::Client,
    running: Option<RunningServer>,
}

/// The last value each cookie name was set to by any answer (tests read the OAuth binding).
static LAST_COOKIES: std::sync::Mutex<std::collections::BTreeMap<String, String>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// A status and its JSON body (`Value::Null` when the body is not JSON).
pub type Answer = (u16, Value);

impl TestServer {
    /// A server whose library is the sample library and whose process plugins may run
    /// `node` and the example binaries.
    pub async fn start() -> Self {
        Self::configured(|_| {}).await
    }

    /// [`TestServer::start`] with the host's configuration changed by `configure`.
    pub async fn configured(configure: impl FnOnce(&mut HostConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("vault.key");
        std::fs::write(&key_file, EncryptionKey::generate()).unwrap();
        std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let mut config = HostConfig::new(dir.path().join("data"));
        config.allowlist = CommandAllowlist::default().with_plugins_dir(binary_dir()).allow("node");
        config.key_file = Some(key_file);
        configure(&mut config);
        let services = Services::open(config).unwrap();
        let library = SqliteLibrary::open(&services.host.database_path()).unwrap();
        LibraryFile::parse(&sample_library()).unwrap().import(&library).unwrap();
        let (_, admin) = services.tokens.create(&Principal::Admin, Some("tests")).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let public_url = url::Url::parse(&format!("http://{address}/")).unwrap();
        let running = RunningServer::spawn(listener, services, ServerConfig { public_url });
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(120)).build().unwrap();
        Self { dir, address, admin, client, running: Some(running) }
    }

    /// A new token for `user`, as `token create --user` makes one.
    pub fn user_token(&self, user: &str) -> String {
        let database = self.dir.path().join("data").join(codex_plugin_host::host::DATABASE_FILE);
        let tokens = codex_plugin_host::access::store::TokenStore::open(&database).unwrap();
        tokens.create(&Principal::User(user.into()), None).unwrap().1
    }

    /// The value the server last set the cookie `name` to, in any test of this binary.
    pub fn last_cookie(&self, name: &str) -> Option<String> {
        LAST_COOKIES.lock().unwrap().get(name).cloned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// `GET path` with `token` (none: without one).
    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    /// `method path` with `token` and a JSON body.
    pub async fn send(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.unwrap()).await
    }

    /// `POST path` as the admin with a JSON body.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(token), Some(body)).await
    }

    /// A request of any shape, sent as built by `build` on this server's client.
    pub async fn raw(&self, build: impl FnOnce(&reqwest::Client) -> reqwest::RequestBuilder) -> Answer {
        answer(build(&self.client).send().await.unwrap()).await
    }

    /// Polls the job `id` until it ends; answers its last state.
    pub async fn finished_job(&self, id: &str, token: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let (status, job) = self.get(&format!("/api/v1/jobs/{id}"), Some(token)).await;
            assert_eq!(status, 200, "{job}");
            if job["status"] != "running" {
                return job;
            }
            assert!(tokio::time::Instant::now() < deadline, "job {id} did not end: {job}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server as a signal would, and waits for its clean stop.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.unwrap();
        }
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    for cookie in response.headers().get_all("set-cookie") {
        if let Some((name, rest)) = cookie.to_str().unwrap_or_default().split_once('=') {
            let value = rest.split(';').next().unwrap_or_default();
            LAST_COOKIES.lock().unwrap().insert(name.to_owned(), value.to_owned());
        }
    }
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}
