//! ARM handlers: resource groups, container groups, stop, logs and delete operations.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
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
use super::{lifecycle, view};

/// `Retry-After` sent with a 202 delete, in seconds.
const DELETE_RETRY_AFTER_SECONDS: u64 = 1;

/// Routes a parsed ARM request to its handler.
pub async fn dispatch(
    shared: &Arc<Shared>,
    route: ArmRoute,
    method: &Method,
    query: &Query,
    body: &[u8],
) -> Response {
    let result = match (route, method.as_str()) {
        (
            ArmRoute::ResourceGroup {
                subscription,
                resource_group,
            },
            "PUT",
        ) => put_resource_group(shared, &subscription, &resource_group, body),
        (
            ArmRoute::ResourceGroup {
                subscription,
                resource_group,
            },
            "GET",
        ) => get_resource_group(shared, &subscription, &resource_group),
        (ArmRoute::GroupsInSubscription { subscription }, "GET") => {
            super::listing::list(shared, &subscription, None, query)
        }
        (
            ArmRoute::GroupsInResourceGroup {
                subscription,
                resource_group,
            },
            "GET",
        ) => super::listing::list(shared, &subscription, Some(&resource_group), query),
        (
            ArmRoute::Group {
                subscription,
                resource_group,
                name,
            },
            verb,
        ) => {
            let key = GroupKey::new(&subscription, &resource_group, &name);
            match verb {
                "PUT" => put_group(shared, &subscription, &resource_group, &name, body),
                "GET" => get_group(shared, &key, &name),
                "DELETE" => delete_group(shared, &key, query),
                _ => Err(method_not_allowed(method)),
            }
        }
        (
            ArmRoute::GroupAction {
                subscription,
                resource_group,
                name,
                action,
            },
            "POST",
        ) if action == "stop" => stop_group(
            shared,
            &GroupKey::new(&subscription, &resource_group, &name),
            &name,
        ),
        (
            ArmRoute::Logs {
                subscription,
                resource_group,
                name,
                container,
            },
            "GET",
        ) => logs(
            shared,
            &GroupKey::new(&subscription, &resource_group, &name),
            &name,
            &container,
            query,
        ),
        (ArmRoute::OperationResult { id, .. }, "GET") => operation_result(shared, &id),
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

fn parse_body(body: &[u8]) -> Result<Value, ArmError> {
    serde_json::from_slice(body).map_err(|e| {
        ArmError::bad_request(
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: {e}."),
        )
    })
}

fn put_resource_group(
    shared: &Shared,
    subscription: &str,
    name: &str,
    body: &[u8],
) -> Result<Response, ArmError> {
    let body = parse_body(body)?;
    let Some(location) = body.get("location").and_then(Value::as_str) else {
        return Err(ArmError::bad_request(
            "LocationRequired",
            "The location property is required for this definition.",
        ));
    };
    let group = ResourceGroup {
        subscription: subscription.to_string(),
        name: name.to_string(),
        location: location.to_string(),
        tags: body.get("tags").cloned(),
    };
    let rendered = view::resource_group_json(&group);
    let mut store = shared.lock_store();
    let previous = store
        .resource_groups
        .insert(ResourceGroupKey::new(subscription, name), group);
    let status = if previous.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(rendered)).into_response())
}

fn get_resource_group(
    shared: &Shared,
    subscription: &str,
    name: &str,
) -> Result<Response, ArmError> {
    let store = shared.lock_store();
    let group = store
        .resource_groups
        .get(&ResourceGroupKey::new(subscription, name))
        .ok_or_else(|| ArmError::not_found_resource_group(name))?;
    Ok(Json(view::resource_group_json(group)).into_response())
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
    let mut store = shared.lock_store();
    let group = store
        .groups
        .get_mut(key)
        .ok_or_else(|| ArmError::not_found_group(name))?;
    group.reads += 1;
    let instance_view = group.reads > hidden_reads;
    Ok(Json(view::group_json(group, instance_view)).into_response())
}

fn delete_group(shared: &Arc<Shared>, key: &GroupKey, query: &Query) -> Result<Response, ArmError> {
    let slow_delete_ms = shared
        .faults
        .lock()
        .expect("fault lock poisoned")
        .faults
        .slow_delete_ms;
    if slow_delete_ms == 0 {
        let Some(group) = lifecycle::remove_group(shared, key) else {
            return Ok(StatusCode::NO_CONTENT.into_response());
        };
        return Ok(Json(view::group_json(&group, false)).into_response());
    }
    let mut store = shared.lock_store();
    let Some(group) = store.groups.get_mut(key) else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    group.provisioning_state = "Deleting".to_string();
    lifecycle::add_killing_event(group);
    group.stop_requested = true;
    let subscription = group.subscription.clone();
    let instance = group.instance;
    let pid = group.pid;
    let id = Uuid::new_v4().simple().to_string();
    let delay = Duration::from_millis(slow_delete_ms);
    store.operations.insert(id.clone(), Instant::now() + delay);
    drop(store);
    lifecycle::kill_in_background(shared, pid);
    tokio::spawn(lifecycle::remove_after(
        shared.clone(),
        key.clone(),
        instance,
        delay,
    ));
    let api_version = query
        .get("api-version")
        .map(String::as_str)
        .unwrap_or_default();
    let location = format!(
        "{}/subscriptions/{subscription}/providers/Microsoft.ContainerInstance/operationResults/{id}?api-version={api_version}",
        shared.base_url
    );
    let mut response = StatusCode::ACCEPTED.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("URL is a valid header"),
    );
    headers.insert(
        header::RETRY_AFTER,
        HeaderValue::from(DELETE_RETRY_AFTER_SECONDS),
    );
    Ok(response)
}

/// A delete's operation URL: 202 while the group shows Deleting, then 204.
fn operation_result(shared: &Shared, id: &str) -> Result<Response, ArmError> {
    let store = shared.lock_store();
    let Some(done_at) = store.operations.get(id) else {
        let message = format!("The operation '{id}' was not found.");
        return Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "OperationNotFound",
            message,
        ));
    };
    if Instant::now() >= *done_at {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut response = StatusCode::ACCEPTED.into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(DELETE_RETRY_AFTER_SECONDS),
    );
    Ok(response)
}

fn stop_group(shared: &Arc<Shared>, key: &GroupKey, name: &str) -> Result<Response, ArmError> {
    let ignore_stop = shared
        .faults
        .lock()
        .expect("fault lock poisoned")
        .faults
        .ignore_stop;
    let mut store = shared.lock_store();
    let group = store
        .groups
        .get_mut(key)
        .ok_or_else(|| ArmError::not_found_group(name))?;
    if ignore_stop {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    group.stop_requested = true;
    group.state = Some("Stopped".to_string());
    lifecycle::add_killing_event(group);
    let pid = group.pid;
    drop(store);
    lifecycle::kill_in_background(shared, pid);
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn logs(
    shared: &Shared,
    key: &GroupKey,
    name: &str,
    container: &str,
    query: &Query,
) -> Result<Response, ArmError> {
    let tail = match query.get("tail") {
        Some(text) => Some(text.parse::<usize>().map_err(|_| {
            ArmError::bad_request(
                "InvalidParameter",
                format!("The tail value '{text}' is not a non-negative integer."),
            )
        })?),
        None => None,
    };
    let timestamps = query
        .get("timestamps")
        .is_some_and(|t| t.eq_ignore_ascii_case("true"));
    let store = shared.lock_store();
    let group = store
        .groups
        .get(key)
        .ok_or_else(|| ArmError::not_found_group(name))?;
    if !group.containers.iter().any(|c| c.name == container) {
        let message =
            format!("The container '{container}' was not found in container group '{name}'.");
        return Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "ContainerNotFound",
            message,
        ));
    }
    let content = if group.run.container == container {
        group.logs.render(tail, timestamps)
    } else {
        String::new()
    };
    Ok(Json(json!({ "content": content })).into_response())
}
