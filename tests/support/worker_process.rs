//! The `prefect-aci-worker start` binary as a child process of a test.
//!
//! Its stderr goes to a file in the stack's scratch directory, kept across restarts, so a
//! failing test can print what the worker logged. The process gets SIGKILL when the handle
//! is dropped and, through `PR_SET_PDEATHSIG`, when the test thread that started it ends.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::stack::Stack;

/// Bytes of the worker log that failure messages show.
const LOG_TAIL_BYTES: usize = 6000;
/// Variable that sets the workers' `--log-level` (default `info`), for debugging a test.
const LOG_LEVEL_ENV: &str = "PREFECT_ACI_E2E_LOG_LEVEL";
/// How long a worker gets to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Settings of one worker process. The defaults make every loop of the worker fast, so a
/// simulated run finishes within a few seconds.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub limit: Option<usize>,
    pub lease_seconds: f64,
    pub orphan_grace_seconds: f64,
    pub final_state_grace_seconds: f64,
    /// More arguments after the defaults.
    pub extra_args: Vec<String>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            limit: None,
            lease_seconds: 10.0,
            orphan_grace_seconds: 5.0,
            final_state_grace_seconds: 15.0,
            extra_args: Vec::new(),
        }
    }
}

/// A worker process on a test's pool; it can be killed and started again with the same
/// name, settings and log file.
pub struct Worker {
    pub name: String,
    pub http_port: u16,
    command: Vec<String>,
    env: Vec<(String, String)>,
    log_path: PathBuf,
    child: Option<Child>,
    starts: u32,
    http: reqwest::Client,
}

impl Worker {
    /// Starts `prefect-aci-worker start` on `stack`'s pool and emulator.
    pub fn start(stack: &Stack, name: &str, options: WorkerOptions) -> Worker {
        let http_port = free_port();
        let home = stack.scratch_dir().join(format!("home-{name}"));
        std::fs::create_dir_all(&home).expect("create the worker's PREFECT_HOME");
        let env = vec![
            ("PREFECT_API_URL".to_owned(), stack.prefect.api_url.clone()),
            ("PREFECT_HOME".to_owned(), home.display().to_string()),
            (
                "IDENTITY_ENDPOINT".to_owned(),
                stack.emulator.identity_endpoint(),
            ),
            (
                "IDENTITY_HEADER".to_owned(),
                stack.emulator.identity_header().to_owned(),
            ),
        ];
        let mut worker = Worker {
            name: name.to_owned(),
            http_port,
            command: start_arguments(stack, name, http_port, &options),
            env,
            log_path: stack.scratch_dir().join(format!("worker-{name}.log")),
            child: None,
            starts: 0,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("build the reqwest client"),
        };
        worker.spawn();
        worker
    }

    /// Starts the process again after [`Worker::kill`] or [`Worker::stop`].
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a worker that still runs");
        self.spawn();
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open the worker log");
        writeln!(
            log,
            "===== test harness: worker start #{} =====",
            self.starts
        )
        .expect("write to the worker log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_prefect-aci-worker"));
        command
            .args(&self.command)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log);
        // SAFETY: prctl(2) in the child between fork and exec only sets a process attribute.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(command.spawn().expect("spawn prefect-aci-worker"));
    }

    /// Sends SIGKILL and waits for the process to end.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM, waits up to 20 s for the process to exit and returns its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self
            .child
            .take()
            .expect("stop of a worker that is not running");
        signal(&child, libc::SIGTERM);
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait for the worker") {
                return status;
            }
            if started.elapsed() > STOP_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "worker did not exit within {STOP_TIMEOUT:?} of SIGTERM:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Returns the exit status if the process has ended.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|child| child.try_wait().expect("poll the worker"))
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Returns the last 6,000 bytes the worker wrote to stderr, across every start.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let mut start = text.len().saturating_sub(LOG_TAIL_BYTES);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_owned()
    }

    /// Sends `GET path` to the worker's HTTP server and returns the status and body, or
    /// `None` when the request fails.
    pub async fn http_get(&self, path: &str) -> Option<(u16, String)> {
        let url = format!("http://127.0.0.1:{}{path}", self.http_port);
        let response = self.http.get(url).send().await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.unwrap_or_default()))
    }

    /// Waits until `/readyz` returns 200; panics after `timeout` with the log tail.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let started = Instant::now();
        let mut last = None;
        while started.elapsed() < timeout {
            if let Some(status) = self.exit_status() {
                panic!(
                    "worker exited with {status} before ready:\n{}",
                    self.log_tail()
                );
            }
            last = self.http_get("/readyz").await;
            if matches!(last, Some((200, _))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "worker not ready after {timeout:?}, last /readyz response {last:?}:\n{}",
            self.log_tail()
        );
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- worker {} log tail ({}) ---\n{}",
                self.name,
                self.log_path.display(),
                self.log_tail()
            );
        }
    }
}

/// Builds the `start` command line: the flags of the worker's contract plus short
/// intervals for every loop (reads of running groups every 2 s, logs every 1 s, cleanup
/// retries every 2 s) so that tests take seconds, not minutes.
fn start_arguments(
    stack: &Stack,
    name: &str,
    http_port: u16,
    options: &WorkerOptions,
) -> Vec<String> {
    let log_level = std::env::var(LOG_LEVEL_ENV).unwrap_or_else(|_| "info".to_owned());
    let mut arguments: Vec<String> = [
        "start",
        "--pool",
        &stack.pool,
        "--name",
        name,
        "--http-addr",
        &format!("127.0.0.1:{http_port}"),
        "--arm-endpoint",
        &stack.emulator.arm_endpoint(),
        "--azure-auth",
        "managed-identity",
        "--query-seconds",
        "1",
        "--heartbeat-seconds",
        "2",
        "--lease-seconds",
        &options.lease_seconds.to_string(),
        "--orphan-grace-seconds",
        &options.orphan_grace_seconds.to_string(),
        "--final-state-grace-seconds",
        &options.final_state_grace_seconds.to_string(),
        "--read-interval-running-seconds",
        "2",
        "--log-interval-seconds",
        "1",
        "--cleanup-retry-seconds",
        "2",
        "--min-poll-interval-seconds",
        "0.5",
        "--log-level",
        &log_level,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(limit) = options.limit {
        arguments.extend(["--limit".to_owned(), limit.to_string()]);
    }
    arguments.extend(options.extra_args.iter().cloned());
    arguments
}

fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill(2) on the pid of a child this handle still owns (not yet waited for).
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}
