//! ARM dispatch, and the container group handlers that create and read groups.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use uuid::Uuid;

use super::config::glob_matches;
use super::errors::ArmError;
use super::routes::ArmRoute;
use super::server::Query;
use super::state::{
    ContainerGroup, ContainerState, ContainerStatus, GroupKey, ResourceGroup, ResourceGroupKey,
    Shared,
};
use super::validate::{normalize_location, validate_group};
use super::{group_actions, lifecycle, listing, resource_groups, view};

/// Routes a parsed ARM request to its handler.
pub async fn dispatch(
    shared: &Arc<Shared>,
    route: ArmRoute,
    method: &Method,
    query: &Query,
    body: &[u8],
) -> Response {
    let verb = method.as_str();
    let result = match route {
        ArmRoute::ResourceGroup {
            subscription,
            resource_group,
        } => match verb {
            "PUT" => {
                resource_groups::put_resource_group(shared, &subscription, &resource_group, body)
            }
            "GET" => resource_groups::get_resource_group(shared, &subscription, &resource_group),
            _ => Err(method_not_allowed(method)),
        },
        ArmRoute::GroupsInSubscription { subscription } if verb == "GET" => {
            listing::list(shared, &subscription, None, query)
        }
        ArmRoute::GroupsInResourceGroup {
            subscription,
            resource_group,
        } if verb == "GET" => listing::list(shared, &subscription, Some(&resource_group), query),
        ArmRoute::Group {
            subscription,
            resource_group,
            name,
        } => {
            let key = GroupKey::new(&subscription, &resource_group, &name);
            match verb {
                "PUT" => put_group(shared, &subscription, &resource_group, &name, body),
                "GET" => get_group(shared, &key, &name),
                "DELETE" => group_actions::delete_group(shared, &key, query),
                _ => Err(method_not_allowed(method)),
            }
        }
        ArmRoute::GroupAction {
            subscription,
            resource_group,
            name,
            action,
        } if verb == "POST" && action == "stop" => {
            let key = GroupKey::new(&subscription, &resource_group, &name);
            group_actions::stop_group(shared, &key, &name)
        }
        ArmRoute::Logs {
            subscription,
            resource_group,
            name,
            container,
        } if verb == "GET" => {
            let key = GroupKey::new(&subscription, &resource_group, &name);
            group_actions::logs(shared, &key, &name, &container, query)
        }
        ArmRoute::OperationResult { id, .. } if verb == "GET" => {
            group_actions::operation_result(shared, &id)
        }
        _ => Err(method_not_allowed(method)),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn method_not_allowed(method: &Method) -> ArmError {
    ArmError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("The method '{method}' is not supported on this path by the ACI emulator."),
    )
}

/// Builds the 404 for a group that does not exist: ResourceGroupNotFound when its resource
/// group is missing too, as ARM reports it, otherwise ResourceNotFound.
pub fn missing_group(
    resource_groups: &HashMap<ResourceGroupKey, ResourceGroup>,
    key: &GroupKey,
    name: &str,
) -> ArmError {
    let group_key = ResourceGroupKey::new(&key.subscription, &key.resource_group);
    if resource_groups.contains_key(&group_key) {
        ArmError::not_found_group(&key.resource_group, name)
    } else {
        ArmError::not_found_resource_group(&key.resource_group)
    }
}

pub fn parse_body(body: &[u8]) -> Result<Value, ArmError> {
    serde_json::from_slice(body).map_err(|e| {
        ArmError::bad_request(
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: {e}."),
        )
    })
}

fn put_group(
    shared: &Arc<Shared>,
    subscription: &str,
    resource_group: &str,
    name: &str,
    body: &[u8],
) -> Result<Response, ArmError> {
    let body = parse_body(body)?;
    let location = {
        let store = shared.lock_store();
        let key = ResourceGroupKey::new(subscription, resource_group);
        let group = store
            .resource_groups
            .get(&key)
            .ok_or_else(|| ArmError::not_found_resource_group(resource_group))?;
        group.location.clone()
    };
    let mut valid = validate_group(name, &body, &location, shared.config.any_location)?;

    let key = GroupKey::new(subscription, resource_group, name);
    let mut store = shared.lock_store();
    if let Some(existing) = store.groups.get_mut(&key) {
        // NOTE: an update replaces the recorded spec and tags but does not restart the
        // container, whereas ACI restarts a group whose containers changed.
        existing.tags = valid.tags;
        existing.properties = valid.properties;
        let rendered = view::group_json(existing, false);
        return Ok((StatusCode::OK, Json(rendered)).into_response());
    }

    check_quota(shared, &store.groups, subscription, &valid.location)?;
    valid.run.simulated = shared.config.simulate
        || shared
            .config
            .simulate_image
            .iter()
            .any(|p| glob_matches(p, &valid.run.image));

    let group = new_group(subscription, resource_group, name, valid);
    let instance = group.instance;
    let rendered = view::group_json(&group, false);
    store.groups.insert(key.clone(), group);
    drop(store);
    tokio::spawn(lifecycle::run(shared.clone(), key, instance));
    Ok((StatusCode::CREATED, Json(rendered)).into_response())
}

fn check_quota(
    shared: &Shared,
    groups: &std::collections::BTreeMap<GroupKey, ContainerGroup>,
    subscription: &str,
    location: &str,
) -> Result<(), ArmError> {
    let limit = shared.config.max_container_groups;
    let usage = groups
        .values()
        .filter(|g| g.subscription.eq_ignore_ascii_case(subscription))
        .filter(|g| normalize_location(&g.location) == normalize_location(location))
        .count();
    let forced = shared
        .faults
        .lock()
        .expect("fault lock poisoned")
        .faults
        .quota_exceeded;
    if !forced && usage < limit {
        return Ok(());
    }
    Err(ArmError::new(
        StatusCode::CONFLICT,
        "ContainerGroupQuotaReached",
        format!(
            "Resource type 'Microsoft.ContainerInstance/containerGroups' has reached the quota \
             'ContainerGroups' in region '{location}' of subscription '{subscription}'. Limit: \
             '{limit}', Usage: '{usage}', Requested: '1'."
        ),
    ))
}

fn new_group(
    subscription: &str,
    resource_group: &str,
    name: &str,
    valid: super::validate::ValidGroup,
) -> ContainerGroup {
    let containers = valid.properties["containers"]
        .as_array()
        .map(|containers| {
            containers
                .iter()
                .map(|c| ContainerStatus {
                    name: c["name"].as_str().unwrap_or_default().to_string(),
                    restart_count: 0,
                    current: ContainerState::waiting(
                        "Waiting for the container group to be provisioned",
                    ),
                    previous: None,
                    events: Vec::new(),
                })
                .collect()
        })
        .unwrap_or_default();
    ContainerGroup {
        instance: Uuid::new_v4(),
        subscription: subscription.to_string(),
        resource_group: resource_group.to_string(),
        name: name.to_string(),
        location: valid.location,
        tags: valid.tags,
        identity: view::assign_identity_ids(valid.identity),
        properties: valid.properties,
        run: valid.run,
        provisioning_state: "Pending".to_string(),
        state: Some("Pending".to_string()),
        events: Vec::new(),
        containers,
        logs: Default::default(),
        pid: None,
        reads: 0,
        stop_requested: false,
    }
}

fn get_group(shared: &Shared, key: &GroupKey, name: &str) -> Result<Response, ArmError> {
    let hidden_reads = shared
        .faults
        .lock()
        .expect("fault lock poisoned")
        .faults
        .no_instance_view_reads;
    let mut guard = shared.lock_store();
    let store = &mut *guard;
    let group = store
        .groups
        .get_mut(key)
        .ok_or_else(|| missing_group(&store.resource_groups, key, name))?;
    group.reads += 1;
    let instance_view = group.reads > hidden_reads;
    Ok(Json(view::group_json(group, instance_view)).into_response())
}
