//! The container group request body built from a job configuration, and its masked form.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::template::arm_template::{self, ArmContext};
use crate::template::error::TemplateError;
use crate::template::job::{AciJobConfiguration, ImageRegistry};
use crate::template::secrets::{MASK, SecretString};

/// Env names whose values always go into `secureValue`.
const SECURE_ENV_NAMES: [&str; 2] = ["PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"];
/// Body keys whose values are secrets on the wire.
const SECRET_BODY_KEYS: [&str; 2] = ["secureValue", "password"];

/// The Prefect connection settings passed to the flow-run container, and nothing else of
/// the worker's own settings.
#[derive(Debug, Clone, Default)]
pub struct PrefectConnectionEnv {
    /// `PREFECT_API_URL`; it must be reachable from the container.
    pub api_url: String,
    /// `PREFECT_API_KEY`, sent as a secure value.
    pub api_key: Option<SecretString>,
    /// `PREFECT_API_AUTH_STRING`, sent as a secure value.
    pub auth_string: Option<SecretString>,
}

/// Facts about the flow run that the container needs to execute it.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    pub flow_run_id: String,
    pub flow_run_name: String,
    pub flow_id: String,
    pub flow_name: String,
    pub deployment_id: Option<String>,
    pub deployment_name: Option<String>,
    pub worker_name: String,
    /// Known on Prefect Cloud only.
    pub worker_id: Option<String>,
    pub prefect: PrefectConnectionEnv,
}

/// Location and names under which the container group is created.
#[derive(Debug, Clone, Default)]
pub struct GroupPlacement {
    /// Container group name (the last segment of its resource id).
    pub name: String,
    /// Azure region, for example `westeurope`.
    pub location: String,
    /// Tags of the group; they win over tags from a pool's `arm_template`.
    pub tags: BTreeMap<String, String>,
    /// Name of the one flow-run container.
    pub container_name: String,
}

/// A container group PUT body. Debug output is masked.
#[derive(Clone, PartialEq)]
pub struct ContainerGroupRequest {
    body: Value,
}

impl std::fmt::Debug for ContainerGroupRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContainerGroupRequest({})", self.masked())
    }
}

impl ContainerGroupRequest {
    /// Returns the body to send, secrets in clear text.
    pub fn body(&self) -> &Value {
        &self.body
    }

    /// Returns a copy of the body with every `secureValue` and `password` set to `***`.
    pub fn masked(&self) -> Value {
        mask_body(&self.body)
    }
}

fn mask_body(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(
                    |(key, item)| match SECRET_BODY_KEYS.contains(&key.as_str()) {
                        true => (key.clone(), Value::String(MASK.into())),
                        false => (key.clone(), mask_body(item)),
                    },
                )
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask_body).collect()),
        other => other.clone(),
    }
}

/// Builds the container group body for one flow run. A pool `arm_template` is the
/// starting point when present; the typed fields of `config` are then applied on top.
pub fn build_container_group(
    config: &AciJobConfiguration,
    ctx: &RunContext,
    placement: &GroupPlacement,
) -> Result<ContainerGroupRequest, TemplateError> {
    let mut body = match &config.arm_template {
        Some(template) => {
            let arm_ctx = ArmContext {
                group_name: &placement.name,
                location: &placement.location,
                container_name: &placement.container_name,
                resource_group_name: &config.resource_group_name,
                subscription_id: config.subscription_id.expose(),
            };
            arm_template::container_group_body(template, &arm_ctx)?
        }
        None => Map::new(),
    };
    body.insert("location".into(), Value::String(placement.location.clone()));
    merge_tags(&mut body, &placement.tags);
    if let Some(identity) = identity(config) {
        body.insert("identity".into(), identity);
    }
    let properties = object_at(&mut body, "properties")?;
    apply_group_properties(properties, config);
    let container = first_container(properties, &placement.container_name)?;
    apply_container(container, config, ctx);
    Ok(ContainerGroupRequest {
        body: Value::Object(body),
    })
}

fn object_at<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Map<String, Value>, TemplateError> {
    map.entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| TemplateError::InvalidArmTemplate(format!("`{key}` is not an object")))
}

fn merge_tags(body: &mut Map<String, Value>, tags: &BTreeMap<String, String>) {
    let mut merged = body
        .get("tags")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (key, value) in tags {
        merged.insert(key.clone(), Value::String(value.clone()));
    }
    body.insert("tags".into(), Value::Object(merged));
}

/// Returns the user-assigned identity block, with the ACR pull identity added if missing.
fn identity(config: &AciJobConfiguration) -> Option<Value> {
    let mut ids = config.identities.clone();
    if let Some(ImageRegistry::AcrManagedIdentity { identity, .. }) = &config.image_registry
        && !ids.iter().any(|id| id.eq_ignore_ascii_case(identity))
    {
        ids.push(identity.clone());
    }
    if ids.is_empty() {
        return None;
    }
    let assigned: Map<String, Value> = ids.into_iter().map(|id| (id, json!({}))).collect();
    Some(json!({"type": "UserAssigned", "userAssignedIdentities": assigned}))
}

fn apply_group_properties(properties: &mut Map<String, Value>, config: &AciJobConfiguration) {
    properties.entry("osType").or_insert_with(|| json!("Linux"));
    properties
        .entry("restartPolicy")
        .or_insert_with(|| json!("Never"));
    match &config.image_registry {
        Some(ImageRegistry::AcrManagedIdentity {
            registry_url,
            identity,
        }) => {
            let credential = json!([{"server": registry_url, "identity": identity}]);
            properties.insert("imageRegistryCredentials".into(), credential);
        }
        Some(ImageRegistry::Docker {
            registry_url,
            username,
            password,
        }) => {
            let credential = json!([{
                "server": registry_url,
                "username": username,
                "password": password.expose(),
            }]);
            properties.insert("imageRegistryCredentials".into(), credential);
        }
        None => {}
    }
    if !config.subnet_ids.is_empty() {
        let subnets: Vec<Value> = config
            .subnet_ids
            .iter()
            .map(|id| json!({"id": id}))
            .collect();
        properties.insert("subnetIds".into(), Value::Array(subnets));
    }
    if !config.dns_servers.is_empty() {
        properties.insert(
            "dnsConfig".into(),
            json!({"nameServers": config.dns_servers}),
        );
    }
}

/// Returns the first container's `properties`, creating the container when the group has
/// none, and names it `container_name`.
fn first_container<'a>(
    properties: &'a mut Map<String, Value>,
    container_name: &str,
) -> Result<&'a mut Map<String, Value>, TemplateError> {
    let containers = properties
        .entry("containers")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| TemplateError::InvalidArmTemplate("`containers` is not a list".into()))?;
    if containers.is_empty() {
        containers.push(json!({}));
    }
    let container = containers[0].as_object_mut().ok_or_else(|| {
        TemplateError::InvalidArmTemplate("`containers[0]` is not an object".into())
    })?;
    container.insert("name".into(), Value::String(container_name.to_string()));
    object_at(container, "properties")
}

fn apply_container(
    container: &mut Map<String, Value>,
    config: &AciJobConfiguration,
    ctx: &RunContext,
) {
    container.insert("image".into(), Value::String(config.image.clone()));
    container.insert("command".into(), json!(config.command));
    container.insert(
        "environmentVariables".into(),
        Value::Array(environment(config, ctx)),
    );
    let mut requests = json!({"cpu": config.cpu, "memoryInGB": config.memory});
    if let Some(gpu) = &config.gpu {
        requests["gpu"] = json!({"count": gpu.count, "sku": gpu.sku});
    }
    let resources = container.entry("resources").or_insert_with(|| json!({}));
    match resources.as_object_mut() {
        Some(resources) => {
            resources.insert("requests".into(), requests);
        }
        None => *resources = json!({"requests": requests}),
    }
}

/// Builds the env list: Prefect connection, flow-run id, attribution, then configured env,
/// later entries replacing earlier ones in place and null values dropping the name.
fn environment(config: &AciJobConfiguration, ctx: &RunContext) -> Vec<Value> {
    let mut env: Vec<(String, Option<String>)> = Vec::new();
    let mut set = |name: &str, value: Option<String>| match env.iter_mut().find(|(n, _)| n == name)
    {
        Some(slot) => slot.1 = value,
        None => env.push((name.to_string(), value)),
    };
    let prefect = &ctx.prefect;
    set("PREFECT_API_URL", Some(prefect.api_url.clone()));
    if let Some(key) = &prefect.api_key {
        set("PREFECT_API_KEY", Some(key.expose().to_string()));
    }
    if let Some(auth) = &prefect.auth_string {
        set("PREFECT_API_AUTH_STRING", Some(auth.expose().to_string()));
    }
    set("PREFECT__FLOW_RUN_ID", Some(ctx.flow_run_id.clone()));
    set("PREFECT__FLOW_ID", Some(ctx.flow_id.clone()));
    set("PREFECT__FLOW_NAME", Some(ctx.flow_name.clone()));
    set("PREFECT__DEPLOYMENT_ID", ctx.deployment_id.clone());
    set("PREFECT__DEPLOYMENT_NAME", ctx.deployment_name.clone());
    set("PREFECT__WORKER_NAME", Some(ctx.worker_name.clone()));
    set("PREFECT__WORKER_ID", ctx.worker_id.clone());
    for (name, value) in &config.env {
        set(name, value.clone());
    }
    env.into_iter()
        .filter_map(|(name, value)| {
            let value = value?;
            let secure = is_secure(config, &name, &value);
            let field = if secure { "secureValue" } else { "value" };
            Some(json!({"name": name, field: value}))
        })
        .collect()
}

/// Returns true when an env entry must be sent as `secureValue`.
fn is_secure(config: &AciJobConfiguration, name: &str, value: &str) -> bool {
    SECURE_ENV_NAMES.contains(&name) || config.secrets.appears_in(value)
}

/// Returns the job configuration as JSON with every secret replaced by `***`.
pub fn masked_configuration(config: &AciJobConfiguration) -> Value {
    let env: Map<String, Value> = config
        .env
        .iter()
        .map(|(name, value)| {
            let shown = match value {
                Some(v) if is_secure(config, name, v) => json!(MASK),
                Some(v) => json!(v),
                None => Value::Null,
            };
            (name.clone(), shown)
        })
        .collect();
    let registry = config
        .image_registry
        .as_ref()
        .map(|registry| match registry {
            ImageRegistry::AcrManagedIdentity {
                registry_url,
                identity,
            } => {
                json!({"registry_url": registry_url, "identity": identity})
            }
            ImageRegistry::Docker {
                registry_url,
                username,
                ..
            } => {
                json!({"registry_url": registry_url, "username": username, "password": MASK})
            }
        });
    let credentials = &config.aci_credentials;
    json!({
        "image": config.image,
        "command": config.command,
        "entrypoint": config.entrypoint,
        "env": env,
        "cpu": config.cpu,
        "memory": config.memory,
        "gpu_count": config.gpu.as_ref().map(|g| g.count),
        "gpu_sku": config.gpu.as_ref().map(|g| g.sku.clone()),
        "identities": config.identities,
        "image_registry": registry,
        "subnet_ids": config.subnet_ids,
        "dns_servers": config.dns_servers,
        "resource_group_name": config.resource_group_name,
        "subscription_id": MASK,
        "aci_credentials": {
            "client_id": credentials.client_id,
            "tenant_id": credentials.tenant_id,
            "client_secret": credentials.client_secret.as_ref().map(|_| MASK),
            "credential_kwargs": credentials.credential_kwargs,
        },
        "stream_output": config.stream_output,
        "task_start_timeout_seconds": config.task_start_timeout.as_secs(),
        "task_watch_poll_interval": config.task_watch_poll_interval.as_secs_f64(),
        "keep_container_group": config.keep_container_group,
        "arm_template": config.arm_template.as_ref().map(mask_body),
    })
}

/// Returns the dry-run report `{job_configuration, container_group}`, both masked.
pub fn render_report(config: &AciJobConfiguration, request: &ContainerGroupRequest) -> Value {
    json!({
        "job_configuration": masked_configuration(config),
        "container_group": request.masked(),
    })
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
