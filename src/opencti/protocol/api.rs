//! The GraphQL operations of an enrichment connector (`docs/opencti-protocol.md` §2–§7).

use super::graphql::{GraphqlClient, GraphqlError};
use crate::config::daemon::Settings;
use crate::stix::markings::PlatformMarkings;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Broker connection returned at registration.
#[derive(Clone, Deserialize, PartialEq, Eq)]
pub struct Connection {
    pub host: String,
    pub vhost: String,
    pub use_ssl: bool,
    pub port: u16,
    pub user: String,
    pub pass: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("vhost", &self.vhost)
            .field("use_ssl", &self.use_ssl)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Queue and exchange names returned at registration (possibly prefixed by the platform).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ConnectorConfig {
    pub connection: Connection,
    pub listen: String,
    pub listen_routing: String,
    pub listen_exchange: String,
    pub push: String,
    pub push_routing: String,
    pub push_exchange: String,
}

/// What `registerConnector` returns.
#[derive(Debug, Clone, Deserialize)]
pub struct Registration {
    pub id: String,
    pub connector_state: Option<String>,
    #[serde(default)]
    pub jwks: Option<String>,
    pub config: ConnectorConfig,
    pub connector_user_id: Option<String>,
}

/// Identifies a playbook step (`internal.playbook`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct PlaybookStep {
    pub event_id: Option<String>,
    pub execution_id: Option<String>,
    pub playbook_id: Option<String>,
    pub data_instance_id: Option<String>,
    pub step_id: Option<String>,
    pub previous_step_id: Option<String>,
}

/// The platform, as the connector sees it.
#[derive(Debug, Clone)]
pub struct Api {
    client: GraphqlClient,
}

fn decode<T: for<'de> Deserialize<'de>>(
    operation: &str,
    value: Option<&Value>,
) -> Result<T, GraphqlError> {
    serde_json::from_value(value.cloned().unwrap_or(Value::Null)).map_err(|e| {
        GraphqlError::Decode {
            operation: operation.to_owned(),
            reason: e.to_string(),
        }
    })
}

impl Api {
    pub fn new(settings: &Settings) -> Result<Api, GraphqlError> {
        Ok(Api {
            client: GraphqlClient::new(settings)?,
        })
    }

    /// `about { version }`: pycti's health check.
    pub async fn version(&self) -> Result<String, GraphqlError> {
        let data = self
            .client
            .query(
                "about",
                "query healthCheck { about { version } }",
                json!({}),
                None,
            )
            .await?;
        decode("about", data.pointer("/about/version"))
    }

    /// The fields of a GraphQL type (input or output), by introspection.
    pub async fn type_fields(&self, type_name: &str) -> Result<Vec<String>, GraphqlError> {
        let data = self
            .client
            .query(
                "__type",
                "query TypeFields($name: String!) { __type(name: $name) { inputFields { name } fields { name } } }",
                json!({"name": type_name}),
                None,
            )
            .await?;
        let t = data.get("__type").cloned().unwrap_or(Value::Null);
        let names = ["inputFields", "fields"]
            .iter()
            .filter_map(|k| t.get(*k).and_then(Value::as_array))
            .flatten()
            .filter_map(|f| f.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        Ok(names)
    }

    /// `registerConnector`, sending only the input fields the platform knows
    /// (`known_fields`, from introspection) and asking for `jwks` only where it exists.
    pub async fn register(
        &self,
        settings: &Settings,
        known_fields: &[String],
        with_jwks: bool,
    ) -> Result<Registration, GraphqlError> {
        let mut input = Map::new();
        input.insert("id".into(), settings.connector_id.clone().into());
        input.insert("name".into(), settings.connector_name.clone().into());
        input.insert("type".into(), "INTERNAL_ENRICHMENT".into());
        input.insert("scope".into(), json!(settings.scope));
        input.insert("auto".into(), settings.auto.into());
        input.insert("only_contextual".into(), settings.only_contextual.into());
        input.insert("playbook_compatible".into(), true.into());
        let optional = [
            ("auto_update", Value::from(settings.auto_update)),
            (
                "enrichment_resolution",
                settings.enrichment_resolution.clone().into(),
            ),
            (
                "listen_callback_uri",
                match settings.listen {
                    crate::config::daemon::ListenProtocol::Api => {
                        format!("{}{}", settings.api_listen.uri, settings.api_listen.path).into()
                    }
                    crate::config::daemon::ListenProtocol::Amqp => Value::Null,
                },
            ),
            ("version", env!("CARGO_PKG_VERSION").into()),
            ("slug", "ivre".into()),
        ];
        for (name, value) in optional {
            if known_fields.iter().any(|f| f == name) {
                input.insert(name.into(), value);
            }
        }
        let jwks = if with_jwks { "jwks" } else { "" };
        let query = format!(
            "mutation RegisterConnector($input: RegisterConnectorInput) {{ registerConnector(input: $input) {{ id connector_state {jwks} config {{ connection {{ host vhost use_ssl port user pass }} listen listen_routing listen_exchange push push_routing push_exchange }} connector_user_id }} }}"
        );
        let data = self
            .client
            .query("registerConnector", &query, json!({"input": input}), None)
            .await?;
        decode("registerConnector", data.get("registerConnector"))
    }

    /// `pingConnector`; returns the platform's `connector_state`.
    pub async fn ping(
        &self,
        connector_id: &str,
        state: Option<&str>,
    ) -> Result<Option<String>, GraphqlError> {
        let data = self
            .client
            .query(
                "pingConnector",
                "mutation PingConnector($id: ID!, $state: String, $connectorInfo: ConnectorInfoInput) { pingConnector(id: $id, state: $state, connectorInfo: $connectorInfo) { id connector_state } }",
                json!({
                    "id": connector_id,
                    "state": state.unwrap_or("null"),
                    "connectorInfo": {
                        "run_and_terminate": false,
                        "buffering": false,
                        "queue_threshold": 500.0,
                        "queue_messages_size": 0.0,
                        "next_run_datetime": null,
                        "last_run_datetime": null,
                    },
                }),
                None,
            )
            .await?;
        Ok(data
            .pointer("/pingConnector/connector_state")
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    async fn work(
        &self,
        op: &str,
        query: &str,
        variables: Value,
        draft: Option<&str>,
    ) -> Result<(), GraphqlError> {
        self.client
            .query(op, query, variables, draft)
            .await
            .map(|_| ())
    }

    pub async fn work_received(
        &self,
        work_id: &str,
        draft: Option<&str>,
    ) -> Result<(), GraphqlError> {
        self.work(
            "workEdit.toReceived",
            "mutation workToReceived($id: ID!, $message: String) { workEdit(id: $id) { toReceived(message: $message) } }",
            json!({"id": work_id, "message": "Connector ready to process the operation"}),
            draft,
        )
        .await
    }

    pub async fn work_processed(
        &self,
        work_id: &str,
        message: &str,
        in_error: bool,
        draft: Option<&str>,
    ) -> Result<(), GraphqlError> {
        self.work(
            "workEdit.toProcessed",
            "mutation workToProcessed($id: ID!, $message: String, $inError: Boolean) { workEdit(id: $id) { toProcessed(message: $message, inError: $inError) } }",
            json!({"id": work_id, "message": message, "inError": in_error}),
            draft,
        )
        .await
    }

    pub async fn work_expectations(
        &self,
        work_id: &str,
        expectations: usize,
        draft: Option<&str>,
    ) -> Result<(), GraphqlError> {
        self.work(
            "workEdit.addExpectations",
            "mutation addExpectations($id: ID!, $expectations: Int) { workEdit(id: $id) { addExpectations(expectations: $expectations) } }",
            json!({"id": work_id, "expectations": expectations}),
            draft,
        )
        .await
    }

    pub async fn work_ping(&self, work_id: &str, draft: Option<&str>) -> Result<(), GraphqlError> {
        self.work(
            "workEdit.ping",
            "mutation pingWork($id: ID!) { workEdit(id: $id) { ping } }",
            json!({"id": work_id}),
            draft,
        )
        .await
    }

    /// `stixBundlePush` (`CONNECTOR_QUEUE_PROTOCOL=api`).
    pub async fn bundle_push(
        &self,
        connector_id: &str,
        bundle: &str,
        work_id: Option<&str>,
        draft: Option<&str>,
    ) -> Result<(), GraphqlError> {
        self.work(
            "stixBundlePush",
            "mutation StixBundlePush($connectorId: String!, $bundle: String!, $work_id: String) { stixBundlePush(connectorId: $connectorId, bundle: $bundle, work_id: $work_id) }",
            json!({"connectorId": connector_id, "bundle": bundle, "work_id": work_id}),
            draft,
        )
        .await
    }

    /// `playbookStepExecution`: the bundle goes on to the next playbook step.
    pub async fn playbook_step(
        &self,
        step: &PlaybookStep,
        execution_start: &str,
        previous_bundle: &str,
        bundle: &str,
    ) -> Result<(), GraphqlError> {
        self.work(
            "playbookStepExecution",
            "mutation PlaybookStepExecution($execution_id: ID!, $event_id: ID!, $execution_start: DateTime!, $data_instance_id: ID!, $playbook_id: ID!, $previous_step_id: ID!, $step_id: ID!, $previous_bundle: String!, $bundle: String!) { playbookStepExecution(execution_id: $execution_id, event_id: $event_id, execution_start: $execution_start, data_instance_id: $data_instance_id, playbook_id: $playbook_id, previous_step_id: $previous_step_id, step_id: $step_id, previous_bundle: $previous_bundle, bundle: $bundle) }",
            json!({
                "execution_id": step.execution_id,
                "event_id": step.event_id,
                "execution_start": execution_start,
                "data_instance_id": step.data_instance_id,
                "playbook_id": step.playbook_id,
                "previous_step_id": step.previous_step_id,
                "step_id": step.step_id,
                "previous_bundle": previous_bundle,
                "bundle": bundle,
            }),
            None,
        )
        .await
    }

    /// The STIX 2.1 representation of an entity (`stix(id)`), when the message has none.
    pub async fn read_stix(
        &self,
        id: &str,
        draft: Option<&str>,
    ) -> Result<Option<Value>, GraphqlError> {
        let data = self
            .client
            .query(
                "stix",
                "query Stix($id: String!) { stix(id: $id) }",
                json!({"id": id}),
                draft,
            )
            .await?;
        match data.get("stix") {
            Some(Value::String(s)) => {
                serde_json::from_str(s)
                    .map(Some)
                    .map_err(|e| GraphqlError::Decode {
                        operation: "stix".into(),
                        reason: e.to_string(),
                    })
            }
            Some(Value::Object(o)) => Ok(Some(Value::Object(o.clone()))),
            _ => Ok(None),
        }
    }

    /// The entity's marking definitions (`objectMarking`: every kind, with its ids), for
    /// the gate; `None` when the platform does not show the entity to the connector.
    pub async fn read_markings(
        &self,
        id: &str,
        draft: Option<&str>,
    ) -> Result<Option<PlatformMarkings>, GraphqlError> {
        let data = self
            .client
            .query(
                "stixCoreObject",
                "query Entity($id: String!) { stixCoreObject(id: $id) { id standard_id entity_type objectMarking { id standard_id definition_type definition } } }",
                json!({"id": id}),
                draft,
            )
            .await?;
        let Some(entity) = data.get("stixCoreObject").filter(|e| !e.is_null()) else {
            return Ok(None);
        };
        Ok(Some(PlatformMarkings::from_graphql(
            entity.get("objectMarking"),
        )))
    }
}
