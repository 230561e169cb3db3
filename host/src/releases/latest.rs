//! The latest known chapter and volume of a tracked series, advanced by each new release in
//! one of the series' languages, on the axes it tracks.

use super::CheckedCandidate;
use crate::library::Tracking;

/// The languages when neither the series nor the host says (Codex's default).
pub const DEFAULT_LANGUAGES: [&str; 1] = ["en"];

/// The series' languages (trimmed, lowercased, without blanks or repeats), else the
/// host's, else English.
pub fn effective_languages(series: &[String], host_default: &[String]) -> Vec<String> {
    let tidy = |languages: &[String]| {
        let mut tidy: Vec<String> = Vec::new();
        for language in languages {
            let language = language.trim().to_lowercase();
            if !language.is_empty() && !tidy.contains(&language) {
                tidy.push(language);
            }
        }
        tidy
    };
    let series = tidy(series);
    if !series.is_empty() {
        return series;
    }
    let host = tidy(host_default);
    if !host.is_empty() {
        return host;
    }
    DEFAULT_LANGUAGES.iter().map(|language| (*language).to_owned()).collect()
}

/// The series' latest known chapter and volume after `candidate`; `None` when nothing
/// advances (an untracked series, another language, no larger number on a tracked axis).
pub fn advance(
    tracking: &Tracking,
    host_languages: &[String],
    language: &str,
    candidate: &CheckedCandidate,
) -> Option<(Option<f64>, Option<f64>)> {
    if !tracking.tracked {
        return None;
    }
    let language = language.trim().to_lowercase();
    if !effective_languages(&tracking.languages, host_languages).contains(&language) {
        return None;
    }
    let larger = |new: Option<f64>, known: Option<f64>| match (new, known) {
        (Some(new), Some(known)) if new > known => Some(new),
        (Some(new), None) => Some(new),
        _ => None,
    };
    let chapter = larger(candidate.chapter, tracking.latest_chapter).filter(|_| tracking.track_chapters);
    let volume =
        larger(candidate.volume.map(|volume| volume as f64), tracking.latest_volume).filter(|_| tracking.track_volumes);
    if chapter.is_none() && volume.is_none() {
        return None;
    }
    Some((chapter.or(tracking.latest_chapter), volume.or(tracking.latest_volume)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn release(chapter: Option<f64>, volume: Option<i64>) -> CheckedCandidate {
        CheckedCandidate { chapters: None, volumes: None, chapter, volume, observed_at: Utc::now(), released_at: None }
    }

    fn tracked(languages: &[&str]) -> Tracking {
        Tracking {
            tracked: true,
            languages: languages.iter().map(|language| (*language).to_owned()).collect(),
            latest_chapter: Some(10.0),
            latest_volume: Some(2.0),
            ..Tracking::default()
        }
    }

    #[test]
    fn languages_come_from_the_series_then_the_host_then_english() {
        let strings = |list: &[&str]| list.iter().map(|text| (*text).to_owned()).collect::<Vec<_>>();
        assert_eq!(effective_languages(&strings(&[" FR ", "fr", ""]), &strings(&["de"])), strings(&["fr"]));
        assert_eq!(effective_languages(&[], &strings(&["de", "ES"])), strings(&["de", "es"]));
        assert_eq!(effective_languages(&strings(&[" "]), &[]), strings(&["en"]));
    }

    #[test]
    fn only_a_larger_number_in_a_tracked_language_on_a_tracked_axis_advances() {
        let series = tracked(&[]);
        assert_eq!(advance(&series, &[], "EN", &release(Some(11.5), None)), Some((Some(11.5), Some(2.0))));
        assert_eq!(advance(&series, &[], "en", &release(Some(9.0), Some(3))), Some((Some(10.0), Some(3.0))));
        assert_eq!(advance(&series, &[], "en", &release(Some(10.0), Some(2))), None, "nothing larger");
        assert_eq!(advance(&series, &[], "fr", &release(Some(11.0), None)), None, "another language");
        assert_eq!(advance(&tracked(&["fr"]), &[], "fr", &release(Some(11.0), None)), Some((Some(11.0), Some(2.0))));
        let no_chapters = Tracking { track_chapters: false, ..tracked(&[]) };
        assert_eq!(advance(&no_chapters, &[], "en", &release(Some(11.0), None)), None, "an untracked axis");
        let untracked = Tracking { tracked: false, ..tracked(&[]) };
        assert_eq!(advance(&untracked, &[], "en", &release(Some(11.0), None)), None);
        let fresh = Tracking { tracked: true, ..Tracking::default() };
        assert_eq!(advance(&fresh, &[], "en", &release(Some(1.0), None)), Some((Some(1.0), None)));
    }
}
