//! Builds and runs the proxy: load the config, build clusters and
//! connection managers, bind listeners (one socket per worker) and the
//! admin server, start the workers, wait for a stop signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use arc_swap::ArcSwap;
use nuncio_admin::AdminState;
use nuncio_cluster::{AddressMap, ClusterManager, HostsFile, Resolver};
use nuncio_config::{Bootstrap, ConfigError, LoadOptions, Source};
use nuncio_stats::Store;
use tokio::sync::Notify;

use crate::reload::{build_hcms, socket_addr, Built, Live};

use crate::cli::{Args, EchoArgs, IpVersion, Mode};

/// Loads the config; with `--allow-unknown-static-fields` also returns
/// the unknown fields it let through.
fn load_config(args: &Args) -> Result<(Bootstrap, Vec<ConfigError>)> {
    let mut sources = Vec::new();
    if let Some(p) = &args.config_path {
        sources.push(Source::file(p)?);
    }
    if let Some(y) = &args.config_yaml {
        sources.push(Source {
            name: "<config-yaml>".into(),
            text: y.clone(),
        });
    }
    if sources.is_empty() {
        return Err(anyhow!(
            "no config: give -c FILE or --config-yaml YAML (see --help)"
        ));
    }
    let options = LoadOptions {
        allow_unknown_fields: args.allow_unknown_static_fields || args.allow_unknown_fields,
    };
    let loaded = nuncio_config::load_with(&sources, options)?;
    let mut b = loaded.bootstrap;
    if let Some(c) = &args.service_cluster {
        b.node.cluster.clone_from(c);
    }
    if let Some(n) = &args.service_node {
        b.node.id.clone_from(n);
    }
    Ok((b, loaded.unknown_fields))
}

/// Envoy's warning for each unknown field let through, under its
/// `config` component, and its `server.static_unknown_fields` counter.
fn warn_unknown(unknown: &[ConfigError], store: &Arc<Store>) {
    for e in unknown {
        tracing::warn!(target: "nuncio_config", "Unknown field: {e}");
    }
    store
        .root()
        .counter("server.static_unknown_fields")
        .add(unknown.len() as u64);
}

/// The node's local address of `version` (Envoy's LocalInfo address):
/// the source address the kernel picks towards a documentation address
/// (a connected UDP socket sends nothing), or loopback, as Envoy falls
/// back to.
fn local_address(version: IpVersion) -> std::net::IpAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
    let (bind, probe, loopback): (SocketAddr, SocketAddr, IpAddr) = match version {
        IpVersion::V4 => (
            (Ipv4Addr::UNSPECIFIED, 0).into(),
            (Ipv4Addr::new(192, 0, 2, 1), 9).into(),
            Ipv4Addr::LOCALHOST.into(),
        ),
        IpVersion::V6 => (
            (Ipv6Addr::UNSPECIFIED, 0).into(),
            (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9).into(),
            Ipv6Addr::LOCALHOST.into(),
        ),
    };
    UdpSocket::bind(bind)
        .and_then(|s| {
            s.connect(probe)?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(loopback)
}

/// A current-thread runtime (the main thread's, and each worker's).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start runtime")
}

/// Runs the proxy (or validates its config).
pub fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let (bootstrap, unknown) = load_config(args)?;
    let remap = AddressMap::parse(&args.remap)?;
    let resolver = match &args.hosts {
        Some(p) => Resolver::with_hosts_file(p, remap.clone())?,
        None => Resolver::new(HostsFile::default(), remap.clone()),
    };
    let workers = args
        .concurrency
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1);
    let store = Store::new();
    warn_unknown(&unknown, &store);
    let clusters = Arc::new(
        ClusterManager::new(
            &bootstrap.clusters,
            &bootstrap.secrets,
            &store,
            workers,
            resolver,
        )
        .map_err(|e| anyhow::Error::from(nuncio_config::ConfigError::from(e)))?,
    );
    let hcms = build_hcms(&bootstrap, &clusters, &store)?;
    for l in &bootstrap.listeners {
        socket_addr(&l.address, &remap).with_context(|| format!("listener '{}'", l.name))?;
    }
    let source = args.config_path.as_deref().unwrap_or("<config-yaml>");
    match args.mode {
        Mode::Validate => {
            println!("configuration '{source}' OK");
            return Ok(());
        }
        Mode::InitOnly => return Ok(()),
        Mode::Serve => {}
    }
    crate::options::log_startup_notes(args);
    let version = args.local_address_ip_version;
    tracing::info!(
        "local address {} (--local-address-ip-version {})",
        local_address(version),
        if version == IpVersion::V6 { "v6" } else { "v4" }
    );

    let rt = runtime()?;
    rt.block_on(async move {
        let root = store.root();
        let server_stats = Arc::new(crate::server_stats::ServerStats::new(
            &store,
            started,
            workers,
            args.hot_restart.restart_epoch,
        ));

        let worker_set = crate::workers::Workers::start(workers)?;
        let built = Built {
            bootstrap: bootstrap.clone(),
            clusters,
            hcms,
        };
        let mut live = Live::start(
            built,
            store.clone(),
            remap.clone(),
            worker_set,
            workers,
        )
        .await?;

        let shutdown = Arc::new(Notify::new());
        let mut admin_state: Option<Arc<AdminState>> = None;
        let (drain_tx, mut drain_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
        if let Some(admin) = &bootstrap.admin {
            let addr = socket_addr(&admin.address, &remap).context("admin")?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind admin to {addr}"))?;
            let bound = listener.local_addr()?;
            tracing::info!(address = %bound, "admin listening");
            if let Some(path) = &args.admin_address_path {
                // As Envoy: the address alone, no newline.
                std::fs::write(path, bound.to_string())
                    .with_context(|| format!("cannot write --admin-address-path '{path}'"))?;
            }
            let state = Arc::new(AdminState {
                admin_stats: nuncio_admin::AdminStats::new(&store),
                store: store.clone(),
                config: ArcSwap::from_pointee(live.running()),
                access_log: AdminState::open_log(admin.access_log_path.as_deref())?,
                concurrency: workers,
                started,
                shutdown: shutdown.clone(),
                drain_listeners: drain_tx.clone(),
            });
            admin_state = Some(state.clone());
            tokio::spawn(nuncio_admin::serve(listener, state));
        }
        server_stats.initialized();
        tokio::spawn(server_stats.clone().run());

        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut usr1 =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
        let drain_time = std::time::Duration::from_secs(args.drain_time_s);
        // SIGTERM's exit comes at the latest at --parent-shutdown-time-s.
        let exit_by = args
            .parent_shutdown_time_s
            .map_or(drain_time, |p| drain_time.min(std::time::Duration::from_secs(p.into())));
        let state = root.gauge("server.state");
        let connections = root.gauge("server.total_connections");
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let mut watch = ConfigWatch::new(args);
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let reload = tokio::select! {
                _ = hup.recv() => Some("SIGHUP"),
                _ = usr1.recv() => {
                    crate::logging::reopen();
                    None
                }
                _ = tick.tick(), if watch.enabled() => watch.changed().then_some("config file changed"),
                _ = shutdown.notified() => {
                    tracing::info!("shutting down (admin /quitquitquit)");
                    break;
                }
                _ = tokio::signal::ctrl_c() => {
                    tracing::info!("shutting down (SIGINT)");
                    break;
                }
                _ = term.recv() => {
                    // Drain, then exit: stop accepting, let what was
                    // accepted finish (Connection: close / GOAWAY), and
                    // exit when no connection is left or at --drain-time-s.
                    tracing::info!(drain_time_s = args.drain_time_s, "SIGTERM: draining, then exiting");
                    server_stats.draining();
                    live.slots().iter().for_each(|s| s.close());
                    let t0 = Instant::now();
                    while connections.get() > 0 && t0.elapsed() < exit_by {
                        tokio::select! {
                            _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
                            _ = term.recv() => {
                                tracing::info!("second SIGTERM: exiting now");
                                break;
                            }
                        }
                    }
                    tracing::info!(left = connections.get(), "drained; exiting");
                    break;
                }
                Some(graceful) = drain_rx.recv() => {
                    server_stats.draining();
                    let slots = live.slots();
                    slots.iter().flat_map(|s| s.hcms()).for_each(|h| h.start_drain());
                    if graceful {
                        tracing::info!(drain_time_s = args.drain_time_s, "/drain_listeners?graceful: listeners close after the drain time");
                        tokio::spawn(async move {
                            tokio::time::sleep(drain_time).await;
                            slots.iter().for_each(|s| s.close());
                        });
                    } else {
                        tracing::info!("/drain_listeners: listeners closed, connections draining");
                        slots.iter().for_each(|s| s.close());
                    }
                    None
                }
            };
            let Some(why) = reload else { continue };
            if state.get() != 0 {
                tracing::warn!(trigger = why, "draining: config reload ignored");
                continue;
            }
            let loaded = load_config(args);
            watch.loaded();
            let result = match loaded {
                Ok((b, unknown)) => {
                    warn_unknown(&unknown, &store);
                    live.reload(b).await
                }
                Err(e) => {
                    live.rejected();
                    Err(e)
                }
            };
            match result {
                Ok(summary) => {
                    tracing::info!(trigger = why, "config reloaded: {summary}");
                    if let Some(a) = &admin_state {
                        a.config.store(Arc::new(live.running()));
                    }
                }
                Err(e) => tracing::error!(trigger = why, "config reload rejected, the running config is kept: {e:#}"),
            }
        }
        Ok::<(), anyhow::Error>(())
    })?;
    // Workers are detached; exiting the process ends them.
    crate::logging::flush();
    std::process::exit(0);
}

/// `--watch-config`: notices when the config file's bytes change.
struct ConfigWatch {
    path: Option<String>,
    last: Option<Vec<u8>>,
}

impl ConfigWatch {
    fn new(args: &Args) -> Self {
        let path = args.config_path.clone().filter(|_| args.watch_config);
        let last = path.as_ref().and_then(|p| std::fs::read(p).ok());
        ConfigWatch { path, last }
    }

    fn enabled(&self) -> bool {
        self.path.is_some()
    }

    /// Whether the file differs from the last one loaded (a file being
    /// rewritten may be read half-written: that reload is refused with its
    /// error, and the next check loads the finished file).
    fn changed(&mut self) -> bool {
        let Some(p) = &self.path else { return false };
        let now = std::fs::read(p).ok();
        now.is_some() && now != self.last
    }

    /// Records the file as loaded (whatever came of it).
    fn loaded(&mut self) {
        if let Some(p) = &self.path {
            self.last = std::fs::read(p).ok();
        }
    }
}

/// Runs `nuncio echo`.
pub fn run_echo(args: &EchoArgs) -> Result<()> {
    let addr: SocketAddr = args
        .listen
        .parse()
        .with_context(|| format!("--listen '{}': expected ADDRESS:PORT", args.listen))?;
    let rt = runtime()?;
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot bind {addr}"))?;
        tracing::info!(address = %l.local_addr()?, name = ?args.name, "echo service listening");
        tokio::select! {
            _ = nuncio_echo::run(l, nuncio_echo::EchoConfig { name: args.name.clone() }) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(())
    })
}
