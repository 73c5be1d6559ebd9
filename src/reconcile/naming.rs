//! Container group names, our tag keys, and the `infrastructure_pid` format.

use std::collections::BTreeMap;

use uuid::Uuid;

/// Maximum length of the flow-name part of a group name. With a hyphen and the 36-character
/// flow run id the name is at most 56 characters, so `prefect-<name>` also fits ARM's
/// 64-character deployment-name limit, and names match the ones the Python worker uses.
pub const MAX_SLUG_LEN: usize = 19;

/// Maximum length of a container group name under ACI's naming rules.
pub const MAX_GROUP_NAME_LEN: usize = 63;

/// Tag holding the flow run id.
pub const TAG_FLOW_RUN_ID: &str = "prefect-flow-run-id";
/// Tag holding the deployment id.
pub const TAG_DEPLOYMENT_ID: &str = "prefect-deployment-id";
/// Tag holding the work pool name.
pub const TAG_WORK_POOL: &str = "prefect-work-pool";
/// Tag holding the name of the worker that created the group.
pub const TAG_WORKER_NAME: &str = "prefect-worker-name";
/// Tag set to `true` when the run's job sets `keep_container_group`.
pub const TAG_KEEP_CONTAINER_GROUP: &str = "prefect-keep-container-group";

/// Errors from names and `infrastructure_pid` values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NamingError {
    /// The value does not have the `<flow run id>:<container group name>` form.
    #[error(
        "invalid infrastructure_pid {value:?}: expected `<flow run id>:<container group name>` \
         with exactly one colon"
    )]
    PidShape { value: String },
    /// The first part of the value is not a UUID.
    #[error("invalid infrastructure_pid {value:?}: {id:?} is not a flow run id (a UUID)")]
    PidFlowRunId {
        value: String,
        id: String,
        #[source]
        source: uuid::Error,
    },
    /// The name breaks ACI's container group naming rules.
    #[error(
        "invalid container group name {name:?}: {rule}; use 1-63 lowercase letters, digits \
         and single hyphens, not starting or ending with a hyphen"
    )]
    GroupName { name: String, rule: &'static str },
}

/// Builds the container group name for a flow run: a slug of the flow name, a hyphen and the
/// flow run id, or the id alone when the slug is empty. The same inputs give the same name,
/// so every attempt at one run targets one group.
pub fn container_group_name(flow_name: &str, flow_run_id: Uuid) -> String {
    let id = flow_run_id.hyphenated().to_string();
    let slug = slugify(flow_name, MAX_SLUG_LEN);
    if slug.is_empty() {
        id
    } else {
        format!("{slug}-{id}")
    }
}

/// Lowercases, transliterates unicode to ASCII, joins runs of other characters into one
/// hyphen, truncates to `max_len` and trims hyphens from both ends.
fn slugify(text: &str, max_len: usize) -> String {
    let ascii = deunicode::deunicode(text).to_ascii_lowercase();
    let mut slug = String::with_capacity(ascii.len());
    for ch in ascii.chars() {
        if ch.is_ascii_alphanumeric() {
            slug.push(ch);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(max_len);
    slug.trim_matches('-').to_string()
}

/// Checks a container group name against ACI's rules.
pub fn validate_group_name(name: &str) -> Result<(), NamingError> {
    let rule = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_GROUP_NAME_LEN {
        Some("it is longer than 63 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("it contains a character other than a lowercase letter, digit or hyphen")
    } else if name.starts_with('-') || name.ends_with('-') {
        Some("it starts or ends with a hyphen")
    } else if name.contains("--") {
        Some("it contains two hyphens in a row")
    } else {
        None
    };
    match rule {
        Some(rule) => Err(NamingError::GroupName {
            name: name.to_string(),
            rule,
        }),
        None => Ok(()),
    }
}

/// The parts of an `infrastructure_pid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfrastructurePid {
    pub flow_run_id: Uuid,
    pub group_name: String,
}

/// Formats the `infrastructure_pid` the worker sets on a run: `<flow run id>:<group name>`,
/// the form the Python worker uses.
pub fn format_infrastructure_pid(flow_run_id: Uuid, group_name: &str) -> String {
    format!("{}:{group_name}", flow_run_id.hyphenated())
}

/// Parses `<flow run id>:<container group name>`. Exactly two non-empty parts are required.
pub fn parse_infrastructure_pid(value: &str) -> Result<InfrastructurePid, NamingError> {
    let shape_error = || NamingError::PidShape {
        value: value.to_string(),
    };
    let mut parts = value.split(':');
    let (Some(id), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(shape_error());
    };
    if id.is_empty() || name.is_empty() {
        return Err(shape_error());
    }
    let flow_run_id = Uuid::parse_str(id).map_err(|source| NamingError::PidFlowRunId {
        value: value.to_string(),
        id: id.to_string(),
        source,
    })?;
    Ok(InfrastructurePid {
        flow_run_id,
        group_name: name.to_string(),
    })
}

/// Builds the tags the worker puts on a group it creates.
pub fn group_tags(
    flow_run_id: Uuid,
    deployment_id: Option<Uuid>,
    work_pool: &str,
    worker_name: &str,
    keep_container_group: bool,
) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    tags.insert(TAG_FLOW_RUN_ID.to_string(), flow_run_id.to_string());
    if let Some(deployment_id) = deployment_id {
        tags.insert(TAG_DEPLOYMENT_ID.to_string(), deployment_id.to_string());
    }
    tags.insert(TAG_WORK_POOL.to_string(), work_pool.to_string());
    tags.insert(TAG_WORKER_NAME.to_string(), worker_name.to_string());
    if keep_container_group {
        tags.insert(TAG_KEEP_CONTAINER_GROUP.to_string(), "true".to_string());
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "c961333e-ad5b-435a-adb3-987028f85cbf";

    fn id() -> Uuid {
        Uuid::parse_str(ID).unwrap()
    }

    #[test]
    fn name_slugs_flow_name() {
        let name = container_group_name("My Fancy_Flow!! name that is long", id());
        assert_eq!(name, format!("my-fancy-flow-name-{ID}"));
    }

    #[test]
    fn name_transliterates_unicode() {
        assert_eq!(
            container_group_name("Über-Flow", id()),
            format!("uber-flow-{ID}")
        );
    }

    #[test]
    fn name_uses_id_alone_for_empty_slug() {
        assert_eq!(container_group_name("___", id()), ID);
        assert_eq!(container_group_name("", id()), ID);
        assert_eq!(container_group_name(" *** ", id()), ID);
    }

    #[test]
    fn name_trims_hyphen_left_by_truncation() {
        // The 19th character would be a hyphen.
        let name = container_group_name("abcdefghijklmnopqr stuv", id());
        assert_eq!(name, format!("abcdefghijklmnopqr-{ID}"));
    }

    #[test]
    fn name_is_stable_per_run() {
        let first = container_group_name("etl", id());
        let second = container_group_name("etl", id());
        assert_eq!(first, second);
    }

    #[test]
    fn names_pass_aci_rules() {
        let flows = [
            "etl",
            "---a---b---",
            "日本語フロー",
            "x".repeat(200).as_str(),
            "Ünïcödé ☃ snow",
            "a-",
            "-",
            "A1 B2",
            "tab\tand\nnewline",
        ]
        .map(str::to_string);
        for flow in flows {
            let name = container_group_name(&flow, id());
            assert_eq!(validate_group_name(&name), Ok(()), "flow name {flow:?}");
        }
    }

    #[test]
    fn validate_rejects_bad_names() {
        for bad in ["", "-a", "a-", "a--b", "A", "a_b", &"a".repeat(64)] {
            assert!(validate_group_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pid_round_trips() {
        let pid = format_infrastructure_pid(id(), "etl-x");
        let parsed = parse_infrastructure_pid(&pid).unwrap();
        assert_eq!(parsed.flow_run_id, id());
        assert_eq!(parsed.group_name, "etl-x");
    }

    #[test]
    fn pid_rejects_wrong_shapes() {
        for bad in ["", ID, &format!("{ID}:"), &format!("{ID}:a:b"), ":name"] {
            let error = parse_infrastructure_pid(bad).unwrap_err();
            assert!(matches!(error, NamingError::PidShape { .. }), "{bad:?}");
        }
    }

    #[test]
    fn pid_rejects_bad_uuid() {
        let error = parse_infrastructure_pid("not-a-uuid:group").unwrap_err();
        assert!(matches!(error, NamingError::PidFlowRunId { .. }));
        assert!(error.to_string().contains("not-a-uuid"));
    }

    #[test]
    fn tags_carry_keep_only_when_set() {
        let kept = group_tags(id(), None, "pool", "w", true);
        let plain = group_tags(id(), None, "pool", "w", false);
        assert_eq!(
            kept.get(TAG_KEEP_CONTAINER_GROUP).map(String::as_str),
            Some("true")
        );
        assert!(!plain.contains_key(TAG_KEEP_CONTAINER_GROUP));
    }
}
