//! The `ivre-connector` command line.

use anyhow::{Context, Result};
use clap::{CommandFactory as _, Parser, Subcommand};
use ivre_connector::config::{table, ConfigFile, GlobalArgs, SettingsError};
use ivre_connector::enrich::{EnrichOptions, EnrichRequest};
use ivre_connector::exit_code::{self, RefusedInput};
use ivre_connector::lookup::{self, error_json};
use ivre_connector::observable::Observable;
use ivre_connector::snapshot::{self, DataDir, Snapshot};
use ivre_connector::stix::markings::{assess, MarkingDefinition, PlatformMarkings, Tlp};
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// The `--help` text after the options of `ivre-connector`: examples, where a command
/// reads input, and the exit codes.
fn after_long_help() -> String {
    format!(
        "Examples:\n  ivre-connector demo\n  ivre-connector --data-dir /var/lib/ivre lookup 192.0.2.10 example.com AS64496\n  ivre-connector --config config.yml run\n\nAn observable argument `-` reads observables from stdin, one per line (once per command).\n\n{}",
        exit_code::help_text()
    )
}

/// OpenCTI enrichment from a local snapshot of IVRE data.
#[derive(Debug, Parser)]
#[command(name = "ivre-connector", version, about, after_long_help = after_long_help())]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print IVRE's records for observables, one JSON line each
    #[command(after_help = "Examples:
  ivre-connector lookup 192.0.2.10 example.com AS64496
  ivre-connector lookup --limit 5 ipv4-addr:192.0.2.10 domain-name:example.com
  cut -d, -f1 hosts.csv | ivre-connector lookup -")]
    Lookup {
        /// TYPE:VALUE (TYPE: ipv4-addr, ipv6-addr, domain-name, mac-addr,
        /// autonomous-system, x509-certificate) or a bare value; `-` reads stdin
        #[arg(required = true, value_name = "OBSERVABLE")]
        observables: Vec<String>,
        /// Print at most N records of each kind per observable
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Print one STIX 2.1 bundle per observable (NDJSON), as the connector sends them
    #[command(after_help = "Examples:
  ivre-connector enrich --pretty 192.0.2.10
  ivre-connector enrich --marking TLP:AMBER --marking PAP:RED domain-name:example.com
  echo 192.0.2.10 | ivre-connector enrich -")]
    Enrich {
        /// TYPE:VALUE or a bare value, as for `lookup`; `-` reads stdin
        #[arg(required = true, value_name = "OBSERVABLE")]
        observables: Vec<String>,
        /// Mark the input observables as the platform would (TLP:CLEAR/WHITE, TLP:GREEN,
        /// TLP:AMBER, TLP:AMBER+STRICT, TLP:RED, a TLP marking-definition id, or another
        /// definition as TYPE:VALUE such as PAP:RED); repeatable; unknown ones are an error
        #[arg(long, value_name = "MARKING")]
        marking: Vec<String>,
        /// Indent the bundles for people
        #[arg(long)]
        pretty: bool,
    },
    /// Run the OpenCTI connector (configuration: config.yml and environment, as pycti)
    #[command(after_help = "Examples:
  ivre-connector --config config.yml run
  OPENCTI_URL=http://opencti:8080 OPENCTI_TOKEN=changeme ivre-connector run")]
    Run,
    /// Ask a running daemon whether it is ready (exit 0) or not (exit 1): for a
    /// container HEALTHCHECK. Asks http://127.0.0.1:CONNECTOR_METRICS_PORT/ready
    #[command(after_help = "Examples:
  ivre-connector health
  ivre-connector health --live --url http://127.0.0.1:9095 --timeout 2")]
    Health {
        /// Ask /health (the process answers) instead of /ready (it can take work)
        #[arg(long)]
        live: bool,
        /// Base URL of the daemon's health server [default: http://127.0.0.1:CONNECTOR_METRICS_PORT]
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Seconds to wait for the answer
        #[arg(long, value_name = "SECONDS", default_value_t = 5)]
        timeout: u64,
    },
    /// Inspect the served snapshot
    #[command(after_help = "Examples:
  ivre-connector --data-dir /var/lib/ivre index info
  ivre-connector index verify")]
    Index {
        #[command(subcommand)]
        command: IndexCommand,
    },
    /// Build a demo snapshot from IVRE exports shipped in the binary and look things up
    #[command(after_help = "Examples:
  ivre-connector demo
  ivre-connector demo --json --keep /tmp/ivre-demo")]
    Demo {
        /// Print the full lookup JSON lines
        #[arg(long)]
        json: bool,
        /// Keep the demo snapshot in this directory instead of a temporary one
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
    },
    /// Print the shell completion script of ivre-connector
    #[command(after_help = "Examples:
  ivre-connector completions bash > /etc/bash_completion.d/ivre-connector
  ivre-connector completions zsh > ~/.zfunc/_ivre-connector
  ivre-connector completions fish > ~/.config/fish/completions/ivre-connector.fish")]
    Completions {
        /// bash, elvish, fish, powershell or zsh
        shell: clap_complete::Shell,
    },
    /// Print the manual page of ivre-connector (roff)
    #[command(after_help = "Examples:
  ivre-connector man > ivre-connector.1 && man ./ivre-connector.1")]
    Man,
}

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Print the served generation's manifest
    #[command(after_help = "Examples:
  ivre-connector --data-dir /var/lib/ivre index info")]
    Info,
    /// Check the served generation: every manifest field, every index file (size,
    /// CRC-32) and record, the MaxMind files
    #[command(after_help = "Examples:
  ivre-connector --data-dir /var/lib/ivre index verify")]
    Verify,
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    // Neither needs a configuration.
    match cli.command {
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(
                shell,
                &mut command,
                "ivre-connector",
                &mut std::io::stdout(),
            );
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
    let (config, data) = cli.global.load()?;
    match cli.command {
        Command::Lookup { observables, limit } => run_lookup(&data, &observables, limit),
        Command::Enrich {
            observables,
            marking,
            pretty,
        } => run_enrich(&config, &data, &observables, &marking, pretty),
        Command::Index {
            command: IndexCommand::Info,
        } => {
            let (_, dir, manifest) = snapshot::open::current_manifest(&data)?;
            let mut value = serde_json::to_value(&manifest)?;
            if let Some(map) = value.as_object_mut() {
                map.insert("path".into(), dir.display().to_string().into());
            }
            println!("{}", serde_json::to_string_pretty(&value)?);
            Ok(0)
        }
        Command::Index {
            command: IndexCommand::Verify,
        } => {
            let report = snapshot::verify::verify(&data)?;
            if report.problems.is_empty() {
                println!(
                    "{}: manifest, index ({} records, every file's size and CRC-32) and {} MaxMind files verified",
                    report.generation, report.records, report.geo_files
                );
                Ok(0)
            } else {
                for problem in &report.problems {
                    println!("{}: {problem}", report.generation);
                }
                println!(
                    "{}: {} problems found: rebuild the snapshot (`ivre-sync import`) or fetch it again",
                    report.generation,
                    report.problems.len()
                );
                Ok(exit_code::DAMAGED)
            }
        }
        Command::Demo { json, keep } => crate::demo::run(json, keep.as_deref()),
        Command::Run => run_daemon(&config, data, cli.global.ansi()),
        Command::Health { live, url, timeout } => run_health(&config, live, url, timeout),
        Command::Completions { .. } | Command::Man => Ok(exit_code::OK),
    }
}

/// Expands `-` into the lines of stdin (blank lines skipped); `-` may be given once, as
/// for `ivre-sync import`'s files.
fn read_observables(args: &[String]) -> Result<Vec<String>> {
    let dashes = args.iter().filter(|a| *a == "-").count();
    if dashes > 1 {
        return Err(
            RefusedInput(format!("`-` (stdin) is given {dashes} times: give it once")).into(),
        );
    }
    let mut out = Vec::new();
    for arg in args {
        if arg == "-" {
            for line in std::io::stdin().lock().lines() {
                let line = line.context("cannot read observables from stdin")?;
                let line = line.trim();
                if !line.is_empty() {
                    out.push(line.to_owned());
                }
            }
        } else {
            out.push(arg.clone());
        }
    }
    Ok(out)
}

fn run_lookup(data: &DataDir, args: &[String], limit: Option<usize>) -> Result<i32> {
    let inputs = read_observables(args)?;
    let snap = Snapshot::open(data)
        .with_context(|| format!("cannot open the snapshot in {}", data.root().display()))?;
    if snap.manifest.total_records() == 0 {
        tracing::warn!(generation = %snap.name, "the served snapshot holds no records");
    }
    let with_view = snap.manifest.counts.get("view").is_some_and(|n| *n > 0);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = false;
    for input in &inputs {
        let line = match Observable::parse(input) {
            Ok(obs) => lookup::lookup(&snap, &obs, limit)
                .with_context(|| format!("lookup of {obs} failed"))?
                .to_json_line(with_view),
            Err(e) => {
                failed = true;
                error_json(input, &e.to_string()).to_string()
            }
        };
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(if failed {
        exit_code::REFUSED_INPUT
    } else {
        exit_code::OK
    })
}

/// `--marking` values as the platform would define them: a TLP name (2.0 or 1.0, any
/// case), a fixed TLP marking id (OpenCTI's or OASIS TLP 2.0, any case), or another
/// definition as `TYPE:VALUE` (`PAP:RED`, `STATEMENT:…`, with the id the platform gives
/// it). Anything else, an unknown TLP name or a marking id the command cannot resolve, is
/// an error: an unknown marking never goes unnoticed.
fn marking_definitions(markings: &[String]) -> Result<Vec<MarkingDefinition>> {
    markings
        .iter()
        .map(|m| {
            if m.trim().to_ascii_lowercase().starts_with("marking-definition--") {
                let tlp = Tlp::from_marking_id(m).ok_or_else(|| {
                    RefusedInput(format!("unknown --marking {m:?}: only the TLP marking ids are known without the platform; give another marking as TYPE:VALUE (e.g. PAP:RED)"))
                })?;
                return MarkingDefinition::from_definition(&tlp.to_string())
                    .with_context(|| format!("invalid --marking {m:?}"));
            }
            MarkingDefinition::from_definition(m).ok_or_else(|| {
                anyhow::Error::new(RefusedInput(format!("unknown --marking {m:?}: expected TLP:CLEAR, TLP:WHITE, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT, TLP:RED, a TLP marking id or TYPE:VALUE")))
            })
        })
        .collect()
}

/// `IVRE_MAX_TLP` / `ivre.max_tlp`, validated (an invalid value, or one set but empty, is
/// a start-up error; unset: no limit).
fn max_tlp(config: &ConfigFile) -> Result<Option<Tlp>> {
    if config.set_but_empty(&table::IVRE_MAX_TLP) {
        return Err(SettingsError(vec![format!(
            "{} is set but empty: give the highest TLP to enrich (e.g. TLP:AMBER), or unset it",
            table::IVRE_MAX_TLP.label()
        )])
        .into());
    }
    config
        .value(&table::IVRE_MAX_TLP)
        .map(|v| {
            Tlp::parse(&v).map_err(|e| {
                SettingsError(vec![format!(
                    "invalid {}: {e}",
                    table::IVRE_MAX_TLP.label()
                )])
            })
        })
        .transpose()
        .map_err(Into::into)
}

fn run_enrich(
    config: &ConfigFile,
    data: &DataDir,
    args: &[String],
    markings: &[String],
    pretty: bool,
) -> Result<i32> {
    let options = EnrichOptions::from_config(config)?;
    let fallback_settings = ivre_connector::live::fallback::FallbackSettings::from_config(config)?;
    let fallback = fallback_settings.enabled.then(|| {
        std::sync::Arc::new(ivre_connector::live::fallback::Fallback::new(
            fallback_settings,
            None,
        ))
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let max = max_tlp(config)?;
    // The markings are known definitions here (the platform's role): the gate decides on
    // them as the daemon does (`stix::markings::assess`).
    let assessment = assess(
        None,
        &PlatformMarkings::Shown(marking_definitions(markings)?),
    );
    let (tlp, markings) = (assessment.tlp, assessment.refs);
    let inputs = read_observables(args)?;
    let snap = std::sync::Arc::new(
        Snapshot::open(data)
            .with_context(|| format!("cannot open the snapshot in {}", data.root().display()))?,
    );
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = false;
    for input in &inputs {
        let observable = match Observable::parse(input) {
            Ok(o) => o,
            Err(e) => {
                failed = true;
                writeln!(out, "{}", error_json(input, &e.to_string()))?;
                continue;
            }
        };
        if let Some(max) = max {
            if !tlp.allowed_under(max) {
                failed = true;
                let msg = format!("{tlp} is above IVRE_MAX_TLP ({max}): nothing enriched");
                writeln!(out, "{}", error_json(&observable.to_string(), &msg))?;
                continue;
            }
        }
        let request = EnrichRequest::new(observable, markings.clone());
        let (result, _) = runtime
            .block_on(ivre_connector::live::enrich_with_fallback(
                Some(snap.clone()),
                request,
                options.clone(),
                fallback.clone(),
            ))
            .with_context(|| format!("enrichment of {input} failed"))?;
        if pretty {
            writeln!(out, "{}", serde_json::to_string_pretty(&result.bundle)?)?;
        } else {
            writeln!(out, "{}", result.bundle)?;
        }
    }
    out.flush()?;
    Ok(if failed {
        exit_code::REFUSED_INPUT
    } else {
        exit_code::OK
    })
}

/// `run`: settings validated (all problems at once), logs as configured, then the daemon.
/// `health`: 0 when the daemon answers 200, 1 otherwise (its JSON answer on stdout).
fn run_health(config: &ConfigFile, live: bool, url: Option<String>, timeout: u64) -> Result<i32> {
    let base = match url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let port = config.port(&ivre_connector::config::table::CONNECTOR_METRICS_PORT)?;
            format!("http://127.0.0.1:{port}")
        }
    };
    let url = format!("{base}/{}", if live { "health" } else { "ready" });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let answer = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(timeout.max(1)))
            .no_proxy()
            .build()?;
        let response = client.get(&url).send().await?;
        let status = response.status();
        Ok::<_, reqwest::Error>((status, response.text().await.unwrap_or_default()))
    });
    match answer {
        Ok((status, body)) => {
            println!("{}", body.trim());
            if status.is_success() {
                Ok(0)
            } else {
                eprintln!("{url}: {status}");
                Ok(1)
            }
        }
        Err(e) => {
            eprintln!("error: no answer from {url}: {e}");
            Ok(1)
        }
    }
}

/// Cancels `token` on SIGTERM or SIGINT (the daemon stops gracefully); a second signal
/// ends the process at once (exit code 130).
fn watch_signals(token: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot watch SIGTERM");
                    return;
                }
            };
        for n in 0.. {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            if n == 0 {
                tracing::info!("stopping: finishing the enrichments in progress (signal again to stop at once)");
                token.cancel();
            } else {
                tracing::warn!("second signal: exiting now");
                std::process::exit(exit_code::INTERRUPTED);
            }
        }
    });
}

fn run_daemon(config: &ConfigFile, data: DataDir, ansi: bool) -> Result<i32> {
    let settings = ivre_connector::config::daemon::Settings::from_config(config)?;
    ivre_connector::logging::init(
        &ivre_connector::logging::LogSettings {
            json: settings.json_logging,
            level: settings.log_level.clone(),
            name: settings.connector_name.clone(),
            ansi,
        },
        settings.log_filter.as_deref(),
    )?;
    if settings.connector_id_derived {
        tracing::info!(
            connector_id = %settings.connector_id,
            connector_name = %settings.connector_name,
            "{} is not set: using the id derived from the connector name (UUIDv5)",
            table::CONNECTOR_ID.env
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let plan = ivre_connector::daemon::UpkeepPlan::from_settings(&settings).with_context(|| {
        format!(
            "{} / {}",
            ivre_connector::config::table::IVRE_SNAPSHOT_SOURCE.label(),
            ivre_connector::config::table::IVRE_SNAPSHOT_PUBLISH.label()
        )
    })?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let result = runtime.block_on(async {
        watch_signals(shutdown.clone());
        ivre_connector::daemon::run(settings, plan, data, shutdown).await
    });
    // Tasks cut by CONNECTOR_SHUTDOWN_TIMEOUT may still be in blocking code: do not wait
    // for them past a short grace period.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    result?;
    Ok(0)
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
