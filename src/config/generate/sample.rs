//! `config.yml.sample` and the README's tables of settings.

use super::kind_text;
use crate::config::table::{self, Group, Kind, Setting, SETTINGS};

/// The value written for a required setting in the sample.
fn sample_value(s: &Setting) -> &'static str {
    if s.env == table::OPENCTI_URL.env {
        "http://localhost:8080"
    } else if s.env == table::IVRE_MAX_TLP.env {
        "TLP:AMBER"
    } else {
        "ChangeMe"
    }
}

/// A YAML scalar.
fn yaml_value(s: &Setting, text: &str) -> String {
    match s.kind {
        Kind::Bool | Kind::Int { .. } | Kind::Seconds { .. } => text.to_owned(),
        _ => format!("'{}'", text.replace('\'', "''")),
    }
}

/// The YAML sections, in the order of the table.
fn sections() -> Vec<&'static str> {
    let mut out: Vec<&str> = Vec::new();
    for (section, _) in SETTINGS.iter().filter_map(|s| s.yaml) {
        if !out.contains(&section) {
            out.push(section);
        }
    }
    out
}

/// `config.yml.sample`.
pub fn sample() -> String {
    let mut out = String::from(
        "# ivre-connector configuration, generated from src/config/table.rs (do not edit: run\n\
         # `IVRE_REGENERATE=1 cargo test --lib config::generate`). Every key can also be given as the\n\
         # environment variable named on its right; the environment wins over this file (pycti's\n\
         # rule). Booleans: true/yes/True, false/no/False. Copy to config.yml (read from the working\n\
         # directory) or pass --config FILE. Leave a key out (rather than empty) to get its default.\n\
         # Required keys are set; the others are commented out with their default.\n",
    );
    for section in sections() {
        let settings: Vec<&Setting> = SETTINGS
            .iter()
            .copied()
            .filter(|s| s.yaml.is_some_and(|(sec, _)| sec == section))
            .collect();
        out.push('\n');
        out.push_str(section);
        out.push_str(":\n");
        for s in settings {
            let Some((_, key)) = s.yaml else { continue };
            let left = if s.required {
                format!("  {key}: {}", yaml_value(s, sample_value(s)))
            } else {
                match s.default {
                    Some(d) => format!("  # {key}: {}", yaml_value(s, d)),
                    None => format!("  # {key}:"),
                }
            };
            let mut right = s.env.to_owned();
            if s.required {
                right.push_str(" (required by `run`)");
            }
            if s.secret {
                right.push_str(" (secret)");
            }
            out.push_str(&format!("  # {}\n{left:<40} # {right}\n", s.description));
        }
    }
    out
}

/// The README's tables, one per group.
pub fn readme_block() -> String {
    let mut out = String::from(
        "<!-- Generated from src/config/table.rs: run `IVRE_REGENERATE=1 cargo test --lib config::generate` after changing it. -->\n",
    );
    for group in Group::ALL {
        let settings: Vec<&Setting> = SETTINGS
            .iter()
            .copied()
            .filter(|s| s.group == group)
            .collect();
        if settings.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\n### {}\n\n| Variable | YAML key | Kind | Default | Description |\n|---|---|---|---|---|\n",
            group.title()
        ));
        for s in settings {
            let key = s
                .yaml_key()
                .map(|k| format!("`{k}`"))
                .unwrap_or_else(|| "(environment only)".into());
            let default = match (s.required, s.default) {
                (true, _) => "**required** by `run`".to_owned(),
                (false, Some("")) | (false, None) => "none".to_owned(),
                (false, Some(d)) => format!("`{d}`"),
            };
            let secret = if s.secret { " *(secret)*" } else { "" };
            out.push_str(&format!(
                "| `{}` | {key} | {} | {default} | {}{secret} |\n",
                s.env,
                kind_text(s.kind).replace('|', "\\|"),
                s.description.replace('|', "\\|")
            ));
        }
    }
    out
}
