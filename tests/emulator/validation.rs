//! Request validation: each rule returns 400 with ARM's error shape and its code.

use prefect_aci_worker::emulator::EmulatorConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// Sends `body` for group `name` and returns the error codes, the top one first and then
/// those nested in `details`.
async fn error_codes(emulator: &TestEmulator, name: &str, body: &Value) -> Vec<String> {
    let response = emulator.put(&emulator.group_url(name, ""), body).await;
    let status = response.status();
    let answer: Value = response.json().await.expect("JSON body");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {answer}");
    assert!(
        answer["error"]["message"].is_string(),
        "no message: {answer}"
    );
    let mut codes = vec![answer["error"]["code"].as_str().unwrap().to_string()];
    for detail in answer["error"]["details"].as_array().into_iter().flatten() {
        codes.push(detail["code"].as_str().unwrap().to_string());
    }
    codes
}

fn container(body: &mut Value) -> &mut Value {
    &mut body["properties"]["containers"][0]["properties"]
}

fn valid() -> Value {
    group_body(&["true"])
}

#[tokio::test]
async fn invalid_names_are_rejected() {
    let emulator = TestEmulator::start().await;
    let long = "a".repeat(64);
    for name in [
        "Upper",
        "-lead",
        "trail-",
        "double--hyphen",
        "under_score",
        long.as_str(),
    ] {
        let codes = error_codes(&emulator, name, &valid()).await;
        assert_eq!(codes, ["InvalidContainerGroupName"], "name {name:?}");
    }
    let longest = "a".repeat(63);
    emulator.create(&longest, &valid()).await;
}

#[tokio::test]
async fn each_rule_has_its_code() {
    let emulator = TestEmulator::start().await;
    let mut cases: Vec<(&str, Value, &str)> = Vec::new();

    let mut body = valid();
    body.as_object_mut().unwrap().remove("location");
    cases.push(("no location", body, "LocationRequired"));

    let mut body = valid();
    body["properties"]
        .as_object_mut()
        .unwrap()
        .remove("containers");
    cases.push(("no containers", body, "InvalidRequestContent"));

    let mut body = valid();
    body["properties"]["containers"] = json!([]);
    cases.push(("empty containers", body, "NoContainersInContainerGroup"));

    let mut body = valid();
    container(&mut body)
        .as_object_mut()
        .unwrap()
        .remove("image");
    cases.push(("no image", body, "InvalidRequestContent"));

    let mut body = valid();
    body["properties"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("name");
    cases.push(("no container name", body, "InvalidRequestContent"));

    let mut body = valid();
    container(&mut body)["resources"] = json!({ "requests": { "cpu": 1 } });
    cases.push(("no memory request", body, "ResourceRequestsNotSpecified"));

    let mut body = valid();
    container(&mut body)
        .as_object_mut()
        .unwrap()
        .remove("resources");
    cases.push(("no resources", body, "ResourceRequestsNotSpecified"));

    let mut body = valid();
    body["properties"]["osType"] = json!("Plan9");
    cases.push(("bad osType", body, "InvalidOsType"));

    let mut body = valid();
    body["properties"].as_object_mut().unwrap().remove("osType");
    cases.push(("no osType", body, "InvalidOsType"));

    for (label, cpu, memory) in [
        ("cpu zero", 0.0, 1.0),
        ("cpu five", 5.0, 1.0),
        ("memory 17", 1.0, 17.0),
        ("memory zero", 1.0, 0.0),
    ] {
        let mut body = valid();
        container(&mut body)["resources"]["requests"] = json!({ "cpu": cpu, "memoryInGB": memory });
        cases.push((label, body, "InvalidResourceRequests"));
    }

    let mut body = valid();
    container(&mut body)["resources"]["limits"] = json!({ "cpu": 0.5 });
    cases.push((
        "limit below request",
        body,
        "ResourceLimitsLessThanRequests",
    ));

    let mut body = valid();
    container(&mut body)["resources"]["requests"]["gpu"] = json!({ "count": 3, "sku": "V100" });
    cases.push(("gpu count", body, "InvalidGpuCount"));

    let mut body = valid();
    container(&mut body)["resources"]["requests"]["gpu"] = json!({ "count": 1, "sku": "A100" });
    cases.push(("gpu sku", body, "InvalidGpuSku"));

    let mut body = valid();
    body["properties"]["imageRegistryCredentials"] = json!([{
        "server": "example.azurecr.io",
        "identity": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pull"
    }]);
    cases.push((
        "registry identity not attached",
        body,
        "InvalidImageRegistryCredentialIdentity",
    ));

    let mut body = valid();
    container(&mut body)["environmentVariables"] =
        json!([{ "name": "A", "value": "1" }, { "name": "A", "value": "2" }]);
    cases.push(("duplicate env", body, "DuplicateEnvironmentVariable"));

    let mut body = valid();
    container(&mut body)["environmentVariables"] =
        json!([{ "name": "A", "value": "1", "secureValue": "2" }]);
    cases.push(("env with both values", body, "InvalidEnvironmentVariable"));

    let mut body = valid();
    container(&mut body)["environmentVariables"] = json!([{ "name": "A" }]);
    cases.push(("env with no value", body, "InvalidEnvironmentVariable"));

    let mut body = valid();
    body["location"] = json!("eastus");
    cases.push(("location mismatch", body, "InvalidResourceLocation"));

    let mut body = valid();
    body["properties"]["restartPolicy"] = json!("Sometimes");
    cases.push(("restart policy", body, "InvalidRestartPolicy"));

    for (index, (label, body, code)) in cases.iter().enumerate() {
        let codes = error_codes(&emulator, &format!("case-{index}"), body).await;
        assert_eq!(codes, [*code], "case {label:?}");
    }
}

#[tokio::test]
async fn several_errors_are_nested() {
    let emulator = TestEmulator::start().await;
    let mut body = valid();
    body["properties"]["osType"] = json!("Plan9");
    container(&mut body)["resources"]["requests"]["cpu"] = json!(9);
    let codes = error_codes(&emulator, "two-errors", &body).await;
    assert_eq!(
        codes,
        [
            "MultipleErrorsOccurred",
            "InvalidOsType",
            "InvalidResourceRequests"
        ]
    );
}

#[tokio::test]
async fn valid_variants_are_accepted() {
    let emulator = TestEmulator::start().await;
    let mut gpu = valid();
    container(&mut gpu)["resources"]["requests"] =
        json!({ "cpu": 6, "memoryInGB": 24, "gpu": { "count": 1, "sku": "V100" } });
    emulator.create("gpu", &gpu).await;

    let identity = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pull";
    let mut attached = valid();
    attached["identity"] =
        json!({ "type": "UserAssigned", "userAssignedIdentities": { identity: {} } });
    attached["properties"]["imageRegistryCredentials"] =
        json!([{ "server": "example.azurecr.io", "identity": identity }]);
    let created = emulator.create("attached", &attached).await;
    let assigned = &created["identity"]["userAssignedIdentities"][identity];
    assert!(assigned["clientId"].is_string(), "no client id: {created}");
    assert!(
        assigned["principalId"].is_string(),
        "no principal id: {created}"
    );

    let mut spaced = valid();
    spaced["location"] = json!("West Europe");
    emulator.create("spaced-location", &spaced).await;
}

#[tokio::test]
async fn any_location_setting_accepts_other_locations() {
    let mut config = EmulatorConfig::for_tests();
    config.any_location = true;
    let emulator = TestEmulator::with_config(config).await;
    let mut body = valid();
    body["location"] = json!("eastus");
    emulator.create("elsewhere", &body).await;
}

#[tokio::test]
async fn malformed_json_is_invalid_content() {
    let emulator = TestEmulator::start().await;
    let response = emulator
        .client
        .put(emulator.group_url("broken", ""))
        .bearer_auth(&emulator.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidRequestContent");
}
