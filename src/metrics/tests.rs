use super::*;

fn recorded_once() -> Arc<Metrics> {
    let metrics = Metrics::new();
    metrics.record_reconcile(Duration::from_millis(30), Ok(()));
    metrics.record_reconcile(Duration::from_millis(40), Err("arm"));
    metrics.record_claimed();
    metrics.record_submitted();
    metrics.record_crashed("exit_code");
    metrics.record_cancelled();
    metrics.set_groups_by_phase(&[("running", 3), ("creating", 1)]);
    metrics.record_orphan_deleted();
    metrics.observe_prefect_request("read_work_pool", Some(200), Duration::from_millis(12));
    metrics.observe_arm_request("get", None, Duration::from_secs(2));
    metrics.record_throttled(Api::Arm, "list");
    metrics.set_arm_ratelimit_remaining("subscription-reads", 249);
    metrics.observe_start_delay(Duration::from_secs(45));
    metrics.set_oldest_waiting(Duration::from_secs(90));
    metrics.set_ready(true);
    metrics
}

/// Returns the sample lines (not comments) whose metric name is `name`.
fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            let end = l.find(['{', ' ']).unwrap_or(l.len());
            &l[..end] == name
        })
        .collect()
}

#[test]
fn every_family_appears_after_recording() {
    let text = recorded_once().encode();
    let families = [
        "prefect_aci_worker_reconcile",
        "prefect_aci_worker_reconcile_errors",
        "prefect_aci_worker_reconcile_duration_seconds",
        "prefect_aci_worker_last_reconcile_success_timestamp_seconds",
        "prefect_aci_worker_flow_runs_claimed",
        "prefect_aci_worker_flow_runs_submitted",
        "prefect_aci_worker_flow_runs_crashed",
        "prefect_aci_worker_flow_runs_cancelled",
        "prefect_aci_worker_container_groups",
        "prefect_aci_worker_orphans_deleted",
        "prefect_aci_worker_prefect_requests",
        "prefect_aci_worker_prefect_request_duration_seconds",
        "prefect_aci_worker_arm_requests",
        "prefect_aci_worker_arm_request_duration_seconds",
        "prefect_aci_worker_throttled_requests",
        "prefect_aci_worker_arm_ratelimit_remaining",
        "prefect_aci_worker_flow_run_start_delay_seconds",
        "prefect_aci_worker_oldest_waiting_flow_run_seconds",
        "prefect_aci_worker_ready",
        "prefect_aci_worker_build",
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_start_time_seconds",
        "process_threads",
        "process_open_fds",
        "process_max_fds",
    ];
    for family in families {
        let type_line = format!("# TYPE {family} ");
        assert!(text.contains(&type_line), "{family} missing from:\n{text}");
    }
}

#[test]
fn output_ends_with_eof() {
    assert!(Metrics::new().encode().ends_with("# EOF\n"));
}

#[test]
fn reconcile_result_and_error_kind() {
    let text = recorded_once().encode();
    let totals = samples(&text, "prefect_aci_worker_reconcile_total");
    assert!(totals.contains(&r#"prefect_aci_worker_reconcile_total{result="success"} 1"#));
    assert!(totals.contains(&r#"prefect_aci_worker_reconcile_total{result="error"} 1"#));
    let errors = samples(&text, "prefect_aci_worker_reconcile_errors_total");
    assert_eq!(
        errors,
        [r#"prefect_aci_worker_reconcile_errors_total{kind="arm"} 1"#]
    );
    let count = samples(&text, "prefect_aci_worker_reconcile_duration_seconds_count");
    assert_eq!(
        count,
        ["prefect_aci_worker_reconcile_duration_seconds_count 2"]
    );
}

#[test]
fn request_status_none_is_error() {
    let text = recorded_once().encode();
    let arm = samples(&text, "prefect_aci_worker_arm_requests_total");
    let expected = r#"prefect_aci_worker_arm_requests_total{operation="get",status="error"} 1"#;
    assert_eq!(arm, [expected]);
    let prefect = samples(&text, "prefect_aci_worker_prefect_requests_total");
    let expected =
        r#"prefect_aci_worker_prefect_requests_total{operation="read_work_pool",status="200"} 1"#;
    assert_eq!(prefect, [expected]);
}

#[test]
fn throttled_labels_name_api() {
    let text = recorded_once().encode();
    let throttled = samples(&text, "prefect_aci_worker_throttled_requests_total");
    let expected = r#"prefect_aci_worker_throttled_requests_total{api="arm",operation="list"} 1"#;
    assert_eq!(throttled, [expected]);
}

#[test]
fn groups_by_phase_replaces_old_phases() {
    let metrics = recorded_once();
    metrics.set_groups_by_phase(&[("running", 5)]);
    let text = metrics.encode();
    let groups = samples(&text, "prefect_aci_worker_container_groups");
    assert_eq!(
        groups,
        [r#"prefect_aci_worker_container_groups{phase="running"} 5"#]
    );
}

#[test]
fn gauges_hold_last_value() {
    let metrics = recorded_once();
    metrics.set_ready(false);
    metrics.set_arm_ratelimit_remaining("subscription-reads", 12);
    let text = metrics.encode();
    assert_eq!(
        samples(&text, "prefect_aci_worker_ready"),
        ["prefect_aci_worker_ready 0"]
    );
    let headroom = samples(&text, "prefect_aci_worker_arm_ratelimit_remaining");
    let expected = r#"prefect_aci_worker_arm_ratelimit_remaining{header="subscription-reads"} 12"#;
    assert_eq!(headroom, [expected]);
    let waiting = samples(&text, "prefect_aci_worker_oldest_waiting_flow_run_seconds");
    assert_eq!(
        waiting,
        ["prefect_aci_worker_oldest_waiting_flow_run_seconds 90.0"]
    );
}

#[test]
fn success_sets_timestamp() {
    let text = recorded_once().encode();
    let line = samples(
        &text,
        "prefect_aci_worker_last_reconcile_success_timestamp_seconds",
    );
    let value: f64 = line[0].rsplit(' ').next().unwrap().parse().unwrap();
    assert!(value > 1.7e9, "timestamp {value} is not a recent Unix time");
}

#[test]
fn build_info_has_version() {
    let text = Metrics::new().encode();
    let expected = format!(
        r#"prefect_aci_worker_build_info{{version="{}"}} 1"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        samples(&text, "prefect_aci_worker_build_info"),
        [expected.as_str()]
    );
}

#[test]
fn start_delay_lands_in_bucket() {
    let text = recorded_once().encode();
    let buckets = samples(
        &text,
        "prefect_aci_worker_flow_run_start_delay_seconds_bucket",
    );
    assert!(
        buckets.contains(&r#"prefect_aci_worker_flow_run_start_delay_seconds_bucket{le="30.0"} 0"#)
    );
    assert!(
        buckets.contains(&r#"prefect_aci_worker_flow_run_start_delay_seconds_bucket{le="60.0"} 1"#)
    );
}
