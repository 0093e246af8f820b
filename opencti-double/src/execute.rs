//! One GraphQL operation, executed like graphql-js on the platform: validation against the
//! version's schema (HTTP 400, `GRAPHQL_VALIDATION_FAILED`; `crate::validate`), variable
//! coercion (`BAD_USER_INPUT`), then the root fields in order through the resolvers
//! (`crate::resolvers`), each result projected on its selection set.

use serde_json::{json, Map, Value};

use crate::graphql::{Document, Operation, Selection};
use crate::http::Answer;
use crate::options::Version;
use crate::state::{DoubleState, Shared};

/// A resolver failure: `{"errors":[{message, path, extensions:{code}}], "data":{field:null}}`.
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) code: &'static str,
}

pub(crate) fn failure(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: "VALIDATION_ERROR",
    }
}

/// One operation: validation (HTTP 400), variable coercion (BAD_USER_INPUT), resolvers.
pub(crate) struct Executor<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) state: &'a mut DoubleState,
    pub(crate) doc: &'a Document,
    pub(crate) op: &'a Operation,
    pub(crate) raw_variables: &'a Map<String, Value>,
    pub(crate) variables: Map<String, Value>,
}

impl Executor<'_> {
    pub(crate) fn run(mut self) -> Answer {
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

    pub(crate) fn version(&self) -> Version {
        self.shared.version
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
