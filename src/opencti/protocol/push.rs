//! Sending bundles to the platform's workers (`ARCHITECTURE.md`, "Pushing bundles"):
//! messages on the push exchange, persistent, with publisher confirms; a nacked or failed
//! publish is retried (on a fresh connection after a failure). A bundle goes as one
//! message (the worker splits it) or as pycti's pieces, one object each: pieces that do
//! not depend on each other are in flight together, and a piece is published only once
//! the pieces it depends on were confirmed.

use super::api::Connection as BrokerConnection;
use crate::config::daemon::MqOverrides;
use base64::Engine;
use futures_util::future::join_all;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::{json, Value};
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;
use tokio::sync::Mutex;

/// Why bundles could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("cannot publish to RabbitMQ at {endpoint}: {reason}")]
    Broker { endpoint: String, reason: String },
    #[error("RabbitMQ refused message {sequence} (nack) {attempts} times")]
    Refused { sequence: usize, attempts: u32 },
}

/// The broker URI: what registration returned, with the `MQ_*` overrides.
pub fn broker_uri(connection: &BrokerConnection, mq: &MqOverrides) -> AMQPUri {
    let use_ssl = mq.use_ssl.unwrap_or(connection.use_ssl);
    AMQPUri {
        scheme: if use_ssl {
            AMQPScheme::AMQPS
        } else {
            AMQPScheme::AMQP
        },
        authority: AMQPAuthority {
            userinfo: AMQPUserInfo {
                username: mq.user.clone().unwrap_or_else(|| connection.user.clone()),
                password: mq.pass.clone().unwrap_or_else(|| connection.pass.clone()),
            },
            host: mq.host.clone().unwrap_or_else(|| connection.host.clone()),
            port: mq.port.unwrap_or(connection.port),
        },
        vhost: mq.vhost.clone().unwrap_or_else(|| connection.vhost.clone()),
        query: AMQPQueryString {
            heartbeat: Some(10),
            connection_timeout: Some(30_000),
            ..AMQPQueryString::default()
        },
    }
}

/// `host:port/vhost` for messages (no credentials).
pub fn endpoint(uri: &AMQPUri) -> String {
    format!(
        "{}://{}:{}/{}",
        uri.scheme, uri.authority.host, uri.authority.port, uri.vhost
    )
}

/// What a push message says besides the bundle (`docs/opencti-protocol.md` §6.3).
#[derive(Debug, Clone, Default)]
pub struct PushContext {
    pub applicant_id: Option<String>,
    pub work_id: Option<String>,
    pub draft_id: Option<String>,
    /// The platform reads `no_split` (7.260515 on): say `false` (the worker may split).
    pub no_split_field: bool,
}

/// The largest push message sent whole: RabbitMQ 4's default `max_message_size`
/// (16 MiB; 3.x allowed 128 MiB). A bundle whose message would be larger goes as pieces.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The JSON body of one push message.
pub fn push_body(piece: &Value, sequence: usize, ctx: &PushContext) -> Vec<u8> {
    let content = base64::engine::general_purpose::STANDARD.encode(piece.to_string());
    let mut body = json!({
        "bundle_type": "QUEUE_BUNDLE",
        "applicant_id": ctx.applicant_id,
        "action_sequence": sequence,
        "entities_types": [],
        "content": content,
        "update": false,
        "draft_id": ctx.draft_id.clone().unwrap_or_default(),
    });
    if let Some(map) = body.as_object_mut() {
        if ctx.no_split_field {
            map.insert("no_split".into(), false.into());
        }
        if let Some(work) = &ctx.work_id {
            map.insert("work_id".into(), work.clone().into());
        }
    }
    body.to_string().into_bytes()
}

/// One message to publish: its body and its batch (`split::batches`).
///
/// Pieces are published in the order given. Consecutive pieces of the same level (batch)
/// do not depend on each other, so they are in flight together; the first piece of another
/// level is published only once every earlier piece was confirmed by the broker.
#[derive(Debug, Clone)]
pub struct Piece {
    pub level: u64,
    pub body: Vec<u8>,
}

/// One open connection of the pool, with its confirm-mode channel.
struct Link {
    /// Which connection this is (a failure drops the link only if it was this one).
    generation: u64,
    conn: Connection,
    channel: Channel,
}

/// Why a piece was not confirmed.
enum Unconfirmed {
    Nack,
    Broker(PushError),
}

/// A publisher to the push exchange, reconnecting as needed.
///
/// It keeps a few connections (one channel in confirm mode each); an enrichment uses one
/// of them for its whole bundle, and enrichments running together publish side by side:
/// no lock is held while a publish or a confirm is awaited.
pub struct Pusher {
    uri: AMQPUri,
    exchange: String,
    routing_key: String,
    retry_delay: Duration,
    links: Vec<Mutex<Option<Link>>>,
    next_link: AtomicUsize,
    generations: AtomicU64,
}

/// Attempts per message before giving up (the caller then reports the failure).
const ATTEMPTS: u32 = 5;

/// Connections to the broker at most (fewer when fewer enrichments run at once).
pub const MAX_LINKS: usize = 2;

impl Pusher {
    /// `links`: how many connections to use side by side (1 to [`MAX_LINKS`]).
    pub fn new(
        uri: AMQPUri,
        exchange: String,
        routing_key: String,
        retry_delay: Duration,
        links: usize,
    ) -> Pusher {
        Pusher {
            uri,
            exchange,
            routing_key,
            retry_delay,
            links: (0..links.clamp(1, MAX_LINKS))
                .map(|_| Mutex::new(None))
                .collect(),
            next_link: AtomicUsize::new(0),
            generations: AtomicU64::new(0),
        }
    }

    fn broker_error(&self, e: impl std::fmt::Display) -> PushError {
        PushError::Broker {
            endpoint: endpoint(&self.uri),
            reason: e.to_string(),
        }
    }

    /// The channel of link `index`, connecting when it is missing or broken.
    async fn channel(&self, index: usize) -> Result<(u64, Channel), PushError> {
        let mut slot = self.links[index].lock().await;
        if let Some(link) = slot.as_ref() {
            if link.conn.status().connected() && link.channel.status().connected() {
                return Ok((link.generation, link.channel.clone()));
            }
        }
        if let Some(old) = slot.take() {
            close_quietly(old);
        }
        let conn = Connection::connect_uri(
            self.uri.clone(),
            ConnectionProperties::default().with_connection_name("ivre-connector push".into()),
        )
        .await
        .map_err(|e| self.broker_error(e))?;
        let channel = conn
            .create_channel()
            .await
            .map_err(|e| self.broker_error(e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| self.broker_error(e))?;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        *slot = Some(Link {
            generation,
            conn,
            channel: channel.clone(),
        });
        Ok((generation, channel))
    }

    /// Drops link `index` after a failure, unless it was already replaced.
    async fn forget(&self, index: usize, generation: u64) {
        let mut slot = self.links[index].lock().await;
        if slot.as_ref().is_some_and(|l| l.generation == generation) {
            if let Some(old) = slot.take() {
                close_quietly(old);
            }
        }
    }

    /// Publishes the pieces in order (see [`Piece`]) and returns once the broker confirmed
    /// every one of them. A nacked piece is published again (and only it); after a broker
    /// failure the unconfirmed pieces are published again, in order, on a new connection.
    /// A piece that fails `ATTEMPTS` times is an error.
    pub async fn publish(&self, pieces: &[Piece]) -> Result<(), PushError> {
        let index = self.next_link.fetch_add(1, Ordering::Relaxed) % self.links.len();
        let mut confirmed = vec![false; pieces.len()];
        let mut attempts = vec![0u32; pieces.len()];
        let mut start = 0;
        while start < pieces.len() {
            let level = pieces[start].level;
            let end = start
                + pieces[start..]
                    .iter()
                    .take_while(|p| p.level == level)
                    .count();
            loop {
                let pending: Vec<usize> = (start..end).filter(|&i| !confirmed[i]).collect();
                let Some((i, failure)) = self
                    .publish_batch(index, pieces, &pending, &mut confirmed)
                    .await
                else {
                    break;
                };
                attempts[i] += 1;
                let attempt = attempts[i];
                match failure {
                    Unconfirmed::Nack if attempt >= ATTEMPTS => {
                        return Err(PushError::Refused {
                            sequence: i + 1,
                            attempts: attempt,
                        })
                    }
                    Unconfirmed::Broker(e) if attempt >= ATTEMPTS => return Err(e),
                    Unconfirmed::Nack => tracing::warn!(
                        sequence = i + 1,
                        attempt,
                        "push refused by RabbitMQ (nack); retrying"
                    ),
                    Unconfirmed::Broker(e) => {
                        tracing::warn!(error = %e, attempt, "push failed; reconnecting")
                    }
                }
                tokio::time::sleep(self.retry_delay).await;
            }
            start = end;
        }
        Ok(())
    }

    /// Publishes `pending` (indexes into `pieces`, increasing) on link `index`, then awaits
    /// their confirms together, marking the acknowledged ones; returns the first piece not
    /// confirmed, and why.
    async fn publish_batch(
        &self,
        index: usize,
        pieces: &[Piece],
        pending: &[usize],
        confirmed: &mut [bool],
    ) -> Option<(usize, Unconfirmed)> {
        let first = *pending.first()?;
        let (generation, channel) = match self.channel(index).await {
            Ok(c) => c,
            Err(e) => return Some((first, Unconfirmed::Broker(e))),
        };
        let mut sends: Vec<_> = pending
            .iter()
            .map(|&i| {
                Box::pin(
                    channel.basic_publish(
                        self.exchange.as_str().into(),
                        self.routing_key.as_str().into(),
                        BasicPublishOptions::default(),
                        &pieces[i].body,
                        BasicProperties::default()
                            .with_delivery_mode(2)
                            .with_content_encoding("utf-8".into()),
                    ),
                )
            })
            .collect();
        // The first poll of a send queues its frames (and takes its delivery tag) before
        // it waits for the connection's writer; polling them in order, all at once, keeps
        // their order and hands them to the writer together.
        let mut sent: Vec<Option<lapin::Result<_>>> = pending.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut done = true;
            for (send, slot) in sends.iter_mut().zip(sent.iter_mut()) {
                if slot.is_none() {
                    match send.as_mut().poll(cx) {
                        Poll::Ready(outcome) => *slot = Some(outcome),
                        Poll::Pending => done = false,
                    }
                }
            }
            if done {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        drop(sends);
        let mut confirms = Vec::with_capacity(pending.len());
        let mut broken = false;
        let mut failure = None;
        for (&i, outcome) in pending.iter().zip(sent) {
            match outcome {
                Some(Ok(confirm)) => confirms.push(async move { (i, confirm.await) }),
                Some(Err(e)) => {
                    broken = true;
                    failure.get_or_insert((i, Unconfirmed::Broker(self.broker_error(e))));
                }
                None => {
                    broken = true;
                    failure.get_or_insert((i, Unconfirmed::Broker(self.broker_error("not sent"))));
                }
            }
        }
        let mut refused = None;
        for (i, outcome) in join_all(confirms).await {
            match outcome {
                Ok(c) if c.is_ack() => confirmed[i] = true,
                Ok(_) => {
                    refused.get_or_insert((i, Unconfirmed::Nack));
                }
                Err(e) => {
                    broken = true;
                    refused.get_or_insert((i, Unconfirmed::Broker(self.broker_error(e))));
                }
            }
        }
        if broken {
            self.forget(index, generation).await;
        }
        // The first piece not confirmed, whichever way it failed.
        match (failure, refused) {
            (Some(f), Some(r)) => Some(if r.0 < f.0 { r } else { f }),
            (f, r) => f.or(r),
        }
    }
}

/// Closes a link that is no longer used, without waiting.
fn close_quietly(link: Link) {
    if link.conn.status().connected() {
        tokio::spawn(async move {
            let _ = link.conn.close(200, "reconnecting".into()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_and_bodies_follow_pycti() {
        let conn = BrokerConnection {
            host: "rabbitmq".into(),
            vhost: "/".into(),
            use_ssl: false,
            port: 5672,
            user: "opencti".into(),
            pass: "p@ss/word".into(),
        };
        let uri = broker_uri(
            &conn,
            &MqOverrides {
                host: Some("127.0.0.1".into()),
                port: Some(5699),
                ..Default::default()
            },
        );
        assert_eq!(uri.authority.host, "127.0.0.1");
        assert_eq!(uri.authority.port, 5699);
        assert_eq!(uri.authority.userinfo.password, "p@ss/word");
        assert!(!endpoint(&uri).contains("p@ss"));
        let body: Value = serde_json::from_slice(&push_body(
            &json!({"type": "bundle", "objects": []}),
            3,
            &PushContext {
                applicant_id: Some("u".into()),
                work_id: Some("w".into()),
                draft_id: None,
                no_split_field: false,
            },
        ))
        .unwrap();
        assert!(body.get("no_split").is_none(), "unknown before 7.260515");
        assert_eq!(body["action_sequence"], 3);
        assert_eq!(body["work_id"], "w");
        assert_eq!(body["draft_id"], "");
        let newer: Value = serde_json::from_slice(&push_body(
            &json!({"type": "bundle", "objects": []}),
            1,
            &PushContext {
                no_split_field: true,
                ..PushContext::default()
            },
        ))
        .unwrap();
        assert_eq!(newer["no_split"], false);
        assert!(newer.get("work_id").is_none());
        let content = base64::engine::general_purpose::STANDARD
            .decode(body["content"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&content).unwrap()["type"],
            "bundle"
        );
    }
}
