//! Timing and capacity settings of the planner.

use std::time::Duration;

/// How long a worker may go without a heartbeat before another worker takes over its runs.
/// Prefect 3.9.1's server marks a worker offline after three missed heartbeats (90 s at the
/// default 30 s interval). Four intervals leave room for one slow heartbeat on top of that.
pub const DEFAULT_LEASE_PERIOD: Duration = Duration::from_secs(120);

/// How long a group with our tags whose run is missing stays before it is deleted. It covers
/// a run that a paged filter missed for a tick and a run created just before Prefect shows it.
pub const DEFAULT_ORPHAN_GRACE: Duration = Duration::from_secs(300);

/// How long after a clean exit (code 0) the engine may take to report the final state. The
/// engine proposes that state before it exits, so this only absorbs Prefect API latency and
/// the Prefect client's retries (about 62 s of backoff at its defaults) plus a tick.
pub const DEFAULT_FINAL_STATE_GRACE: Duration = Duration::from_secs(120);

/// Lower bound of a run's `task_watch_poll_interval`, the read interval while a group
/// provisions or its run is not yet Running in Prefect. It keeps a pool that sets a tiny
/// interval from spending ARM's read budget (25 reads per second per region).
pub const DEFAULT_READ_INTERVAL_PROVISIONING: Duration = Duration::from_secs(1);

/// Read interval while the flow container runs and Prefect shows the run Running. The engine
/// reports states itself, so these reads only catch a container that died without
/// reporting. One read a minute keeps ARM reads low with many runs.
pub const DEFAULT_READ_INTERVAL_RUNNING: Duration = Duration::from_secs(60);

/// Interval between log reads while `stream_output` is on.
pub const DEFAULT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Interval between repeated deletes (or stops) of a group that is still listed. ARM deletes
/// asynchronously, and a group normally disappears within this time.
pub const DEFAULT_CLEANUP_RETRY_INTERVAL: Duration = Duration::from_secs(30);

/// Settings the planner applies on every tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannerSettings {
    /// Heartbeat age after which another worker's runs are taken over.
    pub lease_period: Duration,
    /// Age of an orphaned group before it is deleted.
    pub orphan_grace: Duration,
    /// Wait after exit code 0 for the final state before the run is marked Crashed.
    pub final_state_grace: Duration,
    /// Lower bound of the read interval while provisioning.
    pub read_interval_provisioning: Duration,
    /// Read interval while running.
    pub read_interval_running: Duration,
    /// Interval between log reads.
    pub log_interval: Duration,
    /// Interval between repeated cleanups.
    pub cleanup_retry_interval: Duration,
    /// `--limit`: the maximum number of runs this worker has at once, adopted ones included.
    /// `None` means no limit.
    pub limit: Option<usize>,
}

impl Default for PlannerSettings {
    fn default() -> Self {
        Self {
            lease_period: DEFAULT_LEASE_PERIOD,
            orphan_grace: DEFAULT_ORPHAN_GRACE,
            final_state_grace: DEFAULT_FINAL_STATE_GRACE,
            read_interval_provisioning: DEFAULT_READ_INTERVAL_PROVISIONING,
            read_interval_running: DEFAULT_READ_INTERVAL_RUNNING,
            log_interval: DEFAULT_LOG_INTERVAL,
            cleanup_retry_interval: DEFAULT_CLEANUP_RETRY_INTERVAL,
            limit: None,
        }
    }
}
