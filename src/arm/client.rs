//! `ArmClient`: container group operations and the resource group read.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Url;
use serde::de::DeserializeOwned;

use super::credential::TokenProvider;
use super::error::ArmError;
use super::limiter::{Limiter, LimiterSettings};
use super::models::ContainerGroup;
use super::operations::ArmOperation;
use super::response::{
    ContainerGroupResponse, ContainerGroupSummary, ListPage, Logs, ResourceGroup,
};
use super::retry::{Call, Reply, RetrySettings};
use crate::metrics::Metrics;

/// The api-version the container group models follow.
pub const DEFAULT_API_VERSION: &str = "2026-05-01";

/// Container group api-versions whose shapes match the models, newest first. 2025-09-01 is
/// there for clouds that lag behind.
pub const SUPPORTED_API_VERSIONS: &[&str] = &["2026-05-01", "2025-09-01"];

/// api-version of `Microsoft.Resources` for the resource group read; it is versioned apart
/// from Container Instances.
pub const RESOURCE_GROUPS_API_VERSION: &str = "2021-04-01";

/// Timeout of one request, from sending it to reading the whole body. ARM usually responds
/// to a container group PUT within a few seconds (an estimate), so 30 s leaves room for a
/// slow region.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Limiter key for requests not tied to a region (the resource group read).
const GLOBAL_REGION: &str = "global";

/// Settings of the ARM client.
#[derive(Debug, Clone)]
pub struct ArmSettings {
    /// The ARM endpoint, already checked by [`super::cloud::check_arm_endpoint`].
    pub endpoint: Url,
    /// Container group api-version, one of [`SUPPORTED_API_VERSIONS`].
    pub api_version: String,
    /// Timeout of each request attempt.
    pub request_timeout: Duration,
    pub retry: RetrySettings,
    pub limits: LimiterSettings,
    /// PEM bundle of extra CA certificates, usually the value of `SSL_CERT_FILE`.
    pub ca_bundle: Option<PathBuf>,
}

impl ArmSettings {
    /// Returns settings for the endpoint of `endpoints`, checked by
    /// [`super::cloud::check_arm_endpoint`], trusting the CA bundle named by `SSL_CERT_FILE`
    /// in `env`, and the defaults for everything else.
    pub fn from_environment(
        endpoints: &super::cloud::EndpointSettings,
        env: &super::auth::Environment,
    ) -> Result<Self, ArmError> {
        let mut settings = Self::new(endpoints.arm_endpoint()?);
        settings.ca_bundle = env.get(super::cloud::SSL_CERT_FILE).map(PathBuf::from);
        Ok(settings)
    }

    /// Returns settings with the defaults for everything but the endpoint.
    pub fn new(endpoint: Url) -> Self {
        Self {
            endpoint,
            api_version: DEFAULT_API_VERSION.to_owned(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            retry: RetrySettings::default(),
            limits: LimiterSettings::default(),
            ca_bundle: None,
        }
    }
}

/// The subscription and resource group an operation works in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceGroupRef {
    pub subscription_id: String,
    pub resource_group: String,
}

impl ResourceGroupRef {
    pub fn new(subscription_id: impl Into<String>, resource_group: impl Into<String>) -> Self {
        Self {
            subscription_id: subscription_id.into(),
            resource_group: resource_group.into(),
        }
    }

    fn cache_key(&self) -> (String, String) {
        (
            self.subscription_id.to_ascii_lowercase(),
            self.resource_group.to_ascii_lowercase(),
        )
    }
}

/// Options of the container logs operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Only the last `tail` lines; all (up to ARM's 4 MB) when `None`.
    pub tail: Option<u32>,
    /// Prefix each line with its timestamp.
    pub timestamps: bool,
}

/// Result of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// 200: the group is deleted.
    Deleted,
    /// 202: ARM deletes the group in the background.
    Accepted,
    /// 204 or 404: there was no such group.
    AlreadyGone,
}

/// The ARM client. Clones share the HTTP connection pool, the limiter and the caches.
#[derive(Clone, Debug)]
pub struct ArmClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) settings: ArmSettings,
    pub(crate) tokens: Arc<dyn TokenProvider>,
    pub(crate) limiter: Arc<Limiter>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) ratelimit_remaining: Mutex<BTreeMap<String, i64>>,
    regions: Mutex<HashMap<(String, String), String>>,
}

impl ArmClient {
    /// Builds a client; fails on an unsupported api-version or an unreadable CA bundle.
    pub fn new(
        settings: ArmSettings,
        tokens: Arc<dyn TokenProvider>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ArmError> {
        if !SUPPORTED_API_VERSIONS.contains(&settings.api_version.as_str()) {
            return Err(ArmError::UnsupportedApiVersion {
                value: settings.api_version.clone(),
                supported: SUPPORTED_API_VERSIONS.join(", "),
            });
        }
        let http = super::cloud::http_client(settings.ca_bundle.as_deref())?;
        let limiter = Arc::new(Limiter::new(settings.limits.clone()));
        let inner = Inner {
            http,
            settings,
            tokens,
            limiter,
            metrics,
            ratelimit_remaining: Mutex::new(BTreeMap::new()),
            regions: Mutex::new(HashMap::new()),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Returns a client that sends `tokens` (another credential) but shares this client's
    /// connection pool and limiter, so ARM's per-subscription and per-region limits are
    /// counted once across credentials.
    pub fn with_tokens(&self, tokens: Arc<dyn TokenProvider>) -> Self {
        let inner = Inner {
            http: self.inner.http.clone(),
            settings: self.inner.settings.clone(),
            tokens,
            limiter: self.inner.limiter.clone(),
            metrics: self.inner.metrics.clone(),
            ratelimit_remaining: Mutex::new(BTreeMap::new()),
            regions: Mutex::new(HashMap::new()),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Returns the last value of each `x-ms-ratelimit-remaining-*` header, keyed by the part after
    /// that prefix.
    pub fn ratelimit_remaining(&self) -> BTreeMap<String, i64> {
        self.inner
            .ratelimit_remaining
            .lock()
            .expect("ratelimit lock poisoned")
            .clone()
    }

    /// Creates the container group `name`, or updates it when it exists (PUT). ARM returns
    /// 201 for a create and 200 for an update, before the group is provisioned.
    pub async fn create_or_update(
        &self,
        scope: &ResourceGroupRef,
        name: &str,
        group: &ContainerGroup,
    ) -> Result<ContainerGroupResponse, ArmError> {
        let operation = ArmOperation::CreateOrUpdate;
        let body = serde_json::to_vec(group).map_err(|source| ArmError::Decode {
            operation: operation.label(),
            source,
        })?;
        let url = self.group_url(scope, name, &[]);
        let reply = self.send(operation, scope, url, Some(body), &[]).await?;
        decode(operation, &reply)
    }

    /// Reads a container group with its instance view; `None` when it does not exist.
    pub async fn get(
        &self,
        scope: &ResourceGroupRef,
        name: &str,
    ) -> Result<Option<ContainerGroupResponse>, ArmError> {
        let url = self.group_url(scope, name, &[]);
        let reply = self
            .send(ArmOperation::Get, scope, url, None, &[404])
            .await?;
        if reply.status.as_u16() == 404 {
            return Ok(None);
        }
        decode(ArmOperation::Get, &reply).map(Some)
    }

    /// Lists the container groups of a resource group, following `nextLink` to the last
    /// page. List results carry no instance view.
    pub async fn list(
        &self,
        scope: &ResourceGroupRef,
    ) -> Result<Vec<ContainerGroupSummary>, ArmError> {
        let operation = ArmOperation::List;
        let mut url = self.groups_url(scope, &[], &[]);
        let mut groups = Vec::new();
        loop {
            let reply = self.send(operation, scope, url, None, &[]).await?;
            let page: ListPage<ContainerGroupSummary> = decode(operation, &reply)?;
            groups.extend(page.value);
            match page.next_link.filter(|link| !link.is_empty()) {
                Some(link) => url = self.next_link_url(&link)?,
                None => return Ok(groups),
            }
        }
    }

    /// Deletes a container group; a group that does not exist counts as deleted.
    pub async fn delete(
        &self,
        scope: &ResourceGroupRef,
        name: &str,
    ) -> Result<DeleteOutcome, ArmError> {
        let url = self.group_url(scope, name, &[]);
        let reply = self
            .send(ArmOperation::Delete, scope, url, None, &[404])
            .await?;
        Ok(match reply.status.as_u16() {
            202 => DeleteOutcome::Accepted,
            204 | 404 => DeleteOutcome::AlreadyGone,
            _ => DeleteOutcome::Deleted,
        })
    }

    /// Stops all containers of a group and keeps the group (ARM returns 204).
    pub async fn stop(&self, scope: &ResourceGroupRef, name: &str) -> Result<(), ArmError> {
        let url = self.group_url(scope, name, &["stop"]);
        self.send(ArmOperation::Stop, scope, url, Some(Vec::new()), &[])
            .await?;
        Ok(())
    }

    /// Returns the log of one container. ARM keeps at most 4 MB for a running container
    /// and 16 KB or 1,000 lines for a stopped one.
    pub async fn container_logs(
        &self,
        scope: &ResourceGroupRef,
        name: &str,
        container: &str,
        options: LogOptions,
    ) -> Result<String, ArmError> {
        let operation = ArmOperation::ContainerLogs;
        let tail = options.tail.map(|t| t.to_string());
        let mut query = vec![(
            "timestamps",
            if options.timestamps { "true" } else { "false" },
        )];
        if let Some(tail) = &tail {
            query.push(("tail", tail));
        }
        let mut url = self.group_url(scope, name, &["containers", container, "logs"]);
        url.query_pairs_mut().extend_pairs(query);
        let reply = self.send(operation, scope, url, None, &[]).await?;
        decode::<Logs>(operation, &reply).map(|logs| logs.content)
    }

    /// Reads a resource group, for its location, and caches that as the region of the
    /// resource group for the limiter.
    pub async fn resource_group(
        &self,
        scope: &ResourceGroupRef,
    ) -> Result<ResourceGroup, ArmError> {
        let operation = ArmOperation::GetResourceGroup;
        let mut url = self.inner.settings.endpoint.clone();
        url.path_segments_mut()
            .expect("ARM endpoint is a base URL")
            .pop_if_empty()
            .extend(["subscriptions", &scope.subscription_id])
            .extend(["resourceGroups", &scope.resource_group]);
        url.query_pairs_mut()
            .append_pair("api-version", RESOURCE_GROUPS_API_VERSION);
        let call = Call {
            operation,
            url,
            body: None,
            subscription: &scope.subscription_id,
            region: GLOBAL_REGION,
            accept: &[],
        };
        let reply = self.inner.send(&call).await?;
        let resource_group: ResourceGroup = decode(operation, &reply)?;
        let region = resource_group.location.to_ascii_lowercase();
        self.lock_regions().insert(scope.cache_key(), region);
        Ok(resource_group)
    }

    /// Returns the resource group's region, read once and then cached for the client's lifetime.
    pub async fn region(&self, scope: &ResourceGroupRef) -> Result<String, ArmError> {
        if let Some(region) = self.lock_regions().get(&scope.cache_key()) {
            return Ok(region.clone());
        }
        let location = self.resource_group(scope).await?.location;
        Ok(location.to_ascii_lowercase())
    }

    fn lock_regions(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), String>> {
        self.inner.regions.lock().expect("region lock poisoned")
    }

    async fn send(
        &self,
        operation: ArmOperation,
        scope: &ResourceGroupRef,
        url: Url,
        body: Option<Vec<u8>>,
        accept: &[u16],
    ) -> Result<Reply, ArmError> {
        let region = self.region(scope).await?;
        let call = Call {
            operation,
            url,
            body,
            subscription: &scope.subscription_id,
            region: &region,
            accept,
        };
        self.inner.send(&call).await
    }

    /// `…/containerGroups/{name}/{rest…}?api-version=…`, with every segment escaped.
    fn group_url(&self, scope: &ResourceGroupRef, name: &str, rest: &[&str]) -> Url {
        self.groups_url(scope, &[name], rest)
    }

    fn groups_url(&self, scope: &ResourceGroupRef, name: &[&str], rest: &[&str]) -> Url {
        let mut url = self.inner.settings.endpoint.clone();
        url.path_segments_mut()
            .expect("ARM endpoint is a base URL")
            .pop_if_empty()
            .extend(["subscriptions", &scope.subscription_id, "resourceGroups"])
            .extend([scope.resource_group.as_str(), "providers"])
            .extend(["Microsoft.ContainerInstance", "containerGroups"])
            .extend(name)
            .extend(rest);
        url.query_pairs_mut()
            .append_pair("api-version", &self.inner.settings.api_version);
        url
    }

    /// Parses a `nextLink`, which is used verbatim, after checking that it has the origin of
    /// the ARM endpoint so the bearer token goes nowhere else.
    fn next_link_url(&self, link: &str) -> Result<Url, ArmError> {
        let url = Url::parse(link).map_err(|_| ArmError::ForeignNextLink {
            origin: "an invalid URL".into(),
        })?;
        if url.origin() != self.inner.settings.endpoint.origin() {
            return Err(ArmError::ForeignNextLink {
                origin: url.origin().ascii_serialization(),
            });
        }
        Ok(url)
    }
}

fn decode<T: DeserializeOwned>(operation: ArmOperation, reply: &Reply) -> Result<T, ArmError> {
    serde_json::from_slice(&reply.body).map_err(|source| ArmError::Decode {
        operation: operation.label(),
        source,
    })
}
