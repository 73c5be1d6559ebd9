//! HTTP front: the router, and what every ARM request goes through before its handler
//! (api-version, bearer token, faults, rate-limit buckets) and after it (counters).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::config::SUPPORTED_API_VERSIONS;
use super::errors::ArmError;
use super::faults::{Injected, Operation};
use super::identity::{self, TokenCheck};
use super::routes::{self, ArmRoute};
use super::state::{RateClass, Shared};
use super::{admin, groups};

/// Builds the router: identity endpoints, the admin API, and ARM paths as the fallback,
/// because ARM matches its path keywords case-insensitively.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            identity::MANAGED_IDENTITY_PATH,
            get(identity::managed_identity_token),
        )
        .route("/{tenant}/oauth2/v2.0/token", post(identity::entra_token))
        .merge(admin::router())
        .fallback(arm)
        .with_state(shared)
}

/// Query parameters of a request, decoded.
pub type Query = HashMap<String, String>;

async fn arm(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(route) = routes::parse(uri.path()) else {
        let message = format!(
            "The path '{}' is not served by the ACI emulator.",
            uri.path()
        );
        return ArmError::new(StatusCode::NOT_FOUND, "NotFound", message).into_response();
    };
    let query: Query = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let (label, operation, class) = classify(&route, &method);
    let mut response = match admit(&shared, &route, &headers, &query, operation, class).await {
        Ok(remaining) => {
            let mut response = groups::dispatch(&shared, route, &method, &query, &body).await;
            response
                .headers_mut()
                .insert(class.header(), HeaderValue::from(remaining));
            response
        }
        Err(response) => response,
    };
    add_request_ids(&headers, &mut response);
    record(&shared, label, response)
}

/// Adds the ids ARM puts on every response: a new `x-ms-request-id`, and
/// `x-ms-correlation-request-id` taken from the client's `x-ms-client-request-id` when sent.
fn add_request_ids(request: &HeaderMap, response: &mut Response) {
    let request_id = uuid::Uuid::new_v4().to_string();
    let correlation = request
        .get("x-ms-client-request-id")
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_str(&request_id).expect("a UUID is a valid header"));
    let headers = response.headers_mut();
    headers.insert(
        "x-ms-request-id",
        HeaderValue::from_str(&request_id).expect("a UUID is a valid header"),
    );
    headers.insert("x-ms-correlation-request-id", correlation);
}

/// Runs the checks before a handler. Returns the tokens left in the request's bucket.
async fn admit(
    shared: &Shared,
    route: &ArmRoute,
    headers: &HeaderMap,
    query: &Query,
    operation: Option<Operation>,
    class: RateClass,
) -> Result<u32, Response> {
    check_api_version(route, query).map_err(IntoResponse::into_response)?;
    if !shared.config.no_auth
        && let Some(response) = authorization_error(shared, headers)
    {
        return Err(response);
    }
    if let Some(operation) = operation
        && let Some(response) = apply_faults(shared, operation).await
    {
        return Err(response);
    }
    let subscription = route_subscription(route);
    take_rate_token(shared, subscription, class).map_err(|wait| {
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        let message = format!(
            "The number of requests for subscription '{subscription}' exceeded the limit. Try \
             again after '{seconds}' seconds."
        );
        let error = ArmError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message);
        let mut response = error.with_retry_after(seconds).into_response();
        response
            .headers_mut()
            .insert(class.header(), HeaderValue::from(0));
        response
    })
}

/// Builds the 401 for a bearer token that was not issued here or has expired, with the
/// codes ARM uses, so clients can tell a token to refresh from a wrong one. Returns `None`
/// for a valid token.
fn authorization_error(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let (code, message) = match identity::check_token(shared, headers) {
        TokenCheck::Valid => return None,
        TokenCheck::Expired => (
            "ExpiredAuthenticationToken",
            "The access token has expired. Get a new token from the emulator's identity or \
             token endpoint.",
        ),
        TokenCheck::Invalid => (
            "InvalidAuthenticationToken",
            "The access token is missing or was not issued by this emulator. Get a token from \
             the emulator's identity or token endpoint, or start the emulator with --no-auth.",
        ),
    };
    let mut response = ArmError::new(StatusCode::UNAUTHORIZED, code, message).into_response();
    let challenge = HeaderValue::from_static("Bearer error=\"invalid_token\"");
    response.headers_mut().insert("www-authenticate", challenge);
    Some(response)
}

fn check_api_version(route: &ArmRoute, query: &Query) -> Result<(), ArmError> {
    let Some(version) = query.get("api-version") else {
        return Err(ArmError::bad_request(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    // Resource groups belong to Microsoft.Resources, which has its own api-versions.
    if matches!(route, ArmRoute::ResourceGroup { .. })
        || SUPPORTED_API_VERSIONS.contains(&version.as_str())
    {
        return Ok(());
    }
    Err(ArmError::bad_request(
        "NoRegisteredProviderFound",
        format!(
            "No registered resource provider found for API version '{version}' and type \
             'containerGroups'. The supported api-versions are '{}'.",
            SUPPORTED_API_VERSIONS.join(", ")
        ),
    ))
}

/// Takes a token from the request's bucket. Returns the tokens left, or the wait.
fn take_rate_token(shared: &Shared, subscription: &str, class: RateClass) -> Result<u32, Duration> {
    let config = &shared.config;
    let (size, refill) = match class {
        RateClass::Reads => (config.read_bucket, config.read_refill),
        RateClass::Writes => (config.write_bucket, config.write_refill),
        RateClass::Deletes => (config.delete_bucket, config.delete_refill),
    };
    let mut buckets = shared.buckets.lock().expect("bucket lock poisoned");
    buckets.take(subscription, class, size, refill)
}

fn route_subscription(route: &ArmRoute) -> &str {
    match route {
        ArmRoute::ResourceGroup { subscription, .. }
        | ArmRoute::GroupsInSubscription { subscription }
        | ArmRoute::GroupsInResourceGroup { subscription, .. }
        | ArmRoute::Group { subscription, .. }
        | ArmRoute::GroupAction { subscription, .. }
        | ArmRoute::Logs { subscription, .. }
        | ArmRoute::OperationResult { subscription, .. } => subscription,
    }
}

/// Names a request for counters, and picks its fault operation and rate bucket.
fn classify(route: &ArmRoute, method: &Method) -> (&'static str, Option<Operation>, RateClass) {
    let read = RateClass::Reads;
    match (route, method.as_str()) {
        (ArmRoute::ResourceGroup { .. }, "GET") => ("resource_group_get", None, read),
        (ArmRoute::ResourceGroup { .. }, _) => ("resource_group_put", None, RateClass::Writes),
        (ArmRoute::GroupsInSubscription { .. } | ArmRoute::GroupsInResourceGroup { .. }, _) => {
            ("list", Some(Operation::List), read)
        }
        (ArmRoute::Group { .. }, "PUT") => ("create", Some(Operation::Create), RateClass::Writes),
        (ArmRoute::Group { .. }, "DELETE") => {
            ("delete", Some(Operation::Delete), RateClass::Deletes)
        }
        (ArmRoute::Group { .. }, _) => ("get", Some(Operation::Get), read),
        (ArmRoute::GroupAction { .. }, _) => ("stop", Some(Operation::Stop), RateClass::Writes),
        (ArmRoute::Logs { .. }, _) => ("logs", Some(Operation::Logs), read),
        (ArmRoute::OperationResult { .. }, _) => ("operation_result", None, read),
    }
}

/// Applies the faults of `operation`: sleeps the added latency, then returns the injected
/// response, if one was drawn. A hang waits until shutdown and then returns 503.
pub async fn apply_faults(shared: &Shared, operation: Operation) -> Option<Response> {
    let (latency, injected) = shared
        .faults
        .lock()
        .expect("fault lock poisoned")
        .decide(operation);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let error = match injected? {
        Injected::Hang => {
            let mut shutdown = shared.shutdown.clone();
            let _ = shutdown.wait_for(|stopping| *stopping).await;
            ArmError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "The emulator is shutting down.")
        }
        Injected::Throttle { retry_after_seconds } => ArmError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            format!("Injected throttling of '{operation}'. Try again after '{retry_after_seconds}' seconds."),
        )
        .with_retry_after(retry_after_seconds),
        Injected::ServerError { status } => server_error(status, operation),
    };
    Some(error.into_response())
}

fn server_error(status: u16, operation: Operation) -> ArmError {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = match status {
        StatusCode::BAD_GATEWAY => "BadGateway",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
        StatusCode::GATEWAY_TIMEOUT => "GatewayTimeout",
        _ => "InternalServerError",
    };
    ArmError::new(
        status,
        code,
        format!("Injected server error on '{operation}'."),
    )
}

/// Counts a finished request under `label` and its status, and passes the response on.
pub fn record(shared: &Shared, label: &str, response: Response) -> Response {
    let mut counters = shared.counters.lock().expect("counter lock poisoned");
    let by_status = counters.entry(label.to_string()).or_default();
    *by_status.entry(response.status().as_u16()).or_default() += 1;
    response
}
