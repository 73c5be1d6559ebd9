//! Phase transitions the executor drives through the `record_*` methods.

use super::builders::*;
use crate::reconcile::{
    ContainerState, ContainerView, GroupDetail, JobOptions, Phase, ReadOutcome, RunMemory,
};

fn claimed() -> RunMemory {
    RunMemory::claimed(ago(100), group_ref(id(1)).name)
}

#[test]
fn create_sent_then_accepted_provisions() {
    let mut mem = claimed();
    mem.record_create_sent(group_ref(id(1)), JobOptions::default(), ago(50));
    assert_eq!(mem.phase, Phase::Creating { since: ago(50) });
    mem.record_create_accepted();
    assert_eq!(mem.phase, Phase::Provisioning { since: ago(50) });
    assert_eq!(mem.create_attempts, 1);
}

#[test]
fn create_retry_keeps_first_start() {
    let mut mem = claimed();
    mem.record_create_sent(group_ref(id(1)), JobOptions::default(), ago(50));
    mem.record_read(ReadOutcome::NotFound, ago(40));
    mem.record_create_sent(group_ref(id(1)), JobOptions::default(), ago(30));
    assert_eq!(mem.phase, Phase::Creating { since: ago(50) });
    assert_eq!(mem.create_attempts, 2);
    assert_eq!(mem.last_read, None);
}

#[test]
fn read_of_running_container_moves_to_running() {
    let mut mem = claimed();
    mem.record_read(ReadOutcome::Found(GroupDetail::running()), ago(5));
    assert_eq!(mem.phase, Phase::Running { since: ago(100) });
}

#[test]
fn read_of_terminated_container_records_exit() {
    let mut mem = claimed();
    mem.record_read(ReadOutcome::Found(GroupDetail::terminated(3)), ago(5));
    assert_eq!(
        mem.phase,
        Phase::Terminated {
            exit_code: 3,
            at: ago(30)
        }
    );
}

#[test]
fn read_without_instance_view_keeps_waiting() {
    let mut mem = RunMemory::in_phase(id(1), provisioning_since(20));
    mem.record_read(ReadOutcome::Found(GroupDetail::no_instance_view()), ago(5));
    assert_eq!(mem.phase, provisioning_since(20));
}

#[test]
fn terminated_without_exit_code_keeps_phase() {
    let mut detail = GroupDetail::running();
    detail.container = Some(ContainerView::in_state(ContainerState::Terminated, None));
    let mut mem = RunMemory::in_phase(id(1), provisioning_since(20));
    mem.record_read(ReadOutcome::Found(detail), ago(5));
    assert_eq!(mem.phase, provisioning_since(20));
}

#[test]
fn not_found_after_cleanup_is_gone() {
    let mut mem = RunMemory::in_phase(id(1), provisioning_since(20));
    mem.record_cleanup_sent(false, ago(10));
    assert_eq!(mem.phase, Phase::Cleaning { since: ago(10) });
    mem.record_cleanup_not_found(ago(5));
    assert_eq!(mem.phase, Phase::Gone { at: ago(5) });
}

#[test]
fn stop_taking_effect_is_gone() {
    let mut mem = RunMemory::in_phase(id(1), provisioning_since(20));
    mem.job.keep_container_group = true;
    mem.record_cleanup_sent(true, ago(10));
    mem.record_read(ReadOutcome::Found(GroupDetail::terminated(143)), ago(5));
    assert_eq!(mem.phase, Phase::Gone { at: ago(5) });
}

#[test]
fn not_found_while_watching_keeps_phase() {
    let mut mem = RunMemory::in_phase(id(1), provisioning_since(20));
    mem.record_read(ReadOutcome::NotFound, ago(5));
    assert_eq!(mem.phase, provisioning_since(20));
    assert!(mem.read_not_found());
}
