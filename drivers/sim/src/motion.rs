//! Time-based motion: a move is stored as where it started, where it goes, when it started and how
//! long it takes, so the position at any instant is computed rather than stepped by a thread.

use std::time::{Duration, Instant};

/// A straight-line move of an `N`-axis mechanism at constant speed (all axes arrive together).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Motion<const N: usize> {
    from: [f64; N],
    to: [f64; N],
    start: Instant,
    duration: Duration,
}

impl<const N: usize> Motion<N> {
    /// A mechanism at rest at `position`.
    pub(crate) fn at_rest(position: [f64; N]) -> Self {
        Self {
            from: position,
            to: position,
            start: Instant::now(),
            duration: Duration::ZERO,
        }
    }

    /// The position at `now`.
    pub(crate) fn position(&self, now: Instant) -> [f64; N] {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed >= self.duration {
            return self.to;
        }
        let f = elapsed.as_secs_f64() / self.duration.as_secs_f64();
        let mut p = self.from;
        for (i, p) in p.iter_mut().enumerate() {
            *p += (self.to[i] - self.from[i]) * f;
        }
        p
    }

    /// True while the move has not arrived at `now`.
    pub(crate) fn is_busy(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.start) < self.duration
    }

    /// Starts a move from wherever the mechanism is at `now` to `target` at `speed` (units per
    /// second, > 0). A move in progress is replaced, as a motion controller does.
    pub(crate) fn start(&mut self, now: Instant, target: [f64; N], speed: f64) {
        let from = self.position(now);
        let distance = from
            .iter()
            .zip(target.iter())
            .map(|(a, b)| (b - a) * (b - a))
            .sum::<f64>()
            .sqrt();
        let seconds = distance / speed;
        *self = Self {
            from,
            to: target,
            start: now,
            duration: Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX),
        };
    }

    /// Freezes the mechanism where it is at `now`.
    pub(crate) fn stop(&mut self, now: Instant) {
        *self = Self {
            from: self.position(now),
            to: self.position(now),
            start: now,
            duration: Duration::ZERO,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_and_arrives() {
        let t0 = Instant::now();
        let mut m = Motion::at_rest([0.0, 0.0]);
        m.start(t0, [30.0, 40.0], 50.0); // 50 units at 50/s: one second
        let mid = m.position(t0 + Duration::from_millis(500));
        assert!((mid[0] - 15.0).abs() < 1e-9 && (mid[1] - 20.0).abs() < 1e-9);
        assert!(m.is_busy(t0 + Duration::from_millis(999)));
        assert!(!m.is_busy(t0 + Duration::from_secs(1)));
        assert_eq!(m.position(t0 + Duration::from_secs(2)), [30.0, 40.0]);
        m.stop(t0 + Duration::from_millis(1500));
        assert_eq!(m.position(t0 + Duration::from_secs(5)), [30.0, 40.0]);
        m.start(t0, [0.0, 0.0], 50.0);
        m.stop(t0 + Duration::from_millis(500));
        let frozen = m.position(t0 + Duration::from_secs(5));
        assert!((frozen[0] - 15.0).abs() < 1e-9 && (frozen[1] - 20.0).abs() < 1e-9);
    }
}
