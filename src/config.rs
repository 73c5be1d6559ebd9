//! Worker settings: the parsed command line checked and turned into the typed settings of
//! each component.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::arm::client::SUPPORTED_API_VERSIONS;
use crate::arm::limiter::{BucketSize, LimiterSettings, QuotaWindow};
use crate::arm::retry::RetrySettings;
use crate::arm::{ArmSettings, EndpointSettings, IdentitySettings, ManagedIdentityId};
use crate::cli::{AzureArgs, PrefectArgs, StartArgs};
use crate::prefect::{PrefectSettings, SettingsError};
use crate::reconcile::PlannerSettings;

/// Errors in the worker's settings. Each names the flag or variable and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Prefect(#[from] SettingsError),
    #[error(transparent)]
    Endpoint(#[from] crate::arm::cloud::EndpointError),
    /// A duration flag is negative, not a number, or zero where zero makes no sense.
    #[error("invalid --{flag} {value}: expected a positive number of seconds")]
    InvalidSeconds { flag: &'static str, value: f64 },
    #[error("invalid --arm-api-version {value:?}: supported versions are {supported}")]
    ApiVersion { value: String, supported: String },
    #[error(
        "invalid --pool {value:?}: give the name of a work pool of type azure-container-instance"
    )]
    PoolName { value: String },
    #[error("invalid --name {value:?}: a worker name may not be empty or contain `/` or `%`")]
    WorkerName { value: String },
    #[error("could not read --base-job-template {path}: {source}")]
    TemplateFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "invalid --base-job-template {path}: {source}; expected a JSON object with `job_configuration` and `variables`"
    )]
    TemplateJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "--managed-identity-client-id and --managed-identity-resource-id are both set; give one"
    )]
    TwoManagedIdentities,
    /// A lease this short lets live workers take each other's runs between heartbeats.
    #[error(
        "invalid --lease-seconds {lease}: it must be at least twice --heartbeat-seconds ({heartbeat}), or live workers take over each other's runs"
    )]
    LeaseTooShort { lease: f64, heartbeat: f64 },
    #[error(
        "invalid --base-job-template {path}: `{key}` is missing or not an object; start from `prefect-aci-worker default-template`"
    )]
    TemplateShape { path: PathBuf, key: &'static str },
}

/// Everything `start` needs, checked.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub pool: String,
    pub work_queues: Vec<String>,
    pub worker_name: String,
    pub create_pool_if_missing: bool,
    /// Template used when the pool is created or has none.
    pub base_job_template: serde_json::Value,
    pub prefetch: Duration,
    pub query_interval: Duration,
    pub heartbeat_interval: Duration,
    pub run_once: bool,
    pub http_addr: SocketAddr,
    pub max_concurrent_actions: usize,
    pub planner: PlannerSettings,
    pub prefect: PrefectSettings,
    pub arm: ArmSettings,
    pub identity: IdentitySettings,
}

impl WorkerConfig {
    /// Checks `args` and reads the Prefect connection from the environment or profile.
    pub fn from_args(args: &StartArgs) -> Result<Self, ConfigError> {
        let worker_name = worker_name(args.name.as_deref())?;
        if args.pool.trim().is_empty() || args.pool.contains('/') {
            return Err(ConfigError::PoolName {
                value: args.pool.clone(),
            });
        }
        if args.lease_seconds < 2.0 * args.heartbeat_seconds {
            return Err(ConfigError::LeaseTooShort {
                lease: args.lease_seconds,
                heartbeat: args.heartbeat_seconds,
            });
        }
        let base_job_template = match &args.base_job_template {
            Some(path) => read_template(path)?,
            None => crate::template::default_base_job_template(),
        };
        Ok(Self {
            pool: args.pool.clone(),
            work_queues: args.work_queues.clone(),
            worker_name,
            create_pool_if_missing: !args.no_create_pool_if_not_found,
            base_job_template,
            prefetch: seconds("prefetch-seconds", args.prefetch_seconds, true)?,
            query_interval: seconds("query-seconds", args.query_seconds, false)?,
            heartbeat_interval: seconds("heartbeat-seconds", args.heartbeat_seconds, false)?,
            run_once: args.run_once,
            http_addr: args.http_addr,
            max_concurrent_actions: args.max_concurrent_actions.max(1),
            planner: planner_settings(args)?,
            prefect: prefect_settings(&args.prefect)?,
            arm: arm_settings(&args.azure)?,
            identity: identity_settings(&args.azure)?,
        })
    }
}

/// Resolves the Prefect connection like the Prefect CLI, then applies the flags.
pub fn prefect_settings(args: &PrefectArgs) -> Result<PrefectSettings, ConfigError> {
    let mut settings = PrefectSettings::from_env()?;
    settings.max_retries = args.prefect_max_retries;
    Ok(settings)
}

/// Builds the ARM client settings from the Azure flags.
pub fn arm_settings(args: &AzureArgs) -> Result<ArmSettings, ConfigError> {
    if !SUPPORTED_API_VERSIONS.contains(&args.arm_api_version.as_str()) {
        return Err(ConfigError::ApiVersion {
            value: args.arm_api_version.clone(),
            supported: SUPPORTED_API_VERSIONS.join(", "),
        });
    }
    let endpoint = EndpointSettings {
        cloud: args.azure_cloud,
        arm_endpoint: args.arm_endpoint.clone(),
    }
    .arm_endpoint()?;
    let mut settings = ArmSettings::new(endpoint);
    settings.api_version = args.arm_api_version.clone();
    settings.request_timeout = seconds("arm-timeout-seconds", args.arm_timeout_seconds, false)?;
    settings.retry = RetrySettings {
        max_retries: args.arm_max_retries as usize,
        ..RetrySettings::default()
    };
    settings.limits = limiter_settings(args);
    settings.ca_bundle = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    Ok(settings)
}

fn limiter_settings(args: &AzureArgs) -> LimiterSettings {
    let bucket = |burst: u32, refill_per_second: f64| BucketSize {
        burst: f64::from(burst.max(1)),
        refill_per_second: refill_per_second.max(0.001),
    };
    let windows = |per_5_minutes: u32, per_hour: u32| {
        vec![
            QuotaWindow {
                max: per_5_minutes.max(1),
                window: Duration::from_secs(5 * 60),
            },
            QuotaWindow {
                max: per_hour.max(1),
                window: Duration::from_secs(60 * 60),
            },
        ]
    };
    LimiterSettings {
        reads: bucket(args.arm_read_burst, args.arm_reads_per_second),
        writes: bucket(args.arm_write_burst, args.arm_writes_per_second),
        deletes: bucket(args.arm_delete_burst, args.arm_deletes_per_second),
        container_group_creates: windows(args.creates_per_5_minutes, args.creates_per_hour),
        container_group_deletes: windows(args.deletes_per_5_minutes, args.deletes_per_hour),
    }
}

/// Builds the identity settings from the Azure flags.
pub fn identity_settings(args: &AzureArgs) -> Result<IdentitySettings, ConfigError> {
    let managed_identity = match (
        &args.managed_identity_client_id,
        &args.managed_identity_resource_id,
    ) {
        (Some(_), Some(_)) => return Err(ConfigError::TwoManagedIdentities),
        (Some(id), None) => Some(ManagedIdentityId::ClientId(id.clone())),
        (None, Some(id)) => Some(ManagedIdentityId::ResourceId(id.clone())),
        (None, None) => None,
    };
    Ok(IdentitySettings {
        auth: args.azure_auth,
        cloud: args.azure_cloud,
        managed_identity,
        pool_client_secret: None,
    })
}

fn planner_settings(args: &StartArgs) -> Result<PlannerSettings, ConfigError> {
    Ok(PlannerSettings {
        lease_period: seconds("lease-seconds", args.lease_seconds, false)?,
        orphan_grace: seconds("orphan-grace-seconds", args.orphan_grace_seconds, true)?,
        final_state_grace: seconds(
            "final-state-grace-seconds",
            args.final_state_grace_seconds,
            true,
        )?,
        read_interval_provisioning: seconds(
            "min-poll-interval-seconds",
            args.min_poll_interval_seconds,
            false,
        )?,
        read_interval_running: seconds(
            "read-interval-running-seconds",
            args.read_interval_running_seconds,
            false,
        )?,
        log_interval: seconds("log-interval-seconds", args.log_interval_seconds, false)?,
        cleanup_retry_interval: seconds(
            "cleanup-retry-seconds",
            args.cleanup_retry_seconds,
            false,
        )?,
        limit: args.limit,
    })
}

/// Converts a seconds flag, rejecting negative, non-finite and (unless `zero_ok`) zero values.
fn seconds(flag: &'static str, value: f64, zero_ok: bool) -> Result<Duration, ConfigError> {
    let valid = value.is_finite() && (value > 0.0 || (zero_ok && value == 0.0));
    if !valid {
        return Err(ConfigError::InvalidSeconds { flag, value });
    }
    Ok(Duration::from_secs_f64(value))
}

/// Returns the worker name, defaulting to `prefect-aci-worker-<hostname>` so that a restarted
/// worker keeps its name and with it the ownership of the runs it claimed.
fn worker_name(name: Option<&str>) -> Result<String, ConfigError> {
    let name = match name {
        Some(name) => name.to_owned(),
        None => format!("prefect-aci-worker-{}", hostname()),
    };
    if name.trim().is_empty() || name.contains('/') || name.contains('%') {
        return Err(ConfigError::WorkerName { value: name });
    }
    Ok(name)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn read_template(path: &PathBuf) -> Result<serde_json::Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::TemplateFile {
        path: path.clone(),
        source,
    })?;
    let template: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| ConfigError::TemplateJson {
            path: path.clone(),
            source,
        })?;
    for key in ["job_configuration", "variables"] {
        if !template.get(key).is_some_and(serde_json::Value::is_object) {
            return Err(ConfigError::TemplateShape {
                path: path.clone(),
                key,
            });
        }
    }
    Ok(template)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_rejects_negative() {
        assert!(seconds("query-seconds", -1.0, false).is_err());
    }

    #[test]
    fn seconds_rejects_zero_unless_allowed() {
        assert!(seconds("query-seconds", 0.0, false).is_err());
        assert_eq!(
            seconds("prefetch-seconds", 0.0, true).unwrap(),
            Duration::ZERO
        );
    }

    #[test]
    fn seconds_rejects_nan() {
        assert!(seconds("query-seconds", f64::NAN, false).is_err());
    }

    #[test]
    fn worker_name_rejects_slash() {
        let error = worker_name(Some("a/b")).unwrap_err();
        assert!(error.to_string().contains("a/b"));
    }

    #[test]
    fn worker_name_defaults_to_hostname() {
        let name = worker_name(None).unwrap();
        assert!(name.starts_with("prefect-aci-worker-"));
    }
}
