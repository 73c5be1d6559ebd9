//! Helpers shared by the integration test binaries. Each binary uses only some of them.
#![allow(dead_code)]

pub mod prefect_rest;
pub mod prefect_server;
pub mod spec;
pub mod stack;
pub mod worker_process;
