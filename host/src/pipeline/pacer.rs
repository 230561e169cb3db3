//! One plugin's pace, shared by every job of a pipeline: at most its `requestsPerMinute`
//! calls, evenly spaced, and a pause for every caller when the plugin answers RateLimited.
//! Hand-written: an even spacing and a shared pause are a dozen lines on tokio's clock,
//! where a rate-limiting crate would bring a bucket we do not need and no pause.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug)]
pub struct Pacer {
    spacing: Mutex<Option<Duration>>,
    /// The earliest the next call may start.
    next: Mutex<Instant>,
}

impl Pacer {
    pub fn new(per_minute: Option<u32>) -> Self {
        Self { spacing: Mutex::new(spacing(per_minute)), next: Mutex::new(Instant::now()) }
    }

    /// A new rate (the admin changed it).
    pub fn set_rate(&self, per_minute: Option<u32>) {
        *self.spacing.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = spacing(per_minute);
    }

    /// Waits for this call's turn.
    pub async fn turn(&self) {
        let at = {
            let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let at = (*next).max(Instant::now());
            *next = at + self.spacing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).unwrap_or_default();
            at
        };
        // A timer, even one already due, waits for the timer wheel's next millisecond tick.
        if at > Instant::now() {
            tokio::time::sleep_until(at).await;
        }
    }

    /// The plugin asked for a pause: no call starts before `for_how_long` from now.
    pub fn pause(&self, for_how_long: Duration) {
        let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *next = (*next).max(Instant::now() + for_how_long);
    }
}

fn spacing(per_minute: Option<u32>) -> Option<Duration> {
    per_minute.filter(|rate| *rate > 0).map(|rate| Duration::from_secs(60) / rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_and_a_pause_holds_everyone() {
        let pacer = Pacer::new(Some(120));
        let started = Instant::now();
        for _ in 0..3 {
            pacer.turn().await;
        }
        assert_eq!(started.elapsed(), Duration::from_secs(1), "three calls at 120 a minute take 1 s");
        pacer.pause(Duration::from_secs(30));
        pacer.turn().await;
        assert!(started.elapsed() >= Duration::from_secs(31), "{:?}", started.elapsed());
        let unpaced = Pacer::new(None);
        let started = Instant::now();
        for _ in 0..100 {
            unpaced.turn().await;
        }
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
