//! IVRE's MongoDB as a live source: the database IVRE 0.9.20 writes, queried with IVRE's
//! own filters ([`filters`]) and read back as relaxed Extended JSON, which
//! [`crate::ivre::parse_value`] brings to IVRE's export form.
//!
//! - URL: as IVRE takes it (`mongodb:///ivre`, `?colname_hosts=…`): see `url.rs`;
//! - collections: `hosts` (scans), `views`, `passive`;
//! - [`MongoSource::search`] for the cache-miss fallback, [`MongoSource::stream`] with
//!   [`MongoSource::since_filter`] for full and incremental pulls.
//!
//! Errors never carry credentials: URLs are printed redacted and driver messages have
//! the URL's password removed.
//!
//! IVRE forces index hints on some passive searches (`get_hint`); they are not sent here,
//! as a hint on a missing index fails the query; the server's planner picks the same
//! indexes for these filters.

pub mod filters;
#[doc(hidden)]
pub mod url;

pub use filters::{filter, passive_asn_filter};

use crate::ivre::RecordKind;
use crate::net::NetSettings;
use futures_util::{Stream, StreamExt};
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::ErrorKind;
use mongodb::options::{ClientOptions, Tls};
use mongodb::{Client, Collection, Database};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Server selection (and connection) timeout unless the URL sets
/// `serverSelectionTimeoutMS` / `connectTimeoutMS`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Documents per batch of a [`MongoSource::stream`] cursor.
const STREAM_BATCH_SIZE: u32 = 1000;

/// Why the MongoDB source failed. No message contains credentials.
#[derive(Debug, thiserror::Error)]
pub enum MongoError {
    /// The URL is not an IVRE MongoDB URL, or the driver rejects one of its options.
    #[error("invalid MongoDB URL {url}: {reason}")]
    Url { url: String, reason: String },
    /// No server answered (`ping`) within the timeout, or authentication failed.
    #[error("cannot connect to MongoDB at {url}: {reason}")]
    Connect { url: String, reason: String },
    /// A query or a cursor failed.
    #[error("MongoDB query on {url} (collection `{collection}`) failed: {reason}")]
    Query {
        url: String,
        collection: String,
        reason: String,
    },
    /// The documents of one search passed [`MAX_SEARCH_BYTES`].
    #[error("MongoDB query on {url} (collection `{collection}`) returned more than {limit} bytes of documents: not read further")]
    TooLarge {
        url: String,
        collection: String,
        limit: usize,
    },
}

/// Most bytes of BSON documents one [`MongoSource::search`] keeps (each document is at
/// most 16 MiB, MongoDB's own limit; [`MongoSource::stream`] keeps one batch at a time).
pub const MAX_SEARCH_BYTES: usize = 256 * 1024 * 1024;

/// A connection to IVRE's MongoDB database. Cheap to clone (the driver's client is
/// shared).
#[derive(Clone)]
pub struct MongoSource {
    db: Database,
    /// The URL, redacted.
    display: String,
    hosts: String,
    views: String,
    passive: String,
    /// IVRE's `maxtime` URL parameter, applied to [`MongoSource::search`].
    max_time: Option<Duration>,
    secrets: Arc<[String]>,
    /// [`MAX_SEARCH_BYTES`] (smaller in tests).
    max_search: usize,
}

impl fmt::Debug for MongoSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoSource")
            .field("url", &self.display)
            .field("database", &self.db.name())
            .field("hosts", &self.hosts)
            .field("views", &self.views)
            .field("passive", &self.passive)
            .finish_non_exhaustive()
    }
}

/// `SSL_CERT_FILE` as the driver's CA file, when TLS is on and the URL names none.
fn with_ca_file(options: &mut ClientOptions, net: &NetSettings) {
    if let (Some(Tls::Enabled(tls)), Some(ca)) = (&mut options.tls, net.mongo_ca_file()) {
        tls.ca_file_path.get_or_insert_with(|| ca.to_owned());
    }
}

impl MongoSource {
    /// Connects to the MongoDB of an IVRE URL and checks a server answers, within
    /// [`DEFAULT_TIMEOUT`].
    pub async fn connect(url: &str) -> Result<MongoSource, MongoError> {
        MongoSource::connect_with_timeout(url, DEFAULT_TIMEOUT).await
    }

    /// [`MongoSource::connect`] with another server selection / connection timeout
    /// (the URL's `serverSelectionTimeoutMS` / `connectTimeoutMS` win when present).
    pub async fn connect_with_timeout(
        url: &str,
        timeout: Duration,
    ) -> Result<MongoSource, MongoError> {
        MongoSource::connect_with(url, timeout, &NetSettings::default()).await
    }

    /// [`MongoSource::connect_with_timeout`], with the CA file of `net` (`SSL_CERT_FILE`)
    /// when the URL uses TLS and names no CA file of its own.
    pub async fn connect_with(
        url: &str,
        timeout: Duration,
        net: &NetSettings,
    ) -> Result<MongoSource, MongoError> {
        let (source, bound) = MongoSource::build(url, timeout, net).await?;
        // The driver connects lazily: ping, bounded even if a server accepts and stalls.
        let ping = source.db.run_command(doc! { "ping": 1 });
        let reason = match tokio::time::timeout(bound, ping).await {
            Ok(Ok(_)) => {
                tracing::debug!(url = %source.display, database = %source.db.name(), "connected to MongoDB");
                return Ok(source);
            }
            Ok(Err(e)) => driver_reason(&e, &source.secrets),
            Err(_) => format!("no answer to ping in {bound:?}"),
        };
        Err(MongoError::Connect {
            url: source.display,
            reason,
        })
    }

    /// The source of `url`, not connected yet (the driver connects on first use), and
    /// the longest a first command may wait for a server.
    async fn build(
        url: &str,
        timeout: Duration,
        net: &NetSettings,
    ) -> Result<(MongoSource, Duration), MongoError> {
        let parsed = url::parse(url).map_err(|reason| MongoError::Url {
            url: url::display(url),
            reason,
        })?;
        let reason = |e: mongodb::error::Error| driver_reason(&e, &parsed.secrets);
        let mut options = ClientOptions::parse(&parsed.driver_url)
            .await
            .map_err(|e| match *e.kind {
                ErrorKind::DnsResolve { .. } => MongoError::Connect {
                    url: parsed.display.clone(),
                    reason: reason(e),
                },
                _ => MongoError::Url {
                    url: parsed.display.clone(),
                    reason: reason(e),
                },
            })?;
        with_ca_file(&mut options, net);
        let selection = *options.server_selection_timeout.get_or_insert(timeout);
        let connection = *options.connect_timeout.get_or_insert(timeout);
        options
            .app_name
            .get_or_insert_with(|| "ivre-connector".to_owned());
        let client = Client::with_options(options).map_err(|e| MongoError::Connect {
            url: parsed.display.clone(),
            reason: reason(e),
        })?;
        let source = MongoSource {
            db: client.database(&parsed.database),
            display: parsed.display,
            hosts: parsed.hosts,
            views: parsed.views,
            passive: parsed.passive,
            max_time: parsed.max_time,
            secrets: parsed.secrets.into(),
            max_search: MAX_SEARCH_BYTES,
        };
        let bound = selection.saturating_add(connection).saturating_mul(2);
        Ok((source, bound))
    }

    /// The URL, credentials hidden.
    pub fn url(&self) -> &str {
        &self.display
    }

    /// The database name (the URL's path, `ivre` by default).
    pub fn database_name(&self) -> &str {
        self.db.name()
    }

    /// The collection holding `kind` records.
    pub fn collection_name(&self, kind: RecordKind) -> &str {
        match kind {
            RecordKind::Scan => &self.hosts,
            RecordKind::View => &self.views,
            RecordKind::Passive => &self.passive,
        }
    }

    /// The documents of `kind` matching `filter` (at most `limit`; a limit of 0 or less
    /// returns nothing), each as relaxed Extended JSON ([`document_to_json`]).
    pub async fn search(
        &self,
        kind: RecordKind,
        filter: Document,
        limit: Option<i64>,
    ) -> Result<Vec<Value>, MongoError> {
        let collection = self.collection(kind);
        let mut find = collection.find(filter);
        match limit {
            Some(n) if n <= 0 => return Ok(Vec::new()),
            Some(n) => find = find.limit(n),
            None => {}
        }
        if let Some(max_time) = self.max_time {
            find = find.max_time(max_time);
        }
        let mut cursor = find.await.map_err(|e| self.query_error(kind, e))?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while cursor
            .advance()
            .await
            .map_err(|e| self.query_error(kind, e))?
        {
            bytes += cursor.current().as_bytes().len();
            if bytes > self.max_search {
                return Err(MongoError::TooLarge {
                    url: self.display.clone(),
                    collection: self.collection_name(kind).to_owned(),
                    limit: self.max_search,
                });
            }
            let doc: Document = cursor
                .deserialize_current()
                .map_err(|e| self.query_error(kind, e))?;
            out.push(document_to_json(doc));
        }
        Ok(out)
    }

    /// The same source with another limit on one search's documents, in bytes.
    pub fn with_max_search_bytes(mut self, limit: usize) -> MongoSource {
        self.max_search = limit;
        self
    }

    /// Every document of `kind` matching `filter`, read through a cursor in batches of
    /// 1000 (memory stays bounded whatever the collection's size). IVRE's `maxtime` is
    /// not applied: it would cut long pulls.
    pub async fn stream(
        &self,
        kind: RecordKind,
        filter: Document,
    ) -> Result<impl Stream<Item = Result<Value, MongoError>> + Send + Unpin + 'static, MongoError>
    {
        let cursor = self
            .collection(kind)
            .find(filter)
            .batch_size(STREAM_BATCH_SIZE)
            .await
            .map_err(|e| self.query_error(kind, e))?;
        let this = self.clone();
        Ok(cursor.map(move |item| {
            item.map(document_to_json)
                .map_err(|e| this.query_error(kind, e))
        }))
    }

    /// Records changed after `since`, for incremental pulls: hosts and views whose
    /// `endtime`, passive records whose `lastseen` is later (BSON dates, millisecond
    /// precision).
    pub fn since_filter(kind: RecordKind, since: chrono::DateTime<chrono::Utc>) -> Document {
        let date = mongodb::bson::DateTime::from_millis(since.timestamp_millis());
        let field = match kind {
            RecordKind::Scan | RecordKind::View => "endtime",
            RecordKind::Passive => "lastseen",
        };
        doc! { field: { "$gt": date } }
    }

    fn collection(&self, kind: RecordKind) -> Collection<Document> {
        self.db.collection(self.collection_name(kind))
    }

    fn query_error(&self, kind: RecordKind, e: mongodb::error::Error) -> MongoError {
        MongoError::Query {
            url: self.display.clone(),
            collection: self.collection_name(kind).to_owned(),
            reason: driver_reason(&e, &self.secrets),
        }
    }
}

/// A driver error's message (its kind; labels and empty fields left out), without the
/// URL's secrets.
fn driver_reason(e: &mongodb::error::Error, secrets: &[String]) -> String {
    url::scrub(&e.kind.to_string(), secrets)
}

/// A stored document as relaxed Extended JSON (`{"$date": …}`, `{"$binary": …}`,
/// `{"$oid": …}`, plain numbers), the form [`crate::ivre::parse_value`] normalizes.
pub fn document_to_json(doc: Document) -> Value {
    Bson::Document(doc).into_relaxed_extjson()
}

#[cfg(test)]
mod tests;
