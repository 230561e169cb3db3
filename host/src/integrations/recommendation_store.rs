//! Users' recommendations in the host's database: each plugin's last answer for each user
//! (when, and what), and what each user dismissed (kept by the host, so a dismissal holds
//! whatever the plugin remembers).

use codex_plugin_protocol::types::recommendations::GetResponse;
use rusqlite::{OptionalExtension, params};
use std::collections::HashSet;
use std::path::Path;

use super::IntegrationError;
use super::records::{Records, failed};

pub struct RecommendationStore {
    records: Records,
}

impl RecommendationStore {
    pub fn open(path: &Path) -> Result<Self, IntegrationError> {
        Ok(Self { records: Records::open(path)? })
    }

    /// The cached answer of `plugin` for `user`, with when it was made (microseconds).
    pub fn cached(&self, plugin: &str, user: &str) -> Result<Option<(i64, GetResponse)>, IntegrationError> {
        let row: Option<(i64, String)> = self
            .records
            .lock()
            .query_row(
                "SELECT generated_at, recommendations FROM recommendation_cache WHERE plugin_id = ? AND user_id = ?",
                [plugin, user],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(failed)?;
        let Some((at, text)) = row else { return Ok(None) };
        match serde_json::from_str(&text) {
            Ok(answer) => Ok(Some((at, answer))),
            // Unreadable (written by a host that read it differently): as if never cached.
            Err(error) => {
                tracing::warn!(plugin, user, "cached recommendations unreadable, refreshing: {error}");
                Ok(None)
            }
        }
    }

    pub fn store(&self, plugin: &str, user: &str, at: i64, answer: &GetResponse) -> Result<(), IntegrationError> {
        let text = serde_json::to_string(answer).map_err(failed)?;
        self.records.lock()
            .execute(
                "INSERT INTO recommendation_cache (plugin_id, user_id, generated_at, recommendations) VALUES (?, ?, ?, ?)
                 ON CONFLICT (plugin_id, user_id) DO UPDATE SET generated_at = excluded.generated_at,
                     recommendations = excluded.recommendations",
                params![plugin, user, at, text],
            )
            .map_err(failed)?;
        Ok(())
    }

    pub fn dismissed(&self, user: &str) -> Result<HashSet<String>, IntegrationError> {
        let connection = self.records.lock();
        let mut statement = connection
            .prepare_cached("SELECT external_id FROM recommendation_dismissals WHERE user_id = ?")
            .map_err(failed)?;
        let rows = statement.query_map([user], |row| row.get(0)).map_err(failed)?;
        rows.collect::<Result<_, _>>().map_err(failed)
    }

    /// Records the dismissal and removes the id from every cached answer of the user, in
    /// one transaction; answers which plugins had recommended it.
    pub fn dismiss(
        &self,
        user: &str,
        external_id: &str,
        reason: Option<&str>,
        at: i64,
    ) -> Result<Vec<String>, IntegrationError> {
        let mut connection = self.records.lock();
        let transaction = connection.transaction().map_err(failed)?;
        transaction
            .execute(
                "INSERT INTO recommendation_dismissals (user_id, external_id, reason, dismissed_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (user_id, external_id) DO UPDATE SET reason = excluded.reason, dismissed_at = excluded.dismissed_at",
                params![user, external_id, reason, at],
            )
            .map_err(failed)?;
        let cached: Vec<(String, String)> = {
            let mut statement = transaction
                .prepare("SELECT plugin_id, recommendations FROM recommendation_cache WHERE user_id = ?")
                .map_err(failed)?;
            let rows = statement.query_map([user], |row| Ok((row.get(0)?, row.get(1)?))).map_err(failed)?;
            rows.collect::<Result<_, _>>().map_err(failed)?
        };
        let mut recommended_by = Vec::new();
        for (plugin, text) in cached {
            let Ok(mut answer) = serde_json::from_str::<GetResponse>(&text) else { continue };
            let before = answer.recommendations.len();
            answer.recommendations.retain(|recommendation| recommendation.external_id != external_id);
            if answer.recommendations.len() == before {
                continue;
            }
            let text = serde_json::to_string(&answer).map_err(failed)?;
            transaction
                .execute(
                    "UPDATE recommendation_cache SET recommendations = ? WHERE plugin_id = ? AND user_id = ?",
                    params![text, plugin, user],
                )
                .map_err(failed)?;
            recommended_by.push(plugin);
        }
        transaction.commit().map_err(failed)?;
        Ok(recommended_by)
    }
}
