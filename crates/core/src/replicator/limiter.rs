//! A token bucket fed the time, so it needs no clock of its own.

use buildmesh_protocol::Timestamp;

/// Allows `burst` requests at once and `per_second` on average.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    burst: f64,
    per_ms: f64,
    last: Timestamp,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: u32, per_second: u32, now: Timestamp) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            tokens: burst,
            burst,
            per_ms: f64::from(per_second) / 1000.0,
            last: now,
        }
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now: Timestamp) -> bool {
        let elapsed = now.ms_since(self.last) as f64;
        self.tokens = (self.tokens + elapsed * self.per_ms).min(self.burst);
        self.last = self.last.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let mut bucket = TokenBucket::new(3, 2, Timestamp(0));
        assert!((0..3).all(|_| bucket.take(Timestamp(0))));
        assert!(!bucket.take(Timestamp(0)));
        assert!(bucket.take(Timestamp(500)), "one token per 500 ms at 2/s");
        assert!(!bucket.take(Timestamp(500)));
        assert!(
            !bucket.take(Timestamp(100)),
            "time going backwards adds nothing"
        );
    }
}
