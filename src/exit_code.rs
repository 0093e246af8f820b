//! The exit codes of every command of both binaries (`ivre-connector`, `ivre-sync`), in
//! one table (README.md, "Exit codes"; `--help` of both binaries).
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | failure at run time (I/O, network, a source that does not answer, a store's archive that does not check out); `health`: the daemon is not ready or does not answer |
//! | 2 | usage error: the command line does not parse (clap) |
//! | 3 | published, but some input lines were rejected (`import`, `pull`) |
//! | 4 | published here, but the upload to the store failed (`--publish`) |
//! | 5 | no snapshot: the data directory does not exist or nothing was published in it |
//! | 6 | refused input: an observable that does not parse or is above `IVRE_MAX_TLP` (`lookup`, `enrich`: answered with an error line, the others answered), an unknown `--marking`, a malformed line under `--strict`, a file that is not NDJSON, a MaxMind file that does not verify |
//! | 7 | invalid configuration: a setting (environment, configuration file) that is invalid or missing |
//! | 8 | the served snapshot is damaged: `index verify` found problems, or the generation does not open |
//! | 130 | interrupted: a second Ctrl-C / SIGTERM while the daemon was stopping |
//!
//! The binaries end on an error with [`report`] (the error printed, then its code from
//! [`for_error`]); commands that end without an error return their code themselves.

use std::error::Error;

/// Success.
pub const OK: i32 = 0;
/// Failure at run time.
pub const FAILURE: i32 = 1;
/// The command line does not parse (clap's own code).
pub const USAGE: i32 = 2;
/// Published, but some input lines were rejected.
pub const REJECTED_LINES: i32 = 3;
/// Published here, but the upload to the store failed.
pub const UPLOAD_FAILED: i32 = 4;
/// No snapshot in the data directory.
pub const NO_SNAPSHOT: i32 = 5;
/// Some input was refused.
pub const REFUSED_INPUT: i32 = 6;
/// Invalid configuration.
pub const CONFIG: i32 = 7;
/// The served snapshot is damaged.
pub const DAMAGED: i32 = 8;
/// Interrupted (128 + SIGINT).
pub const INTERRUPTED: i32 = 130;

/// The table, for `--help` and the README: `(code, meaning)`.
pub const TABLE: &[(i32, &str)] = &[
    (OK, "success"),
    (
        FAILURE,
        "failure at run time; `health`: not ready or no answer",
    ),
    (USAGE, "usage error: the command line does not parse"),
    (
        REJECTED_LINES,
        "published, but some input lines were rejected",
    ),
    (
        UPLOAD_FAILED,
        "published here, but the upload to the store failed",
    ),
    (NO_SNAPSHOT, "no snapshot in the data directory"),
    (
        REFUSED_INPUT,
        "refused input (observable, --marking, a line under --strict, not NDJSON)",
    ),
    (
        CONFIG,
        "invalid configuration (environment, configuration file)",
    ),
    (
        DAMAGED,
        "the served snapshot is damaged (index verify, or it does not open)",
    ),
    (INTERRUPTED, "interrupted while stopping"),
];

/// The table as `--help` text ("Exit codes:" and one line per code).
pub fn help_text() -> String {
    let mut text = String::from("Exit codes:\n");
    for (code, meaning) in TABLE {
        text.push_str(&format!("  {code:>3}  {meaning}\n"));
    }
    text
}

/// The exit code of a command that ended on `error`: the first error of its chain (the
/// error, then its sources) that the table names, else [`FAILURE`].
pub fn for_error(error: &(dyn Error + 'static)) -> i32 {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(code) = of(e) {
            return code;
        }
        next = e.source();
    }
    FAILURE
}

/// The code of one error, when the table names its kind.
fn of(e: &(dyn Error + 'static)) -> Option<i32> {
    use crate::snapshot::SnapshotError as S;
    if let Some(e) = e.downcast_ref::<S>() {
        return match e {
            S::NoDataDir { .. } | S::NoSnapshot { .. } => Some(NO_SNAPSHOT),
            S::BadCurrent { .. }
            | S::MissingGeneration { .. }
            | S::BadManifest { .. }
            | S::UnsupportedFormat { .. }
            | S::MissingIndex { .. } => Some(DAMAGED),
            S::Open { .. } | S::Index(_) => Some(DAMAGED),
            // Inputs of an import: a malformed line under --strict, a JSON document, a
            // MaxMind file that does not verify.
            S::Strict { .. } | S::NotNdjson { .. } | S::NothingToImport | S::Geo(_) => {
                Some(REFUSED_INPUT)
            }
            _ => None,
        };
    }
    if e.is::<crate::config::ConfigError>()
        || e.is::<crate::config::SettingsError>()
        || e.is::<crate::config::DurationError>()
    {
        return Some(CONFIG);
    }
    // Transparent variants: their inner error is not a source of its own.
    if let Some(crate::refresh::pull::PullError::Settings(_)) = e.downcast_ref() {
        return Some(CONFIG);
    }
    if let Some(crate::refresh::watch::WatchError::Snapshot(inner)) = e.downcast_ref() {
        return of(inner);
    }
    if let Some(crate::daemon::DaemonError::NoSnapshot { .. }) = e.downcast_ref() {
        return Some(NO_SNAPSHOT);
    }
    if e.is::<RefusedInput>() {
        return Some(REFUSED_INPUT);
    }
    None
}

/// An input the command refuses (an unknown `--marking`…): exit code [`REFUSED_INPUT`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RefusedInput(pub String);

/// What both binaries do with the error a command ends with: prints `error: ` and the
/// error with its causes (as `anyhow`'s `{:#}`) on stderr, and returns its exit code.
pub fn report(error: &(dyn Error + 'static)) -> i32 {
    eprintln!("error: {}", crate::logging::chain(error));
    for_error(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn codes_are_distinct_and_the_table_lists_each_once() {
        let codes: Vec<i32> = TABLE.iter().map(|(c, _)| *c).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), codes.len(), "{codes:?}");
        for code in [
            OK,
            FAILURE,
            USAGE,
            REJECTED_LINES,
            UPLOAD_FAILED,
            NO_SNAPSHOT,
            REFUSED_INPUT,
            CONFIG,
            DAMAGED,
            INTERRUPTED,
        ] {
            assert!(codes.contains(&code), "{code} missing from TABLE");
            assert!(help_text().contains(&format!("{code:>3}  ")), "{code}");
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("wrapped")]
    struct Wrapped(#[source] crate::snapshot::SnapshotError);

    #[test]
    fn errors_map_through_their_sources() {
        let root = PathBuf::from("/nowhere");
        let no = crate::snapshot::SnapshotError::NoSnapshot { root: root.clone() };
        assert_eq!(for_error(&no), NO_SNAPSHOT);
        assert_eq!(for_error(&Wrapped(no)), NO_SNAPSHOT);
        let damaged = crate::snapshot::SnapshotError::MissingIndex {
            name: "gen-x".into(),
            path: root.clone(),
        };
        assert_eq!(for_error(&damaged), DAMAGED);
        let duration = crate::config::parse_duration("5x").unwrap_err();
        assert_eq!(for_error(&duration), CONFIG);
        assert_eq!(for_error(&RefusedInput("x".into())), REFUSED_INPUT);
        let no_url = crate::refresh::pull::PullError::Settings(crate::config::SettingsError(vec![
            "no IVRE URL".into(),
        ]));
        assert_eq!(for_error(&no_url), CONFIG);
        let watched = crate::refresh::watch::WatchError::Snapshot(
            crate::snapshot::SnapshotError::NoSnapshot { root: root.clone() },
        );
        assert_eq!(for_error(&watched), NO_SNAPSHOT);
        let io = std::io::Error::other("disk full");
        assert_eq!(for_error(&io), FAILURE);
    }
}
