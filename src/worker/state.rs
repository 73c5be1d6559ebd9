//! The reconciler's shared state: clients, the planner's memory, and what the executor keeps
//! per flow run between ticks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::arm::ArmClient;
use crate::config::WorkerConfig;
use crate::http::Health;
use crate::metrics::Metrics;
use crate::prefect::PrefectClient;
use crate::reconcile::{Memory, ResourceGroupScope, WorkerIdentity};

use super::azure::AzureClients;
use super::jobs::{JobResolver, ResolvedJob};

/// How long a deployment's existence, read for a scheduled run, is trusted.
pub const DEPLOYMENT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// Per-run data the executor keeps once it resolved the run's job configuration.
#[derive(Debug, Clone)]
pub struct RunJob {
    pub job: Arc<ResolvedJob>,
    /// The client for the job's credentials.
    pub arm: ArmClient,
}

/// Mutable state behind one lock. Nothing in here is held across an await.
#[derive(Debug, Default)]
pub struct State {
    pub memory: Memory,
    pub jobs: HashMap<Uuid, RunJob>,
    /// Resource groups to list each tick, with the client that can read them.
    pub scopes: BTreeMap<ResourceGroupScope, ArmClient>,
    /// Runs with an action in flight; the next ticks plan nothing for them.
    pub in_flight: HashSet<Uuid>,
    /// Flow names by flow id; a flow's name never changes.
    pub flow_names: HashMap<Uuid, String>,
    /// Whether each deployment exists, with when that was read.
    pub deployments: HashMap<Uuid, (bool, Instant)>,
    /// The pool's base job template as last read.
    pub base_job_template: serde_json::Value,
    /// When each run was first seen scheduled, for the start delay metric.
    pub scheduled_at: HashMap<Uuid, OffsetDateTime>,
    /// Failed log reads in a row, per run.
    pub log_failures: HashMap<Uuid, u32>,
    /// When `scopes` was last seeded from the pool's defaults and deployments.
    pub scopes_seeded_at: Option<Instant>,
}

/// Everything the snapshot, the planner and the executor share.
#[derive(Debug)]
pub struct Shared {
    pub config: WorkerConfig,
    pub prefect: PrefectClient,
    pub azure: AzureClients,
    pub resolver: JobResolver,
    pub metrics: Arc<Metrics>,
    pub health: Health,
    pub identity: WorkerIdentity,
    state: Mutex<State>,
}

impl Shared {
    pub fn new(
        config: WorkerConfig,
        prefect: PrefectClient,
        azure: AzureClients,
        metrics: Arc<Metrics>,
        health: Health,
        identity: WorkerIdentity,
        base_job_template: serde_json::Value,
    ) -> Self {
        let resolver = JobResolver::new(
            prefect.clone(),
            &config.prefect,
            identity.worker_name.clone(),
        );
        let state = State {
            base_job_template,
            ..State::default()
        };
        Self {
            config,
            prefect,
            azure,
            resolver,
            metrics,
            health,
            identity,
            state: Mutex::new(state),
        }
    }

    /// Locks the state. The lock is never held across an await, so it is a std mutex.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("reconciler state lock poisoned")
    }
}

/// Clears a run's in-flight mark when dropped, also when its task panics, so that a failed
/// action never leaves its run unplanned for good.
pub struct InFlightGuard {
    shared: Arc<Shared>,
    flow_run_id: Uuid,
}

impl InFlightGuard {
    /// Marks `flow_run_id` in flight. Returns `None` when it already is.
    pub fn acquire(shared: &Arc<Shared>, flow_run_id: Uuid) -> Option<Self> {
        let mut state = shared.state();
        if !state.in_flight.insert(flow_run_id) {
            return None;
        }
        if let Some(run) = state.memory.runs.get_mut(&flow_run_id) {
            run.in_flight = true;
        }
        Some(Self {
            shared: shared.clone(),
            flow_run_id,
        })
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.in_flight.remove(&self.flow_run_id);
        if let Some(run) = state.memory.runs.get_mut(&self.flow_run_id) {
            run.in_flight = false;
        }
    }
}
