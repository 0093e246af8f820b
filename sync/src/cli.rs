//! The `ivre-sync` command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ivre_connector::config::GlobalArgs;
use ivre_connector::ivre::RecordKind;
use ivre_connector::refresh;
use ivre_connector::snapshot::{self, ImportOptions};
use std::path::PathBuf;

/// Exit code when a snapshot was published but some lines were rejected.
pub const EXIT_REJECTED: i32 = 3;
// 4 (`distribute::EXIT_UPLOAD_FAILED`): published here, but the upload to the store failed.

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
    /// Import exports dropped into a folder (air-gapped sites): write-then-rename or a
    /// `<file>.ready` marker; `*.delta.jsonl[.gz]` are merged; `.mmdb` files update geo data
    Watch {
        #[arg(long, value_name = "DIR")]
        drop_dir: PathBuf,
        /// Import a file only once its `<name>.ready` marker exists, files already there
        /// at start-up included [default: IVRE_DROP_READY_MARKER, ivre.drop_ready_marker]
        #[arg(long)]
        ready_marker: bool,
        /// Also upload each published generation to this store (s3://BUCKET/PREFIX or
        /// file:///DIR) [default: IVRE_SNAPSHOT_PUBLISH, ivre.snapshot_publish]
        #[arg(long, value_name = "URL")]
        publish: Option<String>,
    },
    /// Snapshot live IVRE (IVRE_DB_URL: mongodb://… or http(s)://…/cgi): full, or
    /// incremental when the served snapshot came from the same source
    Pull {
        /// Pull once and exit (the default)
        #[arg(long, conflicts_with = "every")]
        once: bool,
        /// Pull again every DURATION (30m, 1h, 1d…); a failed pull is logged and retried
        #[arg(long, value_name = "DURATION")]
        every: Option<String>,
        /// Always pull everything
        #[arg(long)]
        full: bool,
        /// Also upload each published generation to this store (s3://BUCKET/PREFIX or
        /// file:///DIR) [default: IVRE_SNAPSHOT_PUBLISH, ivre.snapshot_publish]
        #[arg(long, value_name = "URL")]
        publish: Option<String>,
    },
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
        /// Also upload each published generation to this store (s3://BUCKET/PREFIX or
        /// file:///DIR) [default: IVRE_SNAPSHOT_PUBLISH, ivre.snapshot_publish]
        #[arg(long, value_name = "URL")]
        publish: Option<String>,
    },
    /// Upload the served generation to a store (s3://BUCKET/PREFIX or file:///DIR), with
    /// its manifest and checksum, for replicas to fetch (S3: AWS_ENDPOINT_URL, AWS_REGION,
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP)
    Publish {
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Install the store's latest generation here (checksum and index verified) unless it
    /// is already here; the serving process swaps to it
    Fetch {
        #[arg(long, value_name = "URL")]
        from: String,
        /// Fetch again every DURATION (30s, 5m, 1h…); a failed fetch is logged and retried
        #[arg(long, value_name = "DURATION")]
        every: Option<String>,
    },
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let (config, data) = cli.global.load()?;
    match cli.command {
        Command::Watch {
            drop_dir,
            ready_marker,
            publish,
        } => {
            set_publish_target(publish, &config)?;
            let ready_marker = ready_marker
                || config
                    .flag(&ivre_connector::config::table::IVRE_DROP_READY_MARKER)
                    .context("cannot read the drop folder settings")?;
            // Stops on Ctrl-C / SIGTERM like the rest of the command line: the process ends.
            let stop = tokio_util::sync::CancellationToken::new();
            refresh::watch::watch(&data, &drop_dir, ready_marker, &stop, |_, outcome| {
                if outcome.is_ok() {
                    crate::distribute::after_publish(&data);
                }
            })?;
            Ok(0)
        }
        Command::Pull {
            once: _,
            every,
            full,
            publish,
        } => {
            set_publish_target(publish, &config)?;
            let every = every.as_deref().map(refresh::parse_duration).transpose()?;
            let targets = refresh::Targets::from_config(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(async {
                loop {
                    match refresh::pull_once(&data, &targets, full, true).await {
                        Ok(report) => {
                            print_report(&data, &report.manifest);
                            let uploaded = crate::distribute::after_publish_async(&data).await;
                            if !uploaded && every.is_none() {
                                return Ok(crate::distribute::EXIT_UPLOAD_FAILED);
                            }
                        }
                        Err(e) if every.is_some() => tracing::error!(
                            error = format!("{e:#}"),
                            "pull failed; nothing published"
                        ),
                        Err(e) => return Err(e),
                    }
                    let Some(period) = every else { return Ok(0) };
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => return Ok(0),
                        _ = tokio::time::sleep(period) => {}
                    }
                }
            })
        }
        Command::Import {
            scans,
            passive,
            view,
            geoip_dir,
            strict,
            publish,
        } => {
            set_publish_target(publish, &config)?;
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
                ..Default::default()
            };
            let report = snapshot::import(&data, &options)
                .with_context(|| format!("import into {} failed", data.root().display()))?;
            print_report(&data, &report.manifest);
            let uploaded = crate::distribute::after_publish(&data);
            let m = &report.manifest;
            if m.rejected > 0 {
                eprintln!(
                    "warning: {} malformed line(s) were skipped; see the log above or `ivre-connector index info`",
                    m.rejected
                );
            }
            Ok(if !uploaded {
                crate::distribute::EXIT_UPLOAD_FAILED
            } else if m.rejected > 0 {
                EXIT_REJECTED
            } else {
                0
            })
        }
        Command::Publish { to } => crate::distribute::publish_command(&data, &config, &to),
        Command::Fetch { from, every } => {
            let every = every.as_deref().map(refresh::parse_duration).transpose()?;
            crate::distribute::fetch_command(&data, &config, &from, every)
        }
    }
}

/// `--publish URL` (or its setting): each generation published here is also uploaded.
fn set_publish_target(
    flag: Option<String>,
    config: &ivre_connector::config::ConfigFile,
) -> Result<()> {
    if let Some(store) = crate::distribute::publish_target(flag, config)? {
        crate::distribute::set_publish_target(store);
    }
    Ok(())
}

/// The line printed when a generation was published.
fn print_report(data: &ivre_connector::snapshot::DataDir, m: &ivre_connector::snapshot::Manifest) {
    let count = |k: &str| m.counts.get(k).copied().unwrap_or(0);
    println!(
        "published {} in {}{}: {} scans, {} view, {} passive, {} rejected line(s), {:.2} s",
        m.generation,
        data.root().display(),
        m.source
            .mode
            .as_deref()
            .map(|mode| format!(" ({mode})"))
            .unwrap_or_default(),
        count("scans"),
        count("view"),
        count("passive"),
        m.rejected,
        m.build_seconds
    );
}
