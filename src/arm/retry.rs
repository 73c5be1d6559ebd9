//! Sending one ARM request with its timeout, token, limiter, metrics and retries.

use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use tokio::time::Instant;

use super::classify::{ErrorClass, classify, parse_retry_after};
use super::client::Inner;
use super::error::ArmError;
use super::operations::ArmOperation;
use super::response::innermost_error;

/// Longest `Retry-After` the client honours. A larger value (seen from misbehaving proxies)
/// would block a reconcile pass for longer than a pass is worth; the error surfaces instead.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Prefix of ARM's rate-limit headers; the rest of the name is kept as the metric's label.
const RATELIMIT_PREFIX: &str = "x-ms-ratelimit-remaining-";

/// Retry settings: attempts after the first, and the bounds of the jittered exponential
/// backoff for transient errors. Throttled requests wait for `Retry-After` instead when ARM
/// sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetrySettings {
    /// Four retries from 1 s up to 30 s cover a short ARM brownout (about a minute in all)
    /// without holding a reconcile pass much longer.
    fn default() -> Self {
        Self {
            max_retries: 4,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// One request to send: which operation, to where, with which body, drawing from which
/// limiter buckets.
pub(crate) struct Call<'a> {
    pub operation: ArmOperation,
    pub url: Url,
    pub body: Option<Vec<u8>>,
    pub subscription: &'a str,
    pub region: &'a str,
    /// Statuses that the operation handles itself instead of treating as errors.
    pub accept: &'a [u16],
}

/// A response the operation accepted.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Inner {
    /// Sends `call`, retrying transient and throttled failures, and returns the response
    /// when its status is 2xx or listed in `call.accept`.
    pub(crate) async fn send(&self, call: &Call<'_>) -> Result<Reply, ArmError> {
        let retry = self.settings.retry;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(retry.min_delay)
            .with_max_delay(retry.max_delay)
            .with_max_times(retry.max_retries)
            .with_jitter();
        let label = call.operation.label();
        (|| self.send_refreshing_token(call))
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|error: &ArmError| error.class().is_retryable())
            .adjust(|error: &ArmError, delay| delay.map(|d| error.retry_after().unwrap_or(d)))
            .notify(|error: &ArmError, delay| {
                tracing::warn!(
                    operation = label,
                    class = error.metric_label(),
                    status = error.status(),
                    code = error.code(),
                    delay_ms = delay.as_millis() as u64,
                    %error,
                    "retrying ARM request"
                );
            })
            .await
    }

    /// Sends once; when ARM rejects the token with 401, drops the cached token and sends
    /// once more with a new one.
    async fn send_refreshing_token(&self, call: &Call<'_>) -> Result<Reply, ArmError> {
        match self.send_once(call).await {
            Err(error) if error.status() == Some(401) => {
                tracing::warn!(
                    operation = call.operation.label(),
                    "ARM rejected the token; refreshing it"
                );
                self.tokens.invalidate();
                self.send_once(call).await
            }
            other => other,
        }
    }

    async fn send_once(&self, call: &Call<'_>) -> Result<Reply, ArmError> {
        let operation = call.operation.label();
        let class = call.operation.request_class();
        self.limiter
            .acquire(call.subscription, call.region, class)
            .await;
        let request = self.build_request(call).await?;

        let started = Instant::now();
        let result = self.execute(operation, request).await;
        let elapsed = started.elapsed();
        let status = result.as_ref().ok().map(|(status, ..)| status.as_u16());
        self.metrics.observe_arm_request(operation, status, elapsed);
        let (status, headers, body) = result?;

        self.record_ratelimit_headers(&headers);
        let accepted = call.accept.contains(&status.as_u16()) && !names_missing_parent(&body);
        if status.is_success() || accepted {
            return Ok(Reply { status, body });
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.metrics
                .record_throttled(crate::metrics::Api::Arm, operation);
        }
        Err(api_error(operation, status, &headers, &body))
    }

    async fn build_request(&self, call: &Call<'_>) -> Result<reqwest::RequestBuilder, ArmError> {
        let token = self.tokens.token().await?;
        let mut request = self
            .http
            .request(call.operation.method(), call.url.clone())
            .header(AUTHORIZATION, format!("Bearer {}", token.secret()));
        // An empty body still goes out, as `Content-Length: 0`, because ARM rejects a POST
        // without a length with 411.
        if let Some(body) = &call.body {
            if !body.is_empty() {
                request = request.header(CONTENT_TYPE, "application/json");
            }
            request = request.body(body.clone());
        }
        Ok(request)
    }

    /// Sends the request and reads the whole body within the request timeout.
    async fn execute(
        &self,
        operation: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), ArmError> {
        let timeout = self.settings.request_timeout;
        let exchange = async {
            let response = request.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body.to_vec()))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Err(_) => Err(ArmError::Timeout { operation, timeout }),
            Ok(Err(source)) => Err(ArmError::Transport { operation, source }),
            Ok(Ok(parts)) => Ok(parts),
        }
    }

    fn record_ratelimit_headers(&self, headers: &HeaderMap) {
        let mut remaining = self
            .ratelimit_remaining
            .lock()
            .expect("ratelimit lock poisoned");
        for (name, value) in headers {
            let Some(suffix) = name.as_str().strip_prefix(RATELIMIT_PREFIX) else {
                continue;
            };
            let Some(value) = value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
            else {
                continue;
            };
            self.metrics.set_arm_ratelimit_remaining(suffix, value);
            remaining.insert(suffix.to_owned(), value);
        }
    }
}

/// Returns true when an error body names a missing resource group or subscription. A 404
/// that an operation accepts for a missing container group must not hide that.
fn names_missing_parent(body: &[u8]) -> bool {
    innermost_error(body)
        .is_some_and(|(code, _)| classify(Some(404), &code) == ErrorClass::Configuration)
}

/// Builds the error for a status the operation does not accept, classified once here.
fn api_error(
    operation: &'static str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ArmError {
    let (code, message) = innermost_error(body).unwrap_or_else(|| {
        let reason = status.canonical_reason().unwrap_or("unknown status");
        (String::new(), format!("{reason} (no ARM error body)"))
    });
    let class = classify(Some(status.as_u16()), &code);
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
        .map(|d| d.min(MAX_RETRY_AFTER))
        .filter(|_| class == ErrorClass::Throttled || class == ErrorClass::Transient);
    ArmError::Api {
        operation,
        status: status.as_u16(),
        code,
        message,
        class,
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_body(code: &str) -> Vec<u8> {
        serde_json::json!({"error": {"code": code, "message": "m"}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn missing_parent_not_hidden_by_404() {
        assert!(names_missing_parent(&error_body("ResourceGroupNotFound")));
        assert!(names_missing_parent(&error_body("SubscriptionNotFound")));
        assert!(!names_missing_parent(&error_body("ResourceNotFound")));
        assert!(!names_missing_parent(b""));
    }

    #[test]
    fn retry_after_kept_for_throttling_only() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        let throttled = api_error("get", StatusCode::TOO_MANY_REQUESTS, &headers, b"");
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(throttled.class(), ErrorClass::Throttled);
        let rejected = api_error("get", StatusCode::BAD_REQUEST, &headers, b"");
        assert_eq!(rejected.retry_after(), None);
        headers.insert(RETRY_AFTER, "86400".parse().unwrap());
        let capped = api_error("get", StatusCode::TOO_MANY_REQUESTS, &headers, b"");
        assert_eq!(capped.retry_after(), Some(MAX_RETRY_AFTER));
    }
}
