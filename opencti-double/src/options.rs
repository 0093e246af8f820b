//! How a double presents itself: [`DoubleOptions`], the broker names of its connector
//! ([`QueueNames`], §4.1), the platform [`Version`] that selects the schema, and fresh
//! UUIDs for connector ids and tokens.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::DEFAULT_VERSION;

/// How a double presents itself.
#[derive(Clone, Debug)]
pub struct DoubleOptions {
    /// Platform version answered by `about { version }`; selects the schema (§0).
    pub version: String,
    /// `rabbitmq:queue_prefix` of the platform: `Some("tst")` names the queues
    /// `tst_listen_<id>`…; `None` (or `Some("")`) means no prefix.
    pub queue_prefix: Option<String>,
    /// The connector's `OPENCTI_TOKEN`, the only bearer the double accepts.
    pub token: String,
    /// The connector id (`CONNECTOR_ID`); the queue names derive from it.
    pub connector_id: String,
    /// The broker; `None`: the one of `IVRE_TEST_AMQP_URL` (a test's private RabbitMQ node
    /// otherwise).
    pub amqp_url: Option<String>,
}

impl Default for DoubleOptions {
    fn default() -> Self {
        DoubleOptions {
            version: DEFAULT_VERSION.to_owned(),
            queue_prefix: Some("tst".to_owned()),
            token: format!("test-token-{}", fresh_uuid()),
            connector_id: fresh_uuid(),
            amqp_url: None,
        }
    }
}

/// The broker names of one connector, as `registerConnector` returns them (prefixed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueNames {
    pub listen: String,
    pub listen_routing: String,
    pub listen_exchange: String,
    pub push: String,
    pub push_routing: String,
    pub push_exchange: String,
}

impl QueueNames {
    /// The platform's naming (§4.1): `prefix` is `rabbitmq:queue_prefix`, without the `_`.
    pub fn for_connector(prefix: Option<&str>, connector_id: &str) -> QueueNames {
        let p = queue_prefix(prefix);
        QueueNames {
            listen: format!("{p}listen_{connector_id}"),
            listen_routing: format!("{p}listen_routing_{connector_id}"),
            listen_exchange: format!("{p}amqp.connector.exchange"),
            push: format!("{p}push_{connector_id}"),
            push_routing: format!("{p}push_routing_{connector_id}"),
            push_exchange: format!("{p}amqp.worker.exchange"),
        }
    }
}

/// `<prefix>_`, or nothing (the platform's `queue_prefix ? prefix + '_' : ''`).
pub(crate) fn queue_prefix(prefix: Option<&str>) -> String {
    match prefix {
        Some(p) if !p.is_empty() => format!("{p}_"),
        _ => String::new(),
    }
}

/// Platform versions compare numerically: 6.4.11 < 6.8.17 < 7.261026.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version(u64, u64, u64);

impl Version {
    pub(crate) fn parse(text: &str) -> Version {
        let mut parts = text.split('.').map(|p| {
            p.parse::<u64>()
                .unwrap_or_else(|_| panic!("platform double: bad version {text:?}"))
        });
        Version(
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        )
    }

    pub(crate) fn at_least(self, text: &str) -> bool {
        self >= Version::parse(text)
    }
}

/// A random-looking UUIDv4 string (no `rand` needed: std's randomly keyed hasher).
pub(crate) fn fresh_uuid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        hasher.write_usize(i);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}
