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

/// Matches a line of Prefect's console log format, `HH:MM:SS.mmm | LEVEL   | logger - text`,
/// which the engine in the container writes for records it also sends to Prefect itself.
static ENGINE_CONSOLE_LINE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^\d{2}:\d{2}:\d{2}\.\d{3} \| (DEBUG|INFO|WARNING|ERROR|CRITICAL) +\| ")
        .expect("engine console regex compiles")
});

/// Returns true for a line the engine already sent to the flow run's logs.
pub fn is_engine_console_line(text: &str) -> bool {
    ENGINE_CONSOLE_LINE.is_match(text)
}

/// Builds the records of container log lines, keeping the container's timestamps. Lines of
/// the engine's own console log are left out, since the engine sent those records to
/// Prefect already and copying them would show each one twice.
pub fn container_records(flow_run_id: Uuid, lines: &[LogLine]) -> Vec<LogCreate> {
    lines
        .iter()
        .filter(|line| !is_engine_console_line(&line.text))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_console_line_detected() {
        let line = "07:59:09.073 | INFO    | Flow run 'rose-duck' - Running in mode 'exit'";
        assert!(is_engine_console_line(line));
    }

    #[test]
    fn printed_line_kept() {
        assert!(!is_engine_console_line(
            "hello from the container, mode=exit"
        ));
    }

    #[test]
    fn line_quoting_the_format_kept() {
        assert!(!is_engine_console_line("see 07:59:09.073 | INFO    | x"));
    }
}
