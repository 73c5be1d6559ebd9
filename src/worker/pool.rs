//! The work pool: read or create it at start, and send worker heartbeats.

use std::time::Duration;

use crate::prefect::models::{WorkPool, WorkPoolCreate, WorkPoolUpdate};
use crate::prefect::{PrefectClient, PrefectError};

use super::shutdown::ShutdownSignal;

/// The work pool type this worker serves, the same as the Python worker's.
pub const WORK_POOL_TYPE: &str = "azure-container-instance";

/// Errors from reading or creating the work pool.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The pool does not exist and `--no-create-pool-if-not-found` was given.
    #[error(
        "work pool {pool:?} was not found; create it (for example `prefect work-pool create {pool} --type {WORK_POOL_TYPE}`) or start without --no-create-pool-if-not-found"
    )]
    NotFound { pool: String },
    /// The pool serves another worker type; claiming its runs would crash them.
    #[error(
        "work pool {pool:?} has type {pool_type:?}, but this worker serves pools of type {WORK_POOL_TYPE:?}; check --pool"
    )]
    WrongType { pool: String, pool_type: String },
    /// A Prefect call failed.
    #[error("could not read or create work pool {pool:?}: {source}")]
    Prefect {
        pool: String,
        #[source]
        source: PrefectError,
    },
}

impl PoolError {
    /// True when a later attempt may succeed (a Prefect 5xx, timeout or lost connection).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Prefect { source, .. } if source.is_transient())
    }
}

/// Settings of `ensure_pool`.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub name: String,
    pub create_if_missing: bool,
    /// The template sent when the pool is created, and when an existing pool has none.
    pub base_job_template: serde_json::Value,
}

/// Reads the work pool, creating it with `options.base_job_template` when it is missing
/// (unless creation is off), and fills in an empty template, as Prefect's workers do.
pub async fn ensure_pool(
    client: &PrefectClient,
    options: &PoolOptions,
) -> Result<WorkPool, PoolError> {
    let wrap = |source| PoolError::Prefect {
        pool: options.name.clone(),
        source,
    };
    let pool = match client.read_work_pool(&options.name).await.map_err(wrap)? {
        Some(pool) => pool,
        None if options.create_if_missing => {
            tracing::info!(work_pool = %options.name, "work pool not found, creating it");
            let create = WorkPoolCreate {
                name: options.name.clone(),
                pool_type: WORK_POOL_TYPE.to_owned(),
                base_job_template: Some(options.base_job_template.clone()),
                description: None,
            };
            client.create_work_pool(&create).await.map_err(wrap)?
        }
        None => {
            return Err(PoolError::NotFound {
                pool: options.name.clone(),
            });
        }
    };
    if pool.pool_type != WORK_POOL_TYPE {
        return Err(PoolError::WrongType {
            pool: pool.name,
            pool_type: pool.pool_type,
        });
    }
    if pool.has_empty_template() {
        let update = WorkPoolUpdate {
            base_job_template: Some(options.base_job_template.clone()),
            ..WorkPoolUpdate::default()
        };
        client
            .update_work_pool(&pool.name, &update)
            .await
            .map_err(wrap)?;
        return client
            .read_work_pool(&pool.name)
            .await
            .map_err(wrap)?
            .ok_or_else(|| PoolError::NotFound {
                pool: options.name.clone(),
            });
    }
    Ok(pool)
}

/// Sends a heartbeat every `interval` until shutdown. A failed heartbeat is logged and the
/// next one is sent on schedule; Prefect marks the worker offline only after several misses.
pub async fn heartbeat_loop(
    client: PrefectClient,
    pool: String,
    worker_name: String,
    interval: Duration,
    mut shutdown: ShutdownSignal,
) {
    let seconds = interval.as_secs().clamp(1, u64::from(u32::MAX)) as u32;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.requested() => return,
        }
        match client
            .send_worker_heartbeat(&pool, &worker_name, seconds)
            .await
        {
            Ok(()) => tracing::debug!(work_pool = %pool, "heartbeat sent"),
            Err(error) => {
                tracing::warn!(work_pool = %pool, %error, "worker heartbeat failed; retrying at the next interval")
            }
        }
    }
}
