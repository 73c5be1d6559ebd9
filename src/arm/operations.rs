//! Every ARM operation the client can send, with its method, path and the Azure RBAC action
//! it needs, so the deployment's role definition can be checked against it.

use super::limiter::RequestClass;

/// An ARM operation of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArmOperation {
    CreateOrUpdate,
    Get,
    List,
    Delete,
    Stop,
    ContainerLogs,
    GetResourceGroup,
}

/// Path prefix of container group operations, below the ARM endpoint.
const GROUPS: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerInstance/containerGroups";

impl ArmOperation {
    /// Every operation, in a fixed order.
    pub const ALL: [ArmOperation; 7] = [
        Self::CreateOrUpdate,
        Self::Get,
        Self::List,
        Self::Delete,
        Self::Stop,
        Self::ContainerLogs,
        Self::GetResourceGroup,
    ];

    /// The HTTP method.
    pub fn method(self) -> reqwest::Method {
        match self {
            Self::CreateOrUpdate => reqwest::Method::PUT,
            Self::Get | Self::List | Self::ContainerLogs | Self::GetResourceGroup => {
                reqwest::Method::GET
            }
            Self::Delete => reqwest::Method::DELETE,
            Self::Stop => reqwest::Method::POST,
        }
    }

    /// Returns the path below the ARM endpoint, with `{placeholders}` as the ARM spec names them.
    /// The query (`api-version` and the operation's options) is not part of it.
    pub fn path_template(self) -> String {
        match self {
            Self::CreateOrUpdate | Self::Get | Self::Delete => {
                format!("{GROUPS}/{{containerGroupName}}")
            }
            Self::List => GROUPS.to_owned(),
            Self::Stop => format!("{GROUPS}/{{containerGroupName}}/stop"),
            Self::ContainerLogs => {
                format!("{GROUPS}/{{containerGroupName}}/containers/{{containerName}}/logs")
            }
            Self::GetResourceGroup => {
                "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}".to_owned()
            }
        }
    }

    /// The Azure RBAC action a role must grant for this operation.
    pub fn rbac_action(self) -> &'static str {
        match self {
            Self::CreateOrUpdate => "Microsoft.ContainerInstance/containerGroups/write",
            Self::Get | Self::List => "Microsoft.ContainerInstance/containerGroups/read",
            Self::Delete => "Microsoft.ContainerInstance/containerGroups/delete",
            Self::Stop => "Microsoft.ContainerInstance/containerGroups/stop/action",
            Self::ContainerLogs => {
                "Microsoft.ContainerInstance/containerGroups/containers/logs/read"
            }
            Self::GetResourceGroup => "Microsoft.Resources/subscriptions/resourceGroups/read",
        }
    }

    /// Returns a bounded label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::CreateOrUpdate => "create_or_update",
            Self::Get => "get",
            Self::List => "list",
            Self::Delete => "delete",
            Self::Stop => "stop",
            Self::ContainerLogs => "container_logs",
            Self::GetResourceGroup => "get_resource_group",
        }
    }

    /// Returns the limiter buckets this operation draws from.
    pub fn request_class(self) -> RequestClass {
        match self {
            Self::CreateOrUpdate => RequestClass::Create,
            Self::Delete => RequestClass::Delete,
            Self::Stop => RequestClass::Write,
            Self::Get | Self::List | Self::ContainerLogs | Self::GetResourceGroup => {
                RequestClass::Read
            }
        }
    }
}

/// The distinct RBAC actions of all operations, sorted: what a custom role for the worker
/// must list.
pub fn required_rbac_actions() -> Vec<&'static str> {
    let mut actions: Vec<_> = ArmOperation::ALL
        .iter()
        .map(|op| op.rbac_action())
        .collect();
    actions.sort_unstable();
    actions.dedup();
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_match_method() {
        for op in ArmOperation::ALL {
            let action = op.rbac_action();
            match op.method() {
                reqwest::Method::GET => assert!(action.ends_with("/read"), "{op:?}"),
                reqwest::Method::POST => assert!(action.ends_with("/action"), "{op:?}"),
                reqwest::Method::PUT => assert!(action.ends_with("/write"), "{op:?}"),
                reqwest::Method::DELETE => assert!(action.ends_with("/delete"), "{op:?}"),
                other => panic!("unexpected method {other}"),
            }
        }
        assert_eq!(required_rbac_actions().len(), 6);
    }
}
