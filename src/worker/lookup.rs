//! Block documents and variables for template rendering, read from the Prefect API.

use crate::prefect::{PrefectClient, models};
use crate::template::{BlockDocument, LookupError, TemplateLookup};

/// The Prefect client as a [`TemplateLookup`].
#[derive(Debug, Clone)]
pub struct PrefectLookup {
    client: PrefectClient,
}

impl PrefectLookup {
    pub fn new(client: PrefectClient) -> Self {
        Self { client }
    }
}

fn convert(document: models::BlockDocument) -> BlockDocument {
    let secret_fields = document.secret_fields();
    BlockDocument {
        id: document.id.to_string(),
        name: document.name.clone().unwrap_or_default(),
        block_type_slug: document.block_type_slug().unwrap_or_default().to_owned(),
        data: document.data,
        secret_fields,
    }
}

impl TemplateLookup for PrefectLookup {
    async fn block_document(&self, id: &str) -> Result<Option<BlockDocument>, LookupError> {
        let Ok(id) = uuid::Uuid::parse_str(id) else {
            // A `$ref` to something that is not a UUID cannot name a block document.
            return Ok(None);
        };
        let document = self.client.read_block_document(id).await?;
        Ok(document.map(convert))
    }

    async fn block_document_by_name(
        &self,
        block_type_slug: &str,
        name: &str,
    ) -> Result<Option<BlockDocument>, LookupError> {
        let document = self
            .client
            .read_block_document_by_name(block_type_slug, name)
            .await?;
        Ok(document.map(convert))
    }

    async fn variable(&self, name: &str) -> Result<Option<serde_json::Value>, LookupError> {
        let variable = self.client.read_variable_by_name(name).await?;
        Ok(variable.map(|v| v.value))
    }
}
