//! The processes the benchmark measures: the emulator and the worker binaries, each a
//! child killed when its handle drops, and the ARM and Prefect objects they need.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The emulator's managed identity endpoint requires this header value.
const IDENTITY_HEADER: &str = "scale-bench-identity";
/// Subscription, resource group and location the benchmark's groups are created in.
pub const SUBSCRIPTION: &str = "5ca1e000-0000-4000-8000-000000000000";
pub const RESOURCE_GROUP: &str = "scale-bench";
const LOCATION: &str = "eastus";
/// Time a child gets to return 2xx on its first endpoint. The worker waits for Prefect and an
/// ARM token before `/readyz` turns 200, which takes a few seconds on 2 cores.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Time a child gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(200);

/// A child process, stopped with SIGTERM (then SIGKILL) when dropped.
pub struct ChildProcess {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl ChildProcess {
    /// Spawns `command` with stdout and stderr in `<dir>/<name>.log`. The child gets
    /// SIGKILL when the spawning thread ends, so spawn only from the main thread: then no
    /// child outlives the benchmark, even when it is killed.
    fn spawn(name: &'static str, mut command: Command, dir: &Path) -> ChildProcess {
        let log = dir.join(format!("{name}.log"));
        let file = File::create(&log).expect("create a child log file");
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone the log handle"))
            .stderr(file);
        // SAFETY: prctl(2) only sets this child's parent-death signal; it runs between fork
        // and exec and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        ChildProcess { name, child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Returns the last `bytes` bytes of the child's output.
    pub fn log_tail(&self, bytes: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut start = text.len().saturating_sub(bytes);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_owned()
    }
}

impl ChildProcess {
    /// Sends SIGTERM, waits up to [`STOP_GRACE`] for the exit, then kills the child.
    /// Returns the exit status, or `None` when the child had to be killed.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        // SAFETY: kill(2) on the pid of a child this handle spawned and has not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let started = Instant::now();
        while started.elapsed() < STOP_GRACE {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(POLL);
        }
        eprintln!(
            "{} ignored SIGTERM for {STOP_GRACE:?}; killing it",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Returns a free port on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// The emulator binary in simulated mode, with its ARM base URL.
pub struct Emulator {
    pub process: ChildProcess,
    pub base: String,
}

impl Emulator {
    /// Starts `aci-emulator --simulate` on a free port, allowing `max_groups` groups, and
    /// creates the benchmark's resource group.
    pub async fn start(http: &reqwest::Client, dir: &Path, max_groups: usize) -> Emulator {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_aci-emulator"));
        command
            .args(["--listen", &format!("127.0.0.1:{port}"), "--simulate"])
            .args(["--identity-header", IDENTITY_HEADER])
            .args(["--max-container-groups", &max_groups.to_string()])
            .env("RUST_LOG", "warn");
        let process = ChildProcess::spawn("aci-emulator", command, dir);
        let base = format!("http://127.0.0.1:{port}");
        wait_for_ok(http, &format!("{base}/admin/counters"), &process).await;
        let emulator = Emulator { process, base };
        emulator.create_resource_group(http).await;
        emulator
    }

    async fn create_resource_group(&self, http: &reqwest::Client) {
        let token: Value = http
            .get(format!("{}/msi/token", self.base))
            .query(&[
                ("api-version", "2019-08-01"),
                ("resource", "https://management.azure.com"),
            ])
            .header("x-identity-header", IDENTITY_HEADER)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("token from the emulator")
            .json()
            .await
            .expect("token JSON");
        let url = format!(
            "{}/subscriptions/{SUBSCRIPTION}/resourcegroups/{RESOURCE_GROUP}",
            self.base
        );
        http.put(url)
            .query(&[("api-version", "2021-04-01")])
            .bearer_auth(token["access_token"].as_str().expect("access_token"))
            .json(&json!({ "location": LOCATION }))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("create the resource group");
    }

    /// `GET /admin/counters`: `{"<operation>": {"<status>": count}}`.
    pub async fn counters(&self, http: &reqwest::Client) -> Value {
        get_json(http, &format!("{}/admin/counters", self.base)).await
    }

    /// Number of container groups the emulator holds.
    pub async fn group_count(&self, http: &reqwest::Client) -> usize {
        let groups = get_json(http, &format!("{}/admin/groups", self.base)).await;
        groups.as_array().map_or(0, Vec::len)
    }
}

/// The worker binary, started against Prefect and the emulator.
pub struct Worker {
    pub process: ChildProcess,
    pub metrics_url: String,
}

impl Worker {
    /// Starts `prefect-aci-worker start` for `pool` with the managed identity credential of
    /// the emulator, and waits until `/readyz` returns 200.
    pub async fn start(
        http: &reqwest::Client,
        dir: &Path,
        api_url: &str,
        emulator: &Emulator,
        pool: &str,
    ) -> Worker {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_prefect-aci-worker"));
        command
            .args(["start", "--pool", pool, "--name", "scale-bench-worker"])
            .args(["--http-addr", &format!("127.0.0.1:{port}")])
            .env_remove("PREFECT_API_KEY")
            .env_remove("PREFECT_PROFILE")
            .env("PREFECT_HOME", dir)
            .env("PREFECT_API_URL", api_url)
            .env("PREFECT_ACI_ARM_ENDPOINT", &emulator.base)
            .env("PREFECT_ACI_AZURE_AUTH", "managed-identity")
            .env("IDENTITY_ENDPOINT", format!("{}/msi/token", emulator.base))
            .env("IDENTITY_HEADER", IDENTITY_HEADER);
        let process = ChildProcess::spawn("prefect-aci-worker", command, dir);
        let base = format!("http://127.0.0.1:{port}");
        wait_for_ok(http, &format!("{base}/readyz"), &process).await;
        Worker {
            process,
            metrics_url: format!("{base}/metrics"),
        }
    }

    /// Returns the worker's `/metrics` text.
    pub async fn metrics(&self, http: &reqwest::Client) -> String {
        http.get(&self.metrics_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("scrape the worker's /metrics")
            .text()
            .await
            .expect("metrics text")
    }
}

/// Polls `url` until it returns 2xx, and panics with the child's log when it exits or the
/// start timeout passes.
async fn wait_for_ok(http: &reqwest::Client, url: &str, process: &ChildProcess) {
    let started = Instant::now();
    while started.elapsed() < START_TIMEOUT {
        let answer = http.get(url).timeout(Duration::from_secs(2)).send().await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!(
        "{} did not answer {url} within {START_TIMEOUT:?}; its log ends:\n{}",
        process.name,
        process.log_tail(4000)
    );
}

/// GETs `url` and parses the JSON response. Panics on failure.
pub async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    http.get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: body is not JSON: {e}"))
}
