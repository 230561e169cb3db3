//! What a new release becomes in the ledger: `announced`, or `ignored` when it is about an
//! axis the series does not track or everything it covers is already in the library.

use codex_plugin_protocol::types::releases::NumericSpan;

use super::CheckedCandidate;
use crate::library::Tracking;

/// Chapters closer than this are the same chapter.
const SAME_CHAPTER: f64 = 1e-6;

/// A book of the series as the ledger sees it: its volume and chapter numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OwnedBook {
    pub volume: Option<f64>,
    pub chapter: Option<f64>,
}

/// A new ledger row's state, and why it is ignored.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrival {
    Announced,
    Ignored(&'static str),
}

/// Codex's auto-ignore: a release with chapter or volume numbers none of whose axes the
/// series tracks is out of scope; one whose every item the library holds is owned.
/// (Codex counts a volume span with no whole volume in it, such as 2.5, as owned; here it
/// covers nothing, so it is announced.)
pub fn arrival(candidate: &CheckedCandidate, tracking: &Tracking, owned: &[OwnedBook]) -> Arrival {
    let (has_volumes, has_chapters) = (candidate.volumes.is_some(), candidate.chapters.is_some());
    if (has_volumes || has_chapters)
        && !(has_volumes && tracking.track_volumes)
        && !(has_chapters && tracking.track_chapters)
    {
        return Arrival::Ignored("out of the series' tracked axes");
    }
    if fully_owned(candidate, owned) {
        return Arrival::Ignored("already in the library");
    }
    Arrival::Announced
}

fn fully_owned(candidate: &CheckedCandidate, owned: &[OwnedBook]) -> bool {
    let volumes = candidate.volumes.as_deref().map(whole_volumes);
    let chapters = candidate.chapters.as_deref().map(chapter_points);
    let has_whole_volume = |volume: f64| owned.iter().any(|book| book.volume == Some(volume) && book.chapter.is_none());
    let has_chapter = |chapter: f64| {
        owned.iter().any(|book| book.chapter.is_some_and(|owned| (owned - chapter).abs() < SAME_CHAPTER))
    };
    match (volumes, chapters) {
        (None, None) => false,
        (Some(volumes), None) => !volumes.is_empty() && volumes.into_iter().all(has_whole_volume),
        (None, Some(chapters)) => !chapters.is_empty() && chapters.into_iter().all(has_chapter),
        (Some(volumes), Some(chapters)) => {
            if volumes.is_empty() || chapters.is_empty() || volumes.len() * chapters.len() > MAX_COVERED_ITEMS {
                return false;
            }
            volumes.iter().all(|&volume| {
                chapters.iter().all(|&chapter| {
                    owned.iter().any(|book| {
                        let same_chapter = book.chapter.is_some_and(|owned| (owned - chapter).abs() < SAME_CHAPTER);
                        (book.volume == Some(volume) && same_chapter)
                            || (book.volume == Some(volume) && book.chapter.is_none())
                            || (book.volume.is_none() && same_chapter)
                    })
                })
            })
        }
    }
}

/// The most items a release's spans are expanded into to ask whether the library holds
/// them all; a release covering more is announced.
const MAX_COVERED_ITEMS: usize = 10_000;

/// The whole volumes inside the spans; empty when there are more than
/// [`MAX_COVERED_ITEMS`]. Counted in integers: span ends are bounded by the candidate check.
fn whole_volumes(spans: &[NumericSpan]) -> Vec<f64> {
    let mut volumes = Vec::new();
    for span in spans {
        let (first, last) = (span.start.ceil() as i64, span.end.floor() as i64);
        if last.saturating_sub(first) >= MAX_COVERED_ITEMS as i64 || volumes.len() > MAX_COVERED_ITEMS {
            return Vec::new();
        }
        volumes.extend((first..=last).map(|volume| volume as f64));
    }
    if volumes.len() > MAX_COVERED_ITEMS { Vec::new() } else { volumes }
}

/// The chapters a span covers: a point is itself; a range is its whole chapters, and its
/// fractional ends. Empty when there are more than [`MAX_COVERED_ITEMS`].
fn chapter_points(spans: &[NumericSpan]) -> Vec<f64> {
    let mut points = Vec::new();
    for span in spans {
        if span.start == span.end {
            points.push(span.start);
            continue;
        }
        let (first, last) = (span.start.ceil() as i64, span.end.floor() as i64);
        if last.saturating_sub(first) >= MAX_COVERED_ITEMS as i64 || points.len() > MAX_COVERED_ITEMS {
            return Vec::new();
        }
        if span.start.fract() != 0.0 {
            points.push(span.start);
        }
        points.extend((first..=last).map(|chapter| chapter as f64));
        if span.end.fract() != 0.0 {
            points.push(span.end);
        }
    }
    if points.len() > MAX_COVERED_ITEMS { Vec::new() } else { points }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn span(start: f64, end: f64) -> NumericSpan {
        NumericSpan { start, end }
    }

    fn release(volumes: Option<Vec<NumericSpan>>, chapters: Option<Vec<NumericSpan>>) -> CheckedCandidate {
        CheckedCandidate { volumes, chapters, chapter: None, volume: None, observed_at: Utc::now(), released_at: None }
    }

    fn book(volume: Option<f64>, chapter: Option<f64>) -> OwnedBook {
        OwnedBook { volume, chapter }
    }

    #[test]
    fn an_axis_the_series_does_not_track_is_ignored() {
        let chapters_only = Tracking { track_chapters: false, ..Tracking::default() };
        let chapter = release(None, Some(vec![span(5.0, 5.0)]));
        assert_eq!(arrival(&chapter, &chapters_only, &[]), Arrival::Ignored("out of the series' tracked axes"));
        let both = release(Some(vec![span(1.0, 1.0)]), Some(vec![span(5.0, 5.0)]));
        assert_eq!(arrival(&both, &chapters_only, &[]), Arrival::Announced, "its volume is tracked");
        assert_eq!(arrival(&release(None, None), &chapters_only, &[]), Arrival::Announced, "no numbers");
    }

    #[test]
    fn a_release_the_library_holds_is_ignored() {
        let tracking = Tracking::default();
        let owned = [book(Some(1.0), None), book(None, Some(7.0)), book(Some(2.0), Some(9.5))];
        let cases = [
            (release(Some(vec![span(1.0, 1.0)]), None), true),
            (release(Some(vec![span(1.0, 2.0)]), None), false),
            (release(None, Some(vec![span(7.0, 7.0)])), true),
            (release(None, Some(vec![span(9.5, 9.5)])), true),
            (release(None, Some(vec![span(7.0, 8.0)])), false),
            (release(Some(vec![span(1.0, 1.0)]), Some(vec![span(3.0, 3.0)])), true),
            (release(Some(vec![span(2.0, 2.0)]), Some(vec![span(9.5, 9.5)])), true),
            (release(Some(vec![span(3.0, 3.0)]), Some(vec![span(7.0, 7.0)])), true),
            (release(Some(vec![span(3.0, 3.0)]), Some(vec![span(8.0, 8.0)])), false),
            (release(Some(vec![span(2.5, 2.5)]), None), false),
        ];
        for (candidate, ignored) in cases {
            let expected = if ignored { Arrival::Ignored("already in the library") } else { Arrival::Announced };
            assert_eq!(arrival(&candidate, &tracking, &owned), expected, "{candidate:?}");
        }
    }

    #[test]
    fn a_chapter_range_covers_its_chapters_and_fractional_ends() {
        assert_eq!(chapter_points(&[span(9.5, 12.0)]), vec![9.5, 10.0, 11.0, 12.0]);
        assert_eq!(chapter_points(&[span(3.0, 3.0)]), vec![3.0]);
        assert_eq!(whole_volumes(&[span(1.5, 3.2)]), vec![2.0, 3.0]);
        assert!(whole_volumes(&[span(0.0, 1e12)]).is_empty(), "not enumerated");
        assert!(chapter_points(&[span(1e17, 1e17 + 16.0)]).len() <= 17, "counted in integers");
        let many: Vec<NumericSpan> = (0..2000).map(|n| span(n as f64 * 10.0, n as f64 * 10.0 + 9.0)).collect();
        assert!(chapter_points(&many).is_empty() && whole_volumes(&many).is_empty(), "at most 10,000 items in all");
        let owned: Vec<OwnedBook> = (1..=200).map(|volume| book(Some(volume as f64), None)).collect();
        let wide = release(Some(vec![span(1.0, 200.0)]), Some(vec![span(1.0, 5000.0)]));
        assert_eq!(arrival(&wide, &Tracking::default(), &owned), Arrival::Announced, "a million pairs are not checked");
    }
}
