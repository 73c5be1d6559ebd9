//! Builders for planner test cases: flow runs, container groups, memory and a whole world.

use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

use crate::reconcile::naming::container_group_name;
use crate::reconcile::{
    Action, ArmErrorView, ArmView, ContainerState, ContainerView, FlowRunView, GroupDetail,
    GroupRef, GroupTags, GroupView, JobOptions, Memory, Phase, Plan, PlannerSettings,
    ProvisioningState, ReadOutcome, ResourceGroupScope, RunMemory, ScheduledRun, Snapshot,
    StateType, WorkerHeartbeat, WorkerIdentity, plan,
};

pub const POOL: &str = "aci-pool";
pub const WORKER: &str = "worker-a";
pub const OTHER_WORKER: &str = "worker-b";
pub const FLOW: &str = "etl";
pub const SUBSCRIPTION: &str = "sub-1";
pub const RESOURCE_GROUP: &str = "rg-1";

/// The tick's clock in every case, 1,000 s after `T0`.
pub const NOW: i64 = 1_000;

/// Returns the time `secs` seconds after the fixed origin of every case.
pub fn at(secs: i64) -> OffsetDateTime {
    datetime!(2026-12-04 08:00 UTC) + time::Duration::seconds(secs)
}

/// Returns the time `secs` seconds before the tick.
pub fn ago(secs: i64) -> OffsetDateTime {
    at(NOW - secs)
}

pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

pub fn scope() -> ResourceGroupScope {
    ResourceGroupScope {
        subscription_id: SUBSCRIPTION.to_string(),
        resource_group: RESOURCE_GROUP.to_string(),
    }
}

pub fn group_ref(run: Uuid) -> GroupRef {
    GroupRef {
        subscription_id: SUBSCRIPTION.to_string(),
        resource_group: RESOURCE_GROUP.to_string(),
        name: container_group_name(FLOW, run),
    }
}

impl FlowRunView {
    /// Builds a run of ours that entered `state_type` 10 s ago.
    pub fn in_state(run: Uuid, state_type: StateType) -> Self {
        Self {
            id: run,
            name: format!("run-{run}"),
            flow_id: id(9_999),
            flow_name: FLOW.to_string(),
            deployment_id: Some(id(8_888)),
            state_type,
            state_name: format!("{state_type:?}"),
            state_timestamp: ago(10),
            infrastructure_pid: None,
            worker_name: Some(WORKER.to_string()),
        }
    }

    pub fn running(run: Uuid) -> Self {
        Self::in_state(run, StateType::Running).with_pid()
    }

    pub fn pending(run: Uuid) -> Self {
        Self::in_state(run, StateType::Pending)
    }

    pub fn cancelling(run: Uuid) -> Self {
        Self::in_state(run, StateType::Cancelling).with_pid()
    }

    pub fn completed(run: Uuid) -> Self {
        Self::in_state(run, StateType::Completed).with_pid()
    }

    pub fn with_pid(mut self) -> Self {
        self.infrastructure_pid = Some(format!("{}:{}", self.id, group_ref(self.id).name));
        self
    }

    pub fn owned_by(mut self, worker: Option<&str>) -> Self {
        self.worker_name = worker.map(str::to_string);
        self
    }

    pub fn state_since(mut self, secs_ago: i64) -> Self {
        self.state_timestamp = ago(secs_ago);
        self
    }
}

impl ScheduledRun {
    pub fn due(run: Uuid) -> Self {
        Self {
            id: run,
            name: format!("run-{run}"),
            flow_id: id(9_999),
            flow_name: FLOW.to_string(),
            deployment_id: Some(id(8_888)),
            deployment_exists: true,
            state_name: "Scheduled".to_string(),
            scheduled_time: ago(0),
        }
    }
}

impl GroupTags {
    pub fn ours(run: Uuid) -> Self {
        Self {
            flow_run_id: Some(run),
            deployment_id: Some(id(8_888)),
            work_pool: Some(POOL.to_string()),
            worker_name: Some(WORKER.to_string()),
            keep_container_group: false,
        }
    }
}

impl GroupView {
    /// Builds a provisioned group of ours as a listing shows it.
    pub fn listed(run: Uuid) -> Self {
        Self {
            group: group_ref(run),
            tags: GroupTags::ours(run),
            provisioning_state: ProvisioningState::Succeeded,
        }
    }

    pub fn provisioning(mut self, state: ProvisioningState) -> Self {
        self.provisioning_state = state;
        self
    }

    pub fn tagged(mut self, tags: GroupTags) -> Self {
        self.tags = tags;
        self
    }
}

impl ContainerView {
    pub fn in_state(state: ContainerState, exit_code: Option<i64>) -> Self {
        Self {
            name: "flow".to_string(),
            state,
            exit_code,
            detail_status: None,
            start_time: Some(ago(100)),
            finish_time: exit_code.map(|_| ago(30)),
        }
    }
}

impl GroupDetail {
    fn with(provisioning_state: ProvisioningState, container: Option<ContainerView>) -> Self {
        Self {
            provisioning_state,
            tags: GroupTags::default(),
            container,
            provisioning_error: None,
            events: Vec::new(),
        }
    }

    /// Still provisioning, with no instance view yet.
    pub fn no_instance_view() -> Self {
        Self::with(ProvisioningState::Creating, None)
    }

    pub fn running() -> Self {
        let container = ContainerView::in_state(ContainerState::Running, None);
        Self::with(ProvisioningState::Succeeded, Some(container))
    }

    /// Terminated 30 s before the tick with `exit_code`.
    pub fn terminated(exit_code: i64) -> Self {
        let container = ContainerView::in_state(ContainerState::Terminated, Some(exit_code));
        Self::with(ProvisioningState::Succeeded, Some(container))
    }

    pub fn failed(code: &str, message: &str) -> Self {
        let mut detail = Self::with(ProvisioningState::Failed, None);
        detail.provisioning_error = Some(ArmErrorView {
            code: code.to_string(),
            message: message.to_string(),
        });
        detail
    }
}

impl RunMemory {
    /// Memory in `phase` with the group's coordinates known and nothing read yet.
    pub fn in_phase(run: Uuid, phase: Phase) -> Self {
        let mut mem = RunMemory::claimed(ago(200), group_ref(run).name);
        mem.phase = phase;
        mem.group = Some(group_ref(run));
        mem.create_attempts = 1;
        mem
    }

    /// Memory after a GET `secs_ago` seconds before the tick, phase moved as the executor
    /// would move it.
    pub fn after_read(mut self, outcome: ReadOutcome, secs_ago: i64) -> Self {
        self.record_read(outcome, ago(secs_ago));
        self
    }

    /// Memory after a GET that found the group with our tags.
    pub fn found(self, mut detail: GroupDetail, secs_ago: i64) -> Self {
        let name = &self.group_name;
        let run = Uuid::parse_str(&name[name.len() - 36..]).expect("group name ends in the run id");
        detail.tags = GroupTags::ours(run);
        self.after_read(ReadOutcome::Found(detail), secs_ago)
    }

    /// Memory after a GET that found a group without our tags.
    pub fn found_untagged(self, detail: GroupDetail, secs_ago: i64) -> Self {
        self.after_read(ReadOutcome::Found(detail), secs_ago)
    }

    pub fn with_job(mut self, job: JobOptions) -> Self {
        self.job = job;
        self
    }
}

pub fn provisioning_since(secs_ago: i64) -> Phase {
    Phase::Provisioning {
        since: ago(secs_ago),
    }
}

pub fn streaming() -> JobOptions {
    JobOptions {
        stream_output: true,
        ..JobOptions::default()
    }
}

pub fn keeping() -> JobOptions {
    JobOptions {
        keep_container_group: true,
        ..JobOptions::default()
    }
}

/// A snapshot, memory and settings for one planner call.
pub struct World {
    pub snapshot: Snapshot,
    pub memory: Memory,
    pub settings: PlannerSettings,
}

impl World {
    /// Builds an empty tick in which the test scope is listed and our worker heart-beats.
    pub fn new() -> Self {
        let snapshot = Snapshot {
            now: at(NOW),
            worker: WorkerIdentity {
                worker_name: WORKER.to_string(),
                work_pool_name: POOL.to_string(),
                work_pool_id: id(7_777),
            },
            scheduled: Vec::new(),
            flow_runs: Vec::new(),
            arm: ArmView {
                listed_scopes: vec![scope()],
                groups: Vec::new(),
            },
            heartbeats: vec![WorkerHeartbeat {
                name: WORKER.to_string(),
                last_heartbeat: ago(5),
            }],
            shutting_down: false,
        };
        Self {
            snapshot,
            memory: Memory::default(),
            settings: PlannerSettings::default(),
        }
    }

    pub fn run(mut self, run: FlowRunView) -> Self {
        self.snapshot.flow_runs.push(run);
        self
    }

    pub fn scheduled(mut self, run: ScheduledRun) -> Self {
        self.snapshot.scheduled.push(run);
        self
    }

    pub fn group(mut self, group: GroupView) -> Self {
        self.snapshot.arm.groups.push(group);
        self
    }

    pub fn mem(mut self, run: Uuid, mem: RunMemory) -> Self {
        self.memory.runs.insert(run, mem);
        self
    }

    pub fn heartbeat(mut self, worker: &str, secs_ago: i64) -> Self {
        self.snapshot.heartbeats.push(WorkerHeartbeat {
            name: worker.to_string(),
            last_heartbeat: ago(secs_ago),
        });
        self
    }

    pub fn unlisted_scope(mut self) -> Self {
        self.snapshot.arm.listed_scopes.clear();
        self
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.settings.limit = Some(limit);
        self
    }

    pub fn shutting_down(mut self) -> Self {
        self.snapshot.shutting_down = true;
        self
    }

    pub fn plan(&self) -> Plan {
        plan(&self.snapshot, &self.memory, &self.settings)
    }

    /// Returns the single action planned, or `None`, and fails when more were planned.
    pub fn action(&self) -> Option<Action> {
        let mut actions = self.plan().actions;
        assert!(
            actions.len() <= 1,
            "expected at most one action, got {actions:#?}"
        );
        actions.pop()
    }
}
