//! The `nuncio` binary: Envoy's command line, plus `nuncio echo` (the
//! blog's echo service). Everything that can fail reports one line and a
//! non-zero exit.

#![forbid(unsafe_code)]

mod cli;
mod reload;
mod server;
mod workers;

use clap::Parser;

fn main() {
    let args = cli::Args::parse();
    init_logging(&args.log_level);
    let result = match &args.command {
        Some(cli::Command::Echo(e)) => server::run_echo(e),
        None => server::run(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn init_logging(level: &cli::LogLevel) {
    use tracing::level_filters::LevelFilter;
    let filter = match level {
        cli::LogLevel::Trace => LevelFilter::TRACE,
        cli::LogLevel::Debug => LevelFilter::DEBUG,
        cli::LogLevel::Info => LevelFilter::INFO,
        cli::LogLevel::Warn | cli::LogLevel::Warning => LevelFilter::WARN,
        cli::LogLevel::Error | cli::LogLevel::Critical => LevelFilter::ERROR,
        cli::LogLevel::Off => LevelFilter::OFF,
    };
    tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
