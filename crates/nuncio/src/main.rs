//! The `nuncio` binary: Envoy's command line, plus `nuncio echo` (the
//! blog's echo service). Everything that can fail reports one line and a
//! non-zero exit.

#![forbid(unsafe_code)]

mod argv;
mod cli;
mod logfmt;
mod logging;
mod options;
mod reload;
mod server;
mod server_stats;
mod workers;

use clap::Parser;

fn main() {
    let args = match cli::Args::try_parse_from(argv::normalize(std::env::args_os().collect())) {
        Ok(a) => a,
        // --help and --version exit 0; a bad flag exits 1, as Envoy.
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let settings = match options::check(&args) {
        Ok(s) => s,
        Err(e) => exit_error(&e),
    };
    if args.hot_restart.hot_restart_version {
        // Envoy with hot restart off prints exactly this, to stderr.
        eprint!("disabled");
        std::process::exit(0);
    }
    if let Err(e) = logging::init(&settings) {
        exit_error(&e);
    }
    let result = match &args.command {
        Some(cli::Command::Echo(e)) => server::run_echo(e),
        None => server::run(&args),
    };
    logging::flush();
    if let Err(e) = result {
        exit_error(&e);
    }
}

fn exit_error(e: &anyhow::Error) -> ! {
    eprintln!("error: {e:#}");
    std::process::exit(1);
}
