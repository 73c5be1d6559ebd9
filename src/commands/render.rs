//! `render`: the job configuration and container group request for a deployment, masked.

use std::process::ExitCode;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::arm::auth::{Environment, token_provider};
use crate::arm::{ArmClient, ResourceGroupRef, TokenProvider};
use crate::cli::RenderArgs;
use crate::config::{arm_settings, identity_settings, prefect_settings};
use crate::metrics::Metrics;
use crate::prefect::PrefectClient;
use crate::prefect::models::{Deployment, FlowRun};
use crate::reconcile::naming::{container_group_name, group_tags};
use crate::template::{GroupPlacement, build_container_group, render_report};
use crate::worker::jobs::{JobResolver, ResolvedJob};
use crate::worker::submit::FLOW_CONTAINER_NAME;

/// Printed as the location when it was neither given nor readable from ARM.
const UNKNOWN_LOCATION: &str = "[resourceGroup().location]";

/// Errors of `render`, each printed as one line.
#[derive(Debug, thiserror::Error)]
enum RenderError {
    #[error("{0}")]
    Settings(String),
    #[error("work pool {0:?} was not found")]
    PoolNotFound(String),
    #[error(
        "deployment {0:?} was not found; give `<flow name>/<deployment name>` or the deployment id"
    )]
    DeploymentNotFound(String),
    #[error("invalid --job-variables: {0}; expected a JSON object such as '{{\"cpu\": 2}}'")]
    JobVariables(String),
    #[error("invalid --flow-run {0:?}: expected a flow run id (a UUID)")]
    FlowRunId(String),
    #[error("{0}")]
    Prefect(#[from] crate::prefect::PrefectError),
    #[error("the job configuration is invalid: {0}")]
    Job(String),
}

/// Runs `render` and prints the report, or the error.
pub async fn run(args: &RenderArgs) -> ExitCode {
    match render(args).await {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn render(args: &RenderArgs) -> Result<Value, RenderError> {
    let settings =
        prefect_settings(&args.prefect).map_err(|e| RenderError::Settings(e.to_string()))?;
    let prefect = PrefectClient::new(&settings, Metrics::new())?;
    let pool = prefect
        .read_work_pool(&args.pool)
        .await?
        .ok_or_else(|| RenderError::PoolNotFound(args.pool.clone()))?;

    let deployment = read_deployment(&prefect, &args.deployment).await?;
    let run = flow_run(&prefect, args, &deployment).await?;
    let overrides = overrides(args.job_variables.as_deref())?;
    let worker_name = args
        .name
        .clone()
        .unwrap_or_else(|| "prefect-aci-worker".to_owned());
    let resolver = JobResolver::new(prefect.clone(), &settings, worker_name.clone());
    let job = resolver
        .resolve_run(&pool.base_job_template, &run, overrides.as_ref())
        .await
        .map_err(|e| RenderError::Job(e.to_string()))?;
    let location = location(args, &job).await;

    let name = container_group_name(&job.context.flow_name, run.id);
    let placement = GroupPlacement {
        name: name.clone(),
        location,
        tags: group_tags(
            run.id,
            run.deployment_id,
            &pool.name,
            &worker_name,
            job.config.keep_container_group,
        ),
        container_name: FLOW_CONTAINER_NAME.to_owned(),
    };
    let request = build_container_group(&job.config, &job.context, &placement)
        .map_err(|e| RenderError::Job(e.to_string()))?;
    let mut report = render_report(&job.config, &request);
    if let Value::Object(map) = &mut report {
        // The name travels in the PUT's URL, not in the body, so the report adds it.
        map.insert("container_group_name".into(), Value::String(name));
    }
    Ok(report)
}

async fn read_deployment(prefect: &PrefectClient, value: &str) -> Result<Deployment, RenderError> {
    let found = match Uuid::parse_str(value) {
        Ok(id) => prefect.read_deployment(id).await?,
        Err(_) => match value.split_once('/') {
            Some((flow, name)) => prefect.read_deployment_by_name(flow, name).await?,
            None => None,
        },
    };
    found.ok_or_else(|| RenderError::DeploymentNotFound(value.to_owned()))
}

/// Reads `--flow-run`, or builds a placeholder run of the deployment with no job variables.
async fn flow_run(
    prefect: &PrefectClient,
    args: &RenderArgs,
    deployment: &Deployment,
) -> Result<FlowRun, RenderError> {
    if let Some(value) = &args.flow_run {
        let id = Uuid::parse_str(value).map_err(|_| RenderError::FlowRunId(value.clone()))?;
        return Ok(prefect.read_flow_run(id).await?);
    }
    let stand_in = json!({
        "id": Uuid::nil(),
        "name": "render",
        "flow_id": deployment.flow_id,
        "deployment_id": deployment.id,
    });
    serde_json::from_value(stand_in).map_err(|e| RenderError::Job(e.to_string()))
}

fn overrides(value: Option<&str>) -> Result<Option<Map<String, Value>>, RenderError> {
    let Some(text) = value else {
        return Ok(None);
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(other) => Err(RenderError::JobVariables(format!("got {other}"))),
        Err(error) => Err(RenderError::JobVariables(error.to_string())),
    }
}

/// Returns `--location`, else the resource group's location from ARM, else a placeholder.
async fn location(args: &RenderArgs, job: &ResolvedJob) -> String {
    if let Some(location) = &args.location {
        return location.clone();
    }
    match read_location(args, job).await {
        Ok(location) => location,
        Err(error) => {
            eprintln!(
                "note: could not read the resource group's location ({error}); pass --location to set it"
            );
            UNKNOWN_LOCATION.to_owned()
        }
    }
}

async fn read_location(args: &RenderArgs, job: &ResolvedJob) -> Result<String, String> {
    let settings = arm_settings(&args.azure).map_err(|e| e.to_string())?;
    let identity = identity_settings(&args.azure).map_err(|e| e.to_string())?;
    let tokens: Arc<dyn TokenProvider> = Arc::new(
        token_provider(&identity, &Environment::from_process()).map_err(|e| e.to_string())?,
    );
    let client = ArmClient::new(settings, tokens, Metrics::new()).map_err(|e| e.to_string())?;
    let scope = ResourceGroupRef::new(
        job.config.subscription_id.expose(),
        &job.config.resource_group_name,
    );
    client.region(&scope).await.map_err(|e| e.to_string())
}
