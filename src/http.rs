//! HTTP server for health, readiness and metrics.
//!
//! `/healthz` returns 200 while the reconcile loop keeps ticking. `/readyz` returns 200 once
//! the worker has reached Prefect, read its work pool, obtained an ARM token and finished
//! one reconcile pass. `/metrics` returns the registry in the OpenMetrics text format.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::metrics::Metrics;

/// Content type of `/metrics`: the OpenMetrics text format that `Metrics::encode` writes.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Errors of the HTTP server.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The listen address could not be bound, usually because it is in use or needs
    /// privileges.
    #[error("failed to bind the HTTP server to {addr}; choose another --http-addr")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Accepting or serving connections failed.
    #[error("HTTP server failed")]
    Serve(#[source] std::io::Error),
}

/// One readiness condition and the name `/readyz` lists while it is unmet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    PrefectApi,
    WorkPool,
    ArmToken,
    FirstReconcile,
}

impl Check {
    const ALL: [Check; 4] = [
        Check::PrefectApi,
        Check::WorkPool,
        Check::ArmToken,
        Check::FirstReconcile,
    ];

    fn name(self) -> &'static str {
        match self {
            Check::PrefectApi => "prefect_api",
            Check::WorkPool => "work_pool",
            Check::ArmToken => "arm_token",
            Check::FirstReconcile => "first_reconcile",
        }
    }
}

#[derive(Debug)]
struct HealthState {
    staleness_limit: Duration,
    last_tick: Mutex<Instant>,
    passed: [AtomicBool; 4],
}

/// Liveness and readiness state shared by the reconciler, which sets it, and the HTTP
/// server, which reads it. Cloning is cheap and every clone sees the same state.
///
/// The readiness flags only go from unset to set: once the worker was ready it stays
/// ready, and a later outage shows in liveness and in the metrics instead.
#[derive(Debug, Clone)]
pub struct Health {
    state: Arc<HealthState>,
}

impl Health {
    /// Creates the state with no readiness flag set. `staleness_limit` is how long after
    /// the last tick (or after creation, before the first tick) the worker still counts
    /// as live. Pick a few query intervals so one slow tick does not restart the worker.
    pub fn new(staleness_limit: Duration) -> Self {
        Self {
            state: Arc::new(HealthState {
                staleness_limit,
                last_tick: Mutex::new(Instant::now()),
                passed: Default::default(),
            }),
        }
    }

    /// Records that the reconcile loop started or finished a tick.
    pub fn record_tick(&self) {
        *self.lock_last_tick() = Instant::now();
    }

    /// Marks that the Prefect API returned a successful response.
    pub fn set_prefect_answered(&self) {
        self.pass(Check::PrefectApi);
    }

    /// Marks that the work pool was read (or created) in Prefect.
    pub fn set_pool_read(&self) {
        self.pass(Check::WorkPool);
    }

    /// Marks that an ARM access token was obtained.
    pub fn set_arm_token_obtained(&self) {
        self.pass(Check::ArmToken);
    }

    /// Marks that one reconcile pass finished.
    pub fn set_reconciled(&self) {
        self.pass(Check::FirstReconcile);
    }

    /// Returns the time since the last tick.
    pub fn since_last_tick(&self) -> Duration {
        self.lock_last_tick().elapsed()
    }

    /// Returns true while the last tick is no older than the staleness limit.
    pub fn is_live(&self) -> bool {
        self.since_last_tick() <= self.state.staleness_limit
    }

    /// Returns the names of the readiness conditions not yet met, in a fixed order:
    /// `prefect_api`, `work_pool`, `arm_token`, `first_reconcile`.
    pub fn missing(&self) -> Vec<&'static str> {
        Check::ALL
            .into_iter()
            .filter(|&check| !self.state.passed[check as usize].load(Ordering::Acquire))
            .map(Check::name)
            .collect()
    }

    /// Returns true once every readiness condition is met.
    pub fn is_ready(&self) -> bool {
        self.missing().is_empty()
    }

    fn pass(&self, check: Check) {
        self.state.passed[check as usize].store(true, Ordering::Release);
    }

    fn lock_last_tick(&self) -> std::sync::MutexGuard<'_, Instant> {
        // The guarded value is a plain Instant, so a panic elsewhere cannot leave it
        // half-written and the poison flag can be ignored.
        self.state
            .last_tick
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Clone)]
struct AppState {
    health: Health,
    metrics: Arc<Metrics>,
}

/// Builds the router with `/healthz`, `/readyz` and `/metrics`.
pub fn router(health: Health, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .with_state(AppState { health, metrics })
}

/// Binds a TCP listener on `addr`, with an error that names the address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })
}

/// Serves the router on `listener` until `shutdown` completes, then finishes the requests
/// in progress and returns.
pub async fn serve(
    listener: TcpListener,
    health: Health,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "HTTP server listening");
    }
    axum::serve(listener, router(health, metrics))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(HttpError::Serve)
}

async fn healthz(State(app): State<AppState>) -> Response {
    let since = app.health.since_last_tick();
    if app.health.is_live() {
        return (StatusCode::OK, "ok\n").into_response();
    }
    let limit = app.health.state.staleness_limit;
    let body = format!(
        "stale: last reconcile tick {:.1}s ago, limit {:.1}s\n",
        since.as_secs_f64(),
        limit.as_secs_f64()
    );
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}

async fn readyz(State(app): State<AppState>) -> Response {
    let missing = app.health.missing();
    if missing.is_empty() {
        return (StatusCode::OK, "ready\n").into_response();
    }
    let body = format!("not ready, missing: {}\n", missing.join(", "));
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}

async fn metrics_handler(State(app): State<AppState>) -> Response {
    // The gauge is refreshed at scrape time, so it is right even when nothing probes
    // /readyz.
    app.metrics.set_ready(app.health.is_ready());
    let body = app.metrics.encode();
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn live_until_staleness_limit() {
        let health = Health::new(Duration::from_secs(30));
        assert!(health.is_live());
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(!health.is_live());
        health.record_tick();
        assert!(health.is_live());
    }

    #[tokio::test(start_paused = true)]
    async fn clone_shares_last_tick() {
        let health = Health::new(Duration::from_secs(10));
        let clone = health.clone();
        tokio::time::advance(Duration::from_secs(11)).await;
        clone.record_tick();
        assert!(health.is_live());
    }

    #[test]
    fn missing_lists_unset_checks_in_order() {
        let health = Health::new(Duration::from_secs(10));
        let all = ["prefect_api", "work_pool", "arm_token", "first_reconcile"];
        assert_eq!(health.missing(), all);
        health.set_pool_read();
        health.set_reconciled();
        assert_eq!(health.missing(), ["prefect_api", "arm_token"]);
        assert!(!health.is_ready());
    }

    #[test]
    fn ready_when_every_check_passed() {
        let health = Health::new(Duration::from_secs(10));
        health.set_prefect_answered();
        health.set_pool_read();
        health.set_arm_token_obtained();
        health.set_reconciled();
        assert!(health.is_ready());
    }
}
