//! The shapes against the host's types, and what a walk finds.

use super::*;
use crate::conformance::Verdict;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, json};

/// An answer with every field of `shape` filled (legacy names left out).
fn filled(shape: &Shape) -> Value {
    match shape {
        Shape::Text | Shape::Id => json!("x"),
        Shape::TextOr(inner) => filled(inner),
        Shape::Integer => json!(3),
        Shape::Number => json!(0.5),
        Shape::Bool => json!(true),
        Shape::Any => json!({"any": 1}),
        Shape::Vocabulary(known) => json!(known[0]),
        Shape::Nullable(inner) => filled(inner),
        Shape::List(item) => json!([filled(item)]),
        Shape::Map(inner) => json!({"key": filled(inner)}),
        Shape::Object(groups) => {
            let mut fields = Map::new();
            for field in groups.iter().flat_map(|group| group.iter()) {
                if !matches!(field.presence, Presence::Legacy(_)) {
                    fields.insert(field.name.into(), filled(&field.shape));
                }
            }
            Value::Object(fields)
        }
    }
}

fn keys(value: &Value, path: &str, into: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, inner) in fields {
                into.push(format!("{path}.{key}"));
                keys(inner, &format!("{path}.{key}"), into);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| keys(item, &format!("{path}[]"), into)),
        _ => {}
    }
}

/// The shape and the host's type agree: a full answer reads, and writes back the
/// same fields (a field the type has and the shape lacks would appear, one the shape
/// has and the type lacks would vanish).
fn agrees<T: DeserializeOwned + Serialize>(method: HostMethod) {
    let answer = filled(of(method));
    assert_eq!(findings(&answer, of(method), "result"), [], "{method:?}: a full answer fits its shape");
    let typed: T = serde_json::from_value(answer.clone()).unwrap_or_else(|error| panic!("{method:?}: {error}"));
    let (mut sent, mut kept) = (Vec::new(), Vec::new());
    keys(&answer, "", &mut sent);
    keys(&serde_json::to_value(&typed).unwrap(), "", &mut kept);
    sent.retain(|key| !key.contains(".any") && !key.contains(".key"));
    kept.retain(|key| !key.contains(".any") && !key.contains(".key"));
    sent.sort();
    kept.sort();
    assert_eq!(sent, kept, "{method:?}");
}

#[test]
fn every_shape_agrees_with_the_hosts_type() {
    use crate::protocol::types::{metadata, recommendations, releases, sync};
    agrees::<metadata::SearchResponse>(HostMethod::SeriesSearch);
    agrees::<metadata::SeriesMetadata>(HostMethod::SeriesGet);
    agrees::<metadata::BookMetadata>(HostMethod::BookGet);
    agrees::<metadata::MatchResponse>(HostMethod::SeriesMatch);
    agrees::<sync::UserInfo>(HostMethod::SyncUserInfo);
    agrees::<sync::PushResponse>(HostMethod::SyncPush);
    agrees::<sync::PullResponse>(HostMethod::SyncPull);
    agrees::<sync::StatusResponse>(HostMethod::SyncStatus);
    agrees::<recommendations::GetResponse>(HostMethod::RecommendationsGet);
    agrees::<recommendations::DismissResponse>(HostMethod::RecommendationsDismiss);
    let candidate = filled(&RELEASE_CANDIDATE);
    let read = releases::ReleaseCandidate::read(&candidate).unwrap();
    let (mut sent, mut kept) = (Vec::new(), Vec::new());
    keys(&candidate, "", &mut sent);
    keys(&serde_json::to_value(read).unwrap(), "", &mut kept);
    assert_eq!(sent.len(), kept.len(), "{sent:?} vs {kept:?}");
}

#[test]
fn wrong_types_fail_and_unknown_or_legacy_fields_warn() {
    let answer = json!({
        "externalId": "x", "externalUrl": "https://e/x", "year": "2001", "totalBookCount": 3,
        "authors": ["Ann", {"name": "Bo", "role": "dancer"}], "status": "ongoing",
        "genres": ["a", 2, 3], "colour": "blue", "rating": null
    });
    let found = findings(&answer, of(HostMethod::SeriesGet), "result");
    let summary: Vec<_> = found.iter().map(|finding| (finding.verdict, finding.subject.as_str())).collect();
    assert_eq!(
        summary,
        [
            (Verdict::Fail, "result.year"),
            (Verdict::Fail, "result.genres[]"),
            (Verdict::Warn, "result.authors[].role"),
            (Verdict::Warn, "result.totalBookCount"),
            (Verdict::Warn, "result.colour"),
        ]
    );
    assert!(found[0].problem.contains("a string (\"2001\")"), "{}", found[0].problem);
    assert_eq!(found.iter().filter(|finding| finding.subject == "result.genres[]").count(), 1, "reported once");
}

#[test]
fn missing_and_empty_ids_fail() {
    let found = findings(
        &json!({"results": [{"title": "t"}, {"externalId": " ", "title": "u"}]}),
        of(HostMethod::SeriesSearch),
        "result",
    );
    let problems: Vec<_> = found.iter().map(|finding| finding.problem.as_str()).collect();
    assert_eq!(problems, ["a required field is missing", "an empty id"]);
    assert!(found.iter().all(|finding| finding.verdict == Verdict::Fail));
    assert_eq!(findings(&json!(5), of(HostMethod::Ping), "result")[0].problem, "expected a string, found a number (5)");
}
