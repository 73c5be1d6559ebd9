//! The ACI emulator in-process, driven over HTTP on 127.0.0.1 with reqwest.

#[path = "emulator/support.rs"]
mod support;

#[path = "emulator/binary.rs"]
mod binary;
#[path = "emulator/faults.rs"]
mod faults;
#[path = "emulator/identity.rs"]
mod identity;
#[path = "emulator/lifecycle.rs"]
mod lifecycle;
#[path = "support/prefect_server.rs"]
mod prefect_server;
#[path = "emulator/requests.rs"]
mod requests;
#[path = "emulator/simulate.rs"]
mod simulate;
#[path = "emulator/validation.rs"]
mod validation;
