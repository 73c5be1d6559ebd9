//! Raw Prefect REST calls that end-to-end tests use to set up runs and check outcomes.
//!
//! These go straight to the server with reqwest instead of through the worker's own client,
//! so a bug in that client cannot hide a bug in the worker.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

/// Attempts of one request that Prefect rejects with 503 or that fails to connect. The
/// SQLite-backed server returns 503 when several tests write at once on 2 cores.
const ATTEMPTS: u32 = 20;
const RETRY_DELAY: Duration = Duration::from_millis(500);
/// Page size of `/logs/filter`, Prefect's maximum.
const LOG_PAGE: usize = 200;

/// A flow run state as Prefect returns it, reduced to what tests assert on.
#[derive(Debug, Clone)]
pub struct RunState {
    /// `SCHEDULED`, `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `CRASHED`, `CANCELLED`, ...
    pub kind: String,
    pub name: String,
    pub message: String,
}

impl RunState {
    fn from_json(state: &Value) -> RunState {
        let text = |key: &str| state[key].as_str().unwrap_or_default().to_owned();
        RunState {
            kind: text("type"),
            name: text("name"),
            message: text("message"),
        }
    }

    /// True for COMPLETED, FAILED, CRASHED and CANCELLED.
    pub fn is_final(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "COMPLETED" | "FAILED" | "CRASHED" | "CANCELLED"
        )
    }
}

/// One log record of a flow run.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub name: String,
    pub message: String,
    pub timestamp: String,
}

/// Prefect REST client for test setup and checks.
#[derive(Debug, Clone)]
pub struct PrefectRest {
    http: reqwest::Client,
    api_url: String,
}

impl PrefectRest {
    pub fn new(api_url: &str) -> PrefectRest {
        PrefectRest {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("build the reqwest client"),
            api_url: api_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Sends `method path` with an optional JSON body, retrying 503s and connection errors.
    /// Returns the status and the parsed body (`null` when empty).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.api_url);
        let mut last_error = String::new();
        for _ in 0..ATTEMPTS {
            let mut request = self.http.request(method.clone(), &url);
            if let Some(body) = body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(response) if response.status() == StatusCode::SERVICE_UNAVAILABLE => {
                    last_error = "503 Service Unavailable".to_owned();
                }
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    return (status, value);
                }
                Err(error) => last_error = error.to_string(),
            }
            tokio::time::sleep(RETRY_DELAY).await;
        }
        panic!("{method} {url} failed after {ATTEMPTS} attempts: {last_error}");
    }

    /// Sends a request and panics unless the status is 2xx.
    pub async fn expect_ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Value {
        let (status, value) = self.send(method.clone(), path, body).await;
        assert!(
            status.is_success(),
            "{method} {path} returned {status}: {value}"
        );
        value
    }

    pub async fn post(&self, path: &str, body: &Value) -> Value {
        self.expect_ok(reqwest::Method::POST, path, Some(body))
            .await
    }

    pub async fn get(&self, path: &str) -> Value {
        self.expect_ok(reqwest::Method::GET, path, None).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Value {
        self.expect_ok(reqwest::Method::PATCH, path, Some(body))
            .await
    }

    /// Creates a work pool of type `azure-container-instance` with `base_job_template`.
    pub async fn create_work_pool(&self, name: &str, base_job_template: &Value) {
        self.post(
            "/work_pools/",
            &json!({
                "name": name,
                "type": "azure-container-instance",
                "base_job_template": base_job_template,
            }),
        )
        .await;
    }

    /// Returns the work pool `name`.
    pub async fn read_work_pool(&self, name: &str) -> Value {
        self.get(&format!("/work_pools/{name}")).await
    }

    /// Returns the workers of a pool as Prefect lists them.
    pub async fn read_workers(&self, pool: &str) -> Vec<Value> {
        let value = self
            .post(&format!("/work_pools/{pool}/workers/filter"), &json!({}))
            .await;
        value.as_array().cloned().unwrap_or_default()
    }

    /// Creates (or reads) the flow `name` and returns its id.
    pub async fn create_flow(&self, name: &str) -> String {
        let flow = self.post("/flows/", &json!({"name": name})).await;
        id_of(&flow)
    }

    /// Creates a deployment of `flow_id` on `pool` and returns its id. `extra` is merged
    /// into the request body (entrypoint, pull_steps, path and so on).
    pub async fn create_deployment(
        &self,
        flow_id: &str,
        name: &str,
        pool: &str,
        job_variables: &Value,
        extra: &Value,
    ) -> String {
        let mut body = json!({
            "name": name,
            "flow_id": flow_id,
            "work_pool_name": pool,
            "job_variables": job_variables,
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let deployment = self.post("/deployments/", &body).await;
        id_of(&deployment)
    }

    /// Creates a flow run of a deployment, scheduled now, and returns its id.
    pub async fn create_flow_run(
        &self,
        deployment_id: &str,
        parameters: &Value,
        job_variables: &Value,
    ) -> String {
        let run = self
            .post(
                &format!("/deployments/{deployment_id}/create_flow_run"),
                &json!({
                    "parameters": parameters,
                    "job_variables": job_variables,
                    "state": {"type": "SCHEDULED", "name": "Scheduled"},
                }),
            )
            .await;
        id_of(&run)
    }

    /// Returns the flow run `id`.
    pub async fn read_flow_run(&self, id: &str) -> Value {
        self.get(&format!("/flow_runs/{id}")).await
    }

    /// Returns the current state of flow run `id`.
    pub async fn read_state(&self, id: &str) -> RunState {
        let run = self.read_flow_run(id).await;
        RunState::from_json(&run["state"])
    }

    /// Returns every state flow run `id` went through, oldest first.
    pub async fn state_history(&self, id: &str) -> Vec<RunState> {
        let states = self
            .get(&format!("/flow_run_states/?flow_run_id={id}"))
            .await;
        let mut states = states.as_array().cloned().unwrap_or_default();
        states.sort_by(|a, b| a["timestamp"].as_str().cmp(&b["timestamp"].as_str()));
        states.iter().map(RunState::from_json).collect()
    }

    /// Proposes (or with `force`, sets) a state on flow run `id` and returns Prefect's
    /// orchestration status (`ACCEPT`, `REJECT`, ...).
    pub async fn set_state(&self, id: &str, kind: &str, name: &str, force: bool) -> String {
        let result = self
            .post(
                &format!("/flow_runs/{id}/set_state"),
                &json!({"state": {"type": kind, "name": name}, "force": force}),
            )
            .await;
        result["status"].as_str().unwrap_or_default().to_owned()
    }

    /// Returns every log record of flow run `id`, oldest first.
    pub async fn logs(&self, id: &str) -> Vec<LogRecord> {
        let mut records = Vec::new();
        loop {
            let page = self
                .post(
                    "/logs/filter",
                    &json!({
                        "logs": {"flow_run_id": {"any_": [id]}},
                        "sort": "TIMESTAMP_ASC",
                        "limit": LOG_PAGE,
                        "offset": records.len(),
                    }),
                )
                .await;
            let page = page.as_array().cloned().unwrap_or_default();
            let full = page.len() == LOG_PAGE;
            records.extend(page.iter().map(|log| LogRecord {
                name: log["name"].as_str().unwrap_or_default().to_owned(),
                message: log["message"].as_str().unwrap_or_default().to_owned(),
                timestamp: log["timestamp"].as_str().unwrap_or_default().to_owned(),
            }));
            if !full {
                return records;
            }
        }
    }
}

fn id_of(value: &Value) -> String {
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in Prefect's answer: {value}"))
        .to_owned()
}
