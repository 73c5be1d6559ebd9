//! Typed request and response bodies of the Prefect REST API.
//!
//! Response models ignore unknown fields, so newer servers with extra fields still decode.
//! Timestamps are RFC 3339, which both Prefect 2.x (`+00:00`) and 3.x (`Z`) send.

mod flow_run;
mod misc;
mod state;
mod work_pool;

pub use flow_run::{Deployment, Flow, FlowRun, FlowRunFilter, WorkerFlowRunResponse};
pub use misc::{BlockDocument, BlockSchema, BlockType, LogCreate, Variable};
pub use state::{
    OrchestrationDetails, OrchestrationResult, OrchestrationStatus, State, StateCreate,
    StateDetails, StateType,
};
pub use work_pool::{WorkPool, WorkPoolCreate, WorkPoolUpdate, WorkQueue, Worker, WorkerStatus};
