//! ARM handlers for resource groups, which only record a location and tags.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::errors::ArmError;
use super::groups::parse_body;
use super::state::{ResourceGroup, ResourceGroupKey, Shared};
use super::view;

pub fn put_resource_group(
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

pub fn get_resource_group(
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
