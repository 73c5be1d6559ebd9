//! Job-template rendering and the ACI job configuration.
//!
//! The pipeline: [`render::render_job_configuration`] turns a work pool's base job template
//! plus job variables into JSON as Prefect 3.9.1 does (except that a placeholder naming an
//! undeclared variable is an error instead of a dropped key), [`job::AciJobConfiguration`]
//! types and validates that JSON, and [`request::build_container_group`] turns it into the
//! container group body sent to ARM.

pub mod arm_template;
mod credentials;
mod error;
mod fields;
pub mod job;
pub mod lookup;
mod placeholder;
mod pyrepr;
pub mod render;
pub mod request;
mod resolve;
pub mod secrets;

pub use error::TemplateError;
pub use job::{AciCredentials, AciJobConfiguration, GpuRequest, ImageRegistry};
pub use lookup::{BlockDocument, InMemoryLookup, LookupError, TemplateLookup};
pub use render::{RenderedConfiguration, merge_job_variables, render_job_configuration};
pub use request::{
    ContainerGroupRequest, GroupPlacement, PrefectConnectionEnv, RunContext, build_container_group,
    masked_configuration, render_report,
};
pub use secrets::{SecretString, SecretValues};

/// Default image for flow-run containers when neither the pool nor the deployment sets one.
/// It follows Prefect's image naming `prefecthq/prefect:<prefect>-python<python>` and is the
/// image the Python worker picks when it runs on Prefect 3.9.1 and Python 3.11. A fixed tag
/// keeps runs unchanged when Prefect publishes a new release.
pub const DEFAULT_IMAGE: &str = "prefecthq/prefect:3.9.1-python3.11";

/// Returns this worker's default base job template (`job_configuration` and `variables`).
pub fn default_base_job_template() -> serde_json::Value {
    serde_json::from_str(include_str!("default_template.json"))
        .expect("default_template.json is valid JSON, checked by a unit test")
}
