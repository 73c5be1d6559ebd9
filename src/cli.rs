//! Command-line interface: `start`, `default-template` and `render`.
//!
//! Every flag has an environment variable. Where Prefect has a setting for the same thing,
//! the variable is Prefect's own (`PREFECT_WORKER_QUERY_SECONDS` and so on); the rest use the
//! `PREFECT_ACI_` prefix.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::arm::{AzureAuth, AzureCloud};

/// A Prefect worker for Azure Container Instances.
#[derive(Debug, Parser)]
#[command(name = "prefect-aci-worker", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub logging: LoggingArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the worker: poll a work pool and run its flow runs as ACI container groups.
    Start(Box<StartArgs>),
    /// Print the default base job template for work pools of type `azure-container-instance`.
    DefaultTemplate,
    /// Print the resolved job configuration and the container group request body for a
    /// deployment, with secrets masked. Sends nothing to Azure except an optional read of the
    /// resource group's location.
    Render(Box<RenderArgs>),
}

/// Output format of the worker's own log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with span fields, for log collectors.
    Json,
}

#[derive(Debug, Args)]
pub struct LoggingArgs {
    /// Format of log lines written to stderr.
    #[arg(long, global = true, env = "PREFECT_ACI_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log level or `tracing` filter directive (for example `info` or
    /// `prefect_aci_worker=debug,info`). `RUST_LOG` is used when this is not set.
    #[arg(long, global = true, env = "PREFECT_ACI_LOG_LEVEL")]
    pub log_level: Option<String>,
}

/// Settings of the Prefect API connection that are not read from the Prefect profile.
#[derive(Debug, Clone, Args)]
pub struct PrefectArgs {
    /// Maximum retries of one Prefect API request on 408, 429, 502, 503 and transport
    /// errors.
    #[arg(long, env = "PREFECT_CLIENT_MAX_RETRIES", default_value_t = 5)]
    pub prefect_max_retries: u32,
}

/// Azure Resource Manager settings.
#[derive(Debug, Clone, Args)]
pub struct AzureArgs {
    /// Azure cloud: picks the ARM endpoint, the authority host and the token scope.
    #[arg(long, env = "PREFECT_ACI_AZURE_CLOUD", value_enum, default_value_t = AzureCloud::Public)]
    pub azure_cloud: AzureCloud,

    /// ARM endpoint URL overriding the cloud's, for emulators and private clouds. Plain
    /// `http://` is accepted only for loopback addresses.
    #[arg(long, env = "PREFECT_ACI_ARM_ENDPOINT")]
    pub arm_endpoint: Option<String>,

    /// ARM api-version for container group calls (2026-05-01 or 2025-09-01).
    #[arg(
        long,
        env = "PREFECT_ACI_ARM_API_VERSION",
        default_value = "2026-05-01"
    )]
    pub arm_api_version: String,

    /// Credential used for ARM tokens. `auto` takes the first that applies: a pool's
    /// `aci_credentials`; AZURE_CLIENT_SECRET (with AZURE_TENANT_ID and AZURE_CLIENT_ID);
    /// AZURE_FEDERATED_TOKEN_FILE (workload identity); IDENTITY_ENDPOINT or MSI_ENDPOINT, or
    /// a configured user-assigned identity (managed identity); `az` on PATH (Azure CLI);
    /// otherwise managed identity through the instance metadata endpoint.
    #[arg(long, env = "PREFECT_ACI_AZURE_AUTH", value_enum, default_value_t = AzureAuth::Auto)]
    pub azure_auth: AzureAuth,

    /// Client id of the user-assigned managed identity to use. Without this and
    /// `--managed-identity-resource-id`, the system-assigned identity is used.
    #[arg(long, env = "PREFECT_ACI_MANAGED_IDENTITY_CLIENT_ID")]
    pub managed_identity_client_id: Option<String>,

    /// ARM resource id of the user-assigned managed identity to use.
    #[arg(long, env = "PREFECT_ACI_MANAGED_IDENTITY_RESOURCE_ID")]
    pub managed_identity_resource_id: Option<String>,

    /// Timeout of one ARM request, in seconds.
    #[arg(
        long,
        allow_negative_numbers = true,
        env = "PREFECT_ACI_ARM_TIMEOUT_SECONDS",
        default_value_t = 30.0
    )]
    pub arm_timeout_seconds: f64,

    /// Maximum retries of one ARM request on 429, 5xx and transport errors.
    #[arg(long, env = "PREFECT_ACI_ARM_MAX_RETRIES", default_value_t = 5)]
    pub arm_max_retries: u32,

    /// ARM read requests allowed in a burst, per subscription and region.
    #[arg(long, env = "PREFECT_ACI_ARM_READ_BURST", default_value_t = 250)]
    pub arm_read_burst: u32,

    /// ARM read tokens refilled per second, per subscription and region.
    #[arg(long, env = "PREFECT_ACI_ARM_READS_PER_SECOND", default_value_t = 25.0)]
    pub arm_reads_per_second: f64,

    /// ARM write requests allowed in a burst, per subscription and region.
    #[arg(long, env = "PREFECT_ACI_ARM_WRITE_BURST", default_value_t = 200)]
    pub arm_write_burst: u32,

    /// ARM write tokens refilled per second, per subscription and region.
    #[arg(
        long,
        env = "PREFECT_ACI_ARM_WRITES_PER_SECOND",
        default_value_t = 10.0
    )]
    pub arm_writes_per_second: f64,

    /// ARM delete requests allowed in a burst, per subscription and region.
    #[arg(long, env = "PREFECT_ACI_ARM_DELETE_BURST", default_value_t = 200)]
    pub arm_delete_burst: u32,

    /// ARM delete tokens refilled per second, per subscription and region.
    #[arg(
        long,
        env = "PREFECT_ACI_ARM_DELETES_PER_SECOND",
        default_value_t = 10.0
    )]
    pub arm_deletes_per_second: f64,

    /// Container group creates allowed per 5 minutes, per subscription and region (ACI quota).
    #[arg(long, env = "PREFECT_ACI_CREATES_PER_5_MINUTES", default_value_t = 100)]
    pub creates_per_5_minutes: u32,

    /// Container group creates allowed per hour, per subscription and region (ACI quota).
    #[arg(long, env = "PREFECT_ACI_CREATES_PER_HOUR", default_value_t = 300)]
    pub creates_per_hour: u32,

    /// Container group deletes allowed per 5 minutes, per subscription and region (ACI quota).
    #[arg(long, env = "PREFECT_ACI_DELETES_PER_5_MINUTES", default_value_t = 100)]
    pub deletes_per_5_minutes: u32,

    /// Container group deletes allowed per hour, per subscription and region (ACI quota).
    #[arg(long, env = "PREFECT_ACI_DELETES_PER_HOUR", default_value_t = 300)]
    pub deletes_per_hour: u32,
}

/// Options of `start`, mirroring `prefect worker start`.
#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// Work pool to poll.
    #[arg(long, short = 'p', env = "PREFECT_ACI_WORK_POOL")]
    pub pool: String,

    /// Work queue of the pool to poll; repeat for several. All of the pool's queues when
    /// none is given.
    #[arg(
        long = "work-queue",
        short = 'q',
        env = "PREFECT_ACI_WORK_QUEUES",
        value_delimiter = ','
    )]
    pub work_queues: Vec<String>,

    /// Worker name shown in Prefect. It identifies which runs this worker owns, so keep it
    /// stable across restarts. Defaults to `prefect-aci-worker-<hostname>`.
    #[arg(long, short = 'n', env = "PREFECT_ACI_WORKER_NAME")]
    pub name: Option<String>,

    /// Maximum number of flow runs with a container group at once, counting groups adopted
    /// after a restart. No limit when not set.
    #[arg(long, short = 'l', env = "PREFECT_ACI_WORKER_LIMIT")]
    pub limit: Option<usize>,

    /// Seconds ahead of their scheduled start that flow runs are claimed.
    #[arg(
        long,
        allow_negative_numbers = true,
        env = "PREFECT_WORKER_PREFETCH_SECONDS",
        default_value_t = 10.0
    )]
    pub prefetch_seconds: f64,

    /// Seconds between reconcile passes (with up to 30 % jitter).
    #[arg(
        long,
        allow_negative_numbers = true,
        env = "PREFECT_WORKER_QUERY_SECONDS",
        default_value_t = 10.0
    )]
    pub query_seconds: f64,

    /// Seconds between worker heartbeats to the work pool.
    #[arg(
        long,
        allow_negative_numbers = true,
        env = "PREFECT_WORKER_HEARTBEAT_SECONDS",
        default_value_t = 30.0
    )]
    pub heartbeat_seconds: f64,

    /// Fail instead of creating the work pool when it does not exist.
    #[arg(long, env = "PREFECT_ACI_NO_CREATE_POOL_IF_NOT_FOUND")]
    pub no_create_pool_if_not_found: bool,

    /// JSON file with the base job template used when the pool is created. Defaults to the
    /// worker's own template (see `default-template`).
    #[arg(long, env = "PREFECT_ACI_BASE_JOB_TEMPLATE")]
    pub base_job_template: Option<PathBuf>,

    /// Run one reconcile pass, wait until the flow runs it started have finished and their
    /// container groups are deleted, then exit.
    #[arg(long, env = "PREFECT_ACI_RUN_ONCE")]
    pub run_once: bool,

    /// Address of the HTTP server for `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, env = "PREFECT_ACI_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    /// Seconds after a worker's last heartbeat before this worker takes over the runs that
    /// worker claimed.
    #[arg(
        long,
        allow_negative_numbers = true,
        env = "PREFECT_ACI_LEASE_SECONDS",
        default_value_t = 120.0
    )]
    pub lease_seconds: f64,

    /// Seconds a tagged container group without an active flow run is kept before it is
    /// deleted as an orphan.
    #[arg(
        long,
        env = "PREFECT_ACI_ORPHAN_GRACE_SECONDS",
        default_value_t = 300.0
    )]
    pub orphan_grace_seconds: f64,

    /// Seconds the worker waits, after a container exited with code 0, for the flow run to
    /// reach a final state before marking it Crashed.
    #[arg(
        long,
        env = "PREFECT_ACI_FINAL_STATE_GRACE_SECONDS",
        default_value_t = 120.0
    )]
    pub final_state_grace_seconds: f64,

    /// Lower bound, in seconds, of a run's `task_watch_poll_interval`, the time between reads
    /// of its container group while it provisions or its run is not yet Running in Prefect.
    #[arg(
        long,
        env = "PREFECT_ACI_MIN_POLL_INTERVAL_SECONDS",
        default_value_t = 1.0
    )]
    pub min_poll_interval_seconds: f64,

    /// Seconds between reads of a container group while its flow container runs and Prefect
    /// shows the run Running.
    #[arg(
        long,
        env = "PREFECT_ACI_READ_INTERVAL_RUNNING_SECONDS",
        default_value_t = 60.0
    )]
    pub read_interval_running_seconds: f64,

    /// Seconds between reads of a container's log while `stream_output` is on.
    #[arg(
        long,
        allow_negative_numbers = true,
        env = "PREFECT_ACI_LOG_INTERVAL_SECONDS",
        default_value_t = 10.0
    )]
    pub log_interval_seconds: f64,

    /// Seconds between repeated deletes (or stops) of a container group that is still there.
    #[arg(
        long,
        env = "PREFECT_ACI_CLEANUP_RETRY_SECONDS",
        default_value_t = 30.0
    )]
    pub cleanup_retry_seconds: f64,

    /// Maximum number of actions (ARM or Prefect calls for different flow runs) in flight at
    /// once.
    #[arg(long, env = "PREFECT_ACI_MAX_CONCURRENT_ACTIONS", default_value_t = 16)]
    pub max_concurrent_actions: usize,

    #[command(flatten)]
    pub prefect: PrefectArgs,

    #[command(flatten)]
    pub azure: AzureArgs,
}

/// Options of `render`.
#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// Work pool whose base job template is rendered.
    #[arg(long, short = 'p', env = "PREFECT_ACI_WORK_POOL")]
    pub pool: String,

    /// Deployment, as `<flow name>/<deployment name>` or its id.
    #[arg(long, short = 'd', env = "PREFECT_ACI_DEPLOYMENT")]
    pub deployment: String,

    /// Flow run whose job variables are applied on top of the deployment's.
    #[arg(long, env = "PREFECT_ACI_FLOW_RUN")]
    pub flow_run: Option<String>,

    /// Extra job variables as a JSON object, applied last, as a flow run's would be.
    #[arg(long, env = "PREFECT_ACI_JOB_VARIABLES")]
    pub job_variables: Option<String>,

    /// Location for the container group. When not set, the resource group's location is read
    /// from ARM; if that fails, the ARM expression `[resourceGroup().location]` is printed.
    #[arg(long, env = "PREFECT_ACI_LOCATION")]
    pub location: Option<String>,

    /// Worker name used in the attribution variables.
    #[arg(long, short = 'n', env = "PREFECT_ACI_WORKER_NAME")]
    pub name: Option<String>,

    #[command(flatten)]
    pub prefect: PrefectArgs,

    #[command(flatten)]
    pub azure: AzureArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every flag and its environment variable must be listed in docs/configuration.md.
    #[test]
    fn configuration_doc_lists_every_flag() {
        let doc = include_str!("../docs/configuration.md");
        let command = Cli::command();
        let mut commands: Vec<&clap::Command> = vec![&command];
        commands.extend(command.get_subcommands());
        for sub in commands {
            for arg in sub.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if long == "help" || long == "version" {
                    continue;
                }
                let flag = format!("`--{long}`");
                assert!(doc.contains(&flag), "docs/configuration.md lacks {flag}");
                if let Some(env) = arg.get_env() {
                    let env = format!("`{}`", env.to_string_lossy());
                    assert!(doc.contains(&env), "docs/configuration.md lacks {env}");
                }
            }
        }
    }

    #[test]
    fn start_parses_repeated_work_queues() {
        let cli = Cli::try_parse_from([
            "prefect-aci-worker",
            "start",
            "--pool",
            "p",
            "-q",
            "a",
            "--work-queue",
            "b",
        ])
        .expect("valid arguments");
        let Command::Start(start) = cli.command else {
            panic!("expected the start command");
        };
        assert_eq!(start.work_queues, vec!["a", "b"]);
    }
}
