//! ARM clients: the worker's own, and one per service principal that pools name in their
//! `aci_credentials` block.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::arm::auth::{Environment, token_provider};
use crate::arm::credential::CredentialError;
use crate::arm::{
    ArmClient, ArmError, ArmSettings, AzureAuth, ClientSecretFields, IdentitySettings,
    TokenProvider,
};
use crate::metrics::Metrics;
use crate::template::job::AciCredentials;

/// Errors from building an ARM client.
#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error(transparent)]
    Arm(#[from] ArmError),
}

/// The ARM clients of the worker, built on demand and kept for its lifetime.
#[derive(Debug)]
pub struct AzureClients {
    default: ArmClient,
    default_tokens: Arc<dyn TokenProvider>,
    identity: IdentitySettings,
    /// Clients for `aci_credentials` service principals, keyed by tenant and client id.
    by_principal: Mutex<HashMap<(String, String), ArmClient>>,
}

impl AzureClients {
    /// Builds the worker's own credential (chosen by `identity.auth`) and client.
    pub fn new(
        settings: ArmSettings,
        identity: IdentitySettings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, AzureError> {
        let tokens: Arc<dyn TokenProvider> =
            Arc::new(token_provider(&identity, &Environment::from_process())?);
        Self::with_tokens(settings, identity, metrics, tokens)
    }

    /// Builds the clients around a given token provider for the worker's own client.
    pub fn with_tokens(
        settings: ArmSettings,
        identity: IdentitySettings,
        metrics: Arc<Metrics>,
        tokens: Arc<dyn TokenProvider>,
    ) -> Result<Self, AzureError> {
        let default = ArmClient::new(settings, tokens.clone(), metrics)?;
        Ok(Self {
            default,
            default_tokens: tokens,
            identity,
            by_principal: Mutex::new(HashMap::new()),
        })
    }

    /// Returns the worker's own client.
    pub fn default_client(&self) -> &ArmClient {
        &self.default
    }

    /// Gets one token with the worker's own credential, to check that it works.
    pub async fn check_token(&self) -> Result<(), CredentialError> {
        self.default_tokens.token().await.map(drop)
    }

    /// Returns the client for a job: the pool's service principal when `aci_credentials`
    /// has all three fields, the worker's own client when it has none, and an error when
    /// only some are set.
    pub fn for_job(&self, credentials: &AciCredentials) -> Result<ArmClient, AzureError> {
        let fields = ClientSecretFields::from_parts(
            "the work pool's aci_credentials block",
            credentials.tenant_id.clone(),
            credentials.client_id.clone(),
            credentials
                .client_secret
                .as_ref()
                .map(|s| s.expose().to_owned()),
        )?;
        let Some(fields) = fields else {
            return Ok(self.default.clone());
        };
        let key = (fields.tenant_id.clone(), fields.client_id.clone());
        let mut clients = self.by_principal.lock().expect("client map lock poisoned");
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let identity = IdentitySettings {
            auth: AzureAuth::ClientSecret,
            pool_client_secret: Some(fields),
            ..self.identity.clone()
        };
        let tokens = Arc::new(token_provider(&identity, &Environment::from_process())?);
        let client = self.default.with_tokens(tokens);
        clients.insert(key, client.clone());
        Ok(client)
    }
}
