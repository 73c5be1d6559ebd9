//! The typed ACI job configuration built from a rendered job template, with validation.

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;
use serde_json::{Map, Value};

use crate::template::DEFAULT_IMAGE;
use crate::template::arm_template::{self, ArmContext};
pub use crate::template::credentials::AciCredentials;
use crate::template::credentials::read_credentials;
use crate::template::error::TemplateError;
use crate::template::fields::{Fields, invalid, prefixed};
use crate::template::render::{RenderedConfiguration, type_name};
use crate::template::secrets::{SecretString, SecretValues};

/// Command run in the container when the job configuration sets none; it reads
/// `PREFECT__FLOW_RUN_ID` and runs that flow run.
pub const DEFAULT_COMMAND: &str = "prefect flow-run execute";
/// Entrypoint of the official Prefect images, put in front of the command.
pub const DEFAULT_ENTRYPOINT: &str = "/opt/prefect/entrypoint.sh";
/// Defaults of the Python worker's job variables (prefect-azure 0.4.13).
const DEFAULT_CPU: f64 = 1.0;
const DEFAULT_MEMORY_GB: f64 = 1.0;
const DEFAULT_TASK_START_TIMEOUT_SECONDS: i64 = 240;
const DEFAULT_TASK_WATCH_POLL_INTERVAL_SECONDS: f64 = 5.0;
/// GPU SKUs that the ACI API (2026-05-01) accepts in `resources.requests.gpu.sku`.
pub const GPU_SKUS: [&str; 3] = ["K80", "P100", "V100"];

/// ARM resource id of a user-assigned managed identity.
static USER_ASSIGNED_IDENTITY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+$",
    )
    .expect("identity regex compiles")
});

/// A GPU request for the flow container.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuRequest {
    /// Number of GPUs, at least 1.
    pub count: u32,
    /// One of [`GPU_SKUS`].
    pub sku: String,
}

/// Credentials for pulling a private image.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageRegistry {
    /// Azure Container Registry through a user-assigned managed identity.
    AcrManagedIdentity {
        registry_url: String,
        identity: String,
    },
    /// Any registry with a username and password.
    Docker {
        registry_url: String,
        username: String,
        password: SecretString,
    },
}

/// A validated ACI job configuration. Debug output is the masked JSON form, so secrets and
/// env values that contain them print as `***`.
#[derive(Clone)]
pub struct AciJobConfiguration {
    pub image: String,
    /// `entrypoint` (when set) followed by the shell-split command.
    pub command: Vec<String>,
    pub entrypoint: Option<String>,
    /// Configured env in template order; `None` values are dropped from the container.
    pub env: Vec<(String, Option<String>)>,
    /// Virtual CPUs.
    pub cpu: f64,
    /// Memory in GB.
    pub memory: f64,
    pub gpu: Option<GpuRequest>,
    /// User-assigned identity resource ids.
    pub identities: Vec<String>,
    pub image_registry: Option<ImageRegistry>,
    pub subnet_ids: Vec<String>,
    pub dns_servers: Vec<String>,
    pub resource_group_name: String,
    pub subscription_id: SecretString,
    pub aci_credentials: AciCredentials,
    pub stream_output: bool,
    pub task_start_timeout: Duration,
    pub task_watch_poll_interval: Duration,
    pub keep_container_group: bool,
    /// The ARM template of pools created by the Python worker, rendered.
    pub arm_template: Option<Value>,
    /// Secret values from blocks; env values containing one go into `secureValue`.
    pub secrets: SecretValues,
}

impl std::fmt::Debug for AciJobConfiguration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = crate::template::request::masked_configuration(self);
        write!(f, "AciJobConfiguration({masked})")
    }
}

impl AciJobConfiguration {
    /// Types and validates a rendered job configuration. An error never quotes a value
    /// that contains a secret from a block.
    pub fn from_rendered(rendered: &RenderedConfiguration) -> Result<Self, TemplateError> {
        Self::read(rendered).map_err(|error| hide_secret_value(error, &rendered.secrets))
    }

    fn read(rendered: &RenderedConfiguration) -> Result<Self, TemplateError> {
        let Value::Object(map) = &rendered.configuration else {
            let value = type_name(&rendered.configuration).to_string();
            return Err(TemplateError::InvalidVariable {
                variable: "job_configuration".into(),
                value,
                expected: "an object".into(),
            });
        };
        let fields = Fields::new(map);
        let entrypoint = read_entrypoint(map)?;
        Ok(Self {
            image: fields
                .string("image")?
                .unwrap_or_else(|| DEFAULT_IMAGE.to_string()),
            command: read_command(&fields, entrypoint.as_deref())?,
            entrypoint,
            env: read_env(&fields)?,
            cpu: positive(&fields, "cpu", DEFAULT_CPU)?,
            memory: positive(&fields, "memory", DEFAULT_MEMORY_GB)?,
            gpu: read_gpu(&fields)?,
            identities: read_identities(&fields)?,
            image_registry: read_image_registry(&fields)?,
            subnet_ids: fields.string_list("subnet_ids")?,
            dns_servers: fields.string_list("dns_servers")?,
            resource_group_name: fields.required_string(
                "resource_group_name",
                "set it to the resource group that receives the container groups",
            )?,
            subscription_id: read_subscription_id(map)?,
            aci_credentials: read_credentials(&fields)?,
            stream_output: fields.boolean("stream_output", false)?,
            task_start_timeout: read_start_timeout(&fields)?,
            task_watch_poll_interval: read_poll_interval(&fields)?,
            keep_container_group: fields.boolean("keep_container_group", false)?,
            arm_template: read_arm_template(&fields)?,
            secrets: rendered.secrets.clone(),
        })
    }
}

fn hide_secret_value(error: TemplateError, secrets: &SecretValues) -> TemplateError {
    match error {
        TemplateError::InvalidVariable {
            variable,
            value,
            expected,
        } if secrets.appears_in(&value) => TemplateError::InvalidVariable {
            variable,
            value: "a value containing a secret".into(),
            expected,
        },
        other => other,
    }
}

/// Reads `arm_template` and converts it once with stand-in names, so an unsupported ARM
/// expression fails when the configuration is read rather than when the group is built.
fn read_arm_template(fields: &Fields<'_>) -> Result<Option<Value>, TemplateError> {
    let Some(template) = fields.object("arm_template")? else {
        return Ok(None);
    };
    let template = Value::Object(template.clone());
    let stand_in = ArmContext {
        group_name: "group",
        location: "location",
        container_name: "container",
        resource_group_name: "resource-group",
        subscription_id: "subscription",
    };
    arm_template::container_group_body(&template, &stand_in)?;
    Ok(Some(template))
}

/// An explicit null or empty entrypoint means none; an absent key means the default.
fn read_entrypoint(map: &Map<String, Value>) -> Result<Option<String>, TemplateError> {
    match map.get("entrypoint") {
        None => Ok(Some(DEFAULT_ENTRYPOINT.to_string())),
        Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(invalid("entrypoint", other, "a string or null")),
    }
}

fn read_command(
    fields: &Fields<'_>,
    entrypoint: Option<&str>,
) -> Result<Vec<String>, TemplateError> {
    let command = fields.string("command")?.filter(|c| !c.is_empty());
    let command = command.unwrap_or_else(|| DEFAULT_COMMAND.to_string());
    let Some(words) = shlex::split(&command) else {
        return Err(invalid(
            "command",
            &Value::String(command),
            "a command line with balanced quotes",
        ));
    };
    Ok(entrypoint
        .map(str::to_string)
        .into_iter()
        .chain(words)
        .collect())
}

fn read_env(fields: &Fields<'_>) -> Result<Vec<(String, Option<String>)>, TemplateError> {
    let Some(env) = fields.object("env")? else {
        return Ok(Vec::new());
    };
    env.iter()
        .map(|(key, value)| match value {
            Value::Null => Ok((key.clone(), None)),
            Value::String(text) => Ok((key.clone(), Some(text.clone()))),
            other => Err(TemplateError::InvalidVariable {
                variable: format!("env.{key}"),
                value: type_name(other).to_string(),
                expected: "a string or null (quote numbers and booleans)".into(),
            }),
        })
        .collect()
}

fn positive(fields: &Fields<'_>, name: &str, default: f64) -> Result<f64, TemplateError> {
    let value = fields.number(name, default)?;
    if value <= 0.0 {
        return Err(invalid(
            name,
            &serde_json::json!(value),
            "a number greater than 0",
        ));
    }
    Ok(value)
}

fn read_gpu(fields: &Fields<'_>) -> Result<Option<GpuRequest>, TemplateError> {
    let count = fields.integer("gpu_count")?;
    let sku = fields.string("gpu_sku")?;
    match (count, sku) {
        (None, None) => Ok(None),
        (Some(count), None) => Err(TemplateError::MissingVariable {
            variable: "gpu_sku".into(),
            hint: format!(
                "gpu_count is {count}, so set gpu_sku to one of {}",
                GPU_SKUS.join(", ")
            ),
        }),
        (None, Some(sku)) => Err(TemplateError::MissingVariable {
            variable: "gpu_count".into(),
            hint: format!("gpu_sku is {sku:?}, so set gpu_count to the number of GPUs"),
        }),
        (Some(count), Some(sku)) => {
            let count = u32::try_from(count)
                .ok()
                .filter(|c| *c >= 1)
                .ok_or_else(|| {
                    invalid(
                        "gpu_count",
                        &serde_json::json!(count),
                        "an integer of at least 1",
                    )
                })?;
            if !GPU_SKUS.contains(&sku.as_str()) {
                let expected = format!("one of {}", GPU_SKUS.join(", "));
                return Err(invalid("gpu_sku", &Value::String(sku), &expected));
            }
            Ok(Some(GpuRequest { count, sku }))
        }
    }
}

/// Checks that `id` is a user-assigned identity resource id.
fn check_identity(variable: &str, id: &str) -> Result<(), TemplateError> {
    if USER_ASSIGNED_IDENTITY.is_match(id) {
        return Ok(());
    }
    Err(invalid(
        variable,
        &Value::String(id.to_string()),
        "a resource id like /subscriptions/{subscription}/resourceGroups/{group}/providers/\
         Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
    ))
}

fn read_identities(fields: &Fields<'_>) -> Result<Vec<String>, TemplateError> {
    let identities = fields.string_list("identities")?;
    for (i, id) in identities.iter().enumerate() {
        check_identity(&format!("identities[{i}]"), id)?;
    }
    Ok(identities)
}

fn read_image_registry(fields: &Fields<'_>) -> Result<Option<ImageRegistry>, TemplateError> {
    let Some(registry) = fields.object("image_registry")? else {
        return Ok(None);
    };
    let inner = Fields::new(registry);
    let hint = "set registry_url, the registry host such as myregistry.azurecr.io";
    let registry_url = inner
        .required_string("registry_url", hint)
        .map_err(|e| prefixed("image_registry", e))?;
    if let Some(identity) = inner
        .string("identity")
        .map_err(|e| prefixed("image_registry", e))?
    {
        check_identity("image_registry.identity", &identity)?;
        return Ok(Some(ImageRegistry::AcrManagedIdentity {
            registry_url,
            identity,
        }));
    }
    let username = inner.required_string("username", "set username, or identity for ACR");
    let username = username.map_err(|e| prefixed("image_registry", e))?;
    let password = match registry.get("password") {
        Some(Value::String(text)) if !text.is_empty() => SecretString::new(text.clone()),
        _ => {
            return Err(TemplateError::MissingVariable {
                variable: "image_registry.password".into(),
                hint: "a Docker registry needs a username and a password".into(),
            });
        }
    };
    Ok(Some(ImageRegistry::Docker {
        registry_url,
        username,
        password,
    }))
}

/// Reads `subscription_id` without quoting its value in errors, since it is a secret.
fn read_subscription_id(map: &Map<String, Value>) -> Result<SecretString, TemplateError> {
    match map.get("subscription_id") {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(SecretString::new(text.trim())),
        None | Some(Value::Null) | Some(Value::String(_)) => Err(TemplateError::MissingVariable {
            variable: "subscription_id".into(),
            hint: "set it to the Azure subscription id that owns the resource group".into(),
        }),
        Some(other) => Err(TemplateError::InvalidVariable {
            variable: "subscription_id".into(),
            value: type_name(other).to_string(),
            expected: "a string".into(),
        }),
    }
}

fn read_start_timeout(fields: &Fields<'_>) -> Result<Duration, TemplateError> {
    let name = "task_start_timeout_seconds";
    let seconds = fields
        .integer(name)?
        .unwrap_or(DEFAULT_TASK_START_TIMEOUT_SECONDS);
    let seconds = u64::try_from(seconds).ok().filter(|s| *s > 0);
    let seconds = seconds.ok_or_else(|| {
        let value = fields.get(name).cloned().unwrap_or(Value::Null);
        invalid(name, &value, "a whole number of seconds greater than 0")
    })?;
    Ok(Duration::from_secs(seconds))
}

fn read_poll_interval(fields: &Fields<'_>) -> Result<Duration, TemplateError> {
    let name = "task_watch_poll_interval";
    let seconds = fields.number(name, DEFAULT_TASK_WATCH_POLL_INTERVAL_SECONDS)?;
    if seconds <= 0.0 || seconds > 86_400.0 {
        let expected = "a number of seconds greater than 0 and at most 86400";
        return Err(invalid(name, &serde_json::json!(seconds), expected));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
#[path = "job_tests.rs"]
mod tests;
