//! Retry policy for Prefect API calls: which failures to retry and how long to wait.

use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// First backoff delay. Prefect's own client waits `2**try` seconds, so 2 s then doubling.
const DEFAULT_BASE_DELAY: Duration = Duration::from_secs(2);
/// Ceiling of one backoff delay, so a long outage is probed at least once a minute.
const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(60);
/// Ceiling of a server-sent `Retry-After`, so a bad header cannot stall a call for hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Jitter added on top of each delay, as a fraction of it (Prefect's default is 0.2).
const JITTER_FACTOR: f64 = 0.2;

/// HTTP statuses that Prefect's client retries: request timeout, throttling, bad gateway and
/// service unavailable.
pub const RETRY_STATUSES: [u16; 4] = [408, 429, 502, 503];

/// How many times, and with what delays, a failed call is retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retrying.
    pub max_retries: u32,
    /// Delay before the first retry when the server sends no `Retry-After`.
    pub base_delay: Duration,
    /// Ceiling of the exponential delay.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Builds a policy with Prefect's delays and `max_retries` retries.
    pub fn new(max_retries: u32) -> Self {
        Self {
            max_retries,
            base_delay: DEFAULT_BASE_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
        }
    }

    /// Returns the wait before retry number `retry` (0 for the first retry). A
    /// `retry_after` from the server is the minimum; jitter only adds to it.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let base = match retry_after {
            Some(wait) => wait.min(MAX_RETRY_AFTER),
            None => {
                let factor = 2u32.saturating_pow(retry.min(16));
                self.base_delay.saturating_mul(factor).min(self.max_delay)
            }
        };
        let jitter = rand::rng().random_range(0.0..=JITTER_FACTOR);
        base + base.mul_f64(jitter)
    }
}

/// True if a response with `status` should be retried.
pub fn is_retryable_status(status: u16) -> bool {
    RETRY_STATUSES.contains(&status)
}

/// Reads `Retry-After` as delta-seconds or an HTTP date; `None` if absent or unparsable.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let when = OffsetDateTime::parse(value, &Rfc2822).ok()?;
    let wait = when - OffsetDateTime::now_utc();
    Some(wait.try_into().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn delay_doubles_with_jitter_bound() {
        let policy = RetryPolicy::new(5);
        for retry in 0..4 {
            let expected = Duration::from_secs(2u64 << retry);
            let delay = policy.delay(retry, None);
            assert!(delay >= expected, "retry {retry}: {delay:?}");
            assert!(
                delay <= expected.mul_f64(1.0 + JITTER_FACTOR),
                "retry {retry}: {delay:?}"
            );
        }
    }

    #[test]
    fn delay_is_capped() {
        let policy = RetryPolicy::new(20);
        let delay = policy.delay(15, None);
        assert!(
            delay <= DEFAULT_MAX_DELAY.mul_f64(1.0 + JITTER_FACTOR),
            "{delay:?}"
        );
    }

    #[test]
    fn retry_after_is_the_minimum() {
        let policy = RetryPolicy::new(5);
        let delay = policy.delay(0, Some(Duration::from_secs(7)));
        assert!(delay >= Duration::from_secs(7), "{delay:?}");
        assert!(delay <= Duration::from_secs_f64(7.0 * 1.2), "{delay:?}");
    }

    #[test]
    fn retry_after_seconds_parsed() {
        assert_eq!(retry_after(&headers("3")), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after(&headers("0.5")),
            Some(Duration::from_millis(500))
        );
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn retry_after_date_parsed() {
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT")),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retryable_statuses() {
        for status in [408, 429, 502, 503] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [400, 404, 409, 422, 500, 504] {
            assert!(!is_retryable_status(status), "{status}");
        }
    }
}
