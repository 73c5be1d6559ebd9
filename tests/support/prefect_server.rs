//! Real `prefect server start` processes for integration tests.
//!
//! Each test binary starts at most one server per Prefect version, lazily, and shares it
//! between its tests. A watchdog shell process stops the server's process group and deletes
//! its temporary `PREFECT_HOME` once the test process is gone, because statics are never
//! dropped and `PR_SET_PDEATHSIG` would fire when the spawning test thread ends.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a dropped server gets to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long to wait for `/api/health`. A first start with migrations takes about 15 s on
/// an idle machine; two servers starting together on 2 cores take several times that.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(180);
const HEALTH_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// The Prefect major versions the tests run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefectVersion {
    /// prefect==3.9.1
    V3,
    /// prefect==2.20.27
    V2,
}

impl PrefectVersion {
    fn venv_env(self) -> &'static str {
        match self {
            Self::V3 => "PREFECT_ACI_TEST_VENV3",
            Self::V2 => "PREFECT_ACI_TEST_VENV2",
        }
    }

    fn venv_dir_name(self) -> &'static str {
        match self {
            Self::V3 => "prefect3",
            Self::V2 => "prefect2",
        }
    }
}

/// A running Prefect server on 127.0.0.1 with its own temporary `PREFECT_HOME`.
#[derive(Debug)]
pub struct PrefectServer {
    pub version: PrefectVersion,
    /// `http://127.0.0.1:<port>/api`
    pub api_url: String,
    pub venv: PathBuf,
    pub home: PathBuf,
    /// `prefect server start`, leader of its own process group.
    server: Mutex<Child>,
    /// The shell that stops the server once the test process exits.
    watchdog: Mutex<Child>,
}

static PREFECT3: OnceLock<PrefectServer> = OnceLock::new();
static PREFECT2: OnceLock<PrefectServer> = OnceLock::new();

/// Returns the shared Prefect 3.9.1 server of this test binary, starting it on first use.
pub fn prefect3_server() -> &'static PrefectServer {
    PREFECT3.get_or_init(|| PrefectServer::start(PrefectVersion::V3, &[]))
}

/// Returns the shared Prefect 2.20.27 server of this test binary, starting it on first use.
pub fn prefect2_server() -> &'static PrefectServer {
    PREFECT2.get_or_init(|| PrefectServer::start(PrefectVersion::V2, &[]))
}

/// Returns the venv directory of `version`: `$PREFECT_ACI_TEST_VENV3`/`2`, else
/// `$CARGO_MANIFEST_DIR/.venv/prefect3`/`2`. Panics when it has no `prefect` executable.
pub fn venv_dir(version: PrefectVersion) -> PathBuf {
    let dir = std::env::var_os(version.venv_env())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(".venv")
                .join(version.venv_dir_name())
        });
    assert!(
        dir.join("bin/prefect").is_file(),
        "no Prefect venv at {} (from {} or the default path): run `make venv` to create it",
        dir.display(),
        version.venv_env(),
    );
    dir
}

impl PrefectServer {
    /// Starts a new server of `version` with `extra_env` added to its environment, and
    /// waits until `/api/health` returns 200. The server stops when this value is dropped or,
    /// for servers kept in a static, when the test process exits.
    pub fn start(version: PrefectVersion, extra_env: &[(&str, &str)]) -> PrefectServer {
        let venv = venv_dir(version);
        let home = tempfile::Builder::new()
            .prefix("prefect-aci-test-home-")
            .tempdir()
            .expect("create a temporary PREFECT_HOME")
            .keep();
        let port = free_port();
        let log = std::fs::File::create(home.join("server.log")).expect("create server.log");
        let mut command = Command::new(venv.join("bin/prefect"));
        command
            .args([
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .env_remove("PREFECT_API_URL")
            .env_remove("PREFECT_API_KEY")
            .env_remove("PREFECT_PROFILE")
            .env("PREFECT_HOME", &home)
            .env("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
            .env("PREFECT_UI_ENABLED", "false")
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .process_group(0);
        let child = command.spawn().expect("spawn `prefect server start`");
        let watchdog = spawn_watchdog(child.id(), &home);
        let server = PrefectServer {
            version,
            api_url: format!("http://127.0.0.1:{port}/api"),
            venv,
            home,
            server: Mutex::new(child),
            watchdog: Mutex::new(watchdog),
        };
        server.wait_until_healthy(port);
        server
    }

    fn pid(&self) -> u32 {
        self.server.lock().unwrap().id()
    }

    fn has_exited(&self) -> bool {
        let mut child = self.server.lock().unwrap();
        !matches!(child.try_wait(), Ok(None))
    }

    fn wait_until_healthy(&self, port: u16) {
        let started = Instant::now();
        while started.elapsed() < HEALTH_TIMEOUT {
            if health_ok(port) {
                return;
            }
            if self.has_exited() {
                panic!("prefect server exited early:\n{}", self.log_tail());
            }
            std::thread::sleep(HEALTH_POLL_INTERVAL);
        }
        panic!(
            "prefect server at {} not healthy after {HEALTH_TIMEOUT:?}:\n{}",
            self.api_url,
            self.log_tail()
        );
    }

    /// Returns the last 4,000 bytes of the server's output.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.home.join("server.log")).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text[start..].to_owned()
    }

    /// Builds a command for `program` (`python` or `prefect`) from the venv, pointed at this server.
    pub fn venv_command(&self, program: &str) -> Command {
        let mut command = Command::new(self.venv.join("bin").join(program));
        command
            .env_remove("PREFECT_API_KEY")
            .env_remove("PREFECT_PROFILE")
            .env("PREFECT_API_URL", &self.api_url)
            .env("PREFECT_HOME", &self.home)
            .env("PREFECT_SERVER_ANALYTICS_ENABLED", "false");
        command
    }

    /// Runs `python -c script` in the venv against this server; panics if it fails.
    pub fn run_python(&self, script: &str) -> Output {
        let output = self
            .venv_command("python")
            .args(["-c", script])
            .output()
            .expect("run the venv's python");
        assert_success("python", &output);
        output
    }

    /// Runs `prefect args...` in the venv against this server; panics if it fails.
    pub fn run_prefect(&self, args: &[&str]) -> Output {
        let output = self
            .venv_command("prefect")
            .args(args)
            .output()
            .expect("run the venv's prefect");
        assert_success("prefect", &output);
        output
    }
}

impl Drop for PrefectServer {
    /// Stops the server's process group: SIGTERM, then SIGKILL after [`STOP_GRACE`].
    fn drop(&mut self) {
        let pgid = self.pid() as i32;
        signal_group(pgid, libc::SIGTERM);
        let started = Instant::now();
        while !self.has_exited() && started.elapsed() < STOP_GRACE {
            std::thread::sleep(HEALTH_POLL_INTERVAL);
        }
        if !self.has_exited() {
            signal_group(pgid, libc::SIGKILL);
        }
        let _ = self.server.lock().unwrap().wait();
        let _ = std::fs::remove_dir_all(&self.home);
        // The watchdog has nothing left to do; it exits with this process either way.
        let mut watchdog = self.watchdog.lock().unwrap();
        let _ = watchdog.kill();
        let _ = watchdog.wait();
    }
}

fn signal_group(pgid: i32, signal: libc::c_int) {
    // SAFETY: kill(2) with a negative pid only signals the process group this helper
    // created for the server; it touches no memory.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Starts a shell that waits for this test process to exit, then stops the process group
/// `pgid` (TERM, then KILL after 10 s) and deletes `home`.
fn spawn_watchdog(pgid: u32, home: &Path) -> Child {
    let script = format!(
        "while kill -0 {parent} 2>/dev/null; do sleep 1; done; \
         kill -TERM -{pgid} 2>/dev/null; \
         for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 -{pgid} 2>/dev/null || break; sleep 1; done; \
         kill -KILL -{pgid} 2>/dev/null; rm -rf '{home}'",
        parent = std::process::id(),
        home = home.display(),
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn the server watchdog")
}

fn assert_success(program: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{program} failed with {}:\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// True if `GET /api/health` on `port` returns 200.
fn health_ok(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /api/health HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200")
}
