//! The whole product on this machine for end-to-end tests: the shared Prefect server, an
//! in-process ACI emulator per test, a work pool per test, and the worker binary as a child
//! process that tests can stop, SIGKILL and start again.
//!
//! The image decides how the emulator runs a container. Images under [`SIM_REGISTRY`] are
//! simulated: no process runs, and the emulator proposes Running, then Completed or Failed,
//! as the engine would. Every other image runs its command as a local process with the
//! Prefect venv first on PATH, so `prefect flow-run execute` runs the real engine.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use prefect_aci_worker::emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use serde_json::{Value, json};
use uuid::Uuid;

use super::prefect_rest::{PrefectRest, RunState};
use super::prefect_server::{PrefectServer, prefect3_server};
pub use super::worker_process::{Worker, WorkerOptions};

/// Subscription id every test uses; the emulator accepts any.
pub const SUBSCRIPTION: &str = "5e2e0000-0000-4000-8000-00000000e2e0";
pub const RESOURCE_GROUP: &str = "rg-e2e";
pub const LOCATION: &str = "westeurope";
/// Registry of simulated images: the emulator runs no process for them.
pub const SIM_REGISTRY: &str = "sim.invalid";
/// Image of simulated flow containers.
pub const SIM_IMAGE: &str = "sim.invalid/prefect:3";
/// Image of flow containers that run the real engine from the venv.
pub const ENGINE_IMAGE: &str = "prefecthq/prefect:3-python3.11";
/// Name of the example flow in `deploy/demo/flows.py`.
pub const DEMO_FLOW: &str = "aci-demo";
/// Provisioning steps of the emulator (Pending, then Creating), milliseconds.
const PROVISIONING_STEP_MS: u64 = 100;
/// How often waits poll Prefect or the emulator.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
const ARM_API_VERSION: &str = "2026-05-01";

static PYTHON_TEMPLATE: OnceLock<Value> = OnceLock::new();

/// Returns the base job template of prefect-azure 0.4.13's ACI worker, as `prefect work-pool
/// get-default-base-job-template --type azure-container-instance` prints it (read once).
pub fn python_worker_template(server: &PrefectServer) -> Value {
    PYTHON_TEMPLATE
        .get_or_init(|| {
            let output = server.run_prefect(&[
                "work-pool",
                "get-default-base-job-template",
                "--type",
                "azure-container-instance",
            ]);
            serde_json::from_slice(&output.stdout).expect("the default template is JSON")
        })
        .clone()
}

/// Directory of the example flow.
pub fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/demo")
}

/// One test's emulator, work pool and scratch directory on the shared Prefect server.
pub struct Stack {
    pub prefect: &'static PrefectServer,
    pub rest: PrefectRest,
    pub emulator: EmulatorHandle,
    pub pool: String,
    http: reqwest::Client,
    scratch: tempfile::TempDir,
}

impl Stack {
    /// Starts an emulator with [`emulator_config`], creates the resource group in it and a
    /// pool named after `test` with the Python worker's template, whose defaults point at
    /// that resource group and the simulated image.
    pub async fn start(test: &str) -> Stack {
        Stack::start_with(test, emulator_config()).await
    }

    /// Like [`Stack::start`] with a custom emulator configuration.
    pub async fn start_with(test: &str, config: EmulatorConfig) -> Stack {
        let prefect = tokio::task::spawn_blocking(prefect3_server)
            .await
            .expect("start the Prefect server");
        let emulator = Emulator::start(config).await.expect("start the emulator");
        let stack = Stack {
            prefect,
            rest: PrefectRest::new(&prefect.api_url),
            emulator,
            pool: unique(test),
            http: reqwest::Client::new(),
            scratch: tempfile::Builder::new()
                .prefix("prefect-aci-e2e-")
                .tempdir()
                .expect("create a scratch directory"),
        };
        stack.create_resource_group().await;
        let template = tokio::task::spawn_blocking(move || python_worker_template(prefect))
            .await
            .expect("read the Python worker's template");
        stack
            .rest
            .create_work_pool(&stack.pool, &with_test_defaults(template))
            .await;
        stack
    }

    pub fn scratch_dir(&self) -> &Path {
        self.scratch.path()
    }

    /// Starts a worker named `name` on this stack's pool.
    pub fn start_worker(&self, name: &str, options: WorkerOptions) -> Worker {
        Worker::start(self, name, options)
    }

    async fn create_resource_group(&self) {
        let url = format!(
            "{}/subscriptions/{SUBSCRIPTION}/resourcegroups/{RESOURCE_GROUP}?api-version=2021-04-01",
            self.emulator.arm_endpoint()
        );
        let response = self
            .http
            .put(url)
            .bearer_auth(self.emulator.issue_token())
            .json(&json!({"location": LOCATION}))
            .send()
            .await
            .expect("create the resource group");
        assert!(
            response.status().is_success(),
            "resource group create returned {}",
            response.status()
        );
    }

    /// Creates a deployment of a flow named `flow` whose containers are simulated and run
    /// for `seconds`, then exit with `exit_code`. Returns the deployment id.
    pub async fn simulated_deployment(&self, flow: &str, seconds: f64, exit_code: i32) -> String {
        let flow_id = self.rest.create_flow(flow).await;
        let job_variables = json!({
            "image": SIM_IMAGE,
            "env": {
                "ACI_EMULATOR_SIM_SECONDS": seconds.to_string(),
                "ACI_EMULATOR_SIM_EXIT_CODE": exit_code.to_string(),
            },
        });
        self.rest
            .create_deployment(
                &flow_id,
                &unique("sim"),
                &self.pool,
                &job_variables,
                &json!({}),
            )
            .await
    }

    /// Creates a deployment of the example flow that runs the real engine, pulling the flow
    /// from `deploy/demo`. `job_variables` are merged over the engine image.
    pub async fn engine_deployment(&self, job_variables: Value) -> String {
        let flow_id = self.rest.create_flow(DEMO_FLOW).await;
        let mut variables = json!({"image": ENGINE_IMAGE});
        if let (Some(base), Some(extra)) = (variables.as_object_mut(), job_variables.as_object()) {
            base.extend(extra.clone());
        }
        let extra = json!({
            "entrypoint": "flows.py:aci_demo",
            "pull_steps": [{
                "prefect.deployments.steps.set_working_directory": {
                    "directory": demo_dir().display().to_string(),
                },
            }],
        });
        self.rest
            .create_deployment(&flow_id, &unique("engine"), &self.pool, &variables, &extra)
            .await
    }

    /// Returns every container group in the emulator, as `GET /admin/groups` lists them.
    pub async fn groups(&self) -> Vec<Value> {
        let value = self.admin_get("/groups").await;
        value.as_array().cloned().unwrap_or_default()
    }

    /// Returns the names of every container group in the emulator.
    pub async fn group_names(&self) -> Vec<String> {
        self.groups()
            .await
            .iter()
            .filter_map(|g| g["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// Returns the emulator's request counters: `{"<operation>": {"<status>": count}}`.
    pub async fn counters(&self) -> Value {
        self.admin_get("/counters").await
    }

    /// Replaces the emulator's faults, as `PUT /admin/faults` does.
    pub async fn set_faults(&self, faults: Value) {
        let response = self
            .http
            .put(format!("{}/faults", self.emulator.admin_url()))
            .json(&faults)
            .send()
            .await
            .expect("PUT /admin/faults");
        assert!(
            response.status().is_success(),
            "PUT /admin/faults returned {}: {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }

    /// Deletes a group behind the worker's back, as someone in the portal would.
    pub async fn delete_group_out_of_band(&self, name: &str) {
        let url = format!(
            "{}/groups/{SUBSCRIPTION}/{RESOURCE_GROUP}/{name}",
            self.emulator.admin_url()
        );
        let response = self.http.delete(url).send().await.expect("DELETE group");
        assert_eq!(response.status(), 204, "out-of-band delete of {name}");
    }

    /// Creates container group `name` through ARM with `body`, as another client would.
    pub async fn put_group(&self, name: &str, body: &Value) {
        let url = format!(
            "{}/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/\
             Microsoft.ContainerInstance/containerGroups/{name}?api-version={ARM_API_VERSION}",
            self.emulator.arm_endpoint()
        );
        let response = self
            .http
            .put(url)
            .bearer_auth(self.emulator.issue_token())
            .json(body)
            .send()
            .await
            .expect("PUT container group");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "PUT group {name} returned {status}: {text}"
        );
    }

    async fn admin_get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.emulator.admin_url());
        let response = self.http.get(&url).send().await.expect("admin GET");
        assert!(
            response.status().is_success(),
            "GET {url}: {}",
            response.status()
        );
        response.json().await.expect("admin answer is JSON")
    }

    /// Waits until flow run `run` is in a final state and returns it. Panics after `timeout`
    /// with the run's state history, the worker's log tail and the emulator's groups.
    pub async fn wait_for_final(&self, worker: &Worker, run: &str, timeout: Duration) -> RunState {
        self.wait_for_state(worker, run, "a final state", timeout, RunState::is_final)
            .await
    }

    /// Waits until flow run `run` has a state for which `accept` is true.
    pub async fn wait_for_state(
        &self,
        worker: &Worker,
        run: &str,
        expected: &str,
        timeout: Duration,
        accept: impl Fn(&RunState) -> bool,
    ) -> RunState {
        let started = Instant::now();
        loop {
            let state = self.rest.read_state(run).await;
            if accept(&state) {
                return state;
            }
            if started.elapsed() > timeout {
                self.fail(
                    worker,
                    run,
                    &format!("flow run {run} not in {expected} after {timeout:?}"),
                )
                .await;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until the emulator has no container group left.
    pub async fn wait_for_no_groups(&self, worker: &Worker, timeout: Duration) {
        let started = Instant::now();
        loop {
            let names = self.group_names().await;
            if names.is_empty() {
                return;
            }
            if started.elapsed() > timeout {
                self.fail(
                    worker,
                    "",
                    &format!("container groups still present after {timeout:?}: {names:?}"),
                )
                .await;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until the emulator has a group whose name ends with `run`, and returns its
    /// name.
    pub async fn wait_for_group_of(&self, worker: &Worker, run: &str, timeout: Duration) -> String {
        let started = Instant::now();
        loop {
            let names = self.group_names().await;
            if let Some(name) = names.iter().find(|n| n.ends_with(run)) {
                return name.clone();
            }
            if started.elapsed() > timeout {
                self.fail(
                    worker,
                    run,
                    &format!("no container group for run {run} after {timeout:?}"),
                )
                .await;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Panics with `reason`, the state history of `run` (when given), the emulator's groups
    /// and the worker's log tail.
    pub async fn fail(&self, worker: &Worker, run: &str, reason: &str) -> ! {
        let history = if run.is_empty() {
            String::new()
        } else {
            describe_history(&self.rest.state_history(run).await)
        };
        let groups = serde_json::to_string_pretty(&self.groups().await).unwrap_or_default();
        panic!(
            "{reason}\nstate history:\n{history}\nemulator groups: {groups}\n\
             worker log tail ({}):\n{}",
            worker.log_path().display(),
            worker.log_tail()
        );
    }
}

/// Sets the pool defaults tests rely on: our subscription and resource group, the
/// simulated image, and a short `task_watch_poll_interval` so provisioning is seen quickly.
fn with_test_defaults(mut template: Value) -> Value {
    let properties = &mut template["variables"]["properties"];
    properties["subscription_id"]["default"] = json!(SUBSCRIPTION);
    properties["resource_group_name"]["default"] = json!(RESOURCE_GROUP);
    properties["image"]["default"] = json!(SIM_IMAGE);
    properties["task_watch_poll_interval"]["default"] = json!(0.5);
    template
}

/// Emulator settings for end-to-end tests: port 0, 100 ms provisioning steps, simulated
/// images under [`SIM_REGISTRY`], and the Prefect venv's `bin` first on PATH for the rest.
pub fn emulator_config() -> EmulatorConfig {
    let venv = super::prefect_server::venv_dir(super::prefect_server::PrefectVersion::V3);
    EmulatorConfig {
        pending_ms: PROVISIONING_STEP_MS,
        creating_ms: PROVISIONING_STEP_MS,
        path_prepend: vec![venv.join("bin")],
        simulate_image: vec![format!("{SIM_REGISTRY}/*")],
        ..EmulatorConfig::for_tests()
    }
}

/// Formats a state history one state a line.
pub fn describe_history(states: &[RunState]) -> String {
    states
        .iter()
        .map(|s| format!("  {} ({}): {}\n", s.kind, s.name, s.message))
        .collect()
}

/// Returns `prefix` and 8 random hex digits, lowercase, usable as a pool or worker name.
pub fn unique(prefix: &str) -> String {
    let prefix = prefix.replace('_', "-");
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..8])
}

/// Returns `counters[operation][status]`, 0 when absent.
pub fn counter(counters: &Value, operation: &str, status: u16) -> u64 {
    counters[operation][status.to_string()]
        .as_u64()
        .unwrap_or(0)
}

/// Returns the sum of `counters[operation]` over every status.
pub fn counter_total(counters: &Value, operation: &str) -> u64 {
    counters[operation]
        .as_object()
        .map(|by_status| by_status.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}
