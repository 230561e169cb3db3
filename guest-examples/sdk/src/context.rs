//! What a provider method can reach: the plugin's configuration, its storage, its logger.

use codex_plugin_protocol::types::initialize::InitializeParams;
use serde_json::{Map, Value};
use std::cell::RefCell;

use crate::logger::Logger;
use crate::releases::Releases;
use crate::storage::Storage;

/// Handed to every provider method. Configuration is what the host sent in `initialize`.
pub struct Context {
    storage: Storage,
    releases: Releases,
    log: Logger,
    initialized: RefCell<Option<InitializeParams>>,
}

impl Context {
    pub(crate) fn new(storage: Storage, releases: Releases, log: Logger) -> Self {
        Self { storage, releases, log, initialized: RefCell::new(None) }
    }

    pub(crate) fn initialize(&self, mut params: InitializeParams) {
        // The host should have removed it; Codex's own host does not.
        params.user_config.remove(codex_plugin_protocol::types::initialize::HOST_ONLY_NAMESPACE);
        self.log.set_level(params.log_level);
        *self.initialized.borrow_mut() = Some(params);
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The host's release records (for a release source).
    pub fn releases(&self) -> &Releases {
        &self.releases
    }

    pub fn log(&self) -> &Logger {
        &self.log
    }

    /// The admin's configuration (empty before `initialize`).
    pub fn admin_config(&self) -> Map<String, Value> {
        self.read(|params| params.admin_config.clone())
    }

    /// The user's configuration, without the host-only `_codex` namespace.
    pub fn user_config(&self) -> Map<String, Value> {
        self.read(|params| params.user_config.clone())
    }

    /// One admin setting as an integer, if it is one.
    pub fn admin_integer(&self, key: &str) -> Option<i64> {
        self.read(|params| params.admin_config.get(key).and_then(Value::as_f64)).map(|value| value as i64)
    }

    /// A credential the host decrypted for this plugin (an API key, an access token).
    pub fn credential(&self, key: &str) -> Option<String> {
        self.read(|params| params.credentials.get(key).cloned())
    }

    /// The plugin's private directory, if the host gave it one (`/data` inside wasm).
    pub fn data_dir(&self) -> Option<String> {
        self.read(|params| params.data_dir.clone())
    }

    fn read<T: Default>(&self, field: impl FnOnce(&InitializeParams) -> T) -> T {
        self.initialized.borrow().as_ref().map(field).unwrap_or_default()
    }
}
