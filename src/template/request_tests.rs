use serde_json::{Value, json};

use super::*;
use crate::template::render::RenderedConfiguration;
use crate::template::secrets::SecretValues;

const IDENTITY: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1";
const ACR_IDENTITY: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/acr";
const PYTHON_TEMPLATE: &str =
    include_str!("../../tests/fixtures/python-worker-base-job-template.json");

fn config_with(extra: Value, secrets: &[&str]) -> AciJobConfiguration {
    let mut configuration = json!({"resource_group_name": "rg", "subscription_id": "sub-1"});
    for (key, value) in extra.as_object().unwrap() {
        configuration[key] = value.clone();
    }
    let mut recorded = SecretValues::default();
    secrets.iter().for_each(|s| recorded.insert(*s));
    let rendered = RenderedConfiguration {
        configuration,
        secrets: recorded,
    };
    AciJobConfiguration::from_rendered(&rendered).unwrap()
}

fn context() -> RunContext {
    RunContext {
        flow_run_id: "run-1".into(),
        flow_run_name: "crimson-owl".into(),
        flow_id: "flow-1".into(),
        flow_name: "etl".into(),
        deployment_id: Some("dep-1".into()),
        deployment_name: Some("nightly".into()),
        worker_name: "worker-a".into(),
        worker_id: None,
        prefect: PrefectConnectionEnv {
            api_url: "http://prefect/api".into(),
            api_key: Some(SecretString::new("pnu_key")),
            auth_string: Some(SecretString::new("admin:pw")),
        },
    }
}

fn placement() -> GroupPlacement {
    GroupPlacement {
        name: "etl-run-1".into(),
        location: "westeurope".into(),
        tags: BTreeMap::from([("prefect.io/flow-run-id".into(), "run-1".into())]),
        container_name: "flow".into(),
    }
}

fn build(config: &AciJobConfiguration) -> Value {
    build_container_group(config, &context(), &placement())
        .unwrap()
        .body()
        .clone()
}

fn env_of(body: &Value) -> Vec<Value> {
    body["properties"]["containers"][0]["properties"]["environmentVariables"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn minimal_body_shape() {
    let body = build(&config_with(json!({}), &[]));
    assert_eq!(body["location"], "westeurope");
    assert_eq!(body["tags"]["prefect.io/flow-run-id"], "run-1");
    assert_eq!(body["properties"]["osType"], "Linux");
    assert_eq!(body["properties"]["restartPolicy"], "Never");
    let container = &body["properties"]["containers"][0];
    assert_eq!(container["name"], "flow");
    assert_eq!(
        container["properties"]["image"],
        crate::template::DEFAULT_IMAGE
    );
    let requests = &container["properties"]["resources"]["requests"];
    assert_eq!(requests, &json!({"cpu": 1.0, "memoryInGB": 1.0}));
    assert!(body.get("identity").is_none());
}

#[test]
fn env_order_overrides_and_nulls() {
    let env = json!({"A": "1", "PREFECT__FLOW_NAME": "renamed", "PREFECT__DEPLOYMENT_ID": null});
    let body = build(&config_with(json!({"env": env}), &[]));
    let env = env_of(&body);
    let names: Vec<&str> = env.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "PREFECT_API_URL",
            "PREFECT_API_KEY",
            "PREFECT_API_AUTH_STRING",
            "PREFECT__FLOW_RUN_ID",
            "PREFECT__FLOW_ID",
            "PREFECT__FLOW_NAME",
            "PREFECT__DEPLOYMENT_NAME",
            "PREFECT__WORKER_NAME",
            "A",
        ]
    );
    let flow_name = env_of(&body)
        .into_iter()
        .find(|e| e["name"] == "PREFECT__FLOW_NAME");
    assert_eq!(flow_name.unwrap()["value"], "renamed");
}

#[test]
fn secrets_go_to_secure_value() {
    let env = json!({"TOKEN": "Bearer tok-1", "PLAIN": "x"});
    let body = build(&config_with(json!({"env": env}), &["tok-1"]));
    let env = env_of(&body);
    let find = |name: &str| env.iter().find(|e| e["name"] == name).unwrap().clone();
    assert_eq!(
        find("PREFECT_API_KEY"),
        json!({"name": "PREFECT_API_KEY", "secureValue": "pnu_key"})
    );
    assert_eq!(find("PREFECT_API_AUTH_STRING")["secureValue"], "admin:pw");
    assert_eq!(
        find("TOKEN"),
        json!({"name": "TOKEN", "secureValue": "Bearer tok-1"})
    );
    assert_eq!(find("PLAIN"), json!({"name": "PLAIN", "value": "x"}));
}

#[test]
fn gpu_goes_into_requests() {
    let body = build(&config_with(
        json!({"gpu_count": 2, "gpu_sku": "V100"}),
        &[],
    ));
    let requests = &body["properties"]["containers"][0]["properties"]["resources"]["requests"];
    assert_eq!(requests["gpu"], json!({"count": 2, "sku": "V100"}));
}

#[test]
fn acr_identity_added_once() {
    let registry = json!({"registry_url": "acr.azurecr.io", "identity": ACR_IDENTITY});
    let body = build(&config_with(
        json!({"identities": [IDENTITY], "image_registry": registry}),
        &[],
    ));
    let assigned = body["identity"]["userAssignedIdentities"]
        .as_object()
        .unwrap();
    assert_eq!(body["identity"]["type"], "UserAssigned");
    assert_eq!(assigned.len(), 2);
    assert!(assigned.contains_key(ACR_IDENTITY));
    let credentials = &body["properties"]["imageRegistryCredentials"];
    assert_eq!(
        credentials,
        &json!([{"server": "acr.azurecr.io", "identity": ACR_IDENTITY}])
    );

    let both = json!({"identities": [ACR_IDENTITY], "image_registry": registry});
    let body = build(&config_with(both, &[]));
    assert_eq!(
        body["identity"]["userAssignedIdentities"]
            .as_object()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn docker_password_masked() {
    let registry = json!({"registry_url": "index.docker.io", "username": "u", "password": "pw-9"});
    let config = config_with(json!({"image_registry": registry}), &[]);
    let request = build_container_group(&config, &context(), &placement()).unwrap();
    assert_eq!(
        request.body()["properties"]["imageRegistryCredentials"][0]["password"],
        "pw-9"
    );
    let masked = request.masked();
    assert_eq!(
        masked["properties"]["imageRegistryCredentials"][0]["password"],
        MASK
    );
    let text = format!("{masked} {request:?}");
    for secret in ["pw-9", "pnu_key", "admin:pw"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[test]
fn subnets_and_dns() {
    let body = build(&config_with(
        json!({"subnet_ids": ["/s/1"], "dns_servers": ["10.0.0.4"]}),
        &[],
    ));
    assert_eq!(body["properties"]["subnetIds"], json!([{"id": "/s/1"}]));
    assert_eq!(
        body["properties"]["dnsConfig"],
        json!({"nameServers": ["10.0.0.4"]})
    );
}

#[test]
fn python_pool_template_is_base() {
    let template: Value = serde_json::from_str(PYTHON_TEMPLATE).unwrap();
    let mut arm = template["job_configuration"]["arm_template"].clone();
    let resource = &mut arm["resources"][0];
    resource["tags"] = json!({"team": "data", "prefect.io/flow-run-id": "stale"});
    resource["properties"]["containers"][0]["properties"]["image"] = json!("ignored");
    resource["properties"]["containers"][0]["properties"]["command"] = json!("ignored");
    let resources = &mut resource["properties"]["containers"][0]["properties"]["resources"];
    resources["requests"] = json!({"cpu": 1, "memoryInGB": 1});
    let config = config_with(
        json!({"arm_template": arm, "cpu": 2, "env": {"A": "1"}}),
        &[],
    );
    let body = build(&config);
    assert_eq!(
        body["tags"],
        json!({"team": "data", "prefect.io/flow-run-id": "run-1"})
    );
    let container = &body["properties"]["containers"][0];
    assert_eq!(container["name"], "flow");
    assert_eq!(
        container["properties"]["image"],
        crate::template::DEFAULT_IMAGE
    );
    assert_eq!(container["properties"]["resources"]["requests"]["cpu"], 2.0);
    assert_eq!(
        env_of(&body).last().unwrap(),
        &json!({"name": "A", "value": "1"})
    );
    assert!(body.get("name").is_none());
}

#[test]
fn report_masks_everything() {
    let registry = json!({"registry_url": "r", "username": "u", "password": "pw-9"});
    let credentials = json!({"client_id": "c", "tenant_id": "t", "client_secret": "cs-1"});
    let extra = json!({"image_registry": registry, "aci_credentials": credentials,
                       "env": {"TOKEN": "tok-1"}});
    let config = config_with(extra, &["tok-1"]);
    let request = build_container_group(&config, &context(), &placement()).unwrap();
    let report = render_report(&config, &request);
    let text = report.to_string();
    for secret in ["pw-9", "cs-1", "tok-1", "sub-1", "pnu_key", "admin:pw"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert_eq!(report["job_configuration"]["resource_group_name"], "rg");
    assert_eq!(report["container_group"]["location"], "westeurope");
}
