//! Scale benchmark: N flow runs at once through the worker binary, against a real Prefect
//! server and the emulator in simulated mode. Prints ARM read rates, start delays, drain
//! time and the worker's memory and CPU; see docs/benchmarks.md.
//!
//! Runs only under `cargo bench --bench scale`. `cargo test --all-targets` also runs this
//! binary, without `--bench`; it then prints that it skipped and exits at once.

#[path = "../support/prefect_server.rs"]
mod prefect_server;

mod observe;
mod prefect_api;
mod report;
mod stack;

use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value;
use time::OffsetDateTime;

use prefect_api::Prefect;
use report::{Figures, Window};
use stack::{Emulator, Worker};

/// Time between samples of Prefect states, emulator counters and the worker's usage.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(2);
/// Wait after every run shows Running before the steady window opens: one query interval
/// (10 s, up to 13 s with jitter) for the worker to see Running in Prefect and stop reading
/// every `task_watch_poll_interval`, plus one sample.
const SETTLE: Duration = Duration::from_secs(15);
/// Time allowed after the runs' own duration for claims, creates, final states and deletes.
const DRAIN_ALLOWANCE: Duration = Duration::from_secs(300);
/// Emulator group quota when the run count is small; ACI's default is 100 per region.
const MIN_GROUP_QUOTA: usize = 100;
const POOL: &str = "scale-bench";

/// Sizes of the scenario.
#[derive(Debug, Parser)]
#[command(name = "scale", about = "Scale benchmark of prefect-aci-worker")]
struct Args {
    /// Flow runs created at once, all scheduled at the same time.
    #[arg(long, env = "SCALE_BENCH_RUNS", default_value_t = 50)]
    runs: usize,
    /// Seconds each simulated container runs.
    #[arg(long, env = "SCALE_BENCH_SECONDS", default_value_t = 120.0)]
    seconds: f64,
    /// Keep the worker's and the emulator's logs after a passing run; a failing run always
    /// keeps them. Their directory is printed at the end.
    #[arg(long, env = "SCALE_BENCH_KEEP_LOGS")]
    keep_logs: bool,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("scale benchmark skipped: it runs only under `cargo bench --bench scale`");
        return;
    }
    let args = Args::parse();
    assert!(
        args.runs > 0,
        "--runs must be at least 1, got {}",
        args.runs
    );
    assert!(
        args.seconds > 0.0,
        "--seconds must be positive, got {}",
        args.seconds
    );
    println!(
        "scale benchmark: {} runs of {} s; starting Prefect",
        args.runs, args.seconds
    );
    let server = prefect_server::PrefectServer::start(prefect_server::PrefectVersion::V3, &[]);
    let dir = tempfile::Builder::new()
        .prefix("prefect-aci-scale-bench-")
        .tempdir()
        .expect("create a temporary directory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime");
    let figures = runtime.block_on(run(&args, &server.api_url, dir.path()));
    report::print(&args_summary(&args), &figures);
    let failures = figures.failed_checks();
    if args.keep_logs || !failures.is_empty() {
        println!("logs kept in {}", dir.keep().display());
    }
    if !failures.is_empty() {
        panic!("scale benchmark checks failed: {}", failures.join("; "));
    }
}

fn args_summary(args: &Args) -> String {
    format!(
        "cargo bench --bench scale -- --runs {} --seconds {}",
        args.runs, args.seconds
    )
}

/// Starts the emulator and the worker, runs the scenario and collects the figures.
async fn run(args: &Args, api_url: &str, dir: &std::path::Path) -> Figures {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build an HTTP client");
    let emulator = Emulator::start(&http, dir, args.runs.max(MIN_GROUP_QUOTA) + 10).await;
    let worker_started = Instant::now();
    let mut worker = Worker::start(&http, dir, api_url, &emulator, POOL).await;
    println!("worker ready; creating {} flow runs", args.runs);
    let prefect = Prefect {
        http: http.clone(),
        api_url: api_url.to_owned(),
    };
    let deployment = prefect.create_deployment(POOL, args.seconds).await;
    let scheduled_at = OffsetDateTime::now_utc();
    let created_at = Instant::now();
    for _ in 0..args.runs {
        prefect.create_run(deployment, scheduled_at).await;
    }
    let watch = Watch {
        http: &http,
        prefect: &prefect,
        emulator: &emulator,
        deployment,
        runs: args.runs,
    };
    let deadline = Duration::from_secs_f64(args.seconds) + DRAIN_ALLOWANCE;
    let mut figures = watch.until_drained(created_at, deadline).await;
    let metrics = worker.metrics(&http).await;
    figures.worker_metrics = observe::parse_metrics(&metrics);
    figures.worker_seconds = worker_started.elapsed().as_secs_f64();
    figures.usage = observe::process_usage(worker.process.pid()).unwrap_or_else(|| {
        panic!(
            "the worker exited early; its log ends:\n{}",
            worker.process.log_tail(4000)
        )
    });
    figures.runs = prefect.runs(deployment).await;
    figures.worker_exit = Some(worker.process.stop());
    if !figures.drained {
        eprintln!(
            "worker log ends:\n{}\nemulator log ends:\n{}",
            worker.process.log_tail(6000),
            emulator.process.log_tail(2000)
        );
    }
    figures
}

/// What the sampling loop reads.
struct Watch<'a> {
    http: &'a reqwest::Client,
    prefect: &'a Prefect,
    emulator: &'a Emulator,
    deployment: uuid::Uuid,
    runs: usize,
}

impl Watch<'_> {
    /// Samples until every run is final and no group is left, or `deadline` after
    /// `created_at` passed.
    async fn until_drained(&self, created_at: Instant, deadline: Duration) -> Figures {
        let mut figures = Figures::new(self.runs);
        let mut all_running_at: Option<Instant> = None;
        let mut last_report = Instant::now();
        while created_at.elapsed() < deadline {
            tokio::time::sleep(SAMPLE_INTERVAL).await;
            let runs = self.prefect.runs(self.deployment).await;
            let counters = self.emulator.counters(self.http).await;
            let running = runs.iter().filter(|r| r.state_type == "RUNNING").count();
            let finals = runs.iter().filter(|r| r.is_final()).count();
            let now = Instant::now();
            if running == self.runs {
                let since = *all_running_at.get_or_insert(now);
                if now.duration_since(since) >= SETTLE {
                    extend_window(&mut figures.window, now, &counters);
                }
            }
            if last_report.elapsed() >= Duration::from_secs(20) {
                last_report = now;
                println!(
                    "  t={:>4.0}s {}",
                    created_at.elapsed().as_secs_f64(),
                    report::census(&runs)
                );
            }
            if finals == self.runs && self.emulator.group_count(self.http).await == 0 {
                figures.drained = true;
                break;
            }
        }
        figures.drain_seconds = created_at.elapsed().as_secs_f64();
        figures.counters = self.emulator.counters(self.http).await;
        figures.groups_left = self.emulator.group_count(self.http).await;
        figures
    }
}

/// Opens the steady window at the first call and moves its end to `now`.
fn extend_window(window: &mut Option<Window>, now: Instant, counters: &Value) {
    match window {
        None => {
            *window = Some(Window {
                start: now,
                end: now,
                counters_start: counters.clone(),
                counters_end: counters.clone(),
            })
        }
        Some(window) => {
            window.end = now;
            window.counters_end = counters.clone();
        }
    }
}
