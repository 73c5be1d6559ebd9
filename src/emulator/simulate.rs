//! Simulated containers: no process runs. The container waits, exits with a code from its
//! environment and meanwhile reports flow run states to the Prefect API, as the flow engine
//! inside a real Prefect image would.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::time::Instant;
use uuid::Uuid;

use super::lifecycle::with_group;
use super::state::{GroupKey, RunSpec, Shared};

/// Run time of the simulated container, in seconds (decimal).
pub const SECONDS_VARIABLE: &str = "ACI_EMULATOR_SIM_SECONDS";
/// Exit code of the simulated container (integer).
pub const EXIT_CODE_VARIABLE: &str = "ACI_EMULATOR_SIM_EXIT_CODE";
/// Exit code when a stop or delete ends the container: 128 + SIGTERM.
const STOPPED_EXIT_CODE: i32 = 143;
/// How often the wait checks for a stop or delete.
const POLL: Duration = Duration::from_millis(50);
/// Timeout of each Prefect API call.
const PREFECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Plays the container and returns its exit code.
pub async fn run(shared: &Arc<Shared>, key: &GroupKey, instance: Uuid, run: &RunSpec) -> i32 {
    let environment: HashMap<&str, &str> = run
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let seconds = environment
        .get(SECONDS_VARIABLE)
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(shared.config.simulate_seconds)
        .max(0.0);
    let exit_code = environment
        .get(EXIT_CODE_VARIABLE)
        .and_then(|s| s.parse::<i32>().ok())
        .unwrap_or(0);
    let log = |line: String| {
        with_group(shared, key, instance, |g| g.logs.push(line));
    };
    log(format!(
        "simulated container: running for {seconds} s, then exiting with {exit_code}"
    ));
    let prefect = PrefectFlowRun::from_environment(&environment);
    if let Some(prefect) = &prefect {
        let outcome = prefect.propose("RUNNING", "Running", None).await;
        log(format!("simulated container: proposed Running: {outcome}"));
    }
    if !wait_unless_stopped(shared, key, instance, Duration::from_secs_f64(seconds)).await {
        log("simulated container: stopped".to_string());
        return STOPPED_EXIT_CODE;
    }
    if let Some(prefect) = &prefect {
        let outcome = if exit_code == 0 {
            prefect.propose("COMPLETED", "Completed", None).await
        } else {
            let message = format!("Flow run process exited with code {exit_code}");
            prefect.propose("FAILED", "Failed", Some(message)).await
        };
        log(format!(
            "simulated container: proposed final state: {outcome}"
        ));
    }
    exit_code
}

/// Waits `duration`. Returns false if the group was stopped, deleted or replaced first.
async fn wait_unless_stopped(
    shared: &Shared,
    key: &GroupKey,
    instance: Uuid,
    duration: Duration,
) -> bool {
    let deadline = Instant::now() + duration;
    loop {
        let stopped = with_group(shared, key, instance, |g| g.stop_requested).unwrap_or(true);
        if stopped {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        tokio::time::sleep(POLL.min(deadline - now)).await;
    }
}

/// The flow run a simulated container reports to, from PREFECT_API_URL,
/// PREFECT__FLOW_RUN_ID and PREFECT_API_KEY or PREFECT_API_AUTH_STRING.
struct PrefectFlowRun {
    client: reqwest::Client,
    url: String,
    authorization: Option<String>,
}

impl PrefectFlowRun {
    fn from_environment(environment: &HashMap<&str, &str>) -> Option<Self> {
        let api_url = environment.get("PREFECT_API_URL")?.trim_end_matches('/');
        let flow_run_id = environment.get("PREFECT__FLOW_RUN_ID")?;
        let authorization = if let Some(key) = environment.get("PREFECT_API_KEY") {
            Some(format!("Bearer {key}"))
        } else {
            environment.get("PREFECT_API_AUTH_STRING").map(|auth| {
                let encoded = base64::engine::general_purpose::STANDARD.encode(auth);
                format!("Basic {encoded}")
            })
        };
        let client = reqwest::Client::builder()
            .timeout(PREFECT_TIMEOUT)
            .build()
            .ok()?;
        Some(Self {
            client,
            url: format!("{api_url}/flow_runs/{flow_run_id}/set_state"),
            authorization,
        })
    }

    /// Proposes a state. Returns the orchestration status (ACCEPT, REJECT, ABORT, WAIT) or
    /// the failure, as text for the container log.
    async fn propose(&self, state_type: &str, name: &str, message: Option<String>) -> String {
        let mut state = json!({ "type": state_type, "name": name });
        if let Some(message) = message {
            state["message"] = json!(message);
        }
        let mut request = self.client.post(&self.url).json(&json!({ "state": state }));
        if let Some(authorization) = &self.authorization {
            request = request.header(reqwest::header::AUTHORIZATION, authorization);
        }
        let outcome = match request.send().await {
            Ok(response) => read_outcome(response).await,
            Err(error) => Err(format!("request failed: {error}")),
        };
        outcome.unwrap_or_else(|failure| {
            tracing::warn!(
                url = %self.url,
                state = state_type,
                %failure,
                "proposing a flow run state failed"
            );
            failure
        })
    }
}

/// Reads the orchestration status from a set_state response, or describes the failure.
async fn read_outcome(response: reqwest::Response) -> Result<String, String> {
    let status = response.status();
    match response.json::<Value>().await {
        Ok(body) if status.is_success() => {
            Ok(body["status"].as_str().unwrap_or("unknown").to_string())
        }
        Ok(body) => Err(format!("HTTP {status}: {body}")),
        Err(error) => Err(format!("HTTP {status}, unreadable body: {error}")),
    }
}
