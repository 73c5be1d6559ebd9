use super::*;

fn settings(auth: AzureAuth) -> IdentitySettings {
    IdentitySettings {
        auth,
        ..IdentitySettings::default()
    }
}

fn chosen(settings: &IdentitySettings, pairs: &[(&str, &str)]) -> Credential {
    let env = Environment::from_pairs(pairs.iter().copied());
    choose_auth(settings, &env).unwrap().0
}

const SECRET_VARS: [(&str, &str); 3] = [
    ("AZURE_TENANT_ID", "tenant"),
    ("AZURE_CLIENT_ID", "client"),
    ("AZURE_CLIENT_SECRET", "hunter2"),
];

#[test]
fn auto_prefers_client_secret_vars() {
    let mut vars = SECRET_VARS.to_vec();
    vars.push(("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"));
    vars.push(("IDENTITY_ENDPOINT", "http://127.0.0.1:1/token"));
    let credential = chosen(&settings(AzureAuth::Auto), &vars);
    assert!(matches!(credential, Credential::ClientSecret(ref f) if f.tenant_id == "tenant"));
}

#[test]
fn auto_prefers_pool_credentials() {
    let mut settings = settings(AzureAuth::Auto);
    settings.pool_client_secret = ClientSecretFields::from_parts(
        "aci_credentials",
        Some("pool-tenant".into()),
        Some("pool-client".into()),
        Some("s".into()),
    )
    .unwrap();
    let credential = chosen(&settings, &SECRET_VARS);
    assert!(matches!(credential, Credential::ClientSecret(ref f) if f.tenant_id == "pool-tenant"));
}

#[test]
fn auto_then_workload_identity() {
    let vars = [
        ("AZURE_TENANT_ID", "t"),
        ("AZURE_CLIENT_ID", "c"),
        ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/token"),
    ];
    let credential = chosen(&settings(AzureAuth::Auto), &vars);
    assert!(
        matches!(credential, Credential::WorkloadIdentity { .. }),
        "{credential:?}"
    );
}

#[test]
fn auto_then_managed_identity() {
    let vars = [
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/token"),
        ("AZURE_CLIENT_ID", "c"),
    ];
    let credential = chosen(&settings(AzureAuth::Auto), &vars);
    let expected = Some(ManagedIdentityId::ClientId("c".into()));
    assert!(matches!(credential, Credential::ManagedIdentity(ref id) if *id == expected));
}

#[test]
fn auto_then_cli_when_az_on_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("az"), "#!/bin/sh\n").unwrap();
    let path = dir.path().to_str().unwrap();
    let credential = chosen(&settings(AzureAuth::Auto), &[("PATH", path)]);
    assert!(
        matches!(credential, Credential::Cli { .. }),
        "{credential:?}"
    );
}

#[test]
fn auto_falls_back_to_imds() {
    let credential = chosen(&settings(AzureAuth::Auto), &[("PATH", "/nonexistent")]);
    assert!(
        matches!(credential, Credential::ManagedIdentity(None)),
        "{credential:?}"
    );
}

#[test]
fn incomplete_secret_vars_rejected() {
    let env = Environment::from_pairs([("AZURE_CLIENT_SECRET", "hunter2")]);
    let err = choose_auth(&settings(AzureAuth::Auto), &env).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("tenant id, client id"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn incomplete_pool_credentials_rejected() {
    let err = ClientSecretFields::from_parts("aci_credentials", Some("t".into()), None, None)
        .unwrap_err();
    assert!(err.to_string().contains("aci_credentials"), "{err}");
    assert!(
        err.to_string().contains("client id, client secret"),
        "{err}"
    );
    let none = ClientSecretFields::from_parts("aci_credentials", None, None, None).unwrap();
    assert!(none.is_none());
}

#[test]
fn explicit_choice_needs_its_settings() {
    let env = Environment::from_pairs([("AZURE_TENANT_ID", "t")]);
    let err = choose_auth(&settings(AzureAuth::WorkloadIdentity), &env).unwrap_err();
    assert!(err.to_string().contains("AZURE_CLIENT_ID"), "{err}");
    let err = choose_auth(&settings(AzureAuth::ClientSecret), &Environment::default());
    assert!(matches!(err, Err(CredentialError::MissingSetting { .. })));
}

#[test]
fn client_secret_debug_masks_secret() {
    let fields = ClientSecretFields::from_parts(
        "test",
        Some("t".into()),
        Some("c".into()),
        Some("hunter2".into()),
    )
    .unwrap()
    .unwrap();
    assert!(!format!("{fields:?}").contains("hunter2"));
}

#[test]
fn environment_debug_hides_values() {
    let env = Environment::from_pairs(SECRET_VARS);
    let printed = format!("{env:?}");
    assert!(printed.contains("AZURE_CLIENT_SECRET"), "{printed}");
    assert!(!printed.contains("hunter2"), "{printed}");
}
