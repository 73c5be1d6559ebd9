//! The planner's view of the world for one tick, filled by the executor from Prefect and ARM.
//!
//! These types contain only what the planner decides on. They do not depend on the Prefect or
//! ARM client types, so the planner stays pure and its tests need no client.

use time::OffsetDateTime;
use uuid::Uuid;

/// The state of Prefect and ARM at the start of one tick.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The tick's clock reading. The planner reads no clock of its own.
    pub now: OffsetDateTime,
    /// This worker and its work pool.
    pub worker: WorkerIdentity,
    /// Scheduled runs of the pool due within the prefetch window, in the server's order.
    pub scheduled: Vec<ScheduledRun>,
    /// The pool's runs that are Pending, Running, Cancelling, or became final recently.
    pub flow_runs: Vec<FlowRunView>,
    /// The container groups ARM listed this tick.
    pub arm: ArmView,
    /// Last heartbeat of each worker of the pool, for the ownership lease.
    pub heartbeats: Vec<WorkerHeartbeat>,
    /// True after the first shutdown signal: claim nothing new, keep watching and cleaning.
    pub shutting_down: bool,
}

/// The worker's name and its work pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerIdentity {
    pub worker_name: String,
    pub work_pool_name: String,
    pub work_pool_id: Uuid,
}

/// A scheduled flow run returned by the pool's scheduled-runs query.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledRun {
    pub id: Uuid,
    pub name: String,
    pub flow_id: Uuid,
    /// The flow's name, which the container group name is built from.
    pub flow_name: String,
    pub deployment_id: Option<Uuid>,
    /// False when the run has a deployment id and reading that deployment returned 404.
    pub deployment_exists: bool,
    /// The state name, for example `Scheduled` or `Late`.
    pub state_name: String,
    pub scheduled_time: OffsetDateTime,
}

/// Prefect's state types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateType {
    Scheduled,
    Pending,
    Running,
    Paused,
    Cancelling,
    Completed,
    Failed,
    Crashed,
    Cancelled,
}

impl StateType {
    /// Returns true for Prefect's terminal states: Completed, Failed, Crashed, Cancelled.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Crashed | Self::Cancelled
        )
    }
}

/// A flow run of the pool as the flow-run filter returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRunView {
    pub id: Uuid,
    pub name: String,
    pub flow_id: Uuid,
    pub flow_name: String,
    pub deployment_id: Option<Uuid>,
    pub state_type: StateType,
    /// The state name, for example `Submitting` for a Pending run.
    pub state_name: String,
    /// When the run entered its current state.
    pub state_timestamp: OffsetDateTime,
    /// `<flow run id>:<container group name>` once a worker started the group.
    pub infrastructure_pid: Option<String>,
    /// The `prefect.worker.name` label: the worker that claimed the run, when known.
    pub worker_name: Option<String>,
}

/// One worker of the pool and its last heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerHeartbeat {
    pub name: String,
    pub last_heartbeat: OffsetDateTime,
}

/// The container groups ARM listed this tick. The executor lists every subscription and resource group that
/// memory records or that the job configurations of the pool's active runs name.
#[derive(Debug, Clone, Default)]
pub struct ArmView {
    /// The resource groups whose listing succeeded this tick. A group missing from the list
    /// counts as absent only inside these scopes; elsewhere it is unknown.
    pub listed_scopes: Vec<ResourceGroupScope>,
    /// Container groups from those listings that carry our flow-run tag.
    pub groups: Vec<GroupView>,
}

/// A subscription and resource group that contains container groups.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceGroupScope {
    pub subscription_id: String,
    pub resource_group: String,
}

/// The coordinates of one container group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupRef {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
}

impl GroupRef {
    /// Returns the subscription and resource group that contain the group.
    pub fn scope(&self) -> ResourceGroupScope {
        ResourceGroupScope {
            subscription_id: self.subscription_id.clone(),
            resource_group: self.resource_group.clone(),
        }
    }
}

/// A container group as the ARM list returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupView {
    pub group: GroupRef,
    pub tags: GroupTags,
    pub provisioning_state: ProvisioningState,
}

/// Our tags on a container group, parsed. A tag that is missing or unparsable is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupTags {
    pub flow_run_id: Option<Uuid>,
    pub deployment_id: Option<Uuid>,
    pub work_pool: Option<String>,
    pub worker_name: Option<String>,
    /// The run's `keep_container_group` job variable at create time.
    pub keep_container_group: bool,
}

/// ARM's provisioning state of a container group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvisioningState {
    Pending,
    Creating,
    Repairing,
    Updating,
    Succeeded,
    Failed,
    Deleting,
    Canceled,
    /// A value this worker does not know; treated as "not finished yet".
    Other(String),
}

/// A container group as a GET returned it, with the instance view of its flow container.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDetail {
    pub provisioning_state: ProvisioningState,
    /// The group's tags. A group without our flow-run tag (one the Python worker started)
    /// never shows in our tag-filtered listings, so only reads tell whether it exists.
    pub tags: GroupTags,
    /// The flow container (the group's first container). `None` when ARM returned no
    /// container or no instance view yet.
    pub container: Option<ContainerView>,
    /// ARM's innermost error code and message when provisioning failed.
    pub provisioning_error: Option<ArmErrorView>,
    /// The container's events, oldest first, for messages when ARM gives no error.
    pub events: Vec<ContainerEvent>,
}

/// The instance view of the flow container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerView {
    pub name: String,
    pub state: ContainerState,
    /// Set once the container terminated; ARM may leave it out.
    pub exit_code: Option<i64>,
    pub detail_status: Option<String>,
    pub start_time: Option<OffsetDateTime>,
    pub finish_time: Option<OffsetDateTime>,
}

/// The flow container's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Waiting,
    Running,
    Terminated,
    /// A value this worker does not know; treated as "not yet".
    Other(String),
}

/// An ARM error reduced to its innermost code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmErrorView {
    pub code: String,
    pub message: String,
}

/// One event from the container's instance view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub name: String,
    pub message: String,
}
