//! Prometheus metrics: the families the worker exports and the hooks that record them.
//!
//! Every family of ours is prefixed `prefect_aci_worker_`. The process families read from
//! `/proc` keep their conventional unprefixed names (`process_*`). Labels are bounded sets:
//! never a flow run id, a container group name or a message.

mod labels;
mod process;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use labels::{
    BuildLabels, HeaderLabels, KindLabels, OperationLabels, PhaseLabels, ReasonLabels,
    RequestLabels, ResultLabels, StatusLabel, ThrottledLabels,
};

/// Prefix of every family the worker defines, in the style of controller-runtime.
pub const PREFIX: &str = "prefect_aci_worker";

/// Bucket bounds of `reconcile_duration_seconds`. A tick is a few list calls plus the
/// actions it starts, so most take well under a second. The upper buckets catch ticks
/// stalled behind throttling.
const RECONCILE_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Bucket bounds of the request latency histograms. ARM writes take seconds and Prefect
/// reads take milliseconds, so the buckets span both.
const REQUEST_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Bucket bounds of `flow_run_start_delay_seconds`. Creating a container group and pulling
/// its image takes tens of seconds to minutes, and the default start timeout is 240 s.
const START_DELAY_BUCKETS: [f64; 12] = [
    1.0, 5.0, 10.0, 20.0, 30.0, 60.0, 90.0, 120.0, 180.0, 240.0, 600.0, 1800.0,
];

/// Which remote API a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    Prefect,
    Arm,
}

impl Api {
    /// Label value of this API: `prefect` or `arm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Prefect => "prefect",
            Api::Arm => "arm",
        }
    }
}

type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;
type SecondsGauge = Gauge<f64, AtomicU64>;

/// The worker's metric registry and families. Recording is cheap from any task: a family
/// with labels takes a read lock, and a write lock only on the first use of a label set.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_errors: Family<KindLabels, Counter>,
    reconcile_duration: Histogram,
    last_reconcile_success: SecondsGauge,
    claimed: Counter,
    submitted: Counter,
    crashed: Family<ReasonLabels, Counter>,
    cancelled: Counter,
    groups_by_phase: Family<PhaseLabels, Gauge>,
    orphans_deleted: Counter,
    prefect_requests: Family<RequestLabels, Counter>,
    prefect_request_duration: HistogramFamily<OperationLabels>,
    arm_requests: Family<RequestLabels, Counter>,
    arm_request_duration: HistogramFamily<OperationLabels>,
    throttled: Family<ThrottledLabels, Counter>,
    arm_ratelimit_remaining: Family<HeaderLabels, Gauge>,
    start_delay: Histogram,
    oldest_waiting: SecondsGauge,
    ready: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Self {
            registry: Registry::default(),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Histogram::new(RECONCILE_BUCKETS),
            last_reconcile_success: SecondsGauge::default(),
            claimed: Counter::default(),
            submitted: Counter::default(),
            crashed: Family::default(),
            cancelled: Counter::default(),
            groups_by_phase: Family::default(),
            orphans_deleted: Counter::default(),
            prefect_requests: Family::default(),
            prefect_request_duration: Family::new_with_constructor(request_histogram),
            arm_requests: Family::default(),
            arm_request_duration: Family::new_with_constructor(request_histogram),
            throttled: Family::default(),
            arm_ratelimit_remaining: Family::default(),
            start_delay: Histogram::new(START_DELAY_BUCKETS),
            oldest_waiting: SecondsGauge::default(),
            ready: Gauge::default(),
        };
        metrics.registered()
    }
}

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

impl Metrics {
    /// Builds the registry with every family registered and the process collector attached.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn registered(mut self) -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(process::ProcessCollector::new()));
        let ours = root.sub_registry_with_prefix(PREFIX);
        self.register_reconcile(ours);
        self.register_flow_runs(ours);
        self.register_requests(ours);
        ours.register(
            "ready",
            "1 while the worker is ready (the /readyz checks pass), else 0",
            self.ready.clone(),
        );
        ours.register(
            "build",
            "Version of the running worker binary",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        self.registry = root;
        self
    }

    fn register_reconcile(&self, registry: &mut Registry) {
        registry.register(
            "reconcile",
            "Reconcile passes finished, by result (success or error)",
            self.reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconcile passes that failed, by error kind",
            self.reconcile_errors.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Wall time of one reconcile pass",
            Unit::Seconds,
            self.reconcile_duration.clone(),
        );
        registry.register_with_unit(
            "last_reconcile_success_timestamp",
            "Unix time at which the last successful reconcile pass finished",
            Unit::Seconds,
            self.last_reconcile_success.clone(),
        );
    }

    fn register_flow_runs(&self, registry: &mut Registry) {
        let counters = [
            (
                "flow_runs_claimed",
                "Flow runs claimed with a Pending proposal",
                &self.claimed,
            ),
            (
                "flow_runs_submitted",
                "Flow runs whose container group was created",
                &self.submitted,
            ),
            (
                "flow_runs_cancelled",
                "Flow runs the worker moved to Cancelled",
                &self.cancelled,
            ),
            (
                "orphans_deleted",
                "Container groups deleted because their flow run was missing or final",
                &self.orphans_deleted,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "flow_runs_crashed",
            "Flow runs the worker marked Crashed, by reason",
            self.crashed.clone(),
        );
        registry.register(
            "container_groups",
            "Container groups of this work pool seen in the last reconcile pass, by phase",
            self.groups_by_phase.clone(),
        );
        registry.register_with_unit(
            "flow_run_start_delay",
            "Time from a flow run's scheduled start to its container group running",
            Unit::Seconds,
            self.start_delay.clone(),
        );
        registry.register_with_unit(
            "oldest_waiting_flow_run",
            "How long the flow run waiting longest to start has been past its scheduled start",
            Unit::Seconds,
            self.oldest_waiting.clone(),
        );
    }

    fn register_requests(&self, registry: &mut Registry) {
        registry.register(
            "prefect_requests",
            "Prefect API requests finished, by operation and HTTP status (error: no response)",
            self.prefect_requests.clone(),
        );
        registry.register_with_unit(
            "prefect_request_duration",
            "Latency of Prefect API requests, by operation",
            Unit::Seconds,
            self.prefect_request_duration.clone(),
        );
        registry.register(
            "arm_requests",
            "ARM requests finished, by operation and HTTP status (error: no response)",
            self.arm_requests.clone(),
        );
        registry.register_with_unit(
            "arm_request_duration",
            "Latency of ARM requests, by operation",
            Unit::Seconds,
            self.arm_request_duration.clone(),
        );
        registry.register(
            "throttled_requests",
            "Requests answered with HTTP 429, by api and operation",
            self.throttled.clone(),
        );
        registry.register(
            "arm_ratelimit_remaining",
            "Last value of each x-ms-ratelimit-remaining-* ARM response header",
            self.arm_ratelimit_remaining.clone(),
        );
    }

    /// Records one finished Prefect API request. `status` is `None` for a transport error
    /// or a timeout.
    pub fn observe_prefect_request(
        &self,
        operation: &'static str,
        status: Option<u16>,
        elapsed: Duration,
    ) {
        observe_request(
            &self.prefect_requests,
            &self.prefect_request_duration,
            operation,
            status,
            elapsed,
        );
    }

    /// Records one finished ARM request. `status` is `None` for a transport error or a
    /// timeout.
    pub fn observe_arm_request(
        &self,
        operation: &'static str,
        status: Option<u16>,
        elapsed: Duration,
    ) {
        observe_request(
            &self.arm_requests,
            &self.arm_request_duration,
            operation,
            status,
            elapsed,
        );
    }

    /// Counts a request that was throttled (HTTP 429).
    pub fn record_throttled(&self, api: Api, operation: &'static str) {
        self.throttled
            .get_or_create(&ThrottledLabels { api, operation })
            .inc();
    }

    /// Stores the value of one `x-ms-ratelimit-remaining-*` response header. `header` is the
    /// part after `x-ms-ratelimit-remaining-`, for example `subscription-reads`.
    pub fn set_arm_ratelimit_remaining(&self, header: &str, remaining: i64) {
        let labels = HeaderLabels {
            header: header.to_owned(),
        };
        self.arm_ratelimit_remaining
            .get_or_create(&labels)
            .set(remaining);
    }

    /// Records one finished reconcile pass. `Err` carries the error kind, a bounded label
    /// such as `prefect` or `arm`. A success also sets the last-success timestamp.
    pub fn record_reconcile(&self, elapsed: Duration, result: Result<(), &'static str>) {
        self.reconcile_duration.observe(elapsed.as_secs_f64());
        match result {
            Ok(()) => {
                self.reconciles
                    .get_or_create(&ResultLabels { result: "success" })
                    .inc();
                self.last_reconcile_success.set(unix_now_seconds());
            }
            Err(kind) => {
                self.reconciles
                    .get_or_create(&ResultLabels { result: "error" })
                    .inc();
                self.reconcile_errors
                    .get_or_create(&KindLabels { kind })
                    .inc();
            }
        }
    }

    /// Counts a flow run this worker claimed (its Pending proposal was accepted).
    pub fn record_claimed(&self) {
        self.claimed.inc();
    }

    /// Counts a flow run whose container group was created.
    pub fn record_submitted(&self) {
        self.submitted.inc();
    }

    /// Counts a flow run marked Crashed. `reason` is a bounded label such as
    /// `exit_code`, `provisioning_failed`, `start_timeout` or `invalid_configuration`.
    pub fn record_crashed(&self, reason: &'static str) {
        self.crashed.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Counts a flow run moved to Cancelled.
    pub fn record_cancelled(&self) {
        self.cancelled.inc();
    }

    /// Replaces the container group counts by phase. A phase missing from `counts` is
    /// removed from the output, so pass every phase the worker tracks, zeros included.
    pub fn set_groups_by_phase(&self, counts: &[(&'static str, i64)]) {
        self.groups_by_phase.clear();
        for &(phase, count) in counts {
            self.groups_by_phase
                .get_or_create(&PhaseLabels { phase })
                .set(count);
        }
    }

    /// Counts an orphaned container group deleted.
    pub fn record_orphan_deleted(&self) {
        self.orphans_deleted.inc();
    }

    /// Records the time from a flow run's scheduled start to its container group running.
    pub fn observe_start_delay(&self, delay: Duration) {
        self.start_delay.observe(delay.as_secs_f64());
    }

    /// Sets how long the flow run waiting longest has been past its scheduled start.
    /// Pass `Duration::ZERO` when no flow run is waiting.
    pub fn set_oldest_waiting(&self, wait: Duration) {
        self.oldest_waiting.set(wait.as_secs_f64());
    }

    /// Sets the `ready` gauge to 1 or 0.
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// Encodes every family in the OpenMetrics text format, ending with `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}

fn observe_request(
    counts: &Family<RequestLabels, Counter>,
    durations: &HistogramFamily<OperationLabels>,
    operation: &'static str,
    status: Option<u16>,
    elapsed: Duration,
) {
    let status = StatusLabel(status);
    counts
        .get_or_create(&RequestLabels { operation, status })
        .inc();
    durations
        .get_or_create(&OperationLabels { operation })
        .observe(elapsed.as_secs_f64());
}

fn unix_now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests;
