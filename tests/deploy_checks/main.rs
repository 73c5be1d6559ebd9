//! Checks of the files under deploy/: promtool and shellcheck accept them, deploy.sh's dry
//! run prints every step, and the dashboard and alert rules name only exported metrics.
//! The custom role must grant every ARM operation of the client, and worker.json's
//! container group must be valid against the official ACI spec.
//!
//! promtool (Debian package `prometheus`) and shellcheck come from `make tools`. The spec
//! is read from `$CARGO_MANIFEST_DIR/../shared/specs/containerInstance.json` or from
//! `PREFECT_ACI_SPEC_FILE`. When a tool or the spec is missing, its test fails under
//! `CI=true` and otherwise prints that it skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use prefect_aci_worker::arm::ArmOperation;
use serde_json::Value;

mod arm_template;
mod metric_queries;
#[path = "../support/mod.rs"]
mod support;
mod worker_spec;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Finds `name` on PATH. When it is missing this panics under `CI=true` and otherwise
/// prints a skip notice and returns `None`.
fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        let message = format!(
            "{name} not found on PATH; install the Debian package `{package}` (make tools)"
        );
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{message}");
        }
        eprintln!("\n!!! SKIPPED: {message}\n");
    }
    found
}

fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed with {}:\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn promtool_accepts_scrape_config() {
    let Some(promtool) = tool("promtool", "prometheus") else {
        return;
    };
    let output = Command::new(promtool)
        .args(["check", "config", "deploy/prometheus/prometheus.yml"])
        .current_dir(repo())
        .output()
        .expect("run promtool");
    assert_success("promtool check config", &output);
}

#[test]
fn promtool_accepts_alert_rules() {
    let Some(promtool) = tool("promtool", "prometheus") else {
        return;
    };
    let output = Command::new(promtool)
        .args(["check", "rules", "deploy/prometheus/alerts.yml"])
        .current_dir(repo())
        .output()
        .expect("run promtool");
    assert_success("promtool check rules", &output);
}

/// Lists every `*.sh` file in the repository and every file under deploy/ that starts with
/// a shebang, skipping build output, virtual environments and git metadata.
fn shell_scripts() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![repo().to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if path.is_dir() {
                if !matches!(name.as_ref(), "target" | ".git" | ".venv" | "node_modules") {
                    pending.push(path);
                }
                continue;
            }
            let under_deploy = path.starts_with(repo().join("deploy"));
            let shebang =
                under_deploy && std::fs::read(&path).is_ok_and(|bytes| bytes.starts_with(b"#!"));
            if name.ends_with(".sh") || shebang {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn shellcheck_passes_every_script() {
    let scripts = shell_scripts();
    assert!(
        scripts.contains(&repo().join("deploy/azure/deploy.sh")),
        "deploy.sh not among {scripts:?}"
    );
    let Some(shellcheck) = tool("shellcheck", "shellcheck") else {
        return;
    };
    let output = Command::new(shellcheck)
        .arg("--external-sources")
        .args(&scripts)
        .current_dir(repo())
        .output()
        .expect("run shellcheck");
    assert_success("shellcheck", &output);
}

const SAMPLE_KEY: &str = "pnu_dry_run_secret_value";

fn dry_run(config: Option<&str>) -> Output {
    let mut command = Command::new("bash");
    command
        .arg(repo().join("deploy/azure/deploy.sh"))
        .arg("--dry-run")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PREFECT_API_KEY", SAMPLE_KEY);
    if let Some(config) = config {
        command.args(["--config", config]);
    }
    command.output().expect("run deploy.sh")
}

#[test]
fn dry_run_prints_every_step() {
    let output = dry_run(Some("deploy/azure/sample.env"));
    assert_success("deploy.sh --dry-run", &output);
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    let steps = [
        "+ az account set --subscription 00000000-0000-0000-0000-000000000000",
        "+ az group create --name prefect-flows --location westeurope",
        "+ az acr create --name prefectflowsacr --resource-group prefect-flows",
        "+ az identity create --name prefect-aci-worker --resource-group prefect-flows",
        "+ az role definition create --role-definition @",
        "--role Prefect\\ ACI\\ Worker\\ \\(prefect-flows\\) --scope /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/prefect-flows",
        "--role AcrPull --scope",
        "+ az acr build --registry prefectflowsacr --image prefect-aci-worker:latest",
        "+ az deployment group create --resource-group prefect-flows",
        "--template-file",
        "deploy/azure/worker.json",
        "--request PATCH",
        "/work_pools/aci-pool",
        "== done",
    ];
    let mut rest = stdout.as_str();
    for step in steps {
        let at = rest
            .find(step)
            .unwrap_or_else(|| panic!("step `{step}` missing or out of order in:\n{stdout}"));
        rest = &rest[at + step.len()..];
    }
}

#[test]
fn dry_run_sets_pool_defaults() {
    let output = dry_run(Some("deploy/azure/sample.env"));
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    for variable in [
        "identities",
        "image_registry",
        "subscription_id",
        "resource_group_name",
    ] {
        let assignment = format!(".variables.properties.{variable}.default =");
        assert!(stdout.contains(&assignment), "{assignment} missing");
    }
}

#[test]
fn dry_run_hides_api_key() {
    let output = dry_run(Some("deploy/azure/sample.env"));
    assert_success("deploy.sh --dry-run", &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stdout.contains(SAMPLE_KEY), "API key printed:\n{stdout}");
    assert!(!stderr.contains(SAMPLE_KEY), "API key printed:\n{stderr}");
}

#[test]
fn dry_run_names_missing_settings() {
    let output = dry_run(None);
    assert!(!output.status.success(), "deploy.sh ran without settings");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("missing settings: SUBSCRIPTION_ID RESOURCE_GROUP LOCATION"),
        "{stderr}"
    );
    assert!(!stderr.contains("PREFECT_API_KEY"), "{stderr}");
}

/// Returns the actions of deploy/azure/role-definition.json. `az role definition create`
/// accepts the key spelled `Actions` or `actions`, so both are read.
fn role_actions() -> Vec<String> {
    let role: Value = serde_json::from_str(&read("deploy/azure/role-definition.json"))
        .expect("role-definition.json is JSON");
    let actions = role
        .get("Actions")
        .or_else(|| role.get("actions"))
        .and_then(Value::as_array)
        .expect("role-definition.json has an Actions array");
    actions
        .iter()
        .map(|a| a.as_str().expect("action string").to_owned())
        .collect()
}

#[test]
fn role_grants_no_deployments() {
    let actions = role_actions();
    for action in &actions {
        let lower = action.to_ascii_lowercase();
        assert!(
            !lower.starts_with("microsoft.resources/deployments"),
            "{action}"
        );
        assert!(!action.contains('*'), "wildcard action {action}");
    }
    let required = [
        "Microsoft.ContainerInstance/containerGroups/read",
        "Microsoft.ContainerInstance/containerGroups/write",
        "Microsoft.ContainerInstance/containerGroups/delete",
        "Microsoft.ContainerInstance/containerGroups/stop/action",
        "Microsoft.ContainerInstance/containerGroups/containers/logs/read",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
        "Microsoft.Network/virtualNetworks/subnets/join/action",
    ];
    for action in required {
        assert!(actions.iter().any(|a| a == action), "{action} missing");
    }
}

/// Azure compares action strings case-insensitively, so the role may spell them either way.
#[test]
fn role_covers_every_arm_operation() {
    let actions = role_actions();
    let missing: Vec<String> = ArmOperation::ALL
        .iter()
        .filter(|op| {
            !actions
                .iter()
                .any(|a| a.eq_ignore_ascii_case(op.rbac_action()))
        })
        .map(|op| format!("{op:?} needs {}", op.rbac_action()))
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/azure/role-definition.json lacks actions for ARM operations: {}",
        missing.join("; ")
    );
}

#[test]
fn worker_template_probes_and_secret() {
    let template: Value =
        serde_json::from_str(&read("deploy/azure/worker.json")).expect("worker.json is JSON");
    assert_eq!(
        template["parameters"]["prefectApiKey"]["type"],
        "securestring"
    );
    let container = &template["resources"][0]["properties"]["containers"][0]["properties"];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    let env = container["environmentVariables"]
        .as_array()
        .expect("env array");
    let key = env
        .iter()
        .find(|v| v["name"] == "PREFECT_API_KEY")
        .expect("PREFECT_API_KEY set");
    assert!(
        key.get("value").is_none(),
        "API key passed as a plain value"
    );
    assert_eq!(key["secureValue"], "[parameters('prefectApiKey')]");
    let identity = &template["resources"][0]["identity"];
    assert_eq!(identity["type"], "UserAssigned");
}

#[test]
fn dockerfile_runs_nonroot_release_binary() {
    let dockerfile = read("deploy/docker/Dockerfile");
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert_eq!(stages, 2, "expected a builder and a runtime stage");
    assert!(dockerfile.contains("cargo build --release --locked"));
    assert!(dockerfile.contains("FROM gcr.io/distroless/cc-debian12:nonroot"));
    assert!(dockerfile.contains("\nUSER nonroot:nonroot\n"));
    assert!(dockerfile.contains("\nEXPOSE 8080\n"));
}

#[test]
fn deploy_script_is_executable() {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(repo().join("deploy/azure/deploy.sh"))
        .expect("deploy.sh exists")
        .permissions()
        .mode();
    assert_ne!(mode & 0o111, 0, "deploy.sh mode {mode:o} is not executable");
}
