//! The actions the planner returns. Each carries all the data the executor needs to apply it.

use uuid::Uuid;

use super::memory::LogCursor;
use super::snapshot::GroupRef;

/// One step for the executor. The planner returns at most one action per flow run per tick.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Propose Pending for a scheduled run, then set the worker labels and `Submitting`.
    Claim(ClaimRun),
    /// Render the job configuration and create the run's container group.
    CreateGroup(CreateGroup),
    /// Take up a run this worker has no memory of.
    Adopt(AdoptRun),
    /// GET the run's container group and record the outcome with `RunMemory::record_read`.
    ReadGroup(ReadGroup),
    /// Read the flow container's log and send the new lines to the flow run's logs.
    FetchLogs(FetchLogs),
    /// Set the run's `infrastructure_pid`, because it is missing or names another group.
    SetInfrastructurePid {
        flow_run_id: Uuid,
        /// `<flow run id>:<container group name>`.
        value: String,
    },
    /// Propose Crashed for the run.
    CrashRun(CrashRun),
    /// Force the run to Cancelled.
    CancelRun(CancelRun),
    /// Delete the container group. A 404 counts as done.
    DeleteGroup(GroupCleanup),
    /// Stop the container group, because the run's job sets `keep_container_group`.
    StopGroup(GroupCleanup),
    /// Drop the run's memory: nothing remains to do for it and its `--limit` slot is free.
    ReleaseSlot { flow_run_id: Uuid },
}

impl Action {
    /// Returns the flow run the action is for.
    pub fn flow_run_id(&self) -> Uuid {
        match self {
            Self::Claim(a) => a.create.flow_run_id,
            Self::CreateGroup(a) => a.flow_run_id,
            Self::Adopt(a) => a.flow_run_id,
            Self::ReadGroup(a) => a.flow_run_id,
            Self::FetchLogs(a) => a.flow_run_id,
            Self::SetInfrastructurePid { flow_run_id, .. } => *flow_run_id,
            Self::CrashRun(a) => a.flow_run_id,
            Self::CancelRun(a) => a.flow_run_id,
            Self::DeleteGroup(a) | Self::StopGroup(a) => a.flow_run_id,
            Self::ReleaseSlot { flow_run_id } => *flow_run_id,
        }
    }

    /// Returns the existing container group the action reads or changes, if any.
    pub fn target_group(&self) -> Option<&GroupRef> {
        match self {
            Self::ReadGroup(a) => Some(&a.group),
            Self::FetchLogs(a) => Some(&a.group),
            Self::DeleteGroup(a) | Self::StopGroup(a) => Some(&a.group),
            Self::Adopt(a) => a.group.as_ref(),
            _ => None,
        }
    }

    /// Returns a bounded label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Claim(_) => "claim",
            Self::CreateGroup(_) => "create_group",
            Self::Adopt(_) => "adopt",
            Self::ReadGroup(_) => "read_group",
            Self::FetchLogs(_) => "fetch_logs",
            Self::SetInfrastructurePid { .. } => "set_infrastructure_pid",
            Self::CrashRun(_) => "crash_run",
            Self::CancelRun(_) => "cancel_run",
            Self::DeleteGroup(_) => "delete_group",
            Self::StopGroup(_) => "stop_group",
            Self::ReleaseSlot { .. } => "release_slot",
        }
    }
}

/// A scheduled run to claim. On ACCEPT the executor records `RunMemory::claimed` and may go
/// straight on with `create` in the same task, which is the create the next tick would plan.
/// On REJECT, ABORT or an error it records nothing, so the run is not ours.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRun {
    pub create: CreateGroup,
}

/// A container group to create. The executor renders the job configuration (an invalid one
/// is recorded with `RunMemory::record_failure`), GETs `group_name` in the rendered
/// subscription and resource group, and sends the create only on 404. When that GET finds
/// the group it calls `RunMemory::record_read` and sends nothing. Around the create it calls
/// `record_create_sent`, then `record_create_accepted` on success, and may set the
/// `infrastructure_pid` in the same task. After a timeout or a lost response it records
/// nothing more, so the next tick reads the group back.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateGroup {
    pub flow_run_id: Uuid,
    pub flow_run_name: String,
    pub flow_id: Uuid,
    pub flow_name: String,
    pub deployment_id: Option<Uuid>,
    /// The deterministic name, the same for every attempt at this run.
    pub group_name: String,
    /// How many creates were sent before this one.
    pub previous_attempts: u32,
}

/// A run to take up. The executor renders the run's job configuration for its options (and,
/// when `group` is `None`, for the subscription and resource group), then GETs the group by
/// `group_name`. It stores `RunMemory::adopted` followed by `record_read` with the result.
/// When rendering works but the GET fails transiently, it stores the adopted memory alone,
/// and the next tick plans the read.
#[derive(Debug, Clone, PartialEq)]
pub struct AdoptRun {
    pub flow_run_id: Uuid,
    pub deployment_id: Option<Uuid>,
    pub group_name: String,
    /// Known when a listing showed the group.
    pub group: Option<GroupRef>,
    /// True when the run's infrastructure was started (a group was listed, or
    /// `infrastructure_pid` is set), so a 404 means the group was deleted.
    pub expect_group: bool,
    /// True when the run belonged to a worker whose lease expired: set the
    /// `prefect.worker.name` label to this worker.
    pub relabel: bool,
}

/// A GET of a run's container group.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadGroup {
    pub flow_run_id: Uuid,
    pub group: GroupRef,
}

/// A read of the flow container's log, starting after `cursor`.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchLogs {
    pub flow_run_id: Uuid,
    pub group: GroupRef,
    pub container_name: String,
    pub cursor: Option<LogCursor>,
    /// True for the last read after the container ended, before the group is deleted.
    pub final_fetch: bool,
}

/// A Crashed proposal.
#[derive(Debug, Clone, PartialEq)]
pub struct CrashRun {
    pub flow_run_id: Uuid,
    pub reason: CrashReason,
    /// The state message, also written to the flow run's logs.
    pub message: String,
}

/// Reason a run is marked Crashed. A bounded set, used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrashReason {
    /// The job configuration could not be rendered or is invalid.
    InvalidConfiguration,
    /// ARM rejected the create with a permanent error.
    CreateRejected,
    /// The group's provisioning state became Failed.
    ProvisioningFailed,
    /// Provisioning did not finish within `task_start_timeout_seconds`.
    StartTimeout,
    /// The flow container exited non-zero and the run is not final.
    NonZeroExit,
    /// The flow container exited 0 but the engine never reported a final state.
    NoFinalState,
    /// The group disappeared while the run was active.
    GroupDeleted,
}

impl CrashReason {
    /// Returns the metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::InvalidConfiguration => "invalid_configuration",
            Self::CreateRejected => "create_rejected",
            Self::ProvisioningFailed => "provisioning_failed",
            Self::StartTimeout => "start_timeout",
            Self::NonZeroExit => "non_zero_exit",
            Self::NoFinalState => "no_final_state",
            Self::GroupDeleted => "group_deleted",
        }
    }
}

/// A forced Cancelled state.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelRun {
    pub flow_run_id: Uuid,
    pub reason: CancelReason,
    pub message: String,
}

/// Reason a run is forced to Cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// The run was Cancelling and its group is gone (or stopped).
    Requested,
    /// The run's deployment no longer exists, so it cannot be submitted.
    DeploymentDeleted,
}

/// A delete or stop of a container group. The executor calls
/// `RunMemory::record_cleanup_sent` (when the run has memory) and, on 404,
/// `record_cleanup_not_found`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupCleanup {
    pub flow_run_id: Uuid,
    pub group: GroupRef,
    pub cause: CleanupCause,
}

/// Reason a group is cleaned up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CleanupCause {
    /// The run is final.
    RunFinal,
    /// The run is Cancelling.
    Cancelling,
    /// The group's run is missing from Prefect.
    Orphan,
}
