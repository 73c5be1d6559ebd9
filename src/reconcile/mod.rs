//! The reconcile loop: snapshot, pure planner and executor.
pub mod logs;
