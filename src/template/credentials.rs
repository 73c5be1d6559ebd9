//! The `aci_credentials` block of a job configuration.

use serde_json::{Map, Value};

use crate::template::error::TemplateError;
use crate::template::fields::{Fields, prefixed};
use crate::template::render::type_name;
use crate::template::secrets::SecretString;

/// The `aci_credentials` block: all three service-principal fields, or none (then the
/// default Azure credential chain is used).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AciCredentials {
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    pub client_secret: Option<SecretString>,
    /// Extra options for the credential; their meaning is up to the credential builder.
    pub credential_kwargs: Map<String, Value>,
}

/// Reads `aci_credentials`; a partial service principal is rejected.
pub(crate) fn read_credentials(fields: &Fields<'_>) -> Result<AciCredentials, TemplateError> {
    let Some(block) = fields.object("aci_credentials")? else {
        return Ok(AciCredentials::default());
    };
    let inner = Fields::new(block);
    let secret = match inner.get("client_secret") {
        None => None,
        Some(Value::String(text)) => Some(SecretString::new(text.clone())),
        Some(other) => {
            return Err(TemplateError::InvalidVariable {
                variable: "aci_credentials.client_secret".into(),
                value: type_name(other).to_string(),
                expected: "a string".into(),
            });
        }
    };
    let credentials = AciCredentials {
        client_id: inner
            .string("client_id")
            .map_err(|e| prefixed("aci_credentials", e))?,
        tenant_id: inner
            .string("tenant_id")
            .map_err(|e| prefixed("aci_credentials", e))?,
        client_secret: secret,
        credential_kwargs: inner
            .object("credential_kwargs")
            .map_err(|e| prefixed("aci_credentials", e))?
            .cloned()
            .unwrap_or_default(),
    };
    let set = [
        credentials.client_id.is_some(),
        credentials.tenant_id.is_some(),
        credentials.client_secret.is_some(),
    ];
    if set.iter().any(|s| *s) && !set.iter().all(|s| *s) {
        return Err(TemplateError::InvalidVariable {
            variable: "aci_credentials".into(),
            value: format!(
                "client_id {}, tenant_id {}, client_secret {}",
                presence(set[0]),
                presence(set[1]),
                presence(set[2])
            ),
            expected: "all three of client_id, tenant_id and client_secret, or none of them \
                       to use the default Azure credential chain"
                .into(),
        });
    }
    Ok(credentials)
}

fn presence(set: bool) -> &'static str {
    if set { "set" } else { "missing" }
}
