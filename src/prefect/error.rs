//! Errors returned by the Prefect API client.

use std::path::PathBuf;

/// Maximum length of the server detail kept in an error message, in characters. Prefect's validation
/// errors can echo large request bodies back.
const MAX_DETAIL_CHARS: usize = 500;

/// A failed Prefect API call. Every variant names the call (`operation`) that failed.
#[derive(Debug, thiserror::Error)]
pub enum PrefectError {
    /// The server returned a non-2xx status that was not retried, or still failed after
    /// the retries ran out.
    #[error("Prefect API call {operation} failed with HTTP {status}: {detail}")]
    Status {
        operation: &'static str,
        status: u16,
        detail: String,
    },
    /// The request did not get a response: connect, read or write failure, or the request
    /// timeout passed. Retries already ran out.
    #[error("Prefect API call {operation} failed without a response")]
    Transport {
        operation: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// The response body did not match the expected model.
    #[error("Prefect API call {operation} returned a body that could not be decoded")]
    Decode {
        operation: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The request body could not be serialised to JSON.
    #[error("Prefect API call {operation} has a request body that could not be encoded")]
    Encode {
        operation: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The server does not have this call, for example flow run labels on Prefect 2.x.
    #[error("Prefect API call {operation} is not supported by this server (HTTP {status})")]
    NotSupported {
        operation: &'static str,
        status: u16,
    },
    /// The server kept returning WAIT for a state proposal.
    #[error("Prefect API call {operation} still received WAIT after {attempts} proposals")]
    WaitLimit {
        operation: &'static str,
        attempts: u32,
    },
    /// The HTTP client could not be built from the settings.
    #[error("failed to build the Prefect HTTP client")]
    Build {
        #[source]
        source: reqwest::Error,
    },
    /// `PREFECT_API_SSL_CERT_FILE` could not be read or parsed.
    #[error(
        "failed to load PREFECT_API_SSL_CERT_FILE {path}: \
         set it to a readable PEM file of CA certificates"
    )]
    CertificateFile {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl PrefectError {
    /// Builds a status error from a response body, keeping Prefect's `detail` field when
    /// the body is JSON.
    pub(crate) fn from_status(operation: &'static str, status: u16, body: &str) -> Self {
        Self::Status {
            operation,
            status,
            detail: server_detail(body),
        }
    }

    /// True for failures worth trying again later: HTTP 5xx, 408, 429 and transport errors
    /// (including timeouts) that outlived the client's own retries.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            Self::Transport { .. } => true,
            _ => false,
        }
    }

    /// True when the server returned 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Returns the HTTP status of the response, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } | Self::NotSupported { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Returns the server's detail text, empty when there was no response.
    pub fn detail(&self) -> &str {
        match self {
            Self::Status { detail, .. } => detail,
            _ => "",
        }
    }
}

/// Extracts Prefect's `{"detail": ...}` from an error body, else the trimmed body text.
fn server_detail(body: &str) -> String {
    let text = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => match map.get("detail") {
            Some(serde_json::Value::String(detail)) => detail.clone(),
            Some(other) => other.to_string(),
            None => body.trim().to_owned(),
        },
        _ => body.trim().to_owned(),
    };
    if text.chars().count() <= MAX_DETAIL_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_DETAIL_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_from_json_body() {
        let err = PrefectError::from_status("read_work_pool", 404, r#"{"detail":"Not found."}"#);
        assert_eq!(err.detail(), "Not found.");
        assert!(err.is_not_found());
        assert!(!err.is_transient());
    }

    #[test]
    fn detail_from_plain_body_is_truncated() {
        let body = "x".repeat(2000);
        let err = PrefectError::from_status("op", 502, &body);
        assert_eq!(err.detail().chars().count(), MAX_DETAIL_CHARS + 1);
        assert!(err.is_transient());
    }

    #[test]
    fn status_error_names_operation() {
        let err =
            PrefectError::from_status("create_work_pool", 422, r#"{"detail":[{"msg":"bad"}]}"#);
        let text = err.to_string();
        assert!(text.contains("create_work_pool"), "{text}");
        assert!(text.contains("422"), "{text}");
        assert!(text.contains("bad"), "{text}");
    }
}
