//! Resolving a flow run's job configuration: the pool's base job template rendered with the
//! deployment's and the flow run's job variables, as Prefect's workers do.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::prefect::models::FlowRun;
use crate::prefect::{PrefectClient, PrefectError, PrefectSettings};
use crate::reconcile::JobOptions;
use crate::template::{
    AciJobConfiguration, PrefectConnectionEnv, RunContext, SecretString, TemplateError,
    merge_job_variables, render_job_configuration,
};

use super::lookup::PrefectLookup;

/// Errors from resolving a job configuration.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The configuration is invalid: the run cannot start and ends Crashed with this message.
    #[error("{0}")]
    Invalid(String),
    /// A Prefect call failed transiently, so the next tick tries again.
    #[error("Prefect API call failed while resolving the job configuration: {0}")]
    Transient(#[source] PrefectError),
    /// The run or its deployment was not found, or Prefect rejected a read.
    #[error("Prefect API call failed while resolving the job configuration: {0}")]
    Prefect(#[source] PrefectError),
}

impl JobError {
    fn from_template(error: TemplateError) -> Self {
        if let TemplateError::Lookup { source, .. } = &error
            && let Some(prefect) = source.downcast_ref::<PrefectError>()
            && prefect.is_transient()
        {
            return Self::Transient(clone_transient(prefect));
        }
        Self::Invalid(error.to_string())
    }

    fn from_prefect(error: PrefectError) -> Self {
        if error.is_transient() {
            Self::Transient(error)
        } else {
            Self::Prefect(error)
        }
    }
}

/// Rebuilds a transient error from its text, since `PrefectError` cannot be cloned out of
/// the template error that owns it.
fn clone_transient(error: &PrefectError) -> PrefectError {
    PrefectError::Status {
        operation: "template_lookup",
        status: error.status().unwrap_or(503),
        detail: error.to_string(),
    }
}

/// A flow run's resolved job and what the container group request needs besides it.
#[derive(Debug, Clone)]
pub struct ResolvedJob {
    pub config: AciJobConfiguration,
    pub context: RunContext,
}

impl ResolvedJob {
    /// Returns the values the planner reads from the configuration.
    pub fn options(&self) -> JobOptions {
        JobOptions {
            task_start_timeout: self.config.task_start_timeout,
            keep_container_group: self.config.keep_container_group,
            stream_output: self.config.stream_output,
            poll_interval: self
                .config
                .task_watch_poll_interval
                .max(Duration::from_millis(100)),
        }
    }
}

/// Resolves job configurations through the Prefect API.
#[derive(Debug, Clone)]
pub struct JobResolver {
    client: PrefectClient,
    lookup: PrefectLookup,
    connection: PrefectConnectionEnv,
    worker_name: String,
}

impl JobResolver {
    pub fn new(client: PrefectClient, settings: &PrefectSettings, worker_name: String) -> Self {
        let connection = PrefectConnectionEnv {
            api_url: settings.api_url.as_str().trim_end_matches('/').to_owned(),
            api_key: settings
                .api_key
                .as_ref()
                .map(|s| SecretString::new(s.expose())),
            auth_string: settings
                .auth_string
                .as_ref()
                .map(|s| SecretString::new(s.expose())),
        };
        Self {
            lookup: PrefectLookup::new(client.clone()),
            client,
            connection,
            worker_name,
        }
    }

    /// Reads the flow run, its deployment and flow, and renders `base_job_template` for it.
    /// Extra `overrides` are applied last, as a flow run's job variables would be.
    pub async fn resolve(
        &self,
        base_job_template: &Value,
        flow_run_id: Uuid,
        overrides: Option<&Map<String, Value>>,
    ) -> Result<Arc<ResolvedJob>, JobError> {
        let run = self
            .client
            .read_flow_run(flow_run_id)
            .await
            .map_err(JobError::from_prefect)?;
        self.resolve_run(base_job_template, &run, overrides).await
    }

    /// Renders `base_job_template` for an already read flow run.
    pub async fn resolve_run(
        &self,
        base_job_template: &Value,
        run: &FlowRun,
        overrides: Option<&Map<String, Value>>,
    ) -> Result<Arc<ResolvedJob>, JobError> {
        let deployment = match run.deployment_id {
            Some(id) => self
                .client
                .read_deployment(id)
                .await
                .map_err(JobError::from_prefect)?,
            None => None,
        };
        let flow = self
            .client
            .read_flow(run.flow_id)
            .await
            .map_err(JobError::from_prefect)?;
        let deployment_values = deployment.as_ref().map(|d| object(d.job_variables()));
        let mut run_values = object(run.job_variables.clone().unwrap_or(Value::Null));
        if let Some(overrides) = overrides {
            run_values.extend(overrides.clone());
        }
        let values = merge_job_variables(deployment_values.as_ref(), Some(&run_values))
            .map_err(JobError::from_template)?;
        let env_var = |name: &str| std::env::var(name).ok();
        let rendered = render_job_configuration(base_job_template, &values, &self.lookup, &env_var)
            .await
            .map_err(JobError::from_template)?;
        let config =
            AciJobConfiguration::from_rendered(&rendered).map_err(JobError::from_template)?;
        let context = RunContext {
            flow_run_id: run.id.to_string(),
            flow_run_name: run.name.clone(),
            flow_id: run.flow_id.to_string(),
            flow_name: flow.name.clone(),
            deployment_id: run.deployment_id.map(|id| id.to_string()),
            deployment_name: deployment.as_ref().map(|d| d.name.clone()),
            worker_name: self.worker_name.clone(),
            worker_id: self.client.worker_id().map(|id| id.to_string()),
            prefect: self.connection.clone(),
        };
        Ok(Arc::new(ResolvedJob { config, context }))
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
