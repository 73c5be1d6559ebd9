//! A real Prefect 3 server from the test virtualenv, started on 127.0.0.1 for one test.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Time the server gets to pass its health check. It took about 15 s on the 2-core machine
/// these tests were written on.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `prefect server start`, killed with its process group on drop.
pub struct PrefectServer {
    child: Child,
    /// API base URL, like `http://127.0.0.1:PORT/api`.
    pub api_url: String,
    _home: tempfile::TempDir,
}

/// Returns the Prefect 3 virtualenv: PREFECT_ACI_TEST_VENV3, else `.venv/prefect3` in the
/// checkout.
fn venv() -> PathBuf {
    match std::env::var_os("PREFECT_ACI_TEST_VENV3") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/prefect3"),
    }
}

impl PrefectServer {
    /// Starts a server, or returns `None` after saying loudly why it cannot. Under CI
    /// (`CI=true`) a missing virtualenv fails the test instead.
    pub async fn start() -> Option<Self> {
        let prefect = venv().join("bin/prefect");
        if !prefect.exists() {
            let message = format!(
                "SKIPPED: no Prefect at {}; run `make venv` or set PREFECT_ACI_TEST_VENV3",
                prefect.display()
            );
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
            eprintln!("{message}");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let home = tempfile::tempdir().unwrap();
        let database = format!("sqlite+aiosqlite:///{}/prefect.db", home.path().display());
        let child = Command::new(&prefect)
            .args([
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .env("PREFECT_HOME", home.path())
            .env("PREFECT_API_DATABASE_CONNECTION_URL", database)
            .env("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
            .env("PREFECT_SERVER_UI_ENABLED", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("prefect server starts");
        let server = Self {
            child,
            api_url: format!("http://127.0.0.1:{port}/api"),
            _home: home,
        };
        server.wait_until_healthy().await;
        Some(server)
    }

    async fn wait_until_healthy(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let url = format!("{}/health", self.api_url);
        while Instant::now() < deadline {
            let healthy = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if healthy.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("prefect server at {url} did not become healthy within {STARTUP_TIMEOUT:?}");
    }
}

impl Drop for PrefectServer {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this test started.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}
