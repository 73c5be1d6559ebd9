//! The `aci-emulator` binary: its help, the loopback guard, and a run driven over HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser};
use prefect_aci_worker::emulator::{EmulatorConfig, Operation};
use serde_json::{Value, json};

use crate::support::*;

const BINARY: &str = env!("CARGO_BIN_EXE_aci-emulator");

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    config: EmulatorConfig,
}

#[test]
fn help_mentions_every_flag() {
    let output = Command::new(BINARY).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    let command = Flags::command();
    let mut checked = 0;
    for argument in command.get_arguments() {
        let Some(long) = argument.get_long() else {
            continue;
        };
        assert!(help.contains(&format!("--{long}")), "--help lacks --{long}");
        let env = argument.get_env().expect("every flag has a variable");
        assert!(help.contains(env.to_str().unwrap()), "--help lacks {env:?}");
        checked += 1;
    }
    assert!(checked > 40, "only {checked} flags found");
    for unit in ["milliseconds", "seconds", "0 to 1"] {
        assert!(help.contains(unit), "--help never mentions {unit}");
    }
}

#[test]
fn fault_flags_parse_per_operation() {
    let flags = Flags::try_parse_from([
        "aci-emulator",
        "--fault-throttle",
        "get=0.25,list=1",
        "--fault-hang",
        "all",
        "--fault-latency",
        "create=150",
    ])
    .unwrap();
    let faults = flags.config.faults.to_faults();
    assert_eq!(faults.operation(Operation::Get).throttle_probability, 0.25);
    assert_eq!(faults.operation(Operation::List).throttle_probability, 1.0);
    assert_eq!(faults.operation(Operation::Create).latency_ms, 150);
    assert!(Operation::ALL.iter().all(|op| faults.operation(*op).hang));
    assert!(Flags::try_parse_from(["aci-emulator", "--fault-throttle", "fly=1"]).is_err());
    assert!(Flags::try_parse_from(["aci-emulator", "--fault-error-status", "418"]).is_err());
}

#[test]
fn non_loopback_listen_is_refused() {
    let mut child = Command::new(BINARY)
        .args(["--listen", "0.0.0.0:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("aci-emulator kept running on 0.0.0.0");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("--allow-remote"), "stderr: {stderr}");
}

#[tokio::test]
async fn binary_runs_a_command_and_reports_exit_code() {
    let mut child = tokio::process::Command::new(BINARY)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--no-auth",
            "--pending-ms",
            "20",
            "--creating-ms",
            "20",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap().into_owned_fd().unwrap();
    let (sender, receiver) = tokio::sync::oneshot::channel();
    // The reader keeps the pipe open until the binary exits, reading every line.
    let reader = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(std::fs::File::from(stdout)).lines();
        let first = lines
            .next()
            .expect("a first line")
            .expect("readable stdout");
        let _ = sender.send(first);
        lines.count()
    });
    let first_line = tokio::time::timeout(WAIT, receiver).await.unwrap().unwrap();
    let endpoint = first_line.split_whitespace().last().unwrap().to_string();
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "first line: {first_line}"
    );

    let client = reqwest::Client::new();
    let rg = format!(
        "{endpoint}/subscriptions/{SUBSCRIPTION}/resourcegroups/{RESOURCE_GROUP}?api-version=2021-04-01"
    );
    client
        .put(&rg)
        .json(&json!({ "location": LOCATION }))
        .send()
        .await
        .unwrap();
    let group = format!(
        "{endpoint}/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.ContainerInstance/containerGroups/hi?api-version={API_VERSION}"
    );
    let body = group_body(&["sh", "-c", "echo hi; exit 3"]);
    let created = client.put(&group).json(&body).send().await.unwrap();
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    let deadline = Instant::now() + WAIT;
    let exit_code = loop {
        let answer: Value = client
            .get(&group)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if current_state(&answer) == "Terminated" {
            break container_view(&answer)["currentState"]["exitCode"].clone();
        }
        assert!(Instant::now() < deadline, "no exit code: {answer}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(exit_code, 3);

    let pid = child.id().unwrap() as i32;
    // SAFETY: kill(2) with the id of the child this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert_eq!(reader.await.unwrap(), 3, "the other endpoint lines");
}
