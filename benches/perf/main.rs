//! The benchmark harness of `docs/benchmarks.md`: latency percentiles (hdrhistogram),
//! throughput, sizes and memory at scale, with the targets of issue 6.
//!
//! ```text
//! cargo bench --bench perf -- [--records N] [--quick] [SUITE ...]
//! ```
//!
//! Suites: `inproc` (lookup, enrichment, import, size, open/swap, RSS: all in process),
//! `daemon` (end to end through a real RabbitMQ), `live` (the same lookups answered by a
//! real IVRE web API); `serving` (import, then only the lookups and enrichments of
//! `inproc`, with the shapes of real scans; `IVRE_BENCH_ONLY=ipv4,certificate,shapes`
//! narrows it) to iterate on the read path; `generate` (the dataset only). Without a suite:
//! `inproc`, `daemon` and `live`. `scripts/bench` starts the services `daemon` and `live`
//! need. Figures are printed as they come and saved to `OUT/report.md` and
//! `OUT/report.json`.

/// The allocator of both binaries (`src/bin/ivre-connector/main.rs`), so that the figures
/// are theirs: the library sets none.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod daemon;
mod data;
mod inproc;
mod live;
mod scale_data;
mod stats;

use clap::Parser;
use stats::Report;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(about = "ivre-connector benchmark harness (docs/benchmarks.md)")]
pub struct Args {
    /// Generated records (a tenth scan hosts, the rest passive records).
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Small data and short loops: checks that every suite works (CI), figures mean little.
    #[arg(long)]
    pub quick: bool,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 0x1f2e_3d4c_5b6a_7988)]
    pub seed: u64,
    /// Where data, snapshots and the report go.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
    /// `inproc`, `daemon`, `live` (default: all three).
    pub suites: Vec<String>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    pub bench: bool,
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.records = args.records.min(20_000);
    }
    if args.suites.is_empty() {
        args.suites = vec!["inproc".into(), "daemon".into(), "live".into()];
    }
    std::fs::create_dir_all(&args.out)?;
    let mut report = Report::default();
    for suite in &args.suites {
        match suite.as_str() {
            "inproc" | "generate" | "serve-rss" | "serving" => {
                inproc::run(suite, &args, &mut report)?
            }
            "daemon" => daemon::run(&args, &mut report)?,
            "live" => live::run(&args, &mut report)?,
            other => {
                anyhow::bail!("unknown suite {other:?} (inproc, serving, generate, daemon, live)")
            }
        }
    }
    let markdown = report.markdown();
    std::fs::write(args.out.join("report.md"), &markdown)?;
    std::fs::write(
        args.out.join("report.json"),
        serde_json::to_string_pretty(&report.to_json())?,
    )?;
    println!("{markdown}");
    Ok(())
}
