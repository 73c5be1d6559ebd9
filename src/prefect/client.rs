//! The HTTP layer of the Prefect client: headers, auth, CSRF, retries, timeouts, metrics.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;
use uuid::Uuid;

use super::csrf::{self, Csrf, CsrfToken};
use super::error::PrefectError;
use super::retry::{RetryPolicy, is_retryable_status, retry_after};
use super::settings::PrefectSettings;
use crate::metrics::{Api, Metrics};

/// The REST API version this client speaks, sent as `X-PREFECT-API-VERSION`. It is the
/// version Prefect 3.9.1 sends; 2.x servers accept it too.
pub const API_VERSION: &str = "0.8.4";
/// Prefix of Prefect Cloud API URLs (Prefect's `PREFECT_CLOUD_API_URL` default).
const CLOUD_API_PREFIX: &str = "https://api.prefect.cloud/api";
const USER_AGENT: &str = concat!("prefect-aci-worker/", env!("CARGO_PKG_VERSION"));
/// Attribution headers, in the lowercase form `HeaderName::from_static` needs.
const WORKER_NAME_HEADER: &str = "x-prefect-worker-name";
const WORKER_ID_HEADER: &str = "x-prefect-worker-id";

/// A Prefect REST API client. Cloning is cheap: clones share the connection pool, the CSRF
/// token and the worker identity.
#[derive(Clone)]
pub struct PrefectClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    api_url: Url,
    is_cloud: bool,
    auth: Option<HeaderValue>,
    worker_name: RwLock<Option<HeaderValue>>,
    worker_id: RwLock<Option<Uuid>>,
    retry: RwLock<RetryPolicy>,
    csrf: Csrf,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for PrefectClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefectClient")
            .field("api_url", &self.inner.api_url.as_str())
            .field("is_cloud", &self.inner.is_cloud)
            .finish_non_exhaustive()
    }
}

/// One API request: operation name, method, path segments below the API URL, query, body.
pub(crate) struct Call {
    operation: &'static str,
    method: Method,
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
}

impl Call {
    /// Creates a request to `/seg1/seg2...`, percent-encoding each segment. End with `""`
    /// for a trailing slash.
    pub(crate) fn new(operation: &'static str, method: Method, segments: &[&str]) -> Self {
        Self {
            operation,
            method,
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    pub(crate) fn json(mut self, body: &impl Serialize) -> Result<Self, PrefectError> {
        let bytes = serde_json::to_vec(body).map_err(|source| PrefectError::Encode {
            operation: self.operation,
            source,
        })?;
        self.body = Some(bytes);
        Ok(self)
    }

    pub(crate) fn operation(&self) -> &'static str {
        self.operation
    }

    fn is_mutating(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }
}

impl PrefectClient {
    /// Builds a client from `settings`. Fails only if the TLS settings are unusable.
    pub fn new(settings: &PrefectSettings, metrics: Arc<Metrics>) -> Result<Self, PrefectError> {
        let http = build_http_client(settings)?;
        let is_cloud = settings.api_url.as_str().starts_with(CLOUD_API_PREFIX);
        let inner = Inner {
            http,
            api_url: settings.api_url.clone(),
            is_cloud,
            auth: auth_header(settings),
            worker_name: RwLock::new(None),
            worker_id: RwLock::new(None),
            retry: RwLock::new(RetryPolicy::new(settings.max_retries)),
            csrf: Csrf::new(!is_cloud),
            metrics,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Sends `X-Prefect-Worker-Name: name` on every request from now on, on all clones.
    pub fn set_worker_name(&self, name: &str) {
        let value = HeaderValue::from_str(name.trim_matches([' ', '\t'])).ok();
        *self.inner.worker_name.write().expect("worker name lock") = value;
    }

    /// Replaces the retry policy, for example to shorten delays in tests.
    pub fn set_retry_policy(&self, policy: RetryPolicy) {
        *self.inner.retry.write().expect("retry policy lock") = policy;
    }

    /// Returns the API URL that requests go to.
    pub fn api_url(&self) -> &Url {
        &self.inner.api_url
    }

    /// True if the API URL is Prefect Cloud's.
    pub fn is_cloud(&self) -> bool {
        self.inner.is_cloud
    }

    /// Returns the worker id Prefect Cloud returned from a heartbeat, if any.
    pub fn worker_id(&self) -> Option<Uuid> {
        *self.inner.worker_id.read().expect("worker id lock")
    }

    pub(crate) fn set_worker_id(&self, id: Uuid) {
        *self.inner.worker_id.write().expect("worker id lock") = Some(id);
    }

    /// Sends `call` and decodes a JSON response body.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T, PrefectError> {
        let operation = call.operation;
        let bytes = self.bytes(call).await?;
        serde_json::from_slice(&bytes).map_err(|source| PrefectError::Decode { operation, source })
    }

    /// Sends `call` and returns the response body.
    pub(crate) async fn bytes(&self, call: Call) -> Result<Vec<u8>, PrefectError> {
        let operation = call.operation;
        let response = self.send(&call).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|source| PrefectError::Transport { operation, source })?;
        Ok(bytes.to_vec())
    }

    /// Sends `call`, adding CSRF headers to mutating requests. A 2xx is `Ok`, anything else
    /// left after retries is an error.
    pub(crate) async fn send(&self, call: &Call) -> Result<Response, PrefectError> {
        if !call.is_mutating() {
            return self.send_with_retries(call, None).await;
        }
        let token = self.csrf_token().await?;
        match self.send_with_retries(call, token.as_ref()).await {
            Err(err) if token.is_some() && csrf::is_invalid_token(&err) => {
                tracing::warn!(
                    operation = call.operation,
                    "CSRF token rejected, fetching a new one"
                );
                self.inner.csrf.invalidate().await;
                let token = self.csrf_token().await?;
                self.send_with_retries(call, token.as_ref()).await
            }
            other => other,
        }
    }

    async fn csrf_token(&self) -> Result<Option<CsrfToken>, PrefectError> {
        let csrf = &self.inner.csrf;
        csrf.token(|| async {
            let call = Call::new("read_csrf_token", Method::GET, &["csrf-token"])
                .query("client", csrf.client_id());
            let result = match self.send_with_retries(&call, None).await {
                Ok(response) => response
                    .bytes()
                    .await
                    .map(|b| b.to_vec())
                    .map_err(|source| PrefectError::Transport {
                        operation: call.operation,
                        source,
                    }),
                Err(err) => Err(err),
            };
            csrf::parse_fetch_result(result)
        })
        .await
    }

    /// Sends `call` until it succeeds, fails with a status that is not retried, or runs out
    /// of retries. NOTE: unlike Prefect's client, connect errors are retried even before
    /// the first successful connection, and `Prefect-Maintenance: true` responses count
    /// toward the retry limit.
    async fn send_with_retries(
        &self,
        call: &Call,
        csrf: Option<&CsrfToken>,
    ) -> Result<Response, PrefectError> {
        let policy = *self.inner.retry.read().expect("retry policy lock");
        let mut retry = 0;
        loop {
            let started = Instant::now();
            let result = self.build_request(call, csrf).send().await;
            let elapsed = started.elapsed();
            let metrics = &self.inner.metrics;
            let (wait_hint, status) = match result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    metrics.observe_prefect_request(call.operation, Some(status), elapsed);
                    if status == 429 {
                        metrics.record_throttled(Api::Prefect, call.operation);
                    }
                    if response.status().is_success() {
                        return Ok(response);
                    }
                    if !is_retryable_status(status) || retry >= policy.max_retries {
                        let body = response.text().await.unwrap_or_default();
                        return Err(PrefectError::from_status(call.operation, status, &body));
                    }
                    (retry_after(response.headers()), Some(status))
                }
                Err(source) => {
                    metrics.observe_prefect_request(call.operation, None, elapsed);
                    if source.is_builder() || retry >= policy.max_retries {
                        let operation = call.operation;
                        return Err(PrefectError::Transport { operation, source });
                    }
                    tracing::debug!(operation = call.operation, error = %source, "transport error");
                    (None, None)
                }
            };
            let delay = policy.delay(retry, wait_hint);
            tracing::warn!(
                operation = call.operation,
                status,
                retry = retry + 1,
                max_retries = policy.max_retries,
                delay_ms = delay.as_millis() as u64,
                "retrying Prefect API call"
            );
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }

    fn build_request(&self, call: &Call, csrf: Option<&CsrfToken>) -> reqwest::RequestBuilder {
        let inner = &self.inner;
        let mut url = inner.api_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(&call.segments);
        }
        let mut request = inner.http.request(call.method.clone(), url);
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        request = request.headers(self.request_headers(csrf));
        if let Some(body) = &call.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        request
    }

    fn request_headers(&self, csrf: Option<&CsrfToken>) -> HeaderMap {
        let inner = &self.inner;
        let mut headers = HeaderMap::new();
        if let Some(auth) = &inner.auth {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        if let Some(name) = inner.worker_name.read().expect("worker name lock").clone() {
            headers.insert(HeaderName::from_static(WORKER_NAME_HEADER), name);
        }
        if let Some(id) = self.worker_id() {
            let value = HeaderValue::from_str(&id.to_string()).expect("uuid is a header value");
            headers.insert(HeaderName::from_static(WORKER_ID_HEADER), value);
        }
        if let Some(token) = csrf {
            for (name, value) in [
                (csrf::TOKEN_HEADER, &token.token),
                (csrf::CLIENT_HEADER, &token.client),
            ] {
                if let Ok(value) = HeaderValue::from_str(value) {
                    headers.insert(HeaderName::from_static(name), value);
                }
            }
        }
        headers
    }
}

/// Builds the `Authorization` value: Basic from the auth string wins over Bearer from the key.
pub(crate) fn auth_header(settings: &PrefectSettings) -> Option<HeaderValue> {
    let text = if let Some(auth) = &settings.auth_string {
        let encoded = base64::engine::general_purpose::STANDARD.encode(auth.expose());
        format!("Basic {encoded}")
    } else {
        format!("Bearer {}", settings.api_key.as_ref()?.expose())
    };
    let mut value = HeaderValue::from_str(&text).ok()?;
    value.set_sensitive(true);
    Some(value)
}

fn build_http_client(settings: &PrefectSettings) -> Result<reqwest::Client, PrefectError> {
    let mut defaults = HeaderMap::new();
    defaults.insert(
        HeaderName::from_static("x-prefect-api-version"),
        HeaderValue::from_static(API_VERSION),
    );
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .default_headers(defaults)
        .timeout(settings.request_timeout)
        .connect_timeout(settings.request_timeout)
        .danger_accept_invalid_certs(settings.tls_insecure_skip_verify);
    if let Some(path) = &settings.ssl_cert_file {
        let cert_error =
            |source: Box<dyn std::error::Error + Send + Sync>| PrefectError::CertificateFile {
                path: path.clone(),
                source,
            };
        let pem = std::fs::read(path).map_err(|err| cert_error(Box::new(err)))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| cert_error(Box::new(err)))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|source| PrefectError::Build { source })
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
