//! Injected faults: per-operation throttling, server errors, latency and hangs, and
//! lifecycle faults, replaced at run time through the admin API.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// `Retry-After` sent with an injected 429 unless set otherwise, in seconds.
pub(super) const DEFAULT_RETRY_AFTER_SECONDS: u64 = 1;

/// An ARM or identity operation that faults and counters are kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Create,
    Get,
    List,
    Delete,
    Stop,
    Logs,
    Token,
}

impl Operation {
    pub const ALL: [Operation; 7] = [
        Operation::Create,
        Operation::Get,
        Operation::List,
        Operation::Delete,
        Operation::Stop,
        Operation::Logs,
        Operation::Token,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Get => "get",
            Operation::List => "list",
            Operation::Delete => "delete",
            Operation::Stop => "stop",
            Operation::Logs => "logs",
            Operation::Token => "token",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Faults of one operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OperationFaults {
    /// Probability (0 to 1) that a request returns 429 TooManyRequests.
    pub throttle_probability: f64,
    /// `Retry-After` of an injected 429, in seconds.
    pub retry_after_seconds: u64,
    /// Probability (0 to 1) that a request returns `error_status`.
    pub error_probability: f64,
    /// Status of an injected server error: 500, 502, 503 or 504.
    pub error_status: u16,
    /// Delay added before responding, in milliseconds.
    pub latency_ms: u64,
    /// Never respond: the request stays open until the client gives up or shutdown.
    pub hang: bool,
}

impl Default for OperationFaults {
    fn default() -> Self {
        Self {
            throttle_probability: 0.0,
            retry_after_seconds: DEFAULT_RETRY_AFTER_SECONDS,
            error_probability: 0.0,
            error_status: 500,
            latency_ms: 0,
            hang: false,
        }
    }
}

/// Every fault, as `GET/PUT /admin/faults` reads and writes it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Faults per operation; an operation that is absent has none.
    pub operations: BTreeMap<Operation, OperationFaults>,
    /// Image glob whose pulls fail: provisioning ends Failed with an InaccessibleImage event.
    pub image_pull_failure: Option<String>,
    /// Every create returns 409 ContainerGroupQuotaReached.
    pub quota_exceeded: bool,
    /// A group disappears this many seconds after its container starts, as if deleted out
    /// of band.
    pub vanish_after_seconds: Option<f64>,
    /// A deleted group shows provisioning state Deleting for this long, in milliseconds,
    /// and DELETE returns 202.
    pub slow_delete_ms: u64,
    /// The first N GETs of each group carry no instance view.
    pub no_instance_view_reads: u32,
    /// Stop returns 204 but the container keeps running.
    pub ignore_stop: bool,
    /// While the container runs, provisioning state cycles Unhealthy, Repairing, Succeeded
    /// this many times (0: until the container exits).
    pub unhealthy_loop_cycles: Option<u32>,
    /// Before the container starts, provisioning state cycles Repairing, Creating this many
    /// times (0: forever, so the container never starts).
    pub repairing_loop_cycles: Option<u32>,
}

impl Faults {
    pub fn operation(&self, op: Operation) -> OperationFaults {
        self.operations.get(&op).cloned().unwrap_or_default()
    }

    pub(super) fn operation_mut(&mut self, op: Operation) -> &mut OperationFaults {
        self.operations.entry(op).or_default()
    }
}

/// The outcome a fault draws for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Injected {
    Throttle { retry_after_seconds: u64 },
    ServerError { status: u16 },
    Hang,
}

/// The active faults and the seeded random source that draws from their probabilities.
pub struct FaultState {
    pub faults: Faults,
    seed: u64,
    rng: StdRng,
}

impl FaultState {
    pub fn new(faults: Faults, seed: u64) -> Self {
        Self {
            faults,
            seed,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Restores the given faults and restarts the random sequence from the seed.
    pub fn reset(&mut self, faults: Faults) {
        self.faults = faults;
        self.rng = StdRng::seed_from_u64(self.seed);
    }

    /// Draws the faults of one request: the added latency and what, if anything, replaces
    /// the real response.
    pub fn decide(&mut self, op: Operation) -> (Duration, Option<Injected>) {
        let faults = self.faults.operation(op);
        let latency = Duration::from_millis(faults.latency_ms);
        if faults.hang {
            return (latency, Some(Injected::Hang));
        }
        if faults.throttle_probability > 0.0
            && self.rng.random::<f64>() < faults.throttle_probability
        {
            let retry_after_seconds = faults.retry_after_seconds;
            return (
                latency,
                Some(Injected::Throttle {
                    retry_after_seconds,
                }),
            );
        }
        if faults.error_probability > 0.0 && self.rng.random::<f64>() < faults.error_probability {
            let status = faults.error_status;
            return (latency, Some(Injected::ServerError { status }));
        }
        (latency, None)
    }
}
