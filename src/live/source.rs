//! One interface over IVRE's MongoDB and web API: the connector's searches, per purpose.

use super::mongo::{filters, MongoError, MongoSource};
use super::web::{WebError, WebSource};
use crate::index::Query;
use crate::ivre::RecordKind;
use crate::net::NetSettings;
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::time::Duration;

/// Why a live search failed.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Web(#[from] WebError),
    #[error(transparent)]
    Mongo(#[from] MongoError),
    #[error("unsupported IVRE URL {0} (expected mongodb://… or http(s)://…)")]
    Unsupported(String),
    #[error("{0}")]
    NotAvailable(String),
}

impl LiveError {
    pub fn is_rate_limit(&self) -> Option<Option<Duration>> {
        match self {
            LiveError::Web(WebError::RateLimited { retry_after, .. }) => Some(*retry_after),
            _ => None,
        }
    }
}

/// A live IVRE database.
#[derive(Debug, Clone)]
pub enum LiveSource {
    Web(WebSource),
    Mongo(MongoSource),
}

impl LiveSource {
    /// From an IVRE URL (`IVRE_DB_URL*`), through the proxies and with the CA
    /// certificates of `net`.
    pub async fn connect(
        url: &str,
        timeout: Duration,
        net: &NetSettings,
    ) -> Result<LiveSource, LiveError> {
        if url.starts_with("http://") || url.starts_with("https://") {
            Ok(LiveSource::Web(WebSource::with_net(url, timeout, net)?))
        } else if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
            Ok(LiveSource::Mongo(
                MongoSource::connect_with(url, timeout, net).await?,
            ))
        } else {
            Err(LiveError::Unsupported(crate::logging::redact_url(url)))
        }
    }

    /// Records of `kind` matching `query` in any IVRE form (normalized by the caller).
    pub async fn search(
        &self,
        kind: RecordKind,
        query: &Query,
        limit: usize,
    ) -> Result<Vec<Value>, LiveError> {
        match self {
            LiveSource::Web(web) => Ok(web.search(kind, query, Some(limit)).await?),
            LiveSource::Mongo(mongo) => {
                let Some(filter) = filters::filter(kind, query) else {
                    return Err(LiveError::NotAvailable(format!(
                        "the {kind} search for this observable needs address ranges IVRE's MongoDB backend keeps in CSV files; it is answered from the snapshot only"
                    )));
                };
                Ok(mongo
                    .search(kind, filter, Some(i64::try_from(limit).unwrap_or(i64::MAX)))
                    .await?)
            }
        }
    }

    /// IVRE's `infos_byip` for an address, when this source serves the data purpose.
    pub async fn ipdata(&self, ip: IpAddr) -> Result<Option<Map<String, Value>>, LiveError> {
        match self {
            LiveSource::Web(web) => Ok(web.ipdata(ip).await?),
            LiveSource::Mongo(_) => Ok(None),
        }
    }

    /// The URL without credentials.
    pub fn shown(&self) -> String {
        match self {
            LiveSource::Web(w) => w.shown_url().to_owned(),
            LiveSource::Mongo(m) => crate::logging::redact_url(m.url()),
        }
    }
}
