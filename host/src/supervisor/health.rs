//! A plugin's health: which of its failures are faults, when it is restarted, when it is
//! disabled. Pure bookkeeping in memory, on the time it is given; the supervisor acts on
//! its verdicts, and writes to the database only when the plugin is disabled.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// The rules, with the protocol's numbers as defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Faults in a row (with no success between) after which a live instance is restarted.
    pub restart_after_faults_in_a_row: u32,
    /// Faults within [`HealthPolicy::window`] that disable the plugin.
    pub disable_after_faults: usize,
    pub window: Duration,
    /// The wait before the first restart; it doubles with each restart in a row.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// How often a running, idle instance is pinged.
    pub ping_interval: Duration,
    /// An instance with no call for this long is stopped (gracefully; the next call starts
    /// it again), whatever its transport. Checked at each ping.
    pub idle_timeout: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            restart_after_faults_in_a_row: 3,
            disable_after_faults: 5,
            window: Duration::from_secs(3600),
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            ping_interval: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// Faults kept to explain a disable.
const RECENT_FAULTS_KEPT: usize = 5;

/// What the supervisor must do after a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Keep the instance.
    Keep,
    /// Throw the instance away; a new one may start at `at`.
    Restart { at: Instant },
    /// Stop the plugin and keep it stopped until an admin resets it.
    Disable(Disabled),
}

/// Why a plugin was disabled, and its last faults (newest last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    pub reason: String,
    pub recent_faults: Vec<String>,
}

/// A plugin's health state.
#[derive(Debug, Clone)]
pub struct Health {
    policy: HealthPolicy,
    faults_in_a_row: u32,
    /// When each fault within the window happened, oldest first.
    fault_times: VecDeque<Instant>,
    recent_faults: VecDeque<String>,
    restarts_in_a_row: u32,
    restart_at: Option<Instant>,
    disabled: Option<Disabled>,
}

/// The health of a plugin as shown to an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthState {
    /// Answering, or not started yet.
    Healthy,
    /// Faulted lately; `restart_at` is when it may start again, if it is down.
    Degraded {
        faults_in_a_row: u32,
        faults_in_window: usize,
        restart_at: Option<Instant>,
    },
    Disabled(Disabled),
}

impl Health {
    pub fn new(policy: HealthPolicy) -> Self {
        Self {
            policy,
            faults_in_a_row: 0,
            fault_times: VecDeque::new(),
            recent_faults: VecDeque::new(),
            restarts_in_a_row: 0,
            restart_at: None,
            disabled: None,
        }
    }

    /// A plugin disabled before this host started.
    pub fn disabled(policy: HealthPolicy, disabled: Disabled) -> Self {
        Self { disabled: Some(disabled), ..Self::new(policy) }
    }

    pub fn policy(&self) -> &HealthPolicy {
        &self.policy
    }

    /// A call answered, with a result or a domain error: the plugin is healthy.
    pub fn record_success(&mut self) {
        self.faults_in_a_row = 0;
        self.restarts_in_a_row = 0;
    }

    /// A fault of a live instance (timeout, -32603, malformed answer).
    pub fn record_fault(&mut self, now: Instant, fault: String) -> Verdict {
        self.count(now, fault);
        if let Some(disabled) = self.disable_if_due() {
            return Verdict::Disable(disabled);
        }
        if self.faults_in_a_row >= self.policy.restart_after_faults_in_a_row {
            return Verdict::Restart { at: self.schedule_restart(now) };
        }
        Verdict::Keep
    }

    /// The instance died (crash, trap, protocol violation) or failed to start.
    pub fn record_death(&mut self, now: Instant, fault: String) -> Verdict {
        self.count(now, fault);
        match self.disable_if_due() {
            Some(disabled) => Verdict::Disable(disabled),
            None => Verdict::Restart { at: self.schedule_restart(now) },
        }
    }

    /// The instance died of a fault already counted (a call that timed out, then the
    /// guest's own deadline): restart it without counting the death again.
    pub fn record_consequence(&mut self, now: Instant) -> Verdict {
        Verdict::Restart { at: self.schedule_restart(now) }
    }

    /// Whether an instance may start now: `Ok(None)` yes, `Ok(Some(at))` from `at`.
    pub fn may_start(&self) -> Result<Option<Instant>, Disabled> {
        match &self.disabled {
            Some(disabled) => Err(disabled.clone()),
            None => Ok(self.restart_at),
        }
    }

    /// Clears everything: an admin reset or enabled the plugin.
    pub fn reset(&mut self) {
        *self = Self::new(self.policy);
    }

    pub fn state(&self, now: Instant) -> HealthState {
        if let Some(disabled) = &self.disabled {
            return HealthState::Disabled(disabled.clone());
        }
        let faults_in_window =
            self.fault_times.iter().filter(|at| now.duration_since(**at) < self.policy.window).count();
        if self.faults_in_a_row == 0 && self.restart_at.is_none_or(|at| at <= now) {
            return HealthState::Healthy;
        }
        HealthState::Degraded {
            faults_in_a_row: self.faults_in_a_row,
            faults_in_window,
            restart_at: self.restart_at.filter(|at| *at > now),
        }
    }

    fn count(&mut self, now: Instant, fault: String) {
        self.faults_in_a_row += 1;
        while self.fault_times.front().is_some_and(|at| now.duration_since(*at) >= self.policy.window) {
            self.fault_times.pop_front();
        }
        self.fault_times.push_back(now);
        if self.recent_faults.len() == RECENT_FAULTS_KEPT {
            self.recent_faults.pop_front();
        }
        self.recent_faults.push_back(fault);
    }

    fn disable_if_due(&mut self) -> Option<Disabled> {
        if self.fault_times.len() < self.policy.disable_after_faults {
            return None;
        }
        let disabled = Disabled {
            reason: format!(
                "disabled after {} faults within {}",
                self.fault_times.len(),
                describe_window(self.policy.window)
            ),
            recent_faults: self.recent_faults.iter().cloned().collect(),
        };
        self.disabled = Some(disabled.clone());
        Some(disabled)
    }

    /// The next start: the first backoff, doubled for each restart in a row, capped.
    fn schedule_restart(&mut self, now: Instant) -> Instant {
        let doubling = 2u32.saturating_pow(self.restarts_in_a_row.min(16));
        let wait = self.policy.first_backoff.saturating_mul(doubling).min(self.policy.max_backoff);
        self.restarts_in_a_row += 1;
        self.faults_in_a_row = 0;
        let at = now + wait;
        self.restart_at = Some(at);
        at
    }
}

fn describe_window(window: Duration) -> String {
    match window.as_secs() {
        3600 => "1 hour".to_owned(),
        seconds if seconds % 60 == 0 => format!("{} minutes", seconds / 60),
        seconds => format!("{seconds} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    #[test]
    fn deaths_back_off_from_1_s_doubling_to_60_s() {
        let policy = HealthPolicy { disable_after_faults: 100, ..HealthPolicy::default() };
        let mut health = Health::new(policy);
        let start = Instant::now();
        let waits: Vec<u64> = (0..9)
            .map(|_| match health.record_death(start, "crashed".into()) {
                Verdict::Restart { at } => at.duration_since(start).as_secs(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        // A success ends the run of restarts: the next one waits 1 s again.
        health.record_success();
        assert_eq!(health.record_death(start, "crashed".into()), Verdict::Restart { at: start + secs(1) });
    }

    #[test]
    fn three_faults_in_a_row_restart_a_live_instance_and_a_success_between_resets_the_count() {
        // (Five faults within the hour would disable it first: this plugin may have ten.)
        let mut health = Health::new(HealthPolicy { disable_after_faults: 10, ..HealthPolicy::default() });
        let now = Instant::now();
        assert_eq!(health.record_fault(now, "timeout".into()), Verdict::Keep);
        assert_eq!(health.record_fault(now, "timeout".into()), Verdict::Keep);
        health.record_success();
        assert_eq!(health.record_fault(now, "timeout".into()), Verdict::Keep);
        assert_eq!(health.record_fault(now, "timeout".into()), Verdict::Keep);
        assert_eq!(health.record_fault(now, "timeout".into()), Verdict::Restart { at: now + secs(1) });
    }

    #[test]
    fn a_death_that_follows_a_counted_fault_restarts_without_counting_again() {
        let mut health = Health::new(HealthPolicy::default());
        let now = Instant::now();
        assert_eq!(health.record_fault(now, "timeout".into()), Verdict::Keep);
        assert_eq!(health.record_consequence(now), Verdict::Restart { at: now + secs(1) });
        let HealthState::Degraded { faults_in_window, .. } = health.state(now) else { panic!() };
        assert_eq!(faults_in_window, 1);
    }

    #[test]
    fn five_faults_within_the_hour_disable_and_older_ones_do_not_count() {
        let mut health = Health::new(HealthPolicy::default());
        let start = Instant::now();
        health.record_death(start, "fault 0".into());
        for index in 1..5 {
            let at = start + secs(3600) + secs(index);
            let verdict = health.record_death(at, format!("fault {index}"));
            assert!(matches!(verdict, Verdict::Restart { .. }), "the first fault is out of the window: {verdict:?}");
        }
        let verdict = health.record_death(start + secs(3700), "fault 5".into());
        let Verdict::Disable(disabled) = verdict else { panic!("{verdict:?}") };
        assert_eq!(disabled.reason, "disabled after 5 faults within 1 hour");
        assert_eq!(disabled.recent_faults, ["fault 1", "fault 2", "fault 3", "fault 4", "fault 5"]);
        assert_eq!(health.may_start(), Err(disabled.clone()));
        assert_eq!(health.state(start + secs(3700)), HealthState::Disabled(disabled));
        health.reset();
        assert_eq!(health.may_start(), Ok(None));
        assert_eq!(health.state(start + secs(3700)), HealthState::Healthy);
    }
}
