use clap::Parser;
use ivre_connector::cli::{self, Cli};

fn main() {
    let cli = Cli::parse();
    cli.global.init_logging(tracing::Level::WARN);
    match cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
