use clap::Parser;
use ivre_connector::cli::{self, Cli};

fn main() {
    let cli = Cli::parse();
    // The daemon sets its logs up from its configuration (CONNECTOR_LOG_LEVEL, OPENCTI_JSON_LOGGING).
    if !matches!(cli.command, cli::Command::Run) {
        cli.global.init_logging(tracing::Level::WARN);
    }
    match cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
