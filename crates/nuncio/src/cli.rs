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

    /// Zone name (node.locality.zone). Accepted; nuncio has no use for
    /// the locality yet.
    #[arg(long = "service-zone", value_name = "ZONE")]
    pub service_zone: Option<String>,

    /// Log level: trace, debug, info, warning|warn, error, critical, off.
    #[arg(short = 'l', long = "log-level", value_enum, default_value = "info")]
    pub log_level: LogLevel,

    /// Levels per Envoy component, e.g. upstream:debug,connection:trace
    /// (Envoy's names; which nuncio code logs under which:
    /// docs/envoy-differences.md).
    #[arg(long = "component-log-level", value_name = "COMPONENT:LEVEL,...")]
    pub component_log_level: Option<String>,

    /// Log line format in spdlog syntax, as Envoy's
    /// (%Y %m %d %T %e %t %l %n %g %# %v %j ...).
    #[arg(long = "log-format", value_name = "FORMAT", allow_hyphen_values = true,
          default_value = crate::logfmt::DEFAULT_FORMAT)]
    pub log_format: String,

    /// Escape C-style escape sequences in log lines (one line per event).
    #[arg(long = "log-format-escaped")]
    pub log_format_escaped: bool,

    /// Write nuncio's log to this file instead of stderr (appended,
    /// reopened on SIGUSR1).
    #[arg(long = "log-path", value_name = "FILE")]
    pub log_path: Option<String>,

    /// How often --log-path's buffered lines are written.
    #[arg(
        long = "file-flush-interval-msec",
        value_name = "MS",
        default_value_t = 10_000
    )]
    pub file_flush_interval_msec: u32,

    /// --log-path's lines are written once this many KiB are buffered.
    #[arg(
        long = "file-flush-min-size-kb",
        value_name = "KB",
        default_value_t = 64
    )]
    pub file_flush_min_size_kb: u32,

    /// Envoy's file-level log control. Accepted; nuncio's levels are per
    /// component.
    #[arg(long = "enable-fine-grain-logging")]
    pub enable_fine_grain_logging: bool,

    /// Accepted (nuncio prints no stack traces in its log).
    #[arg(long = "log-stacktrace-single-entry")]
    pub log_stacktrace_single_entry: bool,

    /// Accepted (nuncio logs no deprecated-field warnings).
    #[arg(long = "skip-deprecated-logs")]
    pub skip_deprecated_logs: bool,

    /// Worker threads (default: the CPUs this process may run on, after
    /// its CPU set and cgroup quota, as Envoy 1.40). Each worker runs its
    /// own event loop and accepts on its own socket.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Concurrency from the CPU set when --concurrency is absent: the
    /// default already, as in Envoy 1.40.
    #[arg(long = "cpuset-threads")]
    pub cpuset_threads: bool,

    /// Write the admin server's bound address (ip:port) to this file once
    /// it listens.
    #[arg(long = "admin-address-path", value_name = "FILE")]
    pub admin_address_path: Option<String>,

    /// The IP version of the node's local address: v4 or v6.
    #[arg(long = "local-address-ip-version", value_enum, default_value = "v4")]
    pub local_address_ip_version: IpVersion,

    /// Unknown fields in the config are warnings (one per field) instead
    /// of errors. Envoy fields nuncio does not implement stay errors.
    #[arg(long = "allow-unknown-static-fields")]
    pub allow_unknown_static_fields: bool,

    /// Deprecated spelling of --allow-unknown-static-fields.
    #[arg(long = "allow-unknown-fields")]
    pub allow_unknown_fields: bool,

    /// Accepted: nuncio has no dynamic (xDS) configuration.
    #[arg(long = "reject-unknown-dynamic-fields")]
    pub reject_unknown_dynamic_fields: bool,

    /// Accepted: nuncio has no dynamic (xDS) configuration.
    #[arg(long = "ignore-unknown-dynamic-fields")]
    pub ignore_unknown_dynamic_fields: bool,

    /// Hosts file (/etc/hosts format) consulted before the system resolver
    /// for DNS clusters, e.g. examples/hosts maps service1/service2 to
    /// loopback addresses.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<String>,

    /// Rewrites a socket address wherever nuncio binds or connects,
    /// FROM=TO, repeatable (like docker's -p): --remap 0.0.0.0:80=127.0.0.1:9000.
    #[arg(long, value_name = "FROM=TO")]
    pub remap: Vec<String>,

    /// After SIGTERM: how long connections get to finish (they are told
    /// to close at once) before nuncio exits; also the delay before
    /// `/drain_listeners?graceful` closes listeners.
    #[arg(long = "drain-time-s", value_name = "SECONDS", default_value_t = 600)]
    pub drain_time_s: u64,

    /// gradual (Envoy's default) or immediate. nuncio always drains
    /// immediately: every connection is told to close when the drain
    /// starts.
    #[arg(long = "drain-strategy", value_enum, value_name = "gradual|immediate")]
    pub drain_strategy: Option<DrainStrategy>,

    /// After SIGTERM, nuncio exits at the latest after this many seconds
    /// even if --drain-time-s is longer (Envoy's bound on a hot restart
    /// parent).
    #[arg(long = "parent-shutdown-time-s", value_name = "SECONDS")]
    pub parent_shutdown_time_s: Option<u32>,

    /// Reload the config file when it changes (checked every second), as
    /// SIGHUP does: new listeners, routes and clusters for new connections,
    /// established ones drain; an invalid file is refused and logged.
    #[arg(long = "watch-config")]
    pub watch_config: bool,

    /// Envoy's hot restart flags (accepted, see [`HotRestartArgs`]).
    #[command(flatten)]
    pub hot_restart: HotRestartArgs,

    /// Accepted (nuncio keeps no mutex contention stats).
    #[arg(long = "enable-mutex-tracing")]
    pub enable_mutex_tracing: bool,

    /// Accepted; nuncio has no extension registry to disable from.
    #[arg(long = "disable-extensions", value_name = "NAMES")]
    pub disable_extensions: Option<String>,

    /// Enable core dumps. Accepted; nuncio logs its core size limit
    /// (set it with `ulimit -c`).
    #[arg(long = "enable-core-dump")]
    pub enable_core_dump: bool,

    /// A tag for all stats, TAG:VALUE, repeatable. Checked as Envoy does;
    /// not yet added to nuncio's stats.
    #[arg(long = "stats-tag", value_name = "TAG:VALUE")]
    pub stats_tag: Vec<String>,

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

/// Envoy's hot restart flags. nuncio has no shared-memory hot restart:
/// they are checked as Envoy checks them and otherwise have no effect
/// (restart nuncio by starting a new one and sending the old one SIGTERM;
/// listeners use SO_REUSEPORT).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HotRestartArgs {
    /// Accepted: nuncio has no hot restart to disable.
    #[arg(long = "disable-hot-restart")]
    pub disable_hot_restart: bool,

    /// Print the hot restart version ("disabled", as Envoy does with hot
    /// restart off) to stderr and exit.
    #[arg(long = "hot-restart-version")]
    pub hot_restart_version: bool,

    /// Accepted (hot restart epoch).
    #[arg(long = "restart-epoch", value_name = "N", default_value_t = 0)]
    pub restart_epoch: u32,

    /// Accepted (shared memory base id).
    #[arg(long = "base-id", value_name = "N", default_value_t = 0)]
    pub base_id: u32,

    /// Accepted; not with --restart-epoch above 0, as in Envoy.
    #[arg(long = "use-dynamic-base-id")]
    pub use_dynamic_base_id: bool,

    /// Accepted; nothing is written (Envoy writes it only with hot
    /// restart on).
    #[arg(long = "base-id-path", value_name = "FILE")]
    pub base_id_path: Option<String>,

    /// Accepted (hot restart socket).
    #[arg(
        long = "socket-path",
        value_name = "PATH",
        default_value = "@envoy_domain_socket"
    )]
    pub socket_path: String,

    /// Accepted (hot restart socket permissions, octal).
    #[arg(long = "socket-mode", value_name = "MODE", default_value = "600")]
    pub socket_mode: String,

    /// Accepted.
    #[arg(long = "skip-hot-restart-on-no-parent")]
    pub skip_hot_restart_on_no_parent: bool,

    /// Accepted.
    #[arg(long = "skip-hot-restart-parent-stats")]
    pub skip_hot_restart_parent_stats: bool,
}

/// `--drain-strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DrainStrategy {
    /// Envoy: connections are told to close over the drain time.
    Gradual,
    /// Every connection is told to close when the drain starts.
    Immediate,
}

/// `--local-address-ip-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
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
