//! The emulator's records: resource groups, container groups with their run state and
//! logs, issued tokens, request counters and rate-limit buckets.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;
use uuid::Uuid;

use super::config::EmulatorConfig;
use super::faults::FaultState;

/// Log kept per container, in bytes: ACI keeps 4 MB for a running instance.
const MAX_LOG_BYTES: usize = 4 * 1024 * 1024;

/// Everything the request handlers and lifecycle tasks share.
pub struct Shared {
    pub config: EmulatorConfig,
    /// Base URL clients reach the emulator at, without a trailing slash.
    pub base_url: String,
    pub identity_header: String,
    /// Parent of every group's working directory.
    pub work_root: PathBuf,
    pub store: Mutex<Store>,
    pub faults: Mutex<FaultState>,
    pub counters: Mutex<Counters>,
    /// Issued access tokens and their expiry.
    pub tokens: Mutex<HashMap<String, Instant>>,
    pub buckets: Mutex<RateBuckets>,
    /// Turns true at shutdown; hanging requests and lifecycle tasks watch it.
    pub shutdown: watch::Receiver<bool>,
}

impl Shared {
    pub fn lock_store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().expect("store lock poisoned")
    }
}

/// Resource groups and container groups, keyed by lowercase names because ARM compares
/// names case-insensitively.
#[derive(Default)]
pub struct Store {
    pub resource_groups: HashMap<ResourceGroupKey, ResourceGroup>,
    pub groups: BTreeMap<GroupKey, ContainerGroup>,
    /// Long-running deletes: operation id to the instant they finish.
    pub operations: HashMap<String, Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceGroupKey {
    pub subscription: String,
    pub name: String,
}

impl ResourceGroupKey {
    pub fn new(subscription: &str, name: &str) -> Self {
        Self {
            subscription: subscription.to_lowercase(),
            name: name.to_lowercase(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
}

impl GroupKey {
    pub fn new(subscription: &str, resource_group: &str, name: &str) -> Self {
        Self {
            subscription: subscription.to_lowercase(),
            resource_group: resource_group.to_lowercase(),
            name: name.to_lowercase(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ResourceGroup {
    pub subscription: String,
    pub name: String,
    pub location: String,
    pub tags: Option<Value>,
}

/// One container group: what was sent, and what the emulator made of it.
pub struct ContainerGroup {
    /// Identifies this incarnation; a lifecycle task stops when the group it drives is
    /// deleted or replaced.
    pub instance: Uuid,
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub tags: Option<Value>,
    /// The request's identity with principal and client ids filled in.
    pub identity: Option<Value>,
    /// The request's properties without secrets and without instance views.
    pub properties: Value,
    pub run: RunSpec,
    pub provisioning_state: String,
    /// `properties.instanceView.state`.
    pub state: Option<String>,
    pub events: Vec<Event>,
    pub containers: Vec<ContainerStatus>,
    /// Output of the first container.
    pub logs: LogBuffer,
    /// Process group id of the running process, if any.
    pub pid: Option<i32>,
    /// Number of GETs served so far, for the no-instance-view fault.
    pub reads: u32,
    pub stop_requested: bool,
}

/// Command and environment the first container runs.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub container: String,
    pub image: String,
    pub command: Vec<String>,
    /// Plain and secure values in request order.
    pub environment: Vec<(String, String)>,
    pub restart_policy: String,
    pub simulated: bool,
}

/// Run state of one container, as its instance view shows it.
#[derive(Debug, Clone)]
pub struct ContainerStatus {
    pub name: String,
    pub restart_count: u32,
    pub current: ContainerState,
    pub previous: Option<ContainerState>,
    pub events: Vec<Event>,
}

/// ARM `ContainerState`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<String>,
    pub detail_status: String,
}

impl ContainerState {
    pub fn waiting(detail: &str) -> Self {
        Self {
            state: "Waiting".to_string(),
            start_time: None,
            exit_code: None,
            finish_time: None,
            detail_status: detail.to_string(),
        }
    }
}

/// ARM `Event`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub count: u32,
    pub first_timestamp: String,
    pub last_timestamp: String,
    pub name: String,
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl Event {
    pub fn normal(name: &str, message: impl Into<String>) -> Self {
        Self::new(name, message.into(), "Normal")
    }

    pub fn warning(name: &str, message: impl Into<String>) -> Self {
        Self::new(name, message.into(), "Warning")
    }

    fn new(name: &str, message: String, kind: &str) -> Self {
        let now = now_rfc3339();
        Self {
            count: 1,
            first_timestamp: now.clone(),
            last_timestamp: now,
            name: name.to_string(),
            message,
            kind: kind.to_string(),
        }
    }
}

/// Container output, line by line with the time each line was read.
#[derive(Debug, Default)]
pub struct LogBuffer {
    lines: VecDeque<(OffsetDateTime, String)>,
    bytes: usize,
}

impl LogBuffer {
    /// Appends a line, dropping the oldest lines past the 4 MB limit.
    pub fn push(&mut self, line: String) {
        self.bytes += line.len() + 1;
        self.lines.push_back((OffsetDateTime::now_utc(), line));
        while self.bytes > MAX_LOG_BYTES {
            match self.lines.pop_front() {
                Some((_, old)) => self.bytes -= old.len() + 1,
                None => break,
            }
        }
    }

    /// Renders the last `tail` lines (all when `None`), each prefixed by its RFC 3339
    /// timestamp and a space when `timestamps` is set.
    pub fn render(&self, tail: Option<usize>, timestamps: bool) -> String {
        let skip = tail.map_or(0, |n| self.lines.len().saturating_sub(n));
        let mut content = String::new();
        for (at, line) in self.lines.iter().skip(skip) {
            if timestamps {
                content.push_str(&format_rfc3339(*at));
                content.push(' ');
            }
            content.push_str(line);
            content.push('\n');
        }
        content
    }
}

pub fn format_rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("UTC time formats as RFC 3339")
}

pub fn now_rfc3339() -> String {
    format_rfc3339(OffsetDateTime::now_utc())
}

/// Request counts by operation and HTTP status.
pub type Counters = BTreeMap<String, BTreeMap<u16, u64>>;

/// ARM's three subscription buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateClass {
    Reads,
    Writes,
    Deletes,
}

impl RateClass {
    pub fn header(self) -> &'static str {
        match self {
            RateClass::Reads => "x-ms-ratelimit-remaining-subscription-reads",
            RateClass::Writes => "x-ms-ratelimit-remaining-subscription-writes",
            RateClass::Deletes => "x-ms-ratelimit-remaining-subscription-deletes",
        }
    }
}

/// Token buckets per subscription and class, refilled continuously.
#[derive(Debug, Default)]
pub struct RateBuckets {
    buckets: HashMap<(String, RateClass), (f64, Instant)>,
}

impl RateBuckets {
    /// Takes one token. Returns the tokens left, or the wait until one is available.
    pub fn take(
        &mut self,
        subscription: &str,
        class: RateClass,
        size: u32,
        refill_per_second: f64,
    ) -> Result<u32, Duration> {
        let now = Instant::now();
        let key = (subscription.to_lowercase(), class);
        let (tokens, last) = self.buckets.entry(key).or_insert((size as f64, now));
        let elapsed = now.duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * refill_per_second).min(size as f64);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(*tokens as u32);
        }
        let wait = if refill_per_second > 0.0 {
            (1.0 - *tokens) / refill_per_second
        } else {
            60.0
        };
        Err(Duration::from_secs_f64(wait))
    }

    pub fn clear(&mut self) {
        self.buckets.clear();
    }
}
