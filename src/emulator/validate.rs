//! Request validation as ARM and ACI do it, with ARM-shaped 400 errors, and the split of a
//! valid request into what is echoed back and what the container runs.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::errors::ArmError;
use super::state::RunSpec;

const OS_TYPES: [&str; 2] = ["Linux", "Windows"];
const RESTART_POLICIES: [&str; 3] = ["Always", "OnFailure", "Never"];
const IDENTITY_TYPES: [&str; 4] = [
    "SystemAssigned",
    "UserAssigned",
    "SystemAssigned, UserAssigned",
    "None",
];

/// A valid create or update request, split into its parts.
#[derive(Debug, Clone)]
pub struct ValidGroup {
    pub location: String,
    pub tags: Option<Value>,
    pub identity: Option<Value>,
    /// Properties without secrets and read-only fields.
    pub properties: Value,
    pub run: RunSpec,
}

/// Checks a container group name: 1 to 63 lowercase letters, digits and hyphens, no
/// leading, trailing or doubled hyphen.
pub fn check_group_name(name: &str) -> Result<(), ArmError> {
    if is_valid_name(name) {
        return Ok(());
    }
    Err(ArmError::bad_request(
        "InvalidContainerGroupName",
        format!(
            "The container group name '{name}' is invalid. A container group name must be 1 to \
             63 characters of lowercase letters, digits and '-', must not start or end with \
             '-' and must not contain '--'."
        ),
    ))
}

fn is_valid_name(name: &str) -> bool {
    let allowed = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (1..=63).contains(&name.len())
        && allowed
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// Validates a PUT body for group `name` in a resource group at `resource_group_location`.
/// `any_location` accepts a location that differs from the resource group's.
pub fn validate_group(
    name: &str,
    body: &Value,
    resource_group_location: &str,
    any_location: bool,
) -> Result<ValidGroup, ArmError> {
    check_group_name(name)?;
    let Some(root) = body.as_object() else {
        return Err(invalid_content(
            "The request body must be a JSON object.",
            "",
        ));
    };
    let mut errors = Vec::new();
    let location = check_location(root, resource_group_location, any_location, &mut errors);
    let Some(properties) = root.get("properties").and_then(Value::as_object) else {
        errors.push(invalid_content(
            "Required property 'properties' not found in JSON.",
            "",
        ));
        return Err(ArmError::combine(errors).expect("one error pushed"));
    };
    check_group_properties(name, properties, &mut errors);
    check_identity(root.get("identity"), properties, &mut errors);
    if let Some(error) = ArmError::combine(errors) {
        return Err(error);
    }
    let run = run_spec(properties)?;
    Ok(ValidGroup {
        location: location.unwrap_or_default(),
        tags: root.get("tags").cloned(),
        identity: root.get("identity").cloned(),
        properties: sanitized_properties(properties),
        run,
    })
}

fn invalid_content(message: &str, path: &str) -> ArmError {
    ArmError::bad_request(
        "InvalidRequestContent",
        format!(
            "The request content was invalid and could not be deserialized: {message} Path '{path}'."
        ),
    )
}

fn check_location(
    root: &Map<String, Value>,
    resource_group_location: &str,
    any_location: bool,
    errors: &mut Vec<ArmError>,
) -> Option<String> {
    let Some(location) = root.get("location").and_then(Value::as_str) else {
        errors.push(ArmError::bad_request(
            "LocationRequired",
            "The location property is required for this definition.",
        ));
        return None;
    };
    if !any_location && normalize_location(location) != normalize_location(resource_group_location)
    {
        errors.push(ArmError::bad_request(
            "InvalidResourceLocation",
            format!(
                "The location '{location}' does not match the resource group location \
                 '{resource_group_location}'. Use the resource group's location or start the \
                 emulator with --any-location."
            ),
        ));
    }
    Some(location.to_string())
}

/// Lowercases a location and drops spaces, so "West Europe" equals "westeurope".
pub fn normalize_location(location: &str) -> String {
    location.to_lowercase().replace(' ', "")
}

fn check_group_properties(name: &str, properties: &Map<String, Value>, errors: &mut Vec<ArmError>) {
    let os_type = properties.get("osType").and_then(Value::as_str);
    if !os_type.is_some_and(|os| OS_TYPES.contains(&os)) {
        errors.push(ArmError::bad_request(
            "InvalidOsType",
            format!("The 'osType' for container group '{name}' is invalid. The value must be one of 'Windows,Linux'."),
        ));
    }
    if let Some(policy) = properties.get("restartPolicy")
        && !policy
            .as_str()
            .is_some_and(|p| RESTART_POLICIES.contains(&p))
    {
        errors.push(ArmError::bad_request(
            "InvalidRestartPolicy",
            format!("The restart policy {policy} of container group '{name}' is invalid. The value must be one of 'Always,OnFailure,Never'."),
        ));
    }
    let containers = match properties.get("containers").and_then(Value::as_array) {
        Some(containers) if !containers.is_empty() => containers,
        Some(_) => {
            errors.push(ArmError::bad_request(
                "NoContainersInContainerGroup",
                format!("The container group '{name}' must contain at least one container."),
            ));
            return;
        }
        None => {
            errors.push(invalid_content(
                "Required property 'containers' not found in JSON.",
                "properties",
            ));
            return;
        }
    };
    let mut names = HashSet::new();
    for (index, container) in containers.iter().enumerate() {
        check_container(name, index, container, &mut names, errors);
    }
}

fn check_container(
    group: &str,
    index: usize,
    container: &Value,
    names: &mut HashSet<String>,
    errors: &mut Vec<ArmError>,
) {
    let path = format!("properties.containers[{index}]");
    let Some(container_name) = container.get("name").and_then(Value::as_str) else {
        errors.push(invalid_content(
            "Required property 'name' not found in JSON.",
            &path,
        ));
        return;
    };
    if !is_valid_name(container_name) {
        errors.push(ArmError::bad_request(
            "InvalidContainerName",
            format!("The container name '{container_name}' in container group '{group}' is invalid. A container name must be 1 to 63 characters of lowercase letters, digits and '-', and must not start or end with '-'."),
        ));
    }
    if !names.insert(container_name.to_string()) {
        errors.push(ArmError::bad_request(
            "DuplicateContainerName",
            format!("The container name '{container_name}' appears more than once in container group '{group}'."),
        ));
    }
    let Some(properties) = container.get("properties").and_then(Value::as_object) else {
        errors.push(invalid_content(
            "Required property 'properties' not found in JSON.",
            &path,
        ));
        return;
    };
    let image = properties.get("image").and_then(Value::as_str);
    if image.is_none_or(str::is_empty) {
        errors.push(invalid_content(
            "Required property 'image' not found in JSON.",
            &format!("{path}.properties"),
        ));
    }
    if let Some(command) = properties.get("command") {
        let strings = command
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string));
        if !strings {
            errors.push(invalid_content(
                "The property 'command' must be an array of strings.",
                &format!("{path}.properties.command"),
            ));
        }
    }
    super::validate_resources::check_resources(
        group,
        container_name,
        properties.get("resources"),
        errors,
    );
    check_environment(
        group,
        container_name,
        properties.get("environmentVariables"),
        errors,
    );
}

fn check_environment(
    group: &str,
    container: &str,
    variables: Option<&Value>,
    errors: &mut Vec<ArmError>,
) {
    let Some(variables) = variables.and_then(Value::as_array) else {
        return;
    };
    let mut seen = HashSet::new();
    for variable in variables {
        let Some(name) = variable.get("name").and_then(Value::as_str) else {
            errors.push(invalid_content(
                "Required property 'name' not found in JSON.",
                "properties.containers.properties.environmentVariables",
            ));
            continue;
        };
        if !seen.insert(name.to_string()) {
            errors.push(ArmError::bad_request(
                "DuplicateEnvironmentVariable",
                format!("The environment variable name '{name}' appears more than once in container '{container}' of container group '{group}'."),
            ));
        }
        let sources = ["value", "secureValue", "secureValueReference"]
            .iter()
            .filter(|key| variable.get(**key).is_some_and(|v| !v.is_null()))
            .count();
        if sources != 1 {
            errors.push(ArmError::bad_request(
                "InvalidEnvironmentVariable",
                format!("The environment variable '{name}' in container '{container}' of container group '{group}' must set exactly one of 'value' and 'secureValue'."),
            ));
        }
    }
}

fn check_identity(
    identity: Option<&Value>,
    properties: &Map<String, Value>,
    errors: &mut Vec<ArmError>,
) {
    if let Some(kind) = identity.and_then(|i| i.get("type"))
        && !kind.as_str().is_some_and(|k| IDENTITY_TYPES.contains(&k))
    {
        errors.push(ArmError::bad_request(
            "InvalidIdentityType",
            format!("The identity type {kind} is invalid. The value must be one of 'SystemAssigned', 'UserAssigned', 'SystemAssigned, UserAssigned', 'None'."),
        ));
    }
    let attached: HashSet<String> = identity
        .and_then(|i| i.get("userAssignedIdentities"))
        .and_then(Value::as_object)
        .map(|m| m.keys().map(|k| k.to_lowercase()).collect())
        .unwrap_or_default();
    let credentials = properties
        .get("imageRegistryCredentials")
        .and_then(Value::as_array);
    for credential in credentials.into_iter().flatten() {
        let server = credential
            .get("server")
            .and_then(Value::as_str)
            .unwrap_or("");
        if server.is_empty() {
            errors.push(invalid_content(
                "Required property 'server' not found in JSON.",
                "properties.imageRegistryCredentials",
            ));
        }
        let Some(reference) = credential.get("identity").and_then(Value::as_str) else {
            continue;
        };
        if !attached.contains(&reference.to_lowercase()) {
            errors.push(ArmError::bad_request(
                "InvalidImageRegistryCredentialIdentity",
                format!("The identity '{reference}' of the image registry credential for server '{server}' is not attached to the container group. Add it to identity.userAssignedIdentities."),
            ));
        }
    }
}

/// Copies the properties without secret values and without fields only the server sets.
fn sanitized_properties(properties: &Map<String, Value>) -> Value {
    let mut clean = properties.clone();
    clean.remove("provisioningState");
    clean.remove("instanceView");
    if let Some(containers) = clean.get_mut("containers").and_then(Value::as_array_mut) {
        for container in containers {
            let Some(props) = container
                .get_mut("properties")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            props.remove("instanceView");
            let variables = props
                .get_mut("environmentVariables")
                .and_then(Value::as_array_mut);
            for variable in variables.into_iter().flatten() {
                if let Some(variable) = variable.as_object_mut() {
                    variable.remove("secureValue");
                }
            }
        }
    }
    let credentials = clean
        .get_mut("imageRegistryCredentials")
        .and_then(Value::as_array_mut);
    for credential in credentials.into_iter().flatten() {
        if let Some(credential) = credential.as_object_mut() {
            credential.remove("password");
        }
    }
    Value::Object(clean)
}

/// Reads what the first container runs. Call only on validated properties.
fn run_spec(properties: &Map<String, Value>) -> Result<RunSpec, ArmError> {
    let first = &properties["containers"][0];
    let props = &first["properties"];
    let command = props
        .get("command")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut environment = Vec::new();
    for variable in props
        .get("environmentVariables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = variable["name"].as_str().unwrap_or_default().to_string();
        let value = variable
            .get("value")
            .or_else(|| variable.get("secureValue"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        environment.push((name, value));
    }
    Ok(RunSpec {
        container: first["name"].as_str().unwrap_or_default().to_string(),
        image: props["image"].as_str().unwrap_or_default().to_string(),
        command,
        environment,
        restart_policy: properties
            .get("restartPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Always")
            .to_string(),
        simulated: false,
    })
}
