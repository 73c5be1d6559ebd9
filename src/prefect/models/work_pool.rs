//! Work pools, work queues and workers.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A work pool as `GET /work_pools/{name}` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkPool {
    pub id: Uuid,
    pub name: String,
    #[serde(rename = "type")]
    pub pool_type: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `{"job_configuration": {...}, "variables": <JSON schema>}`; `{}` when unset.
    #[serde(default)]
    pub base_job_template: serde_json::Value,
    #[serde(default)]
    pub is_paused: bool,
    #[serde(default)]
    pub concurrency_limit: Option<u32>,
    /// `READY`, `NOT_READY` or `PAUSED`; absent on old servers.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub default_queue_id: Option<Uuid>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated: Option<OffsetDateTime>,
}

impl WorkPool {
    /// True when the base job template is missing or `{}`.
    pub fn has_empty_template(&self) -> bool {
        match &self.base_job_template {
            serde_json::Value::Null => true,
            serde_json::Value::Object(map) => map.is_empty(),
            _ => false,
        }
    }
}

/// The body of `POST /work_pools/`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkPoolCreate {
    pub name: String,
    #[serde(rename = "type")]
    pub pool_type: String,
    /// Omitted when `None`, so the server fills in its default template for the type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_job_template: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The body of `PATCH /work_pools/{name}`; `None` fields are left unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WorkPoolUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_job_template: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_paused: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency_limit: Option<u32>,
}

/// A work queue of a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkQueue {
    pub id: Uuid,
    pub name: String,
    #[serde(default)]
    pub work_pool_id: Option<Uuid>,
    #[serde(default)]
    pub is_paused: bool,
    #[serde(default)]
    pub concurrency_limit: Option<u32>,
    #[serde(default)]
    pub priority: Option<u32>,
    #[serde(default)]
    pub status: Option<String>,
}

/// Whether the server considers a worker alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkerStatus {
    Online,
    Offline,
}

/// A worker as `POST /work_pools/{name}/workers/filter` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Worker {
    pub id: Option<Uuid>,
    pub name: String,
    #[serde(default)]
    pub work_pool_id: Option<Uuid>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_heartbeat_time: Option<OffsetDateTime>,
    #[serde(default)]
    pub heartbeat_interval_seconds: Option<u32>,
    /// Absent on Prefect 2.x servers before 2.14.
    #[serde(default)]
    pub status: Option<WorkerStatus>,
}
