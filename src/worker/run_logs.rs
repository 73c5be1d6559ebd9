//! Writing to a flow run's logs in Prefect: the worker's own messages about the run, and the
//! container's log lines.

use uuid::Uuid;

use crate::prefect::models::LogCreate;
use crate::reconcile::logs::LogLine;

use super::state::Shared;

/// Logger name of the worker's messages, the one Prefect's workers use.
pub const WORKER_LOGGER: &str = "prefect.flow_runs.worker";
/// Logger name of the container's log lines.
pub const CONTAINER_LOGGER: &str = "prefect.container";

/// Python logging levels, which Prefect stores.
#[derive(Debug, Clone, Copy)]
pub enum Level {
    Info = 20,
    Warning = 30,
    Error = 40,
}

/// Writes one worker message to the run's logs. A failure is logged locally only: losing
/// this line must not hold up the run.
pub async fn worker(shared: &Shared, flow_run_id: Uuid, level: Level, message: String) {
    let record = LogCreate::for_flow_run(flow_run_id, WORKER_LOGGER, level as u32, &message);
    if let Err(error) = shared.prefect.create_logs(&[record]).await {
        tracing::debug!(flow_run.id = %flow_run_id, %error, "writing to the flow run's logs failed");
    }
}

/// Builds the records of container log lines, keeping the container's timestamps.
pub fn container_records(flow_run_id: Uuid, lines: &[LogLine]) -> Vec<LogCreate> {
    lines
        .iter()
        .map(|line| LogCreate {
            name: CONTAINER_LOGGER.to_owned(),
            level: Level::Info as u32,
            message: line.text.clone(),
            timestamp: line.timestamp,
            flow_run_id: Some(flow_run_id),
            task_run_id: None,
            worker_id: None,
        })
        .collect()
}
