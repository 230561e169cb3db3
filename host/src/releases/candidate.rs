//! A candidate checked before it reaches the ledger, as Codex checks it (its messages, in
//! its order), and its spans normalized: the chapter and volume the ledger keeps are the
//! largest span ends.

use chrono::{DateTime, Utc};
use codex_plugin_protocol::types::releases::{NumericSpan, ReleaseCandidate};

/// How far in the future a candidate's `observedAt` may be (Codex: `MAX_FUTURE_SKEW_S`).
pub const MAX_FUTURE_SKEW_SECONDS: i64 = 3600;
/// The most spans a candidate may give per axis, and the largest chapter or volume number
/// (bounds Codex does not have: a release is a few chapters, not millions).
pub const MAX_SPANS: usize = 1000;
pub const MAX_NUMBER: f64 = 1_000_000.0;
/// The confidence a candidate needs when its series sets no threshold of its own.
pub const DEFAULT_CONFIDENCE_THRESHOLD: f64 = 0.7;

/// A candidate that passed every check, with what the ledger keeps of it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedCandidate {
    /// Sorted, reversed spans turned round, overlapping and touching spans merged; `None`
    /// when the candidate has none.
    pub chapters: Option<Vec<NumericSpan>>,
    pub volumes: Option<Vec<NumericSpan>>,
    /// The largest chapter it covers.
    pub chapter: Option<f64>,
    /// The largest volume it covers, whole (Codex keeps volumes as integers).
    pub volume: Option<i64>,
    pub observed_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
}

/// The threshold that applies to a series: its own when it is a number in [0, 1].
pub fn confidence_threshold(series_override: Option<f64>) -> f64 {
    series_override
        .filter(|value| value.is_finite() && (0.0..=1.0).contains(value))
        .unwrap_or(DEFAULT_CONFIDENCE_THRESHOLD)
}

/// Checks a candidate, in Codex's order and with its messages.
pub fn check(candidate: &ReleaseCandidate, threshold: f64, now: DateTime<Utc>) -> Result<CheckedCandidate, String> {
    if candidate.payload_url.trim().is_empty() {
        return Err("payload_url cannot be empty".into());
    }
    match (&candidate.media_url, &candidate.media_url_kind) {
        (Some(url), Some(_)) if url.trim().is_empty() => return Err("media_url cannot be empty when set".into()),
        (Some(_), None) | (None, Some(_)) => {
            return Err("media_url and media_url_kind must be set together (or both unset)".into());
        }
        _ => {}
    }
    if candidate.external_release_id.trim().is_empty() {
        return Err("external_release_id cannot be empty".into());
    }
    if candidate.language.trim().is_empty() {
        return Err("language cannot be empty".into());
    }
    let spans = candidate.chapters.iter().chain(&candidate.volumes).flatten();
    if spans.clone().any(|span| !span.start.is_finite() || !span.end.is_finite()) {
        return Err("chapter must be a finite number".into());
    }
    if let Some(span) = spans.into_iter().find(|span| span.start.abs() > MAX_NUMBER || span.end.abs() > MAX_NUMBER) {
        return Err(format!(
            "chapter or volume number {} is out of range (at most {MAX_NUMBER})",
            span.end.max(span.start)
        ));
    }
    for (axis, spans) in [("chapters", &candidate.chapters), ("volumes", &candidate.volumes)] {
        let count = spans.as_ref().map_or(0, Vec::len);
        if count > MAX_SPANS {
            return Err(format!("{count} {axis} spans is more than {MAX_SPANS}"));
        }
    }
    check_lengths(candidate)?;
    let observed_at = time(&candidate.observed_at, "observedAt")?;
    if (observed_at - now).num_seconds() > MAX_FUTURE_SKEW_SECONDS {
        return Err("observed_at is too far in the future".into());
    }
    let released_at = candidate.released_at.as_deref().map(|text| time(text, "releasedAt")).transpose()?;
    let confidence = candidate.series_match.confidence;
    if !confidence.is_finite() || !(0.0..=1.0).contains(&confidence) {
        return Err(format!("invalid confidence value {confidence} (must be a finite number in [0, 1])"));
    }
    if confidence < threshold {
        return Err(format!("confidence {confidence} below threshold {threshold}"));
    }
    let chapters = candidate.chapters.as_deref().and_then(normalize);
    let volumes = candidate.volumes.as_deref().and_then(normalize);
    let chapter = chapters.as_deref().and_then(largest_end);
    let volume = volumes.as_deref().and_then(largest_end).map(|end| end.trunc() as i64);
    Ok(CheckedCandidate { chapters, volumes, chapter, volume, observed_at, released_at })
}

/// The longest text of each field, in characters (Codex's column sizes).
const FIELD_LIMITS: [(&str, usize); 6] = [
    ("externalReleaseId", 500),
    ("infoHash", 64),
    ("language", 20),
    ("groupOrUploader", 255),
    ("payloadUrl", 2048),
    ("mediaUrl", 2048),
];

fn check_lengths(candidate: &ReleaseCandidate) -> Result<(), String> {
    let values = [
        Some(&candidate.external_release_id),
        candidate.info_hash.as_ref(),
        Some(&candidate.language),
        candidate.group_or_uploader.as_ref(),
        Some(&candidate.payload_url),
        candidate.media_url.as_ref(),
    ];
    for ((field, limit), value) in FIELD_LIMITS.into_iter().zip(values) {
        let chars = value.map_or(0, |value| value.chars().count());
        if chars > limit {
            return Err(format!("`{field}` is {chars} characters, more than {limit}"));
        }
    }
    Ok(())
}

fn time(text: &str, field: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| format!("`{field}`: {text:?} is not an RFC 3339 time ({error})"))
}

/// Spans sorted, each with `start <= end`, merged where one starts at or before the end of
/// the one before; `None` when there are none.
pub fn normalize(spans: &[NumericSpan]) -> Option<Vec<NumericSpan>> {
    let mut sorted: Vec<NumericSpan> = spans
        .iter()
        .map(|span| NumericSpan { start: span.start.min(span.end), end: span.start.max(span.end) })
        .collect();
    sorted.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.end.total_cmp(&b.end)));
    let mut merged: Vec<NumericSpan> = Vec::with_capacity(sorted.len());
    for span in sorted {
        match merged.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    (!merged.is_empty()).then_some(merged)
}

fn largest_end(spans: &[NumericSpan]) -> Option<f64> {
    spans.iter().map(|span| span.end).reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn candidate(changes: Value) -> ReleaseCandidate {
        let mut value = json!({
            "seriesMatch": {"codexSeriesId": "s1", "confidence": 0.9, "reason": "alias"},
            "externalReleaseId": "r1", "language": "en", "payloadUrl": "https://x/1",
            "chapters": [{"start": 12, "end": 10}, {"start": 3, "end": 4}, {"start": 4, "end": 5}],
            "volumes": [{"start": 2.7, "end": 2.7}],
            "observedAt": "2026-12-02T11:00:00Z"
        });
        for (key, change) in changes.as_object().unwrap() {
            value[key] = change.clone();
        }
        ReleaseCandidate::read(&value).unwrap()
    }

    #[test]
    fn spans_are_normalized_and_the_largest_ends_kept() {
        let checked = check(&candidate(json!({})), 0.7, now()).unwrap();
        let span = |start, end| NumericSpan { start, end };
        assert_eq!(checked.chapters, Some(vec![span(3.0, 5.0), span(10.0, 12.0)]));
        assert_eq!((checked.chapter, checked.volume), (Some(12.0), Some(2)));
        let none = check(&candidate(json!({"chapters": [], "volumes": null})), 0.7, now()).unwrap();
        assert_eq!((none.chapters, none.volumes, none.chapter), (None, None, None));
    }

    #[test]
    fn every_check_says_what_codex_says() {
        let cases = [
            (json!({"payloadUrl": " "}), "payload_url cannot be empty"),
            (json!({"mediaUrl": "", "mediaUrlKind": "torrent"}), "media_url cannot be empty when set"),
            (json!({"mediaUrl": "https://x/1.torrent"}), "must be set together"),
            (json!({"mediaUrlKind": "magnet"}), "must be set together"),
            (json!({"externalReleaseId": ""}), "external_release_id cannot be empty"),
            (json!({"language": ""}), "language cannot be empty"),
            (json!({"observedAt": "2026-12-02T13:00:01Z"}), "observed_at is too far in the future"),
            (json!({"observedAt": "yesterday"}), "`observedAt`"),
            (json!({"externalReleaseId": "r".repeat(501)}), "`externalReleaseId` is 501 characters, more than 500"),
            (json!({"chapters": [{"start": 1e17, "end": 100000000000000016.0}]}), "out of range (at most 1000000)"),
            (json!({"volumes": vec![json!({"start": 1, "end": 1}); 1001]}), "1001 volumes spans is more than 1000"),
            (json!({"releasedAt": "2026-13-01"}), "`releasedAt`"),
            (
                json!({"seriesMatch": {"codexSeriesId": "s1", "confidence": 1.5, "reason": ""}}),
                "invalid confidence value 1.5",
            ),
            (
                json!({"seriesMatch": {"codexSeriesId": "s1", "confidence": 0.5, "reason": ""}}),
                "confidence 0.5 below threshold 0.7",
            ),
        ];
        for (changes, expected) in cases {
            let error = check(&candidate(changes.clone()), 0.7, now()).unwrap_err();
            assert!(error.contains(expected), "{changes}: {error}");
        }
        assert!(check(&candidate(json!({"observedAt": "2026-12-02T13:00:00Z"})), 0.7, now()).is_ok(), "an hour ahead");
    }

    #[test]
    fn a_series_threshold_applies_when_it_is_a_confidence() {
        assert_eq!(confidence_threshold(None), 0.7);
        assert_eq!(confidence_threshold(Some(0.4)), 0.4);
        assert_eq!(confidence_threshold(Some(1.4)), 0.7);
        assert_eq!(confidence_threshold(Some(f64::NAN)), 0.7);
        let low = candidate(json!({"seriesMatch": {"codexSeriesId": "s1", "confidence": 0.5, "reason": ""}}));
        assert!(check(&low, confidence_threshold(Some(0.4)), now()).is_ok());
    }
}
