//! Token endpoints: the managed identity endpoint behind IDENTITY_ENDPOINT, an Entra
//! client-credentials endpoint, and the check of bearer tokens on ARM requests.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;
use uuid::Uuid;

use super::faults::Operation;
use super::server::{apply_faults, record};
use super::state::Shared;

/// Path of the managed identity endpoint; `identity_endpoint()` returns its full URL.
pub const MANAGED_IDENTITY_PATH: &str = "/msi/token";
/// How long an expired token is remembered, so that requests with it get
/// ExpiredAuthenticationToken rather than InvalidAuthenticationToken.
const EXPIRED_TOKEN_MEMORY: Duration = Duration::from_secs(3600);
/// The api-version azure_identity sends to an App Service style endpoint.
const MANAGED_IDENTITY_API_VERSION: &str = "2019-08-01";

/// Issues a token valid for the configured lifetime. Returns it and its expiry in Unix
/// seconds.
pub fn issue_token(shared: &Shared) -> (String, u64) {
    let lifetime = Duration::from_secs(shared.config.token_lifetime_seconds);
    let token = format!("aci-emulator.{}", Uuid::new_v4().simple());
    let mut tokens = shared.tokens.lock().expect("token lock poisoned");
    let now = Instant::now();
    tokens.retain(|_, expiry| *expiry + EXPIRED_TOKEN_MEMORY > now);
    tokens.insert(token.clone(), now + lifetime);
    let expires_on = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(lifetime)
        .as_secs();
    (token, expires_on)
}

/// The result of checking the bearer token of an ARM request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    Valid,
    /// Issued here but past its expiry.
    Expired,
    /// Missing, malformed or never issued here.
    Invalid,
}

/// Checks the `Authorization: Bearer` header against the tokens issued here.
pub fn check_token(shared: &Shared, headers: &HeaderMap) -> TokenCheck {
    let value = headers.get("authorization").and_then(|v| v.to_str().ok());
    let Some(token) = value.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim) else {
        return TokenCheck::Invalid;
    };
    let tokens = shared.tokens.lock().expect("token lock poisoned");
    match tokens.get(token) {
        Some(expiry) if *expiry > Instant::now() => TokenCheck::Valid,
        Some(_) => TokenCheck::Expired,
        None => TokenCheck::Invalid,
    }
}

/// `GET /msi/token?api-version=2019-08-01&resource=...`, as azure_identity calls it when
/// IDENTITY_ENDPOINT and IDENTITY_HEADER are set. The optional `client_id`, `object_id`
/// or `msi_res_id` are accepted and not checked.
pub async fn managed_identity_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = apply_faults(&shared, Operation::Token).await {
        return record(&shared, "token", response);
    }
    let response = managed_identity_response(&shared, &headers, &query);
    record(&shared, "token", response)
}

fn managed_identity_response(
    shared: &Shared,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Response {
    let header = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok());
    if header != Some(shared.identity_header.as_str()) {
        let message = "The x-identity-header header is missing or does not match IDENTITY_HEADER.";
        return msi_error(StatusCode::UNAUTHORIZED, message);
    }
    if query.get("api-version").map(String::as_str) != Some(MANAGED_IDENTITY_API_VERSION) {
        let message = format!("The api-version must be {MANAGED_IDENTITY_API_VERSION}.");
        return msi_error(StatusCode::BAD_REQUEST, &message);
    }
    let Some(resource) = query.get("resource").filter(|r| !r.is_empty()) else {
        return msi_error(
            StatusCode::BAD_REQUEST,
            "The resource query parameter is required.",
        );
    };
    let (token, expires_on) = issue_token(shared);
    let body = json!({
        "access_token": token,
        "expires_on": expires_on.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": query.get("client_id").cloned().unwrap_or_else(|| Uuid::nil().to_string()),
    });
    Json(body).into_response()
}

fn msi_error(status: StatusCode, message: &str) -> Response {
    let body = json!({ "statusCode": status.as_u16(), "message": message });
    (status, Json(body)).into_response()
}

/// Form of an Entra client-credentials token request.
#[derive(Debug, serde::Deserialize)]
pub struct TokenForm {
    client_id: Option<String>,
    client_secret: Option<String>,
    grant_type: Option<String>,
    scope: Option<String>,
}

/// `POST /{tenant}/oauth2/v2.0/token` with the client-credentials grant.
pub async fn entra_token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Form(form): Form<TokenForm>,
) -> Response {
    if let Some(response) = apply_faults(&shared, Operation::Token).await {
        return record(&shared, "token", response);
    }
    let response = entra_response(&shared, &tenant, &form);
    record(&shared, "token", response)
}

fn entra_response(shared: &Shared, tenant: &str, form: &TokenForm) -> Response {
    if form.grant_type.as_deref() != Some("client_credentials") {
        let description =
            "AADSTS70003: The app requested an unsupported grant type. Use client_credentials.";
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            description,
            70003,
        );
    }
    if form.scope.as_deref().is_none_or(str::is_empty) {
        let description = "AADSTS90014: The required field 'scope' is missing from the credential.";
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            description,
            90014,
        );
    }
    let client_id = form.client_id.as_deref().unwrap_or_default();
    let known = shared
        .config
        .client_credentials
        .iter()
        .find(|c| c.client_id == client_id);
    let Some(known) = known else {
        let description = format!(
            "AADSTS700016: Application with identifier '{client_id}' was not found in the directory '{tenant}'."
        );
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &description,
            700016,
        );
    };
    if form.client_secret.as_deref() != Some(known.client_secret.as_str()) {
        let description = format!(
            "AADSTS7000215: Invalid client secret provided for application '{client_id}'. Ensure the secret being sent in the request is the client secret value, not the client secret ID."
        );
        return entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            &description,
            7000215,
        );
    }
    let (token, _) = issue_token(shared);
    let lifetime = shared.config.token_lifetime_seconds;
    let body = json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    });
    Json(body).into_response()
}

fn entra_error(status: StatusCode, error: &str, description: &str, code: u32) -> Response {
    let body = json!({
        "error": error,
        "error_description": description,
        "error_codes": [code],
        "timestamp": super::state::now_rfc3339(),
        "trace_id": Uuid::new_v4().to_string(),
        "correlation_id": Uuid::new_v4().to_string(),
    });
    (status, Json(body)).into_response()
}
