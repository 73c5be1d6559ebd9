//! Client-side token buckets per (subscription, region) that keep the worker inside ARM's
//! request limits and ACI's create and delete quotas.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Tolerance for float rounding of refilled tokens, so a wait computed for exactly one token
/// does not end a hair short of it and sleep again.
const TOKEN_EPSILON: f64 = 1e-9;

/// Size of one token bucket: how many requests may go at once and how fast that refills.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSize {
    pub burst: f64,
    pub refill_per_second: f64,
}

/// A quota of `max` requests per `window`, enforced as a bucket of `max` tokens refilling
/// at `max / window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaWindow {
    pub max: u32,
    pub window: Duration,
}

impl QuotaWindow {
    fn bucket_size(self) -> BucketSize {
        BucketSize {
            burst: f64::from(self.max),
            refill_per_second: f64::from(self.max) / self.window.as_secs_f64().max(f64::EPSILON),
        }
    }
}

/// Limiter sizes. The defaults are ARM's token buckets per subscription and region (reads
/// 250 refilling 25/s, writes and deletes 200 refilling 10/s) and ACI's default quotas of
/// container group creates and deletes (100 per 5 minutes and 300 per hour each).
#[derive(Debug, Clone, PartialEq)]
pub struct LimiterSettings {
    pub reads: BucketSize,
    pub writes: BucketSize,
    pub deletes: BucketSize,
    pub container_group_creates: Vec<QuotaWindow>,
    pub container_group_deletes: Vec<QuotaWindow>,
}

impl Default for LimiterSettings {
    fn default() -> Self {
        let aci_quota = vec![
            QuotaWindow {
                max: 100,
                window: Duration::from_secs(5 * 60),
            },
            QuotaWindow {
                max: 300,
                window: Duration::from_secs(60 * 60),
            },
        ];
        Self {
            reads: BucketSize {
                burst: 250.0,
                refill_per_second: 25.0,
            },
            writes: BucketSize {
                burst: 200.0,
                refill_per_second: 10.0,
            },
            deletes: BucketSize {
                burst: 200.0,
                refill_per_second: 10.0,
            },
            container_group_creates: aci_quota.clone(),
            container_group_deletes: aci_quota,
        }
    }
}

/// Kind of request, which picks the buckets it draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestClass {
    /// GET: the ARM read bucket.
    Read,
    /// POST actions such as stop: the ARM write bucket.
    Write,
    /// PUT of a container group: the ARM write bucket and ACI's create quota.
    Create,
    /// DELETE of a container group: the ARM delete bucket and ACI's delete quota.
    Delete,
}

#[derive(Debug)]
struct Bucket {
    size: BucketSize,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(size: BucketSize, now: Instant) -> Self {
        Self {
            size,
            tokens: size.burst,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.size.refill_per_second).min(self.size.burst);
        self.updated = now;
    }

    /// Time until one token is available; zero when one is there now.
    fn wait_for_token(&self) -> Duration {
        let missing = 1.0 - self.tokens;
        if missing <= TOKEN_EPSILON {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(missing / self.size.refill_per_second.max(f64::EPSILON))
    }
}

/// Lowercased subscription id and region.
type RegionKey = (String, String);

/// The buckets of one (subscription, region).
#[derive(Debug)]
struct RegionBuckets {
    by_class: HashMap<RequestClass, Vec<Bucket>>,
}

impl RegionBuckets {
    fn new(settings: &LimiterSettings, now: Instant) -> Self {
        let buckets = |arm: BucketSize, quotas: &[QuotaWindow]| {
            let mut list = vec![Bucket::full(arm, now)];
            list.extend(quotas.iter().map(|q| Bucket::full(q.bucket_size(), now)));
            list
        };
        let by_class = HashMap::from([
            (RequestClass::Read, buckets(settings.reads, &[])),
            (RequestClass::Write, buckets(settings.writes, &[])),
            (
                RequestClass::Create,
                buckets(settings.writes, &settings.container_group_creates),
            ),
            (
                RequestClass::Delete,
                buckets(settings.deletes, &settings.container_group_deletes),
            ),
        ]);
        Self { by_class }
    }

    /// Takes a token from every bucket of `class` if all have one; otherwise returns how
    /// long to wait before trying again.
    fn try_take(&mut self, class: RequestClass, now: Instant) -> Result<(), Duration> {
        let buckets = self
            .by_class
            .get_mut(&class)
            .expect("every class has buckets");
        buckets.iter_mut().for_each(|b| b.refill(now));
        let wait = buckets
            .iter()
            .map(Bucket::wait_for_token)
            .max()
            .unwrap_or_default();
        if !wait.is_zero() {
            return Err(wait);
        }
        buckets.iter_mut().for_each(|b| b.tokens -= 1.0);
        Ok(())
    }
}

/// A limiter shared by every clone of the ARM client.
///
/// Write and create share the ARM write bucket: a write bucket is per subscription and
/// region in ARM, whatever the operation. Buckets are created full on first use.
#[derive(Debug)]
pub struct Limiter {
    settings: LimiterSettings,
    regions: Mutex<HashMap<RegionKey, Arc<Mutex<RegionBuckets>>>>,
}

impl Limiter {
    pub fn new(settings: LimiterSettings) -> Self {
        Self {
            settings,
            regions: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until a request of `class` may go to `region` of `subscription`, takes its
    /// tokens and returns how long it waited.
    pub async fn acquire(&self, subscription: &str, region: &str, class: RequestClass) -> Duration {
        let buckets = self.region(subscription, region);
        let started = Instant::now();
        loop {
            let now = Instant::now();
            let result = buckets
                .lock()
                .expect("limiter lock poisoned")
                .try_take(class, now);
            match result {
                Ok(()) => return now - started,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    fn region(&self, subscription: &str, region: &str) -> Arc<Mutex<RegionBuckets>> {
        let key = (
            subscription.to_ascii_lowercase(),
            region.to_ascii_lowercase(),
        );
        let mut regions = self.regions.lock().expect("limiter lock poisoned");
        regions
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Mutex::new(RegionBuckets::new(
                    &self.settings,
                    Instant::now(),
                )))
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_waited(waited: Duration, expected: Duration) {
        let difference = (waited.as_secs_f64() - expected.as_secs_f64()).abs();
        assert!(
            difference < 1e-6,
            "waited {waited:?}, expected {expected:?}"
        );
    }

    fn small() -> LimiterSettings {
        LimiterSettings {
            reads: BucketSize {
                burst: 2.0,
                refill_per_second: 1.0,
            },
            writes: BucketSize {
                burst: 10.0,
                refill_per_second: 10.0,
            },
            deletes: BucketSize {
                burst: 10.0,
                refill_per_second: 10.0,
            },
            container_group_creates: vec![QuotaWindow {
                max: 3,
                window: Duration::from_secs(60),
            }],
            container_group_deletes: vec![],
        }
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_refill_rate() {
        let limiter = Limiter::new(small());
        assert_eq!(
            limiter.acquire("s", "westeurope", RequestClass::Read).await,
            Duration::ZERO
        );
        assert_eq!(
            limiter.acquire("s", "westeurope", RequestClass::Read).await,
            Duration::ZERO
        );
        let waited = limiter.acquire("s", "westeurope", RequestClass::Read).await;
        assert_waited(waited, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn regions_have_separate_buckets() {
        let limiter = Limiter::new(small());
        for _ in 0..2 {
            limiter.acquire("s", "westeurope", RequestClass::Read).await;
        }
        assert_eq!(
            limiter.acquire("s", "eastus", RequestClass::Read).await,
            Duration::ZERO
        );
        assert_eq!(
            limiter
                .acquire("other", "westeurope", RequestClass::Read)
                .await,
            Duration::ZERO
        );
    }

    #[tokio::test(start_paused = true)]
    async fn create_quota_limits_creates_only() {
        let limiter = Limiter::new(small());
        for _ in 0..3 {
            assert_eq!(
                limiter.acquire("s", "r", RequestClass::Create).await,
                Duration::ZERO
            );
        }
        assert_eq!(
            limiter.acquire("s", "r", RequestClass::Write).await,
            Duration::ZERO
        );
        // The quota refills at 3 per 60 s, one token every 20 s.
        let waited = limiter.acquire("s", "r", RequestClass::Create).await;
        assert_waited(waited, Duration::from_secs(20));
    }

    #[tokio::test(start_paused = true)]
    async fn default_sizes_allow_bursts() {
        let limiter = Limiter::new(LimiterSettings::default());
        for _ in 0..250 {
            limiter.acquire("s", "r", RequestClass::Read).await;
        }
        let waited = limiter.acquire("s", "r", RequestClass::Read).await;
        assert_waited(waited, Duration::from_millis(40));
        for _ in 0..100 {
            limiter.acquire("s", "r", RequestClass::Delete).await;
        }
        // The 5-minute delete quota refills one token every 3 s.
        let waited = limiter.acquire("s", "r", RequestClass::Delete).await;
        assert_waited(waited, Duration::from_secs(3));
    }
}
