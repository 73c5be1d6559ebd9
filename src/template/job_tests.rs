use serde_json::{Value, json};

use super::*;

const IDENTITY: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1";

fn configure(extra: Value) -> Result<AciJobConfiguration, TemplateError> {
    let mut configuration = json!({"resource_group_name": "rg", "subscription_id": "sub-1"});
    for (key, value) in extra.as_object().unwrap() {
        configuration[key] = value.clone();
    }
    let rendered = RenderedConfiguration {
        configuration,
        secrets: SecretValues::default(),
    };
    AciJobConfiguration::from_rendered(&rendered)
}

fn error_text(extra: Value) -> String {
    configure(extra)
        .expect_err("configuration must be rejected")
        .to_string()
}

#[test]
fn defaults_apply() {
    let config = configure(json!({})).unwrap();
    assert_eq!(config.image, DEFAULT_IMAGE);
    assert_eq!(
        config.command,
        [
            "/opt/prefect/entrypoint.sh",
            "prefect",
            "flow-run",
            "execute"
        ]
    );
    assert_eq!(config.cpu, 1.0);
    assert_eq!(config.memory, 1.0);
    assert_eq!(config.task_start_timeout, Duration::from_secs(240));
    assert_eq!(config.task_watch_poll_interval, Duration::from_secs(5));
    assert!(config.gpu.is_none());
    assert!(!config.stream_output);
    assert!(!config.keep_container_group);
}

#[test]
fn command_split_with_shell_rules() {
    let config = configure(json!({"command": "python -c 'print(1)' \"a b\"", "entrypoint": null}));
    assert_eq!(config.unwrap().command, ["python", "-c", "print(1)", "a b"]);
}

#[test]
fn command_with_open_quote_rejected() {
    let text = error_text(json!({"command": "echo 'oops"}));
    assert!(text.contains("`command`"), "{text}");
    assert!(text.contains("balanced quotes"), "{text}");
}

#[test]
fn missing_resource_group_rejected() {
    let text = error_text(json!({"resource_group_name": null}));
    assert!(text.contains("`resource_group_name` is required"), "{text}");
    let text = error_text(json!({"resource_group_name": "  "}));
    assert!(text.contains("`resource_group_name` is required"), "{text}");
}

#[test]
fn missing_subscription_rejected() {
    let text = error_text(json!({"subscription_id": ""}));
    assert!(text.contains("`subscription_id` is required"), "{text}");
}

#[test]
fn subscription_type_error_hides_value() {
    let text = error_text(json!({"subscription_id": 12345}));
    assert!(text.contains("`subscription_id`"), "{text}");
    assert!(!text.contains("12345"), "{text}");
}

#[test]
fn subscription_masked_in_debug() {
    let config = configure(json!({"subscription_id": "sub-secret-9"})).unwrap();
    assert!(!format!("{config:?}").contains("sub-secret-9"));
}

#[test]
fn wrong_type_names_variable_value_and_expectation() {
    let text = error_text(json!({"cpu": "lots"}));
    assert_eq!(
        text,
        "invalid job variable `cpu`: got \"lots\", expected a number"
    );
    let text = error_text(json!({"stream_output": "maybe"}));
    assert!(
        text.contains("`stream_output`") && text.contains("true or false"),
        "{text}"
    );
    let text = error_text(json!({"subnet_ids": "one"}));
    assert!(
        text.contains("`subnet_ids`") && text.contains("a list of strings"),
        "{text}"
    );
    let text = error_text(json!({"dns_servers": [1]}));
    assert!(text.contains("`dns_servers[0]`"), "{text}");
    let text = error_text(json!({"image": 3}));
    assert!(
        text.contains("`image`") && text.contains("a string"),
        "{text}"
    );
}

#[test]
fn numeric_strings_accepted() {
    let config = configure(json!({"cpu": "2", "memory": "1.5", "stream_output": "true"})).unwrap();
    assert_eq!(config.cpu, 2.0);
    assert_eq!(config.memory, 1.5);
    assert!(config.stream_output);
}

#[test]
fn negative_cpu_and_memory_rejected() {
    let text = error_text(json!({"cpu": -1}));
    assert!(
        text.contains("`cpu`") && text.contains("greater than 0"),
        "{text}"
    );
    let text = error_text(json!({"memory": 0}));
    assert!(
        text.contains("`memory`") && text.contains("greater than 0"),
        "{text}"
    );
}

#[test]
fn env_value_must_be_string_or_null() {
    let text = error_text(json!({"env": {"PORT": 8080}}));
    assert!(
        text.contains("`env.PORT`") && text.contains("a string or null"),
        "{text}"
    );
    let config = configure(json!({"env": {"A": "1", "B": null}})).unwrap();
    assert_eq!(
        config.env,
        [("A".to_string(), Some("1".into())), ("B".to_string(), None)]
    );
}

#[test]
fn gpu_count_without_sku_rejected() {
    let text = error_text(json!({"gpu_count": 1}));
    assert!(text.contains("`gpu_sku` is required"), "{text}");
    assert!(text.contains("K80, P100, V100"), "{text}");
}

#[test]
fn gpu_sku_without_count_rejected() {
    let text = error_text(json!({"gpu_sku": "V100"}));
    assert!(text.contains("`gpu_count` is required"), "{text}");
}

#[test]
fn bad_gpu_values_rejected() {
    let text = error_text(json!({"gpu_count": 1, "gpu_sku": "A100"}));
    assert!(
        text.contains("`gpu_sku`: got \"A100\", expected one of K80, P100, V100"),
        "{text}"
    );
    let text = error_text(json!({"gpu_count": 0, "gpu_sku": "K80"}));
    assert!(
        text.contains("`gpu_count`") && text.contains("at least 1"),
        "{text}"
    );
    let text = error_text(json!({"gpu_count": 1.5, "gpu_sku": "K80"}));
    assert!(
        text.contains("`gpu_count`") && text.contains("an integer"),
        "{text}"
    );
    let gpu = configure(json!({"gpu_count": 2, "gpu_sku": "P100"}))
        .unwrap()
        .gpu;
    assert_eq!(
        gpu,
        Some(GpuRequest {
            count: 2,
            sku: "P100".into()
        })
    );
}

#[test]
fn identity_must_be_user_assigned_resource_id() {
    let text = error_text(json!({"identities": ["my-identity"]}));
    assert!(
        text.contains("`identities[0]`: got \"my-identity\""),
        "{text}"
    );
    assert!(text.contains("userAssignedIdentities"), "{text}");
    let wrong_provider = IDENTITY.replace("Microsoft.ManagedIdentity", "Microsoft.Storage");
    assert!(configure(json!({"identities": [wrong_provider]})).is_err());
    assert!(configure(json!({"identities": [IDENTITY.to_lowercase()]})).is_ok());
}

#[test]
fn acr_identity_checked() {
    let registry = json!({"registry_url": "acr.azurecr.io", "identity": "not-an-id"});
    let text = error_text(json!({"image_registry": registry}));
    assert!(text.contains("`image_registry.identity`"), "{text}");
}

#[test]
fn image_registry_kinds_parse() {
    let acr = json!({"registry_url": "acr.azurecr.io", "identity": IDENTITY});
    let config = configure(json!({"image_registry": acr})).unwrap();
    assert!(matches!(
        config.image_registry,
        Some(ImageRegistry::AcrManagedIdentity { .. })
    ));
    let docker = json!({"registry_url": "r", "username": "u", "password": "pw-77", "reauth": true});
    let config = configure(json!({"image_registry": docker})).unwrap();
    assert!(matches!(
        config.image_registry,
        Some(ImageRegistry::Docker { .. })
    ));
    assert!(!format!("{config:?}").contains("pw-77"));
}

#[test]
fn docker_registry_needs_password() {
    let text = error_text(json!({"image_registry": {"registry_url": "r", "username": "u"}}));
    assert!(
        text.contains("`image_registry.password` is required"),
        "{text}"
    );
    let text = error_text(json!({"image_registry": {"username": "u", "password": "p"}}));
    assert!(
        text.contains("`image_registry.registry_url` is required"),
        "{text}"
    );
}

#[test]
fn partial_credentials_rejected() {
    let credentials = json!({"client_id": "c", "tenant_id": "t"});
    let text = error_text(json!({"aci_credentials": credentials}));
    assert!(text.contains("`aci_credentials`"), "{text}");
    assert!(text.contains("client_secret missing"), "{text}");
}

#[test]
fn full_credentials_masked() {
    let credentials = json!({"client_id": "c", "tenant_id": "t", "client_secret": "cs-42"});
    let config = configure(json!({"aci_credentials": credentials})).unwrap();
    assert_eq!(config.aci_credentials.client_id.as_deref(), Some("c"));
    assert!(!format!("{config:?}").contains("cs-42"));
}

#[test]
fn bad_timeouts_rejected() {
    let text = error_text(json!({"task_start_timeout_seconds": 0}));
    assert!(text.contains("`task_start_timeout_seconds`"), "{text}");
    let text = error_text(json!({"task_start_timeout_seconds": -5}));
    assert!(text.contains("greater than 0"), "{text}");
    let text = error_text(json!({"task_watch_poll_interval": 0}));
    assert!(text.contains("`task_watch_poll_interval`"), "{text}");
    let text = error_text(json!({"task_watch_poll_interval": "soon"}));
    assert!(text.contains("expected a number"), "{text}");
}

#[test]
fn configuration_must_be_object() {
    let rendered = RenderedConfiguration {
        configuration: json!([1]),
        secrets: SecretValues::default(),
    };
    let text = AciJobConfiguration::from_rendered(&rendered)
        .unwrap_err()
        .to_string();
    assert!(text.contains("`job_configuration`"), "{text}");
}

#[test]
fn debug_masks_secret_env_values() {
    let configuration = json!({"resource_group_name": "rg", "subscription_id": "sub-1",
        "env": {"TOKEN": "Bearer tok-5", "PREFECT_API_KEY": "pnu_x", "PLAIN": "visible"}});
    let mut secrets = SecretValues::default();
    secrets.insert("tok-5");
    let rendered = RenderedConfiguration {
        configuration,
        secrets,
    };
    let config = AciJobConfiguration::from_rendered(&rendered).unwrap();
    let text = format!("{config:?} {rendered:?}");
    assert!(!text.contains("tok-5"), "{text}");
    assert!(!text.contains("pnu_x"), "{text}");
    assert!(!text.contains("sub-1"), "{text}");
    assert!(text.contains("visible"), "{text}");
}

#[test]
fn error_hides_secret_value() {
    let configuration = json!({"resource_group_name": "rg", "subscription_id": "s",
        "cpu": "tok-5"});
    let mut secrets = SecretValues::default();
    secrets.insert("tok-5");
    let rendered = RenderedConfiguration {
        configuration,
        secrets,
    };
    let text = AciJobConfiguration::from_rendered(&rendered)
        .unwrap_err()
        .to_string();
    assert!(text.contains("`cpu`"), "{text}");
    assert!(!text.contains("tok-5"), "{text}");
}

#[test]
fn unsupported_arm_expression_rejected_early() {
    let template = json!({"resources": [{
        "type": "Microsoft.ContainerInstance/containerGroups",
        "properties": {"containers": [], "osType": "[variables('os')]"},
    }]});
    let error = configure(json!({"arm_template": template})).unwrap_err();
    assert!(
        matches!(error, TemplateError::UnsupportedArmExpression(_)),
        "{error}"
    );
    assert!(error.to_string().contains("[variables('os')]"), "{error}");
}
