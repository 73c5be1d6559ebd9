//! Prefect REST API client and models.
//!
//! [`PrefectClient`] speaks the REST API the way Prefect's own Python client does (headers,
//! auth, CSRF, retries) against Prefect 3.x servers, Prefect Cloud, and Prefect 2.x servers
//! for the calls they have.

mod client;
mod csrf;
mod error;
mod flow_runs;
mod logs;
mod lookups;
pub mod models;
mod retry;
mod settings;
mod work_pools;

pub use client::{API_VERSION, PrefectClient};
pub use error::PrefectError;
pub use logs::{MAX_BATCH_BYTES, MAX_LOG_BYTES};
pub use retry::{RETRY_STATUSES, RetryPolicy};
pub use settings::{PrefectSettings, Secret, SettingsError};
