//! Work pool, work queue and worker calls.

use reqwest::Method;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::client::{Call, PrefectClient};
use super::error::PrefectError;
use super::models::{
    WorkPool, WorkPoolCreate, WorkPoolUpdate, WorkQueue, Worker, WorkerFlowRunResponse,
};

impl PrefectClient {
    /// Reads a work pool by name; `None` if it does not exist.
    pub async fn read_work_pool(&self, name: &str) -> Result<Option<WorkPool>, PrefectError> {
        let call = Call::new("read_work_pool", Method::GET, &["work_pools", name]);
        not_found_as_none(self.json(call).await)
    }

    /// Creates a work pool. When another process created it first (409), reads and returns
    /// that pool instead.
    pub async fn create_work_pool(&self, pool: &WorkPoolCreate) -> Result<WorkPool, PrefectError> {
        let call = Call::new("create_work_pool", Method::POST, &["work_pools", ""]).json(pool)?;
        match self.json(call).await {
            Err(err) if err.status() == Some(409) => {
                tracing::debug!(work_pool = %pool.name, "work pool already exists, reading it");
                self.read_work_pool(&pool.name).await?.ok_or(err)
            }
            other => other,
        }
    }

    /// Updates the given fields of a work pool.
    pub async fn update_work_pool(
        &self,
        name: &str,
        update: &WorkPoolUpdate,
    ) -> Result<(), PrefectError> {
        let call =
            Call::new("update_work_pool", Method::PATCH, &["work_pools", name]).json(update)?;
        self.send(&call).await.map(drop)
    }

    /// Lists the work queues of a pool.
    pub async fn read_work_queues(&self, pool: &str) -> Result<Vec<WorkQueue>, PrefectError> {
        let segments = ["work_pools", pool, "queues", "filter"];
        let call = Call::new("read_work_queues", Method::POST, &segments).json(&json!({}))?;
        self.json(call).await
    }

    /// Sends a worker heartbeat, which marks the worker ONLINE. On Prefect Cloud it requests
    /// the worker id until it has one, and resends without that request once if the server
    /// rejects it with 422. The server uses `heartbeat_interval_seconds` to decide when the worker is offline.
    pub async fn send_worker_heartbeat(
        &self,
        pool: &str,
        worker_name: &str,
        heartbeat_interval_seconds: u32,
    ) -> Result<(), PrefectError> {
        let return_id = self.is_cloud() && self.worker_id().is_none();
        match self
            .heartbeat(pool, worker_name, heartbeat_interval_seconds, return_id)
            .await
        {
            Err(err) if return_id && err.status() == Some(422) => {
                tracing::debug!(
                    work_pool = pool,
                    "heartbeat rejected return_id, sending without it"
                );
                self.heartbeat(pool, worker_name, heartbeat_interval_seconds, false)
                    .await
            }
            other => other,
        }
    }

    async fn heartbeat(
        &self,
        pool: &str,
        worker_name: &str,
        heartbeat_interval_seconds: u32,
        return_id: bool,
    ) -> Result<(), PrefectError> {
        let mut body = json!({
            "name": worker_name,
            "heartbeat_interval_seconds": heartbeat_interval_seconds,
        });
        // NOTE: Prefect Cloud also accepts a `metadata` object listing integrations; this
        // client does not send it.
        if return_id {
            body["return_id"] = json!(true);
        }
        let segments = ["work_pools", pool, "workers", "heartbeat"];
        let call = Call::new("send_worker_heartbeat", Method::POST, &segments).json(&body)?;
        let bytes = self.bytes(call).await?;
        if return_id && let Some(id) = parse_worker_id(&bytes) {
            self.set_worker_id(id);
        }
        Ok(())
    }

    /// Lists the workers of a pool with their status and last heartbeat.
    pub async fn filter_workers(&self, pool: &str) -> Result<Vec<Worker>, PrefectError> {
        let segments = ["work_pools", pool, "workers", "filter"];
        let call = Call::new("filter_workers", Method::POST, &segments).json(&json!({}))?;
        self.json(call).await
    }

    /// Returns the flow runs of `pool` that are due before `scheduled_before`, honouring the
    /// pool's and queues' concurrency limits. An empty `work_queue_names` means every queue
    /// of the pool. A missing pool (404) gives an empty list.
    pub async fn get_scheduled_flow_runs(
        &self,
        pool: &str,
        work_queue_names: &[String],
        scheduled_before: OffsetDateTime,
    ) -> Result<Vec<WorkerFlowRunResponse>, PrefectError> {
        let before = scheduled_before
            .format(&Rfc3339)
            .expect("a UTC timestamp formats as RFC 3339");
        let body = json!({ "work_queue_names": work_queue_names, "scheduled_before": before });
        let segments = ["work_pools", pool, "get_scheduled_flow_runs"];
        let call = Call::new("get_scheduled_flow_runs", Method::POST, &segments).json(&body)?;
        Ok(not_found_as_none(self.json(call).await)?.unwrap_or_default())
    }
}

/// Reads the worker id from a heartbeat body: a bare or JSON-quoted UUID.
fn parse_worker_id(body: &[u8]) -> Option<Uuid> {
    let text = std::str::from_utf8(body).ok()?.trim().trim_matches('"');
    Uuid::parse_str(text).ok()
}

/// Turns a 404 into `Ok(None)`.
pub(crate) fn not_found_as_none<T>(
    result: Result<T, PrefectError>,
) -> Result<Option<T>, PrefectError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_id_bare_or_quoted() {
        let id = Uuid::new_v4();
        assert_eq!(parse_worker_id(id.to_string().as_bytes()), Some(id));
        assert_eq!(parse_worker_id(format!("\"{id}\"\n").as_bytes()), Some(id));
        assert_eq!(parse_worker_id(b""), None);
    }
}
