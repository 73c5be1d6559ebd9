//! Listing container groups by subscription or resource group, in pages linked by an
//! absolute `nextLink`.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::errors::ArmError;
use super::server::Query;
use super::state::{ResourceGroupKey, Shared};
use super::view;

/// Query parameter carrying the offset of the next page.
const SKIP_TOKEN: &str = "$skiptoken";

/// Lists the groups of a subscription, or of one resource group when given, without
/// instance views.
pub fn list(
    shared: &Shared,
    subscription: &str,
    resource_group: Option<&str>,
    query: &Query,
) -> Result<Response, ArmError> {
    let offset = match query.get(SKIP_TOKEN) {
        Some(token) => token.parse::<usize>().map_err(|_| {
            ArmError::bad_request(
                "InvalidSkipToken",
                format!("The skip token '{token}' is invalid."),
            )
        })?,
        None => 0,
    };
    let page_size = shared.config.page_size.max(1);
    let store = shared.lock_store();
    if let Some(name) = resource_group
        && !store
            .resource_groups
            .contains_key(&ResourceGroupKey::new(subscription, name))
    {
        return Err(ArmError::not_found_resource_group(name));
    }
    let subscription_key = subscription.to_lowercase();
    let resource_group_key = resource_group.map(str::to_lowercase);
    let matching: Vec<Value> = store
        .groups
        .iter()
        .filter(|(key, _)| key.subscription == subscription_key)
        .filter(|(key, _)| {
            resource_group_key
                .as_ref()
                .is_none_or(|rg| &key.resource_group == rg)
        })
        .skip(offset)
        .take(page_size + 1)
        .map(|(_, group)| view::group_json(group, false))
        .collect();
    drop(store);
    let mut value = matching;
    let mut body = json!({});
    if value.len() > page_size {
        value.truncate(page_size);
        body["nextLink"] = json!(next_link(
            shared,
            subscription,
            resource_group,
            query,
            offset + page_size
        ));
    }
    body["value"] = Value::Array(value);
    Ok(Json(body).into_response())
}

fn next_link(
    shared: &Shared,
    subscription: &str,
    resource_group: Option<&str>,
    query: &Query,
    offset: usize,
) -> String {
    let scope = match resource_group {
        Some(name) => format!("/subscriptions/{subscription}/resourceGroups/{name}"),
        None => format!("/subscriptions/{subscription}"),
    };
    let api_version = query
        .get("api-version")
        .map(String::as_str)
        .unwrap_or_default();
    let encoded: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("api-version", api_version)
        .append_pair(SKIP_TOKEN, &offset.to_string())
        .finish();
    format!(
        "{}{scope}/providers/Microsoft.ContainerInstance/containerGroups?{encoded}",
        shared.base_url
    )
}
