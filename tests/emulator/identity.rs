//! Token endpoints (managed identity and Entra client credentials) and HTTPS serving.

use azure_core::credentials::TokenCredential;
use prefect_aci_worker::emulator::{ClientCredential, EmulatorConfig};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

fn managed_identity_url(emulator: &TestEmulator) -> String {
    format!(
        "{}?api-version=2019-08-01&resource=https%3A%2F%2Fmanagement.azure.com&client_id=abc",
        emulator.handle.identity_endpoint()
    )
}

#[tokio::test]
async fn managed_identity_token_opens_arm() {
    let emulator = TestEmulator::start().await;
    let response = emulator
        .client
        .get(managed_identity_url(&emulator))
        .header("x-identity-header", emulator.handle.identity_header())
        .header("metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["resource"], "https://management.azure.com");
    let expires_on: u64 = body["expires_on"].as_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        expires_on > now + 3000,
        "expires_on {expires_on} is not about an hour ahead"
    );

    let token = body["access_token"].as_str().unwrap();
    let arm = emulator
        .client
        .get(emulator.group_url("any", ""))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(arm.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn managed_identity_rejects_wrong_header() {
    let emulator = TestEmulator::start().await;
    for header in [Some("wrong"), None] {
        let mut request = emulator.client.get(managed_identity_url(&emulator));
        if let Some(header) = header {
            request = request.header("x-identity-header", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "header {header:?}"
        );
    }
}

async fn entra_token(
    emulator: &TestEmulator,
    client_id: &str,
    secret: &str,
) -> (StatusCode, Value) {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("client_secret", secret)
        .append_pair("grant_type", "client_credentials")
        .append_pair("scope", "https://management.azure.com/.default")
        .finish();
    let url = format!(
        "{}/tenant-1/oauth2/v2.0/token",
        emulator.handle.authority_host()
    );
    let response = emulator
        .client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn config_with_client() -> EmulatorConfig {
    let mut config = EmulatorConfig::for_tests();
    config.client_credentials = vec![ClientCredential {
        client_id: "app-1".into(),
        client_secret: "right".into(),
    }];
    config
}

#[tokio::test]
async fn entra_client_credentials_issue_tokens() {
    let emulator = TestEmulator::with_config(config_with_client()).await;
    let (status, body) = entra_token(&emulator, "app-1", "right").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    let arm = emulator
        .client
        .get(emulator.group_url("any", ""))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(arm.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn entra_rejects_wrong_secret_and_client() {
    let emulator = TestEmulator::with_config(config_with_client()).await;
    let (status, body) = entra_token(&emulator, "app-1", "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"][0], 7000215);
    assert!(!body.to_string().contains("right"), "secret leaked: {body}");

    let (status, body) = entra_token(&emulator, "app-unknown", "right").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_codes"][0], 700016);
    assert!(body["error_description"].is_string());
}

#[tokio::test]
async fn tls_serves_with_generated_certificate() {
    let directory = tempfile::tempdir().unwrap();
    let certificate_file = directory.path().join("ca.pem");
    let mut config = EmulatorConfig::for_tests();
    config.tls = true;
    config.tls_cert_out = Some(certificate_file.clone());
    let handle = prefect_aci_worker::emulator::Emulator::start(config)
        .await
        .unwrap();
    assert!(handle.arm_endpoint().starts_with("https://127.0.0.1:"));
    let pem = std::fs::read_to_string(&certificate_file).unwrap();
    assert_eq!(Some(pem.as_str()), handle.ca_certificate_pem());

    let certificate = reqwest::Certificate::from_pem(pem.as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([certificate])
        .build()
        .unwrap();
    let url = format!(
        "{}?api-version=2019-08-01&resource=r",
        handle.identity_endpoint()
    );
    let response = client
        .get(&url)
        .header("x-identity-header", handle.identity_header())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let localhost = url.replace("127.0.0.1", "localhost");
    let response = client
        .get(&localhost)
        .header("x-identity-header", handle.identity_header())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let untrusting = reqwest::Client::builder()
        .tls_certs_only([])
        .build()
        .unwrap();
    assert!(
        untrusting.get(&url).send().await.is_err(),
        "an untrusted certificate was accepted"
    );
    handle.shutdown().await;
}

/// Marks the child process of `azure_identity_managed_identity_credential`.
const CHILD_MARKER: &str = "ACI_EMULATOR_TEST_MANAGED_IDENTITY_CHILD";
const TEST_NAME: &str = "identity::azure_identity_managed_identity_credential";

/// azure_identity reads IDENTITY_ENDPOINT and IDENTITY_HEADER from the process environment.
/// So the credential runs in a child process of this test binary with both set, and the
/// parent checks that the token the child printed opens ARM.
#[tokio::test]
async fn azure_identity_managed_identity_credential() {
    if std::env::var_os(CHILD_MARKER).is_some() {
        let credential = azure_identity::ManagedIdentityCredential::new(None).unwrap();
        let token = credential
            .get_token(&["https://management.azure.com/.default"], None)
            .await
            .expect("azure_identity gets a token from the emulator");
        println!("TOKEN={}", token.token.secret());
        return;
    }
    let emulator = TestEmulator::start().await;
    let output = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_MARKER, "1")
        .env("IDENTITY_ENDPOINT", emulator.handle.identity_endpoint())
        .env("IDENTITY_HEADER", emulator.handle.identity_header())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The harness prints the test name on the same line, so look for the marker anywhere.
    let token = stdout
        .split_once("TOKEN=")
        .and_then(|(_, rest)| rest.split_whitespace().next());
    let token = token.unwrap_or_else(|| panic!("child printed no token: {stdout}"));
    let arm = emulator
        .client
        .get(emulator.group_url("any", ""))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(arm.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn azure_identity_client_secret_credential() {
    use azure_core::cloud::CustomConfiguration;
    use azure_core::credentials::{Secret, TokenCredential};
    use azure_core::http::{ClientOptions, Transport};
    use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};

    let mut config = config_with_client();
    config.tls = true;
    let handle = prefect_aci_worker::emulator::Emulator::start(config)
        .await
        .unwrap();
    let pem = handle.ca_certificate_pem().unwrap();
    let certificate = reqwest::Certificate::from_pem(pem.as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([certificate])
        .build()
        .unwrap();
    let credential = |secret: &'static str| {
        let mut cloud = CustomConfiguration::default();
        cloud.authority_host = handle.authority_host();
        let client_options = ClientOptions {
            transport: Some(Transport::new(std::sync::Arc::new(http.clone()))),
            cloud: Some(std::sync::Arc::new(cloud.into())),
            ..Default::default()
        };
        let options = ClientSecretCredentialOptions { client_options };
        ClientSecretCredential::new(
            "tenant-1",
            "app-1".into(),
            Secret::new(secret),
            Some(options),
        )
        .unwrap()
    };
    let scopes = ["https://management.azure.com/.default"];
    let token = credential("right")
        .get_token(&scopes, None)
        .await
        .expect("token from the emulator");
    let url = format!(
        "{}/subscriptions/s/resourcegroups/rg?api-version=2021-04-01",
        handle.arm_endpoint()
    );
    let arm = http
        .get(&url)
        .bearer_auth(token.token.secret())
        .send()
        .await
        .unwrap();
    assert_eq!(arm.status(), StatusCode::NOT_FOUND);

    let error = credential("wrong")
        .get_token(&scopes, None)
        .await
        .expect_err("wrong secret fails");
    assert!(error.to_string().contains("7000215"), "error: {error}");
    handle.shutdown().await;
}

#[tokio::test]
async fn tls_serves_given_certificate() {
    let directory = tempfile::tempdir().unwrap();
    let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let generated = rcgen::generate_simple_self_signed(names).unwrap();
    let certificate_path = directory.path().join("server.pem");
    let key_path = directory.path().join("server.key");
    std::fs::write(&certificate_path, generated.cert.pem()).unwrap();
    std::fs::write(&key_path, generated.signing_key.serialize_pem()).unwrap();
    let mut config = EmulatorConfig::for_tests();
    config.tls_cert = Some(certificate_path);
    config.tls_key = Some(key_path);
    let handle = prefect_aci_worker::emulator::Emulator::start(config)
        .await
        .unwrap();
    assert_eq!(
        handle.ca_certificate_pem(),
        Some(generated.cert.pem().as_str())
    );

    let certificate = reqwest::Certificate::from_pem(generated.cert.pem().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([certificate])
        .build()
        .unwrap();
    let url = format!(
        "{}?api-version=2019-08-01&resource=r",
        handle.identity_endpoint()
    );
    let response = client
        .get(&url)
        .header("x-identity-header", handle.identity_header())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    handle.shutdown().await;
}

#[tokio::test]
async fn invalid_tls_key_fails_start() {
    let directory = tempfile::tempdir().unwrap();
    let certificate_path = directory.path().join("server.pem");
    let key_path = directory.path().join("server.key");
    std::fs::write(&certificate_path, "not a certificate").unwrap();
    std::fs::write(&key_path, "not a key").unwrap();
    let mut config = EmulatorConfig::for_tests();
    config.tls_cert = Some(certificate_path);
    config.tls_key = Some(key_path);
    let result = prefect_aci_worker::emulator::Emulator::start(config).await;
    assert!(result.is_err(), "started with an invalid certificate");
}
