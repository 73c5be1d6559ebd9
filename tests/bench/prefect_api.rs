//! The Prefect REST calls the benchmark makes itself: a flow, a deployment on the pool,
//! its flow runs, and reading them back.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::stack::{RESOURCE_GROUP, SUBSCRIPTION};

/// Maximum number of flow runs Prefect returns per filter call by default.
const PAGE: usize = 200;
/// Attempts of one request, and the wait before the second (growing linearly after it).
const MAX_ATTEMPTS: u32 = 8;
const RETRY_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// The Prefect API of one server.
pub struct Prefect {
    pub http: reqwest::Client,
    /// `http://127.0.0.1:<port>/api`
    pub api_url: String,
}

/// A flow run as the benchmark needs it.
#[derive(Debug, Clone)]
pub struct RunView {
    /// `SCHEDULED`, `PENDING`, `RUNNING`, `COMPLETED`, ...
    pub state_type: String,
    pub expected_start: Option<OffsetDateTime>,
    /// When the run entered Running, as Prefect recorded it.
    pub start: Option<OffsetDateTime>,
}

impl RunView {
    pub fn is_final(&self) -> bool {
        matches!(
            self.state_type.as_str(),
            "COMPLETED" | "FAILED" | "CRASHED" | "CANCELLED"
        )
    }
}

impl Prefect {
    /// POSTs `body` and returns the JSON response, retrying 429, 502 and 503 (which a busy
    /// SQLite-backed server returns when its database is locked) and transport errors.
    async fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("{}/{path}", self.api_url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.http.post(&url).json(&body).send().await {
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    if status.is_success() {
                        return serde_json::from_str(&text)
                            .unwrap_or_else(|e| panic!("POST {url}: {e}: {text}"));
                    }
                    assert!(
                        matches!(status.as_u16(), 429 | 502 | 503),
                        "POST {url} answered {status}: {text}"
                    );
                    format!("{status}: {text}")
                }
                Err(error) => error.to_string(),
            };
            assert!(
                attempt < MAX_ATTEMPTS,
                "POST {url} failed {attempt} times, last with {failure}"
            );
            tokio::time::sleep(RETRY_WAIT * attempt).await;
        }
    }

    /// Creates a flow and a deployment on `pool` whose simulated containers run
    /// `run_seconds`. Returns the deployment id.
    pub async fn create_deployment(&self, pool: &str, run_seconds: f64) -> Uuid {
        let flow = self.post("flows/", json!({ "name": "scale-bench" })).await;
        let job_variables = json!({
            "subscription_id": SUBSCRIPTION,
            "resource_group_name": RESOURCE_GROUP,
            "env": { "ACI_EMULATOR_SIM_SECONDS": run_seconds.to_string() },
        });
        let deployment = self
            .post(
                "deployments/",
                json!({
                    "name": "scale",
                    "flow_id": flow["id"],
                    "work_pool_name": pool,
                    "job_variables": job_variables,
                }),
            )
            .await;
        parse_id(&deployment)
    }

    /// Creates one flow run of `deployment` scheduled at `at`.
    pub async fn create_run(&self, deployment: Uuid, at: OffsetDateTime) -> Uuid {
        let at = at.format(&Rfc3339).expect("format a timestamp");
        let state = json!({
            "type": "SCHEDULED",
            "name": "Scheduled",
            "state_details": { "scheduled_time": at },
        });
        let run = self
            .post(
                &format!("deployments/{deployment}/create_flow_run"),
                json!({ "state": state }),
            )
            .await;
        parse_id(&run)
    }

    /// Returns every flow run of `deployment`.
    pub async fn runs(&self, deployment: Uuid) -> Vec<RunView> {
        let mut runs = Vec::new();
        loop {
            let body = json!({
                "flow_runs": { "deployment_id": { "any_": [deployment] } },
                "limit": PAGE,
                "offset": runs.len(),
            });
            let page = self.post("flow_runs/filter", body).await;
            let page = page.as_array().expect("flow_runs/filter answers a list");
            runs.extend(page.iter().map(run_view));
            if page.len() < PAGE {
                return runs;
            }
        }
    }
}

fn parse_id(object: &Value) -> Uuid {
    object["id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .unwrap_or_else(|| panic!("no id in {object}"))
}

fn run_view(run: &Value) -> RunView {
    let time = |field: &str| {
        run[field]
            .as_str()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
    };
    RunView {
        state_type: run["state_type"].as_str().unwrap_or("").to_owned(),
        expected_start: time("expected_start_time"),
        start: time("start_time"),
    }
}
