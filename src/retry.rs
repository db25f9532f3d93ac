//! When to send the reload request of `--on-change http://…`: a state machine with deadlines and
//! no clock of its own (every input takes the current time), so every path is unit-tested with
//! made-up instants. The socket work lives in `http.rs`.
//!
//! A change makes a request due at once. A refused connection, a timeout or a 5xx is retried
//! after a backoff (1 s, doubling to 30 s) until a request succeeds; a 4xx is final. A change
//! while a request is in flight lets it finish, then sends again at once (the app may have read
//! its configuration before the change); a change while waiting to retry retries at once.

use std::time::{Duration, Instant};

pub const RETRY_FIRST: Duration = Duration::from_secs(1);
pub const RETRY_MAX: Duration = Duration::from_secs(30);
/// Connect, write and the whole response of one attempt must fit in this.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Success,
    /// Refused, reset, timed out, 5xx or not HTTP: worth trying again.
    Retryable,
    /// 4xx (or another status that a retry will not change): given up.
    Final,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing to send.
    Idle,
    /// Send as soon as the loop gets to it.
    Due,
    /// An attempt is in flight; it is abandoned (timed out) at `deadline`.
    Sending { deadline: Instant },
    /// The last attempt failed; try again at `until`.
    Waiting { until: Instant },
}

#[derive(Debug)]
pub struct Retry {
    step: Step,
    /// The delay before the next retry.
    backoff: Duration,
    /// The content changed during the attempt in flight: send again once it ends.
    again: bool,
}

impl Default for Retry {
    fn default() -> Self {
        Retry::new()
    }
}

impl Retry {
    pub fn new() -> Retry {
        Retry { step: Step::Idle, backoff: RETRY_FIRST, again: false }
    }

    #[cfg(test)]
    pub fn step(&self) -> Step {
        self.step
    }

    /// New content went live (after validation): a request is owed for it.
    pub fn changed(&mut self) {
        self.backoff = RETRY_FIRST;
        match self.step {
            Step::Sending { .. } => self.again = true,
            Step::Idle | Step::Due | Step::Waiting { .. } => self.step = Step::Due,
        }
    }

    /// Whether an attempt should start now.
    pub fn due(&self, now: Instant) -> bool {
        match self.step {
            Step::Due => true,
            Step::Waiting { until } => now >= until,
            Step::Idle | Step::Sending { .. } => false,
        }
    }

    /// An attempt started at `now`.
    pub fn started(&mut self, now: Instant) {
        self.step = Step::Sending { deadline: now + ATTEMPT_TIMEOUT };
    }

    /// Whether the attempt in flight ran out of time.
    pub fn timed_out(&self, now: Instant) -> bool {
        matches!(self.step, Step::Sending { deadline } if now >= deadline)
    }

    /// The attempt in flight ended. Returns the delay before the next attempt, if there is one.
    pub fn finished(&mut self, now: Instant, outcome: Outcome) -> Option<Duration> {
        if std::mem::take(&mut self.again) {
            self.backoff = RETRY_FIRST;
            self.step = Step::Due;
            return Some(Duration::ZERO);
        }
        match outcome {
            Outcome::Success | Outcome::Final => {
                self.backoff = RETRY_FIRST;
                self.step = Step::Idle;
                None
            }
            Outcome::Retryable => {
                let delay = self.backoff;
                self.backoff = (self.backoff * 2).min(RETRY_MAX);
                self.step = Step::Waiting { until: now + delay };
                Some(delay)
            }
        }
    }

    /// When the loop must wake up for this machine (a retry, or an attempt's timeout).
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.step {
            Step::Idle => None,
            Step::Sending { deadline } => Some(deadline),
            Step::Waiting { until } => Some(until),
            // due now: the loop sends before it sleeps again
            Step::Due => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn success_at_once_goes_idle() {
        let t0 = Instant::now();
        let mut r = Retry::new();
        assert!(!r.due(t0) && r.next_deadline().is_none());
        r.changed();
        assert!(r.due(t0));
        r.started(t0);
        assert!(!r.due(t0));
        assert_eq!(r.next_deadline(), Some(t0 + ATTEMPT_TIMEOUT));
        assert_eq!(r.finished(t0 + secs(1), Outcome::Success), None);
        assert_eq!(r.step(), Step::Idle);
        assert!(r.next_deadline().is_none());
    }

    #[test]
    fn failures_back_off_doubling_to_thirty_seconds() {
        let t0 = Instant::now();
        let mut r = Retry::new();
        r.changed();
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..8 {
            assert!(r.due(now));
            r.started(now);
            let delay = r.finished(now, Outcome::Retryable).unwrap();
            delays.push(delay.as_secs());
            assert!(!r.due(now + delay - Duration::from_millis(1)));
            assert_eq!(r.next_deadline(), Some(now + delay));
            now += delay;
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        // success resets the backoff
        r.started(now);
        assert_eq!(r.finished(now, Outcome::Success), None);
        r.changed();
        r.started(now);
        assert_eq!(r.finished(now, Outcome::Retryable), Some(secs(1)));
    }

    #[test]
    fn a_client_error_is_not_retried() {
        let t0 = Instant::now();
        let mut r = Retry::new();
        r.changed();
        r.started(t0);
        assert_eq!(r.finished(t0, Outcome::Final), None);
        assert!(!r.due(t0 + secs(100)));
    }

    #[test]
    fn timeout_after_ten_seconds() {
        let t0 = Instant::now();
        let mut r = Retry::new();
        r.changed();
        r.started(t0);
        assert!(!r.timed_out(t0 + secs(9)));
        assert!(r.timed_out(t0 + secs(10)));
        assert_eq!(r.finished(t0 + secs(10), Outcome::Retryable), Some(secs(1)));
        assert!(!r.timed_out(t0 + secs(20)));
    }

    #[test]
    fn a_change_while_waiting_retries_at_once_with_the_first_backoff() {
        let t0 = Instant::now();
        let mut r = Retry::new();
        r.changed();
        for _ in 0..4 {
            r.started(t0);
            r.finished(t0, Outcome::Retryable);
        }
        assert!(!r.due(t0 + secs(1)));
        r.changed();
        assert!(r.due(t0));
        r.started(t0);
        assert_eq!(r.finished(t0, Outcome::Retryable), Some(secs(1)));
    }

    #[test]
    fn a_change_during_an_attempt_sends_again_after_it() {
        let t0 = Instant::now();
        let mut r = Retry::new();
        r.changed();
        r.started(t0);
        r.changed();
        assert!(!r.due(t0), "one attempt at a time");
        assert_eq!(r.finished(t0, Outcome::Success), Some(Duration::ZERO));
        assert!(r.due(t0));
        r.started(t0);
        assert_eq!(r.finished(t0, Outcome::Success), None);
        assert_eq!(r.step(), Step::Idle);
        // also after a 4xx: the new content may be accepted
        r.changed();
        r.started(t0);
        r.changed();
        assert_eq!(r.finished(t0, Outcome::Final), Some(Duration::ZERO));
        assert!(r.due(t0));
    }
}
