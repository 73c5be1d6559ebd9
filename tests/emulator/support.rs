//! Shared setup: an emulator with a resource group, a client with a token, and helpers
//! that build and poll container groups.

use std::time::Duration;

use prefect_aci_worker::emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

pub const SUBSCRIPTION: &str = "00000000-0000-0000-0000-0000000000aa";
pub const RESOURCE_GROUP: &str = "rg-test";
pub const LOCATION: &str = "westeurope";
pub const API_VERSION: &str = "2026-05-01";
/// Upper bound for a state change that takes a few hundred milliseconds.
pub const WAIT: Duration = Duration::from_secs(10);

/// A started emulator with the resource group `rg-test` and a valid token.
pub struct TestEmulator {
    pub handle: EmulatorHandle,
    pub client: reqwest::Client,
    pub token: String,
}

impl TestEmulator {
    pub async fn start() -> Self {
        Self::with_config(EmulatorConfig::for_tests()).await
    }

    pub async fn with_config(config: EmulatorConfig) -> Self {
        let handle = Emulator::start(config).await.expect("emulator starts");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client builds");
        let token = handle.issue_token();
        let emulator = Self {
            handle,
            client,
            token,
        };
        let url = emulator.resource_group_url(RESOURCE_GROUP);
        let response = emulator.put(&url, &json!({ "location": LOCATION })).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        emulator
    }

    pub fn resource_group_url(&self, name: &str) -> String {
        format!(
            "{}/subscriptions/{SUBSCRIPTION}/resourceGroups/{name}?api-version=2021-04-01",
            self.handle.arm_endpoint()
        )
    }

    pub fn groups_url(&self) -> String {
        format!(
            "{}/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.ContainerInstance/containerGroups",
            self.handle.arm_endpoint()
        )
    }

    /// URL of a group or of a path under it (`suffix` like `/stop`), with the api-version.
    pub fn group_url(&self, name: &str, suffix: &str) -> String {
        format!(
            "{}/{name}{suffix}?api-version={API_VERSION}",
            self.groups_url()
        )
    }

    pub async fn put(&self, url: &str, body: &Value) -> Response {
        self.client
            .put(url)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("PUT is answered")
    }

    pub async fn get(&self, url: &str) -> Response {
        self.client
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET is answered")
    }

    pub async fn delete(&self, url: &str) -> Response {
        let request = self.client.delete(url).bearer_auth(&self.token);
        request.send().await.expect("DELETE is answered")
    }

    pub async fn post(&self, url: &str) -> Response {
        let request = self.client.post(url).bearer_auth(&self.token);
        request.send().await.expect("POST is answered")
    }

    /// Creates a group and asserts 201.
    pub async fn create(&self, name: &str, body: &Value) -> Value {
        let response = self.put(&self.group_url(name, ""), body).await;
        let status = response.status();
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(status, StatusCode::CREATED, "create {name}: {body}");
        body
    }

    pub async fn get_group(&self, name: &str) -> (StatusCode, Value) {
        let response = self.get(&self.group_url(name, "")).await;
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls GET until `done` holds for the group, and returns that response.
    pub async fn wait_for(&self, name: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (_, body) = self.get_group(name).await;
            if done(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out; last answer: {body}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn logs(&self, name: &str, query: &str) -> String {
        let url = format!("{}&{query}", self.group_url(name, "/containers/main/logs"));
        let response = self.get(&url).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("JSON body");
        body["content"]
            .as_str()
            .expect("content is a string")
            .to_string()
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let url = format!("{}{path}", self.handle.admin_url());
        let mut request = self.client.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("admin request is answered")
    }

    /// Process id of the group's running container, from the admin API.
    pub async fn pid(&self, name: &str) -> Option<i32> {
        let response = self.admin(reqwest::Method::GET, "/groups", None).await;
        let groups: Value = response.json().await.expect("JSON body");
        let group = groups.as_array()?.iter().find(|g| g["name"] == name)?;
        group["pid"].as_i64().map(|pid| pid as i32)
    }
}

/// Builds a valid Linux group with one container `main` running `command`.
pub fn group_body(command: &[&str]) -> Value {
    json!({
        "location": LOCATION,
        "properties": {
            "osType": "Linux",
            "restartPolicy": "Never",
            "containers": [{
                "name": "main",
                "properties": {
                    "image": "alpine:3.20",
                    "command": command,
                    "resources": { "requests": { "cpu": 1, "memoryInGB": 1.5 } }
                }
            }]
        }
    })
}

/// `properties.containers[0].properties.instanceView` of a GET response.
pub fn container_view(group: &Value) -> &Value {
    &group["properties"]["containers"][0]["properties"]["instanceView"]
}

pub fn current_state(group: &Value) -> &str {
    container_view(group)["currentState"]["state"]
        .as_str()
        .unwrap_or("")
}

pub fn group_state(group: &Value) -> &str {
    group["properties"]["instanceView"]["state"]
        .as_str()
        .unwrap_or("")
}

pub fn provisioning_state(group: &Value) -> &str {
    group["properties"]["provisioningState"]
        .as_str()
        .unwrap_or("")
}

/// Returns whether any process of process group `pid` is alive.
pub fn process_group_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process group exists.
    unsafe { libc::kill(-pid, 0) == 0 }
}

/// Waits until process group `pid` is gone; false if it is still there after WAIT.
pub async fn wait_gone(pid: i32) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if !process_group_alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}
