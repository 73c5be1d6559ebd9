//! A Prefect worker for Azure Container Instances, built as a level-triggered reconciling
//! controller: each pass compares the work pool's flow runs with the container groups tagged
//! for them and converges the two.

pub mod arm;
pub mod cli;
pub mod commands;
pub mod config;
pub mod emulator;
pub mod http;
pub mod metrics;
pub mod prefect;
pub mod reconcile;
pub mod telemetry;
pub mod template;
pub mod worker;
