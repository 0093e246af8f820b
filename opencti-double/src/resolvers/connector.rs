//! `registerConnector` and `pingConnector` (§3): the double's checks of the registration
//! input, the stored connector state and its reset, and the connector object with its
//! broker configuration and, on 7.x, the JWKS.

use serde_json::{json, Map, Value};

use crate::execute::{failure, Executor, Failure};
use crate::jwt::jwks_json;
use crate::CONNECTOR_USER_ID;

impl Executor<'_> {
    /// `registerConnector`: the double-specific checks, then the connector with its config.
    pub(super) fn register(&mut self, input: Option<&Value>) -> Result<Value, Failure> {
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
    pub(super) fn ping(&mut self, args: &Map<String, Value>) -> Result<Value, Failure> {
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
}
