//! A plugin's stderr, forwarded to `tracing` line by line.
//!
//! Each line loses a leading ISO timestamp, is logged at the level it carries (`[ERROR]`
//! anywhere, `WARN:` at the start; info by default) with the plugin's id, and is cut at [`MAX_LOGGED_LINE`].
//! The pipe is always drained to its end, so a plugin never blocks on a full stderr; past
//! [`LINES_PER_SECOND`] lines in a second the rest are counted, not logged.

use regex::Regex;
use std::sync::LazyLock;
use std::time::Duration;
use tokio::io::AsyncRead;
use tokio::time::Instant;

use super::LineTap;
use crate::protocol::codec::LineReader;

/// Longest stderr line logged; the rest of it is dropped.
pub const MAX_LOGGED_LINE: usize = 8 << 10;
/// Lines logged per second per plugin; a flood beyond it is summarized.
pub const LINES_PER_SECOND: u32 = 200;

static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?\s*").expect("valid regex")
});
static BRACKETED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\[(error|err|warning|warn|info|debug|trace)\]\s?").expect("valid regex"));
static COLON: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^(error|err|warning|warn|info|debug|trace):\s?").expect("valid regex"));

/// The level a plugin's log line carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// Strips a leading timestamp, finds the level token (bracketed forms first), removes it.
/// A line without a token is info.
pub fn parse_line(line: &str) -> (LineLevel, String) {
    let (level, message) = parse_token(line);
    (level.unwrap_or(LineLevel::Info), message)
}

/// The level token a line carries, if any (see [`parse_line`]), and the line without it.
pub fn parse_token(line: &str) -> (Option<LineLevel>, String) {
    let line = TIMESTAMP.replace(line.trim_end(), "");
    let found = BRACKETED.captures(&line).or_else(|| COLON.captures(&line));
    let Some(captures) = found else { return (None, line.into_owned()) };
    let token = captures.get(0).expect("a match has a whole group");
    let level = match captures[1].to_ascii_lowercase().as_str() {
        "error" | "err" => LineLevel::Error,
        "warning" | "warn" => LineLevel::Warn,
        "info" => LineLevel::Info,
        _ => LineLevel::Debug,
    };
    let message = format!("{}{}", &line[..token.start()], &line[token.end()..]);
    (Some(level), message.trim().to_owned())
}

/// What [`forward`] did with a plugin's stderr.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Forwarded {
    pub logged: u64,
    pub suppressed: u64,
}

/// Reads `stderr` to its end, logging as described above; every line (flood included) is
/// also handed to `tap`.
pub async fn forward<R: AsyncRead + Unpin>(stderr: R, plugin: String, tap: Option<LineTap>) -> Forwarded {
    let mut totals = Forwarded::default();
    let mut lines = LineReader::new(stderr, MAX_LOGGED_LINE);
    let mut window_start = Instant::now();
    let mut logged_in_window = 0u32;
    let mut suppressed = 0u64;
    loop {
        let line = match lines.next_line_truncated().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(error) => {
                tracing::warn!(plugin = %plugin, "reading the plugin's stderr failed: {error}");
                break;
            }
        };
        if let Some(tap) = &tap {
            tap(line.bytes);
        }
        if window_start.elapsed() >= Duration::from_secs(1) {
            totals.suppressed += suppressed;
            report_suppressed(&plugin, &mut suppressed);
            window_start = Instant::now();
            logged_in_window = 0;
        }
        if logged_in_window >= LINES_PER_SECOND {
            suppressed += 1;
            continue;
        }
        let text = String::from_utf8_lossy(line.bytes);
        if text.trim().is_empty() {
            continue;
        }
        logged_in_window += 1;
        totals.logged += 1;
        let (level, mut message) = parse_line(&text);
        if line.dropped > 0 {
            message.push_str(&format!(" … ({} more bytes cut)", line.dropped));
        }
        match level {
            LineLevel::Error => tracing::error!(plugin = %plugin, "{message}"),
            LineLevel::Warn => tracing::warn!(plugin = %plugin, "{message}"),
            LineLevel::Info => tracing::info!(plugin = %plugin, "{message}"),
            LineLevel::Debug => tracing::debug!(plugin = %plugin, "{message}"),
        }
    }
    totals.suppressed += suppressed;
    report_suppressed(&plugin, &mut suppressed);
    totals
}

fn report_suppressed(plugin: &str, suppressed: &mut u64) {
    if *suppressed > 0 {
        tracing::warn!(plugin = %plugin, suppressed = *suppressed, "plugin stderr flood: {suppressed} lines not logged");
        *suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_timestamps_and_tokens() {
        let cases = [
            (
                "2026-11-22T01:20:07.109Z [INFO] [metadata-openlibrary] Starting plugin",
                LineLevel::Info,
                "[metadata-openlibrary] Starting plugin",
            ),
            (
                "2026-11-22T01:20:07.142Z [ERROR] [openlibrary] Failed to fetch",
                LineLevel::Error,
                "[openlibrary] Failed to fetch",
            ),
            ("[warning] disk almost full", LineLevel::Warn, "disk almost full"),
            ("[ERR] boom", LineLevel::Error, "boom"),
            ("WARN: slow answer", LineLevel::Warn, "slow answer"),
            ("debug: x=1", LineLevel::Debug, "x=1"),
            ("[TRACE] deep", LineLevel::Debug, "deep"),
            ("2026-01-01 10:00:00+02:00 plain line", LineLevel::Info, "plain line"),
            ("no level [keeps] other brackets", LineLevel::Info, "no level [keeps] other brackets"),
            ("Ünïcödé [WARN] ✓ fine", LineLevel::Warn, "Ünïcödé ✓ fine"),
            ("TypeError: fetch failed", LineLevel::Info, "TypeError: fetch failed"),
            ("Connection error: timeout", LineLevel::Info, "Connection error: timeout"),
            ("2026-01-01T00:00:00Z error: disk full", LineLevel::Error, "disk full"),
        ];
        for (line, level, message) in cases {
            assert_eq!(parse_line(line), (level, message.to_owned()), "{line}");
        }
    }

    #[tokio::test]
    async fn a_flood_is_drained_to_the_end_and_mostly_counted_not_logged() {
        let flood = "[INFO] line\n".repeat(50_000) + &"x".repeat(100_000) + "\n";
        let forwarded = forward(flood.as_bytes(), "flood".into(), None).await;
        assert_eq!(forwarded.logged + forwarded.suppressed, 50_001, "every line was read");
        assert!(forwarded.logged <= 2 * u64::from(LINES_PER_SECOND), "{forwarded:?}");
    }
}
