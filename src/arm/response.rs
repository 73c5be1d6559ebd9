//! Response bodies ARM returns for container groups, logs, resource groups and errors.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use super::models::{ContainerGroupIdentity, Extra};

/// `properties.provisioningState` of a container group. Values this enum does not name are
/// kept in `Other`, because the GET schema declares the field a free string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum ProvisioningState {
    #[default]
    NotSpecified,
    Accepted,
    Pending,
    Updating,
    Creating,
    Repairing,
    Unhealthy,
    Failed,
    Canceled,
    Succeeded,
    Deleting,
    NotAccessible,
    PreProvisioned,
    Other(String),
}

const NAMED_STATES: [(ProvisioningState, &str); 13] = [
    (ProvisioningState::NotSpecified, "NotSpecified"),
    (ProvisioningState::Accepted, "Accepted"),
    (ProvisioningState::Pending, "Pending"),
    (ProvisioningState::Updating, "Updating"),
    (ProvisioningState::Creating, "Creating"),
    (ProvisioningState::Repairing, "Repairing"),
    (ProvisioningState::Unhealthy, "Unhealthy"),
    (ProvisioningState::Failed, "Failed"),
    (ProvisioningState::Canceled, "Canceled"),
    (ProvisioningState::Succeeded, "Succeeded"),
    (ProvisioningState::Deleting, "Deleting"),
    (ProvisioningState::NotAccessible, "NotAccessible"),
    (ProvisioningState::PreProvisioned, "PreProvisioned"),
];

impl ProvisioningState {
    /// Parses a state name as ARM spells it, ignoring ASCII case.
    pub fn parse(value: &str) -> Self {
        NAMED_STATES
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(value))
            .map(|(state, _)| state.clone())
            .unwrap_or_else(|| Self::Other(value.to_owned()))
    }

    /// Returns the state's name as ARM spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(value) => value,
            named => NAMED_STATES
                .iter()
                .find(|(state, _)| state == named)
                .map(|(_, name)| *name)
                .unwrap_or_default(),
        }
    }

    /// True for `Succeeded`, `Failed` and `Canceled`, after which ARM changes nothing more
    /// about the deployment of the group (its containers may still run).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }
}

impl fmt::Display for ProvisioningState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ProvisioningState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProvisioningState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Ok(Self::parse(&value))
    }
}

/// A container group as returned by GET or by PUT.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerGroupResponse {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub identity: Option<ContainerGroupIdentity>,
    #[serde(default)]
    pub properties: ContainerGroupResponseProperties,
}

/// The `properties` of a container group response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerGroupResponseProperties {
    #[serde(default)]
    pub provisioning_state: ProvisioningState,
    #[serde(default)]
    pub os_type: Option<String>,
    #[serde(default)]
    pub restart_policy: Option<String>,
    #[serde(default)]
    pub containers: Vec<ContainerResponse>,
    /// Absent until ARM has scheduled the group, and in every list result.
    #[serde(default)]
    pub instance_view: Option<GroupInstanceView>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The group-level run state and its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupInstanceView {
    /// Observed values include `Pending`, `Running`, `Succeeded`, `Failed` and `Stopped`.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One container of a group response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerResponse {
    pub name: String,
    #[serde(default)]
    pub properties: ContainerResponseProperties,
}

/// The parts of a container's response properties the worker reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerResponseProperties {
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub instance_view: Option<ContainerInstanceView>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Run state of one container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstanceView {
    #[serde(default)]
    pub restart_count: Option<i32>,
    #[serde(default)]
    pub current_state: Option<ContainerState>,
    #[serde(default)]
    pub previous_state: Option<ContainerState>,
    #[serde(default)]
    pub events: Vec<Event>,
}

/// A container state such as `Waiting`, `Running` or `Terminated`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub start_time: Option<OffsetDateTime>,
    /// Process exit code with `docker run` semantics; set once the container terminated.
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finish_time: Option<OffsetDateTime>,
    /// Free text such as `Completed` or `Error`.
    #[serde(default)]
    pub detail_status: Option<String>,
}

/// An event of a group or a container, for example `Pulling`, `Pulled`, `Started` or
/// `Killing`, with `type` `Normal` or `Warning`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(default)]
    pub count: Option<i32>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub first_timestamp: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_timestamp: Option<OffsetDateTime>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// A container group as a list result returns it: no instance view, so the run state of a
/// group takes a GET.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerGroupSummary {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub identity: Option<ContainerGroupIdentity>,
    #[serde(default)]
    pub properties: SummaryProperties,
}

/// The `properties` of a list result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryProperties {
    #[serde(default)]
    pub provisioning_state: ProvisioningState,
}

/// One page of a list operation.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListPage<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(default)]
    pub next_link: Option<String>,
}

/// Body of the container logs operation.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Logs {
    #[serde(default)]
    pub content: String,
}

/// A resource group; the worker reads it for its location.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceGroup {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub location: String,
}

/// ARM's error body: `{"error": {code, message, target, details}}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CloudError {
    pub error: CloudErrorBody,
}

/// One level of an ARM error; `details` nests further errors.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CloudErrorBody {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub details: Vec<CloudErrorBody>,
}

impl CloudErrorBody {
    /// Follows the first entry of `details` down to the deepest error that has a code, which
    /// is the most specific cause and what users are shown.
    pub fn innermost(&self) -> &CloudErrorBody {
        match self.details.iter().find(|detail| !detail.code.is_empty()) {
            Some(detail) => detail.innermost(),
            None => self,
        }
    }
}

/// Returns the innermost `(code, message)` of an ARM error body, or `None` when `body` is
/// not one.
pub fn innermost_error(body: &[u8]) -> Option<(String, String)> {
    let parsed: CloudError = serde_json::from_slice(body).ok()?;
    let inner = parsed.error.innermost();
    Some((inner.code.clone(), inner.message.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn provisioning_state_falls_back() {
        assert_eq!(
            ProvisioningState::parse("Succeeded"),
            ProvisioningState::Succeeded
        );
        assert_eq!(
            ProvisioningState::parse("succeeded"),
            ProvisioningState::Succeeded
        );
        let other = ProvisioningState::parse("Migrating");
        assert_eq!(other, ProvisioningState::Other("Migrating".into()));
        assert_eq!(other.as_str(), "Migrating");
        assert_eq!(ProvisioningState::Repairing.as_str(), "Repairing");
    }

    #[test]
    fn innermost_error_descends_details() {
        let body = json!({"error": {"code": "DeploymentFailed", "message": "outer",
            "details": [{"code": "BadRequest", "message": "middle",
                "details": [{"code": "InaccessibleImage", "message": "image x not found"}]}]}});
        let (code, message) = innermost_error(body.to_string().as_bytes()).unwrap();
        assert_eq!(code, "InaccessibleImage");
        assert_eq!(message, "image x not found");
    }

    #[test]
    fn innermost_error_without_details() {
        let body =
            br#"{"error": {"code": "ResourceGroupNotFound", "message": "m", "details": []}}"#;
        let (code, _) = innermost_error(body).unwrap();
        assert_eq!(code, "ResourceGroupNotFound");
        assert_eq!(innermost_error(b"<html>bad gateway</html>"), None);
    }

    #[test]
    fn container_state_parses() {
        let view: ContainerInstanceView = serde_json::from_value(json!({
            "restartCount": 0,
            "currentState": {"state": "Terminated", "exitCode": 3, "detailStatus": "Error",
                "startTime": "2026-01-02T03:04:05.123Z", "finishTime": "2026-01-02T03:05:05Z"},
            "events": [{"count": 1, "name": "Started", "type": "Normal", "message": "ok",
                "firstTimestamp": "2026-01-02T03:04:05Z", "lastTimestamp": "2026-01-02T03:04:05Z"}]
        }))
        .unwrap();
        let state = view.current_state.unwrap();
        assert_eq!(state.exit_code, Some(3));
        assert!(state.finish_time.unwrap() > state.start_time.unwrap());
        assert_eq!(view.events[0].kind.as_deref(), Some("Normal"));
    }
}
