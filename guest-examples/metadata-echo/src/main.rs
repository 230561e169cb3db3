//! `metadata-echo`: a series and book metadata plugin that answers from the query itself.
//!
//! It shows the whole metadata surface of the SDK: searches echo the query as results of
//! decreasing relevance (as many as the admin's `maxResults`, default 5, or the request's
//! `limit` if smaller); `get` of an id a search gave returns fully populated metadata
//! (titles with languages, volume and chapter counts, authors with roles, ratings, links),
//! and an id that is not a slug is NotFound; `match` answers `{match, confidence, alternatives}`.
//!
//! Three more admin settings let an operator try the host's matching on it: `unsure` (a
//! list of words: a query with one of them gets results scored at most 0.5), `unknown` (a
//! list of words: a query with one of them finds nothing) and `rateLimitFirst` (the first N
//! searches answer RateLimited with `retryAfterSeconds: 1`).
//!
//! Build and run it natively:
//!
//! ```sh
//! cargo build -p metadata-echo
//! codex-plugin-host call metadata/series/search '{"query":"dune"}' --admin-config '{"maxResults":3}' \
//!     --plugins-dir target -- target/debug/metadata-echo
//! ```
//!
//! or as a WebAssembly component: `cargo build -p metadata-echo --target wasm32-wasip2 --profile guest`.

use codex_plugin_sdk::prelude::*;
use serde_json::Value;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, Ordering};

const DEFAULT_MAX_RESULTS: i64 = 5;

struct Echo;

/// Searches answered so far (for `rateLimitFirst`).
static SEARCHES: AtomicI64 = AtomicI64::new(0);

/// Whether `query` holds one of the words listed under the admin setting `key`.
fn mentions(ctx: &Context, key: &str, query: &str) -> bool {
    let query = query.to_lowercase();
    let words: Vec<Value> = ctx.admin_config().get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    words.iter().filter_map(Value::as_str).any(|word| query.contains(&word.to_lowercase()))
}

impl Echo {
    /// `count` results for `query`, the first the most relevant.
    fn results(ctx: &Context, query: &str, limit: Option<i64>) -> Result<Vec<SearchResult>> {
        let answered = SEARCHES.fetch_add(1, Ordering::Relaxed);
        if answered < ctx.admin_integer("rateLimitFirst").unwrap_or(0) {
            return Err(PluginError::rate_limited(1, "echo asks the host to slow down"));
        }
        let configured = ctx.admin_integer("maxResults").unwrap_or(DEFAULT_MAX_RESULTS);
        let count = if mentions(ctx, "unknown", query) { 0 } else { configured };
        let count = limit.map_or(count, |limit| limit.min(count)).clamp(0, 50);
        let top = if mentions(ctx, "unsure", query) { 0.5 } else { 1.0 };
        Ok(Self::scored(query, count, top))
    }

    fn scored(query: &str, count: i64, top: f64) -> Vec<SearchResult> {
        (0..count)
            .map(|index| SearchResult {
                external_id: format!("{}-{index}", slug(query)),
                title: if index == 0 { query.to_owned() } else { format!("{query} ({})", index + 1) },
                alternate_titles: vec![format!("{query} (alt)")],
                year: Some(2000 + index),
                cover_url: Some(format!("https://echo.example/covers/{}-{index}.jpg", slug(query))),
                relevance_score: Some(top - index as f64 * 0.1),
                preview: None,
            })
            .collect()
    }

    fn work(external_id: &str) -> WorkMetadata {
        let title = title_of(external_id);
        WorkMetadata {
            external_id: external_id.to_owned(),
            external_url: format!("https://echo.example/works/{external_id}"),
            title: Some(title.clone()),
            alternate_titles: vec![
                AlternateTitle {
                    title: format!("{title} (English)"),
                    language: Some("en".into()),
                    title_type: Some("english".into()),
                },
                AlternateTitle {
                    title: format!("{title} (日本語)"),
                    language: Some("ja".into()),
                    title_type: Some("native".into()),
                },
            ],
            summary: Some(format!("Everything about {title}, echoed.")),
            year: Some(2001),
            language: Some("en".into()),
            genres: vec!["Adventure".into(), "Science Fiction".into()],
            tags: vec!["Echo".into()],
            authors: vec![
                Author {
                    name: "Ada Writer".into(),
                    role: Some(AuthorRole::Writer),
                    sort_name: Some("Writer, Ada".into()),
                },
                Author { name: "Bo Artist".into(), role: Some(AuthorRole::Penciller), sort_name: None },
            ],
            artists: vec!["Bo Artist".into()],
            publisher: Some("Echo Press".into()),
            cover_url: Some(format!("https://echo.example/covers/{external_id}.jpg")),
            rating: Some(ExternalRating { score: 87.5, vote_count: Some(1200), source: "echo".into() }),
            external_ratings: vec![ExternalRating { score: 82.0, vote_count: Some(300), source: "other-echo".into() }],
            external_links: vec![
                ExternalLink {
                    url: format!("https://echo.example/works/{external_id}"),
                    label: "Echo".into(),
                    link_type: Some(LinkType::Provider),
                },
                ExternalLink {
                    url: "https://echo.example/shop".into(),
                    label: "Shop".into(),
                    link_type: Some(LinkType::Purchase),
                },
            ],
            external_ids: vec![ExternalId { source: "api:echo".into(), external_id: external_id.to_owned() }],
        }
    }

    fn matched(title: &str) -> MatchResponse {
        let mut results = Self::scored(title, 3, 1.0).into_iter();
        let best = results.next();
        MatchResponse {
            confidence: Some(if best.is_some() { 0.9 } else { 0.0 }),
            best,
            alternatives: results.collect(),
        }
    }
}

impl SeriesProvider for Echo {
    async fn search(&self, ctx: &Context, params: SeriesSearchParams) -> Result<SearchResponse> {
        Ok(SearchResponse { results: Self::results(ctx, &params.query, params.limit)?, next_cursor: None })
    }

    async fn get(&self, _ctx: &Context, params: GetParams) -> Result<SeriesMetadata> {
        known(&params.external_id)?;
        Ok(SeriesMetadata {
            work: Self::work(&params.external_id),
            status: Some(SeriesStatus::Ongoing),
            total_volume_count: Some(14),
            total_chapter_count: Some(47.5),
            age_rating: Some(13),
            reading_direction: Some(ReadingDirection::Rtl),
            banner_url: Some(format!("https://echo.example/banners/{}.jpg", params.external_id)),
        })
    }

    async fn best_match(&self, _ctx: &Context, params: SeriesMatchParams) -> Result<MatchResponse> {
        Ok(Self::matched(&params.title))
    }
}

impl BookProvider for Echo {
    async fn search(&self, ctx: &Context, params: BookSearchParams) -> Result<SearchResponse> {
        let query = params.query.or(params.isbn).unwrap_or_default();
        Ok(SearchResponse { results: Self::results(ctx, &query, params.limit)?, next_cursor: None })
    }

    async fn get(&self, _ctx: &Context, params: GetParams) -> Result<BookMetadata> {
        known(&params.external_id)?;
        Ok(BookMetadata {
            work: Self::work(&params.external_id),
            edition: BookEdition {
                subtitle: Some("An Echo".into()),
                book_type: Some("novel".into()),
                volume: Some(1.0),
                page_count: Some(320),
                isbn: Some("9780000000002".into()),
                isbns: vec!["9780000000002".into()],
                series_position: Some(1.0),
                series_total: Some(3),
                ..BookEdition::default()
            },
            subjects: vec!["Echoes".into()],
            covers: vec![BookCover {
                url: format!("https://echo.example/covers/{}-large.jpg", params.external_id),
                width: Some(600),
                height: Some(900),
                size: Some("large".into()),
            }],
            awards: vec![BookAward {
                name: "Echo Prize".into(),
                year: Some(2002),
                category: Some("Novel".into()),
                won: true,
            }],
        })
    }

    async fn best_match(&self, _ctx: &Context, params: BookMatchParams) -> Result<MatchResponse> {
        Ok(Self::matched(&params.title))
    }
}

fn slug(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

/// Whether `external_id` could be an echo id: a slug, lowercase letters, digits and dashes
/// (`dune-0`, or `naruto` stored by a library). Any other is NotFound, as a real provider
/// answers an id it does not have.
fn known(external_id: &str) -> Result<()> {
    let slug = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    match !external_id.is_empty() && external_id.chars().all(slug) {
        true => Ok(()),
        false => Err(PluginError::NotFound(format!("no work `{external_id}`: echo ids are slugs of a query"))),
    }
}

/// The title an external id was made from: `dune-0` → `dune`.
fn title_of(external_id: &str) -> String {
    external_id.rsplit_once('-').map_or(external_id, |(title, _)| title).replace('-', " ")
}

fn main() -> ExitCode {
    let info =
        PluginInfo::new("metadata-echo", "Metadata Echo", "0.1.0", "Series and book metadata echoed from the query");
    Plugin::new(info).series(Echo).books(Echo).run()
}
