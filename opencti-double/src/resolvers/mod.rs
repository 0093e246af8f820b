//! The resolvers of the root fields the double implements: [`Executor::resolve`] dispatches
//! to `about`, introspection (`__type`), the connector's registration and pings
//! (`connector`), the work API and bundle imports (`work`), and the entity reads
//! (`entities`).

pub(crate) mod connector;
pub(crate) mod entities;
pub(crate) mod work;

use serde_json::{json, Value};

use crate::execute::{failure, Executor, Failure};
use crate::graphql::Field;
use crate::schema::introspect_type;

impl Executor<'_> {
    pub(crate) fn resolve(&mut self, field: &Field) -> Result<Value, Failure> {
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
            "stixCoreObject" | "stixCyberObservable" | "stix" => {
                Ok(self.read_entity(&field.name, &arg_str("id").unwrap_or_default()))
            }
            other => Err(failure(format!("double: no resolver for {other}"))),
        }
    }
}
