//! Retry policy, apart from transport: exponential backoff with full jitter.

use std::time::Duration;

use serde::Deserialize;

use crate::validate::Invalid;

/// Retries with exponential backoff and full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts per event before it is parked (the first try included).
    pub max_attempts: u32,
    /// Backoff ceiling of the first retry, in milliseconds.
    pub initial_backoff_ms: u64,
    /// Backoff ceiling of later retries, in milliseconds.
    pub max_backoff_ms: u64,
    /// Stop publishing this long before the invocation deadline, to leave
    /// time to park what is left, in milliseconds.
    pub deadline_margin_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 5,
            initial_backoff_ms: 100,
            max_backoff_ms: 2_000,
            deadline_margin_ms: 3_000,
        }
    }
}

impl RetryConfig {
    /// Checks the values.
    pub fn validate(self) -> Result<RetryConfig, Invalid> {
        if self.max_attempts == 0 {
            return Err(Invalid::new(
                "retry.max_attempts",
                "must be at least 1 (the first try counts)",
                "[retry] max_attempts = 5",
            ));
        }
        Ok(self)
    }
}

/// When to try again and how long to wait first.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: RetryConfig,
    jitter: bool,
    rng: u64,
}

impl Backoff {
    /// Full jitter: each wait is uniformly random in `[0, ceiling]`.
    pub fn new(config: RetryConfig) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        Backoff {
            config,
            jitter: true,
            rng: seed | 1,
        }
    }

    /// Without jitter every wait is its ceiling (for deterministic tests).
    pub fn without_jitter(config: RetryConfig) -> Self {
        Backoff {
            jitter: false,
            ..Backoff::new(config)
        }
    }

    /// Whether another attempt is allowed after `attempts` tries.
    pub fn may_retry(&self, attempts: u32) -> bool {
        attempts < self.config.max_attempts
    }

    /// The wait before retry number `retry` (1 for the first retry).
    pub fn delay(&mut self, retry: u32) -> Duration {
        let ceiling = self
            .config
            .initial_backoff_ms
            .saturating_mul(1u64 << (retry.saturating_sub(1)).min(30))
            .min(self.config.max_backoff_ms);
        let ms = if self.jitter {
            self.next_u64() % (ceiling + 1)
        } else {
            ceiling
        };
        Duration::from_millis(ms)
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RetryConfig {
        RetryConfig {
            max_attempts: 4,
            initial_backoff_ms: 100,
            max_backoff_ms: 500,
            deadline_margin_ms: 1_000,
        }
    }

    #[test]
    fn delays_double_up_to_the_ceiling_without_jitter() {
        let mut backoff = Backoff::without_jitter(config());
        let delays: Vec<u64> = (1..=5)
            .map(|r| backoff.delay(r).as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
    }

    #[test]
    fn jittered_delays_stay_within_their_ceiling() {
        let mut backoff = Backoff::new(config());
        for retry in 1..=6 {
            let ceiling = (100u64 << (retry - 1)).min(500);
            for _ in 0..200 {
                assert!(backoff.delay(retry).as_millis() as u64 <= ceiling);
            }
        }
    }

    #[test]
    fn attempts_are_bounded() {
        let backoff = Backoff::without_jitter(config());
        assert!(backoff.may_retry(3));
        assert!(!backoff.may_retry(4));
    }
}
