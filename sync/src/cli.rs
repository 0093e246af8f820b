//! The `ivre-sync` command line.

use anyhow::{Context, Result};
use clap::{CommandFactory as _, Parser, Subcommand};
use ivre_connector::config::GlobalArgs;
use ivre_connector::exit_code;
use ivre_connector::ivre::RecordKind;
use ivre_connector::refresh;
use ivre_connector::snapshot::{self, ImportOptions};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether `--quiet` was given: no report lines on stdout ([`say`]).
static QUIET: AtomicBool = AtomicBool::new(false);

/// Prints a report line on stdout, unless `--quiet`.
pub fn say(line: std::fmt::Arguments<'_>) {
    if !QUIET.load(Ordering::Relaxed) {
        println!("{line}");
    }
}

/// The `--help` text after the options of `ivre-sync`: where a command reads input, and
/// the exit codes.
fn after_long_help() -> String {
    format!(
        "Examples:\n  ivre-sync import --scans scans.jsonl.gz --passive passive.jsonl.gz --geoip-dir /usr/share/GeoIP\n  IVRE_DB_URL=mongodb://ivre-db/ivre ivre-sync pull --every 1h\n  ivre-sync watch --drop-dir /srv/ivre-drop\n\nA file argument `-` reads stdin (once per command).\n\n{}",
        ivre_connector::exit_code::help_text()
    )
}

/// Builds and publishes snapshots of IVRE data.
#[derive(Debug, Parser)]
#[command(name = "ivre-sync", version, about, after_long_help = after_long_help())]
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
    #[command(after_help = "Examples:
  ivre-sync watch --drop-dir /srv/ivre-drop
  ivre-sync watch --drop-dir /srv/ivre-drop --ready-marker --publish file:///srv/ivre-snapshots")]
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
    /// incremental when the served snapshot came from the same source. Pulls once and
    /// exits, unless --every
    #[command(after_help = "Examples:
  IVRE_DB_URL=mongodb://ivre-db/ivre ivre-sync pull
  IVRE_DB_URL=http://ivre-web/cgi ivre-sync pull --every 1h
  ivre-sync --config config.yml pull --full --publish s3://bucket/ivre-snapshots")]
    Pull {
        /// Pull again every DURATION (30m, 1h, 1d…); a failed pull is logged and retried
        #[arg(long, value_name = "DURATION", value_parser = ivre_connector::config::parse_duration)]
        every: Option<std::time::Duration>,
        /// Always pull everything
        #[arg(long)]
        full: bool,
        /// Also upload each published generation to this store (s3://BUCKET/PREFIX or
        /// file:///DIR) [default: IVRE_SNAPSHOT_PUBLISH, ivre.snapshot_publish]
        #[arg(long, value_name = "URL")]
        publish: Option<String>,
    },
    /// Build a new snapshot from NDJSON exports (gzip or not) and publish it; a FILE `-`
    /// reads stdin
    #[command(after_help = "Examples:
  ivre-sync import --scans scans.jsonl.gz --passive passive.jsonl.gz --geoip-dir /usr/share/GeoIP
  ivre-sync import --strict --view view.jsonl --publish file:///srv/ivre-snapshots
  ivre scancli --json | ivre-sync import --scans -")]
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
    #[command(after_help = "Examples:
  ivre-sync publish --to s3://bucket/ivre-snapshots
  ivre-sync --data-dir /var/lib/ivre publish --to file:///srv/ivre-snapshots")]
    Publish {
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Install the store's latest generation here (checksum and index verified) unless it
    /// is already here; the serving process swaps to it
    #[command(after_help = "Examples:
  ivre-sync fetch --from s3://bucket/ivre-snapshots
  ivre-sync fetch --from file:///srv/ivre-snapshots --every 5m")]
    Fetch {
        #[arg(long, value_name = "URL")]
        from: String,
        /// Fetch again every DURATION (30s, 5m, 1h…); a failed fetch is logged and retried
        #[arg(long, value_name = "DURATION", value_parser = ivre_connector::config::parse_duration)]
        every: Option<std::time::Duration>,
    },
    /// Print the shell completion script of ivre-sync
    #[command(after_help = "Examples:
  ivre-sync completions bash > /etc/bash_completion.d/ivre-sync
  ivre-sync completions zsh > ~/.zfunc/_ivre-sync
  ivre-sync completions fish > ~/.config/fish/completions/ivre-sync.fish")]
    Completions {
        /// bash, elvish, fish, powershell or zsh
        shell: clap_complete::Shell,
    },
    /// Print the manual page of ivre-sync (roff)
    #[command(after_help = "Examples:
  ivre-sync man > ivre-sync.1 && man ./ivre-sync.1")]
    Man,
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    // Neither needs a configuration.
    match cli.command {
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "ivre-sync", &mut std::io::stdout());
            return Ok(exit_code::OK);
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .context("cannot write the manual page")?;
            return Ok(exit_code::OK);
        }
        _ => {}
    }
    QUIET.store(cli.global.quiet, Ordering::Relaxed);
    let progress = crate::progress::for_terminal(cli.global.quiet);
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
            refresh::watch::watch(
                &data,
                &drop_dir,
                ready_marker,
                &stop,
                progress,
                |_, outcome| {
                    if outcome.is_ok() {
                        crate::distribute::after_publish(&data);
                    }
                },
            )?;
            Ok(0)
        }
        Command::Pull {
            every,
            full,
            publish,
        } => {
            set_publish_target(publish, &config)?;
            let targets = refresh::Targets::from_config(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(async {
                loop {
                    match refresh::pull_once(&data, &targets, full, progress.clone()).await {
                        Ok(report) => {
                            print_report(&data, &report.manifest);
                            let uploaded = crate::distribute::after_publish_async(&data).await;
                            if every.is_none() {
                                return Ok(if !uploaded {
                                    exit_code::UPLOAD_FAILED
                                } else if report.manifest.rejected > 0 {
                                    exit_code::REJECTED_LINES
                                } else {
                                    exit_code::OK
                                });
                            }
                        }
                        Err(e) if every.is_some() => tracing::error!(
                            error = ivre_connector::logging::chain(&e),
                            "pull failed; nothing published"
                        ),
                        Err(e) => return Err(e.into()),
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
            let inputs = stdin_once(
                scans
                    .into_iter()
                    .map(|p| (RecordKind::Scan, p))
                    .chain(view.into_iter().map(|p| (RecordKind::View, p)))
                    .chain(passive.into_iter().map(|p| (RecordKind::Passive, p)))
                    .collect(),
            )?;
            let options = ImportOptions {
                inputs,
                geoip_dir,
                strict,
                progress: progress.clone(),
                ..Default::default()
            };
            let imported = snapshot::import(&data, &options);
            if let Some(progress) = &progress {
                progress.finish();
            }
            let report = imported
                .with_context(|| format!("import into {} failed", data.root().display()))?;
            print_report(&data, &report.manifest);
            let uploaded = crate::distribute::after_publish(&data);
            let m = &report.manifest;
            if m.rejected > 0 && !cli.global.quiet {
                eprintln!(
                    "warning: {} malformed line(s) were skipped; see the log above or `ivre-connector index info`",
                    m.rejected
                );
            }
            Ok(if !uploaded {
                exit_code::UPLOAD_FAILED
            } else if m.rejected > 0 {
                exit_code::REJECTED_LINES
            } else {
                exit_code::OK
            })
        }
        Command::Publish { to } => crate::distribute::publish_command(&data, &config, &to),
        Command::Fetch { from, every } => {
            crate::distribute::fetch_command(&data, &config, &from, every)
        }
        Command::Completions { .. } | Command::Man => Ok(exit_code::OK),
    }
}

/// The input files with `-` read from stdin (`/dev/stdin`); `-` may be given once.
fn stdin_once(inputs: Vec<(RecordKind, PathBuf)>) -> Result<Vec<(RecordKind, PathBuf)>> {
    let dashes = inputs.iter().filter(|(_, p)| p.as_os_str() == "-").count();
    if dashes > 1 {
        return Err(exit_code::RefusedInput(format!(
            "`-` (stdin) is given {dashes} times: give it once"
        ))
        .into());
    }
    Ok(inputs
        .into_iter()
        .map(|(kind, p)| {
            if p.as_os_str() == "-" {
                (kind, PathBuf::from("/dev/stdin"))
            } else {
                (kind, p)
            }
        })
        .collect())
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
    say(format_args!(
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
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command shows examples, and every example parses.
    #[test]
    fn every_command_has_examples_that_parse() {
        let checked = ivre_connector::help_examples::check(&Cli::command(), |words| {
            Cli::try_parse_from(words).map(drop)
        });
        if let Err(problem) = checked {
            panic!("{problem}");
        }
    }
}
