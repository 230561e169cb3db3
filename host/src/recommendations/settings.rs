//! The user's recommendation settings (their `_codex` keys) and the admin's cache age.

use codex_plugin_protocol::types::initialize::HOST_ONLY_NAMESPACE;
use serde_json::{Map, Value};

/// Hours after which a user's cached recommendations are refreshed, unless the plugin's
/// admin config says `recommendations_max_age_hours`.
pub const DEFAULT_MAX_AGE_HOURS: i64 = 24;

/// How many recommendations to ask for, from how many seeds, and which rating a seed needs
/// to count as liked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecommendationSettings {
    /// 1-100, default 20.
    pub max_recommendations: i64,
    /// 1-25, default 10.
    pub max_seeds: usize,
    /// 0-100 (the user gives 0-10), default 0.
    pub drop_threshold: i64,
}

impl RecommendationSettings {
    pub fn from_user_config(config: &Map<String, Value>) -> Self {
        let keys = config.get(HOST_ONLY_NAMESPACE).and_then(Value::as_object);
        let get = |key: &str| keys.and_then(|keys| keys.get(key));
        Self {
            max_recommendations: get("maxRecommendations")
                .and_then(Value::as_u64)
                .map_or(20, |n| n.clamp(1, 100) as i64),
            max_seeds: get("maxSeeds").and_then(Value::as_u64).map_or(10, |n| n.clamp(1, 25) as usize),
            drop_threshold: get("dropThreshold")
                .and_then(Value::as_f64)
                .map_or(0, |threshold| ((threshold * 10.0).round() as i64).clamp(0, 100)),
        }
    }
}

/// The plugin's cache age, from its admin config.
pub fn max_age_hours(admin_config: &Map<String, Value>) -> i64 {
    admin_config.get("recommendations_max_age_hours").and_then(Value::as_i64).unwrap_or(DEFAULT_MAX_AGE_HOURS)
}
