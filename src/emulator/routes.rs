//! ARM paths the emulator serves, parsed case-insensitively as ARM does.

/// A parsed ARM path. Names keep the caller's spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArmRoute {
    ResourceGroup {
        subscription: String,
        resource_group: String,
    },
    GroupsInSubscription {
        subscription: String,
    },
    GroupsInResourceGroup {
        subscription: String,
        resource_group: String,
    },
    Group {
        subscription: String,
        resource_group: String,
        name: String,
    },
    GroupAction {
        subscription: String,
        resource_group: String,
        name: String,
        action: String,
    },
    Logs {
        subscription: String,
        resource_group: String,
        name: String,
        container: String,
    },
    OperationResult {
        subscription: String,
        id: String,
    },
}

const PROVIDER: &str = "microsoft.containerinstance";

/// Parses a request path, or returns `None` for a path the emulator does not serve.
pub fn parse(path: &str) -> Option<ArmRoute> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let keyword = |index: usize, expected: &str| {
        segments
            .get(index)
            .is_some_and(|s| s.eq_ignore_ascii_case(expected))
    };
    if !keyword(0, "subscriptions") || segments.len() < 2 {
        return None;
    }
    let subscription = segments[1].to_string();
    if keyword(2, "providers") && keyword(3, PROVIDER) {
        return parse_subscription_provider(subscription, &segments[4..]);
    }
    if !keyword(2, "resourcegroups") || segments.len() < 4 {
        return None;
    }
    let resource_group = segments[3].to_string();
    if segments.len() == 4 {
        return Some(ArmRoute::ResourceGroup {
            subscription,
            resource_group,
        });
    }
    if !(keyword(4, "providers") && keyword(5, PROVIDER) && keyword(6, "containergroups")) {
        return None;
    }
    parse_group_path(subscription, resource_group, &segments[7..])
}

fn parse_subscription_provider(subscription: String, rest: &[&str]) -> Option<ArmRoute> {
    match rest {
        [groups] if groups.eq_ignore_ascii_case("containergroups") => {
            Some(ArmRoute::GroupsInSubscription { subscription })
        }
        [operations, id] if operations.eq_ignore_ascii_case("operationresults") => {
            Some(ArmRoute::OperationResult {
                subscription,
                id: id.to_string(),
            })
        }
        _ => None,
    }
}

fn parse_group_path(
    subscription: String,
    resource_group: String,
    rest: &[&str],
) -> Option<ArmRoute> {
    match rest {
        [] => Some(ArmRoute::GroupsInResourceGroup {
            subscription,
            resource_group,
        }),
        [name] => Some(ArmRoute::Group {
            subscription,
            resource_group,
            name: name.to_string(),
        }),
        [name, action] => Some(ArmRoute::GroupAction {
            subscription,
            resource_group,
            name: name.to_string(),
            action: action.to_lowercase(),
        }),
        [name, containers, container, logs]
            if containers.eq_ignore_ascii_case("containers")
                && logs.eq_ignore_ascii_case("logs") =>
        {
            Some(ArmRoute::Logs {
                subscription,
                resource_group,
                name: name.to_string(),
                container: container.to_string(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_group_keyword_is_case_insensitive() {
        let route = parse("/subscriptions/s/resourcegroups/RG").unwrap();
        let expected = ArmRoute::ResourceGroup {
            subscription: "s".into(),
            resource_group: "RG".into(),
        };
        assert_eq!(route, expected);
    }

    #[test]
    fn logs_path_parses() {
        let path = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/g/containers/c/logs";
        let route = parse(path).unwrap();
        assert!(matches!(route, ArmRoute::Logs { container, .. } if container == "c"));
    }

    #[test]
    fn unknown_path_is_none() {
        assert_eq!(
            parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites"),
            None
        );
    }
}
