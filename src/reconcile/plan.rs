//! The planner: one pure function from the snapshot and memory to this tick's actions.
//!
//! `plan` reads no clock, does no IO and draws no random numbers. It looks at every flow run
//! that Prefect, ARM or memory mentions, decides at most one action for each, then claims
//! scheduled runs while under `--limit`. The state table in `docs/architecture.md` lists
//! every decision; `watch` contains the rules for active runs and `cleanup` those for final,
//! cancelling and orphaned ones.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::action::{Action, AdoptRun, CancelReason, CancelRun, ClaimRun, CrashRun, CreateGroup};
use super::cleanup;
use super::memory::{Memory, OrphanWatch, RunMemory};
use super::naming::{container_group_name, parse_infrastructure_pid};
use super::settings::PlannerSettings;
use super::snapshot::{FlowRunView, GroupRef, GroupView, ScheduledRun, Snapshot, StateType};
use super::watch;

/// The planner's output for one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// At most one action per flow run, in flow-run-id order, claims last.
    pub actions: Vec<Action>,
    /// The orphan watch list to store in `Memory::orphans` for the next tick.
    pub orphans: BTreeMap<GroupRef, OrphanWatch>,
}

/// Plans one tick. `memory` is what the executor recorded from earlier outcomes.
pub fn plan(snapshot: &Snapshot, memory: &Memory, settings: &PlannerSettings) -> Plan {
    let ctx = Ctx::new(snapshot, memory, settings);
    let mut actions = Vec::new();
    let mut orphans = BTreeMap::new();
    for id in ctx.run_ids() {
        let case = ctx.case(id);
        let action = match case.run {
            Some(run) => decide_known_run(&ctx, &case, run),
            None => cleanup::missing_run(&ctx, &case, &mut orphans),
        };
        actions.extend(action);
    }
    let claims = plan_claims(&ctx, &actions);
    actions.extend(claims);
    Plan { actions, orphans }
}

/// Everything the rules read, with lookups built once per tick.
pub(super) struct Ctx<'a> {
    pub snapshot: &'a Snapshot,
    pub memory: &'a Memory,
    pub settings: &'a PlannerSettings,
    runs: BTreeMap<Uuid, &'a FlowRunView>,
    groups: BTreeMap<Uuid, &'a GroupView>,
}

/// One flow run with what Prefect, ARM and memory hold about it.
pub(super) struct Case<'a> {
    pub id: Uuid,
    pub run: Option<&'a FlowRunView>,
    pub mem: Option<&'a RunMemory>,
    pub group: Presence<'a>,
}

/// Whether the run's container group exists, as far as this tick can tell.
#[derive(Debug, Clone, Copy)]
pub(super) enum Presence<'a> {
    /// A listing with our tags showed it.
    Listed(&'a GroupView),
    /// It is not in a listing (untagged, or its scope was not listed) but the last GET
    /// found it.
    Found,
    /// The last GET returned 404.
    Gone,
    /// Its scope was listed and it was not there, and no GET confirmed that yet. Listings
    /// can lag behind creates and deletes, so this alone never crashes a run.
    NotListed,
    /// This tick shows neither presence nor absence.
    Unknown,
}

impl<'a> Ctx<'a> {
    fn new(snapshot: &'a Snapshot, memory: &'a Memory, settings: &'a PlannerSettings) -> Self {
        let runs = snapshot.flow_runs.iter().map(|r| (r.id, r)).collect();
        let mut groups = BTreeMap::new();
        for group in &snapshot.arm.groups {
            let Some(id) = group.tags.flow_run_id else {
                continue;
            };
            if group.tags.work_pool.as_deref() != Some(&snapshot.worker.work_pool_name) {
                continue;
            }
            // NOTE: two groups tagged for one run should not exist, because the name is
            // deterministic. If they do, the one memory names wins, else the first listed.
            let expected = memory.runs.get(&id).map(|m| m.group_name.as_str());
            let replace = expected == Some(group.group.name.as_str());
            if replace || !groups.contains_key(&id) {
                groups.insert(id, group);
            }
        }
        Self {
            snapshot,
            memory,
            settings,
            runs,
            groups,
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.snapshot.now
    }

    /// True when at least `period` passed from `since` to now. A `since` in the future
    /// counts as no time passed.
    pub fn elapsed(&self, since: OffsetDateTime, period: Duration) -> bool {
        let passed = self.now() - since;
        !passed.is_negative() && passed.unsigned_abs() >= period
    }

    /// True when `last` is unset or at least `period` ago.
    pub fn due(&self, last: Option<OffsetDateTime>, period: Duration) -> bool {
        last.is_none_or(|at| self.elapsed(at, period))
    }

    fn run_ids(&self) -> BTreeSet<Uuid> {
        let mut ids: BTreeSet<Uuid> = self.runs.keys().copied().collect();
        ids.extend(self.memory.runs.keys().copied());
        ids.extend(self.groups.keys().copied());
        ids
    }

    fn case(&self, id: Uuid) -> Case<'a> {
        let mem = self.memory.runs.get(&id);
        Case {
            id,
            run: self.runs.get(&id).copied(),
            mem,
            group: self.presence(id, mem),
        }
    }

    fn presence(&self, id: Uuid, mem: Option<&RunMemory>) -> Presence<'a> {
        if let Some(group) = self.groups.get(&id) {
            return Presence::Listed(group);
        }
        let Some(mem) = mem else {
            return Presence::Unknown;
        };
        if mem.read_not_found() {
            return Presence::Gone;
        }
        let Some(group) = &mem.group else {
            return Presence::Unknown;
        };
        let untagged = mem
            .last_detail()
            .is_some_and(|d| d.tags.flow_run_id.is_none());
        let scope_listed = self.snapshot.arm.listed_scopes.contains(&group.scope());
        match (untagged, scope_listed, mem.last_detail().is_some()) {
            (true, _, _) | (false, false, true) => Presence::Found,
            (false, true, _) => Presence::NotListed,
            (false, false, false) => Presence::Unknown,
        }
    }

    /// True when the named worker heartbeat within the lease period. A worker missing from
    /// the heartbeat list is judged by `fallback`, the time its run last changed state.
    fn worker_alive(&self, name: &str, fallback: OffsetDateTime) -> bool {
        let last = self
            .snapshot
            .heartbeats
            .iter()
            .find(|h| h.name == name)
            .map_or(fallback, |h| h.last_heartbeat);
        !self.elapsed(last, self.settings.lease_period)
    }

    fn is_us(&self, name: &str) -> bool {
        name == self.snapshot.worker.worker_name
    }

    /// True when another worker of the pool heartbeat within the lease period.
    fn other_worker_alive(&self) -> bool {
        self.snapshot
            .heartbeats
            .iter()
            .filter(|h| !self.is_us(&h.name))
            .any(|h| !self.elapsed(h.last_heartbeat, self.settings.lease_period))
    }

    /// True when the run is in this tick's scheduled list.
    pub fn is_scheduled(&self, id: Uuid) -> bool {
        self.snapshot.scheduled.iter().any(|s| s.id == id)
    }
}

impl Case<'_> {
    /// Returns the group's coordinates from the listing, else from memory.
    pub fn group_ref(&self) -> Option<&GroupRef> {
        match self.group {
            Presence::Listed(view) => Some(&view.group),
            _ => self.mem.and_then(|m| m.group.as_ref()),
        }
    }
}

/// The right to act on a run.
enum Ownership {
    /// This worker.
    Ours,
    /// Its owner's lease expired, or it had no recorded owner for a lease period.
    TakeOver,
    /// Another live worker, or a claim too recent to judge.
    NotOurs,
}

/// Decides who owns a run. The `prefect.worker.name` label decides; without it the group's
/// worker tag; without both, our memory. A run claimed moments ago by a worker that has not
/// set its label yet looks ownerless. So an ownerless run is taken only after a lease
/// period, and only when no other worker of the pool is alive to own it.
fn ownership(ctx: &Ctx, case: &Case, run: &FlowRunView) -> Ownership {
    let tag_owner = match case.group {
        Presence::Listed(view) => view.tags.worker_name.as_deref(),
        _ => None,
    };
    match run.worker_name.as_deref().or(tag_owner) {
        Some(name) if ctx.is_us(name) => Ownership::Ours,
        Some(name) if ctx.worker_alive(name, run.state_timestamp) => Ownership::NotOurs,
        Some(_) => Ownership::TakeOver,
        None if case.mem.is_some() => Ownership::Ours,
        None if ctx.elapsed(run.state_timestamp, ctx.settings.lease_period)
            && !ctx.other_worker_alive() =>
        {
            Ownership::TakeOver
        }
        None => Ownership::NotOurs,
    }
}

fn decide_known_run(ctx: &Ctx, case: &Case, run: &FlowRunView) -> Option<Action> {
    if case.mem.is_some_and(|m| m.in_flight) {
        return None;
    }
    let takeover = match ownership(ctx, case, run) {
        Ownership::Ours => false,
        Ownership::TakeOver => true,
        // Another worker took the run over from us: let go of it.
        Ownership::NotOurs => {
            return case.mem.map(|_| Action::ReleaseSlot {
                flow_run_id: case.id,
            });
        }
    };
    let Some(mem) = case.mem else {
        return adopt(case, run, takeover);
    };
    if let Some(failure) = &mem.failure
        && !run.state_type.is_final()
    {
        return Some(Action::CrashRun(CrashRun {
            flow_run_id: case.id,
            reason: failure.reason,
            message: failure.message.clone(),
        }));
    }
    match run.state_type {
        StateType::Pending | StateType::Running => watch::active_run(ctx, case, run, mem),
        StateType::Cancelling => cleanup::cancelling_run(ctx, case, mem),
        // A Scheduled run here was sent back for a retry, and a Paused run's container
        // exits: in both cases the group has served its purpose.
        _ => cleanup::final_run(ctx, case, mem),
    }
}

/// Adopts a run of ours that memory does not hold, as after a restart. Final runs are
/// adopted only when a listing shows their group, so a deleted group is not adopted again.
fn adopt(case: &Case, run: &FlowRunView, takeover: bool) -> Option<Action> {
    let listed = match case.group {
        Presence::Listed(view) => Some(view),
        _ => None,
    };
    let pid_name = run
        .infrastructure_pid
        .as_deref()
        .and_then(|pid| parse_infrastructure_pid(pid).ok())
        .filter(|pid| pid.flow_run_id == run.id)
        .map(|pid| pid.group_name);
    let expect_group = match run.state_type {
        StateType::Running => true,
        StateType::Pending | StateType::Cancelling => listed.is_some() || pid_name.is_some(),
        // A kept group of a final run stays on purpose; adopting it would only release it
        // again on every tick.
        _ if listed.is_some_and(|view| !view.tags.keep_container_group) => true,
        _ => return None,
    };
    let group_name = listed
        .map(|view| view.group.name.clone())
        .or(pid_name)
        .unwrap_or_else(|| container_group_name(&run.flow_name, run.id));
    Some(Action::Adopt(AdoptRun {
        flow_run_id: run.id,
        deployment_id: run.deployment_id,
        group_name,
        group: listed.map(|view| view.group.clone()),
        expect_group,
        relabel: takeover,
    }))
}

/// Claims scheduled runs in the server's order until `--limit` is reached. Runs whose
/// deployment is gone are cancelled instead and take no slot.
fn plan_claims(ctx: &Ctx, planned: &[Action]) -> Vec<Action> {
    if ctx.snapshot.shutting_down {
        return Vec::new();
    }
    let planned_ids: BTreeSet<Uuid> = planned.iter().map(Action::flow_run_id).collect();
    let mut used = slots_used(ctx);
    let mut claims = Vec::new();
    for scheduled in &ctx.snapshot.scheduled {
        // A group left from an earlier attempt is removed first (see `cleanup`), so the
        // create under the same name starts a fresh group.
        let known = ctx.memory.runs.contains_key(&scheduled.id)
            || ctx.runs.contains_key(&scheduled.id)
            || ctx.groups.contains_key(&scheduled.id)
            || planned_ids.contains(&scheduled.id)
            || claims
                .iter()
                .any(|a: &Action| a.flow_run_id() == scheduled.id);
        if known {
            continue;
        }
        if !scheduled.deployment_exists {
            claims.push(cancel_for_deleted_deployment(scheduled));
            continue;
        }
        if ctx.settings.limit.is_some_and(|limit| used >= limit) {
            break;
        }
        used += 1;
        claims.push(Action::Claim(ClaimRun {
            create: create_for_scheduled(scheduled),
        }));
    }
    claims
}

/// Counts the runs this worker holds: those in memory, plus groups tagged with our name
/// whose run is active and not yet adopted (the first tick after a restart).
fn slots_used(ctx: &Ctx) -> usize {
    let unadopted = ctx
        .groups
        .iter()
        .filter(|(id, _)| !ctx.memory.runs.contains_key(id))
        .filter(|(_, view)| {
            view.tags
                .worker_name
                .as_deref()
                .is_some_and(|n| ctx.is_us(n))
        })
        .filter(|(id, _)| {
            ctx.runs
                .get(id)
                .is_some_and(|run| !run.state_type.is_final())
        })
        .count();
    ctx.memory.runs.len() + unadopted
}

fn cancel_for_deleted_deployment(scheduled: &ScheduledRun) -> Action {
    let deployment = scheduled
        .deployment_id
        .map_or_else(|| "(none)".to_string(), |id| id.to_string());
    Action::CancelRun(CancelRun {
        flow_run_id: scheduled.id,
        reason: CancelReason::DeploymentDeleted,
        message: format!("Deployment {deployment} no longer exists, cancelled run."),
    })
}

fn create_for_scheduled(scheduled: &ScheduledRun) -> CreateGroup {
    CreateGroup {
        flow_run_id: scheduled.id,
        flow_run_name: scheduled.name.clone(),
        flow_id: scheduled.flow_id,
        flow_name: scheduled.flow_name.clone(),
        deployment_id: scheduled.deployment_id,
        group_name: container_group_name(&scheduled.flow_name, scheduled.id),
        previous_attempts: 0,
    }
}

/// Builds the create for a claimed run that has no group yet.
pub(super) fn create_for_run(run: &FlowRunView, mem: &RunMemory) -> Action {
    Action::CreateGroup(CreateGroup {
        flow_run_id: run.id,
        flow_run_name: run.name.clone(),
        flow_id: run.flow_id,
        flow_name: run.flow_name.clone(),
        deployment_id: run.deployment_id,
        group_name: mem.group_name.clone(),
        previous_attempts: mem.create_attempts,
    })
}
