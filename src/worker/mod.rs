//! The running worker: startup, the reconcile loop's IO side (snapshots, the executor, log
//! shipping), heartbeats, and shutdown.

pub mod azure;
pub mod convert;
pub mod executor;
pub mod jobs;
pub mod lookup;
pub mod pool;
pub mod run_logs;
pub mod shutdown;
pub mod snapshot;
pub mod state;
pub mod submit;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use crate::config::WorkerConfig;
use crate::http::{self, Health, HttpError};
use crate::metrics::Metrics;
use crate::prefect::{PrefectClient, PrefectError};
use crate::reconcile::WorkerIdentity;

use azure::{AzureClients, AzureError};
use pool::{PoolError, PoolOptions};
use shutdown::ShutdownSignal;
use state::Shared;

/// Wait between attempts to read the pool or get a first ARM token at startup.
const STARTUP_RETRY: Duration = Duration::from_secs(5);
/// `/healthz` fails when no tick finished for this many query intervals, the same window
/// Prefect's own worker health check uses (30 intervals, 300 s at the default 10 s).
const HEALTH_INTERVALS: u32 = 30;
/// Lower bound of that window, for very short query intervals.
const MIN_HEALTH_WINDOW: Duration = Duration::from_secs(60);

/// Errors that end the worker.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("could not create the Prefect API client: {0}")]
    Prefect(#[from] PrefectError),
    #[error("could not set up the Azure credential or ARM client: {0}")]
    Azure(#[from] AzureError),
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error("could not install the signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// A task the worker cannot run without stopped.
    #[error("the {0} stopped unexpectedly")]
    TaskEnded(&'static str),
}

/// Runs the worker until shutdown.
pub async fn run(config: WorkerConfig) -> Result<(), WorkerError> {
    let metrics = Metrics::new();
    let window = (config.query_interval * HEALTH_INTERVALS).max(MIN_HEALTH_WINDOW);
    let health = Health::new(window);
    let (trigger, signal) = shutdown::channel();
    shutdown::listen(trigger).map_err(WorkerError::Signals)?;

    let listener = http::bind(config.http_addr).await?;
    let server = tokio::spawn(http::serve(
        listener,
        health.clone(),
        metrics.clone(),
        wait_for(signal.clone()),
    ));

    let prefect = PrefectClient::new(&config.prefect, metrics.clone())?;
    prefect.set_worker_name(&config.worker_name);
    let azure = AzureClients::new(config.arm.clone(), config.identity.clone(), metrics.clone())?;
    tracing::info!(work_pool = %config.pool, worker = %config.worker_name, api_url = %config.prefect.api_url, arm_endpoint = %config.arm.endpoint, "starting worker");
    let Some(pool) = read_pool(&prefect, &config, signal.clone()).await? else {
        return Ok(());
    };

    health.set_prefect_answered();
    health.set_pool_read();
    let identity = WorkerIdentity {
        worker_name: config.worker_name.clone(),
        work_pool_name: pool.name.clone(),
        work_pool_id: pool.id,
    };

    let heartbeats = tokio::spawn(pool::heartbeat_loop(
        prefect.clone(),
        pool.name.clone(),
        config.worker_name.clone(),
        config.heartbeat_interval,
        signal.clone(),
    ));
    let shared = Arc::new(Shared::new(
        config,
        prefect,
        azure,
        metrics,
        health,
        identity,
        pool.base_job_template,
    ));
    tokio::spawn(check_token(shared.clone(), signal.clone()));
    let reconciler = tokio::spawn(executor::run(shared, signal.clone()));
    supervise(reconciler, server, heartbeats, signal).await
}

/// Waits for the reconcile loop to finish. The HTTP server and the heartbeat loop end only
/// at shutdown, so either one ending earlier ends the worker with an error.
async fn supervise(
    mut reconciler: tokio::task::JoinHandle<()>,
    mut server: tokio::task::JoinHandle<Result<(), HttpError>>,
    mut heartbeats: tokio::task::JoinHandle<()>,
    signal: ShutdownSignal,
) -> Result<(), WorkerError> {
    let (mut server_done, mut heartbeats_done) = (false, false);
    loop {
        tokio::select! {
            result = &mut reconciler => {
                result.map_err(|_| WorkerError::TaskEnded("reconcile loop"))?;
                tracing::info!("worker stopped");
                return Ok(());
            }
            result = &mut server, if !server_done => {
                server_done = true;
                result.map_err(|_| WorkerError::TaskEnded("HTTP server"))??;
                if !signal.is_requested() {
                    return Err(WorkerError::TaskEnded("HTTP server"));
                }
            }
            result = &mut heartbeats, if !heartbeats_done => {
                heartbeats_done = true;
                if result.is_err() || !signal.is_requested() {
                    return Err(WorkerError::TaskEnded("heartbeat loop"));
                }
            }
        }
    }
}

async fn wait_for(mut signal: ShutdownSignal) {
    signal.requested().await;
}

/// Reads or creates the pool, retrying transient failures until shutdown. Returns `None`
/// when shutdown came first.
async fn read_pool(
    prefect: &PrefectClient,
    config: &WorkerConfig,
    mut signal: ShutdownSignal,
) -> Result<Option<crate::prefect::models::WorkPool>, WorkerError> {
    let options = PoolOptions {
        name: config.pool.clone(),
        create_if_missing: config.create_pool_if_missing,
        base_job_template: config.base_job_template.clone(),
    };
    loop {
        match pool::ensure_pool(prefect, &options).await {
            Ok(pool) => return Ok(Some(pool)),
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, "reading the work pool failed; retrying");
            }
            Err(error) => return Err(error.into()),
        }
        tokio::select! {
            _ = tokio::time::sleep(STARTUP_RETRY) => {}
            _ = signal.requested() => return Ok(None),
        }
    }
}

/// Gets one ARM token with the worker's credential for `/readyz`, retrying until it works.
async fn check_token(shared: Arc<Shared>, mut signal: ShutdownSignal) {
    loop {
        match shared.azure.check_token().await {
            Ok(()) => {
                shared.health.set_arm_token_obtained();
                return;
            }
            Err(error) => tracing::warn!(%error, "getting an ARM token failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(STARTUP_RETRY) => {}
            _ = signal.requested() => return,
        }
    }
}
