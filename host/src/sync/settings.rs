//! The settings a sync follows: the user's (`syncMode`, and their `_codex` keys) and the
//! admin's metadata policy (the plugin's `_codex` keys), with the reference's defaults.

use codex_plugin_protocol::manifest::Capabilities;
use codex_plugin_protocol::types::initialize::HOST_ONLY_NAMESPACE;
use serde::Serialize;
use serde_json::{Map, Value};

/// Which directions a sync runs, from the user config's `syncMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SyncMode {
    Both,
    Pull,
    Push,
    /// A string the reference does not know: it syncs neither way, and so does this host.
    Neither,
}

impl SyncMode {
    /// Absent or not a string: both (the reference's default).
    pub fn from_user_config(config: &Map<String, Value>) -> Self {
        match config.get("syncMode") {
            Some(Value::String(mode)) => match mode.as_str() {
                "both" => Self::Both,
                "pull" => Self::Pull,
                "push" => Self::Push,
                _ => Self::Neither,
            },
            _ => Self::Both,
        }
    }

    /// As the user wrote it (`Neither`: a value the host does not know).
    pub fn name(self) -> &'static str {
        match self {
            Self::Both => "\"both\"",
            Self::Pull => "\"pull\"",
            Self::Push => "\"push\"",
            Self::Neither => "(not both, pull or push)",
        }
    }

    pub fn pulls(self) -> bool {
        matches!(self, Self::Both | Self::Pull)
    }

    pub fn pushes(self) -> bool {
        matches!(self, Self::Both | Self::Push)
    }
}

/// The user's sync settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncSettings {
    pub mode: SyncMode,
    /// Push series whose every local book is read.
    pub include_completed: bool,
    /// Push series with some books read or opened.
    pub include_in_progress: bool,
    /// Count opened books as read in the pushed count.
    pub count_partial_progress: bool,
    /// Push the user's rating and notes, and take a pulled one for a series they have not
    /// rated.
    pub sync_ratings: bool,
    /// Also push series without an id under the plugin's source, by title.
    pub search_fallback: bool,
    /// Synced on the admin's schedule.
    pub auto_sync: bool,
}

fn namespace(config: &Map<String, Value>) -> Option<&Map<String, Value>> {
    config.get(HOST_ONLY_NAMESPACE).and_then(Value::as_object)
}

fn flag(namespace: Option<&Map<String, Value>>, key: &str, default: bool) -> bool {
    namespace.and_then(|keys| keys.get(key)).and_then(Value::as_bool).unwrap_or(default)
}

/// The user's `_codex` keys, all flags.
pub const USER_SYNC_KEYS: [&str; 6] =
    ["includeCompleted", "includeInProgress", "countPartialProgress", "syncRatings", "searchFallback", "autoSync"];

impl SyncSettings {
    /// Refuses a user config whose sync settings would be read as something else than
    /// meant: `syncMode` not one of both, pull, push; `_codex` not an object, or one of its
    /// flags not a boolean (each would silently fall back to its default).
    pub fn check_user_config(config: &Map<String, Value>) -> Result<(), String> {
        match config.get("syncMode") {
            None | Some(Value::Null) => {}
            Some(Value::String(mode)) if matches!(mode.as_str(), "both" | "pull" | "push") => {}
            Some(other) => return Err(format!("`syncMode` must be \"both\", \"pull\" or \"push\", not {other}")),
        }
        let keys = match config.get(HOST_ONLY_NAMESPACE) {
            None => return Ok(()),
            Some(Value::Object(keys)) => keys,
            Some(other) => return Err(format!("`{HOST_ONLY_NAMESPACE}` must be an object, not {other}")),
        };
        for key in USER_SYNC_KEYS {
            if let Some(value) = keys.get(key).filter(|value| !value.is_boolean()) {
                return Err(format!("`{HOST_ONLY_NAMESPACE}.{key}` must be true or false, not {value}"));
            }
        }
        Ok(())
    }

    pub fn from_user_config(config: &Map<String, Value>) -> Self {
        let keys = namespace(config);
        Self {
            mode: SyncMode::from_user_config(config),
            include_completed: flag(keys, "includeCompleted", true),
            include_in_progress: flag(keys, "includeInProgress", true),
            count_partial_progress: flag(keys, "countPartialProgress", false),
            sync_ratings: flag(keys, "syncRatings", true),
            search_fallback: flag(keys, "searchFallback", false),
            auto_sync: flag(keys, "autoSync", false),
        }
    }
}

/// What the admin lets the host tell a plugin about a series, from the plugin's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataPolicy {
    pub send_tags: bool,
    pub send_genres: bool,
    pub send_metadata: bool,
    pub allow_custom_metadata: bool,
}

impl MetadataPolicy {
    pub fn from_admin_config(config: &Map<String, Value>) -> Self {
        let keys = namespace(config);
        Self {
            send_tags: flag(keys, "sendTags", true),
            send_genres: flag(keys, "sendGenres", true),
            send_metadata: flag(keys, "sendMetadata", true),
            allow_custom_metadata: flag(keys, "allowCustomMetadata", false),
        }
    }
}

/// What the entries sent to one plugin carry: what its manifest asks for, as the admin's
/// policy allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntryContents {
    pub tags: bool,
    pub genres: bool,
    pub metadata: bool,
    pub custom_metadata: bool,
    pub detailed_progress: bool,
    /// Whether the manifest says `wantsFullMetadata` (recommendation entries carry genres
    /// and tags without it; with it, as the policy says).
    pub full_metadata: bool,
}

impl EntryContents {
    pub fn new(capabilities: &Capabilities, policy: MetadataPolicy) -> Self {
        let full = capabilities.wants_full_metadata;
        Self {
            tags: full && policy.send_tags,
            genres: full && policy.send_genres,
            metadata: full && policy.send_metadata,
            custom_metadata: full && policy.allow_custom_metadata,
            detailed_progress: capabilities.wants_detailed_progress,
            full_metadata: full,
        }
    }
}
