//! Several plugins' recommendations as one list: one per external id (the highest score
//! wins, reasons combined, `basedOn` joined), best first, without what the user dismissed.

use codex_plugin_protocol::types::recommendations::Recommendation;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// A recommendation, and the plugins that made it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Merged {
    #[serde(flatten)]
    pub recommendation: Recommendation,
    pub plugins: Vec<String>,
}

/// Merges `(plugin, recommendation)` pairs, in the order given (equal scores keep it),
/// leaving out the ids in `dismissed`.
pub fn merge(
    recommendations: impl IntoIterator<Item = (String, Recommendation)>,
    dismissed: &HashSet<String>,
) -> Vec<Merged> {
    let mut order: Vec<String> = Vec::new();
    let mut by_id: HashMap<String, Merged> = HashMap::new();
    for (plugin, recommendation) in recommendations {
        let id = recommendation.external_id.clone();
        if dismissed.contains(&id) {
            continue;
        }
        let Some(existing) = by_id.get_mut(&id) else {
            order.push(id.clone());
            by_id.insert(id, Merged { recommendation, plugins: vec![plugin] });
            continue;
        };
        let reason = combine_reasons(existing.recommendation.reason.as_deref(), recommendation.reason.as_deref());
        let mut based_on = existing.recommendation.based_on.clone();
        for seed in &recommendation.based_on {
            if !based_on.contains(seed) {
                based_on.push(seed.clone());
            }
        }
        let in_library = existing.recommendation.in_library || recommendation.in_library;
        if score(&recommendation) > score(&existing.recommendation) {
            existing.recommendation = recommendation;
        }
        existing.recommendation.reason = reason;
        existing.recommendation.based_on = based_on;
        existing.recommendation.in_library = in_library;
        if !existing.plugins.contains(&plugin) {
            existing.plugins.push(plugin);
        }
    }
    let mut merged: Vec<Merged> = order.into_iter().filter_map(|id| by_id.remove(&id)).collect();
    // Stable: equal scores keep the order given.
    merged.sort_by(|a, b| {
        score(&b.recommendation).partial_cmp(&score(&a.recommendation)).unwrap_or(std::cmp::Ordering::Equal)
    });
    merged
}

fn score(recommendation: &Recommendation) -> f64 {
    recommendation.score.filter(|score| score.is_finite()).unwrap_or(0.0)
}

/// Two reasons as one, as the reference joins them: one that holds the other stays alone.
fn combine_reasons(a: Option<&str>, b: Option<&str>) -> Option<String> {
    let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
    let combined = if a.is_empty() {
        b.to_owned()
    } else if b.is_empty() || a.contains(b) {
        a.to_owned()
    } else if b.contains(a) {
        b.to_owned()
    } else {
        format!("{a} · {b}")
    };
    (!combined.is_empty()).then_some(combined)
}
