//! `ivre-sync`: builds and publishes snapshots of IVRE data for `ivre-connector`.
//!
//! The snapshot format, the record model and the NDJSON import live in the
//! `ivre-connector` library (one owner for the bytes on disk), and so do the pulls from
//! live IVRE and the drop folder (`ivre_connector::refresh`, which the daemon runs too);
//! this program holds the command line (`cli.rs`), the `--publish` / `publish` /
//! `fetch` side of distribution (`distribute.rs`) and the progress bars (`progress.rs`).

/// mimalloc, as `ivre-connector` (an import builds many small JSON values).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod distribute;
mod progress;

use clap::Parser;
use cli::Cli;

fn main() {
    let cli = Cli::parse();
    cli.global.init_logging(tracing::Level::INFO);
    let code = cli::run(cli).unwrap_or_else(|e| ivre_connector::exit_code::report(e.as_ref()));
    std::process::exit(code);
}
