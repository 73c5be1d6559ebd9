//! Seam tests of the HTTP layer against a small axum server on 127.0.0.1.

use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap as AxumHeaders, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get};

use super::*;
use crate::prefect::settings::Secret;

fn settings(url: &str) -> PrefectSettings {
    PrefectSettings::new(url.parse().unwrap())
}

fn fast_retries(client: &PrefectClient, max_retries: u32) {
    client.set_retry_policy(RetryPolicy {
        max_retries,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    });
}

#[test]
fn auth_string_wins_as_basic() {
    let mut s = settings("http://127.0.0.1:1/api");
    s.api_key = Some(Secret::new("pnu_key"));
    s.auth_string = Some(Secret::new("admin:pass"));
    let value = auth_header(&s).unwrap();
    assert_eq!(value.to_str().unwrap(), "Basic YWRtaW46cGFzcw==");
    assert!(value.is_sensitive());
}

#[test]
fn api_key_as_bearer() {
    let mut s = settings("http://127.0.0.1:1/api");
    s.api_key = Some(Secret::new("pnu_key"));
    assert_eq!(auth_header(&s).unwrap().to_str().unwrap(), "Bearer pnu_key");
    assert!(auth_header(&settings("http://127.0.0.1:1/api")).is_none());
}

#[test]
fn cloud_detected_from_url() {
    let metrics = Metrics::new();
    let cloud = settings("https://api.prefect.cloud/api/accounts/a/workspaces/w");
    assert!(
        PrefectClient::new(&cloud, metrics.clone())
            .unwrap()
            .is_cloud()
    );
    let local = settings("http://127.0.0.1:4200/api");
    assert!(!PrefectClient::new(&local, metrics).unwrap().is_cloud());
}

/// Starts `router` on 127.0.0.1:0 and returns its API URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/api")
}

static SEEN: Mutex<Vec<(String, AxumHeaders)>> = Mutex::new(Vec::new());

#[tokio::test]
async fn headers_sent_on_every_request() {
    async fn record(uri: axum::http::Uri, headers: AxumHeaders) -> impl IntoResponse {
        SEEN.lock().unwrap().push((uri.to_string(), headers));
        (StatusCode::OK, "{}")
    }
    let url = serve(Router::new().route("/api/{*rest}", any(record))).await;
    let mut s = settings(&url);
    s.api_key = Some(Secret::new("pnu_key"));
    let client = PrefectClient::new(&s, Metrics::new()).unwrap();
    client.set_worker_name("aci worker 1");
    let call = Call::new("read_work_pool", Method::GET, &["work_pools", "my pool"]);
    let _: serde_json::Value = client.json(call).await.unwrap();

    let seen = SEEN.lock().unwrap();
    let (path, headers) = seen.last().unwrap();
    assert_eq!(path, "/api/work_pools/my%20pool");
    assert_eq!(headers["x-prefect-api-version"], "0.8.4");
    assert_eq!(headers["authorization"], "Bearer pnu_key");
    assert_eq!(headers["x-prefect-worker-name"], "aci worker 1");
    let agent = headers["user-agent"].to_str().unwrap();
    assert!(agent.starts_with("prefect-aci-worker/"), "{agent}");
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    static CALLS: Mutex<u32> = Mutex::new(0);
    async fn flaky() -> impl IntoResponse {
        let mut calls = CALLS.lock().unwrap();
        *calls += 1;
        if *calls <= 2 {
            (StatusCode::SERVICE_UNAVAILABLE, "{\"detail\":\"busy\"}")
        } else {
            (StatusCode::OK, "[1]")
        }
    }
    let url = serve(Router::new().route("/api/flaky", get(flaky))).await;
    let client = PrefectClient::new(&settings(&url), Metrics::new()).unwrap();
    fast_retries(&client, 5);
    let value: serde_json::Value = client
        .json(Call::new("flaky", Method::GET, &["flaky"]))
        .await
        .unwrap();
    assert_eq!(value, serde_json::json!([1]));
    assert_eq!(*CALLS.lock().unwrap(), 3);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    static CALLS: Mutex<u32> = Mutex::new(0);
    async fn throttled() -> impl IntoResponse {
        let mut calls = CALLS.lock().unwrap();
        *calls += 1;
        let status = if *calls == 1 {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            StatusCode::OK
        };
        (status, [("retry-after", "1")], "{}")
    }
    let url = serve(Router::new().route("/api/throttled", get(throttled))).await;
    let client = PrefectClient::new(&settings(&url), Metrics::new()).unwrap();
    fast_retries(&client, 5);
    let started = Instant::now();
    let call = Call::new("throttled", Method::GET, &["throttled"]);
    let _: serde_json::Value = client.json(call).await.unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert_eq!(*CALLS.lock().unwrap(), 2);
}

#[tokio::test]
async fn retries_run_out_as_transient_error() {
    async fn down() -> impl IntoResponse {
        (StatusCode::BAD_GATEWAY, "{\"detail\":\"bad gateway\"}")
    }
    let url = serve(Router::new().route("/api/down", get(down))).await;
    let client = PrefectClient::new(&settings(&url), Metrics::new()).unwrap();
    fast_retries(&client, 2);
    let err = client
        .send(&Call::new("down", Method::GET, &["down"]))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert!(err.is_transient());
    assert!(err.to_string().contains("down"), "{err}");
    assert!(err.to_string().contains("bad gateway"), "{err}");
}

#[tokio::test]
async fn client_error_is_not_retried() {
    static CALLS: Mutex<u32> = Mutex::new(0);
    async fn bad() -> impl IntoResponse {
        *CALLS.lock().unwrap() += 1;
        (StatusCode::CONFLICT, "{\"detail\":\"exists\"}")
    }
    let url = serve(Router::new().route("/api/bad", get(bad))).await;
    let client = PrefectClient::new(&settings(&url), Metrics::new()).unwrap();
    fast_retries(&client, 5);
    let err = client
        .send(&Call::new("bad", Method::GET, &["bad"]))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert!(!err.is_transient());
    assert_eq!(*CALLS.lock().unwrap(), 1);
}

#[tokio::test]
async fn transport_error_after_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api", listener.local_addr().unwrap());
    drop(listener);
    let client = PrefectClient::new(&settings(&url), Metrics::new()).unwrap();
    fast_retries(&client, 1);
    let err = client
        .send(&Call::new("closed", Method::GET, &["x"]))
        .await
        .unwrap_err();
    assert!(matches!(err, PrefectError::Transport { .. }), "{err}");
    assert!(err.is_transient());
}

static CSRF_TOKENS: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[tokio::test]
async fn csrf_token_fetched_and_refreshed() {
    static ISSUED: Mutex<u32> = Mutex::new(0);
    async fn token() -> impl IntoResponse {
        let mut issued = ISSUED.lock().unwrap();
        *issued += 1;
        let body = serde_json::json!({"token": format!("t{issued}"), "client": "c",
            "expiration": "2999-01-01T00:00:00Z"});
        (StatusCode::OK, body.to_string())
    }
    async fn mutate(headers: AxumHeaders) -> impl IntoResponse {
        let token = headers
            .get("prefect-csrf-token")
            .map(|v| v.to_str().unwrap().to_owned());
        let mut tokens = CSRF_TOKENS.lock().unwrap();
        tokens.push(token.clone().unwrap_or_default());
        // The first token is rejected, as a server restart would do.
        if token.as_deref() == Some("t1") {
            return (
                StatusCode::FORBIDDEN,
                "{\"detail\":\"Invalid CSRF token or client identifier.\"}",
            );
        }
        (StatusCode::OK, "{}")
    }
    let router = Router::new()
        .route("/api/csrf-token", get(token))
        .route("/api/mutate", axum::routing::post(mutate));
    let url = serve(router).await;
    let client = PrefectClient::new(&settings(&url), Metrics::new()).unwrap();
    let call = Call::new("mutate", Method::POST, &["mutate"])
        .json(&serde_json::json!({}))
        .unwrap();
    client.send(&call).await.unwrap();
    client.send(&call).await.unwrap();
    assert_eq!(*CSRF_TOKENS.lock().unwrap(), ["t1", "t2", "t2"]);
    assert_eq!(*ISSUED.lock().unwrap(), 2);
}
