//! The bearer-token seam the ARM client calls, with a static token for tests and emulators
//! and a wrapper around an azure_identity credential.

use std::fmt;
use std::sync::{Arc, Mutex};

use azure_core::credentials::{Secret, TokenCredential};
use futures::future::BoxFuture;

/// Errors from choosing, building or using a credential. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// Some but not all client secret fields were given.
    #[error(
        "incomplete client secret credential in {origin}: missing {}; set all of \
         tenant id, client id and client secret, or none",
        missing.join(", ")
    )]
    IncompleteClientSecret {
        origin: &'static str,
        missing: Vec<&'static str>,
    },
    /// A required setting of the chosen credential is missing.
    #[error("{credential} needs {variable}; set it or choose another --azure-auth")]
    MissingSetting {
        credential: &'static str,
        variable: &'static str,
    },
    /// azure_identity rejected the credential's settings.
    #[error("failed to set up {credential}: {source}")]
    Build {
        credential: &'static str,
        #[source]
        source: azure_core::Error,
    },
    /// The credential could not get a token.
    #[error("{credential} failed to get an ARM token: {source}")]
    Token {
        credential: &'static str,
        #[source]
        source: azure_core::Error,
    },
    /// The HTTP client for Entra calls could not be built.
    #[error(transparent)]
    Endpoint(#[from] super::cloud::EndpointError),
}

/// Returns bearer tokens for ARM requests.
pub trait TokenProvider: Send + Sync + fmt::Debug {
    /// Returns a token valid for ARM; implementations cache and refresh it themselves.
    fn token(&self) -> BoxFuture<'_, Result<Secret, CredentialError>>;

    /// Drops any cached token, so the next [`TokenProvider::token`] fetches a new one.
    /// The client calls this once after ARM rejected a token with 401.
    fn invalidate(&self) {}
}

/// A fixed token, for emulators and tests.
#[derive(Debug, Clone)]
pub struct StaticToken(pub Secret);

impl StaticToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(Secret::new(token.into()))
    }
}

impl TokenProvider for StaticToken {
    fn token(&self) -> BoxFuture<'_, Result<Secret, CredentialError>> {
        let token = self.0.clone();
        Box::pin(async move { Ok(token) })
    }
}

/// Builds an azure_identity credential; called again to drop its token cache.
pub type CredentialFactory =
    Box<dyn Fn() -> Result<Arc<dyn TokenCredential>, CredentialError> + Send + Sync>;

/// An azure_identity credential asked for one scope.
///
/// azure_identity 1.0 caches tokens inside each credential and has no forced refresh, so
/// [`TokenProvider::invalidate`] builds a new credential from the factory.
pub struct AzureTokenProvider {
    name: &'static str,
    scope: String,
    factory: CredentialFactory,
    current: Mutex<Arc<dyn TokenCredential>>,
}

impl AzureTokenProvider {
    /// Builds the first credential from `factory`. `name` is the azure_identity type name,
    /// used in errors; `scope` is the ARM scope such as `https://management.azure.com/.default`.
    pub fn new(
        name: &'static str,
        scope: String,
        factory: CredentialFactory,
    ) -> Result<Self, CredentialError> {
        let current = Mutex::new(factory()?);
        Ok(Self {
            name,
            scope,
            factory,
            current,
        })
    }

    /// Returns the azure_identity credential type in use.
    pub fn credential_name(&self) -> &'static str {
        self.name
    }
}

impl fmt::Debug for AzureTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureTokenProvider")
            .field("credential", &self.name)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenProvider for AzureTokenProvider {
    fn token(&self) -> BoxFuture<'_, Result<Secret, CredentialError>> {
        let credential = self
            .current
            .lock()
            .expect("credential lock poisoned")
            .clone();
        Box::pin(async move {
            let token = credential
                .get_token(&[self.scope.as_str()], None)
                .await
                .map_err(|source| CredentialError::Token {
                    credential: self.name,
                    source,
                })?;
            Ok(token.token)
        })
    }

    fn invalidate(&self) {
        match (self.factory)() {
            Ok(fresh) => *self.current.lock().expect("credential lock poisoned") = fresh,
            Err(error) => tracing::warn!(
                credential = self.name,
                %error,
                "failed to rebuild the credential; keeping the cached one"
            ),
        }
    }
}
