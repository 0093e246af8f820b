//! The OpenCTI platform double itself, against the real RabbitMQ of `IVRE_TEST_AMQP_URL`:
//! broker topology and message flow, GraphQL behaviour per platform version, JWTs.

use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::{json, Value};

use opencti_double::{
    require_amqp_url, DoubleOptions, PlatformDouble, QueueNames, Reject, CONNECTOR_USER_ID, JWT_KID,
};

const WAIT: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(300);

const REGISTER: &str = "mutation RegisterConnector($input: RegisterConnectorInput) {
  registerConnector(input: $input) {
    id connector_state
    config { connection { host vhost use_ssl port user pass }
             listen listen_routing listen_exchange push push_routing push_exchange }
    connector_user_id
  }
}";

const REGISTER_WITH_JWKS: &str = "mutation RegisterConnector($input: RegisterConnectorInput) {
  registerConnector(input: $input) { id jwks config { listen } }
}";

const PING: &str = "mutation PingConnector($id: ID!, $state: String, $connectorInfo: ConnectorInfoInput) {
  pingConnector(id: $id, state: $state, connectorInfo: $connectorInfo) {
    id connector_state
    connector_info { run_and_terminate buffering queue_threshold queue_messages_size next_run_datetime last_run_datetime }
  }
}";

const TO_RECEIVED: &str = "mutation workToReceived($id: ID!, $message: String) {
  workEdit(id: $id) { toReceived(message: $message) }
}";

const TO_PROCESSED: &str =
    "mutation workToProcessed($id: ID!, $message: String, $inError: Boolean) {
  workEdit(id: $id) { toProcessed(message: $message, inError: $inError) }
}";

const ADD_EXPECTATIONS: &str = "mutation addExpectations($id: ID!, $expectations: Int) {
  workEdit(id: $id) { addExpectations(expectations: $expectations) }
}";

fn options(version: &str) -> DoubleOptions {
    DoubleOptions {
        version: version.to_owned(),
        ..DoubleOptions::default()
    }
}

/// A GraphQL request with the connector's token.
async fn graphql(double: &PlatformDouble, query: &str, variables: Value) -> (u16, Value) {
    graphql_as(double, Some(&double.token()), query, variables).await
}

/// A GraphQL request with the given bearer (or none): HTTP status and JSON answer.
async fn graphql_as(
    double: &PlatformDouble,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/graphql", double.url()))
        .header("User-Agent", "ivre-connector-tests")
        .json(&json!({"query": query, "variables": variables}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("POST /graphql");
    let status = response.status().as_u16();
    let text = response.text().await.expect("answer body");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text}"));
    (status, body)
}

/// What pycti 7.x sends, plus `extra` fields.
fn register_input(double: &PlatformDouble, extra: Value) -> Value {
    let mut input = json!({
        "id": double.connector_id(),
        "name": "IVRE",
        "type": "INTERNAL_ENRICHMENT",
        "scope": ["ipv4-addr", "ipv6-addr", "domain-name"],
        "auto": false,
        "only_contextual": false,
        "playbook_compatible": true,
    });
    if let (Value::Object(input), Value::Object(extra)) = (&mut input, extra) {
        input.extend(extra);
    }
    input
}

fn connector_info() -> Value {
    json!({"run_and_terminate": false, "buffering": false, "queue_threshold": 500.0,
           "queue_messages_size": 0.0, "next_run_datetime": null, "last_run_datetime": null})
}

fn first_error(body: &Value) -> (&str, &str) {
    let error = &body["errors"][0];
    (
        error["message"].as_str().unwrap_or_default(),
        error["extensions"]["code"].as_str().unwrap_or_default(),
    )
}

async fn broker(double: &PlatformDouble) -> (Connection, Channel) {
    let connection = Connection::connect(&double.amqp_url(), ConnectionProperties::default())
        .await
        .expect("connect to the test broker");
    let channel = connection.create_channel().await.expect("channel");
    (connection, channel)
}

/// [`broker`] with the channel in confirm mode, as a connector publishes.
async fn confirming_broker(double: &PlatformDouble) -> (Connection, Channel) {
    let (connection, channel) = broker(double).await;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    (connection, channel)
}

/// A push message as pycti publishes it (`docs/opencti-protocol.md` §6.3), carrying `bundle` base64-encoded.
async fn publish_push(
    channel: &Channel,
    names: &QueueNames,
    work_id: &str,
    sequence: u64,
    bundle: &Value,
) {
    publish_push_split(channel, names, work_id, sequence, bundle, None).await
}

/// [`publish_push`], with `no_split` when given (7.260515+).
async fn publish_push_split(
    channel: &Channel,
    names: &QueueNames,
    work_id: &str,
    sequence: u64,
    bundle: &Value,
    no_split: Option<bool>,
) {
    let mut body = json!({
        "bundle_type": "QUEUE_BUNDLE",
        "applicant_id": CONNECTOR_USER_ID,
        "action_sequence": sequence,
        "entities_types": [],
        "content": base64::engine::general_purpose::STANDARD.encode(bundle.to_string()),
        "update": false,
        "draft_id": "",
        "work_id": work_id,
    });
    if let Some(no_split) = no_split {
        body["no_split"] = no_split.into();
    }
    channel
        .basic_publish(
            names.push_exchange.as_str().into(),
            names.push_routing.as_str().into(),
            BasicPublishOptions::default(),
            body.to_string().as_bytes(),
            BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_encoding("utf-8".into()),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
}

fn one_object_bundle(value: &str) -> Value {
    json!({"type": "bundle", "id": "bundle--3f1b9c54-3f0e-4c3e-9b8a-6a1d2f0e7c11", "spec_version": "2.1",
           "objects": [{"type": "ipv4-addr", "spec_version": "2.1", "id": "ipv4-addr--2f689bf9-0ff2-545f-aa61-e495eb8cecc7", "value": value}]})
}

async fn queue_exists(double: &PlatformDouble, queue: &str) -> bool {
    let (connection, channel) = broker(double).await;
    let exists = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .is_ok();
    let _ = connection.close(200, "OK".into()).await;
    exists
}

// ------------------------------------------------------------------------------------------
// Broker
// ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reaches_the_listen_queue() {
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let names = double.names();
    let (connection, channel) = broker(&double).await;
    let mut consumer = channel
        .basic_consume(
            names.listen.as_str().into(),
            "test-listen".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume the listen queue");

    let message = json!({"internal": {"work_id": "work_1", "applicant_id": null},
                         "event": {"event_type": "INTERNAL_ENRICHMENT", "entity_id": "ipv4-addr--x"}});
    assert_eq!(
        double.queue_state(&names.listen).await,
        Some((0, 1)),
        "our consumer"
    );
    double.publish(&message).await;
    double.publish_raw(b"{not json").await;

    let first = tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a listen message within 10 s")
        .expect("consumer open")
        .expect("delivery");
    assert_eq!(
        serde_json::from_slice::<Value>(&first.data).unwrap(),
        message
    );
    assert_eq!(*first.properties.delivery_mode(), Some(2));
    assert_eq!(first.exchange.as_str(), names.listen_exchange);
    assert_eq!(first.routing_key.as_str(), names.listen_routing);
    first.acker.ack(BasicAckOptions::default()).await.unwrap();

    let second = tokio::time::timeout(WAIT, consumer.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.data, b"{not json");
    second.acker.ack(BasicAckOptions::default()).await.unwrap();
    connection.close(200, "OK".into()).await.unwrap();
    assert_eq!(
        double.queue_state(&names.listen).await,
        Some((0, 0)),
        "acked, consumer gone"
    );
    assert_eq!(double.queue_state("no-such-queue").await, None);
    double.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_push_comes_out_of_next_pushed_decoded() {
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let names = double.names();
    let (connection, channel) = confirming_broker(&double).await;
    let bundle = one_object_bundle("8.8.8.8");
    publish_push(&channel, &names, "work_a", 1, &bundle).await;

    let pushed = double.next_pushed(WAIT).await.expect("the pushed message");
    assert_eq!(pushed.bundle, bundle);
    assert_eq!(pushed.body["action_sequence"], 1);
    assert_eq!(pushed.work_id(), Some("work_a"));
    assert_eq!(pushed.delivery_mode, Some(2));
    assert_eq!(pushed.content_encoding.as_deref(), Some("utf-8"));
    assert_eq!(pushed.content_type, None);
    assert!(!pushed.has_headers);
    assert!(!pushed.redelivered);
    assert_eq!(pushed.exchange, names.push_exchange);
    assert_eq!(pushed.routing_key, names.push_routing);
    assert!(
        double.next_pushed(SHORT).await.is_none(),
        "one message only"
    );
    connection.close(200, "OK".into()).await.unwrap();
}

/// An ipv4 address, its author and a relationship to an AS, the author last.
fn three_object_bundle() -> Value {
    json!({"type": "bundle", "id": "bundle--7d0e2a61-5b8e-4c0f-9d3a-2f6b1c4e8a90", "spec_version": "2.1", "objects": [
        {"type": "relationship", "id": "relationship--1", "relationship_type": "belongs-to",
         "source_ref": "ipv4-addr--1", "target_ref": "autonomous-system--9", "created_by_ref": "identity--1"},
        {"type": "ipv4-addr", "id": "ipv4-addr--1", "value": "192.0.2.1", "x_opencti_created_by_ref": "identity--1"},
        {"type": "identity", "id": "identity--1", "name": "IVRE"},
    ]})
}

/// Like the platform's worker: a multi-object message (no `no_split`, or `false`) is split
/// by the worker, which adds one expectation per piece and reports each; a 1-object message
/// is imported and reported once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_splits_multi_object_messages() {
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let names = double.names();
    let (connection, channel) = confirming_broker(&double).await;
    let (status, _) = graphql(&double, TO_RECEIVED, json!({"id": "work_m"})).await;
    assert_eq!(status, 200);
    publish_push_split(
        &channel,
        &names,
        "work_m",
        1,
        &three_object_bundle(),
        Some(false),
    )
    .await;
    let (status, _) = graphql(
        &double,
        TO_PROCESSED,
        json!({"id": "work_m", "message": "done", "inError": false}),
    )
    .await;
    assert_eq!(status, 200);
    let pieces = double.pushed_for_work("work_m", WAIT).await;
    let ids: Vec<&str> = pieces
        .iter()
        .map(|p| p.bundle["objects"][0]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["identity--1", "ipv4-addr--1", "relationship--1"]);
    assert!(pieces.iter().all(|p| p.split_by_worker
        && p.bundle["objects"].as_array().unwrap().len() == 1
        && p.work_id() == Some("work_m")));
    let work = double.work("work_m").unwrap();
    assert_eq!(
        (work.expectations, work.imported, work.split_by_worker),
        (3, 3, 1)
    );

    // One object, announced: imported and reported once, not split.
    let (status, _) = graphql(
        &double,
        ADD_EXPECTATIONS,
        json!({"id": "work_m", "expectations": 1}),
    )
    .await;
    assert_eq!(status, 200);
    publish_push(&channel, &names, "work_m", 1, &one_object_bundle("8.8.8.8")).await;
    let one = double
        .next_pushed(WAIT)
        .await
        .expect("the 1-object message");
    assert!(!one.split_by_worker);
    let work = double.work("work_m").unwrap();
    assert_eq!(
        (work.expectations, work.imported, work.split_by_worker),
        (4, 4, 1)
    );
    connection.close(200, "OK".into()).await.unwrap();
}

/// The inconsistent strategy of the protocol: several objects under `no_split:true` after
/// `addExpectations(1)` are imported whole and over-report; the double fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "over-reports: 3 objects imported and reported for 1 expectations")]
async fn the_worker_rejects_over_reports() {
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let names = double.names();
    let (_connection, channel) = confirming_broker(&double).await;
    let (status, _) = graphql(
        &double,
        ADD_EXPECTATIONS,
        json!({"id": "work_x", "expectations": 1}),
    )
    .await;
    assert_eq!(status, 200);
    publish_push_split(
        &channel,
        &names,
        "work_x",
        1,
        &three_object_bundle(),
        Some(true),
    )
    .await;
    double.next_pushed(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_for_work_waits_for_processed_and_expectations() {
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let names = double.names();
    let (connection, channel) = confirming_broker(&double).await;

    let (status, _) = graphql(
        &double,
        ADD_EXPECTATIONS,
        json!({"id": "work_w", "expectations": 2}),
    )
    .await;
    assert_eq!(status, 200);
    publish_push(
        &channel,
        &names,
        "work_other",
        1,
        &one_object_bundle("1.1.1.1"),
    )
    .await;
    publish_push(&channel, &names, "work_w", 1, &one_object_bundle("8.8.8.8")).await;

    // Not processed yet: what arrived before the timeout.
    let early = double
        .pushed_for_work("work_w", Duration::from_millis(500))
        .await;
    assert_eq!(early.len(), 1);

    publish_push(&channel, &names, "work_w", 2, &one_object_bundle("8.8.4.4")).await;
    let (status, _) = graphql(
        &double,
        TO_PROCESSED,
        json!({"id": "work_w", "message": "done", "inError": false}),
    )
    .await;
    assert_eq!(status, 200);
    let progress = double.work("work_w").expect("work known");
    assert_eq!(
        (progress.processed, progress.expectations, progress.in_error),
        (1, 2, Some(false))
    );
    let started = std::time::Instant::now();
    let rest = double.pushed_for_work("work_w", WAIT).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "returns once complete, not at the timeout"
    );
    assert_eq!(rest.len(), 1, "the first one was handed out already");
    assert_eq!(rest[0].body["action_sequence"], 2);
    assert_eq!(rest[0].bundle["objects"][0]["value"], "8.8.4.4");

    let other = double
        .next_pushed(WAIT)
        .await
        .expect("the other work's message is kept");
    assert_eq!(other.work_id(), Some("work_other"));
    connection.close(200, "OK".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_drop_delete_the_queues() {
    let stopped = PlatformDouble::start(DoubleOptions::default()).await;
    let names = stopped.names();
    assert!(queue_exists(&stopped, &names.listen).await);
    assert!(queue_exists(&stopped, &names.push).await);
    let probe = PlatformDouble::start(DoubleOptions::default()).await;
    stopped.stop().await;
    assert!(!queue_exists(&probe, &names.listen).await);
    assert!(!queue_exists(&probe, &names.push).await);

    let dropped = PlatformDouble::start(DoubleOptions::default()).await;
    let names = dropped.names();
    drop(dropped);
    assert!(!queue_exists(&probe, &names.listen).await);
    assert!(!queue_exists(&probe, &names.push).await);
}

#[test]
#[should_panic(expected = "IVRE_TEST_AMQP_URL is not set: run the tests with `bash scripts/test`")]
fn missing_broker_url_panics_with_instructions() {
    require_amqp_url(None);
}

// ------------------------------------------------------------------------------------------
// GraphQL
// ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_with_an_unknown_field_fails_on_6_4_and_succeeds_on_7() {
    let old = PlatformDouble::start(options("6.4.11")).await;
    let input = register_input(&old, json!({"auto_update": false}));
    let (status, body) = graphql(&old, REGISTER, json!({"input": input})).await;
    assert_eq!(status, 200);
    let (message, code) = first_error(&body);
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(
        message.starts_with("Variable \"$input\" got invalid value "),
        "{message}"
    );
    assert!(
        message.ends_with(
            "; Field \"auto_update\" is not defined by type \"RegisterConnectorInput\"."
        ),
        "{message}"
    );
    let (status, body) = graphql(
        &old,
        REGISTER,
        json!({"input": register_input(&old, json!({}))}),
    )
    .await;
    assert_eq!((status, body["errors"].is_null()), (200, true), "{body}");

    let new = PlatformDouble::start(DoubleOptions::default()).await;
    let extra = json!({"auto_update": false, "enrichment_resolution": "stix_bundle", "listen_callback_uri": null,
                       "version": "0.1.0", "slug": "ivre"});
    let (status, body) = graphql(
        &new,
        REGISTER,
        json!({"input": register_input(&new, extra)}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["registerConnector"]["id"],
        json!(new.connector_id()),
        "{body}"
    );
    old.stop().await;
    new.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_returns_prefixed_names_and_the_broker() {
    let double = PlatformDouble::start(options("6.8.17")).await;
    let id = double.connector_id();
    let (status, body) = graphql(
        &double,
        REGISTER,
        json!({"input": register_input(&double, json!({}))}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let registered = &body["data"]["registerConnector"];
    let config = &registered["config"];
    assert_eq!(config["listen"], json!(format!("tst_listen_{id}")));
    assert_eq!(
        config["listen_routing"],
        json!(format!("tst_listen_routing_{id}"))
    );
    assert_eq!(config["listen_exchange"], "tst_amqp.connector.exchange");
    assert_eq!(config["push"], json!(format!("tst_push_{id}")));
    assert_eq!(
        config["push_routing"],
        json!(format!("tst_push_routing_{id}"))
    );
    assert_eq!(config["push_exchange"], "tst_amqp.worker.exchange");
    let names = double.names();
    assert_eq!(config["listen"], json!(names.listen));
    assert_eq!(config["push_routing"], json!(names.push_routing));

    let url = double.amqp_url();
    let connection = &config["connection"];
    assert_eq!(connection["use_ssl"], false);
    let port = connection["port"].as_u64().expect("port");
    assert!(
        url.contains(&format!(
            "@{}:{port}/",
            connection["host"].as_str().unwrap()
        )),
        "{url} vs {connection}"
    );
    assert_eq!(connection["vhost"], "/");
    assert!(url.starts_with(&format!(
        "amqp://{}:{}@",
        connection["user"].as_str().unwrap(),
        connection["pass"].as_str().unwrap()
    )));
    assert_eq!(registered["connector_user_id"], CONNECTOR_USER_ID);
    assert_eq!(registered["connector_state"], Value::Null);
    assert!(registered.get("jwks").is_none(), "only what was selected");

    let call = double
        .wait_for(|c| c.field == "registerConnector", WAIT)
        .await
        .expect("recorded");
    assert_eq!(call.arguments["input"]["name"], "IVRE");
    assert_eq!(call.header("user-agent"), Some("ivre-connector-tests"));

    let unprefixed = PlatformDouble::start(DoubleOptions {
        queue_prefix: None,
        ..DoubleOptions::default()
    })
    .await;
    let (_, body) = graphql(
        &unprefixed,
        REGISTER,
        json!({"input": register_input(&unprefixed, json!({}))}),
    )
    .await;
    let config = &body["data"]["registerConnector"]["config"];
    assert_eq!(
        config["listen"],
        json!(format!("listen_{}", unprefixed.connector_id()))
    );
    assert_eq!(config["listen_exchange"], "amqp.connector.exchange");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_checks_the_connector_id_type_and_scope() {
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    for (extra, expected) in [
        (json!({"id": "someone-else"}), "is not the connector id"),
        (
            json!({"type": "EXTERNAL_IMPORT"}),
            "is not INTERNAL_ENRICHMENT",
        ),
        (
            json!({"scope": "ipv4-addr,domain-name"}),
            "scope must be a list",
        ),
        (json!({"scope": [" ipv4-addr"]}), "scope must be a list"),
    ] {
        let (status, body) = graphql(
            &double,
            REGISTER,
            json!({"input": register_input(&double, extra)}),
        )
        .await;
        assert_eq!(status, 200);
        let (message, _) = first_error(&body);
        assert!(message.contains(expected), "{message}");
        assert_eq!(body["data"]["registerConnector"], Value::Null);
    }
    let (_, body) = graphql(
        &double,
        REGISTER,
        json!({"input": register_input(&double, json!({"type": "NOPE"}))}),
    )
    .await;
    assert_eq!(first_error(&body).1, "BAD_USER_INPUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_exists_only_on_7() {
    let old = PlatformDouble::start(options("6.8.17")).await;
    let (status, body) = graphql(
        &old,
        REGISTER_WITH_JWKS,
        json!({"input": register_input(&old, json!({}))}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        first_error(&body),
        (
            "Cannot query field \"jwks\" on type \"Connector\".",
            "GRAPHQL_VALIDATION_FAILED"
        )
    );

    let new = PlatformDouble::start(options("7.260817.0")).await;
    let (status, body) = graphql(
        &new,
        REGISTER_WITH_JWKS,
        json!({"input": register_input(&new, json!({}))}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let jwks = body["data"]["registerConnector"]["jwks"]
        .as_str()
        .expect("jwks is a string");
    assert_eq!(jwks, new.jwks());
    let set: Value = serde_json::from_str(jwks).unwrap();
    assert_eq!(set["keys"][0]["kty"], "OKP");
    assert_eq!(set["keys"][0]["crv"], "Ed25519");
    assert_eq!(set["keys"][0]["kid"], JWT_KID);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_stores_the_state_and_a_reset_returns_empty() {
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let id = double.connector_id();
    let ping = |state: &str| json!({"id": id, "state": state, "connectorInfo": connector_info()});

    let (status, body) = graphql(&double, PING, ping("null")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["pingConnector"]["connector_state"], "null");
    assert_eq!(
        body["data"]["pingConnector"]["connector_info"],
        connector_info()
    );
    let (_, body) = graphql(&double, PING, ping(r#"{"last_run":1}"#)).await;
    assert_eq!(
        body["data"]["pingConnector"]["connector_state"],
        r#"{"last_run":1}"#
    );
    assert_eq!(double.stored_state().as_deref(), Some(r#"{"last_run":1}"#));

    double.set_connector_state_reset();
    let (_, body) = graphql(&double, PING, ping(r#"{"last_run":2}"#)).await;
    assert_eq!(body["data"]["pingConnector"]["connector_state"], "");
    assert_eq!(
        double.stored_state().as_deref(),
        Some(""),
        "sent state not stored"
    );
    let (_, body) = graphql(&double, PING, ping("null")).await;
    assert_eq!(body["data"]["pingConnector"]["connector_state"], "null");
    assert_eq!(double.stored_state().as_deref(), Some("null"));

    let pings = double
        .wait_for_n(|c| c.field == "pingConnector", 4, WAIT)
        .await;
    assert_eq!(pings.len(), 4);
    assert!(
        double
            .wait_for_n(|c| c.field == "pingConnector", 5, SHORT)
            .await
            .len()
            == 4
    );

    // Registration returns the stored state.
    let (_, body) = graphql(
        &double,
        REGISTER,
        json!({"input": register_input(&double, json!({}))}),
    )
    .await;
    assert_eq!(body["data"]["registerConnector"]["connector_state"], "null");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_checks_the_connector_info_types() {
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let mut info = connector_info();
    info["queue_threshold"] = json!("500");
    let (status, body) = graphql(
        &double,
        PING,
        json!({"id": double.connector_id(), "state": "null", "connectorInfo": info}),
    )
    .await;
    assert_eq!(status, 200);
    let (message, code) = first_error(&body);
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("at \"connectorInfo.queue_threshold\"; Float cannot represent non numeric value: \"500\""), "{message}");

    let mut info = connector_info();
    info.as_object_mut().unwrap().remove("buffering");
    let (_, body) = graphql(
        &double,
        PING,
        json!({"id": double.connector_id(), "state": "null", "connectorInfo": info}),
    )
    .await;
    assert!(first_error(&body)
        .0
        .contains("Field \"buffering\" of required type \"Boolean!\" was not provided."));
    assert_eq!(double.stored_state(), None, "failed pings store nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_calls_get_auth_required() {
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let query = "query healthCheck { about { version } }";
    for token in [None, Some("wrong-token")] {
        let (status, body) = graphql_as(&double, token, query, json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"errors": [{"message": "You must be logged in to do this.", "extensions": {"code": "AUTH_REQUIRED"}}]})
        );
    }
    let (_, body) = graphql(&double, query, json!({})).await;
    assert_eq!(body, json!({"data": {"about": {"version": "7.261026.0"}}}));

    let calls = double.calls();
    assert_eq!(calls.len(), 3, "every call is recorded");
    assert!(calls
        .iter()
        .all(|c| c.field == "about" && c.path == "/graphql"));
    assert_eq!(calls[0].header("authorization"), None);
    assert_eq!(calls[1].header("authorization"), Some("Bearer wrong-token"));
    assert_eq!(
        calls[2].header("Authorization"),
        Some(format!("Bearer {}", double.token()).as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_paths_are_recorded_and_not_found() {
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let response = reqwest::Client::new()
        .post(format!("{}//graphql", double.url()))
        .bearer_auth(double.token())
        .json(&json!({"query": "{ about { version } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let call = double.wait_for(|_| true, WAIT).await.unwrap();
    assert_eq!(
        (call.path.as_str(), call.field.as_str(), call.status),
        ("//graphql", "", 404)
    );

    let response = reqwest::Client::new()
        .post(format!("{}/graphql", double.url()))
        .bearer_auth(double.token())
        .header("Content-Type", "text/plain")
        .body(r#"{"query": "{ about { version } }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        400,
        "Apollo wants a JSON content type"
    );
    assert_eq!(double.calls().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_lists_the_fields_of_the_version() {
    let query = "query Fields($name: String!) { __type(name: $name) { name inputFields { name } fields { name } } }";
    let names = |body: &Value, list: &str| -> Vec<String> {
        body["data"]["__type"][list]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| f["name"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let expectations: [(&str, &[&str], &[&str]); 3] = [
        (
            "6.4.11",
            &[],
            &["listen_callback_uri", "auto_update", "version"],
        ),
        (
            "6.8.17",
            &[
                "listen_callback_uri",
                "auto_update",
                "enrichment_resolution",
            ],
            &["version", "slug", "xtm_one_intent"],
        ),
        (
            "7.261026.0",
            &["auto_update", "xtm_one_intent", "version", "slug"],
            &[],
        ),
    ];
    for (version, present, absent) in expectations {
        let double = PlatformDouble::start(options(version)).await;
        let (status, body) =
            graphql(&double, query, json!({"name": "RegisterConnectorInput"})).await;
        assert_eq!(status, 200, "{body}");
        let fields = names(&body, "inputFields");
        for base in [
            "id",
            "name",
            "type",
            "scope",
            "auto",
            "only_contextual",
            "playbook_compatible",
        ] {
            assert!(fields.contains(&base.to_owned()), "{version}: {fields:?}");
        }
        for field in present {
            assert!(
                fields.contains(&(*field).to_owned()),
                "{version} lacks {field}: {fields:?}"
            );
        }
        for field in absent {
            assert!(
                !fields.contains(&(*field).to_owned()),
                "{version} has {field}: {fields:?}"
            );
        }
        assert_eq!(body["data"]["__type"]["fields"], Value::Null);

        let (_, body) = graphql(&double, query, json!({"name": "Connector"})).await;
        assert_eq!(
            names(&body, "fields").contains(&"jwks".to_owned()),
            version.starts_with('7')
        );
        let (_, body) = graphql(&double, query, json!({"name": "ConnectorConfig"})).await;
        assert_eq!(
            names(&body, "fields").contains(&"s3".to_owned()),
            version != "6.4.11" && version != "6.8.17"
        );
        let (_, body) = graphql(&double, query, json!({"name": "NoSuchType"})).await;
        assert_eq!(body["data"]["__type"], Value::Null);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_edit_answers_the_work_id_and_is_recorded() {
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let (status, body) = graphql(
        &double,
        TO_RECEIVED,
        json!({"id": "work_1", "message": "Connector ready to process the operation"}),
    )
    .await;
    assert_eq!(
        (status, &body),
        (
            200,
            &json!({"data": {"workEdit": {"toReceived": "work_1"}}})
        )
    );
    let (_, body) = graphql(
        &double,
        "mutation pingWork($id: ID!) { workEdit(id: $id) { ping } }",
        json!({"id": "work_1"}),
    )
    .await;
    assert_eq!(body["data"]["workEdit"]["ping"], "work_1");
    graphql(
        &double,
        TO_PROCESSED,
        json!({"id": "work_1", "message": "boom", "inError": true}),
    )
    .await;

    let processed = double
        .wait_for(|c| c.work_op.as_deref() == Some("toProcessed"), WAIT)
        .await
        .expect("toProcessed recorded");
    assert_eq!(processed.field, "workEdit");
    assert_eq!(processed.work_id(), Some("work_1"));
    assert_eq!(processed.work_op_arguments["inError"], true);
    assert_eq!(processed.variables["message"], "boom");
    let ops: Vec<_> = double
        .calls_of("workEdit")
        .into_iter()
        .filter_map(|c| c.work_op)
        .collect();
    assert_eq!(ops, ["toReceived", "ping", "toProcessed"]);
    let progress = double.work("work_1").unwrap();
    assert_eq!(
        (progress.received, progress.pings, progress.processed),
        (1, 1, 1)
    );
    assert_eq!(
        (progress.in_error, progress.message.as_deref()),
        (Some(true), Some("boom"))
    );

    // graphql-js validation: an ID! argument does not take a String! variable.
    let (status, body) = graphql(
        &double,
        "mutation($id: String!) { workEdit(id: $id) { ping } }",
        json!({"id": "w"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        first_error(&body).0,
        "Variable \"$id\" of type \"String!\" used in position expecting type \"ID!\"."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_return_the_added_entities() {
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let ip = json!({"type": "ipv4-addr", "spec_version": "2.1", "id": "ipv4-addr--2f689bf9-0ff2-545f-aa61-e495eb8cecc7", "value": "8.8.8.8"});
    double.add_entity(ip.clone(), &["TLP:AMBER"]);
    double.add_entity(
        json!({"type": "autonomous-system", "spec_version": "2.1", "id": "autonomous-system--7afc7bdf-d070-5add-90ff-f93503b1654d", "number": 15169, "name": "GOOGLE"}),
        &[],
    );
    let query = "query Read($id: String!) {
      stixCyberObservable(id: $id) {
        id standard_id entity_type observable_value
        objectMarking { standard_id definition_type definition x_opencti_order }
        ... on IPv4Addr { value }
        ... on AutonomousSystem { number name }
      }
    }";
    let (status, body) = graphql(
        &double,
        query,
        json!({"id": "ipv4-addr--2f689bf9-0ff2-545f-aa61-e495eb8cecc7"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let entity = &body["data"]["stixCyberObservable"];
    assert_eq!(entity["entity_type"], "IPv4-Addr");
    assert_eq!(entity["value"], "8.8.8.8");
    assert_eq!(entity["observable_value"], "8.8.8.8");
    assert!(entity.get("number").is_none(), "fragment of another type");
    assert_eq!(
        entity["objectMarking"],
        json!([{"standard_id": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
                "definition_type": "TLP", "definition": "TLP:AMBER", "x_opencti_order": 3}])
    );
    let internal_id = entity["id"].as_str().unwrap().to_owned();
    assert_eq!(
        double
            .internal_id("ipv4-addr--2f689bf9-0ff2-545f-aa61-e495eb8cecc7")
            .as_deref(),
        Some(internal_id.as_str())
    );

    let core = "query($id: String!) { stixCoreObject(id: $id) { entity_type ... on AutonomousSystem { number name } } }";
    let (_, body) = graphql(
        &double,
        core,
        json!({"id": "autonomous-system--7afc7bdf-d070-5add-90ff-f93503b1654d"}),
    )
    .await;
    assert_eq!(
        body["data"]["stixCoreObject"],
        json!({"entity_type": "Autonomous-System", "number": 15169, "name": "GOOGLE"})
    );

    let (_, body) = graphql(
        &double,
        "query($id: String!) { stix(id: $id) }",
        json!({"id": internal_id}),
    )
    .await;
    let stix: Value =
        serde_json::from_str(body["data"]["stix"].as_str().expect("a JSON string")).unwrap();
    assert_eq!(stix["value"], ip["value"]);
    assert_eq!(
        stix["object_marking_refs"],
        json!(["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"])
    );

    let (status, body) = graphql(
        &double,
        query,
        json!({"id": "ipv4-addr--00000000-0000-5000-8000-000000000000"}),
    )
    .await;
    assert_eq!(
        (status, &body),
        (200, &json!({"data": {"stixCyberObservable": null}}))
    );
    let (status, body) =
        graphql(&double, "{ stixDomainObject(id: \"x\") { id } }", json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(
        first_error(&body).0,
        "Cannot query field \"stixDomainObject\" on type \"Query\"."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_push_and_playbook_step_are_recorded() {
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let bundle = one_object_bundle("8.8.8.8").to_string();
    let push =
        "mutation StixBundlePush($connectorId: String!, $bundle: String!, $work_id: String) {
      stixBundlePush(connectorId: $connectorId, bundle: $bundle, work_id: $work_id) }";
    let (status, body) = graphql(
        &double,
        push,
        json!({"connectorId": double.connector_id(), "bundle": bundle, "work_id": "w"}),
    )
    .await;
    assert_eq!(
        (status, &body),
        (200, &json!({"data": {"stixBundlePush": true}}))
    );
    let call = double
        .wait_for(|c| c.field == "stixBundlePush", WAIT)
        .await
        .unwrap();
    assert_eq!(call.variables["bundle"].as_str(), Some(bundle.as_str()));

    let step = "mutation PlaybookStepExecution($execution_id: ID!, $event_id: ID!, $execution_start: DateTime!,
      $data_instance_id: ID!, $playbook_id: ID!, $previous_step_id: ID!, $step_id: ID!, $previous_bundle: String!, $bundle: String!) {
      playbookStepExecution(execution_id: $execution_id, event_id: $event_id, execution_start: $execution_start,
        data_instance_id: $data_instance_id, playbook_id: $playbook_id, previous_step_id: $previous_step_id,
        step_id: $step_id, previous_bundle: $previous_bundle, bundle: $bundle) }";
    let variables = json!({"execution_id": "e", "event_id": "ev", "execution_start": "2026-11-28T20:00:00+00:00",
        "data_instance_id": "ipv4-addr--x", "playbook_id": "p", "previous_step_id": "s0", "step_id": "s1",
        "previous_bundle": bundle, "bundle": bundle});
    let (_, body) = graphql(&double, step, variables).await;
    assert_eq!(body, json!({"data": {"playbookStepExecution": true}}));

    let old = PlatformDouble::start(options("6.4.11")).await;
    let (status, body) = graphql(
        &old,
        push,
        json!({"connectorId": old.connector_id(), "bundle": bundle}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        first_error(&body).0,
        "Unknown argument \"work_id\" on field \"Mutation.stixBundlePush\"."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_next_fails_exactly_one_call() {
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let input = json!({"input": register_input(&double, json!({}))});
    double.reject_next("registerConnector", Reject::Status(503));
    double.reject_next(
        "toProcessed",
        Reject::GraphqlError("WORK_NOT_ALIVE".to_owned()),
    );

    let response = reqwest::Client::new()
        .post(format!("{}/graphql", double.url()))
        .bearer_auth(double.token())
        .json(&json!({"query": REGISTER, "variables": input}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let (status, body) = graphql(&double, REGISTER, input).await;
    assert_eq!((status, body["errors"].is_null()), (200, true), "{body}");

    let (_, body) = graphql(&double, TO_RECEIVED, json!({"id": "w"})).await;
    assert!(body["errors"].is_null(), "toReceived is not rejected");
    let (status, body) = graphql(&double, TO_PROCESSED, json!({"id": "w", "inError": false})).await;
    assert_eq!((status, first_error(&body).0), (200, "WORK_NOT_ALIVE"));
    let (_, body) = graphql(&double, TO_PROCESSED, json!({"id": "w", "inError": false})).await;
    assert_eq!(body["data"]["workEdit"]["toProcessed"], "w");
}

// ------------------------------------------------------------------------------------------
// API listen mode
// ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_jwt_verifies_with_the_jwks_and_foreign_jwt_does_not() {
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let set: JwkSet = serde_json::from_str(&double.jwks()).expect("a JWK set");
    let verify = |token: &str| {
        let header = jsonwebtoken::decode_header(token).expect("JWT header");
        assert_eq!(header.alg, Algorithm::EdDSA);
        let kid = header.kid.expect("kid");
        let key =
            DecodingKey::from_jwk(set.find(&kid).expect("key of the kid")).expect("decoding key");
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&["opencti"]);
        validation.sub = Some("connector".to_owned());
        jsonwebtoken::decode::<Value>(token, &key, &validation)
    };

    let claims = verify(&double.callback_jwt(3600))
        .expect("the platform's JWT verifies")
        .claims;
    assert_eq!(
        (claims["iss"].as_str(), claims["sub"].as_str()),
        (Some("opencti"), Some("connector"))
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );

    let foreign = verify(&double.foreign_jwt()).expect_err("another key's JWT");
    assert_eq!(
        *foreign.kind(),
        jsonwebtoken::errors::ErrorKind::InvalidSignature
    );
    let expired = verify(&double.callback_jwt(-3600)).expect_err("an expired JWT");
    assert_eq!(
        *expired.kind(),
        jsonwebtoken::errors::ErrorKind::ExpiredSignature
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_callback_sends_what_the_worker_sends() {
    use axum::http::HeaderMap;
    let double = PlatformDouble::start(options("6.8.17")).await;
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/api/callback",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen_tx = seen_tx.clone();
            async move {
                let header = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_owned());
                let _ =
                    seen_tx.send((header("authorization"), header("user-agent"), body.to_vec()));
                (
                    axum::http::StatusCode::ACCEPTED,
                    "{\"message\":\"Message successfully received\"}",
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/api/callback", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let token = double.token();
    let (status, text) = double
        .post_callback(&uri, br#"{"internal":{}}"#, Some(&token))
        .await;
    assert_eq!(
        (status, text.as_str()),
        (202, "{\"message\":\"Message successfully received\"}")
    );
    let (authorization, user_agent, body) = seen_rx.recv().await.unwrap();
    assert_eq!(authorization, Some(format!("Bearer {token}")));
    assert_eq!(user_agent.as_deref(), Some("pycti/6.8.17"));
    assert_eq!(body, br#"{"internal":{}}"#);

    double.post_callback(&uri, b"{}", None).await;
    assert_eq!(seen_rx.recv().await.unwrap().0, None);
    let (status, _) = double
        .post_callback("http://127.0.0.1:1/api/callback", b"{}", None)
        .await;
    assert_eq!(status, 0, "connection refused");
    server.abort();
}
