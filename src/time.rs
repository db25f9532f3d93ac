//! Instants that cannot overflow: every deadline is computed here.

use std::time::{Duration, Instant};

/// `now + d`, or the latest representable instant near it: never panics, whatever `d` is.
#[inline(always)]
pub fn after(now: Instant, d: Duration) -> Instant {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    match now.checked_add(d) {
        Some(t) => t,
        None => now.checked_add(YEAR).unwrap_or(now),
    }
}

/// The earlier of two optional deadlines (`None` is no deadline).
#[inline(always)]
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A duration for log lines, always in the same units: whole seconds as seconds (`1 s`, `10 s`),
/// anything else below 10 s in milliseconds (`250 ms`, `1500 ms`: what reinit measures), then
/// seconds to a tenth below 2 minutes (`12.5 s`), then minutes (`3 min`).
pub struct Human(pub Duration);

impl std::fmt::Display for Human {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.0;
        if d < Duration::from_secs(10) && d.subsec_nanos() != 0 || d.is_zero() {
            write!(f, "{} ms", d.as_millis())
        } else if d < Duration::from_secs(120) {
            let tenths = d.as_millis() / 100;
            match tenths % 10 {
                0 => write!(f, "{} s", tenths / 10),
                t => write!(f, "{}.{t} s", tenths / 10),
            }
        } else {
            write!(f, "{} min", d.as_secs() / 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_ignores_missing_deadlines() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        assert_eq!(earliest(Some(later), Some(now)), Some(now));
        assert_eq!(earliest(Some(now), Some(later)), Some(now));
        assert_eq!(earliest(None, Some(later)), Some(later));
        assert_eq!(earliest(Some(later), None), Some(later));
        assert_eq!(earliest(None, None), None);
    }

    #[test]
    fn never_overflows() {
        let now = Instant::now();
        assert_eq!(after(now, Duration::from_secs(1)), now + Duration::from_secs(1));
        assert!(after(now, Duration::MAX) > now);
    }

    #[test]
    fn durations_read_the_same_everywhere() {
        let h = |ms: u64| Human(Duration::from_millis(ms)).to_string();
        assert_eq!(h(0), "0 ms");
        assert_eq!(h(129), "129 ms");
        assert_eq!(h(1500), "1500 ms");
        assert_eq!(h(1000), "1 s");
        assert_eq!(h(2000), "2 s");
        assert_eq!(h(10_000), "10 s");
        assert_eq!(h(12_540), "12.5 s");
        assert_eq!(h(3_600_000), "60 min");
    }
}
