//! The `ivre-connector` command line.

use crate::config::{table, ConfigFile, GlobalArgs};
use crate::enrich::{EnrichOptions, EnrichRequest};
use crate::lookup::{self, error_json};
use crate::observable::Observable;
use crate::snapshot::{self, DataDir, Snapshot};
use crate::stix::markings::{assess, MarkingDefinition, PlatformMarkings, Tlp};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// OpenCTI enrichment from a local snapshot of IVRE data.
#[derive(Debug, Parser)]
#[command(name = "ivre-connector", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print IVRE's records for observables, one JSON line each
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
    Run,
    /// Ask a running daemon whether it is ready (exit 0) or not (exit 1): for a
    /// container HEALTHCHECK. Asks http://127.0.0.1:CONNECTOR_METRICS_PORT/ready
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
    Index {
        #[command(subcommand)]
        command: IndexCommand,
    },
    /// Build a demo snapshot from IVRE exports shipped in the binary and look things up
    Demo {
        /// Print the full lookup JSON lines
        #[arg(long)]
        json: bool,
        /// Keep the demo snapshot in this directory instead of a temporary one
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Print the served generation's manifest
    Info,
    /// Check the served generation: every manifest field, every index file (size,
    /// CRC-32) and record, the MaxMind files
    Verify,
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
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
                Ok(1)
            }
        }
        Command::Demo { json, keep } => crate::demo::run(json, keep.as_deref()),
        Command::Run => run_daemon(&config, data),
        Command::Health { live, url, timeout } => run_health(&config, live, url, timeout),
    }
}

/// Expands `-` into the lines of stdin.
fn read_observables(args: &[String]) -> Result<Vec<String>> {
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
    Ok(if failed { 1 } else { 0 })
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
                let tlp = Tlp::from_marking_id(m).with_context(|| {
                    format!("unknown --marking {m:?}: only the TLP marking ids are known without the platform; give another marking as TYPE:VALUE (e.g. PAP:RED)")
                })?;
                return MarkingDefinition::from_definition(&tlp.to_string())
                    .with_context(|| format!("invalid --marking {m:?}"));
            }
            MarkingDefinition::from_definition(m).with_context(|| {
                format!("unknown --marking {m:?}: expected TLP:CLEAR, TLP:WHITE, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT, TLP:RED, a TLP marking id or TYPE:VALUE")
            })
        })
        .collect()
}

/// `IVRE_MAX_TLP` / `ivre.max_tlp`, validated (an invalid value, or one set but empty, is
/// a start-up error; unset: no limit).
pub fn max_tlp(config: &ConfigFile) -> Result<Option<Tlp>> {
    if config.set_but_empty(&table::IVRE_MAX_TLP) {
        anyhow::bail!(
            "{} is set but empty: give the highest TLP to enrich (e.g. TLP:AMBER), or unset it",
            table::IVRE_MAX_TLP.label()
        );
    }
    config
        .value(&table::IVRE_MAX_TLP)
        .map(|v| Tlp::parse(&v).with_context(|| format!("invalid {}", table::IVRE_MAX_TLP.label())))
        .transpose()
}

fn run_enrich(
    config: &ConfigFile,
    data: &DataDir,
    args: &[String],
    markings: &[String],
    pretty: bool,
) -> Result<i32> {
    let options = EnrichOptions::from_config(config)?;
    let fallback_settings = crate::live::fallback::FallbackSettings::from_config(config)?;
    let fallback = fallback_settings.enabled.then(|| {
        std::sync::Arc::new(crate::live::fallback::Fallback::new(
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
            .block_on(crate::live::enrich_with_fallback(
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
    Ok(if failed { 1 } else { 0 })
}

/// `run`: settings validated (all problems at once), logs as configured, then the daemon.
/// `health`: 0 when the daemon answers 200, 1 otherwise (its JSON answer on stdout).
fn run_health(config: &ConfigFile, live: bool, url: Option<String>, timeout: u64) -> Result<i32> {
    let base = match url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let port = config.port(&crate::config::table::CONNECTOR_METRICS_PORT)?;
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

fn run_daemon(config: &ConfigFile, data: DataDir) -> Result<i32> {
    let settings = crate::config::daemon::Settings::from_config(config)?;
    crate::logging::init(
        &crate::logging::LogSettings {
            json: settings.json_logging,
            level: settings.log_level.clone(),
            name: settings.connector_name.clone(),
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
    let plan = crate::daemon::UpkeepPlan::from_settings(&settings).with_context(|| {
        format!(
            "{} / {}",
            crate::config::table::IVRE_SNAPSHOT_SOURCE.label(),
            crate::config::table::IVRE_SNAPSHOT_PUBLISH.label()
        )
    })?;
    let result = runtime.block_on(crate::daemon::run(settings, plan, data));
    // Tasks cut by CONNECTOR_SHUTDOWN_TIMEOUT may still be in blocking code: do not wait
    // for them past a short grace period.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    result?;
    Ok(0)
}
