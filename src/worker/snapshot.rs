//! Taking one tick's snapshot: the pool's flow runs from Prefect and the tagged container
//! groups from ARM, in a fixed number of calls rather than one per run.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures::future::join_all;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::arm::{ArmClient, ResourceGroupRef};
use crate::prefect::PrefectError;
use crate::prefect::models::{Deployment, FlowRun, FlowRunFilter, StateType as PrefectState};
use crate::reconcile::{
    ArmView, FlowRunView, GroupView, ResourceGroupScope, ScheduledRun, Snapshot, WorkerHeartbeat,
};

use super::convert;
use super::state::{DEPLOYMENT_CACHE_TTL, Shared};

/// How often the resource groups to list are seeded again from the pool's variable defaults
/// and its deployments' job variables, so groups left by a worker that died are found even
/// when no active run names their resource group.
const SCOPE_SEED_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// States of the runs the worker watches. Final runs are read by id only when a group or
/// the worker's memory still names them.
const ACTIVE_STATES: [PrefectState; 4] = [
    PrefectState::Pending,
    PrefectState::Running,
    PrefectState::Cancelling,
    PrefectState::Paused,
];

/// Errors that make the worker skip a tick. Planning without these reads would take a
/// failed read for missing runs or dead workers.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("reading the pool's flow runs failed: {0}")]
    FlowRuns(#[source] PrefectError),
    #[error("reading the pool's workers failed: {0}")]
    Workers(#[source] PrefectError),
    #[error("reading the work pool failed: {0}")]
    Pool(#[source] PrefectError),
}

impl SnapshotError {
    /// Returns a bounded label for the reconcile error metric.
    pub fn metric_label(&self) -> &'static str {
        "prefect"
    }
}

/// Takes the snapshot for one tick.
pub async fn gather(shared: &Arc<Shared>, shutting_down: bool) -> Result<Snapshot, SnapshotError> {
    let now = OffsetDateTime::now_utc();
    let config = &shared.config;
    let prefect = &shared.prefect;
    let prefetch = time::Duration::try_from(config.prefetch).unwrap_or(time::Duration::ZERO);
    let active_filter = FlowRunFilter {
        work_pool_names: vec![config.pool.clone()],
        state_types: ACTIVE_STATES.to_vec(),
        ..FlowRunFilter::default()
    };

    let (pool, scheduled, active, workers) = tokio::join!(
        prefect.read_work_pool(&config.pool),
        prefect.get_scheduled_flow_runs(&config.pool, &config.work_queues, now + prefetch),
        prefect.filter_flow_runs(&active_filter),
        prefect.filter_workers(&config.pool),
    );

    if let Some(pool) = pool.map_err(SnapshotError::Pool)? {
        shared.state().base_job_template = pool.base_job_template;
    }
    let mut runs = active.map_err(SnapshotError::FlowRuns)?;
    let heartbeats = heartbeats(workers.map_err(SnapshotError::Workers)?);
    let scheduled = scheduled.unwrap_or_else(|error| {
        tracing::warn!(%error, "reading scheduled flow runs failed; claiming none this tick");
        Vec::new()
    });

    seed_scopes(shared).await;
    let arm = list_groups(shared).await;
    runs.extend(read_other_runs(shared, &runs, &arm.groups).await?);

    let scheduled_runs: Vec<FlowRun> = scheduled.into_iter().map(|r| r.flow_run).collect();
    resolve_flow_names(shared, runs.iter().chain(&scheduled_runs)).await;
    let scheduled = scheduled_views(shared, &scheduled_runs).await;
    let flow_runs = run_views(shared, &runs);

    Ok(Snapshot {
        now,
        worker: shared.identity.clone(),
        scheduled,
        flow_runs,
        arm,
        heartbeats,
        shutting_down,
    })
}

fn heartbeats(workers: Vec<crate::prefect::models::Worker>) -> Vec<WorkerHeartbeat> {
    workers
        .into_iter()
        .filter_map(|w| {
            w.last_heartbeat_time.map(|at| WorkerHeartbeat {
                name: w.name,
                last_heartbeat: at,
            })
        })
        .collect()
}

/// Adds the resource groups that the pool's defaults and its deployments name to the ones
/// listed each tick, at most every `SCOPE_SEED_INTERVAL`. They are listed with the worker's
/// own client until a run's job names another credential for them.
async fn seed_scopes(shared: &Arc<Shared>) {
    let (due, template) = {
        let state = shared.state();
        let due = state
            .scopes_seeded_at
            .is_none_or(|at| at.elapsed() >= SCOPE_SEED_INTERVAL);
        (due, state.base_job_template.clone())
    };
    if !due {
        return;
    }
    let deployments = match shared
        .prefect
        .filter_deployments_by_pool(&shared.config.pool)
        .await
    {
        Ok(deployments) => deployments,
        Err(error) => {
            tracing::warn!(%error, "reading the pool's deployments failed; seeding resource groups later");
            return;
        }
    };
    let named = named_scopes(&template, &deployments);

    let mut state = shared.state();
    state.scopes_seeded_at = Some(Instant::now());
    let client = shared.azure.default_client().clone();
    for scope in named {
        state.scopes.entry(scope).or_insert_with(|| client.clone());
    }
}

/// Returns the resource groups that a pool's variable defaults and its deployments' job
/// variables name. A deployment that sets only one of the two takes the other from the
/// pool's defaults.
fn named_scopes(
    template: &serde_json::Value,
    deployments: &[Deployment],
) -> Vec<ResourceGroupScope> {
    let default_of = |name: &str| {
        template
            .pointer(&format!("/variables/properties/{name}/default"))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let pool_subscription = default_of("subscription_id");
    let pool_resource_group = default_of("resource_group_name");
    let mut found = vec![(pool_subscription.clone(), pool_resource_group.clone())];
    for deployment in deployments {
        let variables = deployment.job_variables();
        let value = |name: &str| {
            variables
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        found.push((
            value("subscription_id").or(pool_subscription.clone()),
            value("resource_group_name").or(pool_resource_group.clone()),
        ));
    }

    found
        .into_iter()
        .filter_map(|(subscription_id, resource_group)| {
            let scope = ResourceGroupScope {
                subscription_id: subscription_id?,
                resource_group: resource_group?,
            };
            // An empty or templated value such as `{{ prefect.variables.rg }}` names no
            // resource group by itself.
            let usable = |v: &str| !v.is_empty() && !v.contains("{{");
            (usable(&scope.subscription_id) && usable(&scope.resource_group)).then_some(scope)
        })
        .collect()
}

/// Lists every known resource group. A scope whose listing fails is left out of
/// `listed_scopes`, so the planner counts its groups as unknown, not as gone.
async fn list_groups(shared: &Arc<Shared>) -> ArmView {
    let scopes: Vec<(ResourceGroupScope, ArmClient)> = {
        let mut state = shared.state();
        let remembered: Vec<_> = state
            .memory
            .runs
            .iter()
            .filter_map(|(id, run)| run.group.as_ref().map(|g| (*id, g.scope())))
            .collect();
        for (id, scope) in remembered {
            if let Some(client) = state.jobs.get(&id).map(|j| j.arm.clone()) {
                state.scopes.entry(scope).or_insert(client);
            }
        }
        state
            .scopes
            .iter()
            .map(|(s, c)| (s.clone(), c.clone()))
            .collect()
    };
    let listings = join_all(scopes.into_iter().map(|(scope, client)| async move {
        let reference = ResourceGroupRef::new(&scope.subscription_id, &scope.resource_group);
        let result = client.list(&reference).await;
        (scope, reference, result)
    }))
    .await;
    let mut view = ArmView::default();
    for (scope, reference, result) in listings {
        match result {
            Ok(groups) => {
                view.listed_scopes.push(scope);
                view.groups.extend(
                    groups
                        .iter()
                        .filter_map(|g| convert::group_view(&reference, g)),
                );
            }
            Err(error) => tracing::warn!(
                subscription_id = %scope.subscription_id,
                resource_group = %scope.resource_group,
                %error,
                "listing container groups failed; treating this resource group as unknown this tick"
            ),
        }
    }
    view
}

/// Reads, by id and in one paged call, the runs that memory or a listed group names but the
/// active-state query did not return: mostly runs that became final.
async fn read_other_runs(
    shared: &Arc<Shared>,
    active: &[FlowRun],
    groups: &[GroupView],
) -> Result<Vec<FlowRun>, SnapshotError> {
    let seen: HashSet<Uuid> = active.iter().map(|r| r.id).collect();
    let mut wanted: BTreeSet<Uuid> = shared.state().memory.runs.keys().copied().collect();
    wanted.extend(groups.iter().filter_map(|g| g.tags.flow_run_id));
    wanted.retain(|id| !seen.contains(id));
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let filter = FlowRunFilter {
        ids: wanted.into_iter().collect(),
        ..FlowRunFilter::default()
    };
    shared
        .prefect
        .filter_flow_runs(&filter)
        .await
        .map_err(SnapshotError::FlowRuns)
}

/// Reads the names of flows not seen before; a failed read leaves the name empty this tick.
async fn resolve_flow_names<'a>(shared: &Arc<Shared>, runs: impl Iterator<Item = &'a FlowRun>) {
    let missing: BTreeSet<Uuid> = {
        let state = shared.state();
        runs.map(|r| r.flow_id)
            .filter(|id| !state.flow_names.contains_key(id))
            .collect()
    };
    let reads = join_all(
        missing
            .into_iter()
            .map(|id| async move { (id, shared.prefect.read_flow(id).await) }),
    )
    .await;
    let mut state = shared.state();
    for (id, result) in reads {
        match result {
            Ok(flow) => {
                state.flow_names.insert(id, flow.name);
            }
            Err(error) => tracing::warn!(flow.id = %id, %error, "reading flow failed"),
        }
    }
}

fn flow_name(shared: &Shared, flow_id: Uuid) -> String {
    shared
        .state()
        .flow_names
        .get(&flow_id)
        .cloned()
        .unwrap_or_default()
}

fn run_views(shared: &Arc<Shared>, runs: &[FlowRun]) -> Vec<FlowRunView> {
    let mut seen = HashSet::new();
    runs.iter()
        .filter(|r| seen.insert(r.id))
        .filter_map(|r| convert::flow_run_view(r, &flow_name(shared, r.flow_id)))
        .collect()
}

/// Converts scheduled runs, checking that each one's deployment still exists. Runs already
/// in memory are ours and need no check.
async fn scheduled_views(shared: &Arc<Shared>, runs: &[FlowRun]) -> Vec<ScheduledRun> {
    let unknown: BTreeSet<Uuid> = {
        let state = shared.state();
        runs.iter()
            .filter(|r| !state.memory.runs.contains_key(&r.id))
            .filter_map(|r| r.deployment_id)
            .filter(|id| {
                state
                    .deployments
                    .get(id)
                    .is_none_or(|(_, at)| at.elapsed() > DEPLOYMENT_CACHE_TTL)
            })
            .collect()
    };
    let reads = join_all(
        unknown
            .into_iter()
            .map(|id| async move { (id, shared.prefect.read_deployment(id).await) }),
    )
    .await;
    {
        let mut state = shared.state();
        for (id, result) in reads {
            match result {
                Ok(found) => {
                    state
                        .deployments
                        .insert(id, (found.is_some(), Instant::now()));
                }
                Err(error) => {
                    tracing::warn!(deployment.id = %id, %error, "reading deployment failed")
                }
            }
        }
    }
    let mut state = shared.state();
    let now = OffsetDateTime::now_utc();
    runs.iter()
        .filter_map(|run| {
            // A run whose deployment or flow could not be read is not claimed this tick: the
            // container group name comes from the flow name and must never change.
            let exists = match run.deployment_id {
                Some(id) => state.deployments.get(&id)?.0,
                None => true,
            };
            let flow_name = state.flow_names.get(&run.flow_id)?.clone();
            let scheduled_time = run
                .next_scheduled_start_time
                .or(run.expected_start_time)
                .unwrap_or(now);
            state.scheduled_at.entry(run.id).or_insert(scheduled_time);
            Some(ScheduledRun {
                id: run.id,
                name: run.name.clone(),
                flow_id: run.flow_id,
                flow_name,
                deployment_id: run.deployment_id,
                deployment_exists: exists,
                state_name: run
                    .state
                    .as_ref()
                    .and_then(|s| s.name.clone())
                    .unwrap_or_else(|| "Scheduled".to_owned()),
                scheduled_time,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(job_variables: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "id": uuid::Uuid::new_v4(),
            "name": "d",
            "flow_id": uuid::Uuid::new_v4(),
            "job_variables": job_variables,
        }))
        .expect("a valid deployment")
    }

    fn pool_template(subscription: &str, resource_group: &str) -> serde_json::Value {
        json!({"variables": {"properties": {
            "subscription_id": {"default": subscription},
            "resource_group_name": {"default": resource_group},
        }}})
    }

    fn scope(subscription: &str, resource_group: &str) -> ResourceGroupScope {
        ResourceGroupScope {
            subscription_id: subscription.into(),
            resource_group: resource_group.into(),
        }
    }

    #[test]
    fn named_scopes_include_pool_defaults() {
        let scopes = named_scopes(&pool_template("s1", "rg1"), &[]);
        assert_eq!(scopes, vec![scope("s1", "rg1")]);
    }

    #[test]
    fn named_scopes_fill_deployment_gaps() {
        let deployments = [deployment(json!({"resource_group_name": "rg2"}))];
        let scopes = named_scopes(&pool_template("s1", "rg1"), &deployments);
        assert!(scopes.contains(&scope("s1", "rg2")));
    }

    #[test]
    fn named_scopes_skip_templated_values() {
        let deployments = [deployment(
            json!({"resource_group_name": "{{ prefect.variables.rg }}"}),
        )];
        let scopes = named_scopes(&json!({}), &deployments);
        assert!(scopes.is_empty());
    }

    #[test]
    fn named_scopes_skip_missing_subscription() {
        let deployments = [deployment(json!({"resource_group_name": "rg"}))];
        let scopes = named_scopes(&json!({}), &deployments);
        assert!(scopes.is_empty());
    }
}
