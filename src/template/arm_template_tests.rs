use serde_json::{Map, Value, json};

use super::*;
use crate::template::render::apply_values;

const PYTHON_TEMPLATE: &str =
    include_str!("../../tests/fixtures/python-worker-base-job-template.json");

fn ctx() -> ArmContext<'static> {
    ArmContext {
        group_name: "etl-1234",
        location: "westeurope",
        container_name: "flow",
        resource_group_name: "rg",
        subscription_id: "sub",
    }
}

/// Renders the Python worker's `arm_template` with image, command, cpu and memory.
fn python_arm_template() -> Value {
    let template: Value = serde_json::from_str(PYTHON_TEMPLATE).unwrap();
    let values: Map<String, Value> = json!({"image": "img:1", "cpu": 2, "memory": 3.5})
        .as_object()
        .unwrap()
        .clone();
    apply_values(
        &template["job_configuration"]["arm_template"],
        &values,
        &|_| None,
    )
    .unwrap()
}

fn template_with(resource_properties: Value) -> Value {
    json!({
        "parameters": {"p": {"type": "string", "defaultValue": "from-default"}},
        "resources": [{
            "type": "Microsoft.ContainerInstance/containerGroups",
            "name": "[parameters('container_group_name')]",
            "properties": resource_properties,
        }]
    })
}

fn resolve_one(expression: &str) -> Result<Value, TemplateError> {
    let body = container_group_body(&template_with(json!({"x": expression})), &ctx())?;
    Ok(body["properties"]["x"].clone())
}

#[test]
fn python_template_converts() {
    let body = container_group_body(&python_arm_template(), &ctx()).unwrap();
    assert_eq!(body["location"], "westeurope");
    assert!(body.get("name").is_none(), "the name belongs in the URL");
    assert!(body.get("type").is_none());
    let container = &body["properties"]["containers"][0];
    assert_eq!(container["name"], "flow");
    assert_eq!(container["properties"]["image"], "img:1");
    assert_eq!(container["properties"]["resources"]["requests"]["cpu"], 2);
    assert_eq!(
        container["properties"]["resources"]["requests"]["memoryInGB"],
        3.5
    );
    assert_eq!(body["properties"]["osType"], "Linux");
    assert_eq!(body["properties"]["restartPolicy"], "Never");
}

#[test]
fn parameter_defaults_resolve() {
    assert_eq!(resolve_one("[parameters('p')]").unwrap(), "from-default");
    assert_eq!(
        resolve_one("[parameters('container_group_name')]").unwrap(),
        "etl-1234"
    );
    assert_eq!(
        resolve_one("[resourceGroup().location]").unwrap(),
        "westeurope"
    );
}

#[test]
fn escaped_bracket_is_literal() {
    assert_eq!(
        resolve_one("[[not an expression]").unwrap(),
        "[not an expression]"
    );
    assert_eq!(
        resolve_one("[no closing bracket").unwrap(),
        "[no closing bracket"
    );
}

#[test]
fn unique_string_is_deterministic() {
    let first = resolve_one("[uniqueString(resourceGroup().id)]").unwrap();
    let again = resolve_one("[uniqueString(resourceGroup().id)]").unwrap();
    let other = resolve_one("[uniqueString(resourceGroup().id, 'x')]").unwrap();
    assert_eq!(first, again);
    assert_ne!(first, other);
    let text = first.as_str().unwrap();
    assert_eq!(text.len(), 13);
    assert!(
        text.chars()
            .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c))
    );
    assert_eq!(
        unique_string(&["/subscriptions/sub/resourceGroups/rg".into()]),
        text
    );
}

#[test]
fn other_expressions_rejected() {
    for expression in [
        "[concat('a', 'b')]",
        "[parameters('undeclared')]",
        "[parameters(]",
        "[resourceGroup().tags]",
        "[resourceGroup()]",
    ] {
        let error = resolve_one(expression).unwrap_err();
        assert!(
            matches!(&error, TemplateError::UnsupportedArmExpression(quoted) if quoted == expression),
            "{expression}: {error}"
        );
        assert!(error.to_string().contains(expression));
    }
}

#[test]
fn unknown_resource_key_rejected() {
    let mut template = template_with(json!({}));
    template["resources"][0]["dependsOn"] = json!(["x"]);
    let error = container_group_body(&template, &ctx()).unwrap_err();
    assert!(error.to_string().contains("`dependsOn`"), "{error}");
}

#[test]
fn missing_container_group_rejected() {
    let template = json!({"resources": [{"type": "Microsoft.Storage/storageAccounts"}]});
    let error = container_group_body(&template, &ctx()).unwrap_err();
    assert!(error.to_string().contains("no resource of type"), "{error}");
    let error = container_group_body(&json!({}), &ctx()).unwrap_err();
    assert!(error.to_string().contains("`resources`"), "{error}");
}
