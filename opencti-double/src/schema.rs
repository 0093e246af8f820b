//! The parts of the platform's GraphQL schema a connector touches, per version: root
//! fields, the object types whose selections are validated, input types, and the answers
//! to introspection (`__type(name:)`).

use serde_json::{json, Value};

use crate::graphql::{OperationKind, Type};
use crate::options::Version;

/// A field of an object type: name, arguments (name, type) and type, written as in SDL.
pub(crate) struct FieldDef {
    pub(crate) name: &'static str,
    pub(crate) args: Vec<(&'static str, &'static str)>,
    pub(crate) ty: &'static str,
}

fn fd(name: &'static str, args: &[(&'static str, &'static str)], ty: &'static str) -> FieldDef {
    FieldDef {
        name,
        args: args.to_vec(),
        ty,
    }
}

pub(crate) const SCALARS: &[&str] = &[
    "String", "ID", "Boolean", "Int", "Float", "DateTime", "Any", "JSON",
];
pub(crate) const CONNECTOR_TYPES: &[&str] = &[
    "EXTERNAL_IMPORT",
    "INTERNAL_IMPORT_FILE",
    "INTERNAL_ENRICHMENT",
    "INTERNAL_ANALYSIS",
    "INTERNAL_EXPORT_FILE",
    "STREAM",
];

/// The fields of `Query` / `Mutation` the double implements.
pub(crate) fn root_fields(version: Version, kind: OperationKind) -> Vec<FieldDef> {
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
pub(crate) fn object_fields(version: Version, type_name: &str) -> Option<Vec<FieldDef>> {
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
pub(crate) fn input_fields(
    version: Version,
    type_name: &str,
) -> Option<Vec<(&'static str, &'static str)>> {
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

pub(crate) fn is_input_type(version: Version, name: &str) -> bool {
    SCALARS.contains(&name) || name == "ConnectorType" || input_fields(version, name).is_some()
}

/// `__type(name:)`: kind, fields or inputFields (each `{name, type{kind,name,ofType}}`).
pub(crate) fn introspect_type(version: Version, name: &str) -> Value {
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

pub(crate) fn type_kind(version: Version, name: &str) -> &'static str {
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
