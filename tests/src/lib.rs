//! Shared pieces of the end-to-end tests: where the test plugins are, and a host with a
//! real SQLite file in a temporary directory that starts real processes.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use codex_plugin_host::limits::{StorageLimits, StorageQuota};
use codex_plugin_host::plugin::{Plugin, PluginError, PluginId, PluginSettings};
use codex_plugin_host::protocol::methods::SeriesSearch;
use codex_plugin_host::protocol::types::initialize::InitializeParams;
use codex_plugin_host::protocol::types::metadata::{SearchResponse, SeriesSearchParams};
use codex_plugin_host::sandbox::{Confinement, Sandbox, SandboxConfig};
use codex_plugin_host::storage::handler::StorageHandler;
use codex_plugin_host::storage::{SqliteStorage, StorageScope};
use codex_plugin_host::transport::ShutdownPolicy;
use codex_plugin_host::transport::process::{self, CommandAllowlist, ProcessSpec};
use codex_plugin_host::transport::wasm::disk_quota::DiskLimits;
use codex_plugin_host::transport::wasm::http::HttpPolicy;
use codex_plugin_host::transport::wasm::{self, WasmComponent, WasmRuntime, WasmSpec};

pub mod browser;
pub mod feed_server;
pub mod integrations;
pub mod oauth_server;
pub mod server;
pub mod wire;

/// The repository's top folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the repository").to_path_buf()
}

/// Our own test plugin (`tests/plugins/test-plugin.mjs`), run with `node`.
pub fn test_plugin() -> String {
    repo_root().join("tests/plugins/test-plugin.mjs").to_string_lossy().into_owned()
}

/// `tests/plugins/wire-recorder.mjs`, run with `node` (see [`wire`]).
pub fn wire_recorder() -> String {
    repo_root().join("tests/plugins/wire-recorder.mjs").to_string_lossy().into_owned()
}

/// The published `@ashdev/codex-plugin-metadata-openlibrary@2.5.0`, fetched on first use
/// by `tests/fetch-plugins.sh` (npm pack and extract; never installed).
pub fn openlibrary() -> String {
    match fetched() {
        Ok(()) => {
            repo_root().join("tests/plugins/npm/metadata-openlibrary/dist/index.js").to_string_lossy().into_owned()
        }
        Err(why) => panic!("the published Open Library plugin is not available: {why}"),
    }
}

/// A published release plugin's script (`release-nyaa`, `release-mangaupdates`,
/// `release-tsundoku`), fetched on first use as [`openlibrary`] is.
pub fn release_plugin(name: &str) -> String {
    match fetched() {
        Ok(()) => repo_root().join(format!("tests/plugins/npm/{name}/dist/index.js")).to_string_lossy().into_owned(),
        Err(why) => panic!("the published {name} plugin is not available: {why}"),
    }
}

/// Runs `tests/fetch-plugins.sh` once per test process: the published plugins and the
/// OAuth test server's packages.
pub fn fetched() -> Result<(), String> {
    static FETCHED: OnceLock<Result<(), String>> = OnceLock::new();
    FETCHED
        .get_or_init(|| {
            let script = repo_root().join("tests/fetch-plugins.sh");
            let status = Command::new("bash")
                .arg(&script)
                .status()
                .map_err(|error| format!("running {}: {error}", script.display()))?;
            if !status.success() {
                return Err(format!("{} failed ({status}): npm and the npm registry are needed", script.display()));
            }
            Ok(())
        })
        .clone()
}

/// A host with its own data directory and SQLite file.
pub struct TestHost {
    dir: tempfile::TempDir,
    quota: Arc<StorageQuota>,
    sandbox: Sandbox,
}

impl Default for TestHost {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHost {
    pub fn new() -> Self {
        Self::in_dir(tempfile::tempdir().expect("a temporary directory"))
    }

    /// A host on an existing data directory, as after a restart.
    pub fn in_dir(dir: tempfile::TempDir) -> Self {
        let backend = SqliteStorage::open(&dir.path().join("host.sqlite3")).expect("the database opens");
        let quota = StorageQuota::new(Arc::new(backend), StorageLimits::default());
        let sandbox = Sandbox::new(SandboxConfig::default(), dir.path(), Vec::new());
        Self { dir, quota, sandbox }
    }

    /// The host's confinement of its plugins.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Stops this host and gives its data directory back, to start another on it.
    pub fn into_dir(self) -> tempfile::TempDir {
        self.dir
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts a plugin process with short shutdown steps and a 10 s call timeout;
    /// `adjust` can change the settings and the process spec.
    pub async fn start(
        &self,
        id: &str,
        command: &str,
        args: &[&str],
        adjust: impl FnOnce(&mut PluginSettings, &mut ProcessSpec),
    ) -> Result<Plugin, PluginError> {
        let id = PluginId::new(id).expect("a valid test plugin id");
        let sandbox = self
            .sandbox
            .prepare_process(id.as_str(), None, Confinement::default())
            .map_err(|error| PluginError::Launch { plugin: id.to_string(), why: error.to_string() })?;
        let initialize = InitializeParams::new(Default::default(), Default::default(), Default::default())
            .with_data_dir(sandbox.data_dir().to_string_lossy());
        let mut settings = test_settings(id, initialize);
        let mut spec = ProcessSpec {
            command: command.to_owned(),
            args: args.iter().map(|arg| arg.to_string()).collect(),
            env: Vec::new(),
            sandbox,
            working_dir: None,
            memory_limit_bytes: None,
        };
        adjust(&mut settings, &mut spec);
        let storage = StorageHandler::new(self.quota.scoped(StorageScope::plugin(settings.id.as_str())));
        let allowlist = CommandAllowlist::default().with_plugins_dir(binary_dir());
        let launched = process::spawn(&spec, &allowlist, settings.id.as_str())?;
        Plugin::start(launched, settings, Arc::new(storage)).await
    }

    /// Starts `tests/plugins/test-plugin.mjs` in a scenario; panics if it does not start.
    pub async fn test_plugin(&self, id: &str, scenario: &str) -> Plugin {
        self.test_plugin_with(id, scenario, |_, _| {}).await
    }

    pub async fn test_plugin_with(
        &self,
        id: &str,
        scenario: &str,
        adjust: impl FnOnce(&mut PluginSettings, &mut ProcessSpec),
    ) -> Plugin {
        let script = test_plugin();
        match self.start(id, "node", &[&script, scenario], adjust).await {
            Ok(plugin) => plugin,
            Err(error) => panic!("the test plugin did not start in scenario {scenario}: {error}"),
        }
    }

    /// Starts an example plugin of `guest-examples/` on a transport.
    pub async fn example(
        &self,
        example: &str,
        transport: Transport,
        adjust: impl FnOnce(&mut PluginSettings),
    ) -> Result<Plugin, PluginError> {
        self.example_granted(example, transport, Grants::default(), adjust).await
    }

    /// [`TestHost::example`] with what the admin granted it.
    pub async fn example_granted(
        &self,
        example: &str,
        transport: Transport,
        grants: Grants,
        adjust: impl FnOnce(&mut PluginSettings),
    ) -> Result<Plugin, PluginError> {
        let Grants { memory_limit_bytes, http, disk } = grants;
        match transport {
            Transport::Process => {
                let binary = example_binary(example);
                self.start(example, &binary, &[], |settings, spec| {
                    spec.memory_limit_bytes = memory_limit_bytes;
                    adjust(settings);
                })
                .await
            }
            Transport::Wasm => {
                let id = PluginId::new(example).expect("example names are valid ids");
                let plugin_dir = self.sandbox.wasm_dir(id.as_str(), None).expect("the data directory opens");
                let initialize = InitializeParams::new(Default::default(), Default::default(), Default::default())
                    .with_data_dir("/data");
                let mut settings = test_settings(id, initialize);
                adjust(&mut settings);
                let memory_limit_bytes = memory_limit_bytes
                    .map_or(wasm::DEFAULT_MEMORY_LIMIT_BYTES, |limit| usize::try_from(limit).unwrap_or(usize::MAX));
                let request_deadline = settings.timeouts.default_timeout();
                let spec = WasmSpec {
                    data_dir: Some(Arc::new(plugin_dir)),
                    memory_limit_bytes,
                    request_deadline,
                    http: Arc::new(http),
                    disk,
                };
                let storage = StorageHandler::new(self.quota.scoped(StorageScope::plugin(settings.id.as_str())));
                let launched = wasm::spawn(&wasm_component(example), &spec, settings.id.as_str())
                    .unwrap_or_else(|error| panic!("{example} did not start as a component: {error}"));
                Plugin::start(launched, settings, Arc::new(storage)).await
            }
        }
    }
}

/// What an admin grants an example beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// `RLIMIT_AS` for a process, the store limit for a wasm guest (default 64 MiB).
    pub memory_limit_bytes: Option<u64>,
    /// Where a wasm guest may send HTTP requests (process mode does not confine the network).
    pub http: HttpPolicy,
    /// What a wasm guest's `/data` may hold.
    pub disk: DiskLimits,
}

/// The two ways a plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Process,
    Wasm,
}

/// Short shutdown steps and a 10 s call timeout.
fn test_settings(id: PluginId, initialize: InitializeParams) -> PluginSettings {
    let mut settings = PluginSettings::new(id, initialize);
    settings.timeouts = codex_plugin_host::limits::Timeouts::new(Duration::from_secs(10));
    settings.shutdown = ShutdownPolicy {
        grace: Duration::from_secs(2),
        after_close_input: Duration::from_millis(300),
        after_terminate: Duration::from_millis(500),
    };
    settings
}

/// An example compiled to a component (built by cargo, once per test run), and loaded
/// once into this test binary's wasm runtime.
pub fn wasm_component(example: &str) -> WasmComponent {
    try_wasm_component(example).unwrap_or_else(|why| panic!("{why}"))
}

/// [`wasm_component`], with the host's refusal to load it as an error.
pub fn try_wasm_component(example: &str) -> Result<WasmComponent, String> {
    static RUNTIME: OnceLock<WasmRuntime> = OnceLock::new();
    static LOADED: Mutex<BTreeMap<String, WasmComponent>> = Mutex::new(BTreeMap::new());
    // Room for the largest memory a test grants a guest (256 MiB).
    let runtime = RUNTIME.get_or_init(|| WasmRuntime::with_capacity(1000, 256 << 20).expect("the wasm engine starts"));
    let mut loaded = LOADED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(component) = loaded.get(example) {
        return Ok(component.clone());
    }
    let component = runtime.load(&wasm_component_path(example)).map_err(|error| error.to_string())?;
    loaded.insert(example.to_owned(), component.clone());
    Ok(component)
}

/// Where an example's component is, built (by cargo, once per test run) if needed.
pub fn wasm_component_path(example: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(why) = BUILT.get_or_init(|| cargo_build(&["--target", "wasm32-wasip2", "--profile", "guest"])) {
        panic!("{why}");
    }
    let target_dir = binary_dir().parent().expect("target/<profile>").to_path_buf();
    target_dir.join("wasm32-wasip2/guest").join(format!("{example}.wasm"))
}

/// The host's own binary (`codex-plugin-host`), built (by cargo, once per test run) if
/// needed: for the tests that run its commands.
pub fn host_binary() -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(why) = BUILT.get_or_init(|| cargo_build_packages(&["codex-plugin-host"], &[])) {
        panic!("{why}");
    }
    binary_dir().join("codex-plugin-host")
}

/// Builds every example with cargo into this build's target directory.
fn cargo_build(extra: &[&str]) -> Result<(), String> {
    cargo_build_packages(EXAMPLES, extra)
}

/// Builds `packages` with cargo into this build's target directory.
fn cargo_build_packages(packages: &[&str], extra: &[&str]) -> Result<(), String> {
    let profile_dir = binary_dir();
    let target_dir = profile_dir.parent().expect("target/<profile>");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(repo_root()).args(["build", "--quiet", "--target-dir"]).arg(target_dir).args(extra);
    if extra.is_empty() && profile_dir.ends_with("release") {
        command.arg("--release");
    }
    for name in packages {
        command.args(["-p", name]);
    }
    let status = command.status().map_err(|error| format!("running cargo: {error}"))?;
    if status.success() { Ok(()) } else { Err(format!("building {packages:?} {extra:?} failed ({status})")) }
}

/// Where cargo put this build's binaries (`target/debug`).
pub fn binary_dir() -> PathBuf {
    let test = std::env::current_exe().expect("the test binary has a path");
    // target/<profile>/deps/<test binary>
    test.parent().and_then(Path::parent).expect("tests run from target/<profile>/deps").to_path_buf()
}

/// The native binary of an example, built (by cargo, once per test run) if needed.
pub fn example_binary(example: &str) -> String {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(why) = BUILT.get_or_init(|| cargo_build(&[])) {
        panic!("{why}");
    }
    binary_dir().join(example).to_string_lossy().into_owned()
}

/// Every example plugin in `guest-examples/` (the SDK aside), found when this crate was
/// built. `tests/examples.rs` must have a test named after each, or it does not compile.
pub const EXAMPLES: &[&str] = include!(concat!(env!("OUT_DIR"), "/examples.rs"));

/// The steps of a storage-command search, as `(command, answer)` pairs.
pub fn steps(response: &SearchResponse) -> Vec<(String, Value)> {
    response
        .results
        .iter()
        .map(|result| (result.external_id.clone(), serde_json::from_str(&result.title).expect("each step is JSON")))
        .collect()
}

/// Runs the `sandbox-prober` example's probes against `target`: each probe's
/// `{"reached": bool, "detail": "..."}`, by name.
pub async fn probe(plugin: &Plugin, target: &str) -> BTreeMap<String, Value> {
    let params = SeriesSearchParams { query: target.into(), limit: None, cursor: None };
    let answer = plugin.call::<SeriesSearch>(&params).await.expect("the prober answers");
    answer
        .results
        .into_iter()
        .map(|result| (result.external_id, serde_json::from_str(&result.title).expect("each probe is JSON")))
        .collect()
}

/// Whether a process has ended (and been reaped), waiting up to 5 s for it to do so.
pub async fn process_ends(pid: i32) -> bool {
    for _ in 0..100 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
        let alive = stat.is_ok_and(|stat| {
            let state = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next());
            state != Some("Z")
        });
        if !alive {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// How many processes have `marker` on their command line.
pub fn processes_marked(marker: &str) -> usize {
    let entries = std::fs::read_dir("/proc").expect("/proc").filter_map(Result::ok);
    let command_lines = entries.filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok());
    command_lines.filter(|line| String::from_utf8_lossy(line).contains(marker)).count()
}

/// Whether every process with `marker` on its command line has ended, waiting up to 5 s.
pub async fn marked_processes_end(marker: &str) -> bool {
    for _ in 0..100 {
        if processes_marked(marker) == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A server on a loopback port that answers each connection as it was told (`200 ok`, or a
/// stall) and counts the connections it was sent; it serves until the test binary ends.
pub struct LoopbackServer {
    /// `127.0.0.1:<port>`.
    pub address: String,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl LoopbackServer {
    /// A server that answers every request `200 OK` with the body `ok`, and closes.
    pub fn start() -> Self {
        Self::serving(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", None)
    }

    /// A server that answers every request with `answer` (a whole HTTP/1.0 response).
    pub fn answering(answer: &'static [u8]) -> Self {
        Self::serving(answer, None)
    }

    /// A server that reads each request, sends `prefix` (possibly nothing), then keeps the
    /// connection open, silent, for `silence`.
    pub fn stalling(prefix: &'static [u8], silence: Duration) -> Self {
        Self::serving(prefix, Some(silence))
    }

    fn serving(answer: &'static [u8], then_silent_for: Option<Duration>) -> Self {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let address = listener.local_addr().expect("a bound address").to_string();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut request = [0; 4096];
                    let _ = stream.read(&mut request);
                    let _ = stream.write_all(answer);
                    if let Some(silence) = then_silent_for {
                        std::thread::sleep(silence);
                    }
                });
            }
        });
        Self { address, connections }
    }

    /// The port part of [`LoopbackServer::address`].
    pub fn port(&self) -> &str {
        self.address.rsplit(':').next().expect("host:port")
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}
