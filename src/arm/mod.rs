//! Azure Resource Manager client for container groups, Azure identity and throttling.

pub mod auth;
pub mod classify;
pub mod client;
pub mod cloud;
pub mod credential;
pub mod error;
pub mod limiter;
pub mod models;
pub mod operations;
pub mod response;
pub mod retry;

pub use auth::{AzureAuth, ClientSecretFields, Environment, IdentitySettings, ManagedIdentityId};
pub use classify::ErrorClass;
pub use client::{ArmClient, ArmSettings, DeleteOutcome, LogOptions, ResourceGroupRef};
pub use cloud::{AzureCloud, EndpointSettings};
pub use credential::{StaticToken, TokenProvider};
pub use error::ArmError;
pub use models::ContainerGroup;
pub use operations::ArmOperation;
pub use response::{ContainerGroupResponse, ContainerGroupSummary, ProvisioningState};
