//! Checks of the files under deploy/: promtool and shellcheck accept them, deploy.sh's dry
//! run prints every step, and the dashboard and alert rules name only exported metrics.
//!
//! promtool (Debian package `prometheus`) and shellcheck come from `make tools`. When one
//! is missing, its test fails under `CI=true` and otherwise prints that it skipped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use prefect_aci_worker::metrics::{Api, Metrics};
use regex::Regex;
use serde_json::Value;

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

/// Returns the sample names (`..._total`, `..._bucket` and so on) and the family names
/// of `Metrics::encode()` after one of every recording.
fn exported() -> (BTreeSet<String>, BTreeSet<String>) {
    let metrics = Metrics::new();
    metrics.record_reconcile(Duration::from_millis(5), Ok(()));
    metrics.record_reconcile(Duration::from_millis(5), Err("arm"));
    metrics.record_claimed();
    metrics.record_submitted();
    metrics.record_crashed("exit_code");
    metrics.record_cancelled();
    metrics.set_groups_by_phase(&[("running", 1)]);
    metrics.record_orphan_deleted();
    metrics.observe_prefect_request("read_flow_runs", Some(200), Duration::from_millis(5));
    metrics.observe_arm_request("get_container_group", Some(200), Duration::from_millis(5));
    metrics.record_throttled(Api::Arm, "get_container_group");
    metrics.set_arm_ratelimit_remaining("subscription-reads", 100);
    metrics.observe_start_delay(Duration::from_secs(30));
    metrics.set_oldest_waiting(Duration::from_secs(3));
    metrics.set_ready(true);
    let text = metrics.encode();

    let mut samples = BTreeSet::new();
    let mut families = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families.insert(rest.split(' ').next().unwrap().to_owned());
        } else if !line.starts_with('#') {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            samples.insert(line[..end].to_owned());
        }
    }
    (samples, families)
}

/// Returns the metric names a PromQL expression selects: identifiers that are not
/// functions, keywords, label names, grouping labels or Grafana variables.
fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    let strip = [
        r#""(?:[^"\\]|\\.)*""#,
        r"\{[^}]*\}",
        r"\[[^\]]*\]",
        r"\$\w+",
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
    ];
    let mut text = expr.to_owned();
    for pattern in strip {
        text = Regex::new(pattern)
            .unwrap()
            .replace_all(&text, " ")
            .into_owned();
    }
    let identifier = Regex::new(r"[A-Za-z_:][A-Za-z0-9_:]*").unwrap();
    let keywords = ["and", "or", "unless", "bool", "offset", "inf", "nan"];
    let mut names = BTreeSet::new();
    for found in identifier.find_iter(&text) {
        let before = text[..found.start()].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.') {
            continue; // the exponent or unit of a number, such as 1e3
        }
        let is_call = text[found.end()..].trim_start().starts_with('(');
        if !is_call && !keywords.contains(&found.as_str()) {
            names.insert(found.as_str().to_owned());
        }
    }
    names
}

#[test]
fn promql_extractor_finds_metric_names() {
    let expr = r#"sum by (le, operation) (rate(a_bucket{x="y{z}"}[5m])) / on (i) b_total > 1e3 and time() - c"#;
    let names: Vec<String> = promql_metric_names(expr).into_iter().collect();
    assert_eq!(names, ["a_bucket", "b_total", "c"]);
}

/// Collects the `expr` strings of the dashboard's panel targets.
fn dashboard_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    _ => dashboard_exprs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| dashboard_exprs(item, out)),
        _ => {}
    }
}

/// Collects the `expr:` values of the alert rules, single-line or `|` blocks.
fn alert_exprs(yaml: &str) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(value) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        if value.trim() != "|" {
            exprs.push(value.trim().to_owned());
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let mut block = String::new();
        while let Some(next) = lines.next_if(|l| l.len() - l.trim_start().len() > indent) {
            block.push_str(next.trim());
            block.push(' ');
        }
        exprs.push(block);
    }
    exprs
}

fn assert_only_exported(source: &str, exprs: &[String], extra: &[&str]) {
    let (samples, _) = exported();
    assert!(!exprs.is_empty(), "no queries found in {source}");
    for expr in exprs {
        for name in promql_metric_names(expr) {
            let known = samples.contains(&name) || extra.contains(&name.as_str());
            assert!(
                known,
                "{source} names `{name}`, which the worker does not export: {expr}"
            );
        }
    }
}

#[test]
fn dashboard_names_only_exported_metrics() {
    let dashboard: Value = serde_json::from_str(&read("deploy/grafana/dashboard.json"))
        .expect("dashboard.json is JSON");
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard["panels"], &mut exprs);
    assert_only_exported("dashboard.json", &exprs, &[]);

    let variable = Regex::new(r"label_values\((\w+)").unwrap();
    let (samples, _) = exported();
    for found in variable.captures_iter(&dashboard["templating"].to_string()) {
        assert!(
            samples.contains(&found[1]),
            "template variable names `{}`",
            &found[1]
        );
    }
}

#[test]
fn dashboard_covers_every_family() {
    let dashboard: Value =
        serde_json::from_str(&read("deploy/grafana/dashboard.json")).expect("JSON");
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard["panels"], &mut exprs);
    let used: BTreeSet<String> = exprs.iter().flat_map(|e| promql_metric_names(e)).collect();
    let covers = |family: &str, name: &str| {
        let suffix = name.strip_prefix(family).unwrap_or("-");
        ["", "_total", "_bucket", "_sum", "_count", "_info"].contains(&suffix)
    };
    let (_, families) = exported();
    for family in &families {
        let shown = used.iter().any(|name| covers(family, name));
        assert!(shown, "no dashboard panel queries the family {family}");
    }
}

#[test]
fn alerts_name_only_exported_metrics() {
    let exprs = alert_exprs(&read("deploy/prometheus/alerts.yml"));
    assert_eq!(
        exprs.len(),
        9,
        "expected 9 alert expressions, found {exprs:?}"
    );
    // Prometheus itself records `up` for every scrape target.
    assert_only_exported("alerts.yml", &exprs, &["up"]);
}

#[test]
fn role_grants_no_deployments() {
    let role: Value = serde_json::from_str(&read("deploy/azure/role-definition.json"))
        .expect("role-definition.json is JSON");
    let actions: Vec<&str> = role["Actions"]
        .as_array()
        .expect("Actions array")
        .iter()
        .map(|a| a.as_str().expect("action string"))
        .collect();
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
        assert!(actions.contains(&action), "{action} missing");
    }
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
