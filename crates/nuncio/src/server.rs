//! Builds and runs the proxy: load the config, build clusters and
//! connection managers, bind listeners (one socket per worker) and the
//! admin server, start the workers, wait for a stop signal.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use nuncio_admin::{AdminState, ListenerInfo};
use nuncio_cluster::{AddressMap, ClusterManager, HostsFile, Resolver};
use nuncio_config::{Bootstrap, NetworkFilter, SocketAddress, Source};
use nuncio_hcm::Hcm;
use nuncio_listener::ListenerStats;
use nuncio_stats::Store;
use tokio::sync::Notify;

use crate::cli::{Args, EchoArgs, Mode, RuntimeModel};

fn load_config(args: &Args) -> Result<Bootstrap> {
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
    let mut b = nuncio_config::load(&sources)?;
    if let Some(c) = &args.service_cluster {
        b.node.cluster.clone_from(c);
    }
    if let Some(n) = &args.service_node {
        b.node.id.clone_from(n);
    }
    Ok(b)
}

fn socket_addr(a: &SocketAddress, remap: &AddressMap) -> Result<SocketAddr> {
    let ip = a
        .ip()
        .ok_or_else(|| anyhow!("listener address '{}' must be an IP address", a.address))?;
    Ok(remap.apply(SocketAddr::new(ip, a.port)))
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
    let bootstrap = load_config(args)?;
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
    let clusters = Arc::new(ClusterManager::new(
        &bootstrap.clusters,
        &store,
        workers,
        resolver,
    ));
    let mut hcms = Vec::new();
    for l in &bootstrap.listeners {
        let addr =
            socket_addr(&l.address, &remap).with_context(|| format!("listener '{}'", l.name))?;
        let NetworkFilter::HttpConnectionManager(cfg) = &l.filter_chains[0].filter;
        let hcm = Hcm::new(cfg, &clusters, &store, args.h1.into())
            .with_context(|| format!("listener '{}'", l.name))?;
        hcms.push((l.name.clone(), l.address.to_string(), addr, hcm));
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

    let rt = runtime()?;
    rt.block_on(async move {
        let started = Instant::now();
        let root = store.root();
        root.gauge("server.live").set(1);
        root.gauge("server.state").set(0);
        root.gauge("server.concurrency").set(workers as i64);
        let uptime = root.gauge("server.uptime");

        clusters.initialize().await;

        // Bind everything before starting workers, so a bind error stops
        // the process with a clear message.
        let mut bound = Vec::new();
        let mut infos = Vec::new();
        let managers: Vec<Arc<Hcm>> = hcms.iter().map(|h| h.3.clone()).collect();
        for (name, configured, addr, hcm) in hcms {
            let sockets = match args.runtime {
                RuntimeModel::PerWorker => workers,
                RuntimeModel::WorkStealing => 1,
            };
            let socks = nuncio_listener::bind(addr, sockets)
                .with_context(|| format!("cannot bind listener '{name}' to {addr}"))?;
            let actual = socks[0].local_addr()?;
            tracing::info!(listener = %name, address = %actual, "listening");
            infos.push(ListenerInfo {
                name,
                address: actual,
            });
            let stats = ListenerStats::new(&store, &configured);
            bound.push((socks, hcm, stats));
        }
        crate::workers::start(args.runtime, bound, workers)?;

        let shutdown = Arc::new(Notify::new());
        let (drain_tx, mut drain_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
        if let Some(admin) = &bootstrap.admin {
            let addr = socket_addr(&admin.address, &remap).context("admin")?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind admin to {addr}"))?;
            tracing::info!(address = %listener.local_addr()?, "admin listening");
            let state = Arc::new(AdminState {
                store: store.clone(),
                clusters: clusters.clone(),
                access_log: AdminState::open_log(admin.access_log_path.as_deref())?,
                bootstrap: bootstrap.clone(),
                listeners: infos,
                concurrency: workers,
                started,
                shutdown: shutdown.clone(),
                drain_listeners: drain_tx.clone(),
                healthcheck_failed: AtomicBool::new(false),
            });
            tokio::spawn(nuncio_admin::serve(listener, state));
        }
        tokio::spawn(async move {
            loop {
                uptime.set(started.elapsed().as_secs() as i64);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });

        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let drain_time = std::time::Duration::from_secs(args.drain_time_s);
        let state = root.gauge("server.state");
        let connections = root.gauge("server.total_connections");
        loop {
            tokio::select! {
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
                    state.set(1);
                    managers.iter().for_each(|m| m.close_listener());
                    let t0 = Instant::now();
                    while connections.get() > 0 && t0.elapsed() < drain_time {
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
                    state.set(1);
                    managers.iter().for_each(|m| m.start_drain());
                    if graceful {
                        tracing::info!(drain_time_s = args.drain_time_s, "/drain_listeners?graceful: listeners close after the drain time");
                        let managers = managers.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(drain_time).await;
                            managers.iter().for_each(|m| m.close_listener());
                        });
                    } else {
                        tracing::info!("/drain_listeners: listeners closed, connections draining");
                        managers.iter().for_each(|m| m.close_listener());
                    }
                }
            }
        }
        Ok::<(), anyhow::Error>(())
    })?;
    // Workers are detached; exiting the process ends them.
    std::process::exit(0);
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
