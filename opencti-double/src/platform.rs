//! [`PlatformDouble`]: start-up (topology on the broker, the GraphQL server), what a test
//! reads from it (calls, works, the stored state), what it sets (entities, rejections,
//! faults, state reset), the platform's listen messages and the worker's API-mode callback,
//! and the clean-up of the queues at stop or drop.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::header;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::amqp_url_from_env;
use crate::broker::{declare_topology, delete_queues, Broker};
use crate::faults;
use crate::http::handle_http;
use crate::jwt::{jwks_json, sign_jwt, FOREIGN_KEY_PKCS8, SIGNING_KEY_PKCS8};
use crate::options::{queue_prefix, DoubleOptions, QueueNames, Version};
use crate::records::{GraphqlCall, Reject, WorkProgress};
use crate::resolvers::entities::Entity;
use crate::state::{DoubleState, Shared};
use crate::worker::PushReader;

/// The OpenCTI platform for one connector. See the crate documentation.
pub struct PlatformDouble {
    pub(crate) shared: Arc<Shared>,
    addr: SocketAddr,
    amqp_url: String,
    pub(crate) connection: Connection,
    /// Confirm-mode channel for the listen messages; also used for the clean-up.
    publisher: Channel,
    pub(crate) push: tokio::sync::Mutex<PushReader>,
    server: tokio::task::JoinHandle<()>,
    stopped: bool,
}

impl PlatformDouble {
    /// Declares the topology on the broker of `IVRE_TEST_AMQP_URL` (panics if unset) and
    /// starts the GraphQL server.
    pub async fn start(options: DoubleOptions) -> PlatformDouble {
        let amqp_url = options.amqp_url.clone().unwrap_or_else(amqp_url_from_env);
        let version = Version::parse(&options.version);
        let names =
            QueueNames::for_connector(options.queue_prefix.as_deref(), &options.connector_id);
        let broker = Broker::parse(&amqp_url);

        let connection = Connection::connect(&amqp_url, ConnectionProperties::default())
            .await
            .unwrap_or_else(|e| panic!("platform double: cannot connect to {amqp_url}: {e}"));
        let publisher = connection
            .create_channel()
            .await
            .unwrap_or_else(|e| panic!("platform double: cannot open a channel: {e}"));
        declare_topology(&publisher, &names, &options.connector_id).await;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap_or_else(|e| panic!("platform double: confirm.select failed: {e}"));

        let (calls_tx, _) = watch::channel(0usize);
        let shared = Arc::new(Shared {
            version,
            version_text: options.version.clone(),
            token: options.token,
            connector_id: options.connector_id,
            prefix: queue_prefix(options.queue_prefix.as_deref()),
            names,
            broker,
            state: Mutex::new(DoubleState::default()),
            fault: Default::default(),
            calls_tx,
        });

        let app = axum::Router::new()
            .fallback(handle_http)
            .layer(DefaultBodyLimit::max(512 * 1024 * 1024))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("platform double: cannot bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("platform double: no local address: {e}"));
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("platform double: HTTP server stopped: {e}");
            }
        });

        PlatformDouble {
            shared,
            addr,
            amqp_url,
            connection,
            publisher,
            push: tokio::sync::Mutex::new(PushReader::default()),
            server,
            stopped: false,
        }
    }

    /// `http://127.0.0.1:PORT`: the connector's `OPENCTI_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn token(&self) -> String {
        self.shared.token.clone()
    }

    pub fn connector_id(&self) -> String {
        self.shared.connector_id.clone()
    }

    /// The advertised platform version.
    pub fn version(&self) -> String {
        self.shared.version_text.clone()
    }

    /// The broker URL (`IVRE_TEST_AMQP_URL`).
    pub fn amqp_url(&self) -> String {
        self.amqp_url.clone()
    }

    pub fn names(&self) -> QueueNames {
        self.shared.names.clone()
    }

    /// Publishes a listen message like the platform (`pushToConnector`): connector exchange,
    /// listen routing key, `delivery_mode` 2, publisher confirm awaited.
    pub async fn publish(&self, message: &Value) {
        let body =
            serde_json::to_vec(message).unwrap_or_else(|e| panic!("unserializable message: {e}"));
        self.publish_raw(&body).await;
    }

    /// [`Self::publish`] with arbitrary bytes.
    pub async fn publish_raw(&self, body: &[u8]) {
        let names = &self.shared.names;
        let confirm = self
            .publisher
            .basic_publish(
                names.listen_exchange.as_str().into(),
                names.listen_routing.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "platform double: publish to {} failed: {e}",
                    names.listen_exchange
                )
            })
            .await
            .unwrap_or_else(|e| panic!("platform double: no confirm for the listen message: {e}"));
        match confirm {
            Confirmation::Ack(None) => {}
            Confirmation::Ack(Some(returned)) => panic!(
                "platform double: listen message unroutable ({} / {}): {:?}",
                names.listen_exchange, names.listen_routing, returned.reply_text
            ),
            other => {
                panic!("platform double: broker did not confirm the listen message: {other:?}")
            }
        }
    }

    /// Every request received so far, in order.
    pub fn calls(&self) -> Vec<GraphqlCall> {
        self.shared.lock().calls.clone()
    }

    /// The requests received after the first `from` ones, in order: for polling a long run
    /// without copying every earlier call each time.
    pub fn calls_since(&self, from: usize) -> Vec<GraphqlCall> {
        self.shared
            .lock()
            .calls
            .get(from..)
            .map(<[GraphqlCall]>::to_vec)
            .unwrap_or_default()
    }

    /// The calls whose top-level field is `field`.
    pub fn calls_of(&self, field: &str) -> Vec<GraphqlCall> {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.field == field)
            .cloned()
            .collect()
    }

    /// The first call (already received or arriving within `timeout`) that satisfies `what`.
    pub async fn wait_for(
        &self,
        what: impl Fn(&GraphqlCall) -> bool,
        timeout: Duration,
    ) -> Option<GraphqlCall> {
        self.wait_for_n(what, 1, timeout).await.into_iter().next()
    }

    /// The calls satisfying `what` as soon as there are at least `n` of them, or those
    /// there are when `timeout` expires (fewer than `n`).
    pub async fn wait_for_n(
        &self,
        what: impl Fn(&GraphqlCall) -> bool,
        n: usize,
        timeout: Duration,
    ) -> Vec<GraphqlCall> {
        let deadline = Instant::now() + timeout;
        let mut changes = self.shared.calls_tx.subscribe();
        loop {
            let found: Vec<GraphqlCall> = self
                .shared
                .lock()
                .calls
                .iter()
                .filter(|c| what(c))
                .cloned()
                .collect();
            if found.len() >= n {
                return found;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return found,
            }
        }
    }

    /// `(ready messages, consumers)` of a queue (passive declare), `None` if it does not
    /// exist. Unacked deliveries are not counted as ready.
    pub async fn queue_state(&self, queue: &str) -> Option<(u32, u32)> {
        let channel = self
            .connection
            .create_channel()
            .await
            .unwrap_or_else(|e| panic!("platform double: cannot open a channel: {e}"));
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await;
        match declared {
            Ok(q) => {
                let _ = channel.close(200, "OK".into()).await;
                Some((q.message_count(), q.consumer_count()))
            }
            Err(_) => None, // the broker closed the channel
        }
    }

    /// What the double knows of a work (from `workEdit` calls), if it was mentioned.
    pub fn work(&self, work_id: &str) -> Option<WorkProgress> {
        self.shared.lock().works.get(work_id).cloned()
    }

    /// Like the admin's "reset state" (`resetStateConnector`): the stored state becomes `""`
    /// and the next `pingConnector` returns `connector_state: ""` without storing the sent
    /// state (§3). The queues are not purged.
    pub fn set_connector_state_reset(&self) {
        let mut state = self.shared.lock();
        state.reset_pending = true;
        state.stored_state = Some(String::new());
    }

    /// The connector state as stored by the last effective `pingConnector`.
    pub fn stored_state(&self) -> Option<String> {
        self.shared.lock().stored_state.clone()
    }

    /// Makes an entity readable through `stixCoreObject`, `stixCyberObservable` (OpenCTI's
    /// GraphQL shape) and `stix` (the STIX JSON string), by its STIX id or its internal id.
    /// `tlp_definitions` (`"TLP:AMBER"`, …; other `TYPE:VALUE` markings work too) become its
    /// `objectMarking` and are added to its `object_marking_refs`.
    pub fn add_entity(&self, stix_object: Value, tlp_definitions: &[&str]) {
        let entity = Entity::from_stix(stix_object, tlp_definitions);
        let mut state = self.shared.lock();
        state
            .entities
            .retain(|e| e.standard_id != entity.standard_id);
        state.entities.push(entity);
    }

    /// The internal id the double gave to an entity added with [`Self::add_entity`].
    pub fn internal_id(&self, standard_id: &str) -> Option<String> {
        self.shared
            .lock()
            .entities
            .iter()
            .find(|e| e.standard_id == standard_id)
            .map(|e| e.internal_id.clone())
    }

    /// Makes the next call whose top-level field (or `workEdit` operation, e.g.
    /// `"toProcessed"`) is `operation` fail. Rejections queue up in order.
    pub fn reject_next(&self, operation: &str, how: Reject) {
        self.shared.lock().rejects.push((operation.to_owned(), how));
    }

    /// Starts (`Some`) or ends (`None`) an outage of the GraphQL endpoint.
    pub fn set_fault(&self, fault: Option<faults::PlatformFault>) {
        self.shared.fault.set(fault);
    }

    /// How many requests met an outage.
    pub fn fault_hits(&self) -> u64 {
        self.shared.fault.hits()
    }

    /// The JWKS string `registerConnector` returns on 7.x.
    pub fn jwks(&self) -> String {
        jwks_json()
    }

    /// A callback JWT as the 7.x platform issues it (`iss` opencti, `sub` connector,
    /// `exp = iat + expires_in`; negative for an expired token).
    pub fn callback_jwt(&self, expires_in: i64) -> String {
        sign_jwt(SIGNING_KEY_PKCS8, expires_in)
    }

    /// The same claims and `kid`, signed by another key.
    pub fn foreign_jwt(&self) -> String {
        sign_jwt(FOREIGN_KEY_PKCS8, 3600)
    }

    /// POSTs `body` to `uri` as the OpenCTI worker does in API listen mode (§5):
    /// `User-Agent: pycti/<version>`, `Content-Type: application/json`, and
    /// `Authorization: Bearer <bearer>` when given. Returns the status and the body text;
    /// `(0, error)` if the request could not be made.
    pub async fn post_callback(
        &self,
        uri: &str,
        body: &[u8],
        bearer: Option<&str>,
    ) -> (u16, String) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .unwrap_or_else(|e| panic!("platform double: no HTTP client: {e}"));
        let mut request = client
            .post(uri)
            .header(
                header::USER_AGENT.as_str(),
                format!("pycti/{}", self.shared.version_text),
            )
            .header(header::CONTENT_TYPE.as_str(), "application/json")
            .body(body.to_vec());
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.text().await.unwrap_or_default())
            }
            Err(e) => (0, e.to_string()),
        }
    }

    /// Stops the HTTP server, deletes the two queues and closes the broker connection.
    pub async fn stop(mut self) {
        self.server.abort();
        delete_queues(&self.publisher, &self.shared.names).await;
        if let Err(e) = self.connection.close(200, "OK".into()).await {
            eprintln!("platform double: closing the broker connection: {e}");
        }
        self.stopped = true;
    }
}

impl Drop for PlatformDouble {
    fn drop(&mut self) {
        self.server.abort();
        if self.stopped {
            return;
        }
        // No await in drop: delete the queues from a thread with its own runtime and connection.
        let url = self.amqp_url.clone();
        let names = self.shared.names.clone();
        let cleanup =
            std::thread::spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(async {
                        let done = tokio::time::timeout(Duration::from_secs(15), async {
                            match Connection::connect(&url, ConnectionProperties::default()).await {
                                Ok(connection) => {
                                    if let Ok(channel) = connection.create_channel().await {
                                        delete_queues(&channel, &names).await;
                                    }
                                    let _ = connection.close(200, "OK".into()).await;
                                }
                                Err(e) => {
                                    eprintln!("platform double: clean-up cannot connect: {e}")
                                }
                            }
                        })
                        .await;
                        if done.is_err() {
                            eprintln!("platform double: clean-up timed out; queues may remain");
                        }
                    }),
                    Err(e) => eprintln!("platform double: clean-up runtime: {e}"),
                }
            });
        let _ = cleanup.join();
    }
}
