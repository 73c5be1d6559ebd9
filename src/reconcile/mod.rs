//! The reconcile loop: snapshot, pure planner and executor.
//!
//! Each tick the executor takes a [`Snapshot`] of Prefect and ARM, [`plan`] turns it and the
//! worker's [`Memory`] into [`Action`]s, and the executor applies them and records outcomes
//! in memory for the next tick.

pub mod action;
mod cleanup;
pub mod exit_codes;
pub mod logs;
pub mod memory;
pub mod naming;
mod plan;
pub mod settings;
pub mod snapshot;
mod watch;

#[cfg(test)]
mod tests;

pub use action::{
    Action, AdoptRun, CancelReason, CancelRun, ClaimRun, CleanupCause, CrashReason, CrashRun,
    CreateGroup, FetchLogs, GroupCleanup, ReadGroup,
};
pub use memory::{
    GroupRead, JobOptions, LogCursor, Memory, OrphanWatch, Phase, ReadOutcome, RunFailure,
    RunMemory,
};
pub use plan::{Plan, plan};
pub use settings::PlannerSettings;
pub use snapshot::{
    ArmErrorView, ArmView, ContainerEvent, ContainerState, ContainerView, FlowRunView, GroupDetail,
    GroupRef, GroupTags, GroupView, ProvisioningState, ResourceGroupScope, ScheduledRun, Snapshot,
    StateType, WorkerHeartbeat, WorkerIdentity,
};
