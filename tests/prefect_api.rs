//! The Prefect client against real Prefect 3.9.1 and 2.20.27 servers.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use prefect_aci_worker::metrics::Metrics;
use prefect_aci_worker::prefect::models::{
    FlowRunFilter, LogCreate, OrchestrationStatus, StateCreate, StateType, WorkPoolCreate,
    WorkPoolUpdate, WorkerStatus,
};
use prefect_aci_worker::prefect::{PrefectClient, PrefectError, PrefectSettings};
use serde_json::{Value, json};
use support::prefect_server::{PrefectServer, PrefectVersion, prefect2_server, prefect3_server};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

const POOL_TYPE: &str = "azure-container-instance";
/// Attempts of a setup request that the server rejects with 503.
const SETUP_RETRIES: u32 = 20;

fn client(server: &PrefectServer) -> PrefectClient {
    let settings = PrefectSettings::new(server.api_url.parse().unwrap());
    PrefectClient::new(&settings, Metrics::new()).unwrap()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..8])
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap()
}

/// Returns a small template in the shape of the ACI worker's: configuration and variables schema.
fn base_job_template() -> Value {
    json!({
        "job_configuration": {
            "image": "{{ image }}",
            "cpu": "{{ cpu }}",
            "resource_group_name": "{{ resource_group_name }}",
        },
        "variables": {
            "type": "object",
            "required": ["resource_group_name"],
            "properties": {
                "image": {"type": "string", "default": "prefecthq/prefect:3.9.1-python3.11"},
                "cpu": {"type": "number", "default": 1.0},
                "resource_group_name": {"type": "string"},
            },
        },
    })
}

/// Raw REST calls for test setup that the worker's client does not need.
struct Rest {
    http: reqwest::Client,
    api_url: String,
}

impl Rest {
    fn new(server: &PrefectServer) -> Self {
        Self {
            http: reqwest::Client::new(),
            api_url: server.api_url.clone(),
        }
    }

    /// Posts `body` and returns the JSON response. Retries 503, which a SQLite-backed
    /// server returns when concurrent tests keep its database busy.
    async fn post(&self, path: &str, body: Value) -> Value {
        for _ in 0..SETUP_RETRIES {
            let response = self
                .http
                .post(format!("{}{path}", self.api_url))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            assert!(status.is_success(), "POST {path} returned {status}: {text}");
            return serde_json::from_str(&text).unwrap_or(Value::Null);
        }
        panic!("POST {path} still returned 503 after {SETUP_RETRIES} attempts");
    }

    /// Creates a flow and a deployment on `pool` and returns the deployment id.
    async fn create_deployment(&self, pool: &str) -> Uuid {
        let flow = self.post("/flows/", json!({"name": unique("flow")})).await;
        let deployment = self
            .post(
                "/deployments/",
                json!({
                    "name": unique("deployment"),
                    "flow_id": flow["id"],
                    "work_pool_name": pool,
                    "job_variables": {"cpu": 2, "resource_group_name": "rg-test"},
                }),
            )
            .await;
        deployment["id"].as_str().unwrap().parse().unwrap()
    }

    /// Creates a SCHEDULED flow run of `deployment` due at `at`.
    async fn create_flow_run(&self, deployment: Uuid, at: OffsetDateTime) -> Uuid {
        let body = json!({
            "state": {
                "type": "SCHEDULED",
                "name": "Scheduled",
                "state_details": {"scheduled_time": rfc3339(at)},
            },
        });
        let run = self
            .post(&format!("/deployments/{deployment}/create_flow_run"), body)
            .await;
        run["id"].as_str().unwrap().parse().unwrap()
    }
}

/// Creates a pool with the test template and returns its name.
async fn create_pool(client: &PrefectClient) -> String {
    let name = unique("aci-pool");
    let create = WorkPoolCreate {
        name: name.clone(),
        pool_type: POOL_TYPE.into(),
        base_job_template: Some(base_job_template()),
        description: None,
    };
    client.create_work_pool(&create).await.unwrap();
    name
}

async fn check_work_pool_round_trip(server: &PrefectServer) {
    let client = client(server);
    let name = unique("aci-pool");
    let create = WorkPoolCreate {
        name: name.clone(),
        pool_type: POOL_TYPE.into(),
        base_job_template: Some(base_job_template()),
        description: None,
    };
    let created = client.create_work_pool(&create).await.unwrap();
    assert_eq!(created.name, name);
    assert_eq!(created.pool_type, POOL_TYPE);

    let read = client.read_work_pool(&name).await.unwrap().unwrap();
    assert_eq!(read.id, created.id);
    assert_eq!(read.base_job_template, base_job_template());
    assert!(read.default_queue_id.is_some());

    // A second create is the race the worker loses to another worker: 409, then a read.
    let again = client.create_work_pool(&create).await.unwrap();
    assert_eq!(again.id, created.id);

    let update = WorkPoolUpdate {
        description: Some("patched".into()),
        ..WorkPoolUpdate::default()
    };
    client.update_work_pool(&name, &update).await.unwrap();
    let patched = client.read_work_pool(&name).await.unwrap().unwrap();
    assert_eq!(patched.description.as_deref(), Some("patched"));

    let queues = client.read_work_queues(&name).await.unwrap();
    assert_eq!(queues.len(), 1);
    assert_eq!(queues[0].name, "default");

    assert!(
        client
            .read_work_pool(&unique("missing"))
            .await
            .unwrap()
            .is_none()
    );
}

async fn check_heartbeat_marks_online(server: &PrefectServer) {
    let client = client(server);
    let pool = create_pool(&client).await;
    client.set_worker_name("aci-worker-test");
    client
        .send_worker_heartbeat(&pool, "aci-worker-test", 30)
        .await
        .unwrap();

    let workers = client.filter_workers(&pool).await.unwrap();
    assert_eq!(workers.len(), 1);
    let worker = &workers[0];
    assert_eq!(worker.name, "aci-worker-test");
    assert_eq!(worker.status, Some(WorkerStatus::Online));
    assert_eq!(worker.heartbeat_interval_seconds, Some(30));
    assert!(worker.last_heartbeat_time.is_some());
    assert!(
        client.worker_id().is_none(),
        "only Prefect Cloud returns a worker id"
    );
}

async fn check_scheduled_runs_and_claim(server: &PrefectServer) {
    let client = client(server);
    let rest = Rest::new(server);
    let pool = create_pool(&client).await;
    let deployment = rest.create_deployment(&pool).await;
    let now = OffsetDateTime::now_utc();
    let first = rest.create_flow_run(deployment, now).await;
    let second = rest.create_flow_run(deployment, now).await;
    let later = rest
        .create_flow_run(deployment, now + time::Duration::hours(1))
        .await;

    let due = client
        .get_scheduled_flow_runs(&pool, &[], now + time::Duration::seconds(10))
        .await
        .unwrap();
    let due_ids: Vec<Uuid> = due.iter().map(|r| r.flow_run.id).collect();
    assert!(due_ids.contains(&first), "{due_ids:?}");
    assert!(due_ids.contains(&second), "{due_ids:?}");
    assert!(!due_ids.contains(&later), "{due_ids:?}");
    let run = &due
        .iter()
        .find(|r| r.flow_run.id == first)
        .unwrap()
        .flow_run;
    assert_eq!(run.deployment_id, Some(deployment));
    assert_eq!(
        run.current_state_type(),
        Some(StateType::Scheduled),
        "{run:?}"
    );

    let pending = StateCreate::new(StateType::Pending, first);
    let claim = client.propose_state(first, &pending).await.unwrap();
    assert_eq!(claim.status, OrchestrationStatus::Accept);
    assert!(claim.state.unwrap().is_pending());

    let rival = StateCreate::new(StateType::Pending, first);
    let rival_claim = client.propose_state(first, &rival).await.unwrap();
    assert_eq!(rival_claim.status, OrchestrationStatus::Abort);
    let reason = rival_claim.details.reason.unwrap_or_default();
    assert!(reason.contains("PENDING"), "{reason}");

    let read = client.read_flow_run(first).await.unwrap();
    assert_eq!(read.state.unwrap().state_type, StateType::Pending);
    assert_eq!(read.work_pool_name.as_deref(), Some(pool.as_str()));

    let queue = ["no-such-queue".to_owned()];
    let before = now + time::Duration::seconds(10);
    let other_queue = client.get_scheduled_flow_runs(&pool, &queue, before).await;
    assert!(other_queue.unwrap().is_empty());
    let missing_pool = client
        .get_scheduled_flow_runs(&unique("missing"), &[], before)
        .await;
    assert!(missing_pool.unwrap().is_empty());
}

async fn check_filter_and_reads(server: &PrefectServer) {
    let client = client(server);
    let rest = Rest::new(server);
    let pool = create_pool(&client).await;
    let deployment_id = rest.create_deployment(&pool).await;
    let now = OffsetDateTime::now_utc();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            rest.create_flow_run(deployment_id, now + time::Duration::hours(1))
                .await,
        );
    }
    let pending = StateCreate::new(StateType::Pending, ids[0]);
    client.set_state(ids[0], &pending, false).await.unwrap();

    let by_pool = FlowRunFilter {
        work_pool_names: vec![pool.clone()],
        ..FlowRunFilter::default()
    };
    assert_eq!(client.filter_flow_runs(&by_pool).await.unwrap().len(), 3);
    let by_state = FlowRunFilter {
        work_pool_names: vec![pool.clone()],
        state_types: vec![StateType::Pending],
        ..FlowRunFilter::default()
    };
    let pending_runs = client.filter_flow_runs(&by_state).await.unwrap();
    assert_eq!(
        pending_runs.iter().map(|r| r.id).collect::<Vec<_>>(),
        [ids[0]]
    );
    let by_ids = FlowRunFilter {
        ids: ids[1..].to_vec(),
        ..FlowRunFilter::default()
    };
    assert_eq!(client.filter_flow_runs(&by_ids).await.unwrap().len(), 2);

    let deployment = client
        .read_deployment(deployment_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deployment.job_variables()["cpu"], 2);
    assert_eq!(deployment.work_pool_name.as_deref(), Some(pool.as_str()));
    let flow = client.read_flow(deployment.flow_id).await.unwrap();
    let by_name = client
        .read_deployment_by_name(&flow.name, &deployment.name)
        .await
        .unwrap();
    assert_eq!(by_name.unwrap().id, deployment_id);
    assert!(
        client
            .read_deployment(Uuid::new_v4())
            .await
            .unwrap()
            .is_none()
    );
    let missing_flow = client.read_flow(Uuid::new_v4()).await.unwrap_err();
    assert!(missing_flow.is_not_found(), "{missing_flow}");
}

async fn check_filter_pages(server: &PrefectServer) {
    let client = client(server);
    let rest = Rest::new(server);
    let pool = create_pool(&client).await;
    let deployment = rest.create_deployment(&pool).await;
    let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let mut ids = Vec::new();
    for _ in 0..205 {
        ids.push(rest.create_flow_run(deployment, later).await);
    }
    let filter = FlowRunFilter {
        work_pool_names: vec![pool],
        ..FlowRunFilter::default()
    };
    let mut found: Vec<Uuid> = client
        .filter_flow_runs(&filter)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    found.sort();
    ids.sort();
    assert_eq!(found, ids);
}

async fn check_wait_is_handled(server: &PrefectServer) {
    let client = client(server);
    let rest = Rest::new(server);
    let pool = create_pool(&client).await;
    let deployment = rest.create_deployment(&pool).await;
    // The server returns WAIT for SCHEDULED -> RUNNING while the scheduled time is ahead.
    let soon = OffsetDateTime::now_utc() + time::Duration::seconds(3);
    let run = rest.create_flow_run(deployment, soon).await;

    let running = StateCreate::new(StateType::Running, run);
    let once = client.set_state(run, &running, false).await.unwrap();
    assert_eq!(once.status, OrchestrationStatus::Wait);
    assert!(
        once.details.delay_seconds.unwrap() > 0.0,
        "{:?}",
        once.details
    );

    let started = Instant::now();
    let result = client.propose_state(run, &running).await.unwrap();
    assert_eq!(result.status, OrchestrationStatus::Accept);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        client
            .read_flow_run(run)
            .await
            .unwrap()
            .state
            .unwrap()
            .state_type,
        StateType::Running
    );
}

async fn check_logs_round_trip(server: &PrefectServer) {
    let client = client(server);
    let rest = Rest::new(server);
    let pool = create_pool(&client).await;
    let run = rest
        .create_flow_run(
            rest.create_deployment(&pool).await,
            OffsetDateTime::now_utc(),
        )
        .await;
    let logs: Vec<LogCreate> = (0..3)
        .map(|i| LogCreate::for_flow_run(run, "prefect.flow_runs.worker", 20, &format!("line {i}")))
        .collect();
    client.create_logs(&logs).await.unwrap();

    let body = json!({"logs": {"flow_run_id": {"any_": [run]}}, "sort": "TIMESTAMP_ASC"});
    let read = rest.post("/logs/filter", body).await;
    let messages: Vec<&str> = read
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["line 0", "line 1", "line 2"]);
    assert_eq!(read[0]["name"], "prefect.flow_runs.worker");
    assert_eq!(read[0]["level"], 20);
}

async fn check_pid_and_forced_states(server: &PrefectServer) {
    let client = client(server);
    let rest = Rest::new(server);
    let pool = create_pool(&client).await;
    let deployment = rest.create_deployment(&pool).await;
    let run = rest
        .create_flow_run(deployment, OffsetDateTime::now_utc())
        .await;
    let pid = format!("{run}:my-flow-{run}");
    client.set_infrastructure_pid(run, &pid).await.unwrap();
    assert_eq!(
        client.read_flow_run(run).await.unwrap().infrastructure_pid,
        Some(pid)
    );

    for state_type in [StateType::Crashed, StateType::Cancelled] {
        let state = StateCreate::new(state_type, run).with_message("forced by test");
        let result = client.force_state(run, &state).await.unwrap();
        assert_eq!(result.status, OrchestrationStatus::Accept);
        let read = client.read_flow_run(run).await.unwrap().state.unwrap();
        assert_eq!(read.state_type, state_type);
        assert_eq!(read.message.as_deref(), Some("forced by test"));
        assert!(read.is_final());
    }
}

async fn check_blocks_and_variables(server: &PrefectServer) {
    let client = client(server);
    let rest = Rest::new(server);
    let name = unique("var").replace('-', "_");
    // Prefect 2.x variables hold strings only.
    rest.post("/variables/", json!({"name": name, "value": "eastus"}))
        .await;
    let variable = client.read_variable_by_name(&name).await.unwrap().unwrap();
    assert_eq!(variable.value, "eastus");
    assert!(
        client
            .read_variable_by_name("no_such_variable")
            .await
            .unwrap()
            .is_none()
    );

    let block = unique("secret");
    server.run_python(&format!(
        "from prefect.blocks.system import Secret\nSecret(value='s3cr3t').save('{block}')"
    ));
    let doc = client
        .read_block_document_by_name("secret", &block)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc.data["value"], "s3cr3t");
    assert_eq!(doc.block_type_slug(), Some("secret"));
    assert_eq!(doc.secret_fields(), ["value"]);
    let by_id = client.read_block_document(doc.id).await.unwrap().unwrap();
    assert_eq!(by_id.data, doc.data);
    assert!(!format!("{by_id:?}").contains("s3cr3t"));
    assert!(
        client
            .read_block_document_by_name("secret", "nope")
            .await
            .unwrap()
            .is_none()
    );
}

async fn update_labels(server: &PrefectServer) -> (PrefectClient, Uuid, Result<(), PrefectError>) {
    let client = client(server);
    let rest = Rest::new(server);
    let pool = create_pool(&client).await;
    let run = rest
        .create_flow_run(
            rest.create_deployment(&pool).await,
            OffsetDateTime::now_utc(),
        )
        .await;
    let labels = BTreeMap::from([
        ("prefect.worker.name".to_owned(), json!("aci-worker-test")),
        ("prefect.worker.type".to_owned(), json!(POOL_TYPE)),
    ]);
    let result = client.update_flow_run_labels(run, &labels).await;
    (client, run, result)
}

macro_rules! both_versions {
    ($check:ident, $v3:ident, $v2:ident) => {
        #[tokio::test]
        async fn $v3() {
            $check(prefect3_server()).await;
        }

        #[tokio::test]
        async fn $v2() {
            $check(prefect2_server()).await;
        }
    };
}

both_versions!(
    check_work_pool_round_trip,
    work_pool_round_trip_v3,
    work_pool_round_trip_v2
);
both_versions!(
    check_heartbeat_marks_online,
    heartbeat_online_v3,
    heartbeat_online_v2
);
both_versions!(
    check_scheduled_runs_and_claim,
    scheduled_runs_claim_v3,
    scheduled_runs_claim_v2
);
both_versions!(
    check_filter_and_reads,
    filter_and_reads_v3,
    filter_and_reads_v2
);
both_versions!(check_filter_pages, filter_pages_v3, filter_pages_v2);
both_versions!(check_wait_is_handled, wait_handled_v3, wait_handled_v2);
both_versions!(
    check_logs_round_trip,
    logs_round_trip_v3,
    logs_round_trip_v2
);
both_versions!(
    check_pid_and_forced_states,
    pid_and_forced_states_v3,
    pid_and_forced_states_v2
);
both_versions!(
    check_blocks_and_variables,
    blocks_and_variables_v3,
    blocks_and_variables_v2
);

#[tokio::test]
async fn labels_merged_v3() {
    let (client, run, result) = update_labels(prefect3_server()).await;
    result.unwrap();
    let labels = client.read_flow_run(run).await.unwrap().labels.unwrap();
    assert_eq!(labels["prefect.worker.name"], "aci-worker-test");
    assert_eq!(labels["prefect.worker.type"], POOL_TYPE);
}

#[tokio::test]
async fn labels_not_supported_v2() {
    let (_, _, result) = update_labels(prefect2_server()).await;
    let err = result.unwrap_err();
    assert!(matches!(err, PrefectError::NotSupported { .. }), "{err}");
}

#[tokio::test]
async fn csrf_protected_server_v3() {
    let env = [("PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED", "true")];
    let server = PrefectServer::start(PrefectVersion::V3, &env);
    let rest = Rest::new(&server);
    let without_token = rest
        .http
        .post(format!("{}/work_pools/", server.api_url))
        .json(&json!({"name": unique("aci-pool"), "type": POOL_TYPE}))
        .send()
        .await
        .unwrap();
    assert_eq!(without_token.status(), 403, "CSRF protection is not on");

    let client = client(&server);
    let pool = create_pool(&client).await;
    client
        .send_worker_heartbeat(&pool, "csrf-worker", 30)
        .await
        .unwrap();
    assert_eq!(client.filter_workers(&pool).await.unwrap().len(), 1);
}
