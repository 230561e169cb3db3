//! Scheduled syncs: the admin's cron schedule for a sync plugin (`_codex.syncCronSchedule`
//! in its admin config, five fields or six with seconds), and whether a run fell due.

use chrono::{DateTime, Utc};
use codex_plugin_protocol::types::initialize::HOST_ONLY_NAMESPACE;
use croner::Cron;
use serde_json::{Map, Value};

/// The admin config key of the schedule, inside `_codex`.
pub const SCHEDULE_KEY: &str = "syncCronSchedule";

/// A plugin's sync schedule: none when the admin set none; an error, for the log, when
/// what they set is not a cron expression.
pub fn schedule(admin_config: &Map<String, Value>) -> Option<Result<Cron, String>> {
    let text = admin_config.get(HOST_ONLY_NAMESPACE)?.get(SCHEDULE_KEY)?;
    let Some(text) = text.as_str() else {
        return Some(Err(format!("`_codex.{SCHEDULE_KEY}` is {text}, not a cron expression")));
    };
    Some(
        parse_cron(text).map_err(|error| format!("`_codex.{SCHEDULE_KEY}` {text:?} is not a cron expression: {error}")),
    )
}

/// A cron expression of five fields, or six with seconds (UTC): the host's one reading of
/// schedules (syncs, release polls).
pub fn parse_cron(text: &str) -> Result<Cron, croner::errors::CronError> {
    Cron::new(text).with_seconds_optional().parse()
}

/// Whether `cron` has a run in `(since, now]`.
pub fn due(cron: &Cron, since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    cron.find_next_occurrence(&since, false).is_ok_and(|next| next <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_schedule_is_read_from_the_admins_codex_settings() {
        let config = |value: Value| json!({"_codex": {"syncCronSchedule": value}}).as_object().cloned().unwrap();
        assert!(schedule(&Map::new()).is_none());
        assert!(schedule(&config(json!("0 */6 * * *"))).unwrap().is_ok());
        assert!(schedule(&config(json!("*/30 * * * * *"))).unwrap().is_ok(), "seconds are allowed");
        let error = schedule(&config(json!("every day"))).unwrap().unwrap_err();
        assert!(error.contains("not a cron expression"), "{error}");
        assert!(schedule(&config(json!(6))).unwrap().unwrap_err().contains("is 6"));
    }

    #[test]
    fn a_run_is_due_once_its_time_passed() {
        let cron = schedule(&json!({"_codex": {"syncCronSchedule": "0 */6 * * *"}}).as_object().cloned().unwrap())
            .unwrap()
            .unwrap();
        assert!(due(&cron, at("2026-12-02T05:59:00Z"), at("2026-12-02T06:00:00Z")));
        assert!(!due(&cron, at("2026-12-02T06:00:00Z"), at("2026-12-02T11:59:59Z")), "the 6:00 run was counted");
        assert!(due(&cron, at("2026-12-02T06:00:00Z"), at("2026-12-02T12:00:30Z")));
    }
}
