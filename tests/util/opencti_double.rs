//! The OpenCTI platform test double: the platform side of the connector protocol (pycti 6.x/7.x;
//! sections cited as §N are those of `docs/opencti-protocol.md`).
//!
//! One [`PlatformDouble`] plays the platform for one connector id:
//!
//! * a GraphQL endpoint (`POST {url}/graphql`, axum on `127.0.0.1:0`) that understands the
//!   operations a connector sends (`about`, introspection, `registerConnector`,
//!   `pingConnector`, `workEdit`, `stixBundlePush`, `playbookStepExecution`, entity reads),
//!   validates them like graphql-js/Apollo against the field set of the advertised version,
//!   and records every request;
//! * the RabbitMQ topology the platform declares (§4.1), on the real broker of
//!   `IVRE_TEST_AMQP_URL`, with the platform's publisher (listen queue) and a worker-like
//!   consumer (push queue);
//! * the worker's HTTP caller for the API listen mode (§5), with platform-like JWTs (7.x).
//!
//! The queues are deleted by [`PlatformDouble::stop`] or when the double is dropped; the
//! exchanges are shared by every double with the same prefix and are left in place.

use ivre_connector::live::percent_decode;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures_util::StreamExt as _;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
    QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldArray, FieldTable};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer,
    ExchangeKind,
};
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tokio::time::Instant;

/// Switchable outages of the GraphQL endpoint ([`PlatformDouble::set_fault`]).
#[path = "double_faults.rs"]
pub mod faults;

use self::gql::{AstValue, Document, Field, Operation, OperationKind, Selection, Type};

/// The version a double advertises unless told otherwise.
pub const DEFAULT_VERSION: &str = "7.261026.0";
/// `connector_user_id` returned by `registerConnector` (the user of the connector's token).
pub const CONNECTOR_USER_ID: &str = "2c8a5f34-91d6-4b0e-a7f3-6e1d9b4c8a52";
/// `kid` of the double's Ed25519 key in the JWKS and in the JWT headers.
pub const JWT_KID: &str = "opencti-double-ed25519-1";
/// The environment variable naming the test broker.
pub const AMQP_URL_VAR: &str = "IVRE_TEST_AMQP_URL";

/// The double's signing key: PKCS#8 DER (base64) of an Ed25519 key made once with
/// `openssl genpkey -algorithm ed25519`; test material only.
const SIGNING_KEY_PKCS8: &str = "MC4CAQAwBQYDK2VwBCIEIAAIW836V7h6+A2ocP1fD+ydcXh3f0FRh/BIMKvHPLjn";
/// The public half of [`SIGNING_KEY_PKCS8`], base64url without padding (the JWK `x`).
const SIGNING_KEY_X: &str = "Yp4HFVB3bCdX0kLhSZFg3QYuwd-nje_Rd_h0bx_H1Vg";
/// Another Ed25519 key, for tokens the connector must reject.
const FOREIGN_KEY_PKCS8: &str = "MC4CAQAwBQYDK2VwBCIEIB2TY5Tno/7qWyP68tE632/3ZWkMxwvRZ4t95G5Psza8";

/// After the expected pushed messages of a work arrived, how long to keep listening for
/// unexpected extra ones.
const PUSH_GRACE: Duration = Duration::from_millis(300);
/// How often [`PlatformDouble::pushed_for_work`] re-checks the work's progress.
const PUSH_POLL: Duration = Duration::from_millis(100);

// ------------------------------------------------------------------------------------------
// Public types
// ------------------------------------------------------------------------------------------

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

/// One HTTP request received by the double (GraphQL or not), in arrival order.
#[derive(Clone, Debug)]
pub struct GraphqlCall {
    /// The first top-level field of the operation (`registerConnector`, `workEdit`, …);
    /// empty when the request could not be parsed or was not a GraphQL POST.
    pub field: String,
    /// For `workEdit`: the first field of its selection (`toReceived`, `toProcessed`, …).
    pub work_op: Option<String>,
    /// The `query` text.
    pub query: String,
    /// The `variables` object as sent (`Null` if absent).
    pub variables: Value,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The request path (`/graphql`, or whatever the connector used).
    pub path: String,
    /// Extra: the arguments of `field`, variables substituted (`Null` if none).
    pub arguments: Value,
    /// Extra: the arguments of `work_op`, variables substituted (`Null` if none).
    pub work_op_arguments: Value,
    /// Extra: the HTTP status the double answered.
    pub status: u16,
    /// Extra: the body the double answered (JSON, or a JSON string for text bodies).
    pub response: Value,
}

impl GraphqlCall {
    /// The value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `id` argument of a `workEdit` call.
    pub fn work_id(&self) -> Option<&str> {
        (self.field == "workEdit")
            .then(|| self.arguments.get("id").and_then(Value::as_str))
            .flatten()
    }
}

/// One message taken from the push queue (as the worker would), already acked.
#[derive(Clone, Debug)]
pub struct Pushed {
    pub delivery_mode: Option<u8>,
    pub content_encoding: Option<String>,
    /// The message JSON (`applicant_id`, `work_id`, `action_sequence`, `content`, …).
    pub body: Value,
    /// `content`, base64-decoded and parsed (`Null` if the message has no `content`).
    pub bundle: Value,
    pub redelivered: bool,
    /// Extra: the `content_type` property (pycti sets none).
    pub content_type: Option<String>,
    /// Extra: whether the message had AMQP headers (pycti sends none).
    pub has_headers: bool,
    /// Extra: the exchange and routing key it was published with.
    pub exchange: String,
    pub routing_key: String,
    /// Extra: a piece of a multi-object message, split by the double's worker (the message's
    /// `body`, one object of its bundle in `bundle`).
    pub split_by_worker: bool,
}

impl Pushed {
    /// `body.work_id`, if any.
    pub fn work_id(&self) -> Option<&str> {
        self.body.get("work_id").and_then(Value::as_str)
    }
}

/// How [`PlatformDouble::reject_next`] makes a call fail.
#[derive(Clone, Debug)]
pub enum Reject {
    /// HTTP 200 with `{"errors":[{"message": …}], "data": null}`.
    GraphqlError(String),
    /// That HTTP status, with a plain-text body.
    Status(u16),
}

/// What the double knows of a work (from the `workEdit` calls).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkProgress {
    pub received: u32,
    pub processed: u32,
    /// Sum of `addExpectations`, the connector's and the worker's (for the messages it split).
    pub expectations: i64,
    /// Objects the worker imported and reported (one `reportExpectation` each).
    pub imported: i64,
    /// Multi-object messages the worker split.
    pub split_by_worker: u32,
    pub reported: u32,
    pub pings: u32,
    /// `inError` of the last `toProcessed`.
    pub in_error: Option<bool>,
    /// `message` of the last `toProcessed`.
    pub message: Option<String>,
}

/// The broker URL of the tests, or a panic telling how to run them.
pub fn amqp_url_from_env() -> String {
    require_amqp_url(std::env::var(AMQP_URL_VAR).ok().filter(|v| !v.is_empty()))
}

/// [`amqp_url_from_env`] on a given value (testable without touching the environment).
pub(crate) fn require_amqp_url(value: Option<String>) -> String {
    value.unwrap_or_else(|| {
        panic!("IVRE_TEST_AMQP_URL is not set: run the tests with `bash scripts/test`")
    })
}

// ------------------------------------------------------------------------------------------
// The double
// ------------------------------------------------------------------------------------------

/// The OpenCTI platform for one connector. See the module documentation.
pub struct PlatformDouble {
    shared: Arc<Shared>,
    addr: SocketAddr,
    amqp_url: String,
    connection: Connection,
    /// Confirm-mode channel for the listen messages; also used for the clean-up.
    publisher: Channel,
    push: tokio::sync::Mutex<PushReader>,
    server: tokio::task::JoinHandle<()>,
    stopped: bool,
}

/// The worker side of the push queue: a lazily started consumer and the messages taken
/// from the queue but not yet handed out (taken while looking for another work).
#[derive(Default)]
struct PushReader {
    consumer: Option<(Channel, Consumer)>,
    /// The pieces of a multi-object message the worker split, not handed out yet.
    split: VecDeque<Pushed>,
    stash: VecDeque<Pushed>,
    /// How many messages of each work were handed out to the test.
    handed_out: HashMap<String, usize>,
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

    /// The next message of the push queue (acked), or `None` after `timeout`.
    pub async fn next_pushed(&self, timeout: Duration) -> Option<Pushed> {
        let mut reader = self.push.lock().await;
        let pushed = match reader.stash.pop_front() {
            Some(pushed) => pushed,
            None => {
                reader
                    .receive(&self.connection, &self.shared, timeout)
                    .await?
            }
        };
        reader.count_handed_out(std::slice::from_ref(&pushed));
        Some(pushed)
    }

    /// The pushed messages of `work_id`, in order: returns once the work was processed
    /// (`toProcessed`) and the messages of that work handed out so far (by earlier calls
    /// too) reach its `addExpectations` sum, after listening [`PUSH_GRACE`] more for extras;
    /// or with what arrived when `timeout` expires. Messages of other works are kept for
    /// [`Self::next_pushed`] / later calls.
    pub async fn pushed_for_work(&self, work_id: &str, timeout: Duration) -> Vec<Pushed> {
        let deadline = Instant::now() + timeout;
        let mut reader = self.push.lock().await;
        let (mut found, others): (Vec<Pushed>, Vec<Pushed>) = reader
            .stash
            .drain(..)
            .partition(|p| p.work_id() == Some(work_id));
        reader.stash = others.into();
        let mut complete_since: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let progress = self.work(work_id).unwrap_or_default();
            let handed = reader.handed_out.get(work_id).copied().unwrap_or(0) + found.len();
            let complete = progress.processed > 0
                && i64::try_from(handed).unwrap_or(i64::MAX) >= progress.expectations;
            let wait = if complete {
                let until = *complete_since.get_or_insert(now) + PUSH_GRACE;
                if now >= until {
                    reader.count_handed_out(&found);
                    return found;
                }
                until - now
            } else {
                complete_since = None;
                if now >= deadline {
                    reader.count_handed_out(&found);
                    return found;
                }
                (deadline - now).min(PUSH_POLL)
            };
            match reader.receive(&self.connection, &self.shared, wait).await {
                Some(pushed) if pushed.work_id() == Some(work_id) => {
                    found.push(pushed);
                    complete_since = None;
                }
                Some(pushed) => reader.stash.push_back(pushed),
                None => {}
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

impl PushReader {
    fn count_handed_out(&mut self, pushed: &[Pushed]) {
        for work_id in pushed.iter().filter_map(Pushed::work_id) {
            *self.handed_out.entry(work_id.to_owned()).or_default() += 1;
        }
    }

    /// Takes one message from the push queue (acks it), waiting at most `wait`, and
    /// handles it as the platform's worker does ([`work_like_the_worker`]): a
    /// multi-object message is split, and its pieces come out one by one.
    async fn receive(
        &mut self,
        connection: &Connection,
        shared: &Shared,
        wait: Duration,
    ) -> Option<Pushed> {
        if let Some(piece) = self.split.pop_front() {
            return Some(piece);
        }
        let pushed = self
            .receive_message(connection, &shared.names, wait)
            .await?;
        let mut pieces = work_like_the_worker(shared, pushed).into_iter();
        let first = pieces.next();
        self.split.extend(pieces);
        first
    }

    /// Takes one message from the push queue (acks it), waiting at most `wait`.
    async fn receive_message(
        &mut self,
        connection: &Connection,
        names: &QueueNames,
        wait: Duration,
    ) -> Option<Pushed> {
        if self.consumer.is_none() {
            self.consumer = Some(start_push_consumer(connection, names).await);
        }
        let (_, consumer) = self.consumer.as_mut()?;
        match tokio::time::timeout(wait, consumer.next()).await {
            Err(_) => None,
            Ok(Some(Ok(delivery))) => {
                delivery
                    .acker
                    .ack(BasicAckOptions::default())
                    .await
                    .unwrap_or_else(|e| {
                        panic!("platform double: cannot ack a pushed message: {e}")
                    });
                Some(decode_pushed(&delivery))
            }
            Ok(Some(Err(e))) => panic!(
                "platform double: push consumer on {} failed: {e}",
                names.push
            ),
            Ok(None) => {
                // Consumer cancelled (queue deleted?): start over next time.
                self.consumer = None;
                tokio::time::sleep(wait).await;
                None
            }
        }
    }
}

/// What the platform's worker does with a pushed message (`ARCHITECTURE.md`, "Pushing
/// bundles"), on the double's record of the work: a message of more than one object whose
/// `no_split` is not `true` is split (dependencies first), the work gets one expectation per
/// piece, and each piece is then imported; any other message is imported as it is. Each
/// imported object is reported to the work (a work the double knows); a report beyond the work's expectations
/// (several objects under `no_split:true` after `addExpectations(1)`, or a message the
/// connector announced nothing for) is a protocol error: the double panics, failing the
/// test.
fn work_like_the_worker(shared: &Shared, pushed: Pushed) -> Vec<Pushed> {
    let objects = pushed.bundle["objects"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let no_split = pushed.body.get("no_split").and_then(Value::as_bool) == Some(true);
    let pieces = if objects.len() > 1 && !no_split {
        let id = pushed.bundle.get("id").cloned().unwrap_or(Value::Null);
        dependencies_first(objects)
            .into_iter()
            .map(|object| Pushed {
                bundle: json!({"type": "bundle", "id": id, "spec_version": "2.1", "objects": [object]}),
                split_by_worker: true,
                ..pushed.clone()
            })
            .collect()
    } else {
        vec![pushed]
    };
    if let Some(work_id) = pieces[0].work_id() {
        let mut state = shared.lock();
        // A work the platform never heard of (no `workEdit` yet: raw messages of the
        // double's own tests) is not accounted.
        let Some(work) = state.works.get_mut(work_id) else {
            return pieces;
        };
        if pieces[0].split_by_worker {
            work.expectations += pieces.len() as i64;
            work.split_by_worker += 1;
        }
        for piece in &pieces {
            work.imported += piece.bundle["objects"].as_array().map_or(0, Vec::len) as i64;
        }
        if work.imported > work.expectations {
            let over = (work.imported, work.expectations);
            drop(state);
            panic!(
                "platform double (worker): work {work_id} over-reports: {} objects imported and reported for {} expectations (a message of several objects with no_split:true after addExpectations(1), or one the connector announced nothing for)",
                over.0, over.1
            );
        }
    }
    pieces
}

/// The worker's split order: each object after the objects of the message it refers to
/// (`*_ref`, `*_refs`), by the number of its dependencies, ties in message order.
fn dependencies_first(objects: Vec<Value>) -> Vec<Value> {
    fn refs(object: &Value) -> Vec<String> {
        let own = object["id"].as_str().unwrap_or_default();
        let mut out = Vec::new();
        for (key, value) in object.as_object().into_iter().flatten() {
            if key.ends_with("_ref") {
                out.extend(value.as_str().map(str::to_owned));
            } else if key.ends_with("_refs") {
                out.extend(
                    value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str().map(str::to_owned)),
                );
            }
        }
        out.retain(|r| r != own);
        out
    }
    fn deps(id: &str, by_id: &HashMap<String, Value>, path: &mut Vec<String>) -> u64 {
        let Some(object) = by_id.get(id) else {
            return 0;
        };
        if path.iter().any(|p| p == id) {
            return 0;
        }
        path.push(id.to_owned());
        let n = 1 + refs(object)
            .iter()
            .map(|r| deps(r, by_id, path))
            .sum::<u64>();
        path.pop();
        n
    }
    let by_id: HashMap<String, Value> = objects
        .iter()
        .filter_map(|o| Some((o["id"].as_str()?.to_owned(), o.clone())))
        .collect();
    let mut ranked: Vec<(u64, Value)> = objects
        .into_iter()
        .map(|o| {
            (
                deps(
                    o["id"].as_str().unwrap_or_default(),
                    &by_id,
                    &mut Vec::new(),
                )
                .max(1),
                o,
            )
        })
        .collect();
    ranked.sort_by_key(|(n, _)| *n);
    ranked.into_iter().map(|(_, o)| o).collect()
}

async fn start_push_consumer(connection: &Connection, names: &QueueNames) -> (Channel, Consumer) {
    let channel = connection
        .create_channel()
        .await
        .unwrap_or_else(|e| panic!("platform double: cannot open the push channel: {e}"));
    let consumer = channel
        .basic_consume(
            names.push.as_str().into(),
            "opencti-double-worker".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("platform double: cannot consume {}: {e}", names.push));
    (channel, consumer)
}

/// Reads a pushed message like the worker: JSON body, base64 `content` holding a bundle.
fn decode_pushed(delivery: &Delivery) -> Pushed {
    let text = String::from_utf8_lossy(&delivery.data);
    let body: Value = serde_json::from_slice(&delivery.data)
        .unwrap_or_else(|e| panic!("platform double: pushed message is not JSON ({e}): {text}"));
    let bundle = match body.get("content") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(content)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(content)
                .unwrap_or_else(|e| {
                    panic!("platform double: pushed `content` is not base64 ({e}): {text}")
                });
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "platform double: pushed `content` is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        }
        Some(other) => panic!("platform double: pushed `content` is not a string: {other}"),
    };
    let properties = &delivery.properties;
    Pushed {
        delivery_mode: *properties.delivery_mode(),
        content_encoding: properties
            .content_encoding()
            .as_ref()
            .map(|s| s.as_str().to_owned()),
        body,
        bundle,
        redelivered: delivery.redelivered,
        content_type: properties
            .content_type()
            .as_ref()
            .map(|s| s.as_str().to_owned()),
        has_headers: properties.headers().is_some(),
        exchange: delivery.exchange.as_str().to_owned(),
        routing_key: delivery.routing_key.as_str().to_owned(),
        split_by_worker: false,
    }
}

// ------------------------------------------------------------------------------------------
// Broker
// ------------------------------------------------------------------------------------------

/// `<prefix>_`, or nothing (the platform's `queue_prefix ? prefix + '_' : ''`).
fn queue_prefix(prefix: Option<&str>) -> String {
    match prefix {
        Some(p) if !p.is_empty() => format!("{p}_"),
        _ => String::new(),
    }
}

/// Exchanges, queues and bindings as `rabbitmq.js` declares them; the queues are purged
/// in case a previous run with the same id left messages behind.
async fn declare_topology(channel: &Channel, names: &QueueNames, connector_id: &str) {
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

async fn delete_queues(channel: &Channel, names: &QueueNames) {
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
struct Broker {
    host: String,
    port: u16,
    vhost: String,
    user: String,
    pass: String,
    use_ssl: bool,
}

impl Broker {
    /// `amqp[s]://user:pass@host:port/vhost` (percent-encoded parts; defaults as RabbitMQ's).
    fn parse(url: &str) -> Broker {
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

// ------------------------------------------------------------------------------------------
// JWT
// ------------------------------------------------------------------------------------------

fn jwks_json() -> String {
    json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": SIGNING_KEY_X, "kid": JWT_KID, "alg": "EdDSA"}]})
        .to_string()
}

fn sign_jwt(pkcs8_base64: &str, expires_in: i64) -> String {
    let der = base64::engine::general_purpose::STANDARD
        .decode(pkcs8_base64)
        .unwrap_or_else(|e| panic!("platform double: bad test key: {e}"));
    let key = jsonwebtoken::EncodingKey::from_ed_der(&der);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(JWT_KID.to_owned());
    let iat = unix_now();
    let claims = json!({"iss": "opencti", "sub": "connector", "iat": iat, "exp": iat + expires_in});
    jsonwebtoken::encode(&header, &claims, &key)
        .unwrap_or_else(|e| panic!("platform double: cannot sign a JWT: {e}"))
}

fn unix_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// A random-looking UUIDv4 string (no `rand` needed: std's randomly keyed hasher).
fn fresh_uuid() -> String {
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

// ------------------------------------------------------------------------------------------
// Shared state and HTTP
// ------------------------------------------------------------------------------------------

/// Platform versions compare numerically: 6.4.11 < 6.8.17 < 7.261026.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Version(u64, u64, u64);

impl Version {
    fn parse(text: &str) -> Version {
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

    fn at_least(self, text: &str) -> bool {
        self >= Version::parse(text)
    }
}

/// What the HTTP handler shares with the test.
struct Shared {
    version: Version,
    version_text: String,
    token: String,
    connector_id: String,
    /// `<queue_prefix>_` or empty.
    prefix: String,
    names: QueueNames,
    broker: Broker,
    state: Mutex<DoubleState>,
    /// An outage of the GraphQL endpoint (`faults`).
    fault: faults::FaultSwitch,
    /// Bumped after each recorded call (for [`PlatformDouble::wait_for`]).
    calls_tx: watch::Sender<usize>,
}

#[derive(Default)]
struct DoubleState {
    calls: Vec<GraphqlCall>,
    stored_state: Option<String>,
    reset_pending: bool,
    /// The last `registerConnector` input.
    registration: Option<Map<String, Value>>,
    /// The last `connectorInfo` sent by `pingConnector`.
    connector_info: Option<Value>,
    entities: Vec<Entity>,
    rejects: Vec<(String, Reject)>,
    works: HashMap<String, WorkProgress>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, DoubleState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers one HTTP request and records it.
    fn answer(&self, method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> Answer {
        let mut call = GraphqlCall {
            field: String::new(),
            work_op: None,
            query: String::new(),
            variables: Value::Null,
            headers: headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            path: path.to_owned(),
            arguments: Value::Null,
            work_op_arguments: Value::Null,
            status: 0,
            response: Value::Null,
        };
        let answer = self.answer_graphql(method, body, &mut call);
        call.status = answer.status;
        call.response = match &answer.body {
            AnswerBody::Json(v) => v.clone(),
            AnswerBody::Text(t) => Value::String(t.clone()),
        };
        self.lock().calls.push(call);
        self.calls_tx.send_modify(|n| *n += 1);
        answer
    }

    fn answer_graphql(&self, method: &Method, body: &[u8], call: &mut GraphqlCall) -> Answer {
        if call.path != "/graphql" {
            return Answer::text(404, format!("Cannot {method} {}", call.path));
        }
        if method != Method::POST {
            return Answer::text(
                405,
                format!("double: {method} /graphql is not supported, use POST"),
            );
        }
        let json_body = call.header("content-type").is_some_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
        if !json_body {
            // Apollo Server 4 (express middleware) without a JSON content type.
            return Answer::error(
                400,
                "POST body missing, invalid Content-Type, or JSON object has no keys.",
                "BAD_REQUEST",
            );
        }
        let request: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return Answer::error(
                    400,
                    &format!("POST body is not valid JSON: {e}"),
                    "BAD_REQUEST",
                )
            }
        };
        let Some(query) = request
            .get("query")
            .and_then(Value::as_str)
            .filter(|q| !q.is_empty())
        else {
            return Answer::error(
                400,
                "POST body must contain a non-empty \"query\" string.",
                "BAD_REQUEST",
            );
        };
        call.query = query.to_owned();
        call.variables = request.get("variables").cloned().unwrap_or(Value::Null);
        let raw_variables = match &call.variables {
            Value::Object(map) => map.clone(),
            Value::Null => Map::new(),
            _ => {
                return Answer::error(
                    400,
                    "`variables` in a POST body should be an object.",
                    "BAD_REQUEST",
                )
            }
        };
        let doc = match gql::parse(query) {
            Ok(doc) => doc,
            Err(message) => return Answer::error(400, &message, "GRAPHQL_PARSE_FAILED"),
        };
        let op = match doc.operation(request.get("operationName").and_then(Value::as_str)) {
            Ok(op) => op,
            Err(message) => return Answer::error(400, &message, "BAD_REQUEST"),
        };
        let variables = with_defaults(op, &raw_variables);
        describe_call(&doc, op, &variables, call);

        if !self.authenticated(&call.headers) {
            return Answer::json(
                200,
                json!({"errors": [{"message": "You must be logged in to do this.", "extensions": {"code": "AUTH_REQUIRED"}}]}),
            );
        }
        let mut state = self.lock();
        if let Some(reject) = state.take_reject(&call.field, call.work_op.as_deref()) {
            return match reject {
                Reject::GraphqlError(message) => Answer::json(
                    200,
                    json!({"errors": [{"message": message, "extensions": {"code": "INTERNAL_SERVER_ERROR"}}], "data": null}),
                ),
                Reject::Status(status) => {
                    Answer::text(status, format!("double: injected HTTP {status}"))
                }
            };
        }
        Executor {
            shared: self,
            state: &mut state,
            doc: &doc,
            op,
            raw_variables: &raw_variables,
            variables,
        }
        .run()
    }

    fn authenticated(&self, headers: &[(String, String)]) -> bool {
        headers
            .iter()
            .filter(|(name, _)| name == "authorization")
            .filter_map(|(_, value)| value.split_once(' '))
            .any(|(scheme, token)| {
                scheme.eq_ignore_ascii_case("bearer") && token.trim() == self.token
            })
    }
}

impl DoubleState {
    fn take_reject(&mut self, field: &str, work_op: Option<&str>) -> Option<Reject> {
        let index = self
            .rejects
            .iter()
            .position(|(op, _)| op == field || Some(op.as_str()) == work_op)?;
        Some(self.rejects.remove(index).1)
    }
}

/// The variables with the operation's defaults for the missing ones.
fn with_defaults(op: &Operation, raw: &Map<String, Value>) -> Map<String, Value> {
    let mut variables = raw.clone();
    for definition in &op.variables {
        if let (false, Some(default)) = (
            variables.contains_key(&definition.name),
            &definition.default,
        ) {
            variables.insert(definition.name.clone(), default.resolve(&Map::new()));
        }
    }
    variables
}

/// Fills `field`, `work_op` and the resolved arguments of a call.
fn describe_call(
    doc: &Document,
    op: &Operation,
    variables: &Map<String, Value>,
    call: &mut GraphqlCall,
) {
    let root = op.kind.root_type();
    let fields = doc.fields(&op.selection, &|t| t == root);
    let Some(field) = fields
        .iter()
        .find(|f| f.name != "__typename")
        .or_else(|| fields.first())
    else {
        return;
    };
    call.field = field.name.clone();
    call.arguments = arguments_value(field, variables);
    if field.name == "workEdit" {
        if let Some(work_op) = doc
            .fields(&field.selection, &|_| true)
            .into_iter()
            .find(|f| f.name != "__typename")
        {
            call.work_op = Some(work_op.name.clone());
            call.work_op_arguments = arguments_value(work_op, variables);
        }
    }
}

fn arguments_value(field: &Field, variables: &Map<String, Value>) -> Value {
    if field.arguments.is_empty() {
        Value::Null
    } else {
        Value::Object(field.argument_values(variables))
    }
}

/// An HTTP answer of the double.
struct Answer {
    status: u16,
    body: AnswerBody,
}

enum AnswerBody {
    Json(Value),
    Text(String),
}

impl Answer {
    fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            body: AnswerBody::Json(body),
        }
    }

    fn text(status: u16, body: String) -> Answer {
        Answer {
            status,
            body: AnswerBody::Text(body),
        }
    }

    /// `{"errors":[{"message", "extensions":{"code"}}]}` (no `data`: request-level error).
    fn error(status: u16, message: &str, code: &str) -> Answer {
        Answer::json(
            status,
            json!({"errors": [{"message": message, "extensions": {"code": code}}]}),
        )
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match self.body {
            AnswerBody::Json(value) => (status, axum::Json(value)).into_response(),
            AnswerBody::Text(text) => (status, text).into_response(),
        }
    }
}

async fn handle_http(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match shared.fault.take() {
        Some(faults::PlatformFault::Status(status)) => {
            return Answer::text(status, format!("double: outage, HTTP {status}")).into_response()
        }
        Some(faults::PlatformFault::Slow(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    shared
        .answer(&method, uri.path(), &headers, &body)
        .into_response()
}

// ------------------------------------------------------------------------------------------
// Schema (the parts a connector touches), per version
// ------------------------------------------------------------------------------------------

/// A field of an object type: name, arguments (name, type) and type, written as in SDL.
struct FieldDef {
    name: &'static str,
    args: Vec<(&'static str, &'static str)>,
    ty: &'static str,
}

fn fd(name: &'static str, args: &[(&'static str, &'static str)], ty: &'static str) -> FieldDef {
    FieldDef {
        name,
        args: args.to_vec(),
        ty,
    }
}

const SCALARS: &[&str] = &[
    "String", "ID", "Boolean", "Int", "Float", "DateTime", "Any", "JSON",
];
const CONNECTOR_TYPES: &[&str] = &[
    "EXTERNAL_IMPORT",
    "INTERNAL_IMPORT_FILE",
    "INTERNAL_ENRICHMENT",
    "INTERNAL_ANALYSIS",
    "INTERNAL_EXPORT_FILE",
    "STREAM",
];

/// The fields of `Query` / `Mutation` the double implements.
fn root_fields(version: Version, kind: OperationKind) -> Vec<FieldDef> {
    match kind {
        OperationKind::Query => vec![
            fd("about", &[], "AppInfo"),
            fd("__type", &[("name", "String!")], "__Type"),
            fd("stixCoreObject", &[("id", "String!")], "StixCoreObject"),
            fd(
                "stixCyberObservable",
                &[("id", "String!")],
                "StixCyberObservable",
            ),
            fd("stix", &[("id", "String!")], "String"),
            fd("isWorkAlive", &[("id", "ID!")], "Boolean"),
        ],
        OperationKind::Mutation => {
            let mut push_args = vec![("connectorId", "String!"), ("bundle", "String!")];
            if version.at_least("6.5.0") {
                push_args.push(("work_id", "String"));
            }
            vec![
                fd(
                    "registerConnector",
                    &[("input", "RegisterConnectorInput")],
                    "Connector",
                ),
                fd(
                    "pingConnector",
                    &[
                        ("id", "ID!"),
                        ("state", "String"),
                        ("connectorInfo", "ConnectorInfoInput"),
                    ],
                    "Connector",
                ),
                fd("workEdit", &[("id", "ID!")], "WorkEditMutations"),
                fd("stixBundlePush", &push_args, "Boolean"),
                fd(
                    "playbookStepExecution",
                    &[
                        ("execution_id", "ID!"),
                        ("event_id", "ID!"),
                        ("execution_start", "DateTime!"),
                        ("data_instance_id", "ID!"),
                        ("playbook_id", "ID!"),
                        ("previous_step_id", "ID!"),
                        ("step_id", "ID!"),
                        ("previous_bundle", "String!"),
                        ("bundle", "String!"),
                    ],
                    "Boolean",
                ),
                fd("deleteConnector", &[("id", "ID!")], "ID"),
            ]
        }
        OperationKind::Subscription => Vec::new(),
    }
}

/// Object types whose selections the double validates (others are served leniently).
fn object_fields(version: Version, type_name: &str) -> Option<Vec<FieldDef>> {
    let fields = match type_name {
        "AppInfo" => vec![
            fd("version", &[], "String!"),
            fd("dependencies", &[], "[DependencyVersion!]!"),
            fd("memory", &[], "AppMemory"),
            fd("debugStats", &[], "AppDebugStatistics"),
        ],
        "Connector" => {
            let mut fields = vec![
                fd("id", &[], "ID!"),
                fd("standard_id", &[], "ID!"),
                fd("entity_type", &[], "String!"),
                fd("name", &[], "String!"),
                fd("active", &[], "Boolean"),
                fd("auto", &[], "Boolean"),
                fd("only_contextual", &[], "Boolean"),
                fd("playbook_compatible", &[], "Boolean"),
                fd("connector_type", &[], "String"),
                fd("connector_scope", &[], "[String]"),
                fd("connector_state", &[], "String"),
                fd("connector_state_reset", &[], "Boolean"),
                fd("connector_state_timestamp", &[], "DateTime"),
                fd("connector_user_id", &[], "ID"),
                fd("connector_trigger_filters", &[], "String"),
                fd("connector_info", &[], "ConnectorInfo"),
                fd("config", &[], "ConnectorConfig"),
                fd("built_in", &[], "Boolean"),
                fd("created_at", &[], "DateTime"),
                fd("updated_at", &[], "DateTime"),
            ];
            if version.at_least("6.8.0") {
                fields.push(fd("auto_update", &[], "Boolean"));
                fields.push(fd("enrichment_resolution", &[], "String"));
            }
            if version.at_least("7.0.0") {
                fields.push(fd("jwks", &[], "String"));
            }
            fields
        }
        "ConnectorConfig" => {
            let mut fields = vec![
                fd("connection", &[], "RabbitMQConnection!"),
                fd("listen", &[], "String!"),
                fd("listen_routing", &[], "String!"),
                fd("listen_exchange", &[], "String!"),
                fd("push", &[], "String!"),
                fd("push_routing", &[], "String!"),
                fd("push_exchange", &[], "String!"),
                fd("dead_letter_routing", &[], "String"),
            ];
            if version.at_least("6.5.0") {
                fields.push(fd("listen_callback_uri", &[], "String"));
            }
            if version.at_least("6.9.0") {
                fields.push(fd("s3", &[], "S3Connection"));
            }
            fields
        }
        "RabbitMQConnection" => vec![
            fd("host", &[], "String!"),
            fd("vhost", &[], "String!"),
            fd("use_ssl", &[], "Boolean!"),
            fd("port", &[], "Int!"),
            fd("user", &[], "String!"),
            fd("pass", &[], "String!"),
        ],
        "S3Connection" => vec![
            fd("endpoint", &[], "String"),
            fd("port", &[], "Int"),
            fd("use_ssl", &[], "Boolean"),
            fd("bucket_name", &[], "String"),
            fd("bucket_region", &[], "String"),
            fd("access_key", &[], "String"),
            fd("secret_key", &[], "String"),
        ],
        "ConnectorInfo" => vec![
            fd("run_and_terminate", &[], "Boolean"),
            fd("buffering", &[], "Boolean"),
            fd("queue_threshold", &[], "Float"),
            fd("queue_messages_size", &[], "Float"),
            fd("next_run_datetime", &[], "DateTime"),
            fd("last_run_datetime", &[], "DateTime"),
        ],
        "WorkEditMutations" => vec![
            fd("toReceived", &[("message", "String")], "ID"),
            fd(
                "toProcessed",
                &[("message", "String"), ("inError", "Boolean")],
                "ID",
            ),
            fd("addExpectations", &[("expectations", "Int")], "ID"),
            fd("reportExpectation", &[("error", "WorkErrorInput")], "ID"),
            fd("ping", &[], "ID"),
            fd("addDraftContext", &[("draftContext", "String")], "ID"),
            fd("delete", &[], "ID"),
        ],
        _ => return None,
    };
    Some(fields)
}

/// Input object types: fields (name, type).
fn input_fields(version: Version, type_name: &str) -> Option<Vec<(&'static str, &'static str)>> {
    let fields = match type_name {
        "RegisterConnectorInput" => {
            let mut fields = vec![
                ("id", "ID!"),
                ("name", "String!"),
                ("type", "ConnectorType!"),
                ("scope", "[String!]"),
                ("auto", "Boolean"),
                ("only_contextual", "Boolean"),
                ("playbook_compatible", "Boolean"),
            ];
            if version.at_least("6.5.0") {
                fields.push(("listen_callback_uri", "String"));
            }
            if version.at_least("6.8.0") {
                fields.push(("auto_update", "Boolean"));
                fields.push(("enrichment_resolution", "String"));
            }
            if version.at_least("7.260817.0") {
                fields.push(("xtm_one_intent", "String"));
            }
            if version.at_least("7.261026.0") {
                fields.push(("version", "String"));
                fields.push(("slug", "String"));
            }
            fields
        }
        "ConnectorInfoInput" => vec![
            ("run_and_terminate", "Boolean!"),
            ("buffering", "Boolean!"),
            ("queue_threshold", "Float!"),
            ("queue_messages_size", "Float!"),
            ("next_run_datetime", "DateTime"),
            ("last_run_datetime", "DateTime"),
        ],
        "WorkErrorInput" => vec![("error", "String"), ("source", "String")],
        _ => return None,
    };
    Some(fields)
}

fn is_input_type(version: Version, name: &str) -> bool {
    SCALARS.contains(&name) || name == "ConnectorType" || input_fields(version, name).is_some()
}

/// `__type(name:)`: kind, fields or inputFields (each `{name, type{kind,name,ofType}}`).
fn introspect_type(version: Version, name: &str) -> Value {
    let kind = type_kind(version, name);
    if kind == "UNKNOWN" {
        return Value::Null;
    }
    let field_value = |field_name: &str, ty: &str, args: &[(&str, &str)]| {
        json!({
            "__typename": "__Field",
            "name": field_name,
            "description": null,
            "args": args.iter().map(|(n, t)| input_value(version, n, t)).collect::<Vec<_>>(),
            "type": type_value(version, &Type::of(ty)),
            "isDeprecated": false,
            "deprecationReason": null,
        })
    };
    let fields = object_fields(version, name).map(|fields| {
        fields
            .iter()
            .map(|f| field_value(f.name, f.ty, &f.args))
            .collect::<Vec<_>>()
    });
    let inputs = input_fields(version, name).map(|fields| {
        fields
            .iter()
            .map(|(n, t)| input_value(version, n, t))
            .collect::<Vec<_>>()
    });
    let enum_values = (name == "ConnectorType").then(|| {
        CONNECTOR_TYPES
            .iter()
            .map(|v| json!({"__typename": "__EnumValue", "name": v, "isDeprecated": false}))
            .collect::<Vec<_>>()
    });
    json!({
        "__typename": "__Type",
        "kind": kind,
        "name": name,
        "description": null,
        "fields": fields,
        "inputFields": inputs,
        "enumValues": enum_values,
        "interfaces": if kind == "OBJECT" { json!([]) } else { Value::Null },
        "possibleTypes": null,
        "ofType": null,
    })
}

fn input_value(version: Version, name: &str, ty: &str) -> Value {
    json!({
        "__typename": "__InputValue",
        "name": name,
        "description": null,
        "type": type_value(version, &Type::of(ty)),
        "defaultValue": null,
    })
}

fn type_value(version: Version, ty: &Type) -> Value {
    match ty {
        Type::NonNull(inner) => {
            json!({"__typename": "__Type", "kind": "NON_NULL", "name": null, "ofType": type_value(version, inner)})
        }
        Type::List(inner) => {
            json!({"__typename": "__Type", "kind": "LIST", "name": null, "ofType": type_value(version, inner)})
        }
        Type::Named(name) => {
            let kind = match type_kind(version, name) {
                "UNKNOWN" => "OBJECT",
                kind => kind,
            };
            json!({"__typename": "__Type", "kind": kind, "name": name, "ofType": null})
        }
    }
}

fn type_kind(version: Version, name: &str) -> &'static str {
    if SCALARS.contains(&name) {
        "SCALAR"
    } else if name == "ConnectorType" {
        "ENUM"
    } else if input_fields(version, name).is_some() {
        "INPUT_OBJECT"
    } else if object_fields(version, name).is_some() {
        "OBJECT"
    } else {
        "UNKNOWN"
    }
}

// ------------------------------------------------------------------------------------------
// Input coercion (graphql-js messages)
// ------------------------------------------------------------------------------------------

/// Where in an input value an error is, and what.
struct CoercionError {
    path: String,
    value: Value,
    message: String,
}

/// Checks `value` against `ty` like graphql-js's `coerceInputValue`.
fn coerce(version: Version, value: &Value, ty: &Type, path: &str) -> Result<(), CoercionError> {
    let fail = |message: String| CoercionError {
        path: path.to_owned(),
        value: value.clone(),
        message,
    };
    match ty {
        Type::NonNull(inner) => {
            if value.is_null() {
                return Err(fail(format!(
                    "Expected non-nullable type \"{ty}\" not to be null."
                )));
            }
            coerce(version, value, inner, path)
        }
        _ if value.is_null() => Ok(()),
        Type::List(inner) => match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, item)| coerce(version, item, inner, &format!("{path}[{i}]"))),
            single => coerce(version, single, inner, path),
        },
        Type::Named(name) => coerce_named(version, value, name, path).map_err(|e| match e {
            Ok(message) => fail(message),
            Err(nested) => nested,
        }),
    }
}

/// A named type: `Err(Ok(message))` for an error at this value, `Err(Err(e))` nested.
fn coerce_named(
    version: Version,
    value: &Value,
    name: &str,
    path: &str,
) -> Result<(), Result<String, CoercionError>> {
    let shown = value.to_string();
    let ok = |valid: bool, message: String| if valid { Ok(()) } else { Err(Ok(message)) };
    match name {
        "String" => ok(
            value.is_string(),
            format!("String cannot represent a non string value: {shown}"),
        ),
        "ID" => ok(
            value.is_string() || value.is_i64() || value.is_u64(),
            format!("ID cannot represent value: {shown}"),
        ),
        "Boolean" => ok(
            value.is_boolean(),
            format!("Boolean cannot represent a non boolean value: {shown}"),
        ),
        "Int" => ok(
            value.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            format!("Int cannot represent non-integer value: {shown}"),
        ),
        "Float" => ok(
            value.is_number(),
            format!("Float cannot represent non numeric value: {shown}"),
        ),
        "DateTime" => ok(
            value
                .as_str()
                .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
            format!("DateTime cannot represent an invalid date-time-string {shown}."),
        ),
        "Any" | "JSON" => Ok(()),
        "ConnectorType" => ok(
            value.as_str().is_some_and(|s| CONNECTOR_TYPES.contains(&s)),
            match value.as_str() {
                Some(s) => format!("Value \"{s}\" does not exist in \"ConnectorType\" enum."),
                None => {
                    format!("Enum \"ConnectorType\" cannot represent non-string value: {shown}.")
                }
            },
        ),
        _ => {
            let Some(fields) = input_fields(version, name) else {
                return Err(Ok(format!("Unknown type \"{name}\".")));
            };
            let Value::Object(object) = value else {
                return Err(Ok(format!("Expected type \"{name}\" to be an object.")));
            };
            for (field, ty) in &fields {
                let ty = Type::of(ty);
                match object.get(*field) {
                    None if ty.is_non_null() => {
                        return Err(Ok(format!(
                            "Field \"{field}\" of required type \"{ty}\" was not provided."
                        )))
                    }
                    None => {}
                    Some(v) => coerce(version, v, &ty, &format!("{path}.{field}")).map_err(Err)?,
                }
            }
            match object.keys().find(|k| !fields.iter().any(|(f, _)| f == k)) {
                Some(unknown) => Err(Ok(format!(
                    "Field \"{unknown}\" is not defined by type \"{name}\"."
                ))),
                None => Ok(()),
            }
        }
    }
}

/// graphql-js's message for a variable that does not coerce.
fn variable_error(name: &str, error: &CoercionError) -> String {
    let at = if error.path == name {
        String::new()
    } else {
        format!(" at \"{}\"", error.path)
    };
    format!(
        "Variable \"${name}\" got invalid value {}{at}; {}",
        error.value, error.message
    )
}

/// Whether a variable of type `var` may be used where `location` is expected.
fn variable_fits(var: &Type, has_default: bool, location: &Type) -> bool {
    match (var, location) {
        (Type::NonNull(v), Type::NonNull(l)) => variable_fits(v, false, l),
        (v, Type::NonNull(l)) => has_default && variable_fits(v, false, l),
        (Type::NonNull(v), l) => variable_fits(v, false, l),
        (Type::List(v), Type::List(l)) => variable_fits(v, false, l),
        (Type::Named(a), Type::Named(b)) => a == b,
        _ => false,
    }
}

// ------------------------------------------------------------------------------------------
// Execution
// ------------------------------------------------------------------------------------------

/// A resolver failure: `{"errors":[{message, path, extensions:{code}}], "data":{field:null}}`.
struct Failure {
    message: String,
    code: &'static str,
}

fn failure(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: "VALIDATION_ERROR",
    }
}

/// One operation: validation (HTTP 400), variable coercion (BAD_USER_INPUT), resolvers.
struct Executor<'a> {
    shared: &'a Shared,
    state: &'a mut DoubleState,
    doc: &'a Document,
    op: &'a Operation,
    raw_variables: &'a Map<String, Value>,
    variables: Map<String, Value>,
}

impl Executor<'_> {
    fn run(mut self) -> Answer {
        let root = self.op.kind.root_type();
        let fields = self.doc.fields(&self.op.selection, &|t| t == root);
        if let Err(message) = self.validate(&fields) {
            return Answer::error(400, &message, "GRAPHQL_VALIDATION_FAILED");
        }
        if let Err(message) = self.coerce_variables() {
            return Answer::error(200, &message, "BAD_USER_INPUT");
        }
        let mut data = Map::new();
        for field in fields {
            let key = field.key().to_owned();
            match self.resolve(field) {
                Ok(value) => {
                    let projected = project(self.doc, &value, &field.selection);
                    data.insert(key, projected);
                }
                Err(Failure { message, code }) => {
                    data.insert(key.clone(), Value::Null);
                    return Answer::json(
                        200,
                        json!({"errors": [{"message": message, "path": [key], "extensions": {"code": code}}], "data": data}),
                    );
                }
            }
        }
        Answer::json(200, json!({"data": data}))
    }

    fn version(&self) -> Version {
        self.shared.version
    }

    // --- validation ---

    fn validate(&self, fields: &[&Field]) -> Result<(), String> {
        let root = self.op.kind.root_type();
        if self.op.kind == OperationKind::Subscription {
            return Err("double: subscriptions are not supported.".to_owned());
        }
        self.doc.check_fragments()?;
        self.validate_variable_definitions()?;
        let definitions = root_fields(self.version(), self.op.kind);
        for field in fields {
            if field.name == "__typename" {
                continue;
            }
            let Some(definition) = definitions.iter().find(|d| d.name == field.name) else {
                return Err(format!(
                    "Cannot query field \"{}\" on type \"{root}\".",
                    field.name
                ));
            };
            self.validate_field(root, definition, field)?;
        }
        Ok(())
    }

    fn validate_variable_definitions(&self) -> Result<(), String> {
        let op_name = self.op.name.as_deref();
        for definition in &self.op.variables {
            let named = definition.ty.named();
            if !is_input_type(self.version(), named) {
                return Err(match type_kind(self.version(), named) {
                    "UNKNOWN" => format!("Unknown type \"{named}\"."),
                    _ => format!(
                        "Variable \"${}\" cannot be non-input type \"{}\".",
                        definition.name, definition.ty
                    ),
                });
            }
        }
        let used = self.doc.used_variables(self.op);
        for name in &used {
            if !self.op.variables.iter().any(|d| &d.name == name) {
                return Err(match op_name {
                    Some(op) => {
                        format!("Variable \"${name}\" is not defined by operation \"{op}\".")
                    }
                    None => format!("Variable \"${name}\" is not defined."),
                });
            }
        }
        for definition in &self.op.variables {
            if !used.contains(&definition.name) {
                return Err(match op_name {
                    Some(op) => format!(
                        "Variable \"${}\" is never used in operation \"{op}\".",
                        definition.name
                    ),
                    None => format!("Variable \"${}\" is never used.", definition.name),
                });
            }
        }
        Ok(())
    }

    /// Arguments, then the selection against the field's type.
    fn validate_field(
        &self,
        parent: &str,
        definition: &FieldDef,
        field: &Field,
    ) -> Result<(), String> {
        self.validate_arguments(parent, definition, field)?;
        let ty = Type::of(definition.ty);
        let named = ty.named();
        let leaf = SCALARS.contains(&named) || named == "ConnectorType";
        if leaf && !field.selection.is_empty() {
            return Err(format!(
                "Field \"{}\" must not have a selection since type \"{ty}\" has no subfields.",
                field.name
            ));
        }
        if !leaf && field.selection.is_empty() {
            return Err(format!(
                "Field \"{}\" of type \"{ty}\" must have a selection of subfields. Did you mean \"{} {{ ... }}\"?",
                field.name, field.name
            ));
        }
        let Some(subfields) = object_fields(self.version(), named) else {
            return Ok(()); // entity types, __Type…: served leniently
        };
        for sub in self.doc.fields(&field.selection, &|t| t == named) {
            if sub.name == "__typename" {
                continue;
            }
            let Some(sub_definition) = subfields.iter().find(|d| d.name == sub.name) else {
                return Err(format!(
                    "Cannot query field \"{}\" on type \"{named}\".",
                    sub.name
                ));
            };
            self.validate_field(named, sub_definition, sub)?;
        }
        Ok(())
    }

    fn validate_arguments(
        &self,
        parent: &str,
        definition: &FieldDef,
        field: &Field,
    ) -> Result<(), String> {
        for (name, value) in &field.arguments {
            let Some((_, ty)) = definition.args.iter().find(|(n, _)| n == name) else {
                return Err(format!(
                    "Unknown argument \"{name}\" on field \"{parent}.{}\".",
                    field.name
                ));
            };
            let ty = Type::of(ty);
            match value {
                AstValue::Variable(var) => {
                    let Some(declared) = self.op.variables.iter().find(|d| &d.name == var) else {
                        continue; // reported as undefined already
                    };
                    if !variable_fits(&declared.ty, declared.default.is_some(), &ty) {
                        return Err(format!(
                            "Variable \"${var}\" of type \"{}\" used in position expecting type \"{ty}\".",
                            declared.ty
                        ));
                    }
                }
                literal if !literal.has_variables() => {
                    let json = literal.resolve(&Map::new());
                    coerce(self.version(), &json, &ty, name).map_err(|e| e.message)?;
                }
                _ => {}
            }
        }
        for (name, ty) in &definition.args {
            if ty.ends_with('!') && !field.arguments.iter().any(|(n, _)| n == name) {
                return Err(format!(
                    "Field \"{}\" argument \"{name}\" of type \"{ty}\" is required, but it was not provided.",
                    field.name
                ));
            }
        }
        Ok(())
    }

    fn coerce_variables(&self) -> Result<(), String> {
        for definition in &self.op.variables {
            let name = &definition.name;
            match self.raw_variables.get(name) {
                None if definition.default.is_none() && definition.ty.is_non_null() => {
                    return Err(format!(
                        "Variable \"${name}\" of required type \"{}\" was not provided.",
                        definition.ty
                    ));
                }
                None => {}
                Some(Value::Null) if definition.ty.is_non_null() => {
                    return Err(format!(
                        "Variable \"${name}\" of non-null type \"{}\" must not be null.",
                        definition.ty
                    ));
                }
                Some(value) => {
                    coerce(self.version(), value, &definition.ty, name)
                        .map_err(|e| variable_error(name, &e))?;
                }
            }
        }
        Ok(())
    }

    // --- resolvers ---

    fn resolve(&mut self, field: &Field) -> Result<Value, Failure> {
        let args = field.argument_values(&self.variables);
        let arg_str = |name: &str| args.get(name).and_then(Value::as_str).map(str::to_owned);
        match field.name.as_str() {
            "__typename" => Ok(json!(self.op.kind.root_type())),
            "about" => Ok(
                json!({"__typename": "AppInfo", "version": self.shared.version_text, "dependencies": []}),
            ),
            "__type" => Ok(introspect_type(
                self.version(),
                &arg_str("name").unwrap_or_default(),
            )),
            "registerConnector" => self.register(args.get("input")),
            "pingConnector" => self.ping(&args),
            "workEdit" => Ok(self.work_edit(&arg_str("id").unwrap_or_default(), field)),
            "stixBundlePush" => self.bundle_push(&args),
            "playbookStepExecution" => self.playbook_step(&args),
            "deleteConnector" => Ok(json!(arg_str("id"))),
            "isWorkAlive" => Ok(json!(true)),
            "stixCoreObject" | "stixCyberObservable" => {
                let id = arg_str("id").unwrap_or_default();
                Ok(self.entity(&id).map_or(Value::Null, |e| e.graphql.clone()))
            }
            "stix" => {
                let id = arg_str("id").unwrap_or_default();
                Ok(self
                    .entity(&id)
                    .map_or(Value::Null, |e| json!(e.stix.to_string())))
            }
            other => Err(failure(format!("double: no resolver for {other}"))),
        }
    }

    fn entity(&self, id: &str) -> Option<&Entity> {
        self.state
            .entities
            .iter()
            .find(|e| e.standard_id == id || e.internal_id == id)
    }

    /// `registerConnector`: the double-specific checks, then the connector with its config.
    fn register(&mut self, input: Option<&Value>) -> Result<Value, Failure> {
        let Some(Value::Object(input)) = input else {
            return Err(failure("double: registerConnector needs an input"));
        };
        let id = input.get("id").and_then(Value::as_str).unwrap_or_default();
        if id != self.shared.connector_id {
            return Err(failure(format!(
                "double: registerConnector id {id:?} is not the connector id {:?}",
                self.shared.connector_id
            )));
        }
        let kind = input
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind != "INTERNAL_ENRICHMENT" {
            return Err(failure(format!(
                "double: connector type {kind:?} is not INTERNAL_ENRICHMENT"
            )));
        }
        let name = input
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if name.trim().chars().count() < 2 {
            return Err(failure(format!(
                "double: connector name {name:?} must have at least 2 characters"
            )));
        }
        match input.get("scope") {
            Some(Value::Array(items))
                if items
                    .iter()
                    .all(|s| s.as_str().is_some_and(|s| !s.is_empty() && s.trim() == s)) => {}
            other => {
                return Err(failure(format!(
                    "double: scope must be a list of trimmed, non-empty strings, got {}",
                    other.unwrap_or(&Value::Null)
                )))
            }
        }
        self.state.registration = Some(input.clone());
        Ok(self.connector_value(self.state.stored_state.clone()))
    }

    /// `pingConnector`: stores the state unless a reset is pending (§3).
    fn ping(&mut self, args: &Map<String, Value>) -> Result<Value, Failure> {
        let id = args.get("id").and_then(Value::as_str).unwrap_or_default();
        if id != self.shared.connector_id {
            return Err(failure(format!(
                "double: pingConnector for unknown connector {id:?}"
            )));
        }
        if let Some(info) = args.get("connectorInfo").filter(|v| !v.is_null()) {
            self.state.connector_info = Some(info.clone());
        }
        let returned = if self.state.reset_pending {
            self.state.reset_pending = false;
            Some(String::new())
        } else {
            let sent = args.get("state").and_then(Value::as_str).map(str::to_owned);
            self.state.stored_state.clone_from(&sent);
            sent
        };
        Ok(self.connector_value(returned))
    }

    /// The connector object (every field; projection keeps the selected ones).
    fn connector_value(&self, connector_state: Option<String>) -> Value {
        let shared = self.shared;
        let registration = self.state.registration.clone().unwrap_or_default();
        let input = |key: &str| registration.get(key).cloned().unwrap_or(Value::Null);
        let names = &shared.names;
        let broker = &shared.broker;
        let info = self.state.connector_info.clone().map(|mut info| {
            if let Value::Object(map) = &mut info {
                map.insert("__typename".to_owned(), json!("ConnectorInfo"));
            }
            info
        });
        let mut connector = json!({
            "__typename": "Connector",
            "id": shared.connector_id,
            "standard_id": format!("connector--{}", shared.connector_id),
            "entity_type": "Connector",
            "name": input("name"),
            "active": true,
            "auto": input("auto"),
            "only_contextual": input("only_contextual"),
            "playbook_compatible": input("playbook_compatible"),
            "connector_type": "INTERNAL_ENRICHMENT",
            "connector_scope": input("scope"),
            "connector_state": connector_state,
            "connector_state_reset": self.state.reset_pending,
            "connector_user_id": CONNECTOR_USER_ID,
            "connector_info": info,
            "built_in": false,
            "config": {
                "__typename": "ConnectorConfig",
                "connection": {
                    "__typename": "RabbitMQConnection",
                    "host": broker.host,
                    "vhost": broker.vhost,
                    "use_ssl": broker.use_ssl,
                    "port": broker.port,
                    "user": broker.user,
                    "pass": broker.pass,
                },
                "listen": names.listen,
                "listen_routing": names.listen_routing,
                "listen_exchange": names.listen_exchange,
                "push": names.push,
                "push_routing": names.push_routing,
                "push_exchange": names.push_exchange,
                "dead_letter_routing": format!("{}listen_routing_too-large-bundle", shared.prefix),
                "listen_callback_uri": input("listen_callback_uri"),
                "s3": {
                    "__typename": "S3Connection",
                    "endpoint": "127.0.0.1",
                    "port": 9000,
                    "use_ssl": false,
                    "bucket_name": "opencti-bucket",
                    "bucket_region": "us-east-1",
                    "access_key": "double",
                    "secret_key": "double",
                },
            },
            "auto_update": input("auto_update"),
            "enrichment_resolution": input("enrichment_resolution"),
        });
        if shared.version.at_least("7.0.0") {
            connector["jwks"] = json!(jwks_json());
        }
        connector
    }

    /// `workEdit(id) { op… }`: each operation answers the work id and updates its progress.
    fn work_edit(&mut self, id: &str, field: &Field) -> Value {
        let mut out = Map::new();
        out.insert("__typename".to_owned(), json!("WorkEditMutations"));
        for op in self.doc.fields(&field.selection, &|_| true) {
            if op.name == "__typename" {
                continue;
            }
            let args = op.argument_values(&self.variables);
            let work = self.state.works.entry(id.to_owned()).or_default();
            match op.name.as_str() {
                "toReceived" => work.received += 1,
                "toProcessed" => {
                    work.processed += 1;
                    work.in_error = args.get("inError").and_then(Value::as_bool);
                    work.message = args
                        .get("message")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                }
                "addExpectations" => {
                    work.expectations += args
                        .get("expectations")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                }
                "reportExpectation" => work.reported += 1,
                "ping" => work.pings += 1,
                _ => {}
            }
            out.insert(op.name.clone(), json!(id));
        }
        Value::Object(out)
    }

    /// `stixBundlePush`: like the platform, only checks the bundle; nothing is queued.
    fn bundle_push(&mut self, args: &Map<String, Value>) -> Result<Value, Failure> {
        let connector = args
            .get("connectorId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if connector != self.shared.connector_id {
            return Err(failure(format!(
                "double: stixBundlePush for unknown connector {connector:?}"
            )));
        }
        check_bundle("bundle", args.get("bundle"))?;
        Ok(json!(true))
    }

    fn playbook_step(&mut self, args: &Map<String, Value>) -> Result<Value, Failure> {
        check_bundle("previous_bundle", args.get("previous_bundle"))?;
        check_bundle("bundle", args.get("bundle"))?;
        Ok(json!(true))
    }
}

/// A JSON string holding `{"type":"bundle","objects":[…non-empty…]}`.
fn check_bundle(argument: &str, value: Option<&Value>) -> Result<(), Failure> {
    let text = value.and_then(Value::as_str).unwrap_or_default();
    let bundle: Value = serde_json::from_str(text)
        .map_err(|e| failure(format!("double: {argument} is not JSON: {e}")))?;
    let is_bundle = bundle.get("type").and_then(Value::as_str) == Some("bundle");
    let has_objects = bundle
        .get("objects")
        .and_then(Value::as_array)
        .is_some_and(|objects| !objects.is_empty());
    if is_bundle && has_objects {
        Ok(())
    } else {
        Err(failure(format!(
            "double: {argument} is not a STIX bundle with objects"
        )))
    }
}

/// Keeps the selected fields of a resolved value (aliases applied, fragments matched
/// against `__typename` / `__implements`; missing fields are `null`).
fn project(doc: &Document, value: &Value, selection: &[Selection]) -> Value {
    if selection.is_empty() {
        return value.clone();
    }
    match value {
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| project(doc, v, selection)).collect())
        }
        Value::Object(object) => {
            let typename = object.get("__typename").and_then(Value::as_str);
            let implements: Vec<&str> = object
                .get("__implements")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let applies = |condition: &str| {
                typename.is_none_or(|t| t == condition) || implements.contains(&condition)
            };
            let mut out = Map::new();
            for field in doc.fields(selection, &applies) {
                let projected = project(
                    doc,
                    object.get(&field.name).unwrap_or(&Value::Null),
                    &field.selection,
                );
                match (out.get_mut(field.key()), projected) {
                    (Some(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
                    (_, projected) => {
                        out.insert(field.key().to_owned(), projected);
                    }
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

// ------------------------------------------------------------------------------------------
// Entities
// ------------------------------------------------------------------------------------------

/// An entity readable through GraphQL.
struct Entity {
    standard_id: String,
    internal_id: String,
    /// OpenCTI's GraphQL shape, with `__typename` / `__implements` for fragments.
    graphql: Value,
    /// The STIX 2.1 object (`stix(id:)` serializes it).
    stix: Value,
}

/// The STIX namespace (`OASIS_NAMESPACE`) of the deterministic ids.
const OASIS_NAMESPACE: uuid::Uuid = uuid::uuid!("00abedb4-aa42-466c-9c01-fed23315a9b7");

impl Entity {
    fn from_stix(mut stix: Value, markings: &[&str]) -> Entity {
        let Some(object) = stix.as_object_mut() else {
            panic!("platform double: add_entity needs a STIX object, got {stix}");
        };
        let standard_id = object
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("platform double: add_entity: STIX object without id"))
            .to_owned();
        let stix_type = object
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("platform double: add_entity: STIX object without type"))
            .to_owned();
        let markings: Vec<Value> = markings.iter().map(|d| marking(d)).collect();
        let refs = object
            .entry("object_marking_refs")
            .or_insert_with(|| json!([]));
        if let Value::Array(refs) = refs {
            for m in &markings {
                if !refs.contains(&m["standard_id"]) {
                    refs.push(m["standard_id"].clone());
                }
            }
        }
        let internal_id = uuid::Uuid::new_v5(
            &OASIS_NAMESPACE,
            format!("internal:{standard_id}").as_bytes(),
        )
        .to_string();
        let entity_type = opencti_type(&stix_type);
        let mut graphql = Map::new();
        for (key, value) in object.iter() {
            if !matches!(
                key.as_str(),
                "id" | "type" | "spec_version" | "hashes" | "object_marking_refs" | "extensions"
            ) {
                graphql.insert(key.clone(), value.clone());
            }
        }
        let hashes: Vec<Value> = object
            .get("hashes")
            .and_then(Value::as_object)
            .map(|h| {
                h.iter()
                    .map(|(a, v)| json!({"algorithm": a, "hash": v}))
                    .collect()
            })
            .unwrap_or_default();
        let extra = json!({
            "__typename": entity_type.replace('-', ""),
            "__implements": ["StixCyberObservable", "StixCoreObject", "StixObject", "BasicObject"],
            "id": internal_id,
            "standard_id": standard_id,
            "entity_type": entity_type,
            "parent_types": ["Basic-Object", "Stix-Object", "Stix-Core-Object", "Stix-Cyber-Observable"],
            "observable_value": observable_value(object),
            "hashes": hashes,
            "objectMarking": markings,
            "objectLabel": [],
            "createdBy": null,
            "x_opencti_stix_ids": [],
        });
        if let Value::Object(extra) = extra {
            graphql.extend(extra);
        }
        Entity {
            standard_id,
            internal_id,
            graphql: Value::Object(graphql),
            stix,
        }
    }
}

/// STIX type → OpenCTI entity type (`ipv4-addr` → `IPv4-Addr`).
fn opencti_type(stix_type: &str) -> String {
    match stix_type {
        "ipv4-addr" => "IPv4-Addr".to_owned(),
        "ipv6-addr" => "IPv6-Addr".to_owned(),
        "x509-certificate" => "X509-Certificate".to_owned(),
        "file" => "StixFile".to_owned(),
        other => other
            .split('-')
            .map(|part| {
                let mut chars = part.chars();
                chars
                    .next()
                    .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}

/// OpenCTI's `observable_value`: value, AS number, preferred hash, or a name.
fn observable_value(object: &Map<String, Value>) -> Value {
    if let Some(value) = object.get("value") {
        return value.clone();
    }
    if let Some(number) = object.get("number") {
        return json!(number.to_string());
    }
    if let Some(hashes) = object.get("hashes").and_then(Value::as_object) {
        for algorithm in ["SHA-256", "SHA-1", "MD5"] {
            if let Some(hash) = hashes.get(algorithm) {
                return hash.clone();
            }
        }
        if let Some(hash) = hashes.values().next() {
            return hash.clone();
        }
    }
    ["subject", "issuer", "serial_number", "name"]
        .iter()
        .find_map(|k| object.get(*k).cloned())
        .unwrap_or(Value::Null)
}

/// A marking definition in OpenCTI's GraphQL shape (`TLP:AMBER`, or any `TYPE:VALUE`).
fn marking(definition: &str) -> Value {
    let upper = definition.to_uppercase();
    let tlp = match upper.as_str() {
        "TLP:CLEAR" | "TLP:WHITE" => Some(("613f2e26-407d-48c7-9eca-b8e91df99dc9", 1, "#ffffff")),
        "TLP:GREEN" => Some(("34098fce-860f-48ae-8e50-ebd3cc5e41da", 2, "#2e7d32")),
        "TLP:AMBER" => Some(("f88d31f6-486f-44da-b317-01333bde0b82", 3, "#d84315")),
        "TLP:AMBER+STRICT" => Some(("826578e1-40ad-459f-bc73-ede076f81f37", 3, "#d84315")),
        "TLP:RED" => Some(("5e57c739-391a-4eb3-b6be-7d15ca92d5ed", 4, "#c62828")),
        _ => None,
    };
    let definition_type = upper.split(':').next().unwrap_or_default().to_owned();
    let (uuid, order, color) = tlp.map_or_else(
        || {
            let canonical =
                json!({"definition": upper, "definition_type": definition_type}).to_string();
            (
                uuid::Uuid::new_v5(&OASIS_NAMESPACE, canonical.as_bytes()).to_string(),
                0,
                "#ffffff",
            )
        },
        |(uuid, order, color)| (uuid.to_owned(), order, color),
    );
    let standard_id = format!("marking-definition--{uuid}");
    json!({
        "__typename": "MarkingDefinition",
        "__implements": ["StixMetaObject", "StixObject", "BasicObject"],
        "id": uuid::Uuid::new_v5(&OASIS_NAMESPACE, format!("internal:{standard_id}").as_bytes()).to_string(),
        "standard_id": standard_id,
        "entity_type": "Marking-Definition",
        "definition_type": definition_type,
        "definition": upper,
        "x_opencti_order": order,
        "x_opencti_color": color,
    })
}

// ------------------------------------------------------------------------------------------
// A small GraphQL parser (executable documents only)
// ------------------------------------------------------------------------------------------

mod gql {
    use std::collections::HashMap;
    use std::fmt;

    use serde_json::{Map, Value};

    /// Fragment nesting beyond this is treated as a cycle.
    const MAX_DEPTH: usize = 32;

    /// A type reference: `ID!`, `[String!]`, `RegisterConnectorInput`.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Type {
        Named(String),
        List(Box<Type>),
        NonNull(Box<Type>),
    }

    impl Type {
        /// A type written in SDL (the double's schema tables); panics if malformed.
        pub fn of(text: &str) -> Type {
            Parser::new(text)
                .and_then(|mut p| p.type_ref())
                .unwrap_or_else(|e| panic!("platform double: bad schema type {text:?}: {e}"))
        }

        pub fn named(&self) -> &str {
            match self {
                Type::Named(name) => name,
                Type::List(inner) | Type::NonNull(inner) => inner.named(),
            }
        }

        pub fn is_non_null(&self) -> bool {
            matches!(self, Type::NonNull(_))
        }
    }

    impl fmt::Display for Type {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Type::Named(name) => f.write_str(name),
                Type::List(inner) => write!(f, "[{inner}]"),
                Type::NonNull(inner) => write!(f, "{inner}!"),
            }
        }
    }

    /// A value in the query text.
    #[derive(Clone, Debug, PartialEq)]
    pub enum AstValue {
        Variable(String),
        Int(i64),
        Float(f64),
        Str(String),
        Bool(bool),
        Null,
        Enum(String),
        List(Vec<AstValue>),
        Object(Vec<(String, AstValue)>),
    }

    impl AstValue {
        /// JSON, with variables substituted (missing ones are `null`, enums are strings).
        pub fn resolve(&self, variables: &Map<String, Value>) -> Value {
            match self {
                AstValue::Variable(name) => variables.get(name).cloned().unwrap_or(Value::Null),
                AstValue::Int(i) => Value::from(*i),
                AstValue::Float(x) => {
                    serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number)
                }
                AstValue::Str(s) | AstValue::Enum(s) => Value::String(s.clone()),
                AstValue::Bool(b) => Value::Bool(*b),
                AstValue::Null => Value::Null,
                AstValue::List(items) => {
                    Value::Array(items.iter().map(|v| v.resolve(variables)).collect())
                }
                AstValue::Object(fields) => Value::Object(
                    fields
                        .iter()
                        .map(|(k, v)| (k.clone(), v.resolve(variables)))
                        .collect(),
                ),
            }
        }

        pub fn collect_variables(&self, out: &mut Vec<String>) {
            match self {
                AstValue::Variable(name) => out.push(name.clone()),
                AstValue::List(items) => items.iter().for_each(|v| v.collect_variables(out)),
                AstValue::Object(fields) => {
                    fields.iter().for_each(|(_, v)| v.collect_variables(out))
                }
                _ => {}
            }
        }

        pub fn has_variables(&self) -> bool {
            let mut found = Vec::new();
            self.collect_variables(&mut found);
            !found.is_empty()
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum OperationKind {
        Query,
        Mutation,
        Subscription,
    }

    impl OperationKind {
        pub fn root_type(self) -> &'static str {
            match self {
                OperationKind::Query => "Query",
                OperationKind::Mutation => "Mutation",
                OperationKind::Subscription => "Subscription",
            }
        }
    }

    #[derive(Debug)]
    pub struct VariableDefinition {
        pub name: String,
        pub ty: Type,
        pub default: Option<AstValue>,
    }

    #[derive(Debug)]
    pub struct Operation {
        pub kind: OperationKind,
        pub name: Option<String>,
        pub variables: Vec<VariableDefinition>,
        pub selection: Vec<Selection>,
    }

    #[derive(Debug)]
    pub struct Fragment {
        pub type_condition: String,
        pub selection: Vec<Selection>,
    }

    #[derive(Debug)]
    pub enum Selection {
        Field(Field),
        InlineFragment {
            type_condition: Option<String>,
            selection: Vec<Selection>,
        },
        FragmentSpread(String),
    }

    #[derive(Debug)]
    pub struct Field {
        pub alias: Option<String>,
        pub name: String,
        pub arguments: Vec<(String, AstValue)>,
        pub selection: Vec<Selection>,
    }

    impl Field {
        /// The response key: the alias, else the name.
        pub fn key(&self) -> &str {
            self.alias.as_deref().unwrap_or(&self.name)
        }

        pub fn argument_values(&self, variables: &Map<String, Value>) -> Map<String, Value> {
            self.arguments
                .iter()
                .map(|(name, value)| (name.clone(), value.resolve(variables)))
                .collect()
        }
    }

    /// A parsed request document. Directives are parsed and ignored (their variables count
    /// as used).
    #[derive(Debug, Default)]
    pub struct Document {
        pub operations: Vec<Operation>,
        pub fragments: HashMap<String, Fragment>,
        pub directive_variables: Vec<String>,
    }

    impl Document {
        /// The operation to run: the named one, or the only one.
        pub fn operation(&self, name: Option<&str>) -> Result<&Operation, String> {
            match name {
                Some(name) => self
                    .operations
                    .iter()
                    .find(|op| op.name.as_deref() == Some(name))
                    .ok_or_else(|| format!("Unknown operation named \"{name}\".")),
                None => match self.operations.as_slice() {
                    [op] => Ok(op),
                    [] => Err("Must provide an operation.".to_owned()),
                    _ => Err(
                        "Must provide operation name if query contains multiple operations."
                            .to_owned(),
                    ),
                },
            }
        }

        /// The fields of a selection set, fragments whose type condition `applies` inlined.
        pub fn fields<'a>(
            &'a self,
            selection: &'a [Selection],
            applies: &dyn Fn(&str) -> bool,
        ) -> Vec<&'a Field> {
            let mut out = Vec::new();
            self.collect_fields(selection, applies, 0, &mut out);
            out
        }

        fn collect_fields<'a>(
            &'a self,
            selection: &'a [Selection],
            applies: &dyn Fn(&str) -> bool,
            depth: usize,
            out: &mut Vec<&'a Field>,
        ) {
            if depth > MAX_DEPTH {
                return;
            }
            for item in selection {
                match item {
                    Selection::Field(field) => out.push(field),
                    Selection::InlineFragment {
                        type_condition,
                        selection,
                    } => {
                        if type_condition.as_deref().is_none_or(applies) {
                            self.collect_fields(selection, applies, depth + 1, out);
                        }
                    }
                    Selection::FragmentSpread(name) => {
                        if let Some(fragment) = self.fragments.get(name) {
                            if applies(&fragment.type_condition) {
                                self.collect_fields(&fragment.selection, applies, depth + 1, out);
                            }
                        }
                    }
                }
            }
        }

        /// Visits every field at every depth (all fragments, whatever their condition).
        fn walk<'a>(
            &'a self,
            selection: &'a [Selection],
            depth: usize,
            visit: &mut dyn FnMut(&'a Field),
        ) {
            if depth > MAX_DEPTH {
                return;
            }
            for field in self.fields(selection, &|_| true) {
                visit(field);
                self.walk(&field.selection, depth + 1, visit);
            }
        }

        /// The variables an operation uses (fields, fragments, directives).
        pub fn used_variables(&self, op: &Operation) -> Vec<String> {
            let mut used = self.directive_variables.clone();
            self.walk(&op.selection, 0, &mut |field| {
                for (_, value) in &field.arguments {
                    value.collect_variables(&mut used);
                }
            });
            used.sort();
            used.dedup();
            used
        }

        /// Unknown fragment spreads and fragment cycles.
        pub fn check_fragments(&self) -> Result<(), String> {
            let roots = self
                .operations
                .iter()
                .map(|op| &op.selection)
                .chain(self.fragments.values().map(|f| &f.selection));
            for selection in roots {
                self.check_spreads(selection, &mut Vec::new())?;
            }
            Ok(())
        }

        fn check_spreads<'a>(
            &'a self,
            selection: &'a [Selection],
            stack: &mut Vec<&'a str>,
        ) -> Result<(), String> {
            for item in selection {
                match item {
                    Selection::Field(field) => self.check_spreads(&field.selection, stack)?,
                    Selection::InlineFragment { selection, .. } => {
                        self.check_spreads(selection, stack)?
                    }
                    Selection::FragmentSpread(name) => {
                        let Some(fragment) = self.fragments.get(name) else {
                            return Err(format!("Unknown fragment \"{name}\"."));
                        };
                        if stack.contains(&name.as_str()) {
                            return Err(format!(
                                "Cannot spread fragment \"{name}\" within itself."
                            ));
                        }
                        stack.push(name);
                        self.check_spreads(&fragment.selection, stack)?;
                        stack.pop();
                    }
                }
            }
            Ok(())
        }
    }

    /// Parses an executable document; errors are graphql-js-like `Syntax Error: …` texts.
    pub fn parse(source: &str) -> Result<Document, String> {
        let mut parser = Parser::new(source)?;
        let mut doc = Document::default();
        if parser.at_end() {
            return Err("Syntax Error: Unexpected <EOF>.".to_owned());
        }
        while !parser.at_end() {
            parser.definition(&mut doc)?;
        }
        doc.directive_variables = parser.directive_variables;
        Ok(doc)
    }

    #[derive(Clone, Debug, PartialEq)]
    enum Token {
        Punct(char),
        Spread,
        Name(String),
        Int(i64),
        Float(f64),
        Str(String),
    }

    impl fmt::Display for Token {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Token::Punct(c) => write!(f, "\"{c}\""),
                Token::Spread => f.write_str("\"...\""),
                Token::Name(n) => write!(f, "Name \"{n}\""),
                Token::Int(i) => write!(f, "Int \"{i}\""),
                Token::Float(x) => write!(f, "Float \"{x}\""),
                Token::Str(s) => write!(f, "String \"{s}\""),
            }
        }
    }

    struct Parser {
        tokens: Vec<Token>,
        pos: usize,
        directive_variables: Vec<String>,
    }

    impl Parser {
        fn new(source: &str) -> Result<Parser, String> {
            Ok(Parser {
                tokens: lex(source)?,
                pos: 0,
                directive_variables: Vec::new(),
            })
        }

        fn at_end(&self) -> bool {
            self.pos >= self.tokens.len()
        }

        fn peek(&self) -> Option<&Token> {
            self.tokens.get(self.pos)
        }

        fn bump(&mut self) -> Option<Token> {
            let token = self.tokens.get(self.pos).cloned();
            self.pos += 1;
            token
        }

        fn current(&self) -> String {
            self.peek()
                .map_or_else(|| "<EOF>".to_owned(), ToString::to_string)
        }

        fn is_punct(&self, c: char) -> bool {
            self.peek() == Some(&Token::Punct(c))
        }

        fn eat(&mut self, c: char) -> bool {
            let found = self.is_punct(c);
            if found {
                self.pos += 1;
            }
            found
        }

        fn expect(&mut self, c: char) -> Result<(), String> {
            if self.eat(c) {
                Ok(())
            } else {
                Err(format!(
                    "Syntax Error: Expected \"{c}\", found {}.",
                    self.current()
                ))
            }
        }

        fn name(&mut self) -> Result<String, String> {
            match self.peek() {
                Some(Token::Name(name)) => {
                    let name = name.clone();
                    self.pos += 1;
                    Ok(name)
                }
                _ => Err(format!(
                    "Syntax Error: Expected Name, found {}.",
                    self.current()
                )),
            }
        }

        fn peek_name(&self) -> Option<&str> {
            match self.peek() {
                Some(Token::Name(name)) => Some(name),
                _ => None,
            }
        }

        fn definition(&mut self, doc: &mut Document) -> Result<(), String> {
            if self.is_punct('{') {
                let selection = self.selection_set()?;
                doc.operations.push(Operation {
                    kind: OperationKind::Query,
                    name: None,
                    variables: Vec::new(),
                    selection,
                });
                return Ok(());
            }
            let keyword = self.name()?;
            let kind = match keyword.as_str() {
                "query" => OperationKind::Query,
                "mutation" => OperationKind::Mutation,
                "subscription" => OperationKind::Subscription,
                "fragment" => return self.fragment(doc),
                other => return Err(format!("Syntax Error: Unexpected Name \"{other}\".")),
            };
            let name = match self.peek_name() {
                Some(_) => Some(self.name()?),
                None => None,
            };
            let variables = if self.is_punct('(') {
                self.variable_definitions()?
            } else {
                Vec::new()
            };
            self.directives()?;
            let selection = self.selection_set()?;
            doc.operations.push(Operation {
                kind,
                name,
                variables,
                selection,
            });
            Ok(())
        }

        fn fragment(&mut self, doc: &mut Document) -> Result<(), String> {
            let name = self.name()?;
            if name == "on" {
                return Err("Syntax Error: Unexpected Name \"on\".".to_owned());
            }
            if self.name()? != "on" {
                return Err(format!(
                    "Syntax Error: Expected \"on\" after fragment \"{name}\"."
                ));
            }
            let type_condition = self.name()?;
            self.directives()?;
            let selection = self.selection_set()?;
            if doc.fragments.contains_key(&name) {
                return Err(format!("There can be only one fragment named \"{name}\"."));
            }
            doc.fragments.insert(
                name,
                Fragment {
                    type_condition,
                    selection,
                },
            );
            Ok(())
        }

        fn variable_definitions(&mut self) -> Result<Vec<VariableDefinition>, String> {
            self.expect('(')?;
            let mut definitions = Vec::new();
            loop {
                self.expect('$')?;
                let name = self.name()?;
                self.expect(':')?;
                let ty = self.type_ref()?;
                let default = if self.eat('=') {
                    Some(self.value(true)?)
                } else {
                    None
                };
                self.directives()?;
                definitions.push(VariableDefinition { name, ty, default });
                if self.eat(')') {
                    return Ok(definitions);
                }
            }
        }

        fn type_ref(&mut self) -> Result<Type, String> {
            let base = if self.eat('[') {
                let inner = self.type_ref()?;
                self.expect(']')?;
                Type::List(Box::new(inner))
            } else {
                Type::Named(self.name()?)
            };
            Ok(if self.eat('!') {
                Type::NonNull(Box::new(base))
            } else {
                base
            })
        }

        fn selection_set(&mut self) -> Result<Vec<Selection>, String> {
            self.expect('{')?;
            let mut selection = Vec::new();
            while !self.eat('}') {
                selection.push(self.selection()?);
            }
            if selection.is_empty() {
                return Err("Syntax Error: Expected Name, found \"}\".".to_owned());
            }
            Ok(selection)
        }

        fn selection(&mut self) -> Result<Selection, String> {
            if self.peek() == Some(&Token::Spread) {
                self.pos += 1;
                return match self.peek_name() {
                    Some("on") => {
                        self.pos += 1;
                        let type_condition = Some(self.name()?);
                        self.directives()?;
                        Ok(Selection::InlineFragment {
                            type_condition,
                            selection: self.selection_set()?,
                        })
                    }
                    Some(_) => {
                        let name = self.name()?;
                        self.directives()?;
                        Ok(Selection::FragmentSpread(name))
                    }
                    None => {
                        self.directives()?;
                        Ok(Selection::InlineFragment {
                            type_condition: None,
                            selection: self.selection_set()?,
                        })
                    }
                };
            }
            let first = self.name()?;
            let (alias, name) = if self.eat(':') {
                (Some(first), self.name()?)
            } else {
                (None, first)
            };
            let arguments = if self.is_punct('(') {
                self.arguments()?
            } else {
                Vec::new()
            };
            self.directives()?;
            let selection = if self.is_punct('{') {
                self.selection_set()?
            } else {
                Vec::new()
            };
            Ok(Selection::Field(Field {
                alias,
                name,
                arguments,
                selection,
            }))
        }

        fn arguments(&mut self) -> Result<Vec<(String, AstValue)>, String> {
            self.expect('(')?;
            let mut arguments = Vec::new();
            loop {
                let name = self.name()?;
                self.expect(':')?;
                arguments.push((name, self.value(false)?));
                if self.eat(')') {
                    return Ok(arguments);
                }
            }
        }

        fn directives(&mut self) -> Result<(), String> {
            while self.eat('@') {
                self.name()?;
                if self.is_punct('(') {
                    for (_, value) in self.arguments()? {
                        value.collect_variables(&mut self.directive_variables);
                    }
                }
            }
            Ok(())
        }

        fn value(&mut self, constant: bool) -> Result<AstValue, String> {
            let unexpected = |token: &Token| format!("Syntax Error: Unexpected {token}.");
            match self.bump() {
                Some(Token::Punct('$')) if !constant => Ok(AstValue::Variable(self.name()?)),
                Some(Token::Int(i)) => Ok(AstValue::Int(i)),
                Some(Token::Float(x)) => Ok(AstValue::Float(x)),
                Some(Token::Str(s)) => Ok(AstValue::Str(s)),
                Some(Token::Name(name)) => Ok(match name.as_str() {
                    "true" => AstValue::Bool(true),
                    "false" => AstValue::Bool(false),
                    "null" => AstValue::Null,
                    _ => AstValue::Enum(name),
                }),
                Some(Token::Punct('[')) => {
                    let mut items = Vec::new();
                    while !self.eat(']') {
                        items.push(self.value(constant)?);
                    }
                    Ok(AstValue::List(items))
                }
                Some(Token::Punct('{')) => {
                    let mut fields = Vec::new();
                    while !self.eat('}') {
                        let name = self.name()?;
                        self.expect(':')?;
                        fields.push((name, self.value(constant)?));
                    }
                    Ok(AstValue::Object(fields))
                }
                Some(token) => Err(unexpected(&token)),
                None => Err("Syntax Error: Unexpected <EOF>.".to_owned()),
            }
        }
    }

    fn lex(source: &str) -> Result<Vec<Token>, String> {
        let chars: Vec<char> = source.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '\u{feff}' | ' ' | '\t' | '\n' | '\r' | ',' => i += 1,
                '#' => {
                    while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                        i += 1;
                    }
                }
                '!' | '$' | '&' | '(' | ')' | ':' | '=' | '@' | '[' | ']' | '{' | '|' | '}' => {
                    tokens.push(Token::Punct(c));
                    i += 1;
                }
                '.' if chars[i..].starts_with(&['.', '.', '.']) => {
                    tokens.push(Token::Spread);
                    i += 3;
                }
                '"' if chars[i..].starts_with(&['"', '"', '"']) => {
                    let (text, next) = block_string(&chars, i + 3)?;
                    tokens.push(Token::Str(text));
                    i = next;
                }
                '"' => {
                    let (text, next) = string(&chars, i + 1)?;
                    tokens.push(Token::Str(text));
                    i = next;
                }
                c if c == '_' || c.is_ascii_alphabetic() => {
                    let start = i;
                    while i < chars.len() && (chars[i] == '_' || chars[i].is_ascii_alphanumeric()) {
                        i += 1;
                    }
                    tokens.push(Token::Name(chars[start..i].iter().collect()));
                }
                c if c == '-' || c.is_ascii_digit() => {
                    let (token, next) = number(&chars, i)?;
                    tokens.push(token);
                    i = next;
                }
                other => return Err(format!("Syntax Error: Unexpected character: \"{other}\".")),
            }
        }
        Ok(tokens)
    }

    fn number(chars: &[char], start: usize) -> Result<(Token, usize), String> {
        let digits = |mut i: usize| {
            let from = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            (i, i > from)
        };
        let mut i = start;
        if chars[i] == '-' {
            i += 1;
        }
        let (mut i, any) = digits(i);
        let mut float = false;
        let mut valid = any;
        if i < chars.len() && chars[i] == '.' {
            float = true;
            let (next, any) = digits(i + 1);
            valid &= any;
            i = next;
        }
        if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
            float = true;
            i += 1;
            if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                i += 1;
            }
            let (next, any) = digits(i);
            valid &= any;
            i = next;
        }
        let text: String = chars[start..i].iter().collect();
        let invalid = || format!("Syntax Error: Invalid number \"{text}\".");
        if !valid {
            return Err(invalid());
        }
        let token = if float {
            Token::Float(text.parse().map_err(|_| invalid())?)
        } else {
            match text.parse() {
                Ok(int) => Token::Int(int),
                Err(_) => Token::Float(text.parse().map_err(|_| invalid())?),
            }
        };
        Ok((token, i))
    }

    /// A `"…"` string starting after the quote: its value and the index after it.
    fn string(chars: &[char], mut i: usize) -> Result<(String, usize), String> {
        let unterminated = || "Syntax Error: Unterminated string.".to_owned();
        let mut out = String::new();
        loop {
            let c = *chars.get(i).ok_or_else(unterminated)?;
            match c {
                '"' => return Ok((out, i + 1)),
                '\n' | '\r' => return Err(unterminated()),
                '\\' => {
                    let escape = *chars.get(i + 1).ok_or_else(unterminated)?;
                    i += 2;
                    match escape {
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        '/' => out.push('/'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => {
                            let (code, next) = unicode_escape(chars, i)?;
                            out.push(code);
                            i = next;
                        }
                        other => {
                            return Err(format!(
                                "Syntax Error: Invalid character escape sequence: \"\\{other}\"."
                            ))
                        }
                    }
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
    }

    /// The 4 hex digits after `\u` (and a low surrogate escape after a high one).
    fn unicode_escape(chars: &[char], i: usize) -> Result<(char, usize), String> {
        let hex = |at: usize| -> Option<u32> {
            let text: String = chars.get(at..at + 4)?.iter().collect();
            u32::from_str_radix(&text, 16).ok()
        };
        let invalid = || "Syntax Error: Invalid Unicode escape sequence.".to_owned();
        let high = hex(i).ok_or_else(invalid)?;
        if (0xD800..0xDC00).contains(&high) && chars.get(i + 4..i + 6) == Some(&['\\', 'u']) {
            if let Some(low) = hex(i + 6).filter(|low| (0xDC00..0xE000).contains(low)) {
                let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                return char::from_u32(code)
                    .map(|c| (c, i + 10))
                    .ok_or_else(invalid);
            }
        }
        char::from_u32(high).map(|c| (c, i + 4)).ok_or_else(invalid)
    }

    /// A `"""…"""` block string starting after the quotes (common indentation removed).
    fn block_string(chars: &[char], mut i: usize) -> Result<(String, usize), String> {
        let mut raw = String::new();
        loop {
            if i >= chars.len() {
                return Err("Syntax Error: Unterminated string.".to_owned());
            }
            if chars[i..].starts_with(&['"', '"', '"']) {
                break;
            }
            if chars[i..].starts_with(&['\\', '"', '"', '"']) {
                raw.push_str("\"\"\"");
                i += 4;
            } else {
                raw.push(chars[i]);
                i += 1;
            }
        }
        let lines: Vec<&str> = raw.lines().collect();
        let indent = lines
            .iter()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        let mut dedented: Vec<&str> = lines
            .iter()
            .enumerate()
            .map(|(n, l)| {
                if n == 0 {
                    l
                } else {
                    l.get(indent..).unwrap_or("")
                }
            })
            .collect();
        while dedented.first().is_some_and(|l| l.trim().is_empty()) {
            dedented.remove(0);
        }
        while dedented.last().is_some_and(|l| l.trim().is_empty()) {
            dedented.pop();
        }
        Ok((dedented.join("\n"), i + 3))
    }
}
