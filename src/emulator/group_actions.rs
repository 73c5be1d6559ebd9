//! ARM handlers that act on an existing container group: delete (with its operation URL),
//! stop and logs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use uuid::Uuid;

use super::errors::ArmError;
use super::groups::missing_group;
use super::server::Query;
use super::state::{GroupKey, Shared};
use super::{lifecycle, view};

/// `Retry-After` sent with a 202 delete, in seconds.
const DELETE_RETRY_AFTER_SECONDS: u64 = 1;

pub fn delete_group(
    shared: &Arc<Shared>,
    key: &GroupKey,
    query: &Query,
) -> Result<Response, ArmError> {
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
    let delay = Duration::from_millis(slow_delete_ms);
    let Some((subscription, id)) = begin_slow_delete(shared, key, delay) else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };

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

/// Marks the group Deleting, kills its process and removes it after `delay`. Returns the
/// group's subscription and the operation id, or `None` if the group does not exist.
fn begin_slow_delete(
    shared: &Arc<Shared>,
    key: &GroupKey,
    delay: Duration,
) -> Option<(String, String)> {
    let mut store = shared.lock_store();
    let group = store.groups.get_mut(key)?;
    group.provisioning_state = "Deleting".to_string();
    group.stop_requested = true;
    lifecycle::add_killing_event(group);
    let subscription = group.subscription.clone();
    let instance = group.instance;
    let pid = group.pid;

    let id = Uuid::new_v4().simple().to_string();
    store.operations.insert(id.clone(), Instant::now() + delay);
    drop(store);

    lifecycle::kill_in_background(shared, pid);
    let removal = lifecycle::remove_after(shared.clone(), key.clone(), instance, delay);
    tokio::spawn(removal);
    Some((subscription, id))
}

/// Reports a delete's progress at its operation URL: 202 while the group shows Deleting,
/// then 204.
pub fn operation_result(shared: &Shared, id: &str) -> Result<Response, ArmError> {
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

pub fn stop_group(shared: &Arc<Shared>, key: &GroupKey, name: &str) -> Result<Response, ArmError> {
    let ignore_stop = shared
        .faults
        .lock()
        .expect("fault lock poisoned")
        .faults
        .ignore_stop;
    let mut guard = shared.lock_store();
    let store = &mut *guard;
    let group = store
        .groups
        .get_mut(key)
        .ok_or_else(|| missing_group(&store.resource_groups, key, name))?;
    if ignore_stop {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    group.stop_requested = true;
    group.state = Some("Stopped".to_string());
    lifecycle::add_killing_event(group);
    let pid = group.pid;
    drop(guard);
    lifecycle::kill_in_background(shared, pid);
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub fn logs(
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
        .ok_or_else(|| missing_group(&store.resource_groups, key, name))?;
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
