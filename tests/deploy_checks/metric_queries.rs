//! The dashboard and the alert rules query only metrics that `Metrics::encode` exports,
//! and the dashboard has a panel for every family.

use std::collections::BTreeSet;
use std::time::Duration;

use prefect_aci_worker::metrics::{Api, Metrics};
use regex::Regex;
use serde_json::Value;

use super::read;

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
    metrics.observe_prefect_request("read_work_pool", Some(200), Duration::from_millis(5));
    metrics.observe_arm_request("get", Some(200), Duration::from_millis(5));
    metrics.record_throttled(Api::Arm, "get");
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
