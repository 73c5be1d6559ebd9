//! A strict validator for the Swagger 2.0 subset that the ACI OpenAPI spec uses.
//!
//! It checks `type`, `required`, `enum`, `properties`, `additionalProperties`, `items`,
//! `allOf` and `$ref` to `#/definitions/...`, rejects properties a schema does not define
//! and `readOnly` properties (the server sets those). `$ref`s into other files (ARM's
//! common types) accept any object and define no properties, so a body may not rely on
//! them. `format` and `x-ms-*` extensions do not change the wire format and are ignored.

use std::path::PathBuf;

use serde_json::{Map, Value};

/// Default location of the spec: beside the checkout, not in it.
const DEFAULT_SPEC_PATH: &str = "../shared/specs/containerInstance.json";
/// Environment variable that overrides the spec location.
pub const SPEC_FILE_ENV: &str = "PREFECT_ACI_SPEC_FILE";

/// The `definitions` of a loaded OpenAPI document.
pub struct Spec {
    definitions: Map<String, Value>,
}

/// Returns the path the spec is read from.
pub fn spec_path() -> PathBuf {
    match std::env::var_os(SPEC_FILE_ENV) {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_SPEC_PATH),
    }
}

impl Spec {
    /// Reads the spec, or returns why it could not.
    pub fn load() -> Result<Spec, String> {
        let path = spec_path();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read the ACI spec at {}: {e}", path.display()))?;
        let document: Value = serde_json::from_str(&text)
            .map_err(|e| format!("the ACI spec at {} is not JSON: {e}", path.display()))?;
        let definitions = document["definitions"]
            .as_object()
            .cloned()
            .ok_or_else(|| format!("the ACI spec at {} has no definitions", path.display()))?;
        Ok(Spec { definitions })
    }

    /// Validates `value` against `#/definitions/{definition}`; returns one message per
    /// violation, each with the JSON path.
    pub fn validate(&self, definition: &str, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        let schema = Value::String(format!("#/definitions/{definition}"));
        let schema = serde_json::json!({ "$ref": schema });
        self.check(&schema, value, "$", &mut errors);
        errors
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> Option<&'a Value> {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
            return Some(schema);
        };
        let name = reference.strip_prefix("#/definitions/")?;
        let target = self.definitions.get(name).unwrap_or_else(|| {
            panic!("the spec refers to #/definitions/{name}, which it does not define")
        });
        self.resolve(target)
    }

    fn check(&self, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
        let Some(schema) = self.resolve(schema) else {
            if !value.is_object() {
                errors.push(format!("{path}: expected an object (external reference)"));
            }
            return;
        };
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            errors.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
        if let Some(kind) = schema.get("type").and_then(Value::as_str)
            && !type_matches(kind, value)
        {
            errors.push(format!("{path}: expected {kind}, got {value}"));
            return;
        }
        match value {
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{path}[{i}]"), errors);
                    }
                }
            }
            Value::Object(map) if is_object_schema(schema) => {
                self.check_object(schema, map, path, errors)
            }
            _ => {}
        }
    }

    /// Collects properties, required names and `additionalProperties` over `allOf`.
    fn object_shape<'a>(&'a self, schema: &'a Value, shape: &mut Shape<'a>) {
        let Some(schema) = self.resolve(schema) else {
            shape.has_members = true;
            return;
        };
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            shape.has_members = true;
            shape
                .properties
                .extend(properties.iter().map(|(k, v)| (k.as_str(), v)));
        }
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            shape
                .required
                .extend(required.iter().filter_map(Value::as_str));
        }
        if let Some(additional) = schema.get("additionalProperties") {
            shape.additional = Some(additional);
        }
        for member in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.object_shape(member, shape);
        }
    }

    fn check_object(
        &self,
        schema: &Value,
        map: &Map<String, Value>,
        path: &str,
        errors: &mut Vec<String>,
    ) {
        let mut shape = Shape::default();
        self.object_shape(schema, &mut shape);
        for name in &shape.required {
            if !map.contains_key(*name) {
                errors.push(format!("{path}: required property `{name}` is missing"));
            }
        }
        for (key, item) in map {
            let item_path = format!("{path}.{key}");
            match shape.properties.iter().find(|(name, _)| name == key) {
                Some((_, property)) => {
                    if property.get("readOnly") == Some(&Value::Bool(true)) {
                        errors.push(format!("{item_path}: read-only property must not be sent"));
                    }
                    self.check(property, item, &item_path, errors);
                }
                None => match shape.additional {
                    Some(Value::Bool(true)) => {}
                    Some(additional @ Value::Object(_)) => {
                        self.check(additional, item, &item_path, errors)
                    }
                    _ if shape.has_members => {
                        errors.push(format!("{item_path}: property not defined by the spec"))
                    }
                    _ => {}
                },
            }
        }
    }
}

#[derive(Default)]
struct Shape<'a> {
    properties: Vec<(&'a str, &'a Value)>,
    required: Vec<&'a str>,
    additional: Option<&'a Value>,
    /// True when the schema defines properties, so undefined keys are rejected.
    has_members: bool,
}

fn is_object_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object")
        || schema.get("properties").is_some()
        || schema.get("allOf").is_some()
        || schema.get("additionalProperties").is_some()
}

fn type_matches(kind: &str, value: &Value) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        other => panic!("the validator does not know the Swagger type `{other}`"),
    }
}
