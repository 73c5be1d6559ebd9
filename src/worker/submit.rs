//! Claiming a scheduled run, creating its container group, and adopting a run the worker
//! has no memory of.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::arm::{ArmClient, ArmError, ContainerGroup, ErrorClass, ResourceGroupRef};
use crate::prefect::models::{OrchestrationStatus, StateCreate, StateType};
use crate::reconcile::naming::{format_infrastructure_pid, group_tags};
use crate::reconcile::{
    AdoptRun, ClaimRun, CrashReason, CreateGroup, GroupRef, JobOptions, ReadOutcome, RunMemory,
};
use crate::template::{GroupPlacement, build_container_group};

use super::convert;
use super::jobs::{JobError, ResolvedJob};
use super::run_logs::{self, Level};
use super::state::{RunJob, Shared};

/// Name of the flow container in groups this worker creates.
pub const FLOW_CONTAINER_NAME: &str = "flow";

/// ARM error codes that mean the run's own configuration names something that does not
/// exist, so retrying cannot help and the run ends Crashed.
const MISSING_TARGET_CODES: [&str; 3] = [
    "ResourceGroupNotFound",
    "SubscriptionNotFound",
    "MissingSubscriptionRegistration",
];

/// Proposes Pending and, when Prefect accepts, proposes Submitting and creates the run's
/// group in the same task while it labels the run.
pub async fn claim(shared: &Arc<Shared>, action: ClaimRun) {
    let id = action.create.flow_run_id;
    let pending = StateCreate::named(StateType::Pending, "Pending", id);
    match shared.prefect.propose_state(id, &pending).await {
        Ok(result) if result.status == OrchestrationStatus::Accept => {}
        Ok(result) => {
            tracing::info!(flow_run.id = %id, status = ?result.status, reason = result.details.reason.as_deref().unwrap_or(""), "claim not accepted; another worker or the server has the run");
            return;
        }
        Err(error) => {
            tracing::warn!(flow_run.id = %id, %error, "claiming flow run failed; retrying next tick");
            return;
        }
    }

    shared.metrics.record_claimed();
    let now = OffsetDateTime::now_utc();
    shared.state().memory.runs.insert(
        id,
        RunMemory::claimed(now, action.create.group_name.clone()),
    );

    let worker = &shared.identity.worker_name;
    run_logs::worker(
        shared,
        id,
        Level::Info,
        format!("Worker '{worker}' submitting flow run '{id}'"),
    )
    .await;

    // Submitting goes first: sent after the create, it could reach Prefect after the
    // container's engine reported a final state and put the run back to Pending. Labels
    // change no state, and Prefect's retries on them can take tens of seconds under load,
    // so they run alongside the create.
    let submitting = StateCreate::named(StateType::Pending, "Submitting", id);
    if let Err(error) = shared.prefect.set_state(id, &submitting, false).await {
        tracing::debug!(flow_run.id = %id, %error, "proposing Submitting failed");
    }
    tokio::join!(set_labels(shared, id), create_group(shared, action.create));
}

/// Sets the labels Prefect's workers set on the runs they claim. Prefect 2.x has none.
async fn set_labels(shared: &Shared, id: Uuid) {
    let identity = &shared.identity;
    let labels: BTreeMap<String, Value> = [
        ("prefect.worker.name", identity.worker_name.clone()),
        (
            "prefect.worker.type",
            super::pool::WORK_POOL_TYPE.to_owned(),
        ),
        ("prefect.work-pool.name", identity.work_pool_name.clone()),
        ("prefect.work-pool.id", identity.work_pool_id.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::String(v)))
    .collect();
    if let Err(error) = shared.prefect.update_flow_run_labels(id, &labels).await {
        tracing::debug!(flow_run.id = %id, %error, "setting flow run labels failed");
    }
}

/// Resolves the run's job and the ARM client for its credentials, and remembers both. An
/// invalid configuration is recorded as the run's failure and returns `None`.
async fn resolve(shared: &Arc<Shared>, id: Uuid) -> Option<RunJob> {
    let template = shared.state().base_job_template.clone();
    let job = match shared.resolver.resolve(&template, id, None).await {
        Ok(job) => job,
        Err(JobError::Invalid(message)) => {
            record_failure(shared, id, CrashReason::InvalidConfiguration, message);
            return None;
        }
        Err(error) => {
            tracing::warn!(flow_run.id = %id, %error, "resolving the job configuration failed; retrying next tick");
            return None;
        }
    };
    let arm = match shared.azure.for_job(&job.config.aci_credentials) {
        Ok(arm) => arm,
        Err(error) => {
            record_failure(
                shared,
                id,
                CrashReason::InvalidConfiguration,
                error.to_string(),
            );
            return None;
        }
    };
    let run_job = RunJob { job, arm };
    let mut state = shared.state();
    state.jobs.insert(id, run_job.clone());
    let scope = convert::scope(&reference(&run_job.job));
    state.scopes.insert(scope, run_job.arm.clone());
    Some(run_job)
}

fn reference(job: &ResolvedJob) -> ResourceGroupRef {
    ResourceGroupRef::new(
        job.config.subscription_id.expose(),
        &job.config.resource_group_name,
    )
}

fn group_ref(job: &ResolvedJob, name: &str) -> GroupRef {
    GroupRef {
        subscription_id: job.config.subscription_id.expose().to_owned(),
        resource_group: job.config.resource_group_name.clone(),
        name: name.to_owned(),
    }
}

fn record_failure(shared: &Shared, id: Uuid, reason: CrashReason, message: String) {
    tracing::warn!(flow_run.id = %id, reason = reason.label(), %message, "flow run cannot start");
    if let Some(run) = shared.state().memory.runs.get_mut(&id) {
        run.record_failure(reason, message);
    }
}

/// Records a GET of the run's group.
pub fn record_read(shared: &Shared, id: Uuid, outcome: ReadOutcome) {
    let now = OffsetDateTime::now_utc();
    if let Some(run) = shared.state().memory.runs.get_mut(&id) {
        run.record_read(outcome, now);
    }
}

/// True when an ARM error ends the run rather than waiting for the next tick.
fn ends_run(error: &ArmError) -> bool {
    match error.class() {
        ErrorClass::TerminalForRun | ErrorClass::Quota => true,
        ErrorClass::Configuration => error
            .code()
            .is_some_and(|code| MISSING_TARGET_CODES.contains(&code)),
        ErrorClass::Transient | ErrorClass::Throttled => false,
    }
}

/// Renders the job, looks for the group, and creates it only when it is not there.
pub async fn create_group(shared: &Arc<Shared>, action: CreateGroup) {
    let id = action.flow_run_id;
    let Some(run_job) = resolve(shared, id).await else {
        return;
    };
    let reference = reference(&run_job.job);
    let arm = &run_job.arm;
    match arm.get(&reference, &action.group_name).await {
        Ok(Some(found)) => {
            tracing::info!(flow_run.id = %id, container_group = %action.group_name, "container group already exists; watching it");
            record_read(
                shared,
                id,
                ReadOutcome::Found(convert::group_detail(&found)),
            );
            return;
        }
        Ok(None) => {}
        Err(error) => return arm_failed(shared, id, "reading the container group", &error),
    }
    let location = match arm.region(&reference).await {
        Ok(location) => location,
        Err(error) => return arm_failed(shared, id, "reading the resource group", &error),
    };
    let Some(body) = request_body(shared, &run_job.job, &action, &location) else {
        return;
    };
    send_create(shared, arm, &run_job.job, &action, &body).await;
}

fn request_body(
    shared: &Shared,
    job: &ResolvedJob,
    action: &CreateGroup,
    location: &str,
) -> Option<ContainerGroup> {
    let id = action.flow_run_id;
    let tags = group_tags(
        id,
        action.deployment_id,
        &shared.identity.work_pool_name,
        &shared.identity.worker_name,
        job.config.keep_container_group,
    );
    let placement = GroupPlacement {
        name: action.group_name.clone(),
        location: location.to_owned(),
        tags,
        container_name: FLOW_CONTAINER_NAME.to_owned(),
    };
    let request = match build_container_group(&job.config, &job.context, &placement) {
        Ok(request) => request,
        Err(error) => {
            record_failure(
                shared,
                id,
                CrashReason::InvalidConfiguration,
                error.to_string(),
            );
            return None;
        }
    };
    match serde_json::from_value::<ContainerGroup>(request.body().clone()) {
        Ok(body) => Some(body),
        Err(error) => {
            let message = format!(
                "the container group request built from the job configuration is invalid: {error}"
            );
            record_failure(shared, id, CrashReason::InvalidConfiguration, message);
            None
        }
    }
}

async fn send_create(
    shared: &Arc<Shared>,
    arm: &ArmClient,
    job: &ResolvedJob,
    action: &CreateGroup,
    body: &ContainerGroup,
) {
    let id = action.flow_run_id;
    let group = group_ref(job, &action.group_name);
    let options = job.options();
    if let Some(run) = shared.state().memory.runs.get_mut(&id) {
        run.record_create_sent(group.clone(), options, OffsetDateTime::now_utc());
    }
    let reference = reference(job);
    let accepted = match arm
        .create_or_update(&reference, &action.group_name, body)
        .await
    {
        Ok(_) => true,
        Err(error) if error.status() == Some(409) => {
            read_back_conflict(shared, arm, &reference, action, &error).await
        }
        Err(error) if ends_run(&error) => {
            record_failure(shared, id, CrashReason::CreateRejected, error.to_string());
            false
        }
        Err(error) => {
            // The create may still have reached ARM, so the next tick reads the group back.
            tracing::warn!(flow_run.id = %id, container_group = %action.group_name, %error, "creating the container group failed; reading it back next tick");
            false
        }
    };
    if accepted {
        announce_created(shared, job, action).await;
    }
}

/// Reads the group back after a 409 and returns whether it exists. A 409 means the group
/// exists only when a read finds it, because ARM also returns 409 for quota errors and
/// conflicting operations.
async fn read_back_conflict(
    shared: &Shared,
    arm: &ArmClient,
    reference: &ResourceGroupRef,
    action: &CreateGroup,
    error: &ArmError,
) -> bool {
    let id = action.flow_run_id;
    tracing::info!(flow_run.id = %id, container_group = %action.group_name, %error, "create returned 409; reading the group back");
    match arm.get(reference, &action.group_name).await {
        Ok(Some(found)) => {
            record_read(
                shared,
                id,
                ReadOutcome::Found(convert::group_detail(&found)),
            );
            true
        }
        Ok(None) if ends_run(error) => {
            record_failure(shared, id, CrashReason::CreateRejected, error.to_string());
            false
        }
        Ok(None) => false,
        Err(read_error) => {
            tracing::warn!(flow_run.id = %id, container_group = %action.group_name, error = %read_error, "reading the group back after a 409 failed; retrying next tick");
            false
        }
    }
}

/// Records an accepted create, sets the run's `infrastructure_pid` and writes a line to the
/// run's logs.
async fn announce_created(shared: &Arc<Shared>, job: &ResolvedJob, action: &CreateGroup) {
    let id = action.flow_run_id;
    if let Some(run) = shared.state().memory.runs.get_mut(&id) {
        run.record_create_accepted();
    }
    shared.metrics.record_submitted();
    let pid = format_infrastructure_pid(id, &action.group_name);
    if let Err(error) = shared.prefect.set_infrastructure_pid(id, &pid).await {
        tracing::warn!(flow_run.id = %id, %error, "setting infrastructure_pid failed; retrying next tick");
    }
    let message = format!(
        "Created container group '{}' in resource group '{}' for flow run '{}'",
        action.group_name, job.config.resource_group_name, action.flow_run_name
    );
    tracing::info!(flow_run.id = %id, container_group = %action.group_name, "container group created");
    run_logs::worker(shared, id, Level::Info, message).await;
}

/// Logs an ARM failure and records it when it ends the run.
fn arm_failed(shared: &Shared, id: Uuid, what: &str, error: &ArmError) {
    if ends_run(error) {
        record_failure(shared, id, CrashReason::CreateRejected, error.to_string());
    } else {
        tracing::warn!(flow_run.id = %id, %error, "{what} failed; retrying next tick");
    }
}

/// Takes up a run the worker has no memory of: resolves its job for the group's location
/// and options, reads the group, and starts watching it.
pub async fn adopt(shared: &Arc<Shared>, action: AdoptRun) {
    let id = action.flow_run_id;
    let now = OffsetDateTime::now_utc();
    let template = shared.state().base_job_template.clone();
    let resolved = match shared.resolver.resolve(&template, id, None).await {
        Ok(job) => Some(job),
        Err(JobError::Invalid(message)) if action.group.is_some() => {
            tracing::warn!(flow_run.id = %id, %message, "job configuration is invalid now; watching the listed group with default options");
            None
        }
        Err(JobError::Invalid(message)) => {
            let mut memory = RunMemory::adopted(
                now,
                action.group_name.clone(),
                None,
                JobOptions::default(),
                action.expect_group,
            );
            let message = format!("cannot locate the flow run's container group: {message}");
            memory.record_failure(CrashReason::InvalidConfiguration, message);
            shared.state().memory.runs.insert(id, memory);
            return;
        }
        Err(error) => {
            tracing::warn!(flow_run.id = %id, %error, "adopting flow run failed; retrying next tick");
            return;
        }
    };
    let arm = match &resolved {
        Some(job) => match shared.azure.for_job(&job.config.aci_credentials) {
            Ok(arm) => arm,
            Err(error) => {
                tracing::warn!(flow_run.id = %id, %error, "building the ARM client for the run failed");
                return;
            }
        },
        None => shared.azure.default_client().clone(),
    };
    let group = match (&action.group, &resolved) {
        (Some(group), _) => group.clone(),
        (None, Some(job)) => group_ref(job, &action.group_name),
        (None, None) => return,
    };
    let options = resolved.as_ref().map(|j| j.options()).unwrap_or_default();
    {
        let mut state = shared.state();
        let memory = RunMemory::adopted(
            now,
            action.group_name.clone(),
            Some(group.clone()),
            options,
            action.expect_group,
        );
        state.memory.runs.insert(id, memory);
        state.scopes.entry(group.scope()).or_insert(arm.clone());
        if let Some(job) = resolved {
            state.jobs.insert(
                id,
                RunJob {
                    job,
                    arm: arm.clone(),
                },
            );
        }
    }
    tracing::info!(flow_run.id = %id, container_group = %group.name, "adopted flow run");
    if action.relabel {
        set_labels(shared, id).await;
    }
    super::watch::read_group(shared, id, &arm, &group).await;
}
