//! The broker side of the platform (§4.1): the exchanges, queues and bindings
//! `rabbitmq.js` declares for a connector, their deletion, and the connection parameters
//! `registerConnector` returns, read from the AMQP URL.

use lapin::options::{
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
    QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldArray, FieldTable};
use lapin::{Channel, ExchangeKind};

use crate::options::QueueNames;

/// Exchanges, queues and bindings as `rabbitmq.js` declares them; the queues are purged
/// in case a previous run with the same id left messages behind.
pub(crate) async fn declare_topology(channel: &Channel, names: &QueueNames, connector_id: &str) {
    for exchange in [&names.listen_exchange, &names.push_exchange] {
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("platform double: cannot declare exchange {exchange}: {e}"));
    }
    let queues = [
        (&names.listen, &names.listen_exchange, &names.listen_routing),
        (&names.push, &names.push_exchange, &names.push_routing),
    ];
    for (queue, exchange, routing) in queues {
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                queue_arguments(queue, connector_id),
            )
            .await
            .unwrap_or_else(|e| panic!("platform double: cannot declare queue {queue}: {e}"));
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                routing.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("platform double: cannot bind {queue} to {exchange}: {e}"));
        channel
            .queue_purge(queue.as_str().into(), QueuePurgeOptions::default())
            .await
            .unwrap_or_else(|e| panic!("platform double: cannot purge {queue}: {e}"));
    }
}

/// `{name, config: {id, type, scope}, "x-queue-type": "classic"}`.
fn queue_arguments(queue: &str, connector_id: &str) -> FieldTable {
    let mut config = FieldTable::default();
    config.insert("id".into(), AMQPValue::LongString(connector_id.into()));
    config.insert(
        "type".into(),
        AMQPValue::LongString("INTERNAL_ENRICHMENT".into()),
    );
    config.insert(
        "scope".into(),
        AMQPValue::FieldArray(FieldArray::from(Vec::new())),
    );
    let mut arguments = FieldTable::default();
    arguments.insert("name".into(), AMQPValue::LongString(queue.into()));
    arguments.insert("config".into(), AMQPValue::FieldTable(config));
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("classic".into()),
    );
    arguments
}

pub(crate) async fn delete_queues(channel: &Channel, names: &QueueNames) {
    for queue in [&names.listen, &names.push] {
        if let Err(e) = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
        {
            eprintln!("platform double: cannot delete queue {queue}: {e}");
        }
    }
}

/// The connection parameters `registerConnector` returns, read from the AMQP URL.
#[derive(Clone, Debug)]
pub(crate) struct Broker {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) vhost: String,
    pub(crate) user: String,
    pub(crate) pass: String,
    pub(crate) use_ssl: bool,
}

impl Broker {
    /// `amqp[s]://user:pass@host:port/vhost` (percent-encoded parts; defaults as RabbitMQ's).
    pub(crate) fn parse(url: &str) -> Broker {
        let fail =
            |why: &str| -> ! { panic!("platform double: cannot read the AMQP URL {url}: {why}") };
        let (scheme, rest) = url.split_once("://").unwrap_or_else(|| fail("no scheme"));
        let use_ssl = match scheme {
            "amqp" => false,
            "amqps" => true,
            _ => fail("scheme is not amqp or amqps"),
        };
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, vhost) = match rest.split_once('/') {
            Some((a, v)) if !v.is_empty() => (a, percent_decode(v)),
            Some((a, _)) => (a, "/".to_owned()),
            None => (rest, "/".to_owned()),
        };
        let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
        let (user, pass) = match userinfo.split_once(':') {
            Some((u, p)) => (percent_decode(u), percent_decode(p)),
            None if userinfo.is_empty() => ("guest".to_owned(), "guest".to_owned()),
            None => (percent_decode(userinfo), String::new()),
        };
        let default_port = if use_ssl { 5671 } else { 5672 };
        let port_of = |p: &str| p.parse::<u16>().unwrap_or_else(|_| fail("bad port"));
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            let (h, after) = bracketed
                .split_once(']')
                .unwrap_or_else(|| fail("unclosed IPv6 host"));
            (h, after.strip_prefix(':').map_or(default_port, port_of))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, port_of(p)),
                None => (hostport, default_port),
            }
        };
        Broker {
            host: host.to_owned(),
            port,
            vhost,
            user,
            pass,
            use_ssl,
        }
    }
}

/// A percent-encoded part of the URL, decoded (invalid escapes kept as they are).
fn percent_decode(part: &str) -> String {
    percent_encoding::percent_decode_str(part)
        .decode_utf8_lossy()
        .into_owned()
}
