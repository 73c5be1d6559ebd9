//! Injected faults, set through the handle or the admin API.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use prefect_aci_worker::emulator::{EmulatorConfig, Faults, Operation, OperationFaults};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

fn operation_faults(operation: Operation, faults: OperationFaults) -> Faults {
    let mut all = Faults::default();
    all.operations.insert(operation, faults);
    all
}

/// Polls the group for `duration` and collects the provisioning states seen.
async fn provisioning_states_seen(
    emulator: &TestEmulator,
    name: &str,
    duration: Duration,
) -> BTreeSet<String> {
    let deadline = Instant::now() + duration;
    let mut seen = BTreeSet::new();
    while Instant::now() < deadline {
        let (_, body) = emulator.get_group(name).await;
        seen.insert(provisioning_state(&body).to_string());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    seen
}

#[tokio::test]
async fn throttle_returns_429_with_retry_after() {
    let emulator = TestEmulator::start().await;
    let faults = OperationFaults {
        throttle_probability: 1.0,
        retry_after_seconds: 7,
        ..Default::default()
    };
    emulator
        .handle
        .set_faults(operation_faults(Operation::Get, faults));
    let response = emulator.get(&emulator.group_url("any", "")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests");
    let other = emulator
        .get(&format!(
            "{}?api-version={API_VERSION}",
            emulator.groups_url()
        ))
        .await;
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn server_error_uses_the_configured_status() {
    let emulator = TestEmulator::start().await;
    let faults = OperationFaults {
        error_probability: 1.0,
        error_status: 503,
        ..Default::default()
    };
    emulator
        .handle
        .set_faults(operation_faults(Operation::Create, faults));
    let response = emulator
        .put(&emulator.group_url("g", ""), &group_body(&["true"]))
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ServiceUnavailable");
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let emulator = TestEmulator::start().await;
    let faults = OperationFaults {
        latency_ms: 300,
        ..Default::default()
    };
    emulator
        .handle
        .set_faults(operation_faults(Operation::List, faults));
    let started = Instant::now();
    let response = emulator
        .get(&format!(
            "{}?api-version={API_VERSION}",
            emulator.groups_url()
        ))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn hang_never_responds() {
    let emulator = TestEmulator::start().await;
    let faults = OperationFaults {
        hang: true,
        ..Default::default()
    };
    emulator
        .handle
        .set_faults(operation_faults(Operation::Get, faults));
    let result = emulator
        .client
        .get(emulator.group_url("any", ""))
        .bearer_auth(&emulator.token)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    let error = result.expect_err("a hanging request has no answer");
    assert!(error.is_timeout(), "not a timeout: {error}");
    emulator.handle.shutdown().await;
}

#[tokio::test]
async fn seeded_faults_repeat() {
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let mut config = EmulatorConfig::for_tests();
        config.faults.seed = 42;
        config.faults.fault_throttle = vec!["get=0.5".parse().unwrap()];
        let emulator = TestEmulator::with_config(config).await;
        let mut run = Vec::new();
        for _ in 0..20 {
            run.push(
                emulator
                    .get(&emulator.group_url("any", ""))
                    .await
                    .status()
                    .as_u16(),
            );
        }
        statuses.push(run);
    }
    assert_eq!(statuses[0], statuses[1]);
    assert!(statuses[0].contains(&429));
    assert!(statuses[0].contains(&404));
}

#[tokio::test]
async fn image_pull_failure_fails_provisioning() {
    let emulator = TestEmulator::start().await;
    emulator.handle.set_faults(Faults {
        image_pull_failure: Some("bad.example/*".into()),
        ..Default::default()
    });
    let mut body = group_body(&["true"]);
    body["properties"]["containers"][0]["properties"]["image"] = json!("bad.example/app:1");
    emulator.create("unpullable", &body).await;
    let failed = emulator
        .wait_for("unpullable", |g| provisioning_state(g) == "Failed")
        .await;
    let events = failed["properties"]["instanceView"]["events"].to_string();
    assert!(
        events.contains("InaccessibleImage"),
        "no InaccessibleImage event: {failed}"
    );
    assert_eq!(current_state(&failed), "Waiting");
    assert_eq!(emulator.pid("unpullable").await, None);
}

#[tokio::test]
async fn quota_exceeded_rejects_creates() {
    let emulator = TestEmulator::start().await;
    emulator.handle.set_faults(Faults {
        quota_exceeded: true,
        ..Default::default()
    });
    let response = emulator
        .put(&emulator.group_url("over", ""), &group_body(&["true"]))
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ContainerGroupQuotaReached");

    let mut config = EmulatorConfig::for_tests();
    config.max_container_groups = 1;
    let limited = TestEmulator::with_config(config).await;
    limited.create("first", &group_body(&["true"])).await;
    let second = limited
        .put(&limited.group_url("second", ""), &group_body(&["true"]))
        .await;
    assert_eq!(second.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn group_vanishes_after_start() {
    let emulator = TestEmulator::start().await;
    emulator.handle.set_faults(Faults {
        vanish_after_seconds: Some(0.3),
        ..Default::default()
    });
    emulator
        .create("vanishing", &group_body(&["sleep", "60"]))
        .await;
    emulator
        .wait_for("vanishing", |g| current_state(g) == "Running")
        .await;
    let pid = emulator.pid("vanishing").await.expect("a running process");
    emulator
        .wait_for("vanishing", |g| g["error"]["code"] == "ResourceNotFound")
        .await;
    assert!(wait_gone(pid).await, "process group {pid} survived");
}

#[tokio::test]
async fn admin_deletes_a_group_out_of_band() {
    let emulator = TestEmulator::start().await;
    emulator
        .create("removed", &group_body(&["sleep", "60"]))
        .await;
    let path = format!("/groups/{SUBSCRIPTION}/{RESOURCE_GROUP}/removed");
    let response = emulator.admin(Method::DELETE, &path, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, _) = emulator.get_group("removed").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn slow_delete_shows_deleting() {
    let emulator = TestEmulator::start().await;
    emulator.handle.set_faults(Faults {
        slow_delete_ms: 600,
        ..Default::default()
    });
    emulator.create("slow", &group_body(&["sleep", "60"])).await;
    let response = emulator.delete(&emulator.group_url("slow", "")).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(response.headers().contains_key("retry-after"));
    let (_, deleting) = emulator.get_group("slow").await;
    assert_eq!(provisioning_state(&deleting), "Deleting");
    assert_eq!(emulator.get(&location).await.status(), StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        emulator.get(&location).await.status(),
        StatusCode::NO_CONTENT
    );
    let (status, _) = emulator.get_group("slow").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn instance_view_is_missing_for_first_reads() {
    let emulator = TestEmulator::start().await;
    emulator.handle.set_faults(Faults {
        no_instance_view_reads: 2,
        ..Default::default()
    });
    emulator.create("late-view", &group_body(&["true"])).await;
    for _ in 0..2 {
        let (_, body) = emulator.get_group("late-view").await;
        assert!(
            body["properties"].get("instanceView").is_none(),
            "instance view present: {body}"
        );
    }
    let (_, body) = emulator.get_group("late-view").await;
    assert!(body["properties"]["instanceView"].is_object());
}

#[tokio::test]
async fn ignored_stop_keeps_running() {
    let emulator = TestEmulator::start().await;
    emulator.handle.set_faults(Faults {
        ignore_stop: true,
        ..Default::default()
    });
    emulator
        .create("stubborn", &group_body(&["sleep", "60"]))
        .await;
    emulator
        .wait_for("stubborn", |g| current_state(g) == "Running")
        .await;
    let pid = emulator.pid("stubborn").await.expect("a running process");
    let response = emulator
        .post(&emulator.group_url("stubborn", "/stop"))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, body) = emulator.get_group("stubborn").await;
    assert_eq!(current_state(&body), "Running");
    assert!(process_group_alive(pid));
}

#[tokio::test]
async fn unhealthy_loop_cycles_provisioning_state() {
    let emulator = TestEmulator::start().await;
    emulator.handle.set_faults(Faults {
        unhealthy_loop_cycles: Some(0),
        ..Default::default()
    });
    emulator
        .create("unhealthy", &group_body(&["sleep", "60"]))
        .await;
    emulator
        .wait_for("unhealthy", |g| current_state(g) == "Running")
        .await;
    let seen = provisioning_states_seen(&emulator, "unhealthy", Duration::from_millis(600)).await;
    assert!(seen.contains("Unhealthy"), "seen {seen:?}");
    assert!(seen.contains("Repairing"), "seen {seen:?}");
}

#[tokio::test]
async fn repairing_loop_delays_the_start() {
    let emulator = TestEmulator::start().await;
    emulator.handle.set_faults(Faults {
        repairing_loop_cycles: Some(0),
        ..Default::default()
    });
    emulator.create("repairing", &group_body(&["true"])).await;
    let seen = provisioning_states_seen(&emulator, "repairing", Duration::from_millis(600)).await;
    assert!(seen.contains("Repairing"), "seen {seen:?}");
    assert!(!seen.contains("Succeeded"), "seen {seen:?}");
    assert_eq!(emulator.pid("repairing").await, None);
}

#[tokio::test]
async fn admin_faults_round_trip() {
    let emulator = TestEmulator::start().await;
    let faults = json!({
        "operations": { "delete": { "throttle_probability": 1.0, "retry_after_seconds": 3 } },
        "slow_delete_ms": 10
    });
    let response = emulator.admin(Method::PUT, "/faults", Some(faults)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let read: Value = emulator
        .admin(Method::GET, "/faults", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["operations"]["delete"]["throttle_probability"], 1.0);
    assert_eq!(read["operations"]["delete"]["error_status"], 500);
    assert_eq!(read["slow_delete_ms"], 10);
    let throttled = emulator.delete(&emulator.group_url("any", "")).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["retry-after"], "3");

    emulator.admin(Method::POST, "/reset", None).await;
    let read: Value = emulator
        .admin(Method::GET, "/faults", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["slow_delete_ms"], 0);
}

#[tokio::test]
async fn token_faults_apply_to_the_identity_endpoint() {
    let emulator = TestEmulator::start().await;
    let faults = OperationFaults {
        error_probability: 1.0,
        ..Default::default()
    };
    emulator
        .handle
        .set_faults(operation_faults(Operation::Token, faults));
    let url = format!(
        "{}?api-version=2019-08-01&resource=https://management.azure.com",
        emulator.handle.identity_endpoint()
    );
    let response = emulator
        .client
        .get(url)
        .header("x-identity-header", emulator.handle.identity_header())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
