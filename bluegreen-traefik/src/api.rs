//! A small client of Traefik's API: the routers and services it is serving right now.

use std::collections::BTreeMap;
use std::time::Duration;

use bluegreen_core::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::render::WeightedRef;

/// A router as `/api/http/routers/<name>` reports it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RouterInfo {
    #[serde(default)]
    pub(crate) entry_points: Vec<String>,
    #[serde(default)]
    pub(crate) rule: String,
    #[serde(default)]
    pub(crate) service: String,
    #[serde(default)]
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) error: Vec<String>,
}

/// A service as `/api/http/services/<name>` reports it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServiceInfo {
    #[serde(default)]
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) error: Vec<String>,
    #[serde(default)]
    pub(crate) weighted: Option<WeightedInfo>,
    #[serde(default)]
    pub(crate) load_balancer: Option<LoadBalancerInfo>,
    /// Server URL → `"UP"` / `"DOWN"`.
    #[serde(default)]
    pub(crate) server_status: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WeightedInfo {
    #[serde(default)]
    pub(crate) services: Vec<WeightedRef>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct LoadBalancerInfo {
    #[serde(default)]
    pub(crate) servers: Vec<ServerInfo>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ServerInfo {
    pub(crate) url: String,
}

impl ServiceInfo {
    pub(crate) fn enabled(&self) -> bool {
        self.status == "enabled"
    }

    pub(crate) fn server_urls(&self) -> Vec<&str> {
        self.load_balancer
            .iter()
            .flat_map(|lb| lb.servers.iter().map(|s| s.url.as_str()))
            .collect()
    }

    pub(crate) fn is_up(&self, url: &str) -> bool {
        self.server_status.get(url).is_some_and(|s| s == "UP")
    }
}

impl RouterInfo {
    pub(crate) fn enabled(&self) -> bool {
        self.status == "enabled"
    }
}

/// Traefik's API at one base URL.
#[derive(Debug, Clone)]
pub(crate) struct TraefikApi {
    client: reqwest::Client,
    base: String,
}

impl TraefikApi {
    pub(crate) fn new(base: &str, timeout: Duration) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .build()
            .map_err(|e| Error::Backend {
                backend: "traefik".into(),
                message: "cannot build an HTTP client".into(),
                temporary: false,
                source: Some(Box::new(e)),
            })?;
        Ok(TraefikApi {
            client,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// Router `name` (`app@file`); `None` when Traefik does not know it.
    pub(crate) async fn router(&self, name: &str) -> Result<Option<RouterInfo>> {
        self.get(&format!("/api/http/routers/{name}")).await
    }

    /// Service `name` (`app@file`, `app-blue@docker`); `None` when Traefik does not know it.
    pub(crate) async fn service(&self, name: &str) -> Result<Option<ServiceInfo>> {
        self.get(&format!("/api/http/services/{name}")).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>> {
        let url = format!("{}{path}", self.base);
        let response = self.client.get(&url).send().await.map_err(|e| Error::Backend {
            backend: "traefik".into(),
            message: format!("Traefik's API at {} is unreachable", self.base),
            temporary: true,
            source: Some(Box::new(e)),
        })?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = response.bytes().await.map_err(|e| Error::Backend {
            backend: "traefik".into(),
            message: format!("reading {url}"),
            temporary: true,
            source: Some(Box::new(e)),
        })?;
        if !status.is_success() {
            return Err(Error::backend(
                "traefik",
                format!("GET {url}: {status}: {}", String::from_utf8_lossy(&body)),
                status.is_server_error(),
            ));
        }
        serde_json::from_slice(&body).map(Some).map_err(|e| Error::Backend {
            backend: "traefik".into(),
            message: format!("GET {url}: unexpected answer"),
            temporary: false,
            source: Some(Box::new(e)),
        })
    }
}
