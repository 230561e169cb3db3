//! What a poll amounted to, counted, and the line a source keeps of its last poll (Codex's
//! wording, but for refusals: Codex calls every refusal "dropped below threshold").

use serde::{Deserialize, Serialize};

/// The counts of one poll: what the plugin said, and what the host recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollCounts {
    /// Items the plugin read upstream (its `parsed`, else the candidates it answered).
    pub fetched: u64,
    /// New ledger rows.
    pub recorded: u64,
    /// Releases the ledger already held.
    pub deduped: u64,
    /// Candidates refused (a wrong field, below the threshold, a series not tracked).
    pub rejected: u64,
    /// New rows that were announced (not ignored).
    pub announced: u64,
}

/// The source's last summary: "Fetched 3 items, recorded 2 (1 already in ledger)".
pub fn summary_line(counts: &PollCounts, not_modified: bool, upstream_status: Option<u16>) -> String {
    let mut line = if not_modified {
        "Up to date — upstream returned 304 (not modified)".to_owned()
    } else {
        match counts.fetched {
            0 => "Fetched 0 items".to_owned(),
            1 => format!("Fetched 1 item, recorded {}", counts.recorded),
            fetched => format!("Fetched {fetched} items, recorded {}", counts.recorded),
        }
    };
    if counts.deduped > 0 {
        line.push_str(&format!(" ({} already in ledger)", counts.deduped));
    }
    if counts.rejected > 0 {
        line.push_str(&format!(", rejected {}", counts.rejected));
    }
    if let Some(status @ (429 | 503)) = upstream_status {
        line.push_str(&format!(" · upstream warning: HTTP {status}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_what_the_poll_did() {
        let counts =
            |fetched, recorded, deduped, rejected| PollCounts { fetched, recorded, deduped, rejected, announced: 0 };
        assert_eq!(summary_line(&counts(0, 0, 0, 0), false, None), "Fetched 0 items");
        assert_eq!(summary_line(&counts(1, 1, 0, 0), false, Some(200)), "Fetched 1 item, recorded 1");
        assert_eq!(
            summary_line(&counts(5, 2, 2, 1), false, Some(429)),
            "Fetched 5 items, recorded 2 (2 already in ledger), rejected 1 · upstream warning: HTTP 429"
        );
        assert_eq!(
            summary_line(&counts(0, 0, 0, 0), true, Some(304)),
            "Up to date — upstream returned 304 (not modified)"
        );
    }
}
