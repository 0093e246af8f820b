//! Sending bundles to the platform's workers (`OPENCTI-PROTOCOL.md` §6.3): one message
//! per split piece on the push exchange, persistent, with publisher confirms; a nacked or
//! failed publish is retried on a fresh connection.

use super::api::Connection as BrokerConnection;
use super::settings::MqOverrides;
use base64::Engine;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::{json, Value};
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

/// What a push message says besides the bundle (§6.3).
#[derive(Debug, Clone, Default)]
pub struct PushContext {
    pub applicant_id: Option<String>,
    pub work_id: Option<String>,
    pub draft_id: Option<String>,
}

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
    if let (Some(work), Some(map)) = (&ctx.work_id, body.as_object_mut()) {
        map.insert("work_id".into(), work.clone().into());
    }
    body.to_string().into_bytes()
}

/// A publisher to the push exchange, reconnecting as needed.
pub struct Pusher {
    uri: AMQPUri,
    exchange: String,
    routing_key: String,
    retry_delay: Duration,
    channel: Mutex<Option<(Connection, Channel)>>,
}

/// Attempts per message before giving up (the caller then reports the failure).
const ATTEMPTS: u32 = 5;

impl Pusher {
    pub fn new(
        uri: AMQPUri,
        exchange: String,
        routing_key: String,
        retry_delay: Duration,
    ) -> Pusher {
        Pusher {
            uri,
            exchange,
            routing_key,
            retry_delay,
            channel: Mutex::new(None),
        }
    }

    fn broker_error(&self, e: impl std::fmt::Display) -> PushError {
        PushError::Broker {
            endpoint: endpoint(&self.uri),
            reason: e.to_string(),
        }
    }

    async fn channel(
        &self,
        slot: &mut Option<(Connection, Channel)>,
    ) -> Result<Channel, PushError> {
        if let Some((conn, channel)) = slot.as_ref() {
            if conn.status().connected() && channel.status().connected() {
                return Ok(channel.clone());
            }
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
        *slot = Some((conn, channel.clone()));
        Ok(channel)
    }

    /// Publishes the bodies in order; each is confirmed by the broker before the next.
    pub async fn publish(&self, bodies: &[Vec<u8>]) -> Result<(), PushError> {
        let mut slot = self.channel.lock().await;
        for (i, body) in bodies.iter().enumerate() {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let outcome = async {
                    let channel = self.channel(&mut slot).await?;
                    let confirm = channel
                        .basic_publish(
                            self.exchange.as_str().into(),
                            self.routing_key.as_str().into(),
                            BasicPublishOptions::default(),
                            body,
                            BasicProperties::default()
                                .with_delivery_mode(2)
                                .with_content_encoding("utf-8".into()),
                        )
                        .await
                        .map_err(|e| self.broker_error(e))?
                        .await
                        .map_err(|e| self.broker_error(e))?;
                    Ok::<bool, PushError>(confirm.is_ack())
                }
                .await;
                match outcome {
                    Ok(true) => break,
                    Ok(false) if attempt >= ATTEMPTS => {
                        return Err(PushError::Refused {
                            sequence: i + 1,
                            attempts: attempt,
                        })
                    }
                    Err(e) if attempt >= ATTEMPTS => return Err(e),
                    Ok(false) => tracing::warn!(
                        sequence = i + 1,
                        attempt,
                        "push refused by RabbitMQ (nack); retrying"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, attempt, "push failed; reconnecting");
                        *slot = None;
                    }
                }
                tokio::time::sleep(self.retry_delay).await;
            }
        }
        Ok(())
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
            },
        ))
        .unwrap();
        assert_eq!(body["action_sequence"], 3);
        assert_eq!(body["work_id"], "w");
        assert_eq!(body["draft_id"], "");
        let content = base64::engine::general_purpose::STANDARD
            .decode(body["content"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&content).unwrap()["type"],
            "bundle"
        );
    }
}
