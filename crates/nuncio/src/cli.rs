//! Command-line flags: Envoy's names and meanings where Envoy has them.

use clap::{Parser, Subcommand, ValueEnum};

/// nuncio: an Envoy-compatible L7 proxy. Runs Envoy bootstrap configs in
/// v3 or v2-era YAML/JSON.
#[derive(Debug, Parser)]
#[command(name = "nuncio", version, about, long_about = None)]
pub struct Args {
    /// Path to the bootstrap config (YAML or JSON).
    #[arg(short = 'c', long = "config-path", value_name = "FILE")]
    pub config_path: Option<String>,

    /// Bootstrap config as a YAML string, merged over --config-path
    /// (maps merge, lists append, scalars replace).
    #[arg(long = "config-yaml", value_name = "YAML")]
    pub config_yaml: Option<String>,

    /// serve: run the proxy. validate: check the config and exit (0 if valid).
    /// init_only: build everything, bind nothing, exit.
    #[arg(long, value_enum, default_value = "serve")]
    pub mode: Mode,

    /// Overrides node.cluster.
    #[arg(long = "service-cluster", value_name = "NAME")]
    pub service_cluster: Option<String>,

    /// Overrides node.id.
    #[arg(long = "service-node", value_name = "NAME")]
    pub service_node: Option<String>,

    /// Accepted for Envoy compatibility (node.locality.zone); unused.
    #[arg(long = "service-zone", value_name = "ZONE")]
    pub service_zone: Option<String>,

    /// Log level.
    #[arg(short = 'l', long = "log-level", value_enum, default_value = "info")]
    pub log_level: LogLevel,

    /// Worker threads (default: number of CPUs). Each worker runs its own
    /// event loop and accepts on its own socket.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Hosts file (/etc/hosts format) consulted before the system resolver
    /// for DNS clusters, e.g. examples/hosts maps service1/service2 to
    /// loopback addresses.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<String>,

    /// Rewrites a socket address wherever nuncio binds or connects,
    /// FROM=TO, repeatable (like docker's -p): --remap 0.0.0.0:80=127.0.0.1:9000.
    #[arg(long, value_name = "FROM=TO")]
    pub remap: Vec<String>,

    /// Threading model: per-worker (default; a single-threaded event loop
    /// per worker, as Envoy) or work-stealing (one multi-thread tokio
    /// runtime; for comparison, see ARCHITECTURE.md).
    #[arg(long, value_enum, default_value = "per-worker")]
    pub runtime: RuntimeModel,

    /// HTTP/1.1 implementation: native (default; nuncio's own path, used
    /// where every route reaches an HTTP/1.1 cluster, hyper elsewhere) or
    /// hyper (hyper's server and client everywhere).
    #[arg(long = "h1", value_enum, default_value = "native", env = "NUNCIO_H1")]
    pub h1: H1Choice,

    /// Longest drain after SIGTERM before exiting, and the delay before
    /// `/drain_listeners?graceful` closes listeners (Envoy's --drain-time-s).
    #[arg(long = "drain-time-s", value_name = "SECONDS", default_value_t = 600)]
    pub drain_time_s: u64,

    /// Reload the config file when it changes (checked every second), as
    /// SIGHUP does: new listeners, routes and clusters for new connections,
    /// established ones drain; an invalid file is refused and logged.
    #[arg(long = "watch-config")]
    pub watch_config: bool,

    /// A subcommand instead of the proxy.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Mode {
    /// Run.
    Serve,
    /// Check the config and exit.
    Validate,
    /// Build everything, then exit.
    InitOnly,
}

/// `--h1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum H1Choice {
    /// hyper's HTTP/1.1 server and client.
    Hyper,
    /// nuncio's own HTTP/1.1 path.
    Native,
}

impl From<H1Choice> for nuncio_hcm::H1Engine {
    fn from(c: H1Choice) -> Self {
        match c {
            H1Choice::Hyper => nuncio_hcm::H1Engine::Hyper,
            H1Choice::Native => nuncio_hcm::H1Engine::Native,
        }
    }
}

/// `--runtime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeModel {
    /// One current-thread runtime, socket and pool set per worker.
    PerWorker,
    /// One multi-thread work-stealing runtime shared by all workers.
    WorkStealing,
}

/// `--log-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Problems.
    Warn,
    /// Problems (Envoy spelling).
    Warning,
    /// Errors.
    Error,
    /// Errors (Envoy spelling).
    Critical,
    /// Nothing.
    Off,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The blog's echo service: GET / lists headers, POST /echo returns the
    /// body, GET /ws echoes WebSocket messages.
    Echo(EchoArgs),
}

/// `nuncio echo`.
#[derive(Debug, clap::Args)]
pub struct EchoArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    pub listen: String,
    /// Name reported in the x-echo-name response header.
    #[arg(long)]
    pub name: Option<String>,
}
