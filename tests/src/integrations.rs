//! A host for users' integrations tests: a real database file with a library imported, a
//! vault key, plugins registered and users connected with tokens.

use codex_plugin_host::host::{HostConfig, PluginHost};
use codex_plugin_host::integrations::Integrations;
use codex_plugin_host::library::{LibraryFile, SqliteLibrary};
use codex_plugin_host::metadata::settings::MetadataSettings;
use codex_plugin_host::plugin::PluginId;
use codex_plugin_host::registry::{Launch, PluginDefinition};
use codex_plugin_host::transport::process::CommandAllowlist;
use codex_plugin_host::vault::{EncryptionKey, Secret};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::{binary_dir, example_binary, repo_root, wasm_component_path, wire_recorder};

/// How an example runs.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Wasm,
    Process,
}

/// An example of `guest-examples/` as a component or a native process.
pub fn example(name: &str, mode: Mode) -> Launch {
    match mode {
        Mode::Wasm => Launch::Wasm { file: wasm_component_path(name) },
        Mode::Process => Launch::Process { command: example_binary(name), args: Vec::new() },
    }
}

/// One test module per name, running `body(Mode::Wasm)` and `body(Mode::Process)` on a
/// two-worker runtime; the test file imports [`Mode`].
#[macro_export]
macro_rules! on_both_modes {
    ($($name:ident => $body:ident;)*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn wasm() {
                super::$body($crate::integrations::Mode::Wasm).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn process() {
                super::$body($crate::integrations::Mode::Process).await;
            }
        }
    )*};
}

/// `tests/plugins/wire-recorder.mjs` under node.
pub fn recorder() -> Launch {
    Launch::Process { command: "node".into(), args: vec![wire_recorder()] }
}

/// `docs/sample-library.json`.
pub fn sample_library() -> String {
    std::fs::read_to_string(repo_root().join("docs/sample-library.json")).unwrap()
}

pub struct IntegrationHost {
    pub dir: tempfile::TempDir,
    pub host: Arc<PluginHost>,
    pub library: Arc<SqliteLibrary>,
    pub integrations: Integrations,
}

impl IntegrationHost {
    /// A host whose library is `library_file`, with a vault key.
    pub fn new(library_file: &str) -> Self {
        Self::configured(library_file, |_| {})
    }

    /// [`IntegrationHost::new`], with the host's configuration changed by `configure`.
    pub fn configured(library_file: &str, configure: impl FnOnce(&mut HostConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("vault.key");
        std::fs::write(&key_file, EncryptionKey::generate()).unwrap();
        std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let mut config = HostConfig::new(dir.path().join("data"));
        config.allowlist = CommandAllowlist::default().with_plugins_dir(binary_dir());
        config.key_file = Some(key_file);
        configure(&mut config);
        let host = Arc::new(PluginHost::open(config).unwrap());
        let library = Arc::new(SqliteLibrary::open(&host.database_path()).unwrap());
        LibraryFile::parse(library_file).unwrap().import(library.as_ref()).unwrap();
        let integrations = Integrations::new(host.clone(), library.clone()).unwrap();
        Self { dir, host, library, integrations }
    }

    /// Registers `launch` as `id` with `admin` as its admin config and `permissions`.
    pub fn add(&self, id: &str, launch: Launch, admin: Value, permissions: &[&str]) {
        let mut definition = PluginDefinition::new(launch);
        definition.admin_config = admin.as_object().cloned().unwrap_or_else(Map::new);
        self.add_defined(id, definition, permissions);
    }

    /// Registers `definition` as `id` with `permissions`.
    pub fn add_defined(&self, id: &str, definition: PluginDefinition, permissions: &[&str]) {
        let registry = self.host.registry();
        registry.add(&PluginId::new(id).unwrap(), &definition).unwrap();
        let settings = MetadataSettings {
            permissions: permissions.iter().map(|permission| permission.to_string()).collect(),
            ..MetadataSettings::default()
        };
        registry.set_metadata_settings(id, &settings).unwrap();
    }

    /// Connects `user` to `id` with `config` and an access token.
    pub fn connect(&self, id: &str, user: &str, config: Value, token: &str) {
        let registry = self.host.registry();
        registry.connect_user(id, user, config.as_object().cloned().unwrap()).unwrap();
        let token = BTreeMap::from([("access_token".to_owned(), Secret::new(token))]);
        registry.set_credentials(self.host.vault().unwrap(), id, Some(user), &token).unwrap();
    }

    /// The requests for `method` the wire recorder registered as `plugin` received, as
    /// any user.
    pub fn recorded(&self, plugin: &str, method: &str) -> Vec<Value> {
        let users = self.host.database_path().parent().unwrap().join("plugins").join(plugin).join("users");
        let mut requests = Vec::new();
        for user in std::fs::read_dir(users).into_iter().flatten() {
            let Ok(text) = std::fs::read_to_string(user.unwrap().path().join("requests.jsonl")) else { continue };
            for line in text.lines() {
                assert!(!line.contains("_codex"), "the host-only settings reached the plugin: {line}");
                let request: Value = serde_json::from_str(line).unwrap();
                if request["method"] == method {
                    requests.push(request["params"].clone());
                }
            }
        }
        requests
    }
}

/// `user` finished each of `books`, the `n`th at time `n + 1` (the last one the latest read).
pub fn finished(library: &dyn codex_plugin_host::library::LibraryPort, user: &str, books: &[&str]) {
    for (at, book) in (1..).zip(books) {
        let progress = codex_plugin_host::library::BookProgress {
            book_id: (*book).into(),
            page: 9,
            completed: true,
            completed_at: Some(at),
            started_at: None,
            updated_at: at,
        };
        library.save_progress(user, &progress).unwrap();
    }
}
