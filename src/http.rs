//! HTTP server for health, readiness and metrics.
