//! Flow runs, deployments, flows and the flow run filter.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::state::{State, StateType};

/// A flow run. `labels` exists only on Prefect 3.x servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRun {
    pub id: Uuid,
    pub name: String,
    pub flow_id: Uuid,
    #[serde(default)]
    pub deployment_id: Option<Uuid>,
    #[serde(default)]
    pub work_pool_name: Option<String>,
    #[serde(default)]
    pub work_queue_name: Option<String>,
    /// Flow-run level job variable overrides; `{}` when none.
    #[serde(default)]
    pub job_variables: Option<serde_json::Value>,
    #[serde(default)]
    pub state: Option<State>,
    #[serde(default)]
    pub state_type: Option<StateType>,
    #[serde(default)]
    pub state_name: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub start_time: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expected_start_time: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_scheduled_start_time: Option<OffsetDateTime>,
    #[serde(default)]
    pub infrastructure_pid: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub run_count: u32,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated: Option<OffsetDateTime>,
}

impl FlowRun {
    /// Returns the current state type, from `state` or, where the server leaves `state` out (2.x
    /// scheduled-run responses), from `state_type`.
    pub fn current_state_type(&self) -> Option<StateType> {
        self.state
            .as_ref()
            .map(|s| s.state_type)
            .or(self.state_type)
    }
}

/// One entry of the `get_scheduled_flow_runs` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerFlowRunResponse {
    pub work_pool_id: Uuid,
    pub work_queue_id: Uuid,
    pub flow_run: FlowRun,
}

/// A deployment. Prefect 2.x sends the job variables as `infra_overrides` (before 2.16) or
/// as both names; use [`Deployment::job_variables`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: Uuid,
    pub name: String,
    pub flow_id: Uuid,
    #[serde(default)]
    pub work_pool_name: Option<String>,
    #[serde(default)]
    pub work_queue_name: Option<String>,
    #[serde(default, rename = "job_variables")]
    pub job_variables_field: Option<serde_json::Value>,
    #[serde(default)]
    pub infra_overrides: Option<serde_json::Value>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub paused: bool,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated: Option<OffsetDateTime>,
}

impl Deployment {
    /// Returns the deployment's job variables under either name, or `{}` when it has none.
    pub fn job_variables(&self) -> serde_json::Value {
        self.job_variables_field
            .as_ref()
            .or(self.infra_overrides.as_ref())
            .filter(|value| !value.is_null())
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}))
    }
}

/// A flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub id: Uuid,
    pub name: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Conditions of `filter_flow_runs`, combined with AND. An empty list sets no condition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowRunFilter {
    pub work_pool_names: Vec<String>,
    pub state_types: Vec<StateType>,
    pub state_names: Vec<String>,
    pub ids: Vec<Uuid>,
}

impl FlowRunFilter {
    /// Builds the request body for one page.
    pub(crate) fn to_body(&self, limit: u32, offset: u32) -> serde_json::Value {
        let mut flow_runs = serde_json::Map::new();
        if !self.ids.is_empty() {
            flow_runs.insert("id".into(), serde_json::json!({ "any_": self.ids }));
        }
        let mut state = serde_json::Map::new();
        if !self.state_types.is_empty() {
            state.insert(
                "type".into(),
                serde_json::json!({ "any_": self.state_types }),
            );
        }
        if !self.state_names.is_empty() {
            state.insert(
                "name".into(),
                serde_json::json!({ "any_": self.state_names }),
            );
        }
        if !state.is_empty() {
            flow_runs.insert("state".into(), state.into());
        }
        let mut body = serde_json::json!({
            "flow_runs": flow_runs,
            "sort": "ID_DESC",
            "limit": limit,
            "offset": offset,
        });
        if !self.work_pool_names.is_empty() {
            body["work_pools"] = serde_json::json!({ "name": { "any_": self.work_pool_names } });
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_body_has_every_condition() {
        let id = Uuid::nil();
        let filter = FlowRunFilter {
            work_pool_names: vec!["aci".into()],
            state_types: vec![StateType::Pending, StateType::Running],
            state_names: vec![],
            ids: vec![id],
        };
        let body = filter.to_body(50, 100);
        assert_eq!(body["flow_runs"]["id"]["any_"][0], id.to_string());
        assert_eq!(body["flow_runs"]["state"]["type"]["any_"][1], "RUNNING");
        assert_eq!(body["work_pools"]["name"]["any_"][0], "aci");
        assert_eq!(body["limit"], 50);
        assert_eq!(body["offset"], 100);
    }

    #[test]
    fn empty_filter_sends_no_conditions() {
        let body = FlowRunFilter::default().to_body(10, 0);
        assert_eq!(body["flow_runs"], serde_json::json!({}));
        assert!(body.get("work_pools").is_none());
    }

    #[test]
    fn deployment_job_variables_from_either_name() {
        let base = serde_json::json!({"id": Uuid::nil(), "name": "d", "flow_id": Uuid::nil()});
        let mut old = base.clone();
        old["infra_overrides"] = serde_json::json!({"cpu": 2});
        let old: Deployment = serde_json::from_value(old).unwrap();
        assert_eq!(old.job_variables()["cpu"], 2);
        let mut new = base.clone();
        new["job_variables"] = serde_json::json!({"cpu": 3});
        let new: Deployment = serde_json::from_value(new).unwrap();
        assert_eq!(new.job_variables()["cpu"], 3);
        let none: Deployment = serde_json::from_value(base).unwrap();
        assert_eq!(none.job_variables(), serde_json::json!({}));
    }
}
