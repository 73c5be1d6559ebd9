//! Logs, block documents and variables.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// One log record for `POST /logs/`. `level` is a Python logging level (20 = INFO).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogCreate {
    pub name: String,
    pub level: u32,
    pub message: String,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    pub flow_run_id: Option<Uuid>,
    #[serde(default)]
    pub task_run_id: Option<Uuid>,
    /// Set only for worker-scoped logs on Prefect Cloud; 2.x servers reject the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<Uuid>,
}

impl LogCreate {
    /// Builds a record for `flow_run_id` stamped with the current time.
    pub fn for_flow_run(flow_run_id: Uuid, name: &str, level: u32, message: &str) -> Self {
        Self {
            name: name.to_owned(),
            level,
            message: message.to_owned(),
            timestamp: OffsetDateTime::now_utc(),
            flow_run_id: Some(flow_run_id),
            task_run_id: None,
            worker_id: None,
        }
    }
}

/// The block type of a block document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockType {
    pub id: Option<Uuid>,
    pub name: String,
    pub slug: String,
}

/// The schema of a block document; `fields` is a JSON schema with `secret_fields`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockSchema {
    pub id: Option<Uuid>,
    #[serde(default)]
    pub fields: serde_json::Value,
}

/// A block document. With `include_secrets=true`, `data` contains the secret values in clear:
/// never log it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockDocument {
    pub id: Uuid,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
    #[serde(default)]
    pub block_type: Option<BlockType>,
    #[serde(default)]
    pub block_type_name: Option<String>,
    #[serde(default)]
    pub block_schema: Option<BlockSchema>,
}

impl BlockDocument {
    /// Returns the block type slug, for example `azure-container-instance-credentials`.
    pub fn block_type_slug(&self) -> Option<&str> {
        self.block_type.as_ref().map(|t| t.slug.as_str())
    }

    /// Dotted paths of the secret fields, from the schema's `secret_fields`, without
    /// duplicates (Prefect 3.9.1 lists `value` twice for the `secret` block type).
    pub fn secret_fields(&self) -> Vec<String> {
        let Some(schema) = &self.block_schema else {
            return Vec::new();
        };
        let mut fields: Vec<String> = Vec::new();
        let listed = schema.fields["secret_fields"]
            .as_array()
            .into_iter()
            .flatten();
        for field in listed.filter_map(|field| field.as_str()) {
            if !fields.iter().any(|known| known == field) {
                fields.push(field.to_owned());
            }
        }
        fields
    }
}

impl std::fmt::Debug for BlockDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockDocument")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("block_type", &self.block_type_slug())
            .field("data", &"***")
            .finish()
    }
}

/// A Prefect variable. On 3.x `value` is any JSON value; on 2.x it is always a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variable {
    pub id: Option<Uuid>,
    pub name: String,
    pub value: serde_json::Value,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_document_debug_hides_data() {
        let doc: BlockDocument = serde_json::from_value(serde_json::json!({
            "id": Uuid::nil(),
            "name": "creds",
            "data": {"client_secret": "s3cr3t"},
            "block_type": {"id": null, "name": "ACI", "slug": "azure-container-instance-credentials"},
            "block_schema": {"id": null, "fields": {"secret_fields": ["client_secret"]}},
        }))
        .unwrap();
        let debug = format!("{doc:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert_eq!(doc.secret_fields(), ["client_secret"]);
        assert_eq!(
            doc.block_type_slug(),
            Some("azure-container-instance-credentials")
        );
    }
}
