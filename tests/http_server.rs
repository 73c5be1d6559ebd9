//! The health, readiness and metrics server, run on 127.0.0.1:0 and queried over HTTP.

use std::sync::Arc;
use std::time::Duration;

use prefect_aci_worker::http::{self, Health, METRICS_CONTENT_TYPE};
use prefect_aci_worker::metrics::Metrics;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Server {
    base: String,
    client: reqwest::Client,
    health: Health,
    metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), http::HttpError>>,
}

impl Server {
    async fn start(staleness_limit: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let health = Health::new(staleness_limit);
        let metrics = Metrics::new();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(http::serve(
            listener,
            health.clone(),
            metrics.clone(),
            shutdown,
        ));
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        Self {
            base,
            client,
            health,
            metrics,
            stop: Some(stop),
            task,
        }
    }

    async fn get(&self, path: &str) -> (u16, Option<String>, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} failed: {e}"));
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| v.to_str().expect("ASCII content type").to_owned());
        let body = response.text().await.expect("body");
        (status, content_type, body)
    }
}

fn pass_every_check(health: &Health) {
    health.set_prefect_answered();
    health.set_pool_read();
    health.set_arm_token_obtained();
    health.set_reconciled();
}

#[tokio::test]
async fn healthz_ok_while_ticking() {
    let server = Server::start(Duration::from_secs(30)).await;
    let (status, _, body) = server.get("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body, "ok\n");
}

#[tokio::test]
async fn healthz_stale_then_recovers() {
    let server = Server::start(Duration::from_millis(100)).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (status, _, body) = server.get("/healthz").await;
    assert_eq!(status, 503);
    assert!(
        body.starts_with("stale: last reconcile tick"),
        "body: {body}"
    );

    server.health.record_tick();
    let (status, _, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn readyz_names_missing_checks() {
    let server = Server::start(Duration::from_secs(30)).await;
    let (status, _, body) = server.get("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        "not ready, missing: prefect_api, work_pool, arm_token, first_reconcile\n"
    );

    server.health.set_prefect_answered();
    server.health.set_arm_token_obtained();
    let (status, _, body) = server.get("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(body, "not ready, missing: work_pool, first_reconcile\n");
}

#[tokio::test]
async fn readyz_ok_after_every_check() {
    let server = Server::start(Duration::from_secs(30)).await;
    pass_every_check(&server.health);
    let (status, _, body) = server.get("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(body, "ready\n");
}

#[tokio::test]
async fn metrics_content_type_and_body() {
    let server = Server::start(Duration::from_secs(30)).await;
    server.metrics.record_claimed();
    let (status, content_type, body) = server.get("/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some(METRICS_CONTENT_TYPE));
    assert!(body.contains("\nprefect_aci_worker_flow_runs_claimed_total 1\n"));
    assert!(body.ends_with("# EOF\n"));
}

#[tokio::test]
async fn metrics_ready_gauge_follows_health() {
    let server = Server::start(Duration::from_secs(30)).await;
    let (_, _, body) = server.get("/metrics").await;
    assert!(
        body.contains("\nprefect_aci_worker_ready 0\n"),
        "body: {body}"
    );

    pass_every_check(&server.health);
    let (_, _, body) = server.get("/metrics").await;
    assert!(
        body.contains("\nprefect_aci_worker_ready 1\n"),
        "body: {body}"
    );
}

#[tokio::test]
async fn unknown_path_is_404() {
    let server = Server::start(Duration::from_secs(30)).await;
    let (status, _, _) = server.get("/nope").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn shutdown_stops_server() {
    let mut server = Server::start(Duration::from_secs(30)).await;
    server
        .stop
        .take()
        .expect("stop sender")
        .send(())
        .expect("send");
    let result = tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("server stopped within 5 s")
        .expect("server task did not panic");
    assert!(result.is_ok(), "serve returned {result:?}");
}

#[tokio::test]
async fn bind_error_names_address() {
    let occupied = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = occupied.local_addr().expect("local addr");
    let error = http::bind(addr).await.expect_err("address in use");
    assert!(error.to_string().contains(&addr.to_string()), "{error}");
}
