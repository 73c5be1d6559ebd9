//! The running worker: the reconcile loop's IO side (snapshots, the executor, log shipping),
//! heartbeats, and shutdown.

pub mod shutdown;
pub mod pool;
pub mod lookup;
pub mod convert;
pub mod jobs;
pub mod azure;
pub mod state;
