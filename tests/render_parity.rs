//! Rendering parity with Prefect 3.9.1.
//!
//! `tests/parity/expected.json` is produced by `tests/parity/generate.py`, which renders each
//! case of `tests/parity/cases.json` with Prefect's own functions against a real Prefect
//! server holding the declared blocks and variables. Here the same cases are rendered with
//! this crate and compared. Blocks and variables come from an in-memory lookup built from
//! the same declarations in `cases.json`, so this test covers the rendering rules. The
//! Prefect client's implementation of the lookup needs its own test against a real server.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use prefect_aci_worker::template::{
    BlockDocument, InMemoryLookup, TemplateError, merge_job_variables, render_job_configuration,
};
use serde_json::{Map, Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path:?}: {e}"))
}

fn lookup_from(spec: &Value) -> InMemoryLookup {
    let mut lookup = InMemoryLookup::default();
    for block in spec["blocks"].as_array().unwrap() {
        let slug = block["slug"].as_str().unwrap();
        let secret_fields: Vec<String> = block["secret_fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect();
        for doc in block["documents"].as_array().unwrap() {
            let name = doc["name"].as_str().unwrap();
            lookup = lookup.with_block(BlockDocument {
                id: format!("@block:{slug}/{name}"),
                name: name.to_string(),
                block_type_slug: slug.to_string(),
                data: doc["data"].clone(),
                secret_fields: secret_fields.clone(),
            });
        }
    }
    for variable in spec["variables"].as_array().unwrap() {
        let name = variable["name"].as_str().unwrap();
        lookup = lookup.with_variable(name, variable["value"].clone());
    }
    lookup
}

/// Returns the Python exception class Prefect raises for the same input.
fn python_error_class(error: &TemplateError) -> &'static str {
    match error {
        TemplateError::InvalidVariable { .. } => "TypeError",
        TemplateError::BlockNotFound(_) => "ObjectNotFound",
        TemplateError::BlockNotScalar(_)
        | TemplateError::BlockKeypathNotFound { .. }
        | TemplateError::InvalidBlockPlaceholder(_) => "ValueError",
        _ => "unexpected error kind",
    }
}

/// Builds a case's base job template: its `template_file`, or its `job_configuration` with
/// the shared `typed_variables` overlaid by the case's `extra_variables`.
fn template_of(spec: &Value, case: &Value) -> Value {
    if let Some(file) = case.get("template_file") {
        return read_json(&root().join(file.as_str().unwrap()));
    }
    let mut properties = spec["typed_variables"].as_object().unwrap().clone();
    if let Some(extra) = case.get("extra_variables").and_then(Value::as_object) {
        properties.extend(extra.clone());
    }
    json!({
        "job_configuration": case["job_configuration"],
        "variables": {"type": "object", "properties": properties},
    })
}

async fn render_case(spec: &Value, case: &Value, lookup: &InMemoryLookup) -> Value {
    let template = template_of(spec, case);
    let worker_env: HashMap<String, String> = case
        .get("worker_env")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let env_var = |name: &str| worker_env.get(name).cloned();
    let merged = merge_job_variables(case["deployment"].as_object(), case["flow_run"].as_object());
    let values: Result<Map<String, Value>, TemplateError> = merged;
    let rendered = match values {
        Ok(values) => render_job_configuration(&template, &values, lookup, &env_var).await,
        Err(error) => Err(error),
    };
    match rendered {
        Ok(rendered) => json!({"configuration": rendered.configuration}),
        Err(error) => json!({"error": python_error_class(&error)}),
    }
}

#[tokio::test]
async fn rendering_matches_prefect() {
    let spec = read_json(&root().join("tests/parity/cases.json"));
    let expected = read_json(&root().join("tests/parity/expected.json"));
    let lookup = lookup_from(&spec);
    let cases = spec["cases"].as_array().unwrap();
    assert_eq!(
        cases.len(),
        expected.as_object().unwrap().len(),
        "expected.json is stale"
    );
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let ours = render_case(&spec, case, &lookup).await;
        let theirs = &expected[name];
        if &ours != theirs {
            failures.push(format!(
                "case `{name}`:\n  ours:    {ours}\n  prefect: {theirs}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("PREFECT_ACI_TEST_VENV3")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/prefect3"));
    let python = venv.join("bin/python");
    python.exists().then_some(python)
}

#[test]
fn expected_outputs_are_current() {
    let Some(python) = venv_python() else {
        let reason = "no Prefect 3 venv at $PREFECT_ACI_TEST_VENV3 or .venv/prefect3 \
                      (run `make venv`)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("cannot check tests/parity/expected.json: {reason}");
        }
        // Written to the process's stderr, which the test harness does not capture, so the
        // skip shows in a passing run.
        let message = format!("\n!!! SKIPPED expected_outputs_are_current: {reason} !!!\n");
        let _ = std::io::stderr().write_all(message.as_bytes());
        return;
    };
    let output = Command::new(&python)
        .arg(root().join("tests/parity/generate.py"))
        .arg("--check")
        .env_remove("PREFECT_API_URL")
        .output()
        .expect("run generate.py");
    assert!(
        output.status.success(),
        "generate.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let checked_in = std::fs::read(root().join("tests/parity/expected.json")).unwrap();
    assert!(
        output.stdout == checked_in,
        "tests/parity/expected.json differs from what generate.py produces now; \
         run `.venv/prefect3/bin/python tests/parity/generate.py` and commit the result"
    );
}
