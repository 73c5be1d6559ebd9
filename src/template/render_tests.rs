use serde_json::{Value, json};

use super::*;
use crate::template::lookup::{BlockDocument, InMemoryLookup};

const PYTHON_TEMPLATE: &str =
    include_str!("../../tests/fixtures/python-worker-base-job-template.json");

fn no_env(_: &str) -> Option<String> {
    None
}

fn template(job_configuration: Value) -> Value {
    json!({
        "job_configuration": job_configuration,
        "variables": {"properties": {"image": {"type": "string"}, "env": {"type": "object"}}},
    })
}

async fn render(
    template: &Value,
    values: Value,
    lookup: &InMemoryLookup,
) -> Result<RenderedConfiguration, TemplateError> {
    let values = values.as_object().unwrap().clone();
    render_job_configuration(template, &values, lookup, &no_env).await
}

#[tokio::test]
async fn undeclared_placeholder_rejected() {
    let template = template(json!({"image": "{{ image }}", "typo": "{{ imgae }}"}));
    let error = render(&template, json!({}), &InMemoryLookup::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, TemplateError::UndeclaredPlaceholder { variable, .. } if variable == "imgae"),
        "{error}"
    );
    assert!(error.to_string().contains("`{{ imgae }}`"), "{error}");
}

#[tokio::test]
async fn nested_undeclared_placeholder_rejected() {
    let template = template(json!({"a": ["x {{ missing.path }}"]}));
    let error = render(&template, json!({}), &InMemoryLookup::default())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("`missing`"), "{error}");
}

#[tokio::test]
async fn secret_block_values_recorded() {
    let lookup = InMemoryLookup::default()
        .with_block(BlockDocument {
            id: "1".into(),
            name: "token".into(),
            block_type_slug: "secret".into(),
            data: json!({"value": "tok-1"}),
            secret_fields: vec![],
        })
        .with_block(BlockDocument {
            id: "2".into(),
            name: "hub".into(),
            block_type_slug: "docker-registry-credentials".into(),
            data: json!({"username": "user", "password": "pw-2"}),
            secret_fields: vec!["password".into()],
        });
    let template =
        template(json!({"env": "{{ env }}", "reg": {"$ref": {"block_document_id": "2"}}}));
    let values = json!({"env": {"T": "Bearer {{ prefect.blocks.secret.token }}"}});
    let rendered = render(&template, values, &lookup).await.unwrap();
    assert_eq!(rendered.configuration["env"]["T"], "Bearer tok-1");
    assert!(rendered.secrets.appears_in("tok-1"));
    assert!(rendered.secrets.appears_in("pw-2"));
    assert!(!rendered.secrets.appears_in("user"));
}

#[tokio::test]
async fn worker_env_comes_from_closure() {
    let template = template(json!({"a": "{{ $HOME }}", "b": "{{ $ONLY_HERE }}"}));
    let env = |name: &str| (name == "ONLY_HERE").then(|| "yes".to_string());
    let values = serde_json::Map::new();
    let lookup = InMemoryLookup::default();
    let rendered = render_job_configuration(&template, &values, &lookup, &env)
        .await
        .unwrap();
    assert_eq!(rendered.configuration, json!({"a": "", "b": "yes"}));
}

#[tokio::test]
async fn missing_block_names_block() {
    let template = template(json!({"image": "{{ prefect.blocks.secret.absent }}"}));
    let error = render(&template, json!({}), &InMemoryLookup::default())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("`absent` of type `secret`"),
        "{error}"
    );
}

#[test]
fn base_template_must_have_job_configuration() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let error = runtime
        .block_on(render(
            &json!({"variables": {}}),
            json!({}),
            &InMemoryLookup::default(),
        ))
        .unwrap_err();
    assert!(error.to_string().contains("`job_configuration`"), "{error}");
}

/// Our default template must accept every pool and deployment the Python worker accepts.
#[test]
fn default_template_matches_python_variables() {
    let ours = crate::template::default_base_job_template();
    let python: Value = serde_json::from_str(PYTHON_TEMPLATE).unwrap();
    let (ours, python) = (&ours["variables"], &python["variables"]);
    assert_eq!(ours["required"], python["required"]);
    assert_eq!(
        ours["definitions"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        python["definitions"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>()
    );
    let ours_props = ours["properties"].as_object().unwrap();
    let python_props = python["properties"].as_object().unwrap();
    assert_eq!(
        ours_props.keys().collect::<Vec<_>>(),
        python_props.keys().collect::<Vec<_>>()
    );
    for (name, theirs) in python_props {
        let mine = &ours_props[name];
        for key in [
            "type",
            "anyOf",
            "$ref",
            "format",
            "writeOnly",
            "additionalProperties",
        ] {
            assert_eq!(mine.get(key), theirs.get(key), "`{name}`.{key} differs");
        }
        if name != "image" {
            assert_eq!(
                mine.get("default"),
                theirs.get("default"),
                "`{name}` default differs"
            );
        }
    }
    assert_eq!(
        ours_props["image"]["default"],
        crate::template::DEFAULT_IMAGE
    );
    for (name, definition) in python["definitions"].as_object().unwrap() {
        for key in ["block_type_slug", "secret_fields", "required"] {
            assert_eq!(
                ours["definitions"][name].get(key),
                definition.get(key),
                "{name}.{key}"
            );
        }
    }
}

/// The worker renders inside spawned tasks, so the render future must be `Send`.
#[test]
fn render_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let template = template(json!({}));
    let values = serde_json::Map::new();
    let lookup = InMemoryLookup::default();
    let future = render_job_configuration(&template, &values, &lookup, &no_env);
    assert_send(&future);
}
