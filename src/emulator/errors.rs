//! ARM-shaped error responses: `{"error": {"code", "message", "details": [...]}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One ARM error: the HTTP status, the invariant `code`, a message and nested details.
#[derive(Debug, Clone)]
pub struct ArmError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub target: Option<String>,
    pub details: Vec<ArmError>,
    /// `Retry-After` in seconds, sent with throttling and some 5xx responses.
    pub retry_after: Option<u64>,
}

impl ArmError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            target: None,
            details: Vec::new(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Folds several validation errors into one response the way ARM does. A single error is
    /// returned as is, and several become `MultipleErrorsOccurred` with each one in `details`.
    pub fn combine(mut errors: Vec<ArmError>) -> Option<ArmError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => {
                let statuses: Vec<String> = errors
                    .iter()
                    .map(|e| {
                        e.status
                            .canonical_reason()
                            .unwrap_or("Error")
                            .replace(' ', "")
                    })
                    .collect();
                let message = format!(
                    "Multiple error occurred: {}. Please see details.",
                    statuses.join(",")
                );
                let mut combined = ArmError::bad_request("MultipleErrorsOccurred", message);
                combined.details = errors;
                Some(combined)
            }
        }
    }

    pub fn not_found_group(resource_group: &str, name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "The Resource 'Microsoft.ContainerInstance/containerGroups/{name}' under \
                 resource group '{resource_group}' was not found."
            ),
        )
    }

    pub fn not_found_resource_group(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            format!("Resource group '{name}' could not be found."),
        )
    }

    /// Builds the `error` object itself, recursively with its details.
    pub fn body(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(target) = &self.target {
            error["target"] = json!(target);
        }
        if !self.details.is_empty() {
            let details: Vec<Value> = self.details.iter().map(ArmError::body).collect();
            error["details"] = Value::Array(details);
        }
        error
    }
}

impl IntoResponse for ArmError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.body() });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
