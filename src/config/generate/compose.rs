//! `docker-compose.yml` and `docker-compose.airgap.yml`, in the form of the OpenCTI
//! connectors' compose files: one service, its environment (required variables set,
//! every other one commented out with its default), `restart: always`.

use crate::config::table::{self, Group, Setting, SETTINGS};

/// The image the compose files run.
pub const IMAGE: &str = "opencti/connector-ivre:latest";
/// The data directory inside the container (a named volume).
pub const CONTAINER_DATA_DIR: &str = "/data";
/// The drop folder inside the container, in the air-gapped compose file.
pub const CONTAINER_DROP_DIR: &str = "/drop";

/// A value set (not commented) in a compose file.
fn set_value(s: &Setting, airgap: bool) -> Option<String> {
    if s.required {
        return Some(if s.env == table::IVRE_MAX_TLP.env {
            "TLP:AMBER".into()
        } else {
            "ChangeMe".into()
        });
    }
    if s.env == table::IVRE_DATA_DIR.env {
        return Some(CONTAINER_DATA_DIR.into());
    }
    if airgap && s.env == table::IVRE_DROP_DIR.env {
        return Some(CONTAINER_DROP_DIR.into());
    }
    // Connected sites: the daemon pulls its snapshot from this URL (and asks it on a miss).
    if !airgap && s.env == table::IVRE_DB_URL.env {
        return Some("ChangeMe".into());
    }
    None
}

fn render(header: &str, airgap: bool) -> String {
    let mut out = String::from(header);
    out.push_str(&format!(
        "services:\n  connector-ivre:\n    image: {IMAGE}\n    environment:\n"
    ));
    for group in Group::ALL {
        // Without IVRE URLs, neither the sources nor the fallback apply.
        if airgap && matches!(group, Group::IvreSources | Group::Fallback) {
            continue;
        }
        let settings: Vec<&Setting> = SETTINGS
            .iter()
            .copied()
            .filter(|s| s.group == group)
            .collect();
        out.push_str(&format!("      # {}\n", group.title()));
        for s in settings {
            match (set_value(s, airgap), s.default) {
                (Some(v), _) => out.push_str(&format!("      - {}={v}\n", s.env)),
                (None, Some(d)) => out.push_str(&format!("      # - {}={d}\n", s.env)),
                (None, None) => out.push_str(&format!("      # - {}=\n", s.env)),
            }
        }
    }
    out.push_str(&format!(
        "    volumes:\n      - ivre-data:{CONTAINER_DATA_DIR}\n"
    ));
    if airgap {
        out.push_str(&format!("      - ./ivre-drop:{CONTAINER_DROP_DIR}\n"));
    }
    out.push_str("    restart: always\n\nvolumes:\n  ivre-data:\n");
    out
}

const GENERATED: &str = "# Generated from src/config/table.rs (do not edit: run\n\
     # `IVRE_REGENERATE=1 cargo test --lib config::generate`). Required variables are set to\n\
     # ChangeMe; every other one is listed commented out with its default.\n";

/// `docker-compose.yml`: the connector next to OpenCTI, with live IVRE or not.
pub fn compose() -> String {
    render(
        &format!(
            "# ivre-connector next to OpenCTI: add this service to OpenCTI's docker-compose.yml\n\
             # (or run it with `docker compose up -d` on the same network). Snapshots live in the\n\
             # `ivre-data` volume, pulled from live IVRE at IVRE_DB_URL (mongodb://… or http(s)://…/cgi).\n\
             # CONNECTOR_ID may stay unset: a stable id is derived from CONNECTOR_NAME.\n{GENERATED}\n"
        ),
        false,
    )
}

/// `docker-compose.airgap.yml`: no IVRE URL, snapshots built from a drop folder.
pub fn compose_airgap() -> String {
    render(
        &format!(
            "# ivre-connector on an air-gapped site: no IVRE URL; on the connected side, export\n\
             # IVRE's data (`ivre scancli --json`, `ivre ipinfo --json`, `ivre view --json`, MaxMind\n\
             # .mmdb files), carry the files over, and put them into ./ivre-drop (write then\n\
             # rename, or add a `<file>.ready` marker when done). The connector imports what\n\
             # arrives there into a new snapshot generation in the `ivre-data` volume and serves it;\n\
             # `*.delta.jsonl[.gz]` files update the served generation instead.\n{GENERATED}\n"
        ),
        true,
    )
}
