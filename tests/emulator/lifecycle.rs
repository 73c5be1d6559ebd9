//! Container groups running local commands: states, exit codes, logs, stop and delete.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use prefect_aci_worker::emulator::{EmulatorConfig, ImageCommand};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn command_runs_and_reports_exit_code() {
    let emulator = TestEmulator::start().await;
    let body = group_body(&["sh", "-c", "echo hi; echo oops >&2; sleep 0.5; exit 3"]);
    emulator.create("exit-three", &body).await;

    let running = emulator
        .wait_for("exit-three", |g| current_state(g) == "Running")
        .await;
    assert_eq!(provisioning_state(&running), "Succeeded");
    assert_eq!(group_state(&running), "Running");
    assert!(container_view(&running)["currentState"]["startTime"].is_string());

    let done = emulator
        .wait_for("exit-three", |g| current_state(g) == "Terminated")
        .await;
    let state = &container_view(&done)["currentState"];
    assert_eq!(state["exitCode"], 3);
    assert_eq!(state["detailStatus"], "Error");
    assert!(state["startTime"].is_string());
    assert!(state["finishTime"].is_string());
    assert_eq!(group_state(&done), "Failed");
    assert_eq!(container_view(&done)["restartCount"], 0);
    let events: Vec<&str> = container_view(&done)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["Pulling", "Pulled", "Started"]);
}

#[tokio::test]
async fn logs_interleave_with_timestamps() {
    let emulator = TestEmulator::start().await;
    let body = group_body(&["sh", "-c", "echo one; echo two >&2; echo three"]);
    emulator.create("logs", &body).await;
    emulator
        .wait_for("logs", |g| current_state(g) == "Terminated")
        .await;

    let plain = emulator.logs("logs", "").await;
    assert_eq!(plain, "one\ntwo\nthree\n");
    let tail = emulator.logs("logs", "tail=1").await;
    assert_eq!(tail, "three\n");
    let stamped = emulator.logs("logs", "timestamps=true").await;
    for (line, expected) in stamped.lines().zip(["one", "two", "three"]) {
        let (stamp, text) = line.split_once(' ').expect("timestamp prefix");
        assert_eq!(text, expected);
        let parsed =
            time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339);
        assert!(parsed.is_ok(), "not RFC 3339: {stamp}");
    }
}

#[tokio::test]
async fn environment_is_exactly_the_containers() {
    let emulator = TestEmulator::start().await;
    let mut body = group_body(&["sh", "-c", "env | sort; echo cwd=$(pwd)"]);
    body["properties"]["containers"][0]["properties"]["environmentVariables"] = json!([
        { "name": "PLAIN", "value": "visible" },
        { "name": "SECRET", "secureValue": "s3cr3t-value" }
    ]);
    emulator.create("env", &body).await;
    emulator
        .wait_for("env", |g| current_state(g) == "Terminated")
        .await;

    let logs = emulator.logs("env", "").await;
    let names: Vec<&str> = logs
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .filter(|k| *k != "cwd")
        .collect();
    // `sh` itself adds PWD (and some shells SHLVL and _); everything else comes from the
    // emulator or the request.
    let unexpected: Vec<&&str> = names
        .iter()
        .filter(|k| {
            ![
                "HOME", "PATH", "PLAIN", "SECRET", "PWD", "SHLVL", "_", "OLDPWD",
            ]
            .contains(k)
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected variables: {unexpected:?}"
    );
    assert!(logs.contains("PLAIN=visible\n"));
    assert!(logs.contains("SECRET=s3cr3t-value\n"));
    let home = logs
        .lines()
        .find_map(|l| l.strip_prefix("HOME="))
        .expect("HOME is set");
    let cwd = logs
        .lines()
        .find_map(|l| l.strip_prefix("cwd="))
        .expect("cwd printed");
    assert_eq!(home, cwd);
}

#[tokio::test]
async fn secure_values_are_not_echoed() {
    let emulator = TestEmulator::start().await;
    let mut body = group_body(&["sh", "-c", "sleep 0.2"]);
    body["properties"]["containers"][0]["properties"]["environmentVariables"] =
        json!([{ "name": "SECRET", "secureValue": "never-echo-me" }]);
    body["properties"]["imageRegistryCredentials"] =
        json!([{ "server": "registry.example.com", "username": "u", "password": "registry-pass" }]);
    let created = emulator.create("secrets", &body).await.to_string();
    let (_, fetched) = emulator.get_group("secrets").await;
    let listed = emulator
        .get(&format!(
            "{}?api-version={API_VERSION}",
            emulator.groups_url()
        ))
        .await;
    let listed = listed.text().await.unwrap();
    for answer in [&created, &fetched.to_string(), &listed] {
        assert!(
            !answer.contains("never-echo-me"),
            "secure value echoed: {answer}"
        );
        assert!(
            !answer.contains("registry-pass"),
            "registry password echoed: {answer}"
        );
    }
    let variable = &fetched["properties"]["containers"][0]["properties"]["environmentVariables"][0];
    assert_eq!(variable, &json!({ "name": "SECRET" }));
}

#[tokio::test]
async fn delete_kills_the_process_group() {
    let emulator = TestEmulator::start().await;
    // The shell and its child ignore SIGTERM, so only the SIGKILL after the grace ends them.
    let body = group_body(&["sh", "-c", "trap '' TERM; sleep 60 & wait; sleep 60"]);
    emulator.create("doomed", &body).await;
    emulator
        .wait_for("doomed", |g| current_state(g) == "Running")
        .await;
    let pid = emulator.pid("doomed").await.expect("a running process");
    assert!(process_group_alive(pid));

    let response = emulator.delete(&emulator.group_url("doomed", "")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        wait_gone(pid).await,
        "process group {pid} survived the delete"
    );
    let (status, body) = emulator.get_group("doomed").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "ResourceNotFound");
    let again = emulator.delete(&emulator.group_url("doomed", "")).await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn stop_keeps_group_as_stopped() {
    let emulator = TestEmulator::start().await;
    emulator
        .create("stoppable", &group_body(&["sleep", "60"]))
        .await;
    emulator
        .wait_for("stoppable", |g| current_state(g) == "Running")
        .await;
    let pid = emulator.pid("stoppable").await.expect("a running process");

    let response = emulator
        .post(&emulator.group_url("stoppable", "/stop"))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(
        wait_gone(pid).await,
        "process group {pid} survived the stop"
    );
    let stopped = emulator
        .wait_for("stoppable", |g| current_state(g) == "Terminated")
        .await;
    assert_eq!(group_state(&stopped), "Stopped");
    assert_eq!(container_view(&stopped)["currentState"]["exitCode"], 143);
    assert_eq!(
        container_view(&stopped)["currentState"]["detailStatus"],
        "Killed"
    );
    let events = container_view(&stopped)["events"].to_string();
    assert!(events.contains("Killing"), "no Killing event: {events}");
}

#[tokio::test]
async fn restart_policy_on_failure_restarts() {
    let emulator = TestEmulator::start().await;
    let mut body = group_body(&["sh", "-c", "exit 1"]);
    body["properties"]["restartPolicy"] = json!("OnFailure");
    emulator.create("flaky", &body).await;
    let restarted = emulator
        .wait_for("flaky", |g| {
            container_view(g)["restartCount"].as_u64() >= Some(1)
        })
        .await;
    let previous = &container_view(&restarted)["previousState"];
    assert_eq!(previous["state"], "Terminated");
    assert_eq!(previous["exitCode"], 1);
}

#[tokio::test]
async fn restart_policy_never_does_not_restart() {
    let emulator = TestEmulator::start().await;
    emulator
        .create("once", &group_body(&["sh", "-c", "exit 1"]))
        .await;
    emulator
        .wait_for("once", |g| current_state(g) == "Terminated")
        .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (_, body) = emulator.get_group("once").await;
    assert_eq!(container_view(&body)["restartCount"], 0);
    assert_eq!(current_state(&body), "Terminated");
}

#[tokio::test]
async fn entrypoint_shim_is_dropped() {
    let emulator = TestEmulator::start().await;
    let body = group_body(&["/opt/prefect/entrypoint.sh", "sh", "-c", "exit 4"]);
    emulator.create("shim", &body).await;
    let done = emulator
        .wait_for("shim", |g| current_state(g) == "Terminated")
        .await;
    assert_eq!(container_view(&done)["currentState"]["exitCode"], 4);
}

#[tokio::test]
async fn image_command_and_path_prepend_map_images() {
    let bin = tempfile::tempdir().unwrap();
    let script = bin.path().join("prefect");
    std::fs::write(&script, "#!/bin/sh\necho \"local prefect $*\"\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut config = EmulatorConfig::for_tests();
    config.path_prepend = vec![bin.path().to_path_buf()];
    config.image_command = vec!["example/tool:*=sh -c".parse::<ImageCommand>().unwrap()];
    let emulator = TestEmulator::with_config(config).await;

    let mut body = group_body(&["prefect", "flow-run", "execute"]);
    body["properties"]["containers"][0]["properties"]["image"] =
        json!("prefecthq/prefect:3-latest");
    emulator.create("via-path", &body).await;
    emulator
        .wait_for("via-path", |g| current_state(g) == "Terminated")
        .await;
    assert_eq!(
        emulator.logs("via-path", "").await,
        "local prefect flow-run execute\n"
    );

    let mut body = group_body(&["echo mapped; exit 5"]);
    body["properties"]["containers"][0]["properties"]["image"] = json!("example/tool:1");
    emulator.create("via-image", &body).await;
    let done = emulator
        .wait_for("via-image", |g| current_state(g) == "Terminated")
        .await;
    assert_eq!(container_view(&done)["currentState"]["exitCode"], 5);
    assert_eq!(emulator.logs("via-image", "").await, "mapped\n");
}

#[tokio::test]
async fn missing_command_terminates_with_127() {
    let emulator = TestEmulator::start().await;
    let mut body = group_body(&[]);
    body["properties"]["containers"][0]["properties"]
        .as_object_mut()
        .unwrap()
        .remove("command");
    emulator.create("no-command", &body).await;
    let done = emulator
        .wait_for("no-command", |g| current_state(g) == "Terminated")
        .await;
    let state = &container_view(&done)["currentState"];
    assert_eq!(state["exitCode"], 127);
    assert!(
        state["detailStatus"]
            .as_str()
            .unwrap()
            .contains("--image-command")
    );
}

#[tokio::test]
async fn shutdown_kills_every_process() {
    let emulator = TestEmulator::start().await;
    emulator
        .create("left-running", &group_body(&["sleep", "60"]))
        .await;
    emulator
        .wait_for("left-running", |g| current_state(g) == "Running")
        .await;
    let pid = emulator
        .pid("left-running")
        .await
        .expect("a running process");
    emulator.handle.shutdown().await;
    assert!(
        wait_gone(pid).await,
        "process group {pid} survived shutdown"
    );
}
