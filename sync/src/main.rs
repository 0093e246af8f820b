use clap::Parser;
use ivre_sync::cli::{self, Cli};

fn main() {
    let cli = Cli::parse();
    cli.global.init_logging(tracing::Level::INFO);
    match cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
