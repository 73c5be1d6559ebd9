//! Access to the block documents and variables that templates reference.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;

use serde_json::Value;

use crate::template::pyrepr::python_str;
use crate::template::secrets::SecretValues;

/// Error type of a failed lookup, kept as the `#[source]` of [`super::TemplateError::Lookup`].
pub type LookupError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Block type slug of Prefect's `Secret` block; every value of such a block is a secret.
pub const SECRET_BLOCK_TYPE: &str = "secret";

/// A block document as read with `include_secrets=true`.
#[derive(Clone, PartialEq)]
pub struct BlockDocument {
    /// Block document id (a UUID on a real server).
    pub id: String,
    /// Block document name, unique within its block type.
    pub name: String,
    /// Slug of the block type, for example `docker-registry-credentials`.
    pub block_type_slug: String,
    /// The block's data, secrets in clear text.
    pub data: Value,
    /// The block schema's `secret_fields`: dotted paths, where `*` matches every key.
    pub secret_fields: Vec<String>,
}

impl fmt::Debug for BlockDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockDocument")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("block_type_slug", &self.block_type_slug)
            .field("data", &"<hidden>")
            .field("secret_fields", &self.secret_fields)
            .finish()
    }
}

impl BlockDocument {
    /// Collects the secret values of this block: every scalar under a secret field, or
    /// every scalar of the data for a `secret` block. Non-strings are recorded in the text
    /// form an embedded placeholder gives them.
    pub fn secret_values(&self) -> SecretValues {
        let mut secrets = SecretValues::default();
        if self.block_type_slug == SECRET_BLOCK_TYPE {
            collect_scalars(&self.data, &mut secrets);
            return secrets;
        }
        for field in &self.secret_fields {
            let segments: Vec<&str> = field.split('.').collect();
            collect_under(&self.data, &segments, &mut secrets);
        }
        secrets
    }
}

fn collect_under(value: &Value, segments: &[&str], secrets: &mut SecretValues) {
    let Some((first, rest)) = segments.split_first() else {
        collect_scalars(value, secrets);
        return;
    };
    let Value::Object(map) = value else { return };
    if *first == "*" {
        for item in map.values() {
            collect_under(item, rest, secrets);
        }
    } else if let Some(item) = map.get(*first) {
        collect_under(item, rest, secrets);
    }
}

fn collect_scalars(value: &Value, secrets: &mut SecretValues) {
    match value {
        Value::Object(map) => map.values().for_each(|item| collect_scalars(item, secrets)),
        Value::Array(items) => items.iter().for_each(|item| collect_scalars(item, secrets)),
        Value::Null => {}
        scalar => secrets.insert(python_str(scalar)),
    }
}

/// Reads the block documents and variables a template references. The Prefect API client
/// implements it; `Ok(None)` means the server returned 404.
pub trait TemplateLookup: Sync {
    /// Reads a block document by id (`GET /block_documents/{id}?include_secrets=true`).
    fn block_document(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<BlockDocument>, LookupError>> + Send;

    /// Reads a block document by type slug and name
    /// (`GET /block_types/slug/{slug}/block_documents/name/{name}?include_secrets=true`).
    fn block_document_by_name(
        &self,
        block_type_slug: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<BlockDocument>, LookupError>> + Send;

    /// Reads a variable's value by name (`GET /variables/name/{name}`).
    fn variable(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Value>, LookupError>> + Send;
}

/// A [`TemplateLookup`] over fixed data, for tests and for rendering without a server.
#[derive(Debug, Default, Clone)]
pub struct InMemoryLookup {
    blocks: Vec<BlockDocument>,
    variables: HashMap<String, Value>,
}

impl InMemoryLookup {
    /// Adds a block document.
    pub fn with_block(mut self, block: BlockDocument) -> Self {
        self.blocks.push(block);
        self
    }

    /// Adds a variable.
    pub fn with_variable(mut self, name: impl Into<String>, value: Value) -> Self {
        self.variables.insert(name.into(), value);
        self
    }
}

impl TemplateLookup for InMemoryLookup {
    async fn block_document(&self, id: &str) -> Result<Option<BlockDocument>, LookupError> {
        Ok(self.blocks.iter().find(|block| block.id == id).cloned())
    }

    async fn block_document_by_name(
        &self,
        block_type_slug: &str,
        name: &str,
    ) -> Result<Option<BlockDocument>, LookupError> {
        let found = self
            .blocks
            .iter()
            .find(|block| block.block_type_slug == block_type_slug && block.name == name);
        Ok(found.cloned())
    }

    async fn variable(&self, name: &str) -> Result<Option<Value>, LookupError> {
        Ok(self.variables.get(name).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn block(slug: &str, data: Value, secret_fields: &[&str]) -> BlockDocument {
        BlockDocument {
            id: "id".into(),
            name: "n".into(),
            block_type_slug: slug.into(),
            data,
            secret_fields: secret_fields.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn secret_fields_select_values() {
        let doc = block(
            "docker-registry-credentials",
            json!({"username": "u", "password": "pw", "nested": {"a": "x", "b": "y"}}),
            &["password", "nested.*"],
        );
        let secrets = doc.secret_values();
        assert!(secrets.appears_in("pw"));
        assert!(secrets.appears_in("x"));
        assert!(secrets.appears_in("y"));
        assert!(!secrets.appears_in("u"));
    }

    #[test]
    fn secret_block_values_all_secret() {
        let doc = block(SECRET_BLOCK_TYPE, json!({"value": {"k": 12}}), &[]);
        assert!(doc.secret_values().appears_in("12"));
        assert!(!format!("{doc:?}").contains("12"));
    }
}
