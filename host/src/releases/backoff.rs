//! Per-upstream-host backoff: after an upstream answered 429 or 503, every source on that
//! host waits (2×, 4×, 8×, then 16× the base), and the first good answer ends the wait.
//! Codex computes the same multiplier and then never reads it; here the scheduler does.

use chrono::{DateTime, Duration, Utc};
use rustc_hash::FxHashMap;
use serde_json::Value;

/// The largest multiple of the base a host waits (Codex: `MAX_BACKOFF_MULTIPLIER`).
pub const MAX_BACKOFF_MULTIPLIER: u32 = 16;
/// A host not heard of for this long starts afresh (Codex: 24 h).
pub const BACKOFF_EXPIRY: Duration = Duration::hours(24);
/// The config keys a source's upstream address is read from, in Codex's order.
const ADDRESS_KEYS: [&str; 5] = ["url", "feedUrl", "feed_url", "baseUrl", "base_url"];

/// The upstream host a source polls: the host of the first address in its config (no
/// scheme, port or path, lowercased), else the plugin's id (all its sources share it).
pub fn upstream_host(config: Option<&Value>, plugin: &str) -> String {
    let address = ADDRESS_KEYS
        .iter()
        .filter_map(|key| config?.get(key)?.as_str())
        .map(str::trim)
        .find(|address| !address.is_empty());
    let Some(address) = address else { return plugin.to_owned() };
    let host = match url::Url::parse(address) {
        Ok(url) => url.host_str().map(str::to_owned),
        Err(_) => None,
    };
    host.unwrap_or_else(|| {
        let bare = address.split_once("://").map_or(address, |(_, rest)| rest);
        let bare = bare.split(['/', '?', '#']).next().unwrap_or(bare);
        bare.rsplit_once(':').map_or(bare, |(host, _)| host).to_owned()
    })
    .to_lowercase()
}

/// What a poll said of its upstream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UpstreamAnswer {
    /// 429 or 503, or the plugin's RATE_LIMITED error; with the wait the upstream asked for.
    Throttled { retry_after: Option<Duration> },
    /// Any 2xx or 3xx (304 too), or no status at all.
    Fine,
    /// Another status (a 500): the backoff is left as it is.
    Other,
}

impl UpstreamAnswer {
    pub fn from_status(status: Option<u16>) -> Self {
        match status {
            Some(429 | 503) => Self::Throttled { retry_after: None },
            None | Some(200..=399) => Self::Fine,
            Some(_) => Self::Other,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct HostWait {
    multiplier: u32,
    until: DateTime<Utc>,
    heard: DateTime<Utc>,
}

/// Every upstream host's wait.
#[derive(Debug, Default)]
pub struct Backoffs {
    base: Duration,
    hosts: FxHashMap<String, HostWait>,
}

impl Backoffs {
    /// Waits are multiples of `base`.
    pub fn new(base: Duration) -> Self {
        Self { base, hosts: FxHashMap::default() }
    }

    /// Records what a poll said of `host`.
    pub fn record(&mut self, host: &str, answer: UpstreamAnswer, now: DateTime<Utc>) {
        self.hosts.retain(|_, wait| now - wait.heard < BACKOFF_EXPIRY);
        match answer {
            UpstreamAnswer::Fine => {
                self.hosts.remove(host);
            }
            UpstreamAnswer::Other => {}
            UpstreamAnswer::Throttled { retry_after } => {
                let multiplier =
                    self.hosts.get(host).map_or(2, |wait| (wait.multiplier * 2).min(MAX_BACKOFF_MULTIPLIER));
                // The upstream's own wait counts, up to a day.
                let asked = retry_after.unwrap_or(Duration::zero()).min(BACKOFF_EXPIRY);
                let wait =
                    self.base.checked_mul(multiplier as i32).unwrap_or(BACKOFF_EXPIRY).max(asked).min(BACKOFF_EXPIRY);
                let until = now.checked_add_signed(wait).unwrap_or(now);
                self.hosts.insert(host.to_owned(), HostWait { multiplier, until, heard: now });
            }
        }
    }

    /// Until when `host` is not polled, if it is backing off.
    pub fn waiting_until(&self, host: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let wait = self.hosts.get(host).filter(|wait| now - wait.heard < BACKOFF_EXPIRY)?;
        Some(wait.until).filter(|until| *until > now)
    }

    /// The multiplier `host` is at (1 when it is not backing off).
    pub fn multiplier(&self, host: &str) -> u32 {
        self.hosts.get(host).map_or(1, |wait| wait.multiplier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_upstream_host_comes_from_the_sources_address_or_the_plugin() {
        assert_eq!(upstream_host(Some(&json!({"url": "https://Nyaa.si:443/?page=rss"})), "p"), "nyaa.si");
        assert_eq!(
            upstream_host(Some(&json!({"url": " ", "feedUrl": "http://127.0.0.1:8080/feed"})), "p"),
            "127.0.0.1"
        );
        assert_eq!(upstream_host(Some(&json!({"base_url": "api.mangaupdates.com/v1"})), "p"), "api.mangaupdates.com");
        assert_eq!(upstream_host(Some(&json!({"uploader": "tsuna69"})), "release-nyaa"), "release-nyaa");
        assert_eq!(upstream_host(None, "release-nyaa"), "release-nyaa");
    }

    #[test]
    fn a_throttled_host_waits_longer_each_time_and_a_good_answer_ends_it() {
        let now = Utc::now();
        let mut backoffs = Backoffs::new(Duration::minutes(5));
        let throttled = UpstreamAnswer::Throttled { retry_after: None };
        for (round, multiplier) in [2, 4, 8, 16, 16].into_iter().enumerate() {
            backoffs.record("a", throttled, now);
            assert_eq!(backoffs.multiplier("a"), multiplier, "round {round}");
        }
        assert_eq!(backoffs.waiting_until("a", now), Some(now + Duration::minutes(80)));
        assert_eq!(backoffs.waiting_until("b", now), None, "only that host");
        backoffs.record("a", UpstreamAnswer::Other, now);
        assert_eq!(backoffs.multiplier("a"), 16, "a 500 changes nothing");
        backoffs.record("a", UpstreamAnswer::from_status(Some(304)), now);
        assert_eq!((backoffs.multiplier("a"), backoffs.waiting_until("a", now)), (1, None));
    }

    #[test]
    fn the_upstreams_own_wait_is_kept_and_old_waits_expire() {
        let now = Utc::now();
        let mut backoffs = Backoffs::new(Duration::seconds(10));
        backoffs.record("a", UpstreamAnswer::Throttled { retry_after: Some(Duration::hours(1)) }, now);
        assert_eq!(backoffs.waiting_until("a", now), Some(now + Duration::hours(1)));
        backoffs.record("huge", UpstreamAnswer::Throttled { retry_after: Some(Duration::days(100_000)) }, now);
        assert_eq!(backoffs.waiting_until("huge", now), Some(now + BACKOFF_EXPIRY), "at most a day");
        assert_eq!(backoffs.waiting_until("huge", now + BACKOFF_EXPIRY), None);
        backoffs.record("b", UpstreamAnswer::Fine, now + BACKOFF_EXPIRY);
        assert_eq!(backoffs.multiplier("a"), 1, "forgotten after a day");
        assert_eq!(UpstreamAnswer::from_status(Some(503)), UpstreamAnswer::Throttled { retry_after: None });
        assert_eq!(UpstreamAnswer::from_status(None), UpstreamAnswer::Fine);
    }
}
