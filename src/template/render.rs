//! Rendering a base job template with job variables, step for step as Prefect 3.9.1's
//! `BaseJobConfiguration.resolve_for_flow_run` and `from_template_and_values` do.

use serde_json::{Map, Value};

use crate::template::error::TemplateError;
use crate::template::lookup::TemplateLookup;
use crate::template::placeholder::{self, Kind};
use crate::template::pyrepr::python_str;
use crate::template::resolve;
use crate::template::secrets::SecretValues;

/// A JSON object, as job configurations and job variables are.
type Object = Map<String, Value>;

/// A rendered job configuration and the secrets that went into it. Debug output lists only
/// the top-level keys, because values may contain secrets.
#[derive(Clone)]
pub struct RenderedConfiguration {
    /// The `job_configuration` object with every placeholder resolved.
    pub configuration: Value,
    /// Secret values from blocks that the configuration now contains.
    pub secrets: SecretValues,
}

impl std::fmt::Debug for RenderedConfiguration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&String> = self
            .configuration
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .collect();
        f.debug_struct("RenderedConfiguration")
            .field("keys", &keys)
            .field("secrets", &self.secrets)
            .finish()
    }
}

fn invalid(variable: &str, value: &Value, expected: &str) -> TemplateError {
    TemplateError::InvalidVariable {
        variable: variable.to_string(),
        value: type_name(value).to_string(),
        expected: expected.to_string(),
    }
}

/// Names the JSON type of a value, for error messages that must not echo the value.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Merges deployment and flow-run job variables: flow-run keys replace deployment keys,
/// except `env`, whose entries are merged when the deployment's `env` is an object.
pub fn merge_job_variables(
    deployment: Option<&Map<String, Value>>,
    flow_run: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, TemplateError> {
    let mut merged = deployment.cloned().unwrap_or_default();
    let mut flow_run = flow_run.cloned().unwrap_or_default();
    if let Some(Value::Object(env)) = merged.get_mut("env") {
        match flow_run.shift_remove("env") {
            None => {}
            Some(Value::Object(run_env)) => env.extend(run_env),
            Some(other) => return Err(invalid("env", &other, "an object of strings")),
        }
    }
    merged.extend(flow_run);
    Ok(merged)
}

/// Renders `base_job_template` with merged job `values`, then resolves block and variable
/// references through `lookup`. `env_var` returns the worker's environment variable for
/// `{{ $NAME }}` placeholders; pass a closure so callers choose what the template may read.
pub async fn render_job_configuration<L: TemplateLookup>(
    base_job_template: &Value,
    values: &Map<String, Value>,
    lookup: &L,
    env_var: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<RenderedConfiguration, TemplateError> {
    let (job_configuration, properties) = split_template(base_job_template)?;
    check_declared(&job_configuration, properties)?;
    let (base_config, variables) = prepare(job_configuration, properties, values)?;
    let applied = apply_values(&Value::Object(base_config), &variables, env_var)
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut secrets = SecretValues::default();
    let with_blocks = resolve::resolve_blocks(applied, lookup, &mut secrets).await?;
    let configuration = resolve::resolve_variables(with_blocks, lookup).await?;
    Ok(RenderedConfiguration {
        configuration,
        secrets,
    })
}

fn split_template(template: &Value) -> Result<(Object, &Object), TemplateError> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    let Some(job_configuration) = template.get("job_configuration").and_then(Value::as_object)
    else {
        let message = "`job_configuration` is missing or not an object".to_string();
        return Err(TemplateError::InvalidBaseTemplate(message));
    };
    let properties = template
        .get("variables")
        .and_then(|v| v.get("properties"))
        .and_then(Value::as_object)
        .unwrap_or(&EMPTY);
    Ok((job_configuration.clone(), properties))
}

/// Rejects a standard placeholder in `job_configuration` whose first key is not a declared
/// variable. Prefect would silently drop the key instead, which hides typos.
fn check_declared(
    value: &Map<String, Value>,
    properties: &Map<String, Value>,
) -> Result<(), TemplateError> {
    let mut strings = Vec::new();
    collect_strings(&Value::Object(value.clone()), &mut strings);
    for text in strings {
        for p in placeholder::find(text.as_str()) {
            let variable = placeholder::split_path(&p.name).swap_remove(0);
            if p.kind == Kind::Standard && !properties.contains_key(&variable) {
                return Err(TemplateError::UndeclaredPlaceholder {
                    placeholder: p.full_match,
                    variable,
                });
            }
        }
    }
    Ok(())
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Builds the base configuration and the variables map: schema defaults (null defaults
/// left out), env defaults, dotted keys, then the job values on top.
fn prepare(
    mut base_config: Map<String, Value>,
    properties: &Map<String, Value>,
    values: &Map<String, Value>,
) -> Result<(Object, Object), TemplateError> {
    let mut variables: Map<String, Value> = properties
        .iter()
        .filter_map(|(name, schema)| match schema.get("default") {
            None | Some(Value::Null) => None,
            Some(default) => Some((name.clone(), default.clone())),
        })
        .collect();
    if let Some(env_defaults) = variables.get("env").filter(|v| is_truthy(v)) {
        let merged = merge_env(base_config.get("env"), env_defaults)?;
        base_config.insert("env".into(), merged);
    }
    variables.extend(expand_dotted_keys(values)?);
    if let (Some(Value::Object(_)), Some(env)) = (base_config.get("env"), variables.get("env"))
        && is_truthy(env)
    {
        let merged = merge_env(base_config.get("env"), env)?;
        base_config.insert("env".into(), merged);
    }
    Ok((base_config, variables))
}

/// Returns `base | overlay` when `base` is an object, else `overlay` itself.
fn merge_env(base: Option<&Value>, overlay: &Value) -> Result<Value, TemplateError> {
    let Some(Value::Object(base)) = base else {
        return Ok(overlay.clone());
    };
    let Value::Object(overlay) = overlay else {
        return Err(invalid("env", overlay, "an object of strings"));
    };
    let mut merged = base.clone();
    merged.extend(overlay.clone());
    Ok(Value::Object(merged))
}

/// Python truthiness of a JSON value.
fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Expands keys such as `env.FOO` into nested objects, then merges plain keys on top so
/// the nested form wins.
fn expand_dotted_keys(values: &Map<String, Value>) -> Result<Map<String, Value>, TemplateError> {
    let mut expanded = Map::new();
    for (key, value) in values.iter().filter(|(key, _)| key.contains('.')) {
        placeholder::set_path(&mut expanded, key, value.clone()).map_err(|reason| {
            TemplateError::InvalidVariable {
                variable: key.clone(),
                value: type_name(value).to_string(),
                expected: format!("a path whose parents are objects ({reason})"),
            }
        })?;
    }
    for (key, value) in values.iter().filter(|(key, _)| !key.contains('.')) {
        let merged = match (expanded.get(key), value) {
            (Some(Value::Object(dotted)), Value::Object(plain)) => {
                Value::Object(placeholder::deep_merge(dotted, plain))
            }
            _ => value.clone(),
        };
        expanded.insert(key.clone(), merged);
    }
    Ok(expanded)
}

/// Applies `values` to `template` as Prefect's `apply_values` does with `remove_notset`:
/// returns `None` when a whole-value placeholder has no value, and drops such dict keys and
/// list items.
pub fn apply_values(
    template: &Value,
    values: &Map<String, Value>,
    env_var: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Option<Value> {
    match template {
        Value::String(text) => apply_to_text(text, values, env_var),
        Value::Object(map) => {
            let applied = map
                .iter()
                .filter_map(|(k, v)| apply_values(v, values, env_var).map(|v| (k.clone(), v)));
            Some(Value::Object(applied.collect()))
        }
        Value::Array(items) => {
            let applied = items
                .iter()
                .filter_map(|v| apply_values(v, values, env_var));
            Some(Value::Array(applied.collect()))
        }
        other => Some(other.clone()),
    }
}

fn apply_to_text(
    text: &str,
    values: &Map<String, Value>,
    env_var: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Option<Value> {
    let found = placeholder::find(text);
    if found.is_empty() {
        return Some(Value::String(text.to_string()));
    }
    let root = Value::Object(values.clone());
    if let Some(only) = placeholder::whole(text).filter(|p| p.kind == Kind::Standard) {
        return placeholder::get_path(&root, &only.name);
    }
    let replace = |full_match: &str| {
        let p = found.iter().find(|p| p.full_match == full_match)?;
        match p.kind {
            Kind::Standard => Some(
                placeholder::get_path(&root, &p.name)
                    .map(|v| python_str(&v))
                    .unwrap_or_default(),
            ),
            Kind::EnvVar => Some(env_var(p.name.trim_start_matches('$')).unwrap_or_default()),
            Kind::Block | Kind::Variable => None,
        }
    };
    Some(Value::String(placeholder::substitute(text, replace)))
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
