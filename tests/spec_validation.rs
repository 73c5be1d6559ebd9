//! Every container group body the worker can build is valid against the `ContainerGroup`
//! definition of the official ACI OpenAPI spec (api-version 2026-05-01).

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use prefect_aci_worker::template::request::build_container_group;
use prefect_aci_worker::template::{
    AciJobConfiguration, BlockDocument, GroupPlacement, InMemoryLookup, PrefectConnectionEnv,
    RunContext, SecretString, default_base_job_template, render_job_configuration,
};
use serde_json::{Map, Value, json};
use support::spec::{SPEC_FILE_ENV, Spec};

const IDENTITY: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/flows";
const SUBNET: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/flows";

/// Loads the spec, or fails in CI and skips loudly elsewhere.
fn load_spec() -> Option<Spec> {
    match Spec::load() {
        Ok(spec) => Some(spec),
        Err(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{reason}; set {SPEC_FILE_ENV} to the containerInstance.json spec")
        }
        Err(reason) => {
            // Written to the process's stderr, which the test harness does not capture,
            // so the skip shows in a passing run.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! SKIPPED spec validation: {reason}; set {SPEC_FILE_ENV} to the spec file !!!\n"
            );
            None
        }
    }
}

fn python_template() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/python-worker-base-job-template.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn lookup() -> InMemoryLookup {
    InMemoryLookup::default().with_block(BlockDocument {
        id: "token-id".into(),
        name: "token".into(),
        block_type_slug: "secret".into(),
        data: json!({"value": "tok-123"}),
        secret_fields: vec!["value".into()],
    })
}

fn context() -> RunContext {
    RunContext {
        flow_run_id: "c961333e-ad5b-435a-adb3-987028f85cbf".into(),
        flow_run_name: "crimson-owl".into(),
        flow_id: "94e20421-e699-47f6-b715-d89be1758412".into(),
        flow_name: "etl".into(),
        deployment_id: Some("09daad3f-f7a7-4276-88d0-30c78ddef372".into()),
        deployment_name: Some("nightly".into()),
        worker_name: "aci-worker-1".into(),
        worker_id: None,
        prefect: PrefectConnectionEnv {
            api_url: "https://prefect.example/api".into(),
            api_key: Some(SecretString::new("pnu_key")),
            auth_string: None,
        },
    }
}

fn placement() -> GroupPlacement {
    GroupPlacement {
        name: "etl-c961333e-ad5b-435a-adb3-987028f85cbf".into(),
        location: "westeurope".into(),
        tags: BTreeMap::from([("prefect.io/flow-run-id".into(), "c961333e".into())]),
        container_name: "flow".into(),
    }
}

async fn body_for(template: &Value, variables: Value) -> Value {
    let mut values: Map<String, Value> = json!({
        "resource_group_name": "rg",
        "subscription_id": "00000000-0000-0000-0000-000000000001",
    })
    .as_object()
    .unwrap()
    .clone();
    values.extend(variables.as_object().unwrap().clone());
    let no_env = |_: &str| None;
    let rendered = render_job_configuration(template, &values, &lookup(), &no_env)
        .await
        .expect("render");
    let config = AciJobConfiguration::from_rendered(&rendered).expect("valid configuration");
    let request = build_container_group(&config, &context(), &placement()).expect("build");
    request.body().clone()
}

fn cases() -> Vec<(&'static str, bool, Value)> {
    vec![
        ("minimal", false, json!({})),
        ("gpu", false, json!({"gpu_count": 2, "gpu_sku": "V100"})),
        ("identities", false, json!({"identities": [IDENTITY]})),
        (
            "acr identity",
            false,
            json!({"image_registry": {"registry_url": "acr.azurecr.io", "identity": IDENTITY}}),
        ),
        (
            "docker registry",
            false,
            json!({"image_registry": {"registry_url": "index.docker.io", "username": "u", "password": "p"}}),
        ),
        (
            "subnets and dns",
            false,
            json!({"subnet_ids": [SUBNET], "dns_servers": ["10.0.0.4"]}),
        ),
        (
            "secret env",
            false,
            json!({"env": {"TOKEN": "{{ prefect.blocks.secret.token }}", "PLAIN": "x", "GONE": null}}),
        ),
        ("python pool minimal", true, json!({})),
        (
            "python pool everything",
            true,
            json!({"cpu": 2, "memory": 3.5, "gpu_count": 1, "gpu_sku": "K80", "identities": [IDENTITY],
                   "subnet_ids": [SUBNET], "dns_servers": ["10.0.0.4"], "command": "python -m flows",
                   "image_registry": {"registry_url": "acr.azurecr.io", "identity": IDENTITY}}),
        ),
    ]
}

#[tokio::test]
async fn request_bodies_match_spec() {
    let Some(spec) = load_spec() else { return };
    let ours = default_base_job_template();
    let python = python_template();
    let mut failures = Vec::new();
    for (name, python_pool, variables) in cases() {
        let template = if python_pool { &python } else { &ours };
        let body = body_for(template, variables).await;
        let errors = spec.validate("ContainerGroup", &body);
        if !errors.is_empty() {
            failures.push(format!("{name}: {errors:#?}\nbody: {body:#}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn validator_rejects_bad_bodies() {
    let Some(spec) = load_spec() else { return };
    let container = json!({"name": "c", "properties": {"image": "i",
        "resources": {"requests": {"cpu": 1.0, "memoryInGB": 1.0}}}});
    let valid =
        json!({"location": "x", "properties": {"containers": [container], "osType": "Linux"}});
    assert_eq!(
        spec.validate("ContainerGroup", &valid),
        Vec::<String>::new()
    );

    let mut unknown = valid.clone();
    unknown["properties"]["bogus"] = json!(1);
    assert_eq!(spec.validate("ContainerGroup", &unknown).len(), 1);

    let mut read_only = valid.clone();
    read_only["properties"]["provisioningState"] = json!("Succeeded");
    assert_eq!(spec.validate("ContainerGroup", &read_only).len(), 1);

    let mut bad_enum = valid.clone();
    bad_enum["properties"]["osType"] = json!("Plan9");
    assert_eq!(spec.validate("ContainerGroup", &bad_enum).len(), 1);

    let mut missing = valid.clone();
    missing["properties"]["containers"][0]["properties"]["resources"]["requests"]
        .as_object_mut()
        .unwrap()
        .remove("cpu");
    assert_eq!(spec.validate("ContainerGroup", &missing).len(), 1);

    let mut wrong_type = valid.clone();
    wrong_type["properties"]["containers"][0]["properties"]["command"] = json!("not a list");
    assert_eq!(spec.validate("ContainerGroup", &wrong_type).len(), 1);

    let mut name_sent = valid.clone();
    name_sent["name"] = json!("group");
    assert_eq!(spec.validate("ContainerGroup", &name_sent).len(), 1);
}
