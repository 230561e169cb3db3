//! What `check` asks a plugin, decided from its manifest: for each declared capability, its
//! methods with realistic params and with edge cases (an empty query, unicode, a very long
//! title, an id that does not exist); a method no plugin has; params no plugin can use.
//! Methods that change something outside the plugin (`sync/pushProgress`,
//! `recommendations/dismiss`, `clear`, `updateProfile`) only when writes are allowed.

use serde_json::{Value, json};

use crate::protocol::{HostMethod, Manifest};

/// A title a real library has.
pub const SERIES_TITLE: &str = "One Piece";
/// A book a real library has, with its author, ISBN and year.
pub const BOOK: (&str, &str, &str, i64) = ("The Left Hand of Darkness", "Ursula K. Le Guin", "9780441478125", 1969);
/// Scripts, accents, a dash and an emoji.
pub const UNICODE_TITLE: &str = "進撃の巨人 — Ünïcödé ✓ 🦀";
/// An id no provider has (its `:` and capitals make it no slug, no number, no ISBN).
pub const UNKNOWN_ID: &str = "codex-check:No-Such-Id";
/// A method no plugin has.
pub const UNKNOWN_METHOD: &str = "codex/check/noSuchMethod";

/// A title of about 4,500 characters.
pub fn long_title() -> String {
    "A Very Long Title ".repeat(250).trim_end().to_owned()
}

/// What an answer must be for the check to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A realistic request: an answer of the method's shape. An error is a warning (the
    /// answers could not be checked), -32603 a failure, -32601 a failure for a required
    /// method and a pass for an optional one.
    Answer,
    /// An edge case: any clean answer; a result is held to the method's shape.
    Survive,
    /// An id that does not exist: NotFound (-32002).
    NotFound,
    /// A method no plugin has: -32601.
    MethodNotFound,
    /// Params no plugin can use: -32602.
    InvalidParams,
}

/// Where a probe's params come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Params {
    /// Sent as they are (`None`: no params).
    Fixed(Option<Value>),
    /// An external id another probe's answer gave (`results[0].externalId` of a search,
    /// `recommendations[0].externalId`); the probe is not run when it gave none.
    FoundId { probe: &'static str, key: &'static str },
    /// A release source the plugin registered; not run when it registered none.
    RegisteredSource,
}

/// One request `check` sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub id: &'static str,
    pub title: &'static str,
    pub why: &'static str,
    pub method: &'static str,
    pub params: Params,
    pub expect: Expect,
    /// Changes something outside the plugin: sent only with `--allow-writes`.
    pub writes: bool,
}

impl Probe {
    /// The protocol method it calls, if it is one.
    pub fn host_method(&self) -> Option<HostMethod> {
        HostMethod::from_name(self.method)
    }
}

const WHY_REALISTIC: &str = "this is the request Codex sends; an answer that does not fit the protocol is dropped or refused, and the user sees nothing";
const WHY_EDGE: &str = "users type anything: a plugin that crashes or hangs on one input fails every user of the host until it is restarted";
const WHY_NOT_FOUND: &str = "Codex asks for ids it stored long ago; NotFound (-32002) tells it the item is gone, anything else looks like a fault or, worse, like the item";

fn probe(id: &'static str, title: &'static str, method: HostMethod, params: Value, expect: Expect) -> Probe {
    let why = match expect {
        Expect::Survive => WHY_EDGE,
        Expect::NotFound => WHY_NOT_FOUND,
        _ => WHY_REALISTIC,
    };
    Probe { id, title, why, method: method.name(), params: Params::Fixed(Some(params)), expect, writes: false }
}

fn found(mut probe: Probe, from: &'static str, key: &'static str) -> Probe {
    probe.params = Params::FoundId { probe: from, key };
    probe
}

fn writing(mut probe: Probe) -> Probe {
    probe.writes = true;
    probe
}

/// The probes of every capability the manifest declares, in the order they are sent.
pub fn capability_probes(manifest: &Manifest) -> Vec<Probe> {
    let capabilities = &manifest.capabilities;
    let mut probes = Vec::new();
    if capabilities.provides_series() {
        probes.extend(series_probes());
    }
    if capabilities.provides_books() {
        probes.extend(book_probes());
    }
    if capabilities.user_read_sync {
        probes.extend(sync_probes());
    }
    if capabilities.user_recommendation_provider {
        probes.extend(recommendation_probes());
    }
    if capabilities.release_source.is_some() {
        let mut poll = probe(
            "releases.poll",
            "releases/poll of a source it registered",
            HostMethod::ReleasesPoll,
            Value::Null,
            Expect::Answer,
        );
        poll.params = Params::RegisteredSource;
        probes.push(poll);
    }
    probes
}

fn series_probes() -> Vec<Probe> {
    use HostMethod::{SeriesGet, SeriesMatch, SeriesSearch};
    use json as j;
    vec![
        probe(
            "series.search",
            "metadata/series/search for a real title",
            SeriesSearch,
            j!({"query": SERIES_TITLE, "limit": 5}),
            Expect::Answer,
        ),
        probe(
            "series.search.empty",
            "metadata/series/search with an empty query",
            SeriesSearch,
            j!({"query": ""}),
            Expect::Survive,
        ),
        probe(
            "series.search.unicode",
            "metadata/series/search in several scripts and an emoji",
            SeriesSearch,
            j!({"query": UNICODE_TITLE}),
            Expect::Survive,
        ),
        probe(
            "series.search.long",
            "metadata/series/search with a 4,500-character title",
            SeriesSearch,
            j!({"query": long_title()}),
            Expect::Survive,
        ),
        found(
            probe(
                "series.get",
                "metadata/series/get of the first search result",
                SeriesGet,
                Value::Null,
                Expect::Answer,
            ),
            "series.search",
            "results",
        ),
        probe(
            "series.get.unknown",
            "metadata/series/get of an id that does not exist",
            SeriesGet,
            j!({"externalId": UNKNOWN_ID}),
            Expect::NotFound,
        ),
        probe(
            "series.match",
            "metadata/series/match of a real title (optional)",
            SeriesMatch,
            j!({"title": SERIES_TITLE, "year": 1997}),
            Expect::Answer,
        ),
    ]
}

fn book_probes() -> Vec<Probe> {
    use HostMethod::{BookGet, BookMatch, BookSearch};
    use json as j;
    let (title, author, isbn, year) = BOOK;
    vec![
        probe(
            "book.search",
            "metadata/book/search for a real title and author",
            BookSearch,
            j!({"query": title, "author": author, "limit": 5}),
            Expect::Answer,
        ),
        probe("book.search.isbn", "metadata/book/search by ISBN", BookSearch, j!({"isbn": isbn}), Expect::Answer),
        probe(
            "book.search.empty",
            "metadata/book/search with an empty query",
            BookSearch,
            j!({"query": ""}),
            Expect::Survive,
        ),
        probe(
            "book.search.unicode",
            "metadata/book/search in several scripts and an emoji",
            BookSearch,
            j!({"query": UNICODE_TITLE}),
            Expect::Survive,
        ),
        probe(
            "book.search.long",
            "metadata/book/search with a 4,500-character title",
            BookSearch,
            j!({"query": long_title()}),
            Expect::Survive,
        ),
        found(
            probe("book.get", "metadata/book/get of the first search result", BookGet, Value::Null, Expect::Answer),
            "book.search",
            "results",
        ),
        probe(
            "book.get.unknown",
            "metadata/book/get of an id that does not exist",
            BookGet,
            j!({"externalId": UNKNOWN_ID}),
            Expect::NotFound,
        ),
        probe(
            "book.match",
            "metadata/book/match of a real book (optional)",
            BookMatch,
            j!({"title": title, "authors": [author], "isbn": isbn, "year": year}),
            Expect::Answer,
        ),
    ]
}

fn sync_probes() -> Vec<Probe> {
    use HostMethod::{SyncPull, SyncPush, SyncStatus, SyncUserInfo};
    let entry = json!({
        "externalId": "codex-check-1", "status": "reading", "progress": {"chapters": 12, "volumes": 2},
        "score": 80, "title": SERIES_TITLE, "libraryId": "codex-check-library", "libraryName": "Manga"
    });
    vec![
        probe("sync.user-info", "sync/getUserInfo", SyncUserInfo, json!({}), Expect::Answer),
        probe("sync.pull", "sync/pullProgress, first page", SyncPull, json!({"limit": 50}), Expect::Answer),
        probe("sync.status", "sync/status (optional)", SyncStatus, json!({}), Expect::Answer),
        writing(probe(
            "sync.push",
            "sync/pushProgress of one entry",
            SyncPush,
            json!({"entries": [entry]}),
            Expect::Answer,
        )),
    ]
}

fn recommendation_probes() -> Vec<Probe> {
    use HostMethod::{RecommendationsClear, RecommendationsDismiss, RecommendationsGet, RecommendationsUpdateProfile};
    let library = json!([{
        "seriesId": "codex-check-series-1", "libraryId": "codex-check-library", "libraryName": "Manga",
        "title": SERIES_TITLE, "alternateTitles": ["ワンピース"], "year": 1997, "genres": ["Action", "Adventure"],
        "tags": ["Pirates"], "totalVolumeCount": 107, "externalIds": [], "readingStatus": "reading",
        "booksRead": 12, "booksOwned": 20, "userRating": 90
    }]);
    vec![
        probe(
            "recommendations.get",
            "recommendations/get for a one-series library",
            RecommendationsGet,
            json!({"library": library, "limit": 5, "excludeIds": []}),
            Expect::Answer,
        ),
        probe(
            "recommendations.get.empty",
            "recommendations/get for an empty library",
            RecommendationsGet,
            json!({"library": [], "excludeIds": []}),
            Expect::Survive,
        ),
        writing(found(
            probe(
                "recommendations.dismiss",
                "recommendations/dismiss of the first recommendation (optional)",
                RecommendationsDismiss,
                Value::Null,
                Expect::Answer,
            ),
            "recommendations.get",
            "recommendations",
        )),
        writing(probe(
            "recommendations.update-profile",
            "recommendations/updateProfile (optional)",
            RecommendationsUpdateProfile,
            json!({"library": library}),
            Expect::Answer,
        )),
        writing(probe(
            "recommendations.clear",
            "recommendations/clear (optional)",
            RecommendationsClear,
            json!({}),
            Expect::Answer,
        )),
    ]
}

/// A method no plugin has.
pub fn unknown_method() -> Probe {
    Probe {
        id: "lifecycle.unknown-method",
        title: "a method it does not have answered -32601",
        why: "Codex learns that an optional method is not supported from -32601; a plugin that crashes or stays silent instead takes the host's request with it",
        method: UNKNOWN_METHOD,
        params: Params::Fixed(Some(json!({}))),
        expect: Expect::MethodNotFound,
        writes: false,
    }
}

/// Params of the wrong type for a declared method whose params the SDK checks, if the
/// plugin declares one.
pub fn bad_params(manifest: &Manifest) -> Option<Probe> {
    let capabilities = &manifest.capabilities;
    let (method, params) = if capabilities.provides_series() {
        (HostMethod::SeriesGet, json!({"externalId": 42}))
    } else if capabilities.provides_books() {
        (HostMethod::BookGet, json!({"externalId": 42}))
    } else if capabilities.release_source.is_some() {
        (HostMethod::ReleasesPoll, json!({"sourceId": 42}))
    } else {
        return None;
    };
    Some(Probe {
        id: "lifecycle.bad-params",
        title: "params of the wrong type answered -32602",
        why: "-32602 tells the host the request was wrong, not the plugin; a crash or an internal error counts against the plugin's health",
        method: method.name(),
        params: Params::Fixed(Some(params)),
        expect: Expect::InvalidParams,
        writes: false,
    })
}

/// Why there is no bad-params probe for a plugin without one.
pub const NO_BAD_PARAMS_PROBE: &str = "it declares no method whose params the SDK checks (metadata get, releases/poll)";

/// `ping`.
pub fn ping(id: &'static str, title: &'static str) -> Probe {
    Probe {
        id,
        title,
        why: "Codex pings plugins to tell a live one from a hung one",
        method: HostMethod::Ping.name(),
        params: Params::Fixed(None),
        expect: Expect::Answer,
        writes: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(capabilities: Value) -> Manifest {
        serde_json::from_value(json!({
            "name": "p", "displayName": "P", "version": "1.0.0", "description": "d", "protocolVersion": "1.0",
            "capabilities": capabilities
        }))
        .unwrap()
    }

    #[test]
    fn the_probes_follow_the_declared_capabilities() {
        let ids =
            |capabilities| capability_probes(&manifest(capabilities)).iter().map(|probe| probe.id).collect::<Vec<_>>();
        assert_eq!(ids(json!({})), Vec::<&str>::new());
        let books = ids(json!({"metadataProvider": ["book"]}));
        assert!(books.iter().all(|id| id.starts_with("book.")), "{books:?}");
        assert!(books.contains(&"book.get.unknown"));
        let both = ids(json!({"metadataProvider": ["series", "book"], "userReadSync": true}));
        assert_eq!(both.first(), Some(&"series.search"));
        assert!(both.contains(&"sync.push"));
    }

    #[test]
    fn every_realistic_probe_sends_params_the_host_would_send() {
        let all = manifest(json!({
            "metadataProvider": ["series", "book"], "userReadSync": true, "userRecommendationProvider": true,
            "releaseSource": {"kinds": ["api-feed"]}
        }));
        let probes = capability_probes(&all);
        for probe in &probes {
            let method = probe.host_method().expect("a protocol method");
            if let (Params::Fixed(Some(params)), Expect::Answer) = (&probe.params, probe.expect) {
                method.prepare_params(params.clone()).unwrap_or_else(|why| panic!("{}: {why}", probe.id));
            }
        }
        let writes: Vec<_> = probes.iter().filter(|probe| probe.writes).map(|probe| probe.method).collect();
        assert_eq!(
            writes,
            ["sync/pushProgress", "recommendations/dismiss", "recommendations/updateProfile", "recommendations/clear"]
        );
        let bad = bad_params(&all).unwrap();
        assert!(
            HostMethod::SeriesGet
                .prepare_params(match bad.params {
                    Params::Fixed(Some(params)) => params,
                    _ => unreachable!(),
                })
                .is_err()
        );
        assert_eq!(bad_params(&manifest(json!({"userReadSync": true}))), None);
        assert_eq!(HostMethod::from_name(UNKNOWN_METHOD), None);
    }
}
