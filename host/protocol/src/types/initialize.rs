//! `initialize` params: what the host tells a plugin when it starts.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The config namespace only the host reads (the user's sync and recommendation settings,
/// the admin's metadata policy): removed from every config before the plugin sees it.
pub const HOST_ONLY_NAMESPACE: &str = "_codex";

/// The log level a plugin is asked to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

/// `initialize` params, camelCase on the wire.
///
/// Build it with [`InitializeParams::new`], which removes the host-only `_codex` namespace
/// from both configs and fills the legacy merged `config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeParams {
    /// Admin config merged with user config, user keys winning (as the reference sends).
    #[serde(default)]
    pub config: Map<String, Value>,
    #[serde(default)]
    pub admin_config: Map<String, Value>,
    #[serde(default)]
    pub user_config: Map<String, Value>,
    /// Decrypted only for this message.
    #[serde(default)]
    pub credentials: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    #[serde(default)]
    pub log_level: LogLevel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_plugin_id: Option<String>,
}

impl InitializeParams {
    pub fn new(
        mut admin_config: Map<String, Value>,
        mut user_config: Map<String, Value>,
        credentials: BTreeMap<String, String>,
    ) -> Self {
        admin_config.remove(HOST_ONLY_NAMESPACE);
        user_config.remove(HOST_ONLY_NAMESPACE);
        let mut config = admin_config.clone();
        config.extend(user_config.iter().map(|(key, value)| (key.clone(), value.clone())));
        Self {
            config,
            admin_config,
            user_config,
            credentials,
            data_dir: None,
            log_level: LogLevel::default(),
            user_id: None,
            user_plugin_id: None,
        }
    }

    pub fn with_data_dir(mut self, data_dir: impl Into<String>) -> Self {
        self.data_dir = Some(data_dir.into());
        self
    }

    pub fn with_log_level(mut self, log_level: LogLevel) -> Self {
        self.log_level = log_level;
        self
    }

    pub fn with_user(mut self, user_id: impl Into<String>, user_plugin_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self.user_plugin_id = Some(user_plugin_id.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn the_host_namespace_never_reaches_the_plugin_and_user_config_wins() {
        let params = InitializeParams::new(
            object(json!({"maxResults": 5, "region": "eu", "_codex": {"sendTags": false}})),
            object(json!({"maxResults": 10, "_codex": {"syncRatings": false}})),
            BTreeMap::from([("api_key".to_owned(), "k".to_owned())]),
        )
        .with_data_dir("/data/plugins/x");
        let wire = serde_json::to_value(&params).unwrap();
        assert_eq!(wire["userConfig"], json!({"maxResults": 10}));
        assert_eq!(wire["config"], json!({"maxResults": 10, "region": "eu"}));
        assert_eq!(wire["adminConfig"], json!({"maxResults": 5, "region": "eu"}));
        assert_eq!(wire["credentials"], json!({"api_key": "k"}));
        assert_eq!(wire["dataDir"], json!("/data/plugins/x"));
        assert_eq!(wire["logLevel"], json!("info"));
        assert!(!wire.to_string().contains("_codex"));
    }
}
