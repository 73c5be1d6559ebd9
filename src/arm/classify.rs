//! The one place that maps an ARM failure to the class the worker acts on.

use std::time::Duration;

/// Meaning of a failed ARM request for the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// A fault that may pass: 5xx, a transport error, a timeout, a conflicting operation.
    Transient,
    /// HTTP 429: wait for `Retry-After`, then try again.
    Throttled,
    /// A subscription or region quota is used up: back off for long and tell the user.
    Quota,
    /// ARM rejected this flow run's container group (bad image, registry refused, invalid
    /// request); trying again with the same body cannot succeed.
    TerminalForRun,
    /// The worker's setup is wrong (resource group or subscription not found, permission
    /// missing, provider not registered, token rejected); every run fails until it is fixed.
    Configuration,
}

impl ErrorClass {
    /// Returns a bounded label for metrics.
    pub fn metric_label(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Throttled => "throttled",
            Self::Quota => "quota",
            Self::TerminalForRun => "terminal_for_run",
            Self::Configuration => "configuration",
        }
    }

    /// True for the classes the client retries by itself.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Transient | Self::Throttled)
    }
}

/// Error codes that reject the flow run's container group itself.
const TERMINAL_CODES: &[&str] = &[
    "InaccessibleImage",
    "RegistryErrorResponse",
    "InvalidImageName",
    "InvalidRequestContent",
    "InvalidRequestFormat",
    "LinkedInvalidPropertyId",
    "ResourceRequestsNotSupported",
    "InvalidContainerGroupName",
    "InvalidParameter",
    "BadRequest",
];

/// Error codes that mean the worker's setup is wrong.
const CONFIGURATION_CODES: &[&str] = &[
    "ResourceGroupNotFound",
    "SubscriptionNotFound",
    "MissingSubscriptionRegistration",
    "AuthorizationFailed",
    "LinkedAuthorizationFailed",
    "InvalidAuthenticationToken",
    "InvalidAuthenticationTokenTenant",
    "ExpiredAuthenticationToken",
    "AuthenticationFailed",
    "InvalidSubscriptionId",
];

/// Error codes that mean "try again later" whatever their status.
const TRANSIENT_CODES: &[&str] = &[
    "ServiceUnavailable",
    "InternalServerError",
    "GatewayTimeout",
    "RetryableErrorDueToAnotherOperation",
    "AnotherOperationInProgress",
    "Conflict",
];

/// Classifies a failed request from its HTTP status (`None` for a transport error or a
/// timeout) and its innermost ARM error code (empty when the body had none).
///
/// Codes decide before statuses, because ARM reuses one status for causes that want
/// different answers, for example 409 for both a quota and a conflicting operation.
pub fn classify(status: Option<u16>, code: &str) -> ErrorClass {
    let Some(status) = status else {
        return ErrorClass::Transient;
    };
    if status == 429 && !is_quota_code(code) {
        return ErrorClass::Throttled;
    }
    if let Some(class) = classify_code(code) {
        return class;
    }
    match status {
        401 | 403 => ErrorClass::Configuration,
        408 | 409 | 500..=599 => ErrorClass::Transient,
        _ => ErrorClass::TerminalForRun,
    }
}

fn classify_code(code: &str) -> Option<ErrorClass> {
    let listed = |codes: &[&str]| codes.iter().any(|c| c.eq_ignore_ascii_case(code));
    if code.is_empty() {
        None
    } else if is_quota_code(code) {
        Some(ErrorClass::Quota)
    } else if listed(CONFIGURATION_CODES) {
        Some(ErrorClass::Configuration)
    } else if listed(TERMINAL_CODES) {
        Some(ErrorClass::TerminalForRun)
    } else if listed(TRANSIENT_CODES) {
        Some(ErrorClass::Transient)
    } else {
        None
    }
}

/// `ContainerGroupQuotaReached` and every code naming a quota, such as `QuotaExceeded`.
fn is_quota_code(code: &str) -> bool {
    code.to_ascii_lowercase().contains("quota")
}

/// Parses a `Retry-After` value: whole seconds or an HTTP date. A date in the past gives
/// zero; `now` is passed in so tests can fix it.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn classify_by_code() {
        let cases = [
            (400, "InaccessibleImage", ErrorClass::TerminalForRun),
            (400, "RegistryErrorResponse", ErrorClass::TerminalForRun),
            (400, "InvalidImageName", ErrorClass::TerminalForRun),
            (400, "InvalidRequestContent", ErrorClass::TerminalForRun),
            (409, "ContainerGroupQuotaReached", ErrorClass::Quota),
            (400, "StandardCoresQuotaExceeded", ErrorClass::Quota),
            (429, "ContainerGroupCreateQuotaReached", ErrorClass::Quota),
            (404, "ResourceGroupNotFound", ErrorClass::Configuration),
            (404, "SubscriptionNotFound", ErrorClass::Configuration),
            (
                409,
                "MissingSubscriptionRegistration",
                ErrorClass::Configuration,
            ),
            (403, "AuthorizationFailed", ErrorClass::Configuration),
            (401, "InvalidAuthenticationToken", ErrorClass::Configuration),
            (409, "AnotherOperationInProgress", ErrorClass::Transient),
            (503, "ServiceUnavailable", ErrorClass::Transient),
        ];
        for (status, code, expected) in cases {
            assert_eq!(classify(Some(status), code), expected, "{status} {code}");
        }
    }

    #[test]
    fn classify_by_status() {
        assert_eq!(
            classify(Some(429), "TooManyRequests"),
            ErrorClass::Throttled
        );
        assert_eq!(classify(Some(429), ""), ErrorClass::Throttled);
        assert_eq!(classify(Some(500), ""), ErrorClass::Transient);
        assert_eq!(classify(Some(502), "SomethingNew"), ErrorClass::Transient);
        assert_eq!(classify(Some(403), ""), ErrorClass::Configuration);
        assert_eq!(
            classify(Some(400), "SomethingNew"),
            ErrorClass::TerminalForRun
        );
        assert_eq!(classify(None, ""), ErrorClass::Transient);
    }

    #[test]
    fn metric_labels_are_distinct() {
        let classes = [
            ErrorClass::Transient,
            ErrorClass::Throttled,
            ErrorClass::Quota,
            ErrorClass::TerminalForRun,
            ErrorClass::Configuration,
        ];
        let labels: std::collections::HashSet<_> =
            classes.iter().map(|c| c.metric_label()).collect();
        assert_eq!(labels.len(), classes.len());
    }

    #[test]
    fn retry_after_seconds_and_date() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", SystemTime::now()), None);
    }
}
