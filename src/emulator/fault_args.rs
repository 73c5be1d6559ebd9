//! Fault flags of the command line and their translation into [`Faults`].

use std::str::FromStr;

use clap::Args;

use super::faults::{DEFAULT_RETRY_AFTER_SECONDS, Faults, Operation};

/// An operation selector in a fault flag: one operation or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationSelector {
    One(Operation),
    All,
}

impl OperationSelector {
    fn operations(self) -> Vec<Operation> {
        match self {
            OperationSelector::One(op) => vec![op],
            OperationSelector::All => Operation::ALL.to_vec(),
        }
    }
}

impl FromStr for OperationSelector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "all" {
            return Ok(OperationSelector::All);
        }
        Operation::ALL
            .into_iter()
            .find(|op| op.as_str() == s)
            .map(OperationSelector::One)
            .ok_or_else(|| {
                format!("unknown operation {s:?}: expected create, get, list, delete, stop, logs, token or all")
            })
    }
}

/// A fault flag value `OP=VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationValue<T> {
    pub selector: OperationSelector,
    pub value: T,
}

impl<T: FromStr> FromStr for OperationValue<T> {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (op, value) = s
            .split_once('=')
            .ok_or_else(|| format!("invalid fault {s:?}: expected OP=VALUE"))?;
        let value = value
            .parse()
            .map_err(|_| format!("invalid fault {s:?}: {value:?} is not a valid number"))?;
        Ok(Self {
            selector: op.parse()?,
            value,
        })
    }
}

/// Fault flags. OP is create, get, list, delete, stop, logs, token or all.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Faults (OP: create, get, list, delete, stop, logs, token or all)")]
pub struct FaultArgs {
    /// Seed of the random source behind fault probabilities, so runs repeat.
    #[arg(long, env = "ACI_EMULATOR_SEED", default_value_t = 0)]
    pub seed: u64,

    /// Probability (0 to 1) that an OP request returns 429 with Retry-After. Repeatable.
    #[arg(
        long,
        env = "ACI_EMULATOR_FAULT_THROTTLE",
        value_name = "OP=PROBABILITY",
        value_delimiter = ','
    )]
    pub fault_throttle: Vec<OperationValue<f64>>,

    /// Retry-After of injected 429 responses, in seconds.
    #[arg(long, env = "ACI_EMULATOR_FAULT_RETRY_AFTER", value_name = "SECONDS", default_value_t = DEFAULT_RETRY_AFTER_SECONDS)]
    pub fault_retry_after: u64,

    /// Probability (0 to 1) that an OP request returns a server error. Repeatable.
    #[arg(
        long,
        env = "ACI_EMULATOR_FAULT_ERROR",
        value_name = "OP=PROBABILITY",
        value_delimiter = ','
    )]
    pub fault_error: Vec<OperationValue<f64>>,

    /// HTTP status of injected server errors (500, 502, 503 or 504).
    #[arg(
        long,
        env = "ACI_EMULATOR_FAULT_ERROR_STATUS",
        value_name = "STATUS",
        default_value_t = 500,
        value_parser = parse_error_status
    )]
    pub fault_error_status: u16,

    /// Latency added to every OP request, in milliseconds. Repeatable.
    #[arg(
        long,
        env = "ACI_EMULATOR_FAULT_LATENCY",
        value_name = "OP=MS",
        value_delimiter = ','
    )]
    pub fault_latency: Vec<OperationValue<u64>>,

    /// OP requests never get a response. Repeatable.
    #[arg(
        long,
        env = "ACI_EMULATOR_FAULT_HANG",
        value_name = "OP",
        value_delimiter = ','
    )]
    pub fault_hang: Vec<OperationSelector>,

    /// Image pulls fail for images matching GLOB: provisioning ends Failed with an
    /// InaccessibleImage event.
    #[arg(long, env = "ACI_EMULATOR_FAULT_IMAGE_PULL", value_name = "GLOB")]
    pub fault_image_pull: Option<String>,

    /// Every create returns 409 ContainerGroupQuotaReached.
    #[arg(long, env = "ACI_EMULATOR_FAULT_QUOTA_EXCEEDED")]
    pub fault_quota_exceeded: bool,

    /// Groups vanish this many seconds after their container starts.
    #[arg(long, env = "ACI_EMULATOR_FAULT_VANISH_AFTER", value_name = "SECONDS")]
    pub fault_vanish_after: Option<f64>,

    /// Deleted groups show provisioning state Deleting for this long, in milliseconds.
    #[arg(
        long,
        env = "ACI_EMULATOR_FAULT_SLOW_DELETE_MS",
        value_name = "MS",
        default_value_t = 0
    )]
    pub fault_slow_delete_ms: u64,

    /// Number of GETs of each group, counted from the first, that carry no instance view.
    #[arg(
        long,
        env = "ACI_EMULATOR_FAULT_NO_INSTANCE_VIEW",
        value_name = "READS",
        default_value_t = 0
    )]
    pub fault_no_instance_view: u32,

    /// Stop returns 204 but the container keeps running.
    #[arg(long, env = "ACI_EMULATOR_FAULT_IGNORE_STOP")]
    pub fault_ignore_stop: bool,

    /// While a container runs, provisioning state cycles Unhealthy, Repairing, Succeeded
    /// CYCLES times (0: until it exits). Each step lasts --creating-ms.
    #[arg(long, env = "ACI_EMULATOR_FAULT_UNHEALTHY_LOOP", value_name = "CYCLES")]
    pub fault_unhealthy_loop: Option<u32>,

    /// Before a container starts, provisioning state cycles Repairing, Creating CYCLES
    /// times (0: forever). Each step lasts --creating-ms.
    #[arg(long, env = "ACI_EMULATOR_FAULT_REPAIRING_LOOP", value_name = "CYCLES")]
    pub fault_repairing_loop: Option<u32>,
}

fn parse_error_status(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(status @ (500 | 502 | 503 | 504)) => Ok(status),
        _ => Err(format!(
            "invalid error status {text:?}: expected 500, 502, 503 or 504"
        )),
    }
}

impl Default for FaultArgs {
    /// Returns the command-line defaults: no faults.
    fn default() -> Self {
        Self {
            seed: 0,
            fault_throttle: Vec::new(),
            fault_retry_after: DEFAULT_RETRY_AFTER_SECONDS,
            fault_error: Vec::new(),
            fault_error_status: 500,
            fault_latency: Vec::new(),
            fault_hang: Vec::new(),
            fault_image_pull: None,
            fault_quota_exceeded: false,
            fault_vanish_after: None,
            fault_slow_delete_ms: 0,
            fault_no_instance_view: 0,
            fault_ignore_stop: false,
            fault_unhealthy_loop: None,
            fault_repairing_loop: None,
        }
    }
}

impl FaultArgs {
    /// Converts the flags into the faults they describe.
    pub fn to_faults(&self) -> Faults {
        let mut faults = Faults::default();
        for op in Operation::ALL {
            faults.operation_mut(op).retry_after_seconds = self.fault_retry_after;
            faults.operation_mut(op).error_status = self.fault_error_status;
        }
        for setting in &self.fault_throttle {
            for op in setting.selector.operations() {
                faults.operation_mut(op).throttle_probability = setting.value;
            }
        }
        for setting in &self.fault_error {
            for op in setting.selector.operations() {
                faults.operation_mut(op).error_probability = setting.value;
            }
        }
        for setting in &self.fault_latency {
            for op in setting.selector.operations() {
                faults.operation_mut(op).latency_ms = setting.value;
            }
        }
        for selector in &self.fault_hang {
            for op in selector.operations() {
                faults.operation_mut(op).hang = true;
            }
        }
        faults.image_pull_failure = self.fault_image_pull.clone();
        faults.quota_exceeded = self.fault_quota_exceeded;
        faults.vanish_after_seconds = self.fault_vanish_after;
        faults.slow_delete_ms = self.fault_slow_delete_ms;
        faults.no_instance_view_reads = self.fault_no_instance_view;
        faults.ignore_stop = self.fault_ignore_stop;
        faults.unhealthy_loop_cycles = self.fault_unhealthy_loop;
        faults.repairing_loop_cycles = self.fault_repairing_loop;
        faults
    }
}
