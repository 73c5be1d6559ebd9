//! Helpers shared by the integration test binaries.

pub mod prefect_server;
pub mod spec;
