//! ARM JSON of the emulator's records: resource groups and container groups.

use serde_json::{Value, json};
use uuid::Uuid;

use super::state::{ContainerGroup, ResourceGroup};

/// Tenant reported for system-assigned identities.
pub const EMULATOR_TENANT_ID: &str = "00000000-0000-0000-0000-0000000ac1e0";
pub const GROUP_TYPE: &str = "Microsoft.ContainerInstance/containerGroups";

pub fn group_id(subscription: &str, resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{GROUP_TYPE}/{name}"
    )
}

pub fn resource_group_json(group: &ResourceGroup) -> Value {
    let mut body = json!({
        "id": format!("/subscriptions/{}/resourceGroups/{}", group.subscription, group.name),
        "name": group.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": group.location,
        "properties": { "provisioningState": "Succeeded" },
    });
    if let Some(tags) = &group.tags {
        body["tags"] = tags.clone();
    }
    body
}

/// Renders a container group. `instance_view` adds the group's and each container's
/// instance view, as GET does; list results and PUT responses go without.
pub fn group_json(group: &ContainerGroup, instance_view: bool) -> Value {
    let mut properties = group.properties.clone();
    properties["provisioningState"] = json!(group.provisioning_state);
    if instance_view {
        add_instance_views(group, &mut properties);
    }
    let mut body = json!({
        "id": group_id(&group.subscription, &group.resource_group, &group.name),
        "name": group.name,
        "type": GROUP_TYPE,
        "location": group.location,
        "properties": properties,
    });
    if let Some(tags) = &group.tags {
        body["tags"] = tags.clone();
    }
    if let Some(identity) = &group.identity {
        body["identity"] = identity.clone();
    }
    body
}

fn add_instance_views(group: &ContainerGroup, properties: &mut Value) {
    properties["instanceView"] = json!({
        "state": group.state.clone().unwrap_or_else(|| "Pending".to_string()),
        "events": group.events,
    });
    let Some(containers) = properties
        .get_mut("containers")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for (container, status) in containers.iter_mut().zip(&group.containers) {
        let mut view = json!({
            "restartCount": status.restart_count,
            "currentState": status.current,
            "events": status.events,
        });
        if let Some(previous) = &status.previous {
            view["previousState"] = json!(previous);
        }
        container["properties"]["instanceView"] = view;
    }
}

/// Fills in the ids ARM assigns to a requested identity: a principal and tenant for a
/// system-assigned one, a principal and client id for each user-assigned one.
pub fn assign_identity_ids(identity: Option<Value>) -> Option<Value> {
    let mut identity = identity?;
    let kind = identity
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("None");
    if kind.contains("SystemAssigned") {
        identity["principalId"] = json!(Uuid::new_v4().to_string());
        identity["tenantId"] = json!(EMULATOR_TENANT_ID);
    }
    let assigned = identity
        .get_mut("userAssignedIdentities")
        .and_then(Value::as_object_mut);
    for value in assigned.into_iter().flat_map(|m| m.values_mut()) {
        *value = json!({
            "principalId": Uuid::new_v4().to_string(),
            "clientId": Uuid::new_v4().to_string(),
        });
    }
    Some(identity)
}
