//! The GraphQL client: `POST <OPENCTI_URL>/graphql` with the token, a User-Agent, the
//! custom headers and, per call, the draft context (`docs/opencti-protocol.md` §1).

use crate::config::daemon::Settings;
use serde_json::{json, Value};
use std::time::Duration;

/// Why a GraphQL call failed. Never carries the token.
#[derive(Debug, thiserror::Error)]
pub enum GraphqlError {
    #[error("OpenCTI is unreachable at {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("OpenCTI answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("OpenCTI refused `{operation}`: {name}: {message}")]
    Graphql {
        operation: String,
        name: String,
        message: String,
    },
    #[error("unexpected answer to `{operation}`: {reason}")]
    Decode { operation: String, reason: String },
}

impl GraphqlError {
    /// Worth retrying later (the platform or the network is down), as opposed to a refusal.
    pub fn is_transient(&self) -> bool {
        match self {
            GraphqlError::Transport { .. } => true,
            GraphqlError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// A GraphQL client for one platform.
#[derive(Clone)]
pub struct GraphqlClient {
    http: reqwest::Client,
    endpoint: String,
    token: String,
    headers: Vec<(String, String)>,
}

impl std::fmt::Debug for GraphqlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphqlClient")
            .field("endpoint", &crate::redact::url(&self.endpoint))
            .finish_non_exhaustive()
    }
}

impl GraphqlClient {
    pub fn new(settings: &Settings) -> Result<GraphqlClient, GraphqlError> {
        let shown = crate::redact::url(&settings.opencti_url);
        if !settings.ssl_verify
            && settings
                .opencti_url
                .to_ascii_lowercase()
                .starts_with("https://")
        {
            crate::logging::warn_unfiltered(
                settings.json_logging,
                &settings.connector_name,
                &format!(
                    "{verify} is false: the platform's TLS certificate is not verified, so anyone on the path can read the token and the data; set {verify}=true (and {ca} or {certs} for a private CA)",
                    verify = crate::config::table::OPENCTI_SSL_VERIFY.env,
                    ca = crate::config::table::OPENCTI_SSL_CA.env,
                    certs = crate::config::table::SSL_CERT_FILE.env,
                ),
                &[("url", shown.as_str())],
            );
        }
        let http = crate::net::opencti_client_builder(&settings.net)
            .map_err(|e| GraphqlError::Transport {
                url: shown.clone(),
                reason: e.to_string(),
            })?
            .user_agent(concat!("ivre-connector/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(!settings.ssl_verify)
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| GraphqlError::Transport {
                url: shown.clone(),
                reason: e.to_string(),
            })?;
        Ok(GraphqlClient {
            http,
            endpoint: format!("{}/graphql", settings.opencti_url.trim_end_matches('/')),
            token: settings.opencti_token.clone(),
            headers: settings.custom_headers.clone(),
        })
    }

    /// Runs `query` and returns its `data`; `draft_id` sets `opencti-draft-id`.
    pub async fn query(
        &self,
        operation: &str,
        query: &str,
        variables: Value,
        draft_id: Option<&str>,
    ) -> Result<Value, GraphqlError> {
        let mut request = self
            .http
            .post(&self.endpoint)
            .bearer_auth(&self.token)
            .json(&json!({"query": query, "variables": variables}));
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(draft) = draft_id.filter(|d| !d.is_empty()) {
            request = request.header("opencti-draft-id", draft);
        }
        let response = request.send().await.map_err(|e| GraphqlError::Transport {
            url: crate::redact::url(&self.endpoint),
            reason: e.without_url().to_string(),
        })?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| GraphqlError::Transport {
            url: crate::redact::url(&self.endpoint),
            reason: e.without_url().to_string(),
        })?;
        if status != 200 {
            return Err(GraphqlError::Status {
                status,
                body: body.chars().take(500).collect(),
            });
        }
        let value: Value = serde_json::from_str(&body).map_err(|e| GraphqlError::Decode {
            operation: operation.to_owned(),
            reason: e.to_string(),
        })?;
        if let Some(first) = value
            .get("errors")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            let name = first
                .get("name")
                .or_else(|| first.pointer("/extensions/code"))
                .and_then(Value::as_str)
                .unwrap_or("error")
                .to_owned();
            let message = first
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            return Err(GraphqlError::Graphql {
                operation: operation.to_owned(),
                name,
                message,
            });
        }
        Ok(value.get("data").cloned().unwrap_or(Value::Null))
    }
}
