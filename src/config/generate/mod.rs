//! Files rendered from the table of settings: the connector manager's JSON schema and
//! its documentation (`__metadata__/`), `config.yml.sample`, the README's tables and the
//! compose files. A test compares each with its rendering; `IVRE_REGENERATE=1 cargo test
//! --lib config::generate` rewrites them.

mod compose;
mod sample;
mod schema;

use super::table::{Kind, Setting};

pub use compose::{compose, compose_airgap};
pub use sample::{readme_block, sample};
pub use schema::{schema, schema_doc};

/// The README markers around the generated block.
pub const README_BEGIN: &str = "<!-- settings:begin -->";
pub const README_END: &str = "<!-- settings:end -->";

/// A generated file: its path from the repository root and its rendering.
pub struct Generated {
    pub path: &'static str,
    pub text: String,
}

/// Every generated file but the README's block.
pub fn files() -> Vec<Generated> {
    vec![
        Generated {
            path: "__metadata__/connector_config_schema.json",
            text: schema::schema_text(),
        },
        Generated {
            path: "__metadata__/CONNECTOR_CONFIG_DOC.md",
            text: schema_doc(&schema()),
        },
        Generated {
            path: "config.yml.sample",
            text: sample(),
        },
        Generated {
            path: "docker-compose.yml",
            text: compose(),
        },
        Generated {
            path: "docker-compose.airgap.yml",
            text: compose_airgap(),
        },
    ]
}

/// `readme` with its block between [`README_BEGIN`] and [`README_END`] replaced by
/// [`readme_block`]; `None` without the markers.
pub fn replace_readme_block(readme: &str) -> Option<String> {
    let start = readme.find(README_BEGIN)? + README_BEGIN.len();
    let end = start + readme[start..].find(README_END)?;
    Some(format!(
        "{}\n{}{}",
        &readme[..start],
        readme_block(),
        &readme[end..]
    ))
}

/// True for the settings the schema leaves to the connector manager (it sets them
/// itself and the connectors repository's schemas do not list them).
fn managed_outside_schema(setting: &Setting) -> bool {
    setting.manager && !setting.required
}

/// A short name of the kind, for the README.
fn kind_text(kind: Kind) -> String {
    match kind {
        Kind::Str => "text".into(),
        Kind::Bool => "boolean".into(),
        Kind::Int { min, max } if max == u64::MAX => format!("integer ≥ {min}"),
        Kind::Int { min, max } => format!("integer {min}–{max}"),
        Kind::Seconds { .. } => "seconds".into(),
        Kind::Duration => "duration".into(),
        Kind::Period => "duration or off".into(),
        Kind::Enum(values) => values.join(", "),
        Kind::Uri => "URI".into(),
        Kind::Path => "path".into(),
        Kind::List => "comma-separated list".into(),
        Kind::Ip => "IP address".into(),
    }
}

#[cfg(test)]
mod tests;
