//! The worker's memory of each flow run between ticks, updated by the executor from outcomes.
//!
//! Memory records what neither Prefect nor ARM reports: when we sent a create, what the last
//! GET of a group returned, where the log stream stopped. The executor updates it only
//! through the `record_*` methods, so the phase transitions live here and are tested here.
//! After a restart memory is empty and the planner rebuilds it by adopting groups.

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::action::CrashReason;
use super::snapshot::{ContainerState, GroupDetail, GroupRef};

/// Default `task_start_timeout_seconds`, the job variable's default in the base job template.
pub const DEFAULT_TASK_START_TIMEOUT: Duration = Duration::from_secs(240);

/// Default `task_watch_poll_interval`, the job variable's default in the base job template.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Everything the worker remembers, keyed by flow run id. Ordered maps keep plans
/// deterministic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memory {
    pub runs: BTreeMap<Uuid, RunMemory>,
    /// Groups with our tags whose flow run is missing, and when we first saw each. The
    /// planner returns the next version of this map in every plan.
    pub orphans: BTreeMap<GroupRef, OrphanWatch>,
}

/// A run's progress, as this worker last recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The Pending proposal was accepted; no create was sent yet.
    Claimed { at: OffsetDateTime },
    /// A create was sent and its outcome is unknown (timed out or lost): read it back.
    Creating { since: OffsetDateTime },
    /// ARM accepted the group; its flow container has not been seen running yet.
    Provisioning { since: OffsetDateTime },
    /// The flow container was seen running.
    Running { since: OffsetDateTime },
    /// The flow container terminated with this exit code. With exit code 0 the run waits
    /// here for the engine to report its final state.
    Terminated { exit_code: i64, at: OffsetDateTime },
    /// A delete or stop was sent because the run is final or missing.
    Cleaning { since: OffsetDateTime },
    /// A delete or stop was sent because the run is Cancelling.
    Cancelling { since: OffsetDateTime },
    /// The group was confirmed deleted (a GET returned 404) or stopped after a cleanup.
    Gone { at: OffsetDateTime },
}

/// Job-configuration values the planner needs, recorded when the executor renders it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobOptions {
    /// `task_start_timeout_seconds`: how long provisioning may take before the run crashes.
    pub task_start_timeout: Duration,
    /// `keep_container_group`: stop the group instead of deleting it.
    pub keep_container_group: bool,
    /// `stream_output`: copy the container's log to the flow run's logs.
    pub stream_output: bool,
    /// `task_watch_poll_interval`: time between reads while the group provisions.
    pub poll_interval: Duration,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            task_start_timeout: DEFAULT_TASK_START_TIMEOUT,
            keep_container_group: false,
            stream_output: false,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }
}

/// The result of the last GET of the run's group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRead {
    pub at: OffsetDateTime,
    pub outcome: ReadOutcome,
}

/// The outcome of a GET of a container group.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "memory holds one read per run, so boxing saves nothing worth the indirection"
)]
pub enum ReadOutcome {
    Found(GroupDetail),
    /// ARM returned 404.
    NotFound,
}

/// The position where a container's log stream stopped: the timestamp of the last line sent and how
/// many lines carried exactly that timestamp, so a re-read skips them and no line repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCursor {
    pub last_timestamp: OffsetDateTime,
    pub lines_at_last_timestamp: u32,
}

/// A terminal error the executor met for this run, which ends it Crashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFailure {
    pub reason: CrashReason,
    pub message: String,
}

/// An orphaned group under watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrphanWatch {
    pub first_seen: OffsetDateTime,
    pub last_delete_at: Option<OffsetDateTime>,
}

/// The worker's memory of one flow run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMemory {
    pub phase: Phase,
    /// The deterministic container group name, known from the claim on.
    pub group_name: String,
    /// The group's coordinates, once the job configuration was rendered or a listing showed it.
    pub group: Option<GroupRef>,
    pub job: JobOptions,
    /// The last GET of the group. Cleared when a create is sent, so a 404 read before the
    /// create never counts against the new group.
    pub last_read: Option<GroupRead>,
    pub create_attempts: u32,
    pub log_cursor: Option<LogCursor>,
    pub last_logs_at: Option<OffsetDateTime>,
    /// True once the last lines were read after the container ended.
    pub final_logs_fetched: bool,
    /// When the last delete or stop was sent.
    pub last_cleanup_at: Option<OffsetDateTime>,
    pub failure: Option<RunFailure>,
    /// True while an action for this run is being applied. The planner plans nothing for
    /// such a run, which is how two actions never run at once for one flow run.
    pub in_flight: bool,
}

impl RunMemory {
    /// Creates the memory of a run whose Pending proposal was just accepted.
    pub fn claimed(at: OffsetDateTime, group_name: String) -> Self {
        Self::new(
            Phase::Claimed { at },
            group_name,
            None,
            JobOptions::default(),
        )
    }

    /// Creates the memory of a run taken up without a claim of ours: after a restart, or
    /// from a worker whose lease expired. With `expect_group` the run's infrastructure was
    /// started, so a 404 later means the group was deleted; without it the run still needs
    /// a create.
    pub fn adopted(
        at: OffsetDateTime,
        group_name: String,
        group: Option<GroupRef>,
        job: JobOptions,
        expect_group: bool,
    ) -> Self {
        let phase = if expect_group {
            Phase::Provisioning { since: at }
        } else {
            Phase::Claimed { at }
        };
        Self::new(phase, group_name, group, job)
    }

    fn new(phase: Phase, group_name: String, group: Option<GroupRef>, job: JobOptions) -> Self {
        Self {
            phase,
            group_name,
            group,
            job,
            last_read: None,
            create_attempts: 0,
            log_cursor: None,
            last_logs_at: None,
            final_logs_fetched: false,
            last_cleanup_at: None,
            failure: None,
            in_flight: false,
        }
    }

    /// Records that a create was sent for `group`. The start timeout counts from the first
    /// attempt, so retries never extend it.
    pub fn record_create_sent(&mut self, group: GroupRef, job: JobOptions, at: OffsetDateTime) {
        let since = match self.phase {
            Phase::Creating { since } | Phase::Provisioning { since } => since,
            _ => at,
        };
        self.phase = Phase::Creating { since };
        self.group = Some(group);
        self.job = job;
        self.last_read = None;
        self.create_attempts += 1;
    }

    /// Records that ARM accepted the create (2xx, or 409 for a group tagged with this run).
    pub fn record_create_accepted(&mut self) {
        if let Phase::Creating { since } = self.phase {
            self.phase = Phase::Provisioning { since };
        }
    }

    /// Records a GET of the group and moves the phase by the flow container's state.
    pub fn record_read(&mut self, outcome: ReadOutcome, at: OffsetDateTime) {
        self.phase = if self.stopped_by_cleanup(&outcome) {
            Phase::Gone { at }
        } else {
            phase_after_read(self.phase, &outcome, at)
        };
        self.last_read = Some(GroupRead { at, outcome });
    }

    /// True when a stop sent for `keep_container_group` has taken effect: the group remains
    /// but its flow container terminated.
    fn stopped_by_cleanup(&self, outcome: &ReadOutcome) -> bool {
        let cleaning = matches!(
            self.phase,
            Phase::Cleaning { .. } | Phase::Cancelling { .. }
        );
        let terminated = match outcome {
            ReadOutcome::Found(detail) => detail
                .container
                .as_ref()
                .is_some_and(|c| c.state == ContainerState::Terminated),
            ReadOutcome::NotFound => false,
        };
        cleaning && self.job.keep_container_group && terminated
    }

    /// Records that a delete (or, with `keep_container_group`, a stop) was sent.
    pub fn record_cleanup_sent(&mut self, cancelling: bool, at: OffsetDateTime) {
        self.last_cleanup_at = Some(at);
        self.phase = match self.phase {
            Phase::Cleaning { since } => Phase::Cleaning { since },
            Phase::Cancelling { since } => Phase::Cancelling { since },
            _ if cancelling => Phase::Cancelling { since: at },
            _ => Phase::Cleaning { since: at },
        };
    }

    /// Records a delete that returned 404: the group is gone.
    pub fn record_cleanup_not_found(&mut self, at: OffsetDateTime) {
        self.record_read(ReadOutcome::NotFound, at);
    }

    /// Records a successful log fetch.
    pub fn record_logs(
        &mut self,
        cursor: Option<LogCursor>,
        final_fetch: bool,
        at: OffsetDateTime,
    ) {
        if cursor.is_some() {
            self.log_cursor = cursor;
        }
        self.last_logs_at = Some(at);
        self.final_logs_fetched |= final_fetch;
    }

    /// Records a terminal error (invalid job configuration, create rejected) that ends the
    /// run Crashed on the next tick.
    pub fn record_failure(&mut self, reason: CrashReason, message: String) {
        self.failure = Some(RunFailure { reason, message });
    }

    /// True when the last GET returned 404.
    pub fn read_not_found(&self) -> bool {
        matches!(
            self.last_read,
            Some(GroupRead {
                outcome: ReadOutcome::NotFound,
                ..
            })
        )
    }

    /// Returns the detail of the last GET that found the group.
    pub fn last_detail(&self) -> Option<&GroupDetail> {
        match &self.last_read {
            Some(GroupRead {
                outcome: ReadOutcome::Found(detail),
                ..
            }) => Some(detail),
            _ => None,
        }
    }

    /// True once a delete or stop was sent, whatever the phase moved to afterwards.
    pub fn cleanup_sent(&self) -> bool {
        self.last_cleanup_at.is_some()
    }
}

/// Computes the phase after a GET. A missing instance view, a state we do not know and a
/// terminated container without an exit code leave the phase where it was.
///
/// NOTE: once provisioning succeeded, a container that stays Terminated without an exit
/// code is never crashed by the worker. Its run ends only when the engine reports a final state or it is cancelled.
fn phase_after_read(phase: Phase, outcome: &ReadOutcome, at: OffsetDateTime) -> Phase {
    let detail = match outcome {
        ReadOutcome::NotFound => {
            return match phase {
                Phase::Cleaning { .. } | Phase::Cancelling { .. } => Phase::Gone { at },
                other => other,
            };
        }
        ReadOutcome::Found(detail) => detail,
    };
    match phase {
        Phase::Cleaning { .. } | Phase::Cancelling { .. } | Phase::Gone { .. } => return phase,
        Phase::Terminated { .. } => return phase,
        _ => {}
    }
    let base = match phase {
        Phase::Claimed { .. } => Phase::Provisioning { since: at },
        Phase::Creating { since } => Phase::Provisioning { since },
        other => other,
    };
    let Some(container) = &detail.container else {
        return base;
    };
    match (&container.state, container.exit_code) {
        (ContainerState::Terminated, Some(exit_code)) => Phase::Terminated {
            exit_code,
            at: container.finish_time.unwrap_or(at),
        },
        (ContainerState::Running, _) => match base {
            Phase::Running { .. } => base,
            _ => Phase::Running {
                since: container.start_time.unwrap_or(at),
            },
        },
        _ => base,
    }
}
