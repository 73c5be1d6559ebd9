//! Choosing and building the Azure credential: managed identity, client secret, workload
//! identity or the Azure CLI.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};

use super::cloud::{AzureCloud, SSL_CERT_FILE, http_client};
use super::credential::{AzureTokenProvider, CredentialError, CredentialFactory};

/// Credential kind the worker uses for ARM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AzureAuth {
    /// Chosen from the environment in the order that [`choose_auth`] documents.
    #[default]
    Auto,
    ManagedIdentity,
    ClientSecret,
    WorkloadIdentity,
    Cli,
}

/// A user-assigned managed identity, by one of its ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagedIdentityId {
    ClientId(String),
    ObjectId(String),
    /// The identity's ARM resource id. App Service style endpoints (`IDENTITY_ENDPOINT`)
    /// do not accept it in azure_identity 1.0.
    ResourceId(String),
}

/// A service principal's client secret, from `AZURE_*` variables or a work pool's
/// `aci_credentials` block. `Debug` masks the secret.
#[derive(Debug, Clone)]
pub struct ClientSecretFields {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Secret,
}

impl ClientSecretFields {
    /// Takes all three fields or none; `origin` names where they came from, for the error.
    pub fn from_parts(
        origin: &'static str,
        tenant_id: Option<String>,
        client_id: Option<String>,
        client_secret: Option<String>,
    ) -> Result<Option<Self>, CredentialError> {
        let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
        let parts = [
            ("tenant id", present(&tenant_id)),
            ("client id", present(&client_id)),
            ("client secret", present(&client_secret)),
        ];
        let missing: Vec<_> = parts.iter().filter(|(_, p)| !p).map(|(n, _)| *n).collect();
        match (missing.len(), tenant_id, client_id, client_secret) {
            (0, Some(tenant_id), Some(client_id), Some(secret)) => Ok(Some(Self {
                tenant_id,
                client_id,
                client_secret: Secret::new(secret),
            })),
            (3, ..) => Ok(None),
            _ => Err(CredentialError::IncompleteClientSecret { origin, missing }),
        }
    }
}

/// Environment variables, passed in so the choice can be tested without touching the
/// process environment. Empty values count as unset. `Debug` prints only the names,
/// because values such as `AZURE_CLIENT_SECRET` are secrets.
#[derive(Clone, Default)]
pub struct Environment(HashMap<String, String>);

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.0.keys().collect();
        names.sort();
        f.debug_tuple("Environment").field(&names).finish()
    }
}

impl Environment {
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// True when `program` is an entry of a `PATH` directory.
    fn has_program(&self, program: &str) -> bool {
        let Some(path) = self.get("PATH") else {
            return false;
        };
        std::env::split_paths(path).any(|dir| dir.join(program).is_file())
    }
}

/// Identity settings of the worker.
#[derive(Debug, Clone, Default)]
pub struct IdentitySettings {
    pub auth: AzureAuth,
    pub cloud: AzureCloud,
    /// A user-assigned managed identity; when unset, `AZURE_CLIENT_ID` selects one, and
    /// without it the system-assigned identity is used.
    pub managed_identity: Option<ManagedIdentityId>,
    /// The work pool's `aci_credentials` block, already checked with
    /// [`ClientSecretFields::from_parts`].
    pub pool_client_secret: Option<ClientSecretFields>,
}

/// The credential [`choose_auth`] resolved, with what it needs.
#[derive(Debug, Clone)]
pub enum Credential {
    ManagedIdentity(Option<ManagedIdentityId>),
    ClientSecret(ClientSecretFields),
    WorkloadIdentity {
        tenant_id: String,
        client_id: String,
        token_file: PathBuf,
    },
    Cli {
        tenant_id: Option<String>,
    },
}

impl Credential {
    /// Returns the azure_identity type name, used in logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ManagedIdentity(_) => "ManagedIdentityCredential",
            Self::ClientSecret(_) => "ClientSecretCredential",
            Self::WorkloadIdentity { .. } => "WorkloadIdentityCredential",
            Self::Cli { .. } => "AzureCliCredential",
        }
    }
}

/// Resolves `settings.auth` against `env` and returns the credential with the reason.
///
/// `Auto` takes the first of these that applies:
/// 1. the pool's `aci_credentials` (client secret);
/// 2. `AZURE_CLIENT_SECRET` set, with `AZURE_TENANT_ID` and `AZURE_CLIENT_ID` (client
///    secret, and an error when one of the two is missing);
/// 3. `AZURE_FEDERATED_TOKEN_FILE` set (workload identity);
/// 4. `IDENTITY_ENDPOINT` or `MSI_ENDPOINT` set, or a user-assigned identity configured
///    (managed identity);
/// 5. `az` on `PATH` (Azure CLI);
/// 6. otherwise managed identity through IMDS, which a container in Azure has.
pub fn choose_auth(
    settings: &IdentitySettings,
    env: &Environment,
) -> Result<(Credential, &'static str), CredentialError> {
    let env_secret = || {
        ClientSecretFields::from_parts(
            "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET",
            env.get("AZURE_TENANT_ID").map(str::to_owned),
            env.get("AZURE_CLIENT_ID").map(str::to_owned),
            env.get("AZURE_CLIENT_SECRET").map(str::to_owned),
        )
    };
    let client_secret = || match &settings.pool_client_secret {
        Some(fields) => Ok(Some(fields.clone())),
        None => env_secret(),
    };
    let managed = || Credential::ManagedIdentity(managed_identity_id(settings, env));
    match settings.auth {
        AzureAuth::ManagedIdentity => Ok((managed(), "--azure-auth managed-identity")),
        AzureAuth::ClientSecret => match client_secret()? {
            Some(fields) => Ok((
                Credential::ClientSecret(fields),
                "--azure-auth client-secret",
            )),
            None => Err(CredentialError::MissingSetting {
                credential: "ClientSecretCredential",
                variable: "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET",
            }),
        },
        AzureAuth::WorkloadIdentity => Ok((workload(env)?, "--azure-auth workload-identity")),
        AzureAuth::Cli => Ok((cli(env), "--azure-auth cli")),
        AzureAuth::Auto => {
            if let Some(fields) = &settings.pool_client_secret {
                return Ok((
                    Credential::ClientSecret(fields.clone()),
                    "aci_credentials is set",
                ));
            }
            if env.get("AZURE_CLIENT_SECRET").is_some() {
                // from_parts returns None only when all three are unset.
                let fields = env_secret()?.expect("AZURE_CLIENT_SECRET is set");
                return Ok((
                    Credential::ClientSecret(fields),
                    "AZURE_CLIENT_SECRET is set",
                ));
            }
            if env.get("AZURE_FEDERATED_TOKEN_FILE").is_some() {
                return Ok((workload(env)?, "AZURE_FEDERATED_TOKEN_FILE is set"));
            }
            if env.get("IDENTITY_ENDPOINT").is_some() || env.get("MSI_ENDPOINT").is_some() {
                return Ok((managed(), "a managed identity endpoint variable is set"));
            }
            if settings.managed_identity.is_some() {
                return Ok((managed(), "a user-assigned managed identity is configured"));
            }
            if env.has_program("az") {
                return Ok((cli(env), "az is on PATH"));
            }
            Ok((
                managed(),
                "no other credential found; assuming IMDS in Azure",
            ))
        }
    }
}

fn managed_identity_id(
    settings: &IdentitySettings,
    env: &Environment,
) -> Option<ManagedIdentityId> {
    settings.managed_identity.clone().or_else(|| {
        env.get("AZURE_CLIENT_ID")
            .map(|id| ManagedIdentityId::ClientId(id.to_owned()))
    })
}

fn workload(env: &Environment) -> Result<Credential, CredentialError> {
    let required = |variable: &'static str| {
        env.get(variable)
            .map(str::to_owned)
            .ok_or(CredentialError::MissingSetting {
                credential: "WorkloadIdentityCredential",
                variable,
            })
    };
    Ok(Credential::WorkloadIdentity {
        tenant_id: required("AZURE_TENANT_ID")?,
        client_id: required("AZURE_CLIENT_ID")?,
        token_file: PathBuf::from(required("AZURE_FEDERATED_TOKEN_FILE")?),
    })
}

fn cli(env: &Environment) -> Credential {
    Credential::Cli {
        tenant_id: env.get("AZURE_TENANT_ID").map(str::to_owned),
    }
}

/// Chooses the credential, logs which and why, and wraps it for the ARM client.
///
/// Entra calls go to `AZURE_AUTHORITY_HOST` when set, else to the cloud's authority host,
/// and trust the extra CA certificates of `SSL_CERT_FILE`. The managed identity credential
/// reads `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` from the process environment itself.
pub fn token_provider(
    settings: &IdentitySettings,
    env: &Environment,
) -> Result<AzureTokenProvider, CredentialError> {
    let (credential, reason) = choose_auth(settings, env)?;
    tracing::info!(
        credential = credential.name(),
        reason,
        "chose the Azure credential"
    );
    let name = credential.name();
    let authority = env
        .get("AZURE_AUTHORITY_HOST")
        .unwrap_or(settings.cloud.authority_host())
        .to_owned();
    let ca_bundle = env.get(SSL_CERT_FILE).map(PathBuf::from);
    let factory: CredentialFactory = Box::new(move || {
        let options = client_options(&authority, ca_bundle.as_deref())?;
        build(&credential, options)
    });
    AzureTokenProvider::new(name, settings.cloud.token_scope(), factory)
}

fn client_options(
    authority: &str,
    ca_bundle: Option<&Path>,
) -> Result<ClientOptions, CredentialError> {
    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = authority.to_owned();
    Ok(ClientOptions {
        transport: Some(Transport::new(Arc::new(http_client(ca_bundle)?))),
        cloud: Some(Arc::new(CloudConfiguration::from(cloud))),
        ..ClientOptions::default()
    })
}

fn build(
    credential: &Credential,
    client_options: ClientOptions,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    let name = credential.name();
    let built: azure_core::Result<Arc<dyn TokenCredential>> = match credential {
        Credential::ManagedIdentity(id) => {
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: id.clone().map(user_assigned_id),
                client_options,
            };
            ManagedIdentityCredential::new(Some(options)).map(|c| c as Arc<dyn TokenCredential>)
        }
        Credential::ClientSecret(fields) => ClientSecretCredential::new(
            &fields.tenant_id,
            fields.client_id.clone(),
            fields.client_secret.clone(),
            Some(ClientSecretCredentialOptions { client_options }),
        )
        .map(|c| c as Arc<dyn TokenCredential>),
        Credential::WorkloadIdentity {
            tenant_id,
            client_id,
            token_file,
        } => {
            let options = WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions { client_options },
                client_id: Some(client_id.clone()),
                tenant_id: Some(tenant_id.clone()),
                token_file_path: Some(token_file.clone()),
            };
            WorkloadIdentityCredential::new(Some(options)).map(|c| c as Arc<dyn TokenCredential>)
        }
        Credential::Cli { tenant_id } => {
            let options = AzureCliCredentialOptions {
                tenant_id: tenant_id.clone(),
                ..Default::default()
            };
            AzureCliCredential::new(Some(options)).map(|c| c as Arc<dyn TokenCredential>)
        }
    };
    built.map_err(|source| CredentialError::Build {
        credential: name,
        source,
    })
}

fn user_assigned_id(id: ManagedIdentityId) -> UserAssignedId {
    match id {
        ManagedIdentityId::ClientId(v) => UserAssignedId::ClientId(v),
        ManagedIdentityId::ObjectId(v) => UserAssignedId::ObjectId(v),
        ManagedIdentityId::ResourceId(v) => UserAssignedId::ResourceId(v),
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
