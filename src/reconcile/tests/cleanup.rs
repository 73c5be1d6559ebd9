//! Cancelling runs, final runs and orphaned groups.

use super::builders::*;
use crate::reconcile::{
    Action, CancelReason, CleanupCause, FlowRunView, GroupDetail, GroupTags, GroupView,
    OrphanWatch, Phase, ReadOutcome, RunMemory, StateType,
};

fn cleaning(run: u128, phase: Phase, sent_secs_ago: i64) -> RunMemory {
    let mut mem = RunMemory::in_phase(id(run), phase);
    mem.last_cleanup_at = Some(ago(sent_secs_ago));
    mem
}

fn watched(run: u128) -> RunMemory {
    RunMemory::in_phase(id(run), provisioning_since(120)).found(GroupDetail::running(), 5)
}

fn cleanup_cause(action: &Option<Action>) -> Option<CleanupCause> {
    match action {
        Some(Action::DeleteGroup(cleanup)) => Some(cleanup.cause),
        _ => None,
    }
}

#[test]
fn cancelling_before_create_cancels_at_once() {
    let mut mem = RunMemory::claimed(ago(1), group_ref(id(1)).name);
    mem.group = None;
    let world = World::new()
        .run(FlowRunView::in_state(id(1), StateType::Cancelling))
        .mem(id(1), mem);
    let action = world.action();
    let Some(Action::CancelRun(cancel)) = action else {
        panic!("expected a cancel, got {action:?}");
    };
    assert_eq!(cancel.reason, CancelReason::Requested);
}

#[test]
fn cancelling_deletes_group() {
    let world = World::new()
        .run(FlowRunView::cancelling(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), watched(1));
    assert_eq!(
        cleanup_cause(&world.action()),
        Some(CleanupCause::Cancelling)
    );
}

#[test]
fn cancelling_while_creating_deletes_group() {
    let mem = RunMemory::in_phase(id(1), Phase::Creating { since: ago(3) });
    let world = World::new()
        .run(FlowRunView::in_state(id(1), StateType::Cancelling))
        .group(GroupView::listed(id(1)))
        .mem(id(1), mem);
    assert_eq!(
        cleanup_cause(&world.action()),
        Some(CleanupCause::Cancelling)
    );
}

#[test]
fn cancelling_with_keep_stops_group() {
    let world = World::new()
        .run(FlowRunView::cancelling(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), watched(1).with_job(keeping()));
    assert!(matches!(world.action(), Some(Action::StopGroup(_))));
}

#[test]
fn cancelling_ignores_non_zero_exit() {
    let mem = watched(1).found(GroupDetail::terminated(143), 1);
    let world = World::new()
        .run(FlowRunView::cancelling(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), mem);
    assert_eq!(
        cleanup_cause(&world.action()),
        Some(CleanupCause::Cancelling)
    );
}

#[test]
fn cancelling_delete_not_repeated_early() {
    let world = World::new()
        .run(FlowRunView::cancelling(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), cleaning(1, Phase::Cancelling { since: ago(10) }, 10));
    assert_eq!(world.action(), None);
}

#[test]
fn cancelling_delete_retried_while_listed() {
    let world = World::new()
        .run(FlowRunView::cancelling(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), cleaning(1, Phase::Cancelling { since: ago(40) }, 31));
    assert_eq!(
        cleanup_cause(&world.action()),
        Some(CleanupCause::Cancelling)
    );
}

#[test]
fn cancelling_group_unlisted_is_confirmed() {
    let world = World::new()
        .run(FlowRunView::cancelling(id(1)))
        .mem(id(1), cleaning(1, Phase::Cancelling { since: ago(10) }, 10));
    assert!(matches!(world.action(), Some(Action::ReadGroup(_))));
}

#[test]
fn cancelling_group_gone_forces_cancelled() {
    let mem =
        cleaning(1, Phase::Cancelling { since: ago(10) }, 10).after_read(ReadOutcome::NotFound, 1);
    let world = World::new()
        .run(FlowRunView::cancelling(id(1)))
        .mem(id(1), mem);
    assert!(matches!(world.action(), Some(Action::CancelRun(_))));
}

#[test]
fn cancelling_stopped_group_forces_cancelled() {
    let mem = cleaning(1, Phase::Cancelling { since: ago(10) }, 10)
        .with_job(keeping())
        .found(GroupDetail::terminated(143), 1);
    let world = World::new()
        .run(FlowRunView::cancelling(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), mem);
    assert!(matches!(world.action(), Some(Action::CancelRun(_))));
}

#[test]
fn final_run_fetches_last_logs_first() {
    let mem = watched(1)
        .with_job(streaming())
        .found(GroupDetail::terminated(0), 1);
    let world = World::new()
        .run(FlowRunView::completed(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), mem);
    let action = world.action();
    let Some(Action::FetchLogs(logs)) = action else {
        panic!("expected a log fetch, got {action:?}");
    };
    assert!(logs.final_fetch);
}

#[test]
fn final_run_awaits_exit_before_last_logs() {
    let world = World::new()
        .run(FlowRunView::completed(id(1)).state_since(1))
        .group(GroupView::listed(id(1)))
        .mem(id(1), watched(1).with_job(streaming()));
    let action = world.action();
    assert!(
        matches!(action, Some(Action::ReadGroup(_))),
        "expected a read of the still running group, got {action:?}"
    );
}

#[test]
fn final_run_fetches_logs_after_exit_grace() {
    let world = World::new()
        .run(FlowRunView::completed(id(1)).state_since(500))
        .group(GroupView::listed(id(1)))
        .mem(id(1), watched(1).with_job(streaming()));
    let action = world.action();
    let Some(Action::FetchLogs(logs)) = action else {
        panic!("expected the last log fetch, got {action:?}");
    };
    assert!(logs.final_fetch);
}

#[test]
fn final_run_deletes_group() {
    let mut mem = watched(1)
        .with_job(streaming())
        .found(GroupDetail::terminated(0), 1);
    mem.record_logs(None, true, ago(1));
    let world = World::new()
        .run(FlowRunView::completed(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), mem);
    assert_eq!(cleanup_cause(&world.action()), Some(CleanupCause::RunFinal));
}

#[test]
fn final_run_with_keep_stops_group() {
    let world = World::new()
        .run(FlowRunView::completed(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), watched(1).with_job(keeping()));
    assert!(matches!(world.action(), Some(Action::StopGroup(_))));
}

#[test]
fn final_run_with_stopped_group_releases() {
    let mem = watched(1)
        .with_job(keeping())
        .found(GroupDetail::terminated(0), 1);
    let world = World::new()
        .run(FlowRunView::completed(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), mem);
    assert_eq!(
        world.action(),
        Some(Action::ReleaseSlot { flow_run_id: id(1) })
    );
}

#[test]
fn final_run_unlisted_group_is_confirmed() {
    let world = World::new()
        .run(FlowRunView::completed(id(1)))
        .mem(id(1), cleaning(1, Phase::Cleaning { since: ago(5) }, 5));
    assert!(matches!(world.action(), Some(Action::ReadGroup(_))));
}

#[test]
fn final_run_group_gone_releases() {
    let mem =
        cleaning(1, Phase::Cleaning { since: ago(5) }, 5).after_read(ReadOutcome::NotFound, 1);
    let world = World::new()
        .run(FlowRunView::completed(id(1)))
        .mem(id(1), mem);
    assert_eq!(
        world.action(),
        Some(Action::ReleaseSlot { flow_run_id: id(1) })
    );
}

#[test]
fn final_run_never_created_releases() {
    let mut mem = RunMemory::claimed(ago(1), group_ref(id(1)).name);
    mem.group = None;
    let run = FlowRunView::in_state(id(1), StateType::Cancelled);
    let world = World::new().run(run).mem(id(1), mem);
    assert_eq!(
        world.action(),
        Some(Action::ReleaseSlot { flow_run_id: id(1) })
    );
}

#[test]
fn late_create_after_timeout_is_deleted() {
    // The run crashed on the start timeout and its group was confirmed gone, then a slow
    // create finished and the group came back.
    let mem =
        cleaning(1, Phase::Cleaning { since: ago(60) }, 60).after_read(ReadOutcome::NotFound, 50);
    let run = FlowRunView::in_state(id(1), StateType::Crashed).with_pid();
    let world = World::new()
        .run(run)
        .group(GroupView::listed(id(1)))
        .mem(id(1), mem);
    assert_eq!(cleanup_cause(&world.action()), Some(CleanupCause::RunFinal));
}

#[test]
fn orphan_is_watched_first() {
    let world = World::new().group(GroupView::listed(id(1)));
    let plan = world.plan();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(
        plan.orphans.get(&group_ref(id(1))).map(|w| w.first_seen),
        Some(ago(0))
    );
}

#[test]
fn orphan_deleted_after_grace() {
    let mut world = World::new().group(GroupView::listed(id(1)));
    let watch = OrphanWatch {
        first_seen: ago(301),
        last_delete_at: None,
    };
    world.memory.orphans.insert(group_ref(id(1)), watch);
    let plan = world.plan();
    assert_eq!(plan.actions.len(), 1);
    assert_eq!(
        cleanup_cause(&plan.actions.first().cloned()),
        Some(CleanupCause::Orphan)
    );
    let next = plan.orphans.get(&group_ref(id(1))).copied();
    assert_eq!(next.and_then(|w| w.last_delete_at), Some(ago(0)));
}

#[test]
fn orphan_of_other_pool_never_touched() {
    let mut tags = GroupTags::ours(id(1));
    tags.work_pool = Some("other-pool".to_string());
    let mut world = World::new().group(GroupView::listed(id(1)).tagged(tags));
    world.memory.orphans.insert(
        group_ref(id(1)),
        OrphanWatch {
            first_seen: ago(9_000),
            last_delete_at: None,
        },
    );
    let plan = world.plan();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert!(plan.orphans.is_empty());
}

#[test]
fn group_without_run_tag_never_touched() {
    let mut tags = GroupTags::ours(id(1));
    tags.flow_run_id = None;
    let world = World::new().group(GroupView::listed(id(1)).tagged(tags));
    assert!(world.plan().actions.is_empty());
}

#[test]
fn orphan_of_live_worker_left_alone() {
    let mut tags = GroupTags::ours(id(1));
    tags.worker_name = Some(OTHER_WORKER.to_string());
    let world = World::new()
        .heartbeat(OTHER_WORKER, 5)
        .group(GroupView::listed(id(1)).tagged(tags));
    let plan = world.plan();
    assert!(plan.actions.is_empty());
    assert!(plan.orphans.is_empty());
}

#[test]
fn kept_orphan_left_alone() {
    let mut tags = GroupTags::ours(id(1));
    tags.keep_container_group = true;
    let world = World::new().group(GroupView::listed(id(1)).tagged(tags));
    assert!(world.plan().orphans.is_empty());
}

#[test]
fn missing_run_memory_released() {
    let world = World::new().mem(id(1), watched(1).after_read(ReadOutcome::NotFound, 1));
    assert_eq!(
        world.action(),
        Some(Action::ReleaseSlot { flow_run_id: id(1) })
    );
}

#[test]
fn rescheduled_runs_old_group_deleted_at_once() {
    let world = World::new()
        .scheduled(crate::reconcile::ScheduledRun::due(id(1)))
        .group(GroupView::listed(id(1)));
    let action = world.action();
    assert_eq!(cleanup_cause(&action), Some(CleanupCause::RunFinal));
}

#[test]
fn orphan_watch_survives_in_flight_tick() {
    let mut mem = watched(1);
    mem.in_flight = true;
    let mut world = World::new().group(GroupView::listed(id(1))).mem(id(1), mem);
    let watch = OrphanWatch {
        first_seen: ago(400),
        last_delete_at: None,
    };
    world.memory.orphans.insert(group_ref(id(1)), watch);
    let plan = world.plan();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(plan.orphans.get(&group_ref(id(1))), Some(&watch));
}

#[test]
fn paused_run_group_cleaned_up() {
    let mem = watched(1).found(GroupDetail::terminated(0), 1);
    let run = FlowRunView::in_state(id(1), StateType::Paused).with_pid();
    let world = World::new()
        .run(run)
        .group(GroupView::listed(id(1)))
        .mem(id(1), mem);
    assert_eq!(cleanup_cause(&world.action()), Some(CleanupCause::RunFinal));
}

#[test]
fn final_run_non_zero_exit_not_crashed() {
    let mem = watched(1).found(GroupDetail::terminated(1), 1);
    let run = FlowRunView::in_state(id(1), StateType::Failed).with_pid();
    let world = World::new()
        .run(run)
        .group(GroupView::listed(id(1)))
        .mem(id(1), mem);
    assert_eq!(cleanup_cause(&world.action()), Some(CleanupCause::RunFinal));
}

#[test]
fn cancelling_without_memory_is_adopted() {
    let run = FlowRunView::in_state(id(1), StateType::Cancelling);
    let action = World::new().run(run).action();
    let Some(Action::Adopt(adopt)) = action else {
        panic!("expected an adoption, got {action:?}");
    };
    assert!(!adopt.expect_group);
}
