//! Conversions from Prefect and ARM client models to the planner's view types.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::arm::response::{ContainerGroupResponse, ContainerGroupSummary, Event};
use crate::arm::{ProvisioningState as ArmProvisioning, ResourceGroupRef};
use crate::prefect::models::{self, FlowRun};
use crate::reconcile::naming::{
    TAG_DEPLOYMENT_ID, TAG_FLOW_RUN_ID, TAG_KEEP_CONTAINER_GROUP, TAG_WORK_POOL, TAG_WORKER_NAME,
};
use crate::reconcile::{
    ArmErrorView, ContainerEvent, ContainerState, ContainerView, FlowRunView, GroupDetail,
    GroupRef, GroupTags, GroupView, ProvisioningState, ResourceGroupScope, StateType,
};

/// The flow-run label that names the worker that claimed the run (Prefect 3.x).
pub const WORKER_NAME_LABEL: &str = "prefect.worker.name";

/// Parses our tags on a container group. ARM tag names are case-insensitive.
pub fn group_tags(tags: &BTreeMap<String, String>) -> GroupTags {
    let get = |name: &str| {
        tags.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    };
    GroupTags {
        flow_run_id: get(TAG_FLOW_RUN_ID).and_then(|v| Uuid::parse_str(v).ok()),
        deployment_id: get(TAG_DEPLOYMENT_ID).and_then(|v| Uuid::parse_str(v).ok()),
        work_pool: get(TAG_WORK_POOL).map(str::to_owned),
        worker_name: get(TAG_WORKER_NAME).map(str::to_owned),
        keep_container_group: get(TAG_KEEP_CONTAINER_GROUP).is_some_and(|v| v == "true"),
    }
}

/// Converts ARM's provisioning state.
pub fn provisioning_state(state: &ArmProvisioning) -> ProvisioningState {
    match state.as_str() {
        "Pending" | "Accepted" | "NotSpecified" | "PreProvisioned" => ProvisioningState::Pending,
        "Creating" => ProvisioningState::Creating,
        "Repairing" | "Unhealthy" => ProvisioningState::Repairing,
        "Updating" => ProvisioningState::Updating,
        "Succeeded" => ProvisioningState::Succeeded,
        "Failed" => ProvisioningState::Failed,
        "Deleting" => ProvisioningState::Deleting,
        "Canceled" => ProvisioningState::Canceled,
        other => ProvisioningState::Other(other.to_owned()),
    }
}

/// Converts one listed container group, or `None` when it carries no flow-run tag of ours.
pub fn group_view(scope: &ResourceGroupRef, summary: &ContainerGroupSummary) -> Option<GroupView> {
    let tags = group_tags(&summary.tags);
    tags.flow_run_id?;
    Some(GroupView {
        group: GroupRef {
            subscription_id: scope.subscription_id.clone(),
            resource_group: scope.resource_group.clone(),
            name: summary.name.clone(),
        },
        tags,
        provisioning_state: provisioning_state(&summary.properties.provisioning_state),
    })
}

/// Converts a GET of a container group into the detail the planner reads. The flow container
/// is the group's first container.
pub fn group_detail(response: &ContainerGroupResponse) -> GroupDetail {
    let properties = &response.properties;
    let first = properties.containers.first();
    let view = first.and_then(|c| c.properties.instance_view.as_ref());
    let container = match (first, view.and_then(|v| v.current_state.as_ref())) {
        (Some(first), Some(current)) => Some(ContainerView {
            name: first.name.clone(),
            state: container_state(current.state.as_deref()),
            exit_code: current.exit_code.map(i64::from),
            detail_status: current.detail_status.clone(),
            start_time: current.start_time,
            finish_time: current.finish_time,
        }),
        _ => None,
    };
    let mut events: Vec<ContainerEvent> = Vec::new();
    if let Some(group_view) = &properties.instance_view {
        events.extend(group_view.events.iter().map(event));
    }
    let group_event_count = events.len();
    if let Some(view) = view {
        events.extend(view.events.iter().map(event));
    }
    let state = provisioning_state(&properties.provisioning_state);
    let provisioning_error = (state == ProvisioningState::Failed)
        .then(|| failure(&events[..group_event_count], &events[group_event_count..]));
    GroupDetail {
        provisioning_state: state,
        tags: group_tags(&response.tags),
        container,
        provisioning_error,
        events,
    }
}

/// Returns the name of a group's first container, the one the worker streams logs from.
pub fn first_container_name(response: &ContainerGroupResponse) -> Option<String> {
    response
        .properties
        .containers
        .first()
        .map(|c| c.name.clone())
}

fn container_state(state: Option<&str>) -> ContainerState {
    match state {
        Some("Waiting") => ContainerState::Waiting,
        Some("Running") => ContainerState::Running,
        Some("Terminated") => ContainerState::Terminated,
        Some(other) => ContainerState::Other(other.to_owned()),
        None => ContainerState::Other(String::new()),
    }
}

fn event(event: &Event) -> ContainerEvent {
    ContainerEvent {
        name: event.name.clone().unwrap_or_default(),
        message: event.message.clone().unwrap_or_default(),
    }
}

/// Builds the error of a failed provisioning from the events, as ARM reports an image pull
/// failure: a warning event on the group named after ARM's code (`InaccessibleImage`), and a
/// generic `Failed` event on the container. Group events are searched first, because only
/// they carry the code.
fn failure(group_events: &[ContainerEvent], container_events: &[ContainerEvent]) -> ArmErrorView {
    let is_warning = |e: &&ContainerEvent| {
        let name = e.name.to_ascii_lowercase();
        name.contains("fail") || name.contains("inaccessible") || name.contains("error")
    };
    let warning = group_events
        .iter()
        .rev()
        .find(is_warning)
        .or_else(|| container_events.iter().rev().find(is_warning));
    match warning.or(container_events.last()).or(group_events.last()) {
        Some(event) => ArmErrorView {
            code: event.name.clone(),
            message: event.message.clone(),
        },
        None => ArmErrorView {
            code: "ProvisioningFailed".to_owned(),
            message: "the container group's provisioning state is Failed and ARM reported no event"
                .to_owned(),
        },
    }
}

/// Converts a Prefect state type.
pub fn state_type(state: models::StateType) -> StateType {
    use models::StateType as P;
    match state {
        P::Scheduled => StateType::Scheduled,
        P::Pending => StateType::Pending,
        P::Running => StateType::Running,
        P::Paused => StateType::Paused,
        P::Cancelling => StateType::Cancelling,
        P::Completed => StateType::Completed,
        P::Failed => StateType::Failed,
        P::Crashed => StateType::Crashed,
        P::Cancelled => StateType::Cancelled,
    }
}

/// Converts a flow run, with its flow's name looked up by the caller. Returns `None` for a
/// run without a state.
pub fn flow_run_view(run: &FlowRun, flow_name: &str) -> Option<FlowRunView> {
    let state = run.state.as_ref()?;
    let worker_name = run
        .labels
        .as_ref()
        .and_then(|labels| labels.get(WORKER_NAME_LABEL))
        .and_then(|value| value.as_str())
        .map(str::to_owned);
    Some(FlowRunView {
        id: run.id,
        name: run.name.clone(),
        flow_id: run.flow_id,
        flow_name: flow_name.to_owned(),
        deployment_id: run.deployment_id,
        state_type: state_type(state.state_type),
        state_name: state
            .name
            .clone()
            .unwrap_or_else(|| state.state_type.default_name().to_owned()),
        state_timestamp: state
            .timestamp
            .or(run.updated)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        infrastructure_pid: run.infrastructure_pid.clone().filter(|pid| !pid.is_empty()),
        worker_name,
    })
}

/// Converts an ARM resource group reference to the planner's scope.
pub fn scope(reference: &ResourceGroupRef) -> ResourceGroupScope {
    ResourceGroupScope {
        subscription_id: reference.subscription_id.clone(),
        resource_group: reference.resource_group.clone(),
    }
}

/// Returns the ARM resource group reference of a planner group.
pub fn resource_group(group: &GroupRef) -> ResourceGroupRef {
    ResourceGroupRef::new(group.subscription_id.clone(), group.resource_group.clone())
}
