//! Admin API under `/admin`: faults, request counters, reset, and out-of-band changes to
//! container groups. It needs no token.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::faults::Faults;
use super::lifecycle::remove_group;
use super::state::{GroupKey, Shared};

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/admin/faults", get(get_faults).put(put_faults))
        .route("/admin/counters", get(get_counters))
        .route("/admin/reset", post(reset))
        .route("/admin/groups", get(list_groups))
        .route(
            "/admin/groups/{subscription}/{resource_group}/{name}",
            delete(vanish_group),
        )
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Json<Faults> {
    Json(
        shared
            .faults
            .lock()
            .expect("fault lock poisoned")
            .faults
            .clone(),
    )
}

/// Replaces every fault; fields left out take their defaults (no fault).
async fn put_faults(State(shared): State<Arc<Shared>>, Json(faults): Json<Faults>) -> Json<Faults> {
    tracing::info!(operations = faults.operations.len(), "faults replaced");
    shared.faults.lock().expect("fault lock poisoned").faults = faults.clone();
    Json(faults)
}

/// Counters as `{"<operation>": {"<status>": count}}`.
async fn get_counters(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let counters = shared.counters.lock().expect("counter lock poisoned");
    let body: serde_json::Map<String, Value> = counters
        .iter()
        .map(|(operation, by_status)| {
            let statuses: serde_json::Map<String, Value> = by_status
                .iter()
                .map(|(status, count)| (status.to_string(), json!(count)))
                .collect();
            (operation.clone(), Value::Object(statuses))
        })
        .collect();
    Json(Value::Object(body))
}

/// Restores the faults given at start, restarts the random sequence, clears counters and
/// refills rate-limit buckets. Container groups stay.
async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    let initial = shared.config.faults.to_faults();
    shared
        .faults
        .lock()
        .expect("fault lock poisoned")
        .reset(initial);
    shared
        .counters
        .lock()
        .expect("counter lock poisoned")
        .clear();
    shared.buckets.lock().expect("bucket lock poisoned").clear();
    StatusCode::NO_CONTENT
}

/// Lists every container group with its states and process id, for tests and debugging.
async fn list_groups(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let store = shared.lock_store();
    let groups: Vec<Value> = store
        .groups
        .values()
        .map(|g| {
            json!({
                "subscription": g.subscription,
                "resourceGroup": g.resource_group,
                "name": g.name,
                "provisioningState": g.provisioning_state,
                "state": g.state,
                "pid": g.pid,
                "simulated": g.run.simulated,
            })
        })
        .collect();
    Json(Value::Array(groups))
}

/// Deletes a group out of band, as if someone removed it in the portal: it is gone at once
/// and its process is killed.
async fn vanish_group(
    State(shared): State<Arc<Shared>>,
    Path((subscription, resource_group, name)): Path<(String, String, String)>,
) -> Response {
    let key = GroupKey::new(&subscription, &resource_group, &name);
    match remove_group(&shared, &key) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
