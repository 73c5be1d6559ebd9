//! Claiming scheduled runs, ownership between workers, and adoption after a restart.

use super::builders::*;
use crate::reconcile::naming::container_group_name;
use crate::reconcile::{
    Action, CancelReason, FlowRunView, GroupView, Phase, RunMemory, ScheduledRun,
};

#[test]
fn claim_scheduled_run() {
    let action = World::new().scheduled(ScheduledRun::due(id(1))).action();
    let Some(Action::Claim(claim)) = action else {
        panic!("expected a claim, got {action:?}");
    };
    assert_eq!(claim.create.flow_run_id, id(1));
    assert_eq!(claim.create.group_name, container_group_name(FLOW, id(1)));
}

#[test]
fn claim_stops_at_limit() {
    let world = World::new()
        .limit(1)
        .mem(id(1), RunMemory::in_phase(id(1), provisioning_since(5)))
        .run(FlowRunView::running(id(1)))
        .group(GroupView::listed(id(1)))
        .scheduled(ScheduledRun::due(id(2)));
    let claims: Vec<_> = world
        .plan()
        .actions
        .into_iter()
        .filter(|a| matches!(a, Action::Claim(_)))
        .collect();
    assert!(claims.is_empty(), "{claims:?}");
}

#[test]
fn claim_limit_counts_unadopted_groups() {
    // After a restart memory is empty, but our listed group still takes a slot.
    let world = World::new()
        .limit(1)
        .run(FlowRunView::running(id(1)))
        .group(GroupView::listed(id(1)))
        .scheduled(ScheduledRun::due(id(2)));
    let actions = world.plan().actions;
    assert!(
        actions.iter().all(|a| !matches!(a, Action::Claim(_))),
        "{actions:?}"
    );
}

#[test]
fn claim_fills_remaining_slots_only() {
    let world = World::new()
        .limit(2)
        .scheduled(ScheduledRun::due(id(1)))
        .scheduled(ScheduledRun::due(id(2)))
        .scheduled(ScheduledRun::due(id(3)));
    let claimed: Vec<_> = world
        .plan()
        .actions
        .iter()
        .map(Action::flow_run_id)
        .collect();
    assert_eq!(claimed, vec![id(1), id(2)]);
}

#[test]
fn claim_nothing_when_shutting_down() {
    let world = World::new()
        .shutting_down()
        .scheduled(ScheduledRun::due(id(1)));
    assert_eq!(world.action(), None);
}

#[test]
fn claim_skips_remembered_run() {
    let world = World::new()
        .scheduled(ScheduledRun::due(id(1)))
        .mem(id(1), RunMemory::claimed(ago(1), "x".to_string()));
    let actions = world.plan().actions;
    assert!(
        actions.iter().all(|a| !matches!(a, Action::Claim(_))),
        "{actions:?}"
    );
}

#[test]
fn deleted_deployment_cancels_run() {
    let mut scheduled = ScheduledRun::due(id(1));
    scheduled.deployment_exists = false;
    let action = World::new().limit(0).scheduled(scheduled).action();
    let Some(Action::CancelRun(cancel)) = action else {
        panic!("expected a cancel, got {action:?}");
    };
    assert_eq!(cancel.reason, CancelReason::DeploymentDeleted);
    assert!(
        cancel.message.contains("no longer exists"),
        "{}",
        cancel.message
    );
}

#[test]
fn live_workers_run_left_alone() {
    let world = World::new()
        .heartbeat(OTHER_WORKER, 10)
        .run(FlowRunView::running(id(1)).owned_by(Some(OTHER_WORKER)))
        .group(GroupView::listed(id(1)));
    assert_eq!(world.action(), None);
}

#[test]
fn expired_lease_takes_run_over() {
    let world = World::new()
        .heartbeat(OTHER_WORKER, 600)
        .run(FlowRunView::running(id(1)).owned_by(Some(OTHER_WORKER)))
        .group(GroupView::listed(id(1)));
    let action = world.action();
    let Some(Action::Adopt(adopt)) = action else {
        panic!("expected an adoption, got {action:?}");
    };
    assert!(adopt.relabel);
    assert!(adopt.expect_group);
}

#[test]
fn fresh_unlabelled_claim_left_alone() {
    let run = FlowRunView::pending(id(1)).owned_by(None).state_since(5);
    assert_eq!(World::new().run(run).action(), None);
}

#[test]
fn stale_unlabelled_run_taken_over() {
    let run = FlowRunView::pending(id(1)).owned_by(None).state_since(600);
    let action = World::new().run(run).action();
    assert!(
        matches!(action, Some(Action::Adopt(ref a)) if a.relabel),
        "{action:?}"
    );
}

#[test]
fn run_taken_from_us_is_released() {
    let world = World::new()
        .heartbeat(OTHER_WORKER, 10)
        .run(FlowRunView::running(id(1)).owned_by(Some(OTHER_WORKER)))
        .mem(id(1), RunMemory::in_phase(id(1), provisioning_since(5)));
    let action = world.action();
    assert_eq!(action, Some(Action::ReleaseSlot { flow_run_id: id(1) }));
}

#[test]
fn restart_adopts_listed_group() {
    let world = World::new()
        .run(FlowRunView::running(id(1)))
        .group(GroupView::listed(id(1)));
    let action = world.action();
    let Some(Action::Adopt(adopt)) = action else {
        panic!("expected an adoption, got {action:?}");
    };
    assert_eq!(adopt.group, Some(group_ref(id(1))));
    assert!(adopt.expect_group);
    assert!(!adopt.relabel);
}

#[test]
fn restart_adopts_untagged_group_by_pid() {
    let mut run = FlowRunView::running(id(1));
    run.infrastructure_pid = Some(format!("{}:python-made-{}", id(1), id(1)));
    let action = World::new().run(run).action();
    let Some(Action::Adopt(adopt)) = action else {
        panic!("expected an adoption, got {action:?}");
    };
    assert_eq!(adopt.group_name, format!("python-made-{}", id(1)));
    assert_eq!(adopt.group, None);
    assert!(adopt.expect_group);
}

#[test]
fn restart_adopts_claimed_run_without_group() {
    let action = World::new().run(FlowRunView::pending(id(1))).action();
    let Some(Action::Adopt(adopt)) = action else {
        panic!("expected an adoption, got {action:?}");
    };
    assert!(!adopt.expect_group);
}

#[test]
fn restart_adopts_final_run_with_group() {
    let world = World::new()
        .run(FlowRunView::completed(id(1)))
        .group(GroupView::listed(id(1)));
    assert!(matches!(world.action(), Some(Action::Adopt(_))));
}

#[test]
fn restart_ignores_final_run_without_group() {
    let world = World::new().run(FlowRunView::completed(id(1)));
    assert_eq!(world.action(), None);
}

#[test]
fn restart_ignores_kept_group_of_final_run() {
    let mut group = GroupView::listed(id(1));
    group.tags.keep_container_group = true;
    let world = World::new().run(FlowRunView::completed(id(1))).group(group);
    assert_eq!(world.action(), None);
}

#[test]
fn adopted_memory_starts_by_expectation() {
    let with_group = RunMemory::adopted(ago(0), "g".into(), None, Default::default(), true);
    let without = RunMemory::adopted(ago(0), "g".into(), None, Default::default(), false);
    assert!(matches!(with_group.phase, Phase::Provisioning { .. }));
    assert!(matches!(without.phase, Phase::Claimed { .. }));
}

#[test]
fn stale_unlabelled_run_left_to_live_worker() {
    let run = FlowRunView::pending(id(1)).owned_by(None).state_since(600);
    let world = World::new().heartbeat(OTHER_WORKER, 5).run(run);
    assert_eq!(world.action(), None);
}
