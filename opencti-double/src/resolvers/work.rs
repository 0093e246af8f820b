//! The work API (`workEdit`: `toReceived`, `toProcessed`, `addExpectations`,
//! `reportExpectation`, `ping`), recorded per work, and the bundle imports of the API
//! listen mode and of playbooks (`stixBundlePush`, `playbookStepExecution`), which only
//! check that a bundle was sent.

use serde_json::{json, Map, Value};

use crate::execute::{failure, Executor, Failure};
use crate::graphql::Field;

impl Executor<'_> {
    /// `workEdit(id) { op… }`: each operation answers the work id and updates its progress.
    pub(super) fn work_edit(&mut self, id: &str, field: &Field) -> Value {
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
    pub(super) fn bundle_push(&mut self, args: &Map<String, Value>) -> Result<Value, Failure> {
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

    pub(super) fn playbook_step(&mut self, args: &Map<String, Value>) -> Result<Value, Failure> {
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
