//! Flow run calls: reads, filters, state proposals, infrastructure pid and labels.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use super::client::{Call, PrefectClient};
use super::error::PrefectError;
use super::models::{
    FlowRun, FlowRunFilter, OrchestrationResult, OrchestrationStatus, StateCreate,
};

/// Page size of `filter_flow_runs`: the server's default and maximum `limit` (200).
const FLOW_RUN_PAGE_SIZE: u32 = 200;
/// Proposals sent before `propose_state` gives up on repeated WAIT results.
const MAX_WAIT_PROPOSALS: u32 = 10;
/// Ceiling of one WAIT sleep, so a far-future schedule cannot park a caller for hours.
const MAX_WAIT_DELAY: Duration = Duration::from_secs(300);

impl PrefectClient {
    /// Reads a flow run by id.
    pub async fn read_flow_run(&self, id: Uuid) -> Result<FlowRun, PrefectError> {
        let id = id.to_string();
        self.json(Call::new("read_flow_run", Method::GET, &["flow_runs", &id]))
            .await
    }

    /// Returns every flow run matching `filter`, fetching pages until a short one.
    pub async fn filter_flow_runs(
        &self,
        filter: &FlowRunFilter,
    ) -> Result<Vec<FlowRun>, PrefectError> {
        let mut runs = Vec::new();
        loop {
            let offset = u32::try_from(runs.len()).unwrap_or(u32::MAX);
            let body = filter.to_body(FLOW_RUN_PAGE_SIZE, offset);
            let call = Call::new("filter_flow_runs", Method::POST, &["flow_runs", "filter"])
                .json(&body)?;
            let page: Vec<FlowRun> = self.json(call).await?;
            let short = page.len() < FLOW_RUN_PAGE_SIZE as usize;
            runs.extend(page);
            if short {
                return Ok(runs);
            }
        }
    }

    /// Sends one state proposal. `force` skips the server's orchestration rules; use it only
    /// for CANCELLED and CRASHED. A WAIT result is returned as is.
    pub async fn set_state(
        &self,
        flow_run_id: Uuid,
        state: &StateCreate,
        force: bool,
    ) -> Result<OrchestrationResult, PrefectError> {
        let id = flow_run_id.to_string();
        let body = json!({ "state": state, "force": force });
        let call = Call::new(
            "set_flow_run_state",
            Method::POST,
            &["flow_runs", &id, "set_state"],
        )
        .json(&body)?;
        self.json(call).await
    }

    /// Proposes `state` and, while the server returns WAIT, sleeps `delay_seconds` (at most
    /// 300 s each) and proposes again, up to 10 proposals. Returns the first ACCEPT, REJECT
    /// or ABORT result.
    pub async fn propose_state(
        &self,
        flow_run_id: Uuid,
        state: &StateCreate,
    ) -> Result<OrchestrationResult, PrefectError> {
        for _ in 0..MAX_WAIT_PROPOSALS {
            let result = self.set_state(flow_run_id, state, false).await?;
            if result.status != OrchestrationStatus::Wait {
                return Ok(result);
            }
            let delay = wait_delay(result.details.delay_seconds);
            tracing::debug!(flow_run.id = %flow_run_id, delay_ms = delay.as_millis() as u64, "server returned WAIT for a state proposal");
            tokio::time::sleep(delay).await;
        }
        Err(PrefectError::WaitLimit {
            operation: "set_flow_run_state",
            attempts: MAX_WAIT_PROPOSALS,
        })
    }

    /// Forces `state` (CANCELLED or CRASHED) past the orchestration rules.
    pub async fn force_state(
        &self,
        flow_run_id: Uuid,
        state: &StateCreate,
    ) -> Result<OrchestrationResult, PrefectError> {
        self.set_state(flow_run_id, state, true).await
    }

    /// Stores the infrastructure identifier of a flow run, for example
    /// `<flow_run_id>:<container_group_name>`.
    pub async fn set_infrastructure_pid(
        &self,
        flow_run_id: Uuid,
        pid: &str,
    ) -> Result<(), PrefectError> {
        let id = flow_run_id.to_string();
        let body = json!({ "infrastructure_pid": pid });
        let call = Call::new("update_flow_run", Method::PATCH, &["flow_runs", &id]).json(&body)?;
        self.send(&call).await.map(drop)
    }

    /// Merges `labels` into a flow run's labels. Prefect 2.x has no labels: its 404 or 405
    /// for the route becomes [`PrefectError::NotSupported`]; a missing flow run on 3.x stays
    /// a 404 status error.
    pub async fn update_flow_run_labels(
        &self,
        flow_run_id: Uuid,
        labels: &BTreeMap<String, serde_json::Value>,
    ) -> Result<(), PrefectError> {
        let id = flow_run_id.to_string();
        let call = Call::new(
            "update_flow_run_labels",
            Method::PATCH,
            &["flow_runs", &id, "labels"],
        )
        .json(labels)?;
        match self.send(&call).await {
            Ok(_) => Ok(()),
            Err(err) if is_missing_route(&err) => Err(PrefectError::NotSupported {
                operation: call.operation(),
                status: err.status().unwrap_or_default(),
            }),
            Err(err) => Err(err),
        }
    }
}

/// True for the 404 or 405 that FastAPI returns for a path or method with no route.
fn is_missing_route(err: &PrefectError) -> bool {
    match err.status() {
        Some(405) => true,
        Some(404) => err.detail() == "Not Found",
        _ => false,
    }
}

fn wait_delay(delay_seconds: Option<f64>) -> Duration {
    let seconds = delay_seconds
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(0.0);
    Duration::from_secs_f64(seconds).min(MAX_WAIT_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_delay_is_bounded() {
        assert_eq!(wait_delay(Some(2.0)), Duration::from_secs(2));
        assert_eq!(wait_delay(Some(1e9)), MAX_WAIT_DELAY);
        assert_eq!(wait_delay(Some(-3.0)), Duration::ZERO);
        assert_eq!(wait_delay(None), Duration::ZERO);
    }

    #[test]
    fn missing_route_detection() {
        let route = PrefectError::from_status("op", 404, r#"{"detail":"Not Found"}"#);
        let run = PrefectError::from_status("op", 404, r#"{"detail":"Flow run not found"}"#);
        let method = PrefectError::from_status("op", 405, r#"{"detail":"Method Not Allowed"}"#);
        assert!(is_missing_route(&route));
        assert!(!is_missing_route(&run));
        assert!(is_missing_route(&method));
    }
}
