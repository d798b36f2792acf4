//! How often a repeated warning reaches the daemon's log, whatever a client
//! sends.

use std::time::{Duration, Instant};

/// Lets one event through per interval and counts the rest.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u32,
}

impl Throttle {
    pub const fn new(interval: Duration) -> Self {
        Self { interval, last: None, suppressed: 0 }
    }

    /// `Some(n)` when the event may happen now, `n` being how many were held
    /// back since the last one; `None` when it is held back.
    pub fn admit(&mut self, now: Instant) -> Option<u32> {
        if self.last.is_some_and(|t| now.duration_since(t) < self.interval) {
            self.suppressed = self.suppressed.saturating_add(1);
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_interval_and_the_rest_counted() {
        let mut t = Throttle::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(t.admit(t0), Some(0));
        for i in 1..=5 {
            assert_eq!(t.admit(t0 + Duration::from_millis(i * 100)), None);
        }
        assert_eq!(t.admit(t0 + Duration::from_millis(1000)), Some(5));
        assert_eq!(t.admit(t0 + Duration::from_millis(2500)), Some(0));
    }
}
