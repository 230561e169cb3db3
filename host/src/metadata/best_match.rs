//! Which search result to take (orchestration.md §4): the highest `relevanceScore` (the
//! earliest of equals), then the confidence threshold. Unlike the reference, an unscored
//! result does not slip past the threshold (its weakness 26) unless the plugin's settings
//! say its results are never scored.

use serde::Serialize;

use crate::protocol::types::metadata::SearchResult;

/// The reference's default threshold.
pub const DEFAULT_THRESHOLD: f64 = 0.8;

/// What the results decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Pick {
    /// Take this result.
    Matched { result: SearchResult },
    /// Nothing came back.
    NoMatch,
    /// The best result is not sure enough (`score` none: it was not scored).
    LowConfidence { result: SearchResult, score: Option<f64>, threshold: f64 },
}

/// Picks from `results` (in the plugin's order).
pub fn pick(results: &[SearchResult], threshold: f64, accept_unscored: bool) -> Pick {
    let best_scored = results
        .iter()
        .filter_map(|result| result.relevance_score.filter(|score| score.is_finite()).map(|score| (score, result)))
        .fold(None::<(f64, &SearchResult)>, |best, (score, result)| match best {
            Some((best_score, _)) if best_score >= score => best,
            _ => Some((score, result)),
        });
    match (best_scored, results.first()) {
        (Some((score, result)), _) if score >= threshold => Pick::Matched { result: result.clone() },
        (Some((score, result)), _) => Pick::LowConfidence { result: result.clone(), score: Some(score), threshold },
        (None, Some(first)) if accept_unscored => Pick::Matched { result: first.clone() },
        (None, Some(first)) => Pick::LowConfidence { result: first.clone(), score: None, threshold },
        (None, None) => Pick::NoMatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, score: Option<f64>) -> SearchResult {
        let mut result = SearchResult::new(id, id);
        result.relevance_score = score;
        result
    }

    fn picked(pick: &Pick) -> Option<&str> {
        match pick {
            Pick::Matched { result } => Some(&result.external_id),
            _ => None,
        }
    }

    #[test]
    fn the_best_score_the_earliest_tie_and_the_threshold() {
        let cases: &[(&[SearchResult], f64, bool, Option<&str>)] = &[
            (&[result("a", Some(0.5)), result("b", Some(0.95)), result("c", Some(0.9))], 0.8, false, Some("b")),
            (&[result("a", Some(0.9)), result("b", Some(0.9))], 0.8, false, Some("a")),
            (&[result("a", None), result("b", Some(0.85))], 0.8, false, Some("b")),
            (&[result("a", Some(0.79))], 0.8, false, None),
            (&[result("a", Some(0.8))], 0.8, false, Some("a")),
            (&[result("a", None), result("b", None)], 0.8, false, None),
            (&[result("a", None), result("b", None)], 0.8, true, Some("a")),
            (&[result("a", Some(0.3)), result("b", None)], 0.8, true, None),
            (&[result("a", Some(f64::NAN)), result("b", Some(0.9))], 0.8, false, Some("b")),
            (&[], 0.8, true, None),
        ];
        for (results, threshold, accept_unscored, expected) in cases {
            let pick = pick(results, *threshold, *accept_unscored);
            assert_eq!(picked(&pick), *expected, "{results:?} at {threshold}, unscored accepted: {accept_unscored}");
        }
        assert_eq!(pick(&[], 0.8, false), Pick::NoMatch);
        let Pick::LowConfidence { score, .. } = pick(&[result("a", None)], 0.8, false) else {
            panic!("unscored passed")
        };
        assert_eq!(score, None);
    }
}
