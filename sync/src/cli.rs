//! The `ivre-sync` command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ivre_connector::config::GlobalArgs;
use ivre_connector::ivre::RecordKind;
use ivre_connector::snapshot::{self, ImportOptions};
use std::path::PathBuf;

/// Exit code when a snapshot was published but some lines were rejected.
pub const EXIT_REJECTED: i32 = 3;

/// Builds and publishes snapshots of IVRE data.
#[derive(Debug, Parser)]
#[command(name = "ivre-sync", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a new snapshot from NDJSON exports (gzip or not) and publish it
    Import {
        /// `ivre scancli --json` output, web `/cgi/scans?format=ndjson` or mongoexport of `hosts`
        #[arg(long = "scans", value_name = "FILE")]
        scans: Vec<PathBuf>,
        /// `ivre ipinfo --json` output, web `/cgi/passive?format=ndjson` or mongoexport of `passive`
        #[arg(long = "passive", value_name = "FILE")]
        passive: Vec<PathBuf>,
        /// `ivre view --json` output, web `/cgi/view?format=ndjson` or mongoexport of `views`
        #[arg(long = "view", value_name = "FILE")]
        view: Vec<PathBuf>,
        /// Directory of MaxMind .mmdb files [default: carry forward the served snapshot's]
        #[arg(long, value_name = "DIR")]
        geoip_dir: Option<PathBuf>,
        /// Abort without publishing at the first malformed line
        #[arg(long)]
        strict: bool,
    },
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let (_config, data) = cli.global.load()?;
    match cli.command {
        Command::Import {
            scans,
            passive,
            view,
            geoip_dir,
            strict,
        } => {
            let inputs = scans
                .into_iter()
                .map(|p| (RecordKind::Scan, p))
                .chain(view.into_iter().map(|p| (RecordKind::View, p)))
                .chain(passive.into_iter().map(|p| (RecordKind::Passive, p)))
                .collect();
            let options = ImportOptions {
                inputs,
                geoip_dir,
                strict,
            };
            let report = snapshot::import(&data, &options)
                .with_context(|| format!("import into {} failed", data.root().display()))?;
            let m = &report.manifest;
            let count = |k: &str| m.counts.get(k).copied().unwrap_or(0);
            println!(
                "published {} in {}: {} scans, {} view, {} passive, {} rejected line(s), {:.2} s",
                m.generation,
                data.root().display(),
                count("scans"),
                count("view"),
                count("passive"),
                m.rejected,
                m.build_seconds
            );
            if m.rejected > 0 {
                eprintln!(
                    "warning: {} malformed line(s) were skipped; see the log above or `ivre-connector index info`",
                    m.rejected
                );
            }
            Ok(if m.rejected > 0 { EXIT_REJECTED } else { 0 })
        }
    }
}
