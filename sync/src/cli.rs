//! The `ivre-sync` command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ivre_connector::config::ConfigFile;
use ivre_connector::ivre::RecordKind;
use ivre_connector::snapshot::{self, DataDir, ImportOptions};
use std::path::PathBuf;

/// Exit code when a snapshot was published but some lines were rejected.
pub const EXIT_REJECTED: i32 = 3;

/// Builds and publishes snapshots of IVRE data.
#[derive(Debug, Parser)]
#[command(name = "ivre-sync", version, about)]
pub struct Cli {
    /// Data directory holding the snapshots [default: IVRE_DATA_DIR, ivre.data_dir, ./ivre-data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file [default: ./config.yml when present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More logs (-v: info, -vv: debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
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
    let config = ConfigFile::load(cli.config.as_deref())?;
    let data = DataDir::new(config.data_dir(cli.data_dir.as_deref()));
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
