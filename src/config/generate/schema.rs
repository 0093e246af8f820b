//! `__metadata__/connector_config_schema.json` and `CONNECTOR_CONFIG_DOC.md`, in the form
//! of the OpenCTI connectors repository (JSON Schema draft 2020-12, properties keyed by
//! environment variable; the documentation is rendered from the schema).

use super::managed_outside_schema;
use crate::config::parse_list;
use crate::config::table::{Kind, Setting, SETTINGS};
use serde_json::{json, Map, Value};

/// The schema's `$id`.
pub const SCHEMA_ID: &str = "https://www.filigran.io/connectors/ivre_config.schema.json";

const FORMATS_LINK: &str =
    "https://json-schema.org/understanding-json-schema/reference/string#built-in-formats";

/// One property (keys in alphabetical order, as in the connectors repository).
fn property(s: &Setting) -> Value {
    let mut p = Map::new();
    let default = s.default.map(|d| match s.kind {
        Kind::Bool => Value::Bool(crate::config::parse_bool(d).unwrap_or(false)),
        Kind::Int { .. } | Kind::Seconds { .. } => d.parse::<u64>().map_or(json!(d), Value::from),
        Kind::List => json!(parse_list(d)),
        _ => json!(d),
    });
    if let Kind::Enum([only]) = s.kind {
        p.insert("const".into(), json!(only));
    }
    if let Some(d) = default {
        p.insert("default".into(), d);
    }
    p.insert("description".into(), json!(s.description));
    if let Kind::Enum(values) = s.kind {
        if values.len() > 1 {
            p.insert("enum".into(), json!(values));
        }
    }
    let secret = s.secret && !s.manager;
    if secret {
        p.insert("format".into(), json!("password"));
    } else if s.kind == Kind::Uri {
        p.insert("format".into(), json!("uri"));
    }
    if s.kind == Kind::List {
        p.insert("items".into(), json!({"type": "string"}));
    }
    match s.kind {
        Kind::Int { max, .. } if max != u64::MAX => {
            p.insert("maximum".into(), json!(max));
        }
        Kind::Uri if !secret => {
            p.insert("maxLength".into(), json!(2083));
        }
        _ => {}
    }
    match s.kind {
        Kind::Int { min, .. } | Kind::Seconds { min } if min > 0 => {
            p.insert("minimum".into(), json!(min));
        }
        Kind::Uri if !secret => {
            p.insert("minLength".into(), json!(1));
        }
        _ => {}
    }
    if s.kind == Kind::Duration {
        p.insert("pattern".into(), json!("^[0-9]+[smhd]?$"));
    }
    if s.kind == Kind::Period {
        p.insert("pattern".into(), json!("^([0-9]+[smhd]?|off)$"));
    }
    let ty = match s.kind {
        Kind::Bool => "boolean",
        Kind::Int { .. } | Kind::Seconds { .. } => "integer",
        Kind::List => "array",
        _ => "string",
    };
    p.insert("type".into(), json!(ty));
    if secret {
        p.insert("writeOnly".into(), json!(true));
    }
    Value::Object(p)
}

/// The schema.
pub fn schema() -> Value {
    let listed = || SETTINGS.iter().filter(|s| !managed_outside_schema(s));
    let properties: Map<String, Value> =
        listed().map(|s| (s.env.to_owned(), property(s))).collect();
    let required: Vec<&str> = listed().filter(|s| s.required).map(|s| s.env).collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": true,
    })
}

/// The schema as written in the file (two-space indentation, final newline).
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// A table cell: no line break, `|` escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The documentation of `schema`, as the connectors repository renders it: required
/// variables first.
pub fn schema_doc(schema: &Value) -> String {
    let mut out = String::from(
        "# Connector Configurations\n\n\
         Below is an exhaustive enumeration of all configurable parameters available, each accompanied by detailed explanations of their purposes, default behaviors, and usage guidelines to help you understand and utilize them effectively.\n\n\
         ### Type: `object`\n\n\
         | Property | Type | Required | Possible values | Default | Description |\n\
         | -------- | ---- | -------- | --------------- | ------- | ----------- |\n",
    );
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return out;
    };
    let (first, rest): (Vec<_>, Vec<_>) = properties
        .iter()
        .partition(|(name, _)| required.contains(&name.as_str()));
    for (name, p) in first.into_iter().chain(rest) {
        let ty = p["type"].as_str().unwrap_or("string");
        let shown_type = if p.get("const").is_some() {
            "const"
        } else {
            ty
        };
        let values = if let Some(c) = p.get("const").and_then(Value::as_str) {
            format!("`{c}`")
        } else if let Some(e) = p["enum"].as_array() {
            e.iter()
                .filter_map(Value::as_str)
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(" ")
        } else if let Some(f) = p["format"].as_str() {
            format!("Format: [`{f}`]({FORMATS_LINK})")
        } else if ty == "array" {
            p["items"]["type"].as_str().unwrap_or("string").to_owned()
        } else {
            ty.to_owned()
        };
        let default = p
            .get("default")
            .map(|d| format!("`{}`", d.to_string().replace("\",\"", "\", \"")))
            .unwrap_or_default();
        let description = if p.get("const").is_some() {
            String::new()
        } else {
            cell(p["description"].as_str().unwrap_or_default())
        };
        let req = if required.contains(&name.as_str()) {
            "✅"
        } else {
            ""
        };
        out.push_str(&format!(
            "| {name} | `{shown_type}` | {req} | {values} | {default} | {description} |\n"
        ));
    }
    out
}
