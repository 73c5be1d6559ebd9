//! ARM request handling: api-versions, tokens, not-found responses, updates, paging, rate
//! limit headers and counters.

use prefect_aci_worker::emulator::EmulatorConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn api_version_is_required_and_checked() {
    let emulator = TestEmulator::start().await;
    let url = format!("{}/g", emulator.groups_url());
    let missing: Value = emulator.get(&url).await.json().await.unwrap();
    assert_eq!(missing["error"]["code"], "MissingApiVersionParameter");

    let response = emulator.get(&format!("{url}?api-version=2019-12-01")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let old: Value = response.json().await.unwrap();
    assert_eq!(old["error"]["code"], "NoRegisteredProviderFound");

    let previous = emulator.get(&format!("{url}?api-version=2025-09-01")).await;
    assert_eq!(previous.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn arm_requests_need_an_issued_token() {
    let emulator = TestEmulator::start().await;
    let url = emulator.group_url("any", "");
    for token in [None, Some("not-issued-here")] {
        let mut request = emulator.client.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    }
}

#[tokio::test]
async fn expired_token_has_its_own_code() {
    let mut config = EmulatorConfig::for_tests();
    config.token_lifetime_seconds = 1;
    let emulator = TestEmulator::with_config(config).await;
    let url = emulator.group_url("any", "");
    assert_eq!(emulator.get(&url).await.status(), StatusCode::NOT_FOUND);

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let response = emulator.get(&url).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("www-authenticate"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ExpiredAuthenticationToken");
}

#[tokio::test]
async fn no_auth_accepts_any_request() {
    let mut config = EmulatorConfig::for_tests();
    config.no_auth = true;
    let emulator = TestEmulator::with_config(config).await;
    let response = emulator
        .client
        .get(emulator.group_url("any", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn missing_resource_group_is_reported() {
    let emulator = TestEmulator::start().await;
    let url = emulator
        .group_url("g", "")
        .replace(RESOURCE_GROUP, "rg-missing");
    let response = emulator.put(&url, &group_body(&["true"])).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ResourceGroupNotFound");

    let response = emulator.get(&url).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ResourceGroupNotFound");

    let response = emulator
        .get(&emulator.resource_group_url("rg-missing"))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let list = format!(
        "{}?api-version={API_VERSION}",
        emulator.groups_url().replace(RESOURCE_GROUP, "rg-missing")
    );
    assert_eq!(emulator.get(&list).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn resource_group_paths_ignore_case() {
    let emulator = TestEmulator::start().await;
    let url = emulator
        .resource_group_url("RG-TEST")
        .replace("resourceGroups", "resourcegroups");
    let response = emulator.get(&url).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["location"], LOCATION);
    assert_eq!(body["properties"]["provisioningState"], "Succeeded");
}

#[tokio::test]
async fn second_put_is_an_update() {
    let emulator = TestEmulator::start().await;
    emulator.create("twice", &group_body(&["sleep", "1"])).await;
    let mut body = group_body(&["sleep", "1"]);
    body["tags"] = json!({ "prefect-flow-run-id": "abc" });
    let response = emulator.put(&emulator.group_url("twice", ""), &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (_, fetched) = emulator.get_group("twice").await;
    assert_eq!(fetched["tags"]["prefect-flow-run-id"], "abc");
}

#[tokio::test]
async fn list_pages_with_next_link() {
    let mut config = EmulatorConfig::for_tests();
    config.page_size = 2;
    let emulator = TestEmulator::with_config(config).await;
    for index in 0..5 {
        emulator
            .create(&format!("page-{index}"), &group_body(&["true"]))
            .await;
    }
    let mut url = format!("{}?api-version={API_VERSION}", emulator.groups_url());
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let page: Value = emulator.get(&url).await.json().await.unwrap();
        pages += 1;
        for group in page["value"].as_array().unwrap() {
            assert!(
                group["properties"].get("instanceView").is_none(),
                "list has an instance view"
            );
            let container = &group["properties"]["containers"][0]["properties"];
            assert!(
                container.get("instanceView").is_none(),
                "list has a container instance view"
            );
            names.push(group["name"].as_str().unwrap().to_string());
        }
        match page["nextLink"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&emulator.handle.arm_endpoint()),
                    "relative nextLink {next}"
                );
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["page-0", "page-1", "page-2", "page-3", "page-4"]);

    let by_subscription = format!(
        "{}/subscriptions/{SUBSCRIPTION}/providers/Microsoft.ContainerInstance/containerGroups?api-version={API_VERSION}",
        emulator.handle.arm_endpoint()
    );
    let first: Value = emulator.get(&by_subscription).await.json().await.unwrap();
    assert_eq!(first["value"].as_array().unwrap().len(), 2);
    assert!(first["nextLink"].is_string());
}

#[tokio::test]
async fn rate_limit_headers_count_down() {
    let mut config = EmulatorConfig::for_tests();
    config.read_bucket = 3;
    config.read_refill = 0.0;
    let emulator = TestEmulator::with_config(config).await;
    let url = emulator.group_url("absent", "");
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let response = emulator.get(&url).await;
        let header = response.headers()["x-ms-ratelimit-remaining-subscription-reads"].clone();
        remaining.push(header.to_str().unwrap().to_string());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let throttled = emulator.get(&url).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers().contains_key("retry-after"));
    let body: Value = throttled.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests");

    let ids = emulator
        .client
        .get(&url)
        .bearer_auth(&emulator.token)
        .header("x-ms-client-request-id", "client-1")
        .send()
        .await
        .unwrap();
    assert!(ids.headers().contains_key("x-ms-request-id"));
    assert_eq!(ids.headers()["x-ms-correlation-request-id"], "client-1");

    let write = emulator
        .put(&emulator.group_url("w", ""), &group_body(&["true"]))
        .await;
    assert!(
        write
            .headers()
            .contains_key("x-ms-ratelimit-remaining-subscription-writes")
    );
    let delete = emulator.delete(&emulator.group_url("w", "")).await;
    assert!(
        delete
            .headers()
            .contains_key("x-ms-ratelimit-remaining-subscription-deletes")
    );
}

#[tokio::test]
async fn counters_count_by_operation_and_status() {
    let emulator = TestEmulator::start().await;
    emulator.create("counted", &group_body(&["true"])).await;
    emulator.get_group("counted").await;
    emulator.get_group("missing").await;
    let counters: Value = emulator
        .admin(Method::GET, "/counters", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(counters["create"]["201"], 1);
    assert_eq!(counters["get"]["200"], 1);
    assert_eq!(counters["get"]["404"], 1);

    let reset = emulator.admin(Method::POST, "/reset", None).await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    let counters: Value = emulator
        .admin(Method::GET, "/counters", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(counters, json!({}));
}

#[tokio::test]
async fn logs_of_unknown_container_are_not_found() {
    let emulator = TestEmulator::start().await;
    emulator
        .create("one-container", &group_body(&["true"]))
        .await;
    let url = emulator.group_url("one-container", "/containers/other/logs");
    let response = emulator.get(&url).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let missing_group = emulator
        .get(&emulator.group_url("nope", "/containers/main/logs"))
        .await;
    let body: Value = missing_group.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ResourceNotFound");
}
