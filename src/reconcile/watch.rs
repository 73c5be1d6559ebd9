//! Rules for a run of ours that is Pending or Running: create its group, watch it, and
//! decide from the flow container's state when the run has ended badly.

use super::action::{Action, CrashReason, CrashRun, FetchLogs, ReadGroup};
use super::exit_codes::{GROUP_VANISHED, crash_message};
use super::memory::{Phase, RunMemory};
use super::naming::format_infrastructure_pid;
use super::plan::{Case, Ctx, Presence, create_for_run};
use super::snapshot::{FlowRunView, GroupDetail, ProvisioningState, StateType};

/// Plans the next step for an active run in this worker's memory.
pub(super) fn active_run(
    ctx: &Ctx,
    case: &Case,
    run: &FlowRunView,
    mem: &RunMemory,
) -> Option<Action> {
    match mem.phase {
        Phase::Claimed { .. } => match case.group {
            // Look before create: a group listed for this run is read, never created again.
            Presence::Listed(_) | Presence::Found => read(case),
            _ => Some(create_for_run(run, mem)),
        },
        Phase::Creating { since } => {
            if ctx.elapsed(since, mem.job.task_start_timeout) {
                return Some(start_timeout(case, mem));
            }
            match case.group {
                // The create never landed: send it again under the same name.
                Presence::Gone => Some(create_for_run(run, mem)),
                // Read the outcome back instead of sending the create blindly again.
                _ => read(case).or_else(|| Some(create_for_run(run, mem))),
            }
        }
        Phase::Provisioning { .. } | Phase::Running { .. } | Phase::Terminated { .. } => {
            watch_group(ctx, case, run, mem)
        }
        // Our own cleanup ran while the run is still active (Cancelling was undone, or a
        // Crashed proposal has not shown yet): confirm the group is gone, then report it.
        Phase::Cleaning { .. } | Phase::Cancelling { .. } | Phase::Gone { .. } => {
            match case.group {
                Presence::Gone => Some(group_deleted(case, mem)),
                Presence::NotListed => read(case),
                _ => None,
            }
        }
    }
}

fn watch_group(ctx: &Ctx, case: &Case, run: &FlowRunView, mem: &RunMemory) -> Option<Action> {
    match case.group {
        Presence::Gone => return Some(group_deleted(case, mem)),
        // Confirm with a GET before believing a listing that lost the group.
        Presence::NotListed => return read(case),
        Presence::Unknown => return None,
        Presence::Listed(_) | Presence::Found => {}
    }
    let detail = mem.last_detail();
    if let Some(detail) = detail
        && detail.provisioning_state == ProvisioningState::Failed
    {
        return Some(provisioning_failed(case, detail));
    }
    match mem.phase {
        Phase::Terminated { exit_code: 0, at } => {
            if ctx.elapsed(at, ctx.settings.final_state_grace) {
                return Some(no_final_state(case, ctx));
            }
            return stream_logs(ctx, case, mem);
        }
        Phase::Terminated { exit_code, .. } => {
            return Some(Action::CrashRun(CrashRun {
                flow_run_id: case.id,
                reason: CrashReason::NonZeroExit,
                message: crash_message(exit_code),
            }));
        }
        Phase::Provisioning { since }
            if !provisioned(case, detail) && ctx.elapsed(since, mem.job.task_start_timeout) =>
        {
            return Some(start_timeout(case, mem));
        }
        _ => {}
    }
    let pid = format_infrastructure_pid(case.id, &mem.group_name);
    if run.infrastructure_pid.as_deref() != Some(pid.as_str()) {
        return Some(Action::SetInfrastructurePid {
            flow_run_id: case.id,
            value: pid,
        });
    }
    // NOTE: a due read wins over a log read. Reads are due every tick while Prefect does not
    // show the run Running yet and `task_watch_poll_interval` is at most the query interval,
    // so in that phase no log lines are sent until the run is Running or final.
    if read_due(ctx, case, run, mem) {
        return read(case);
    }
    stream_logs(ctx, case, mem)
}

/// True once ARM reports the group provisioned. The last GET is newer than the listing's
/// view only when it was read this tick, so either Succeeded counts.
fn provisioned(case: &Case, detail: Option<&GroupDetail>) -> bool {
    let listed = match case.group {
        Presence::Listed(view) => view.provisioning_state == ProvisioningState::Succeeded,
        _ => false,
    };
    listed || detail.is_some_and(|d| d.provisioning_state == ProvisioningState::Succeeded)
}

/// Decides whether the group's next GET is due. Reads come every `task_watch_poll_interval`
/// (at least `read_interval_provisioning`) while the group provisions or Prefect does not yet
/// show the run Running, and rarely while the container runs and Prefect shows it Running. A listing whose provisioning state differs from the last GET
/// makes the read due at once.
fn read_due(ctx: &Ctx, case: &Case, run: &FlowRunView, mem: &RunMemory) -> bool {
    let Some(last) = &mem.last_read else {
        return true;
    };
    if let (Presence::Listed(view), Some(detail)) = (case.group, mem.last_detail())
        && view.provisioning_state != detail.provisioning_state
    {
        return true;
    }
    let settings = ctx.settings;
    let interval = match mem.phase {
        Phase::Running { .. } if run.state_type == StateType::Running => {
            settings.read_interval_running
        }
        _ => mem
            .job
            .poll_interval
            .max(settings.read_interval_provisioning),
    };
    ctx.due(Some(last.at), interval)
}

/// Plans a log read while `stream_output` is on and the container has started.
fn stream_logs(ctx: &Ctx, case: &Case, mem: &RunMemory) -> Option<Action> {
    if !mem.job.stream_output
        || !matches!(mem.phase, Phase::Running { .. } | Phase::Terminated { .. })
    {
        return None;
    }
    if !ctx.due(mem.last_logs_at, ctx.settings.log_interval) {
        return None;
    }
    fetch_logs(case, mem, false)
}

/// Builds a log read of the flow container, when its name is known from a GET.
pub(super) fn fetch_logs(case: &Case, mem: &RunMemory, final_fetch: bool) -> Option<Action> {
    let container = mem.last_detail()?.container.as_ref()?;
    Some(Action::FetchLogs(FetchLogs {
        flow_run_id: case.id,
        group: case.group_ref()?.clone(),
        container_name: container.name.clone(),
        cursor: mem.log_cursor,
        final_fetch,
    }))
}

/// Builds a GET of the run's group, when its coordinates are known.
pub(super) fn read(case: &Case) -> Option<Action> {
    Some(Action::ReadGroup(ReadGroup {
        flow_run_id: case.id,
        group: case.group_ref()?.clone(),
    }))
}

fn start_timeout(case: &Case, mem: &RunMemory) -> Action {
    Action::CrashRun(CrashRun {
        flow_run_id: case.id,
        reason: CrashReason::StartTimeout,
        message: format!(
            "Container group {} did not finish provisioning within \
             task_start_timeout_seconds ({} s); the group will be deleted.",
            mem.group_name,
            mem.job.task_start_timeout.as_secs()
        ),
    })
}

fn group_deleted(case: &Case, mem: &RunMemory) -> Action {
    Action::CrashRun(CrashRun {
        flow_run_id: case.id,
        reason: CrashReason::GroupDeleted,
        message: format!(
            "{} Container group {} was deleted outside the worker.",
            crash_message(GROUP_VANISHED),
            mem.group_name
        ),
    })
}

fn no_final_state(case: &Case, ctx: &Ctx) -> Action {
    Action::CrashRun(CrashRun {
        flow_run_id: case.id,
        reason: CrashReason::NoFinalState,
        message: format!(
            "The flow container exited with code 0 but the flow run reported no final state \
             within {} s.",
            ctx.settings.final_state_grace.as_secs()
        ),
    })
}

/// Builds the Crashed proposal for a failed provisioning, with ARM's innermost error, or
/// the container's last event when ARM gave none.
fn provisioning_failed(case: &Case, detail: &GroupDetail) -> Action {
    let cause = match (&detail.provisioning_error, detail.events.last()) {
        (Some(error), _) => format!("{}: {}", error.code, error.message),
        (None, Some(event)) => format!("{}: {}", event.name, event.message),
        (None, None) => "ARM reported no error details".to_string(),
    };
    Action::CrashRun(CrashRun {
        flow_run_id: case.id,
        reason: CrashReason::ProvisioningFailed,
        message: format!("Container group provisioning failed. {cause}"),
    })
}
