//! Invariants checked over every combination of run state, owner, group and memory.

use std::collections::BTreeSet;

use super::builders::*;
use crate::reconcile::{
    Action, FlowRunView, GroupDetail, GroupTags, GroupView, Phase, ReadOutcome, RunMemory,
    ScheduledRun, StateType,
};

const STATES: [StateType; 9] = [
    StateType::Scheduled,
    StateType::Pending,
    StateType::Running,
    StateType::Paused,
    StateType::Cancelling,
    StateType::Completed,
    StateType::Failed,
    StateType::Crashed,
    StateType::Cancelled,
];

#[derive(Clone, Copy, Debug)]
enum Owner {
    Us,
    LiveOther,
    DeadOther,
    Nobody,
}

fn phases() -> Vec<Phase> {
    let t = ago(500);
    vec![
        Phase::Claimed { at: t },
        Phase::Creating { since: t },
        Phase::Provisioning { since: t },
        Phase::Running { since: t },
        Phase::Terminated {
            exit_code: 0,
            at: t,
        },
        Phase::Terminated {
            exit_code: 2,
            at: t,
        },
        Phase::Cleaning { since: t },
        Phase::Cancelling { since: t },
        Phase::Gone { at: t },
    ]
}

fn memories() -> Vec<Option<RunMemory>> {
    let reads = [
        None,
        Some(ReadOutcome::Found(GroupDetail::running())),
        Some(ReadOutcome::Found(GroupDetail::terminated(1))),
        Some(ReadOutcome::Found(GroupDetail::failed("Quota", "no cores"))),
        Some(ReadOutcome::NotFound),
    ];
    let mut all = vec![None];
    for phase in phases() {
        for read in &reads {
            for in_flight in [false, true] {
                let mut mem = RunMemory::in_phase(id(1), phase).with_job(streaming());
                if let Some(outcome) = read {
                    mem = match outcome {
                        ReadOutcome::Found(detail) => mem.found(detail.clone(), 100),
                        ReadOutcome::NotFound => mem.after_read(ReadOutcome::NotFound, 100),
                    };
                    mem.phase = phase;
                }
                mem.in_flight = in_flight;
                all.push(Some(mem));
            }
        }
    }
    all
}

fn foreign_groups() -> [GroupView; 2] {
    let mut other_pool = GroupTags::ours(id(2));
    other_pool.work_pool = Some("other-pool".to_string());
    let mut untagged = GroupTags::ours(id(3));
    untagged.flow_run_id = None;
    [
        GroupView::listed(id(2)).tagged(other_pool),
        GroupView::listed(id(3)).tagged(untagged),
    ]
}

fn world_for(
    state: Option<StateType>,
    owner: Owner,
    group: bool,
    mem: &Option<RunMemory>,
) -> World {
    let mut world = World::new()
        .heartbeat(OTHER_WORKER, 5)
        .heartbeat("worker-dead", 900)
        .scheduled(ScheduledRun::due(id(4)));
    for foreign in foreign_groups() {
        world = world.group(foreign);
    }
    if let Some(state) = state {
        let name = match owner {
            Owner::Us => Some(WORKER),
            Owner::LiveOther => Some(OTHER_WORKER),
            Owner::DeadOther => Some("worker-dead"),
            Owner::Nobody => None,
        };
        let run = FlowRunView::in_state(id(1), state)
            .with_pid()
            .owned_by(name);
        world = world.run(run.state_since(900));
    }
    if group {
        world = world.group(GroupView::listed(id(1)));
    }
    if let Some(mem) = mem {
        world = world.mem(id(1), mem.clone());
    }
    world
}

#[test]
fn planner_invariants_hold_everywhere() {
    let foreign_refs: Vec<_> = foreign_groups().iter().map(|g| g.group.clone()).collect();
    let mut cases = 0;
    let states = std::iter::once(None).chain(STATES.iter().copied().map(Some));
    for state in states {
        for owner in [Owner::Us, Owner::LiveOther, Owner::DeadOther, Owner::Nobody] {
            for group in [false, true] {
                for mem in memories() {
                    cases += 1;
                    let world = world_for(state, owner, group, &mem);
                    let context =
                        format!("state {state:?}, owner {owner:?}, group {group}, mem {mem:?}");
                    let actions = world.plan().actions;
                    let mut ids = BTreeSet::new();
                    for action in &actions {
                        let new = ids.insert(action.flow_run_id());
                        assert!(new, "two actions for one run: {actions:?}; {context}");
                        assert!(
                            action
                                .target_group()
                                .is_none_or(|g| !foreign_refs.contains(g)),
                            "foreign group touched: {action:?}; {context}"
                        );
                        assert!(
                            ![id(2), id(3)].contains(&action.flow_run_id()),
                            "foreign group's run acted on: {action:?}; {context}"
                        );
                    }
                    let in_flight = mem.as_ref().is_some_and(|m| m.in_flight);
                    let acted_on_run = ids.contains(&id(1));
                    assert!(
                        !(in_flight && acted_on_run),
                        "in-flight run got {actions:?}; {context}"
                    );
                    let live_other = matches!(owner, Owner::LiveOther) && state.is_some();
                    let allowed = actions
                        .iter()
                        .filter(|a| a.flow_run_id() == id(1))
                        .all(|a| matches!(a, Action::ReleaseSlot { .. }));
                    assert!(
                        !live_other || allowed,
                        "acted on a live worker's run: {actions:?}; {context}"
                    );
                }
            }
        }
    }
    assert!(cases > 1_000, "only {cases} cases");
}
