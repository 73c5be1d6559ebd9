//! azure_identity's real managed identity and client secret credentials against the ACI
//! emulator's token endpoints on 127.0.0.1, feeding the ARM client.
//!
//! The managed identity credential reads `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` from the
//! process environment, so this binary keeps its environment changes here and runs its tests
//! one at a time under `ENVIRONMENT_LOCK`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use prefect_aci_worker::arm::auth::{Credential, choose_auth, token_provider};
use prefect_aci_worker::arm::cloud::{check_arm_endpoint, http_client};
use prefect_aci_worker::arm::credential::CredentialError;
use prefect_aci_worker::arm::{
    ArmClient, ArmSettings, AzureAuth, ClientSecretFields, Environment, ErrorClass,
    IdentitySettings, ResourceGroupRef, TokenProvider,
};
use prefect_aci_worker::emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use prefect_aci_worker::metrics::Metrics;
use serde_json::json;

const SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000002";
const RESOURCE_GROUP: &str = "identity-rg";
const CLIENT_ID: &str = "worker-app";
const CLIENT_SECRET: &str = "app-secret-value";

static ENVIRONMENT_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn lock_environment() -> tokio::sync::MutexGuard<'static, ()> {
    ENVIRONMENT_LOCK.lock().await
}

/// Creates the resource group with a token the emulator issued itself.
async fn put_resource_group(emulator: &EmulatorHandle, ca_bundle: Option<&Path>) {
    let url = format!(
        "{}/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}?api-version=2021-04-01",
        emulator.arm_endpoint()
    );
    let response = http_client(ca_bundle)
        .unwrap()
        .put(url)
        .bearer_auth(emulator.issue_token())
        .json(&json!({"location": "westeurope"}))
        .send()
        .await
        .expect("resource group PUT is sent");
    assert!(
        response.status().is_success(),
        "resource group PUT: {}",
        response.status()
    );
}

/// Reads the resource group through the ARM client with `tokens`.
async fn read_resource_group(
    emulator: &EmulatorHandle,
    tokens: Arc<dyn TokenProvider>,
    ca_bundle: Option<PathBuf>,
) -> String {
    let mut settings = ArmSettings::new(check_arm_endpoint(&emulator.arm_endpoint()).unwrap());
    settings.ca_bundle = ca_bundle;
    settings.request_timeout = Duration::from_secs(5);
    let client = ArmClient::new(settings, tokens, Metrics::new()).unwrap();
    let scope = ResourceGroupRef::new(SUBSCRIPTION, RESOURCE_GROUP);
    client
        .resource_group(&scope)
        .await
        .expect("resource group read")
        .location
}

fn set_identity_variables(endpoint: &str, header: &str) {
    // SAFETY: every test of this binary takes ENVIRONMENT_LOCK first, so no other thread of
    // this process reads or writes the environment meanwhile.
    unsafe {
        std::env::set_var("IDENTITY_ENDPOINT", endpoint);
        std::env::set_var("IDENTITY_HEADER", header);
    }
}

fn remove_identity_variables() {
    // SAFETY: as in set_identity_variables.
    unsafe {
        std::env::remove_var("IDENTITY_ENDPOINT");
        std::env::remove_var("IDENTITY_HEADER");
    }
}

#[tokio::test]
async fn managed_identity_via_identity_endpoint() {
    let _guard = lock_environment().await;
    let emulator = Emulator::start(EmulatorConfig::for_tests()).await.unwrap();
    put_resource_group(&emulator, None).await;

    let auto_env = Environment::from_pairs([("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token")]);
    let (auto, _) = choose_auth(&IdentitySettings::default(), &auto_env).unwrap();
    assert!(matches!(auto, Credential::ManagedIdentity(_)), "{auto:?}");

    set_identity_variables(&emulator.identity_endpoint(), emulator.identity_header());
    let settings = IdentitySettings {
        auth: AzureAuth::ManagedIdentity,
        ..Default::default()
    };
    let provider = token_provider(&settings, &Environment::from_process());
    let provider = provider.expect("managed identity credential builds");
    let token = provider.token().await;
    remove_identity_variables();

    let token = token.expect("managed identity token");
    assert!(
        token.secret().starts_with("aci-emulator."),
        "a token the emulator issued"
    );
    let location = read_resource_group(&emulator, Arc::new(provider), None).await;
    assert_eq!(location, "westeurope");
}

#[tokio::test]
async fn managed_identity_failure_names_credential() {
    let _guard = lock_environment().await;
    let emulator = Emulator::start(EmulatorConfig::for_tests()).await.unwrap();
    set_identity_variables(&emulator.identity_endpoint(), "wrong-identity-header");
    let settings = IdentitySettings {
        auth: AzureAuth::ManagedIdentity,
        ..Default::default()
    };
    let provider = token_provider(&settings, &Environment::from_process()).unwrap();
    let result = provider.token().await;
    remove_identity_variables();

    let error = result.expect_err("the emulator rejects the identity header");
    assert!(matches!(error, CredentialError::Token { .. }), "{error}");
    assert!(
        error.to_string().contains("ManagedIdentityCredential"),
        "{error}"
    );
}

/// Starts the emulator with HTTPS and one known client, and writes its certificate to a
/// file for `SSL_CERT_FILE`.
async fn start_tls_emulator(directory: &Path) -> (EmulatorHandle, PathBuf) {
    let mut config = EmulatorConfig::for_tests();
    config.tls = true;
    config.client_credentials = vec![format!("{CLIENT_ID}={CLIENT_SECRET}").parse().unwrap()];
    let emulator = Emulator::start(config).await.unwrap();
    assert!(emulator.arm_endpoint().starts_with("https://"));
    let ca_path = directory.join("emulator-ca.pem");
    std::fs::write(
        &ca_path,
        emulator.ca_certificate_pem().expect("TLS certificate"),
    )
    .unwrap();
    (emulator, ca_path)
}

fn client_secret_settings(secret: &str) -> IdentitySettings {
    let fields = ClientSecretFields::from_parts(
        "aci_credentials",
        Some("tenant-1".into()),
        Some(CLIENT_ID.into()),
        Some(secret.into()),
    );
    IdentitySettings {
        auth: AzureAuth::ClientSecret,
        pool_client_secret: fields.unwrap(),
        ..Default::default()
    }
}

#[tokio::test]
async fn client_secret_over_local_https() {
    let _guard = lock_environment().await;
    let directory = tempfile::tempdir().unwrap();
    let (emulator, ca_path) = start_tls_emulator(directory.path()).await;
    put_resource_group(&emulator, Some(&ca_path)).await;
    let authority = emulator.authority_host();
    let env = Environment::from_pairs([
        ("AZURE_AUTHORITY_HOST", authority.as_str()),
        ("SSL_CERT_FILE", ca_path.to_str().unwrap()),
    ]);

    let provider = token_provider(&client_secret_settings(CLIENT_SECRET), &env).unwrap();
    let token = provider.token().await.expect("client secret token");
    assert!(token.secret().starts_with("aci-emulator."));
    let location = read_resource_group(&emulator, Arc::new(provider), Some(ca_path)).await;
    assert_eq!(location, "westeurope");
}

#[tokio::test]
async fn wrong_client_secret_hides_secret() {
    let _guard = lock_environment().await;
    let directory = tempfile::tempdir().unwrap();
    let (emulator, ca_path) = start_tls_emulator(directory.path()).await;
    let authority = emulator.authority_host();
    let env = Environment::from_pairs([
        ("AZURE_AUTHORITY_HOST", authority.as_str()),
        ("SSL_CERT_FILE", ca_path.to_str().unwrap()),
    ]);

    let provider = token_provider(&client_secret_settings("wrong-secret-value"), &env).unwrap();
    let error = provider
        .token()
        .await
        .expect_err("the emulator rejects the secret");
    let message = format!("{error} {error:?}");
    assert!(message.contains("ClientSecretCredential"), "{message}");
    assert!(
        message.contains("7000215"),
        "Entra's error code is kept: {message}"
    );
    assert!(!message.contains("wrong-secret-value"), "{message}");

    let arm_error = prefect_aci_worker::arm::ArmError::from(error);
    assert_eq!(arm_error.class(), ErrorClass::Configuration);
}
