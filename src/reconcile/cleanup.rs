//! Rules that remove container groups: for final runs, Cancelling runs and orphans.

use std::collections::BTreeMap;

use super::action::{Action, CancelReason, CancelRun, CleanupCause, GroupCleanup};
use super::memory::{OrphanWatch, Phase, RunMemory};
use super::plan::{Case, Ctx, Presence};
use super::snapshot::{ContainerState, GroupRef, GroupView};
use super::watch::{fetch_logs, read};

/// Plans the cleanup of a run that is final (or sent back to Scheduled, or Paused): read the
/// last logs, delete or stop the group until it is gone, then release the slot.
pub(super) fn final_run(ctx: &Ctx, case: &Case, mem: &RunMemory) -> Option<Action> {
    match case.group {
        Presence::Listed(_) | Presence::Found => {
            remove_group(ctx, case, mem, CleanupCause::RunFinal)
        }
        Presence::NotListed => read(case),
        Presence::Gone => release(case),
        // No group was ever requested for this run.
        Presence::Unknown if mem.group.is_none() => release(case),
        Presence::Unknown => None,
    }
}

/// Plans a Cancelling run: delete or stop its group in any phase, and force Cancelled once
/// it is gone.
pub(super) fn cancelling_run(ctx: &Ctx, case: &Case, mem: &RunMemory) -> Option<Action> {
    let present = matches!(case.group, Presence::Listed(_) | Presence::Found);
    match mem.phase {
        // No create was sent, so no group can exist.
        Phase::Claimed { .. } if !present => return Some(cancelled(case)),
        Phase::Gone { .. } => return Some(cancelled(case)),
        _ => {}
    }
    match case.group {
        Presence::Listed(_) | Presence::Found => {
            remove_group(ctx, case, mem, CleanupCause::Cancelling)
        }
        Presence::NotListed => read(case),
        Presence::Gone => Some(cancelled(case)),
        Presence::Unknown if mem.group.is_none() => Some(cancelled(case)),
        Presence::Unknown => None,
    }
}

/// Removes a group that still exists. The last logs come first when `stream_output` is on.
/// A stopped group (`keep_container_group`) whose container terminated counts as done.
fn remove_group(ctx: &Ctx, case: &Case, mem: &RunMemory, cause: CleanupCause) -> Option<Action> {
    let keep = keep_container_group(case, mem);
    if mem.job.stream_output && !mem.final_logs_fetched && !mem.cleanup_sent() {
        // The engine reports the final state before its process exits, and the process
        // writes its buffered output when it exits. So the last read of a final run waits
        // for the container to end, for at most the final-state grace after the state.
        let awaiting_exit = cause == CleanupCause::RunFinal
            && container_not_terminated(mem)
            && case
                .run
                .is_some_and(|r| !ctx.elapsed(r.state_timestamp, ctx.settings.final_state_grace));
        if awaiting_exit {
            return read_when_due(ctx, case, mem);
        }
        if let Some(logs) = fetch_logs(case, mem, true) {
            return Some(logs);
        }
    }
    if keep && container_terminated(mem) && cause == CleanupCause::RunFinal {
        return release(case);
    }
    if ctx.due(mem.last_cleanup_at, ctx.settings.cleanup_retry_interval) {
        return Some(cleanup_action(
            case.id,
            case.group_ref()?.clone(),
            cause,
            keep,
        ));
    }
    // A stopped group stays listed, so only a GET shows that the stop took effect.
    if keep {
        read_when_due(ctx, case, mem)
    } else {
        None
    }
}

/// Reads the group when the provisioning read interval has passed since the last read.
fn read_when_due(ctx: &Ctx, case: &Case, mem: &RunMemory) -> Option<Action> {
    let read_due = mem
        .last_read
        .as_ref()
        .is_none_or(|r| ctx.due(Some(r.at), ctx.settings.read_interval_provisioning));
    if read_due { read(case) } else { None }
}

/// Plans a group whose flow run is missing from the pool's active and recent runs. Our
/// memory is released when the group is gone. An orphan with our tags is deleted after the
/// grace period, or at once when its run is scheduled again. A group kept with
/// `keep_container_group`, or owned by another live worker, is left alone.
pub(super) fn missing_run(
    ctx: &Ctx,
    case: &Case,
    orphans: &mut BTreeMap<GroupRef, OrphanWatch>,
) -> Option<Action> {
    let in_flight = case.mem.is_some_and(|m| m.in_flight);
    let Presence::Listed(view) = case.group else {
        return case.mem.filter(|_| !in_flight).and_then(|_| release(case));
    };

    // A run sent back to Scheduled (a retry) needs its old group gone before the create
    // under the same name. That group is deleted at once, even a kept one, because the
    // retry could never start otherwise.
    let rescheduled = ctx.is_scheduled(case.id);
    let keep_requested = view.tags.keep_container_group && !rescheduled;
    if keep_requested || owned_by_live_worker(ctx, view) {
        return None;
    }

    let watch = ctx
        .memory
        .orphans
        .get(&view.group)
        .copied()
        .unwrap_or(OrphanWatch {
            first_seen: ctx.now(),
            last_delete_at: None,
        });
    let delete = !in_flight
        && (rescheduled || ctx.elapsed(watch.first_seen, ctx.settings.orphan_grace))
        && ctx.due(watch.last_delete_at, ctx.settings.cleanup_retry_interval);

    let next = OrphanWatch {
        last_delete_at: if delete {
            Some(ctx.now())
        } else {
            watch.last_delete_at
        },
        ..watch
    };
    orphans.insert(view.group.clone(), next);

    let cause = if rescheduled {
        CleanupCause::RunFinal
    } else {
        CleanupCause::Orphan
    };
    delete.then(|| cleanup_action(case.id, view.group.clone(), cause, false))
}

fn owned_by_live_worker(ctx: &Ctx, view: &GroupView) -> bool {
    let Some(name) = view.tags.worker_name.as_deref() else {
        return false;
    };
    if name == ctx.snapshot.worker.worker_name {
        return false;
    }
    // Without a heartbeat entry the owner counts as gone, since its run is gone too.
    ctx.snapshot
        .heartbeats
        .iter()
        .find(|h| h.name == name)
        .is_some_and(|h| !ctx.elapsed(h.last_heartbeat, ctx.settings.lease_period))
}

fn keep_container_group(case: &Case, mem: &RunMemory) -> bool {
    let tagged = match case.group {
        Presence::Listed(view) => view.tags.keep_container_group,
        _ => false,
    };
    mem.job.keep_container_group || tagged
}

fn container_not_terminated(mem: &RunMemory) -> bool {
    mem.last_detail()
        .and_then(|d| d.container.as_ref())
        .is_some_and(|c| c.state != ContainerState::Terminated)
}

fn container_terminated(mem: &RunMemory) -> bool {
    mem.last_detail()
        .and_then(|d| d.container.as_ref())
        .is_some_and(|c| c.state == ContainerState::Terminated)
}

fn cleanup_action(
    flow_run_id: uuid::Uuid,
    group: GroupRef,
    cause: CleanupCause,
    keep: bool,
) -> Action {
    let cleanup = GroupCleanup {
        flow_run_id,
        group,
        cause,
    };
    if keep {
        Action::StopGroup(cleanup)
    } else {
        Action::DeleteGroup(cleanup)
    }
}

fn cancelled(case: &Case) -> Action {
    Action::CancelRun(CancelRun {
        flow_run_id: case.id,
        reason: CancelReason::Requested,
        message: "Flow run cancelled: its container group was removed by the worker.".to_string(),
    })
}

fn release(case: &Case) -> Option<Action> {
    Some(Action::ReleaseSlot {
        flow_run_id: case.id,
    })
}
