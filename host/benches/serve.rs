//! What the server adds to a plugin call: `POST /api/v1/series/{id}/search` with
//! metadata-echo (wasm) over loopback HTTP, against the same search through the library
//! API (`Pipeline::search_series`, which the route calls) in the same run, with 1 and 64
//! clients.
//!
//!     cargo bench -p codex-plugin-host --bench serve
//!
//! The server is `serve` itself (every layer, the token checked on every request, the
//! series read from a real database file) on a two-worker runtime, on a loopback port.
//! The HTTP clients are another program's: a runtime of their own on a thread of their
//! own, each a connection (hyper's HTTP/1.1 client, TCP_NODELAY) kept alive, as a program
//! would keep one; they share this machine's two cores with the server, so each HTTP
//! figure includes the client's own work (a request written, an answer read and parsed as
//! JSON) and can read high, never low. The library API's clients are tasks on the
//! server's runtime, where a server's own code calls it. Rounds alternate which path goes
//! first; every figure is the median of its rounds.

mod common;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

use codex_plugin_host::access::Principal;
use codex_plugin_host::host::HostConfig;
use codex_plugin_host::library::{LibraryFile, SqliteLibrary};
use codex_plugin_host::metadata::settings::{MetadataSettings, Target};
use codex_plugin_host::pipeline::Pipeline;
use codex_plugin_host::plugin::PluginId;
use codex_plugin_host::registry::{Launch, PluginDefinition};
use codex_plugin_host::server::{RunningServer, ServerConfig, Services};
use common::{build_component, micros, middle};

/// Series in the library; clients search them in turn.
const SERIES: usize = 1_000;
/// Calls each client makes in a round, after its warm-up, by number of clients.
const CALLS: [(usize, usize); 2] = [(1, 4_000), (64, 400)];
const WARM_UP: usize = 50;
const ROUNDS: usize = 5;
const PLUGIN: &str = "echo";

fn main() {
    let component = build_component("metadata-echo");
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let data = tempfile::tempdir().expect("a temporary directory");
    let rows = runtime.block_on(async {
        let services = open(data.path(), component);
        let pipeline = services.pipeline.clone();
        let token = services.tokens.create(&Principal::User("reader".into()), Some("bench")).expect("a token").1;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let address = listener.local_addr().expect("an address");
        let public_url = url::Url::parse(&format!("http://{address}/")).expect("a URL");
        let server = RunningServer::spawn(listener, services, ServerConfig { public_url });
        let http = Http { address, token };
        let mut rows = Vec::new();
        for (clients, calls) in CALLS {
            let mut rounds: [Vec<Round>; 3] = Default::default();
            for round in 0..ROUNDS {
                // Each path goes first, second and third in turn.
                for path in (0..3).map(|step| (round + step) % 3) {
                    rounds[path].push(match path {
                        0 => through_library(&pipeline, clients, calls).await,
                        1 => http.measure(clients, calls, Endpoint::Search).await,
                        _ => http.measure(clients, calls, Endpoint::WhoAmI).await,
                    });
                }
            }
            let [library, search, floor] = rounds.map(median);
            rows.push(Rows { clients, library, search, floor });
        }
        drop(pipeline);
        server.stop().await.expect("the server stops cleanly");
        rows
    });
    println!("| clients | path | calls/s | p50 | p99 |");
    println!("|---|---|---|---|---|");
    for rows in &rows {
        let paths = [
            ("library API: `Pipeline::search_series`", &rows.library),
            ("HTTP API: `POST /series/{id}/search`", &rows.search),
            ("HTTP API, no plugin: `GET /whoami`", &rows.floor),
        ];
        for (path, row) in paths {
            println!(
                "| {} | {path} | {:.0} | {:.1} µs | {:.1} µs |",
                rows.clients,
                row.per_second,
                micros(row.p50),
                micros(row.p99)
            );
        }
    }
    println!();
    println!("| clients | HTTP adds at p50 | HTTP adds at p99 | HTTP calls/s vs library |");
    println!("|---|---|---|---|");
    for Rows { clients, library, search, .. } in &rows {
        println!(
            "| {clients} | {:+.1} µs | {:+.1} µs | {:.2}x |",
            micros(search.p50) - micros(library.p50),
            micros(search.p99) - micros(library.p99),
            search.per_second / library.per_second
        );
    }
}

/// One number of clients' figures.
struct Rows {
    clients: usize,
    library: Round,
    search: Round,
    /// An HTTP round trip with its token check, and nothing else.
    floor: Round,
}

/// A host over `data` with metadata-echo registered (allowed to write series metadata) and
/// a library of [`SERIES`] series.
fn open(data: &std::path::Path, component: std::path::PathBuf) -> Services {
    let key_file = data.join("vault.key");
    std::fs::write(&key_file, codex_plugin_host::vault::EncryptionKey::generate()).expect("a key file");
    std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("its mode");
    let mut config = HostConfig::new(data.join("data"));
    config.key_file = Some(key_file);
    let services = Services::open(config).expect("the host opens");
    let registry = services.host.registry();
    registry
        .add(&PluginId::new(PLUGIN).expect("valid"), &PluginDefinition::new(Launch::Wasm { file: component }))
        .expect("registered");
    let settings = MetadataSettings {
        permissions: vec!["metadata:write:*".into()],
        targets: Some(vec![Target::Series]),
        ..MetadataSettings::default()
    };
    registry.set_metadata_settings(PLUGIN, &settings).expect("settings");
    let series: Vec<Value> =
        (0..SERIES).map(|index| json!({"id": series_id(index), "name": format!("Series {index} (Digital)")})).collect();
    let file: LibraryFile = serde_json::from_value(json!({
        "format": "codex-plugin-host/library", "version": 1,
        "libraries": [{"id": "bench", "name": "Bench", "series": series}]
    }))
    .expect("a valid library file");
    file.import(&SqliteLibrary::open(&services.host.database_path()).expect("the library opens")).expect("imported");
    services
}

fn series_id(index: usize) -> String {
    format!("bench-{:04}", index % SERIES)
}

/// One round of one path: calls per second over all clients, and each call's latency.
struct Round {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// A call's future.
type Call = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs `clients` clients of `calls` calls each (after a warm-up), made by `call`.
async fn clients_round<C, F>(clients: usize, calls: usize, make_client: impl Fn() -> C, call: F) -> Round
where
    C: Send + Sync + 'static,
    F: Fn(Arc<C>, String) -> Call + Send + Copy + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let tasks: Vec<_> = (0..clients)
        .map(|client_index| {
            let client = Arc::new(make_client());
            let barrier = barrier.clone();
            tokio::spawn(async move {
                for index in 0..WARM_UP {
                    call(client.clone(), series_id(client_index * 7 + index)).await;
                }
                barrier.wait().await;
                let mut latencies = Vec::with_capacity(calls);
                for index in 0..calls {
                    let started = Instant::now();
                    call(client.clone(), series_id(client_index * 131 + index)).await;
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    barrier.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(clients * calls);
    for task in tasks {
        latencies.extend(task.await.expect("a client"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Round {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: latencies[latencies.len() / 2],
        p99: latencies[latencies.len() * 99 / 100],
    }
}

async fn through_library(pipeline: &Pipeline, clients: usize, calls: usize) -> Round {
    let pipeline = pipeline.clone();
    clients_round(
        clients,
        calls,
        move || pipeline.clone(),
        |pipeline: Arc<Pipeline>, series| -> Call {
            Box::pin(async move {
                let found = pipeline.search_series(PLUGIN, &series, None).await.expect("a search");
                assert!(!found.results.is_empty(), "metadata-echo found nothing for {series}");
            })
        },
    )
    .await
}

/// The server's address and a user's token.
struct Http {
    address: std::net::SocketAddr,
    token: String,
}

impl Http {
    /// A round from a program of its own: the clients run on a runtime of their own, on
    /// a thread of their own, as another process's would (the server's workers are the
    /// host's alone).
    async fn measure(&self, clients: usize, calls: usize, endpoint: Endpoint) -> Round {
        let (address, token) = (self.address, self.token.clone());
        let program = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                let mut connections = Vec::with_capacity(clients);
                for _ in 0..clients {
                    connections.push(HttpClient::connect(address, &token).await);
                }
                let connections = std::sync::Mutex::new(connections);
                let make_client = || connections.lock().expect("not poisoned").pop().expect("a connection per client");
                clients_round(clients, calls, make_client, move |client: Arc<HttpClient>, series| -> Call {
                    Box::pin(async move { client.call(endpoint, series).await })
                })
                .await
            })
        });
        tokio::task::spawn_blocking(move || program.join().expect("the clients ran")).await.expect("joined")
    }
}

/// One program's connection to the server (HTTP/1.1, kept alive): hyper's client, the
/// least a program can put between itself and the server.
struct HttpClient {
    sender: tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
    host: http::HeaderValue,
    authorization: http::HeaderValue,
}

impl HttpClient {
    async fn connect(address: std::net::SocketAddr, token: &str) -> Self {
        let stream = tokio::net::TcpStream::connect(address).await.expect("the server accepts");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let (sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("an HTTP/1.1 connection");
        tokio::spawn(connection);
        Self {
            sender: tokio::sync::Mutex::new(sender),
            host: http::HeaderValue::from_str(&address.to_string()).expect("a header"),
            authorization: http::HeaderValue::from_str(&format!("Bearer {token}")).expect("a header"),
        }
    }

    async fn call(&self, endpoint: Endpoint, series: String) {
        let request = match endpoint {
            Endpoint::Search => {
                let body = serde_json::to_vec(&json!({"plugin": PLUGIN})).expect("a body");
                http::Request::post(format!("/api/v1/series/{series}/search"))
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from(body)))
            }
            Endpoint::WhoAmI => http::Request::get("/api/v1/whoami").body(Full::new(Bytes::new())),
        };
        let mut request = request.expect("a request");
        let headers = request.headers_mut();
        headers.insert(http::header::HOST, self.host.clone());
        headers.insert(http::header::AUTHORIZATION, self.authorization.clone());
        let answer = self.sender.lock().await.send_request(request).await.expect("the server answers");
        let status = answer.status();
        let bytes = answer.into_body().collect().await.expect("the whole answer").to_bytes();
        let body: Value = serde_json::from_slice(&bytes).expect("a JSON answer");
        assert_eq!(status, 200, "{body}");
        let answered = match endpoint {
            Endpoint::Search => body["results"].as_array().is_some_and(|results| !results.is_empty()),
            Endpoint::WhoAmI => body["user"] == "reader",
        };
        assert!(answered, "not the answer expected: {body}");
    }
}

/// What the HTTP clients ask.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    /// A search with metadata-echo: the call measured.
    Search,
    /// Who the token is: the server's floor (a round trip and its token check).
    WhoAmI,
}

fn median(rounds: Vec<Round>) -> Round {
    let per_second = middle(rounds.iter().map(|round| round.per_second));
    let p50 = middle(rounds.iter().map(|round| round.p50));
    let p99 = middle(rounds.iter().map(|round| round.p99));
    Round { per_second, p50, p99 }
}
