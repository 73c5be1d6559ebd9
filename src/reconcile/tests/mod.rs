//! Table tests of the planner, one case per row of the state table in
//! `docs/architecture.md`, plus invariants over all combinations.

mod builders;
mod claims;
mod cleanup;
mod memory;
mod property;
mod watch;
