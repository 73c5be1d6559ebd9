//! Simulated containers: no process, a wait, an exit code from the environment, and flow
//! run states proposed to the Prefect API.
//!
//! Two tests use a recording server on 127.0.0.1 that accepts every proposal, so they check
//! the calls the emulator makes. One test runs against a real Prefect server instead.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use prefect_aci_worker::emulator::EmulatorConfig;
use serde_json::{Value, json};

use crate::support::*;

type Recorded = Arc<Mutex<Vec<(String, Option<String>, Value)>>>;

async fn set_state(
    State(recorded): State<Recorded>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let authorization = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    recorded.lock().unwrap().push((id, authorization, body));
    Json(json!({ "status": "ACCEPT", "state": {} }))
}

async fn start_recorder() -> (String, Recorded) {
    let recorded: Recorded = Arc::default();
    let app = axum::Router::new()
        .route("/api/flow_runs/{id}/set_state", post(set_state))
        .with_state(recorded.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, recorded)
}

fn simulated_body(api_url: &str, exit_code: &str) -> Value {
    let mut body = group_body(&["prefect", "flow-run", "execute"]);
    body["properties"]["containers"][0]["properties"]["environmentVariables"] = json!([
        { "name": "PREFECT_API_URL", "value": api_url },
        { "name": "PREFECT__FLOW_RUN_ID", "value": "run-1" },
        { "name": "PREFECT_API_KEY", "secureValue": "pnu_key" },
        { "name": "ACI_EMULATOR_SIM_SECONDS", "value": "0.3" },
        { "name": "ACI_EMULATOR_SIM_EXIT_CODE", "value": exit_code }
    ]);
    body
}

fn proposed_types(recorded: &Recorded) -> Vec<String> {
    let calls = recorded.lock().unwrap();
    calls
        .iter()
        .map(|(_, _, body)| body["state"]["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn simulated_failure_reports_running_then_failed() {
    let (api_url, recorded) = start_recorder().await;
    let mut config = EmulatorConfig::for_tests();
    config.simulate = true;
    let emulator = TestEmulator::with_config(config).await;
    emulator
        .create("sim-fail", &simulated_body(&api_url, "2"))
        .await;

    let running = emulator
        .wait_for("sim-fail", |g| current_state(g) == "Running")
        .await;
    assert_eq!(group_state(&running), "Running");
    let done = emulator
        .wait_for("sim-fail", |g| current_state(g) == "Terminated")
        .await;
    assert_eq!(container_view(&done)["currentState"]["exitCode"], 2);
    assert_eq!(emulator.pid("sim-fail").await, None);
    assert_eq!(proposed_types(&recorded), ["RUNNING", "FAILED"]);
    let calls = recorded.lock().unwrap();
    assert_eq!(calls[0].0, "run-1");
    assert_eq!(calls[0].1.as_deref(), Some("Bearer pnu_key"));
    assert_eq!(calls[0].2["state"]["name"], "Running");
}

#[tokio::test]
async fn simulated_image_pattern_completes() {
    let (api_url, recorded) = start_recorder().await;
    let mut config = EmulatorConfig::for_tests();
    config.simulate_image = vec!["alpine:*".into()];
    let emulator = TestEmulator::with_config(config).await;
    emulator
        .create("sim-ok", &simulated_body(&api_url, "0"))
        .await;
    let done = emulator
        .wait_for("sim-ok", |g| current_state(g) == "Terminated")
        .await;
    assert_eq!(container_view(&done)["currentState"]["exitCode"], 0);
    assert_eq!(group_state(&done), "Succeeded");
    assert_eq!(proposed_types(&recorded), ["RUNNING", "COMPLETED"]);
    let logs = emulator.logs("sim-ok", "").await;
    assert!(logs.contains("proposed Running: ACCEPT"), "logs: {logs}");
}

/// POSTs `body` until the server creates the object. A Prefect 3.9.1 server just past its
/// health check has been seen to return a flow run POST without an id, so this retries.
async fn post_until_created(client: &reqwest::Client, url: &str, body: Value) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let response = client.post(url).json(&body).send().await.unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() && answer["id"].is_string() {
            return answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "POST {url}: {status} {answer}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn simulated_run_drives_real_prefect_server() {
    let server = crate::prefect_server::prefect3_server();
    let client = reqwest::Client::new();
    let flows_url = format!("{}/flows/", server.api_url);
    let flow = post_until_created(
        &client,
        &flows_url,
        json!({ "name": "emulator-simulation" }),
    )
    .await;
    let flow_runs_url = format!("{}/flow_runs/", server.api_url);
    let pending =
        json!({ "flow_id": flow["id"], "state": { "type": "PENDING", "name": "Pending" } });
    let flow_run = post_until_created(&client, &flow_runs_url, pending).await;
    let flow_run_id = flow_run["id"].as_str().unwrap();

    let mut config = EmulatorConfig::for_tests();
    config.simulate = true;
    let emulator = TestEmulator::with_config(config).await;
    let mut body = simulated_body(&server.api_url, "1");
    body["properties"]["containers"][0]["properties"]["environmentVariables"][1]["value"] =
        json!(flow_run_id);
    emulator.create("sim-real", &body).await;
    emulator
        .wait_for("sim-real", |g| current_state(g) == "Terminated")
        .await;

    let read: Value = client
        .get(format!("{}/flow_runs/{flow_run_id}", server.api_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["state"]["type"], "FAILED", "flow run: {read}");
    assert_eq!(read["run_count"], 1);
    let logs = emulator.logs("sim-real", "").await;
    assert!(logs.contains("proposed Running: ACCEPT"), "logs: {logs}");
    assert!(
        logs.contains("proposed final state: ACCEPT"),
        "logs: {logs}"
    );
}
