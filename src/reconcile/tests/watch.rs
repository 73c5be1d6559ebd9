//! Creating groups and watching active runs.

use super::builders::*;
use crate::reconcile::exit_codes::crash_message;
use crate::reconcile::{
    Action, ContainerState, ContainerView, CrashReason, FlowRunView, GroupDetail, GroupView, Phase,
    ProvisioningState, ReadOutcome, RunMemory,
};

fn crash_reason(action: Option<Action>) -> Option<CrashReason> {
    match action {
        Some(Action::CrashRun(crash)) => Some(crash.reason),
        _ => None,
    }
}

fn claimed(run: u128) -> RunMemory {
    let mut mem = RunMemory::claimed(ago(1), group_ref(id(run)).name);
    mem.group = None;
    mem
}

fn running_mem(run: u128, read_secs_ago: i64) -> RunMemory {
    RunMemory::in_phase(id(run), provisioning_since(120))
        .found(GroupDetail::running(), read_secs_ago)
}

#[test]
fn claimed_run_without_group_is_created() {
    let world = World::new()
        .run(FlowRunView::pending(id(1)))
        .mem(id(1), claimed(1));
    let action = world.action();
    let Some(Action::CreateGroup(create)) = action else {
        panic!("expected a create, got {action:?}");
    };
    assert_eq!(create.group_name, group_ref(id(1)).name);
    assert_eq!(create.previous_attempts, 0);
}

#[test]
fn claimed_run_listed_group_read() {
    let world = World::new()
        .run(FlowRunView::pending(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), claimed(1));
    assert!(matches!(world.action(), Some(Action::ReadGroup(_))));
}

#[test]
fn lost_create_is_read_back() {
    let mem = RunMemory::in_phase(id(1), Phase::Creating { since: ago(20) });
    let world = World::new()
        .run(FlowRunView::pending(id(1)))
        .mem(id(1), mem);
    assert!(matches!(world.action(), Some(Action::ReadGroup(_))));
}

#[test]
fn create_that_never_landed_is_sent_again() {
    let mem = RunMemory::in_phase(id(1), Phase::Creating { since: ago(20) })
        .after_read(ReadOutcome::NotFound, 2);
    let world = World::new()
        .run(FlowRunView::pending(id(1)))
        .mem(id(1), mem);
    let action = world.action();
    let Some(Action::CreateGroup(create)) = action else {
        panic!("expected a create, got {action:?}");
    };
    assert_eq!(create.previous_attempts, 1);
}

#[test]
fn creating_past_start_timeout_crashes() {
    let mem = RunMemory::in_phase(id(1), Phase::Creating { since: ago(300) });
    let world = World::new()
        .run(FlowRunView::pending(id(1)))
        .mem(id(1), mem);
    assert_eq!(
        crash_reason(world.action()),
        Some(CrashReason::StartTimeout)
    );
}

#[test]
fn run_with_action_in_flight_gets_nothing() {
    let mut mem = claimed(1);
    mem.in_flight = true;
    let world = World::new()
        .run(FlowRunView::pending(id(1)))
        .mem(id(1), mem);
    assert_eq!(world.action(), None);
}

#[test]
fn recorded_failure_crashes_run() {
    let mut mem = claimed(1);
    mem.record_failure(CrashReason::InvalidConfiguration, "bad cpu".to_string());
    let world = World::new()
        .run(FlowRunView::pending(id(1)))
        .mem(id(1), mem);
    let action = world.action();
    let Some(Action::CrashRun(crash)) = action else {
        panic!("expected a crash, got {action:?}");
    };
    assert_eq!(crash.reason, CrashReason::InvalidConfiguration);
    assert_eq!(crash.message, "bad cpu");
}

#[test]
fn missing_instance_view_means_not_yet() {
    let mem = RunMemory::in_phase(id(1), provisioning_since(30))
        .found(GroupDetail::no_instance_view(), 1);
    let world = World::new()
        .run(FlowRunView::pending(id(1)).with_pid())
        .group(GroupView::listed(id(1)).provisioning(ProvisioningState::Creating))
        .mem(id(1), mem);
    assert_eq!(world.action(), None);
}

#[test]
fn unknown_container_state_means_not_yet() {
    let mut detail = GroupDetail::running();
    detail.container = Some(ContainerView::in_state(
        ContainerState::Other("Odd".into()),
        None,
    ));
    let mem = RunMemory::in_phase(id(1), provisioning_since(30)).found(detail, 1);
    let world = World::new()
        .run(FlowRunView::pending(id(1)).with_pid())
        .group(GroupView::listed(id(1)))
        .mem(id(1), mem);
    assert_eq!(world.action(), None);
}

#[test]
fn provisioning_read_again_after_interval() {
    let mem = RunMemory::in_phase(id(1), provisioning_since(30))
        .found(GroupDetail::no_instance_view(), 6);
    let world = World::new()
        .run(FlowRunView::pending(id(1)).with_pid())
        .group(GroupView::listed(id(1)).provisioning(ProvisioningState::Creating))
        .mem(id(1), mem);
    assert!(matches!(world.action(), Some(Action::ReadGroup(_))));
}

#[test]
fn provisioning_failed_crashes_with_arm_error() {
    let detail = GroupDetail::failed("InaccessibleImage", "The image 'nope' is not accessible.");
    let mem = RunMemory::in_phase(id(1), provisioning_since(30)).found(detail, 1);
    let world = World::new()
        .run(FlowRunView::pending(id(1)).with_pid())
        .group(GroupView::listed(id(1)).provisioning(ProvisioningState::Failed))
        .mem(id(1), mem);
    let action = world.action();
    let Some(Action::CrashRun(crash)) = action else {
        panic!("expected a crash, got {action:?}");
    };
    assert_eq!(crash.reason, CrashReason::ProvisioningFailed);
    assert!(
        crash.message.contains("InaccessibleImage"),
        "{}",
        crash.message
    );
}

#[test]
fn provisioning_past_start_timeout_crashes() {
    let mem = RunMemory::in_phase(id(1), provisioning_since(241))
        .found(GroupDetail::no_instance_view(), 1);
    let world = World::new()
        .run(FlowRunView::pending(id(1)).with_pid())
        .group(GroupView::listed(id(1)).provisioning(ProvisioningState::Creating))
        .mem(id(1), mem);
    assert_eq!(
        crash_reason(world.action()),
        Some(CrashReason::StartTimeout)
    );
}

#[test]
fn listing_state_change_triggers_read() {
    let mem = RunMemory::in_phase(id(1), provisioning_since(30))
        .found(GroupDetail::no_instance_view(), 1);
    let world = World::new()
        .run(FlowRunView::pending(id(1)).with_pid())
        .group(GroupView::listed(id(1)).provisioning(ProvisioningState::Failed))
        .mem(id(1), mem);
    assert!(matches!(world.action(), Some(Action::ReadGroup(_))));
}

#[test]
fn running_run_read_rarely() {
    let world = World::new()
        .run(FlowRunView::running(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), running_mem(1, 30));
    assert_eq!(world.action(), None);
}

#[test]
fn running_run_read_after_running_interval() {
    let world = World::new()
        .run(FlowRunView::running(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), running_mem(1, 61));
    assert!(matches!(world.action(), Some(Action::ReadGroup(_))));
}

#[test]
fn container_running_but_run_pending_read_often() {
    let world = World::new()
        .run(FlowRunView::pending(id(1)).with_pid())
        .group(GroupView::listed(id(1)))
        .mem(id(1), running_mem(1, 6));
    assert!(matches!(world.action(), Some(Action::ReadGroup(_))));
}

#[test]
fn streaming_fetches_logs_between_reads() {
    let world = World::new()
        .run(FlowRunView::running(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), running_mem(1, 30).with_job(streaming()));
    let action = world.action();
    let Some(Action::FetchLogs(logs)) = action else {
        panic!("expected a log fetch, got {action:?}");
    };
    assert!(!logs.final_fetch);
    assert_eq!(logs.container_name, "flow");
}

#[test]
fn exit_zero_waits_for_final_state() {
    let mem = running_mem(1, 60).found(GroupDetail::terminated(0), 1);
    let world = World::new()
        .run(FlowRunView::running(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), mem);
    assert_eq!(world.action(), None);
}

#[test]
fn exit_zero_without_final_state_crashes_after_grace() {
    let mut mem = running_mem(1, 60).found(GroupDetail::terminated(0), 1);
    mem.phase = Phase::Terminated {
        exit_code: 0,
        at: ago(121),
    };
    let world = World::new()
        .run(FlowRunView::running(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), mem);
    assert_eq!(
        crash_reason(world.action()),
        Some(CrashReason::NoFinalState)
    );
}

#[test]
fn non_zero_exit_crashes_with_explanation() {
    let mem = running_mem(1, 60).found(GroupDetail::terminated(137), 1);
    let world = World::new()
        .run(FlowRunView::running(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), mem);
    let action = world.action();
    let Some(Action::CrashRun(crash)) = action else {
        panic!("expected a crash, got {action:?}");
    };
    assert_eq!(crash.reason, CrashReason::NonZeroExit);
    assert_eq!(crash.message, crash_message(137));
}

#[test]
fn container_state_decides_not_group_state() {
    // The group reports Succeeded, but its flow container ended with an error.
    let mem = running_mem(1, 60).found(GroupDetail::terminated(1), 1);
    let world = World::new()
        .run(FlowRunView::running(id(1)))
        .group(GroupView::listed(id(1)).provisioning(ProvisioningState::Succeeded))
        .mem(id(1), mem);
    assert_eq!(crash_reason(world.action()), Some(CrashReason::NonZeroExit));
}

#[test]
fn terminated_without_exit_code_means_not_yet() {
    let mut detail = GroupDetail::running();
    detail.container = Some(ContainerView::in_state(ContainerState::Terminated, None));
    let mem = running_mem(1, 30).found(detail, 1);
    let world = World::new()
        .run(FlowRunView::running(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), mem);
    assert_eq!(world.action(), None);
}

#[test]
fn unlisted_group_is_confirmed_before_crash() {
    let world = World::new()
        .run(FlowRunView::running(id(1)))
        .mem(id(1), running_mem(1, 5));
    assert!(matches!(world.action(), Some(Action::ReadGroup(_))));
}

#[test]
fn group_deleted_outside_crashes() {
    let mem = running_mem(1, 60).after_read(ReadOutcome::NotFound, 1);
    let world = World::new()
        .run(FlowRunView::running(id(1)))
        .mem(id(1), mem);
    let action = world.action();
    let Some(Action::CrashRun(crash)) = action else {
        panic!("expected a crash, got {action:?}");
    };
    assert_eq!(crash.reason, CrashReason::GroupDeleted);
    assert!(
        crash.message.contains("deleted outside the worker"),
        "{}",
        crash.message
    );
}

#[test]
fn unlisted_scope_changes_nothing() {
    let mem = RunMemory::in_phase(id(1), provisioning_since(10));
    let world = World::new()
        .unlisted_scope()
        .run(FlowRunView::running(id(1)))
        .mem(id(1), mem);
    assert_eq!(world.action(), None);
}

#[test]
fn untagged_group_watched_by_reads() {
    let mem = RunMemory::in_phase(id(1), provisioning_since(120))
        .found_untagged(GroupDetail::running(), 61);
    let world = World::new()
        .run(FlowRunView::running(id(1)))
        .mem(id(1), mem);
    assert!(matches!(world.action(), Some(Action::ReadGroup(_))));
}

#[test]
fn missing_pid_is_set_once_group_exists() {
    let world = World::new()
        .run(FlowRunView::pending(id(1)))
        .group(GroupView::listed(id(1)))
        .mem(id(1), running_mem(1, 1));
    let action = world.action();
    let Some(Action::SetInfrastructurePid { value, .. }) = action else {
        panic!("expected the pid to be set, got {action:?}");
    };
    assert_eq!(value, format!("{}:{}", id(1), group_ref(id(1)).name));
}
