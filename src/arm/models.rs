//! Request body of a container group PUT, following the ARM schema `ContainerGroup`.
//!
//! Every object level keeps the fields this module does not name in `extra`, so a body
//! converted from a user's ARM template is sent back to ARM with nothing lost.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// JSON fields of one object that have no typed field here, kept verbatim.
///
/// `Debug` prints only the field names, because unnamed fields can hold secrets such as a
/// storage account key in `volumes` or a workspace key in `diagnostics`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Extra(pub Map<String, Value>);

impl Deref for Extra {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Extra {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl fmt::Debug for Extra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Mask printed by `Debug` in place of a secret.
const MASK: &str = "***";

/// A container group as sent in a create-or-update request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerGroup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<ContainerGroupIdentity>,
    pub properties: ContainerGroupProperties,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Managed identities attached to a container group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerGroupIdentity {
    /// `SystemAssigned`, `UserAssigned`, `SystemAssigned, UserAssigned` or `None`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Keyed by the identity's ARM resource id. Requests send an empty object per identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_assigned_identities: Option<BTreeMap<String, UserAssignedIdentity>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One user-assigned identity; ARM fills in both ids in responses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAssignedIdentity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The `properties` object of a container group request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerGroupProperties {
    pub containers: Vec<Container>,
    /// `Linux` or `Windows`. ARM rejects a group without it although the schema marks it
    /// optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_type: Option<String>,
    /// `Always`, `OnFailure` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_registry_credentials: Vec<ImageRegistryCredential>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<IpAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnet_ids: Vec<SubnetId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<DnsConfig>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One container of a group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub name: String,
    pub properties: ContainerProperties,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The `properties` object of a container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerProperties {
    pub image: String,
    /// Exec form: the program and its arguments, run without a shell.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_variables: Vec<EnvironmentVariable>,
    pub resources: ResourceRequirements,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A port with its protocol (`TCP` or `UDP`), used by containers and by the IP address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Port {
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An environment variable with a plain `value` or a `secureValue`. ARM never returns a
/// `secureValue`, and `Debug` masks it.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentVariable {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_value: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl fmt::Debug for EnvironmentVariable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvironmentVariable")
            .field("name", &self.name)
            .field("value", &self.value)
            .field("secure_value", &self.secure_value.as_ref().map(|_| MASK))
            .field("extra", &self.extra)
            .finish()
    }
}

/// Requested and maximum resources of a container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceRequirements {
    pub requests: ResourceRequests,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceLimits>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Resources reserved for a container: vCPUs and memory in GB (both may be fractional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceRequests {
    pub cpu: f64,
    #[serde(rename = "memoryInGB")]
    pub memory_in_gb: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuResource>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Upper bounds for a container's resources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    #[serde(
        rename = "memoryInGB",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub memory_in_gb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuResource>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// GPUs of one SKU (`K80`, `P100` or `V100`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuResource {
    pub count: u32,
    pub sku: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Credentials for one image registry: a username and password, or a managed identity's
/// ARM id in `identity`. `Debug` masks the password.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageRegistryCredential {
    /// Registry host name without a scheme, for example `myregistry.azurecr.io`.
    pub server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl fmt::Debug for ImageRegistryCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageRegistryCredential")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| MASK))
            .field("identity", &self.identity)
            .field("extra", &self.extra)
            .finish()
    }
}

/// The group's IP address; omit it for a job that takes no inbound traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpAddress {
    /// `Public` or `Private`.
    #[serde(rename = "type")]
    pub kind: String,
    pub ports: Vec<Port>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_name_label: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A subnet the group joins, by ARM resource id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubnetId {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// DNS settings of the group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsConfig {
    pub name_servers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_domains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template_body() -> Value {
        json!({
            "location": "westeurope",
            "tags": {"prefect-flow-run-id": "abc"},
            "zones": ["1"],
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {"/sub/x": {}}},
            "properties": {
                "osType": "Linux",
                "restartPolicy": "Never",
                "sku": "Standard",
                "volumes": [{"name": "v", "azureFile": {"storageAccountKey": "k"}}],
                "imageRegistryCredentials": [{"server": "r.io", "username": "u", "password": "hunter2"}],
                "containers": [{
                    "name": "job",
                    "properties": {
                        "image": "python:3.12",
                        "command": ["python", "-c", "print(1)"],
                        "environmentVariables": [
                            {"name": "A", "value": "1"},
                            {"name": "KEY", "secureValue": "s3cret"}
                        ],
                        "resources": {"requests": {"cpu": 1.0, "memoryInGB": 1.5,
                                                   "gpu": {"count": 1, "sku": "V100"}}},
                        "volumeMounts": [{"name": "v", "mountPath": "/v"}]
                    }
                }]
            }
        })
    }

    #[test]
    fn round_trip_keeps_unknown_fields() {
        let body = template_body();
        let group: ContainerGroup = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(
            group.properties.containers[0]
                .properties
                .resources
                .requests
                .cpu,
            1.0
        );
        assert!(group.properties.extra.contains_key("volumes"));
        assert_eq!(serde_json::to_value(&group).unwrap(), body);
    }

    #[test]
    fn debug_masks_secrets() {
        let group: ContainerGroup = serde_json::from_value(template_body()).unwrap();
        let printed = format!("{group:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("storageAccountKey"), "{printed}");
        assert!(printed.contains("KEY"));
        assert!(printed.contains("volumes"));
    }
}
