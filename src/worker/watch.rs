//! Watching and ending runs: group reads, container logs, Crashed and Cancelled states,
//! and deleting or stopping groups.

use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::arm::{ArmClient, DeleteOutcome, LogOptions};
use crate::prefect::models::{StateCreate, StateType};
use crate::reconcile::logs::{parse_log_content, take_new};
use crate::reconcile::{
    CancelRun, CleanupCause, ContainerState, CrashRun, FetchLogs, GroupCleanup, GroupRef,
    ReadOutcome,
};

use super::convert;
use super::run_logs::{self, Level};
use super::state::Shared;
use super::submit::record_read;

/// Lines asked for in a log read after the first. A read that returns only new lines may
/// have cut some, and is repeated without a tail.
const LOG_TAIL_LINES: u32 = 2000;
/// Failed final log reads after which the group is cleaned up anyway, so an unreadable log
/// cannot keep a paid container group alive.
const MAX_FINAL_LOG_FAILURES: u32 = 3;

/// Returns the client for a run's group: the one its job's credentials need, else the one
/// that lists its resource group, else the worker's own.
pub fn client_for(shared: &Shared, id: Uuid, group: &GroupRef) -> ArmClient {
    let state = shared.state();
    if let Some(job) = state.jobs.get(&id) {
        return job.arm.clone();
    }
    if let Some(client) = state.scopes.get(&group.scope()) {
        return client.clone();
    }
    shared.azure.default_client().clone()
}

/// GETs the group and records what it shows.
pub async fn read_group(shared: &Arc<Shared>, id: Uuid, arm: &ArmClient, group: &GroupRef) {
    match arm.get(&convert::resource_group(group), &group.name).await {
        Ok(Some(response)) => {
            let detail = convert::group_detail(&response);
            let running = detail
                .container
                .as_ref()
                .is_some_and(|c| c.state == ContainerState::Running);
            if running {
                observe_start_delay(shared, id);
            }
            record_read(shared, id, ReadOutcome::Found(detail));
        }
        Ok(None) => record_read(shared, id, ReadOutcome::NotFound),
        Err(error) => {
            tracing::warn!(flow_run.id = %id, container_group = %group.name, %error, "reading the container group failed; retrying later")
        }
    }
}

fn observe_start_delay(shared: &Shared, id: Uuid) {
    let scheduled = shared.state().scheduled_at.remove(&id);
    if let Some(scheduled) = scheduled {
        let delay = OffsetDateTime::now_utc() - scheduled;
        let delay = std::time::Duration::try_from(delay).unwrap_or_default();
        shared.metrics.observe_start_delay(delay);
    }
}

/// Reads the container's log, sends the new lines to the run's logs in order, and moves the
/// cursor only when Prefect stored them.
pub async fn fetch_logs(shared: &Arc<Shared>, action: FetchLogs) {
    let id = action.flow_run_id;
    let arm = client_for(shared, id, &action.group);
    let scope = convert::resource_group(&action.group);
    let mut tail = action.cursor.map(|_| LOG_TAIL_LINES);
    let (new, next) = loop {
        let options = LogOptions {
            tail,
            timestamps: true,
        };
        let content = match arm
            .container_logs(&scope, &action.group.name, &action.container_name, options)
            .await
        {
            Ok(content) => content,
            Err(error) => return log_read_failed(shared, &action, error.is_not_found(), &error),
        };
        let lines = parse_log_content(&content, OffsetDateTime::now_utc());
        let (new, next) = take_new(action.cursor, lines);
        if new.possible_gap && tail.is_some() {
            tail = None;
            continue;
        }
        break (new, next);
    };
    if !new.lines.is_empty() {
        let records = run_logs::container_records(id, &new.lines);
        if let Err(error) = shared.prefect.create_logs(&records).await {
            tracing::warn!(flow_run.id = %id, %error, "sending container log lines to Prefect failed; resending next read");
            return;
        }
    }
    let now = OffsetDateTime::now_utc();
    let mut state = shared.state();
    state.log_failures.remove(&id);
    if let Some(run) = state.memory.runs.get_mut(&id) {
        run.record_logs(next, action.final_fetch, now);
    }
}

fn log_read_failed(
    shared: &Shared,
    action: &FetchLogs,
    not_found: bool,
    error: &crate::arm::ArmError,
) {
    let id = action.flow_run_id;
    let mut state = shared.state();
    let failures = state.log_failures.entry(id).or_insert(0);
    *failures += 1;
    let give_up = action.final_fetch && (not_found || *failures >= MAX_FINAL_LOG_FAILURES);
    tracing::warn!(flow_run.id = %id, container_group = %action.group.name, %error, give_up, "reading the container log failed");
    if give_up && let Some(run) = state.memory.runs.get_mut(&id) {
        run.record_logs(None, true, OffsetDateTime::now_utc());
    }
}

/// Proposes Crashed with the planner's message, and writes it to the run's logs.
pub async fn crash(shared: &Arc<Shared>, action: CrashRun) {
    let id = action.flow_run_id;
    let state = StateCreate::named(StateType::Crashed, "Crashed", id).with_message(&action.message);
    match shared.prefect.set_state(id, &state, false).await {
        Ok(result) => {
            tracing::warn!(flow_run.id = %id, reason = action.reason.label(), message = %action.message, status = ?result.status, "marked flow run Crashed");
            shared.metrics.record_crashed(action.reason.label());
            run_logs::worker(shared, id, Level::Error, action.message).await;
        }
        Err(error) => {
            tracing::warn!(flow_run.id = %id, %error, "proposing Crashed failed; retrying next tick")
        }
    }
}

/// Forces Cancelled, as Prefect's workers do once the infrastructure is gone.
pub async fn cancel(shared: &Arc<Shared>, action: CancelRun) {
    let id = action.flow_run_id;
    let state =
        StateCreate::named(StateType::Cancelled, "Cancelled", id).with_message(&action.message);
    match shared.prefect.force_state(id, &state).await {
        Ok(_) => {
            tracing::info!(flow_run.id = %id, reason = ?action.reason, "marked flow run Cancelled");
            shared.metrics.record_cancelled();
            run_logs::worker(shared, id, Level::Info, action.message).await;
        }
        Err(error) => {
            tracing::warn!(flow_run.id = %id, %error, "forcing Cancelled failed; retrying next tick")
        }
    }
}

/// Sets the run's `infrastructure_pid` after an earlier attempt failed.
pub async fn set_infrastructure_pid(shared: &Arc<Shared>, id: Uuid, value: String) {
    if let Err(error) = shared.prefect.set_infrastructure_pid(id, &value).await {
        tracing::warn!(flow_run.id = %id, %error, "setting infrastructure_pid failed; retrying next tick");
    }
}

/// Deletes (or, when `stop`, stops) a group. A 404 counts as gone.
pub async fn cleanup(shared: &Arc<Shared>, action: GroupCleanup, stop: bool) {
    let id = action.flow_run_id;
    let now = OffsetDateTime::now_utc();
    let cancelling = action.cause == CleanupCause::Cancelling;
    if let Some(run) = shared.state().memory.runs.get_mut(&id) {
        run.record_cleanup_sent(cancelling, now);
    }
    let arm = client_for(shared, id, &action.group);
    let scope = convert::resource_group(&action.group);
    let name = &action.group.name;
    let gone = if stop {
        match arm.stop(&scope, name).await {
            Ok(()) => false,
            Err(error) if error.is_not_found() => true,
            Err(error) => return cleanup_failed(id, name, &error),
        }
    } else {
        match arm.delete(&scope, name).await {
            Ok(DeleteOutcome::AlreadyGone) => true,
            Ok(DeleteOutcome::Deleted | DeleteOutcome::Accepted) => {
                if action.cause == CleanupCause::Orphan {
                    shared.metrics.record_orphan_deleted();
                }
                false
            }
            Err(error) => return cleanup_failed(id, name, &error),
        }
    };
    let verb = if stop { "stopped" } else { "deleting" };
    tracing::info!(flow_run.id = %id, container_group = %name, cause = ?action.cause, gone, "{verb} container group");
    if gone && let Some(run) = shared.state().memory.runs.get_mut(&id) {
        run.record_cleanup_not_found(OffsetDateTime::now_utc());
    }
}

fn cleanup_failed(id: Uuid, name: &str, error: &crate::arm::ArmError) {
    tracing::warn!(flow_run.id = %id, container_group = %name, %error, "cleaning up the container group failed; retrying later");
}

/// Forgets a run: nothing is left to do for it and its `--limit` slot is free.
pub fn release(shared: &Shared, id: Uuid) {
    let mut state = shared.state();
    state.memory.runs.remove(&id);
    state.jobs.remove(&id);
    state.scheduled_at.remove(&id);
    state.log_failures.remove(&id);
}
