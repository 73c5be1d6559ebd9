//! The benchmark's figures, its pass/fail checks and the printed table.

use std::collections::BTreeMap;
use std::process::ExitStatus;
use std::time::Instant;

use serde_json::Value;

use crate::observe::{self, ProcessUsage, Sample};
use crate::prefect_api::RunView;

/// The Python worker GETs each container group once per `task_watch_poll_interval`, whose
/// default is 5 s, for as long as the run is active.
const PYTHON_POLL_SECONDS: f64 = 5.0;

/// The span in which every run was Running in Prefect, with emulator counters at both ends.
#[derive(Debug, Clone)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
    pub counters_start: Value,
    pub counters_end: Value,
}

impl Window {
    fn minutes(&self) -> f64 {
        self.end.duration_since(self.start).as_secs_f64() / 60.0
    }

    /// Requests of `operation` inside the window.
    fn delta(&self, operation: &str) -> u64 {
        observe::counter_total(&self.counters_end, operation)
            .saturating_sub(observe::counter_total(&self.counters_start, operation))
    }
}

/// Everything the scenario measured.
#[derive(Debug, Default)]
pub struct Figures {
    pub expected_runs: usize,
    /// Every run final and no container group left before the deadline.
    pub drained: bool,
    /// From the first run's creation to the drained state (or the deadline).
    pub drain_seconds: f64,
    pub window: Option<Window>,
    /// Emulator counters at the end.
    pub counters: Value,
    pub groups_left: usize,
    pub worker_metrics: Vec<Sample>,
    /// Time the worker ran before the final readings.
    pub worker_seconds: f64,
    pub usage: ProcessUsage,
    /// The worker's exit after one SIGTERM: `Some(None)` when it had to be killed.
    pub worker_exit: Option<Option<ExitStatus>>,
    /// The runs as Prefect shows them at the end.
    pub runs: Vec<RunView>,
}

impl Figures {
    pub fn new(expected_runs: usize) -> Figures {
        Figures {
            expected_runs,
            ..Figures::default()
        }
    }

    /// Container groups the emulator created (PUT returned 201).
    fn creates(&self) -> u64 {
        observe::counter_status(&self.counters, "create", "201")
    }

    /// Reads of one group per running run per minute inside the steady window.
    fn reads_per_run_minute(&self) -> Option<f64> {
        let window = self.window.as_ref()?;
        let run_minutes = self.expected_runs as f64 * window.minutes();
        (run_minutes > 0.0).then(|| window.delta("get") as f64 / run_minutes)
    }

    /// Descriptions of the checks that failed; empty when all passed.
    pub fn failed_checks(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if !self.drained {
            failures.push("runs or groups were left at the deadline".to_owned());
        }
        if self.creates() != self.expected_runs as u64 {
            failures.push(format!(
                "{} groups created for {} runs",
                self.creates(),
                self.expected_runs
            ));
        }
        if self.groups_left != 0 {
            failures.push(format!("{} groups left", self.groups_left));
        }
        let completed = self.runs.iter().filter(|r| r.state_type == "COMPLETED");
        if completed.count() != self.expected_runs {
            failures.push(format!("final states {}", census(&self.runs)));
        }
        let clean_exit = matches!(self.worker_exit, Some(Some(status)) if status.success());
        if !clean_exit {
            failures.push(format!("worker exit after SIGTERM: {}", self.exit_text()));
        }
        if self.reads_per_run_minute().is_none() {
            failures.push(
                "no steady window: the runs were never all Running long enough; \
                 raise --seconds"
                    .to_owned(),
            );
        }
        failures
    }

    fn exit_text(&self) -> String {
        match self.worker_exit {
            Some(Some(status)) => status.to_string(),
            Some(None) => "killed after ignoring SIGTERM".to_owned(),
            None => "not stopped".to_owned(),
        }
    }

    /// Seconds from each run's expected start to Prefect's Running, sorted.
    fn start_delays(&self) -> Vec<f64> {
        let mut delays: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|r| Some((r.start? - r.expected_start?).as_seconds_f64()))
            .collect();
        delays.sort_by(f64::total_cmp);
        delays
    }
}

/// `COMPLETED=50 CRASHED=1`.
pub fn census(runs: &[RunView]) -> String {
    let mut counts = BTreeMap::new();
    for run in runs {
        *counts.entry(run.state_type.as_str()).or_insert(0) += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{s}={n}")).collect();
    parts.join(" ")
}

/// Prints the machine facts, the figure table and the request breakdowns.
pub fn print(command: &str, figures: &Figures) {
    println!();
    println!("== prefect-aci-worker scale benchmark ==");
    for (key, value) in machine_facts(command) {
        println!("{key:<10} {value}");
    }
    println!();
    println!("{:<58} value", "figure");
    for (name, value) in figure_rows(figures) {
        println!("{name:<58} {value}");
    }
    println!();
    print_breakdown(
        "ARM requests by operation and status (emulator /admin/counters)",
        &emulator_rows(&figures.counters),
        figures.worker_seconds,
    );
    print_breakdown(
        "Prefect API calls by operation and status (worker /metrics)",
        &prefect_rows(&figures.worker_metrics),
        figures.worker_seconds,
    );
}

/// `("read_flow_run 200", 50.0)` rows from the worker's Prefect request counter.
fn prefect_rows(samples: &[Sample]) -> Vec<(String, f64)> {
    let mut rows: BTreeMap<String, f64> = BTreeMap::new();
    let family = samples
        .iter()
        .filter(|s| s.name == "prefect_aci_worker_prefect_requests_total");
    for sample in family {
        let label = |key: &str| sample.labels.get(key).map_or("", String::as_str);
        let key = format!("{} {}", label("operation"), label("status"));
        *rows.entry(key).or_insert(0.0) += sample.value;
    }
    rows.into_iter().collect()
}

fn figure_rows(f: &Figures) -> Vec<(&'static str, String)> {
    let delays = f.start_delays();
    let pct = |p| observe::percentile(&delays, p).map_or("n/a".into(), |d| format!("{d:.1}"));
    let window = f.window.as_ref();
    let lists_window = window.map_or("n/a".into(), |w| {
        format!(
            "{:.1}",
            w.delta("list") as f64 / w.minutes().max(f64::MIN_POSITIVE)
        )
    });
    let lists_all = observe::counter_total(&f.counters, "list") as f64 / (f.drain_seconds / 60.0);
    let reads = f
        .reads_per_run_minute()
        .map_or("n/a".into(), |r| format!("{r:.2}"));
    let python = 60.0 / PYTHON_POLL_SECONDS;
    let histogram = histogram_mean(
        &f.worker_metrics,
        "prefect_aci_worker_flow_run_start_delay_seconds",
    );
    let cpu = f.usage.cpu_seconds;
    vec![
        (
            "flow runs (final states)",
            format!("{} ({})", f.runs.len(), census(&f.runs)),
        ),
        (
            "container groups created (ARM PUT answered 201)",
            f.creates().to_string(),
        ),
        (
            "container groups left at the end",
            f.groups_left.to_string(),
        ),
        (
            "steady window: all runs Running in Prefect, seconds",
            window.map_or("n/a".into(), |w| format!("{:.0}", w.minutes() * 60.0)),
        ),
        ("ARM reads (GET group) per running run per minute", reads),
        (
            "  Python worker, analytic (one GET per 5 s poll)",
            format!("{python:.2}"),
        ),
        ("ARM list calls per minute, steady window", lists_window),
        (
            "ARM list calls per minute, whole run",
            format!("{lists_all:.1}"),
        ),
        (
            "start delay p50 / p95 / max, s (Prefect start_time)",
            format!("{} / {} / {}", pct(0.5), pct(0.95), pct(1.0)),
        ),
        (
            "start delay mean, s (worker histogram)",
            histogram.map_or("n/a".into(), |m| format!("{m:.1}")),
        ),
        (
            "drain time: first run created to all final, no groups, s",
            format!("{:.0}", f.drain_seconds),
        ),
        (
            "worker peak RSS (VmHWM), MiB",
            format!("{:.1}", f.usage.peak_rss_bytes as f64 / 1048576.0),
        ),
        ("worker exit after one SIGTERM", f.exit_text()),
        (
            "worker CPU (utime+stime), s",
            format!(
                "{cpu:.2} ({:.1} % of one core over {:.0} s)",
                100.0 * cpu / f.worker_seconds,
                f.worker_seconds
            ),
        ),
    ]
}

/// `_sum / _count` of a histogram, when it has observations.
fn histogram_mean(samples: &[Sample], name: &str) -> Option<f64> {
    let sum = observe::single(samples, &format!("{name}_sum"))?;
    let count = observe::single(samples, &format!("{name}_count"))?;
    (count > 0.0).then(|| sum / count)
}

/// `("get 200", 123.0)` rows from the emulator's counters.
fn emulator_rows(counters: &Value) -> Vec<(String, f64)> {
    let mut rows = Vec::new();
    for (operation, by_status) in counters.as_object().into_iter().flatten() {
        for (status, count) in by_status.as_object().into_iter().flatten() {
            rows.push((
                format!("{operation} {status}"),
                count.as_f64().unwrap_or(0.0),
            ));
        }
    }
    rows
}

fn print_breakdown(title: &str, rows: &[(String, f64)], seconds: f64) {
    println!("{title}");
    println!("  {:<40} {:>8} {:>10}", "operation", "calls", "per min");
    for (name, count) in rows {
        let per_minute = count / (seconds / 60.0);
        println!("  {name:<40} {count:>8.0} {per_minute:>10.1}");
    }
    println!();
}

/// Date, command, CPU count and model, memory, kernel and which worker build ran.
fn machine_facts(command: &str) -> Vec<(&'static str, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map_or("unknown".into(), |m| m.trim().to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let binary = env!("CARGO_BIN_EXE_prefect-aci-worker");
    let build = if binary.contains("/release/") {
        "release"
    } else {
        "debug"
    };
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    vec![
        ("date", now),
        ("command", command.to_owned()),
        ("nproc", cores.to_string()),
        ("cpu", model),
        ("memory", memory),
        ("kernel", kernel.trim().to_owned()),
        ("worker", format!("{build} build, {binary}")),
    ]
}
