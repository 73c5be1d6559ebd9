//! Switching a pool from prefect-azure's Python worker to this worker with runs in flight.
//!
//! The Python worker names a run's container group `<slug of the flow name>-<flow run id>`,
//! sets no tags, and records `<flow run id>:<group name>` as the run's `infrastructure_pid`.
//! These tests create such groups directly through the emulator's ARM API, with the runs in
//! Running, and start this worker afterwards: it must adopt the groups, report how their
//! containers ended and delete them.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::stack::{LOCATION, SIM_IMAGE, Stack, WorkerOptions, counter, unique};

/// Flow name of the migrated runs; its slug is itself, so the groups are `legacy-flow-<id>`.
const LEGACY_FLOW: &str = "legacy-flow";
/// Container name the Python worker's ARM template gives every group in a resource group
/// (`uniqueString(resourceGroup().id)`, 13 characters).
const LEGACY_CONTAINER: &str = "q5m2xk3n7rbwe";
/// How long the migrated containers run: long enough that they are still running when the
/// worker has started and waited out the lease of the runs' previous owner.
const CONTAINER_SECONDS: u32 = 15;
const TIMEOUT: Duration = Duration::from_secs(90);

/// Builds the body the Python worker's ARM deployment produces for a group, without tags.
fn legacy_group_body(image: &str, command: &[&str], env: &[(&str, &str)]) -> Value {
    let variables: Vec<Value> = env
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    json!({
        "location": LOCATION,
        "properties": {
            "osType": "Linux",
            "restartPolicy": "Never",
            "containers": [{
                "name": LEGACY_CONTAINER,
                "properties": {
                    "image": image,
                    "command": command,
                    "resources": {"requests": {"cpu": 1.0, "memoryInGB": 1.0}},
                    "environmentVariables": variables,
                },
            }],
        },
    })
}

/// Moves `run` to Running as the Python worker and the engine would have, and records the
/// Python worker's `infrastructure_pid`. Returns the group name.
async fn mark_running_on_legacy_group(stack: &Stack, run: &str) -> String {
    let group = format!("{LEGACY_FLOW}-{run}");
    for (kind, name) in [("PENDING", "Pending"), ("RUNNING", "Running")] {
        let status = stack.rest.set_state(run, kind, name, true).await;
        assert_eq!(status, "ACCEPT", "forcing {kind} on {run}");
    }
    stack
        .rest
        .patch(
            &format!("/flow_runs/{run}"),
            &json!({"infrastructure_pid": format!("{run}:{group}")}),
        )
        .await;
    group
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_worker_groups_adopted() {
    let stack = Stack::start("migrate").await;
    let deployment = stack.simulated_deployment(LEGACY_FLOW, 1.0, 0).await;
    let api_url = stack.prefect.api_url.clone();

    // A group whose simulated engine completes the run itself.
    let completing = stack
        .rest
        .create_flow_run(&deployment, &json!({}), &json!({}))
        .await;
    let completing_group = mark_running_on_legacy_group(&stack, &completing).await;
    let seconds = CONTAINER_SECONDS.to_string();
    let env = [
        ("PREFECT_API_URL", api_url.as_str()),
        ("PREFECT__FLOW_RUN_ID", completing.as_str()),
        ("ACI_EMULATOR_SIM_SECONDS", seconds.as_str()),
    ];
    let body = legacy_group_body(
        SIM_IMAGE,
        &[
            "/opt/prefect/entrypoint.sh",
            "prefect",
            "flow-run",
            "execute",
        ],
        &env,
    );
    stack.put_group(&completing_group, &body).await;

    // A group whose container exits 3 without reporting a state, as a crashed engine would.
    let exiting = stack
        .rest
        .create_flow_run(&deployment, &json!({}), &json!({}))
        .await;
    let exiting_group = mark_running_on_legacy_group(&stack, &exiting).await;
    let script = format!("sleep {CONTAINER_SECONDS}; exit 3");
    let body = legacy_group_body(
        "python:3.11-slim",
        &["/opt/prefect/entrypoint.sh", "sh", "-c", &script],
        &[("PREFECT__FLOW_RUN_ID", exiting.as_str())],
    );
    stack.put_group(&exiting_group, &body).await;

    // An untagged group no run points at: the worker must leave it alone.
    let bystander = format!("{LEGACY_FLOW}-{}", uuid::Uuid::new_v4());
    let body = legacy_group_body(
        SIM_IMAGE,
        &["sleep", "600"],
        &[("ACI_EMULATOR_SIM_SECONDS", "600")],
    );
    stack.put_group(&bystander, &body).await;

    let options = WorkerOptions {
        lease_seconds: 4.0,
        orphan_grace_seconds: 2.0,
        ..WorkerOptions::default()
    };
    let worker = stack.start_worker(&unique("w"), options);

    let state = stack.wait_for_final(&worker, &exiting, TIMEOUT).await;
    assert_eq!(state.kind, "CRASHED", "run with exit code 3: {state:?}");
    assert!(
        state.message.contains("status code 3"),
        "Crashed message lacks the exit code: {state:?}"
    );
    let state = stack.wait_for_final(&worker, &completing, TIMEOUT).await;
    assert_eq!(state.kind, "COMPLETED", "run with exit code 0: {state:?}");

    let started = std::time::Instant::now();
    loop {
        let names = stack.group_names().await;
        let adopted_left: Vec<&String> = names
            .iter()
            .filter(|n| **n == completing_group || **n == exiting_group)
            .collect();
        if adopted_left.is_empty() {
            assert!(
                names.contains(&bystander),
                "the worker deleted an untagged group no run points at: {names:?}"
            );
            break;
        }
        if started.elapsed() > TIMEOUT {
            stack
                .fail(
                    &worker,
                    &exiting,
                    &format!("adopted groups not deleted: {adopted_left:?}"),
                )
                .await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let counters = stack.counters().await;
    assert_eq!(
        counter(&counters, "create", 201),
        3,
        "the worker created groups for adopted runs: {counters}"
    );
}
