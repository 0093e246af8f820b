//! The generated files (schema, its documentation, `config.yml.sample`, compose files,
//! README tables) match their rendering from the table, the schema has the connectors
//! repository's form, and the YAML files parse and list every variable.
use super::*;
use std::path::Path;

/// `IVRE_REGENERATE=1` rewrites the files instead of comparing them.
fn regenerate() -> bool {
    std::env::var("IVRE_REGENERATE").is_ok_and(|v| v == "1")
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

const HINT: &str = "is not what src/config/table.rs renders: run `IVRE_REGENERATE=1 cargo test --lib config::generate` and commit the result";

#[test]
fn generated_files_are_up_to_date() {
    let mut stale = Vec::new();
    for file in files() {
        let path = root().join(file.path);
        if regenerate() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).unwrap();
            }
            std::fs::write(&path, &file.text).unwrap();
            continue;
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(file.text.as_str()) {
            stale.push(file.path);
        }
    }
    let readme_path = root().join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let rendered = replace_readme_block(&readme).expect("README.md has the settings markers");
    if regenerate() {
        std::fs::write(&readme_path, rendered).unwrap();
    } else if rendered != readme {
        stale.push("README.md (settings block)");
    }
    assert!(stale.is_empty(), "{stale:?} {HINT}");
}

#[test]
fn the_schema_follows_the_connectors_repository() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["additionalProperties"], true);
    let p = &schema["properties"];
    assert!(p.get("CONNECTOR_ID").is_none(), "set by the manager");
    assert_eq!(p["OPENCTI_URL"]["format"], "uri");
    assert_eq!(p["MQ_PASS"]["format"], "password");
    assert_eq!(p["MQ_PASS"]["writeOnly"], true);
    assert_eq!(p["CONNECTOR_TYPE"]["const"], "INTERNAL_ENRICHMENT");
    assert_eq!(p["CONNECTOR_AUTO"]["default"], false);
    assert_eq!(p["CONNECTOR_METRICS_PORT"]["default"], 9095);
    assert_eq!(p["CONNECTOR_SCOPE"]["type"], "array");
    assert_eq!(p["IVRE_MAX_TLP"]["enum"][3], "TLP:AMBER");
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["OPENCTI_URL", "OPENCTI_TOKEN", "IVRE_MAX_TLP"]);
    let doc = schema_doc(&schema);
    assert!(doc.contains("| IVRE_MAX_TLP | `string` | ✅ | `TLP:CLEAR` `TLP:WHITE`"));
}

#[test]
fn the_yaml_files_parse_and_list_every_variable() {
    let sample = crate::config::ConfigFile::parse(&sample(), None).unwrap();
    assert_eq!(
        sample.value(&crate::config::table::IVRE_MAX_TLP).as_deref(),
        Some("TLP:AMBER")
    );
    for (text, airgap) in [(compose(), false), (compose_airgap(), true)] {
        let yaml: serde_norway::Value = serde_norway::from_str(&text).unwrap();
        let env = &yaml["services"]["connector-ivre"]["environment"];
        assert!(env
            .as_sequence()
            .unwrap()
            .iter()
            .any(|v| v.as_str() == Some("IVRE_MAX_TLP=TLP:AMBER")));
        assert_eq!(
            yaml["services"]["connector-ivre"]["restart"].as_str(),
            Some("always")
        );
        for s in crate::config::table::SETTINGS {
            let listed = text.contains(&format!("- {}=", s.env));
            let url_like = matches!(
                s.group,
                crate::config::table::Group::IvreSources | crate::config::table::Group::Fallback
            );
            assert_eq!(
                listed,
                !(airgap && url_like),
                "{} in compose (airgap: {airgap})",
                s.env
            );
        }
    }
    assert!(compose_airgap().contains("- IVRE_DROP_DIR=/drop\n"));
    assert!(compose_airgap().contains("- ./ivre-drop:/drop\n"));
}
