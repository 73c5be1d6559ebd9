//! Prometheus metrics: the families the worker exports and the hooks that record them.
//!
//! Every name is prefixed `prefect_aci_worker_`. Labels are bounded sets: never a flow run
//! id, a container group name or a message.

use std::sync::Arc;
use std::time::Duration;

/// Which remote API a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    Prefect,
    Arm,
}

/// The worker's metric registry and families.
#[derive(Debug, Default)]
pub struct Metrics {}

impl Metrics {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Records one finished Prefect API request. `status` is `None` for a transport error
    /// or a timeout.
    pub fn observe_prefect_request(
        &self,
        _operation: &'static str,
        _status: Option<u16>,
        _elapsed: Duration,
    ) {
    }

    /// Records one finished ARM request. `status` is `None` for a transport error or a
    /// timeout.
    pub fn observe_arm_request(
        &self,
        _operation: &'static str,
        _status: Option<u16>,
        _elapsed: Duration,
    ) {
    }

    /// Counts a request that was throttled (HTTP 429).
    pub fn record_throttled(&self, _api: Api, _operation: &'static str) {}

    /// Stores the value of one `x-ms-ratelimit-remaining-*` response header. `header` is the
    /// part after `x-ms-ratelimit-remaining-`, for example `subscription-reads`.
    pub fn set_arm_ratelimit_remaining(&self, _header: &str, _remaining: i64) {}
}
