//! Errors of the ARM client, each with its [`ErrorClass`].

use std::time::Duration;

use super::classify::ErrorClass;
use super::cloud::EndpointError;
use super::credential::CredentialError;

/// A failed ARM call. Messages carry the operation, status and ARM's innermost error code
/// and message, never a bearer token or a request body.
#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    /// ARM returned an error status.
    #[error("ARM {operation} failed with HTTP {status} {code}: {message}")]
    Api {
        operation: &'static str,
        status: u16,
        /// The innermost ARM error code; empty when the body had none.
        code: String,
        message: String,
        class: ErrorClass,
        /// The `Retry-After` of the response, capped by the client.
        retry_after: Option<Duration>,
    },
    /// The request could not be sent or its response not read.
    #[error("ARM {operation} request failed: {source}")]
    Transport {
        operation: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// No complete response arrived within the request timeout.
    #[error("ARM {operation} timed out after {timeout:?}")]
    Timeout {
        operation: &'static str,
        timeout: Duration,
    },
    /// A success response whose body is not what the operation returns.
    #[error("invalid ARM {operation} response: {source}")]
    Decode {
        operation: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A list page's `nextLink` points to another origin than the ARM endpoint, so the
    /// client does not send its bearer token there.
    #[error("rejected ARM nextLink to {origin}: it is not the origin of the ARM endpoint")]
    ForeignNextLink { origin: String },
    /// The api-version setting is not one the client's models fit.
    #[error("unsupported ARM api-version {value:?}; use one of {supported}")]
    UnsupportedApiVersion { value: String, supported: String },
    /// Getting a bearer token failed.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// The endpoint or TLS settings are invalid.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
}

impl ArmError {
    /// Returns the class the worker acts on.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Api { class, .. } => *class,
            Self::Transport { .. } | Self::Timeout { .. } => ErrorClass::Transient,
            Self::Credential(error) if credential_error_is_transient(error) => {
                ErrorClass::Transient
            }
            Self::Decode { .. } | Self::ForeignNextLink { .. } => ErrorClass::Transient,
            Self::UnsupportedApiVersion { .. } | Self::Credential(_) | Self::Endpoint(_) => {
                ErrorClass::Configuration
            }
        }
    }

    /// Returns a bounded label for metrics: the class.
    pub fn metric_label(&self) -> &'static str {
        self.class().metric_label()
    }

    /// Returns the HTTP status, when ARM responded.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Returns the innermost ARM error code, when ARM sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } if !code.is_empty() => Some(code),
            _ => None,
        }
    }

    /// Returns the delay ARM requested with `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// True for HTTP 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// Returns true for a token request that failed on the network, which may pass, unlike a
/// rejected credential.
fn credential_error_is_transient(error: &CredentialError) -> bool {
    use azure_core::error::ErrorKind;
    match error {
        CredentialError::Token { source, .. } => {
            matches!(source.kind(), ErrorKind::Io | ErrorKind::Connection)
        }
        _ => false,
    }
}
