//! `ivre-connector`: the command line (`lookup`, `enrich`, `run`, `health`, `index`,
//! `demo`, `completions`, `man`) over the `ivre_connector` library.

/// mimalloc for this program: enrichment builds many small JSON values, and with glibc's
/// allocator malloc and free took a quarter of the CPU; mimalloc gave 25-50 % more
/// enrichments per CPU-second (docs/benchmarks.md). The library sets no allocator; the
/// benchmarks set this one too, so that their figures are this program's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod demo;

use clap::Parser;
use cli::Cli;

fn main() {
    let cli = Cli::parse();
    // The daemon sets its logs up from its configuration (CONNECTOR_LOG_LEVEL, OPENCTI_JSON_LOGGING).
    if !matches!(cli.command, cli::Command::Run) {
        cli.global.init_logging(tracing::Level::WARN);
    }
    let code = cli::run(cli).unwrap_or_else(|e| ivre_connector::exit_code::report(e.as_ref()));
    std::process::exit(code);
}
