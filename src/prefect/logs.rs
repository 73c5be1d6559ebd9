//! Posting flow run logs in batches that fit Prefect's size limits.

use reqwest::Method;

use super::client::{Call, PrefectClient};
use super::error::PrefectError;
use super::models::LogCreate;

/// Largest batch body, in bytes (Prefect's `PREFECT_LOGGING_TO_API_BATCH_SIZE` default).
pub const MAX_BATCH_BYTES: usize = 4_000_000;
/// Largest single record, in bytes (Prefect's `PREFECT_LOGGING_TO_API_MAX_LOG_SIZE` default).
pub const MAX_LOG_BYTES: usize = 1_000_000;
/// Suffix appended to a message cut to fit [`MAX_LOG_BYTES`].
const TRUNCATION_MARK: &str = "… [truncated]";

impl PrefectClient {
    /// Posts `logs` with `POST /logs/`, split into batches of at most 4,000,000 bytes. A
    /// record over 1,000,000 bytes has its message truncated to fit. Batches are sent in
    /// order; the first failure stops the rest.
    pub async fn create_logs(&self, logs: &[LogCreate]) -> Result<(), PrefectError> {
        for batch in batches(logs)? {
            let call = Call::new("create_logs", Method::POST, &["logs", ""]).json(&batch)?;
            self.send(&call).await?;
        }
        Ok(())
    }
}

/// Splits records into batches whose JSON array stays under [`MAX_BATCH_BYTES`].
fn batches(logs: &[LogCreate]) -> Result<Vec<Vec<LogCreate>>, PrefectError> {
    let mut batches = Vec::new();
    let mut current = Vec::new();
    let mut current_bytes = 2;
    for log in logs {
        let log = fit_record(log)?;
        let size = encoded_len(&log)? + 1;
        if !current.is_empty() && current_bytes + size > MAX_BATCH_BYTES {
            batches.push(std::mem::take(&mut current));
            current_bytes = 2;
        }
        current_bytes += size;
        current.push(log);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    Ok(batches)
}

/// Returns the record, with its message cut when the encoded record exceeds the limit.
fn fit_record(log: &LogCreate) -> Result<LogCreate, PrefectError> {
    let size = encoded_len(log)?;
    if size <= MAX_LOG_BYTES {
        return Ok(log.clone());
    }
    // JSON escaping can only grow the message, so cutting its raw length by the excess
    // (plus the mark) brings the encoded record under the limit.
    let excess = size - MAX_LOG_BYTES + TRUNCATION_MARK.len();
    let mut keep = log.message.len().saturating_sub(excess);
    while !log.message.is_char_boundary(keep) {
        keep -= 1;
    }
    let mut fitted = log.clone();
    fitted.message = format!("{}{TRUNCATION_MARK}", &log.message[..keep]);
    Ok(fitted)
}

fn encoded_len(log: &LogCreate) -> Result<usize, PrefectError> {
    serde_json::to_vec(log)
        .map(|bytes| bytes.len())
        .map_err(|source| PrefectError::Encode {
            operation: "create_logs",
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn log(message: &str) -> LogCreate {
        LogCreate::for_flow_run(Uuid::nil(), "prefect.flow_runs.worker", 20, message)
    }

    #[test]
    fn small_logs_share_one_batch() {
        let logs = vec![log("a"), log("b"), log("c")];
        let batches = batches(&logs).unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].len(), 3);
    }

    #[test]
    fn batches_stay_under_limit() {
        let logs: Vec<_> = (0..10).map(|_| log(&"x".repeat(900_000))).collect();
        let batches = batches(&logs).unwrap();
        assert!(batches.len() >= 3, "{}", batches.len());
        for batch in &batches {
            let size = serde_json::to_vec(batch).unwrap().len();
            assert!(size <= MAX_BATCH_BYTES, "{size}");
        }
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 10);
    }

    #[test]
    fn oversized_record_is_truncated() {
        let big = log(&"é\"".repeat(600_000));
        let fitted = fit_record(&big).unwrap();
        assert!(encoded_len(&fitted).unwrap() <= MAX_LOG_BYTES);
        assert!(fitted.message.ends_with(TRUNCATION_MARK));
    }
}
