//! The worker binary end to end: a real Prefect 3.9.1 server, the ACI emulator, and
//! `prefect-aci-worker start` as a child process.
//!
//! Tests that need the flow engine (completion, failure, exit codes, logs) run
//! `prefect flow-run execute` from the venv inside the emulator. The rest use simulated
//! containers, which cost no CPU. Each test has its own emulator, pool and worker.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::stack::{
    DEMO_FLOW, RESOURCE_GROUP, SUBSCRIPTION, Stack, WorkerOptions, counter, counter_total,
    describe_history, unique,
};

/// Time for a run of the real engine: about 7 s of CPU, several times that on 2 busy cores.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(150);
/// Time for a simulated run, from scheduled to final.
const SIM_TIMEOUT: Duration = Duration::from_secs(60);
/// Time for the worker to delete a finished run's group.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_run_completes() {
    let stack = Stack::start("completes").await;
    let deployment = stack.engine_deployment(json!({})).await;
    let run = stack
        .rest
        .create_flow_run(&deployment, &json!({"mode": "complete"}), &json!({}))
        .await;
    let worker = stack.start_worker(&unique("w"), WorkerOptions::default());

    let state = stack.wait_for_final(&worker, &run, ENGINE_TIMEOUT).await;
    assert_eq!(state.kind, "COMPLETED", "final state: {state:?}");
    stack.wait_for_no_groups(&worker, CLEANUP_TIMEOUT).await;
    let flow_run = stack.rest.read_flow_run(&run).await;
    let pid = flow_run["infrastructure_pid"].as_str().unwrap_or_default();
    assert!(
        pid.starts_with(&format!("{run}:{DEMO_FLOW}-{run}")),
        "infrastructure_pid {pid:?} is not `<run id>:<group name>`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_run_fails() {
    let stack = Stack::start("fails").await;
    let deployment = stack.engine_deployment(json!({})).await;
    let run = stack
        .rest
        .create_flow_run(&deployment, &json!({"mode": "fail"}), &json!({}))
        .await;
    let worker = stack.start_worker(&unique("w"), WorkerOptions::default());

    let state = stack.wait_for_final(&worker, &run, ENGINE_TIMEOUT).await;
    assert_eq!(state.kind, "FAILED", "final state: {state:?}");
    assert!(
        state.message.contains("raised on purpose"),
        "Failed message does not carry the exception: {state:?}"
    );
    stack.wait_for_no_groups(&worker, CLEANUP_TIMEOUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonzero_exit_crashes_with_code() {
    let stack = Stack::start("exit137").await;
    let deployment = stack.engine_deployment(json!({})).await;
    let run = stack
        .rest
        .create_flow_run(&deployment, &json!({"mode": "exit"}), &json!({}))
        .await;
    let worker = stack.start_worker(&unique("w"), WorkerOptions::default());

    let state = stack.wait_for_final(&worker, &run, ENGINE_TIMEOUT).await;
    assert_eq!(state.kind, "CRASHED", "final state: {state:?}");
    assert!(state.message.contains("137"), "no exit code in {state:?}");
    assert!(
        state.message.contains("out of memory"),
        "no explanation of 137 in {state:?}"
    );
    stack.wait_for_no_groups(&worker, CLEANUP_TIMEOUT).await;
}

/// Lines the container prints before it runs the engine, with a pause between them so they
/// span several log reads of the worker.
const LOG_LINES: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_logs_reach_prefect() {
    let stack = Stack::start("logs").await;
    let script = format!(
        "for i in $(seq 1 {LOG_LINES}); do echo \"container-line $i\"; sleep 0.05; done; \
         exec prefect flow-run execute"
    );
    let command = shlex::try_join(["sh", "-c", &script]).expect("quote the command");
    let deployment = stack
        .engine_deployment(json!({"stream_output": true, "command": command}))
        .await;
    let run = stack
        .rest
        .create_flow_run(&deployment, &json!({"mode": "complete"}), &json!({}))
        .await;
    let worker = stack.start_worker(&unique("w"), WorkerOptions::default());

    let state = stack.wait_for_final(&worker, &run, ENGINE_TIMEOUT).await;
    assert_eq!(state.kind, "COMPLETED", "final state: {state:?}");
    // The worker reads the last lines before it deletes the group.
    stack.wait_for_no_groups(&worker, CLEANUP_TIMEOUT).await;
    let logs = stack.rest.logs(&run).await;
    let numbers: Vec<usize> = logs
        .iter()
        .filter_map(|log| log.message.trim().strip_prefix("container-line "))
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let expected: Vec<usize> = (1..=LOG_LINES).collect();
    assert_eq!(
        numbers, expected,
        "container lines in Prefect's logs are missing, repeated or out of order"
    );
    let messages: Vec<&str> = logs.iter().map(|log| log.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("hello from the container")),
        "the flow's last output line did not reach Prefect; logs:\n{}",
        messages.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_running_run_deletes_group() {
    let stack = Stack::start("cancel").await;
    let deployment = stack.simulated_deployment("cancel-me", 120.0, 0).await;
    let run = stack
        .rest
        .create_flow_run(&deployment, &json!({}), &json!({}))
        .await;
    let worker = stack.start_worker(&unique("w"), WorkerOptions::default());

    stack
        .wait_for_state(&worker, &run, "RUNNING", SIM_TIMEOUT, |s| {
            s.kind == "RUNNING"
        })
        .await;
    let group = stack.wait_for_group_of(&worker, &run, SIM_TIMEOUT).await;
    let status = stack
        .rest
        .set_state(&run, "CANCELLING", "Cancelling", false)
        .await;
    assert_eq!(status, "ACCEPT", "Prefect rejected the Cancelling proposal");

    let state = stack.wait_for_final(&worker, &run, SIM_TIMEOUT).await;
    assert_eq!(state.kind, "CANCELLED", "final state: {state:?}");
    let names = stack.group_names().await;
    assert!(
        !names.contains(&group),
        "group {group} still exists after the run was cancelled: {names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_worker_finishes_run_after_restart() {
    let stack = Stack::start("sigkill").await;
    let deployment = stack.simulated_deployment("survive-kill", 8.0, 0).await;
    let run = stack
        .rest
        .create_flow_run(&deployment, &json!({}), &json!({}))
        .await;
    let mut worker = stack.start_worker(&unique("w"), WorkerOptions::default());

    stack
        .wait_for_state(&worker, &run, "RUNNING", SIM_TIMEOUT, |s| {
            s.kind == "RUNNING"
        })
        .await;
    stack.wait_for_group_of(&worker, &run, SIM_TIMEOUT).await;
    worker.kill();
    worker.restart();

    let state = stack.wait_for_final(&worker, &run, SIM_TIMEOUT).await;
    assert_eq!(state.kind, "COMPLETED", "final state: {state:?}");
    stack.wait_for_no_groups(&worker, CLEANUP_TIMEOUT).await;
    let counters = stack.counters().await;
    assert_eq!(
        counter(&counters, "create", 201),
        1,
        "the restarted worker created a second group: {counters}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_pull_failure_crashes_run() {
    let stack = Stack::start("pull").await;
    stack
        .set_faults(json!({"image_pull_failure": "sim.invalid/missing*"}))
        .await;
    let deployment = stack.simulated_deployment("bad-image", 1.0, 0).await;
    let run = stack
        .rest
        .create_flow_run(
            &deployment,
            &json!({}),
            &json!({"image": "sim.invalid/missing:1"}),
        )
        .await;
    let worker = stack.start_worker(&unique("w"), WorkerOptions::default());

    let state = stack.wait_for_final(&worker, &run, SIM_TIMEOUT).await;
    assert_eq!(state.kind, "CRASHED", "final state: {state:?}");
    assert!(
        state.message.contains("InaccessibleImage"),
        "Crashed message lacks ARM's code: {state:?}"
    );
    stack.wait_for_no_groups(&worker, CLEANUP_TIMEOUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_deleted_out_of_band_crashes_run() {
    let stack = Stack::start("vanish").await;
    let deployment = stack.simulated_deployment("vanishing", 120.0, 0).await;
    let run = stack
        .rest
        .create_flow_run(&deployment, &json!({}), &json!({}))
        .await;
    let worker = stack.start_worker(&unique("w"), WorkerOptions::default());

    stack
        .wait_for_state(&worker, &run, "RUNNING", SIM_TIMEOUT, |s| {
            s.kind == "RUNNING"
        })
        .await;
    let group = stack.wait_for_group_of(&worker, &run, SIM_TIMEOUT).await;
    stack.delete_group_out_of_band(&group).await;

    let state = stack.wait_for_final(&worker, &run, SIM_TIMEOUT).await;
    assert_eq!(state.kind, "CRASHED", "final state: {state:?}");
    assert!(
        state.message.contains("deleted outside the worker"),
        "Crashed message does not say the group was deleted: {state:?}"
    );
    let counters = stack.counters().await;
    assert_eq!(
        counter(&counters, "create", 201),
        1,
        "the worker recreated the deleted group: {counters}"
    );
}

/// Runs submitted at once in the load test.
const PARALLEL_RUNS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_runs_complete_with_one_group_each() {
    let stack = Stack::start("twenty").await;
    let deployment = stack.simulated_deployment("many", 2.0, 0).await;
    let mut runs = Vec::new();
    for _ in 0..PARALLEL_RUNS {
        let run = stack
            .rest
            .create_flow_run(&deployment, &json!({}), &json!({}))
            .await;
        runs.push(run);
    }
    let worker = stack.start_worker(&unique("w"), WorkerOptions::default());

    for run in &runs {
        let state = stack.wait_for_final(&worker, run, SIM_TIMEOUT * 2).await;
        assert_eq!(state.kind, "COMPLETED", "run {run}: {state:?}");
    }
    stack.wait_for_no_groups(&worker, CLEANUP_TIMEOUT).await;
    let counters = stack.counters().await;
    assert_eq!(
        counter(&counters, "create", 201),
        PARALLEL_RUNS as u64,
        "groups created: {counters}"
    );
    assert_eq!(
        counter_total(&counters, "create"),
        PARALLEL_RUNS as u64,
        "create requests other than the {PARALLEL_RUNS} that succeeded: {counters}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_job_variable_crashes_only_its_run() {
    let stack = Stack::start("invalid").await;
    let deployment = stack.simulated_deployment("mixed", 1.0, 0).await;
    let bad = stack
        .rest
        .create_flow_run(&deployment, &json!({}), &json!({"gpu_count": 1}))
        .await;
    let good = stack
        .rest
        .create_flow_run(&deployment, &json!({}), &json!({}))
        .await;
    let worker = stack.start_worker(&unique("w"), WorkerOptions::default());

    let bad_state = stack.wait_for_final(&worker, &bad, SIM_TIMEOUT).await;
    assert_eq!(bad_state.kind, "CRASHED", "invalid run: {bad_state:?}");
    assert!(
        bad_state.message.contains("gpu_sku"),
        "Crashed message does not name the missing variable: {bad_state:?}"
    );
    let good_state = stack.wait_for_final(&worker, &good, SIM_TIMEOUT).await;
    assert_eq!(good_state.kind, "COMPLETED", "valid run: {good_state:?}");
    let counters = stack.counters().await;
    assert_eq!(
        counter_total(&counters, "create"),
        1,
        "only the valid run should reach ARM: {counters}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_arm_faults_never_crash_runs() {
    let stack = Stack::start("transient").await;
    let flaky = json!({"throttle_probability": 0.2, "retry_after_seconds": 1,
                       "error_probability": 0.15, "error_status": 503});
    let operations: serde_json::Map<String, Value> = ["create", "get", "list", "delete", "logs"]
        .iter()
        .map(|op| (op.to_string(), flaky.clone()))
        .collect();
    stack.set_faults(json!({"operations": operations})).await;
    let deployment = stack.simulated_deployment("flaky-arm", 2.0, 0).await;
    let mut runs = Vec::new();
    for _ in 0..4 {
        let run = stack
            .rest
            .create_flow_run(&deployment, &json!({}), &json!({}))
            .await;
        runs.push(run);
    }
    let worker = stack.start_worker(&unique("w"), WorkerOptions::default());

    for run in &runs {
        let state = stack.wait_for_final(&worker, run, SIM_TIMEOUT * 4).await;
        let history = stack.rest.state_history(run).await;
        assert_eq!(
            state.kind,
            "COMPLETED",
            "run {run} under transient faults:\n{}",
            describe_history(&history)
        );
        assert!(
            history.iter().all(|s| s.kind != "CRASHED"),
            "run {run} was crashed on the way:\n{}",
            describe_history(&history)
        );
    }
    // A delete whose retries all failed is sent again only after the cleanup retry interval
    // (30 s), so the wait leaves room for two such rounds on a loaded machine.
    stack.wait_for_no_groups(&worker, CLEANUP_TIMEOUT * 4).await;
    let counters = stack.counters().await;
    let throttled: u64 = ["create", "get", "list", "delete"]
        .iter()
        .map(|op| counter(&counters, op, 429))
        .sum();
    let failed: u64 = ["create", "get", "list", "delete"]
        .iter()
        .map(|op| counter(&counters, op, 503))
        .sum();
    assert!(throttled > 0, "no request was throttled: {counters}");
    assert!(failed > 0, "no request got a 503: {counters}");
    assert_eq!(
        counter(&counters, "create", 201),
        4,
        "retries created extra groups: {counters}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_online_and_ready() {
    let stack = Stack::start("ready").await;
    let name = unique("w");
    let mut worker = stack.start_worker(&name, WorkerOptions::default());
    worker.wait_ready(READY_TIMEOUT).await;

    let health = worker.http_get("/healthz").await;
    assert_eq!(health.map(|h| h.0), Some(200), "/healthz");
    let (status, metrics) = worker.http_get("/metrics").await.expect("/metrics answers");
    assert_eq!(status, 200, "/metrics");
    assert!(
        metrics.contains("# TYPE"),
        "not Prometheus text:\n{metrics}"
    );

    let started = std::time::Instant::now();
    loop {
        let workers = stack.rest.read_workers(&stack.pool).await;
        let ours = workers.iter().find(|w| w["name"] == name.as_str());
        if ours.is_some_and(|w| w["status"] == "ONLINE") {
            break;
        }
        if started.elapsed() > READY_TIMEOUT {
            stack
                .fail(
                    &worker,
                    "",
                    &format!("worker {name} not ONLINE: {workers:?}"),
                )
                .await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let pool = stack.rest.read_work_pool(&stack.pool).await;
    assert_eq!(pool["status"], "READY", "pool status: {}", pool["status"]);
    assert!(
        worker.exit_status().is_none(),
        "the worker exited while idle:\n{}",
        worker.log_tail()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_on_python_worker_pool() {
    let stack = Stack::start("render").await;
    let pool = unique("render-py");
    let prefect = stack.prefect;
    let create_pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        prefect.run_prefect(&[
            "work-pool",
            "create",
            &create_pool,
            "--type",
            "azure-container-instance",
        ])
    })
    .await
    .expect("prefect work-pool create");
    let flow_id = stack.rest.create_flow("render-me").await;
    stack
        .rest
        .create_deployment(&flow_id, "main", &pool, &json!({"cpu": 2}), &json!({}))
        .await;

    let variables = json!({"subscription_id": SUBSCRIPTION, "resource_group_name": RESOURCE_GROUP});
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_prefect-aci-worker"))
        .args(["render", "--pool", &pool, "--deployment", "render-me/main"])
        .args(["--job-variables", &variables.to_string()])
        .args(["--location", "westeurope"])
        .env("PREFECT_API_URL", &prefect.api_url)
        .env("PREFECT_HOME", stack.scratch_dir())
        .env_remove("PREFECT_API_KEY")
        .output()
        .await
        .expect("run prefect-aci-worker render");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "render failed with {}:\n{stdout}\n{stderr}",
        output.status
    );
    let body = find_group_body(&stdout)
        .unwrap_or_else(|| panic!("no container group body in the output:\n{stdout}"));
    let container = &body["properties"]["containers"][0]["properties"];
    assert_eq!(body["location"], "westeurope", "{body}");
    assert_eq!(container["resources"]["requests"]["cpu"], 2.0, "{body}");
    let command: Vec<&str> = container["command"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        command.ends_with(&["prefect", "flow-run", "execute"]),
        "command {command:?}"
    );
}

/// Finds the container group body in `render`'s output: the first JSON object (the whole
/// output, or one of its top-level values) with `properties.containers`.
fn find_group_body(stdout: &str) -> Option<Value> {
    let is_body = |v: &Value| v["properties"]["containers"].is_array();
    let mut values = Vec::new();
    for value in serde_json::Deserializer::from_str(stdout).into_iter::<Value>() {
        match value {
            Ok(value) => values.push(value),
            Err(_) => break,
        }
    }
    if values.is_empty() {
        // Text around the JSON: parse from the first brace of each line that starts one.
        for (index, _) in stdout.match_indices("\n{") {
            if let Some(Ok(value)) = serde_json::Deserializer::from_str(&stdout[index + 1..])
                .into_iter::<Value>()
                .next()
            {
                values.push(value);
            }
        }
    }
    for value in values {
        if is_body(&value) {
            return Some(value);
        }
        if let Some(found) = value
            .as_object()
            .and_then(|o| o.values().find(|v| is_body(v)).cloned())
        {
            return Some(found);
        }
    }
    None
}
