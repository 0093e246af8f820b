//! The HTTP side of the double: every request is recorded as a [`GraphqlCall`] and
//! answered like Apollo Server 4 on the platform (`/graphql` only, POST, JSON body with a
//! non-empty `query`, bearer token, then the operation); outages ([`crate::faults`]) and
//! injected rejections ([`crate::PlatformDouble::reject_next`]) are applied here.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::execute::Executor;
use crate::faults;
use crate::graphql::{self, Document, Field, Operation};
use crate::records::{GraphqlCall, Reject};
use crate::state::Shared;

impl Shared {
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
        let doc = match graphql::parse(query) {
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
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: AnswerBody,
}

pub(crate) enum AnswerBody {
    Json(Value),
    Text(String),
}

impl Answer {
    pub(crate) fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            body: AnswerBody::Json(body),
        }
    }

    pub(crate) fn text(status: u16, body: String) -> Answer {
        Answer {
            status,
            body: AnswerBody::Text(body),
        }
    }

    /// `{"errors":[{"message", "extensions":{"code"}}]}` (no `data`: request-level error).
    pub(crate) fn error(status: u16, message: &str, code: &str) -> Answer {
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

pub(crate) async fn handle_http(
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
