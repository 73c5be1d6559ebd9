//! Reads of deployments, flows, block documents and variables.

use reqwest::Method;
use uuid::Uuid;

use super::client::{Call, PrefectClient};
use super::error::PrefectError;
use super::models::{BlockDocument, Deployment, Flow, Variable};
use super::work_pools::not_found_as_none;

impl PrefectClient {
    /// Reads a deployment; `None` if it was deleted.
    pub async fn read_deployment(&self, id: Uuid) -> Result<Option<Deployment>, PrefectError> {
        let id = id.to_string();
        let call = Call::new("read_deployment", Method::GET, &["deployments", &id]);
        not_found_as_none(self.json(call).await)
    }

    /// Reads a deployment by flow name and deployment name; `None` if there is none.
    pub async fn read_deployment_by_name(
        &self,
        flow_name: &str,
        deployment_name: &str,
    ) -> Result<Option<Deployment>, PrefectError> {
        let segments = ["deployments", "name", flow_name, deployment_name];
        let call = Call::new("read_deployment_by_name", Method::GET, &segments);
        not_found_as_none(self.json(call).await)
    }

    /// Returns every deployment of a work pool, fetching pages of 200 until a short one.
    pub async fn filter_deployments_by_pool(
        &self,
        pool: &str,
    ) -> Result<Vec<Deployment>, PrefectError> {
        const PAGE: usize = 200;
        let mut deployments: Vec<Deployment> = Vec::new();
        loop {
            let body = serde_json::json!({
                "work_pools": { "name": { "any_": [pool] } },
                "limit": PAGE,
                "offset": deployments.len(),
            });
            let call = Call::new(
                "filter_deployments",
                Method::POST,
                &["deployments", "filter"],
            )
            .json(&body)?;
            let page: Vec<Deployment> = self.json(call).await?;
            let short = page.len() < PAGE;
            deployments.extend(page);
            if short {
                return Ok(deployments);
            }
        }
    }

    /// Reads a flow by id.
    pub async fn read_flow(&self, id: Uuid) -> Result<Flow, PrefectError> {
        let id = id.to_string();
        self.json(Call::new("read_flow", Method::GET, &["flows", &id]))
            .await
    }

    /// Reads a block document with its secret values in clear; `None` if it does not exist.
    pub async fn read_block_document(
        &self,
        id: Uuid,
    ) -> Result<Option<BlockDocument>, PrefectError> {
        let id = id.to_string();
        let call = Call::new(
            "read_block_document",
            Method::GET,
            &["block_documents", &id],
        )
        .query("include_secrets", "true");
        not_found_as_none(self.json(call).await)
    }

    /// Reads the block document `name` of block type `slug` with its secret values in clear;
    /// `None` if it does not exist.
    pub async fn read_block_document_by_name(
        &self,
        slug: &str,
        name: &str,
    ) -> Result<Option<BlockDocument>, PrefectError> {
        let segments = ["block_types", "slug", slug, "block_documents", "name", name];
        let call = Call::new("read_block_document_by_name", Method::GET, &segments)
            .query("include_secrets", "true");
        not_found_as_none(self.json(call).await)
    }

    /// Reads a variable by name; `None` if it does not exist.
    pub async fn read_variable_by_name(
        &self,
        name: &str,
    ) -> Result<Option<Variable>, PrefectError> {
        let call = Call::new(
            "read_variable_by_name",
            Method::GET,
            &["variables", "name", name],
        );
        not_found_as_none(self.json(call).await)
    }
}
