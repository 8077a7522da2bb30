//! Worker threads. The default model (measured in ARCHITECTURE.md) is
//! Envoy's: one thread per worker, each a current-thread runtime with its
//! own listening socket (SO_REUSEPORT) and its own upstream pools, sharing
//! nothing on the request path. `--runtime work-stealing` runs the same
//! listeners on one multi-thread tokio runtime instead (one socket, one
//! shared pool per host), kept for comparison.

use std::sync::Arc;

use anyhow::{Context, Result};
use nuncio_hcm::Hcm;
use nuncio_listener::ListenerStats;

use crate::cli::RuntimeModel;
use crate::server::runtime;

/// A listener's sockets (one per worker, or one), its connection manager and stats.
pub(crate) type Bound = (Vec<std::net::TcpListener>, Arc<Hcm>, Arc<ListenerStats>);

/// Starts the workers serving `bound` listeners.
pub(crate) fn start(model: RuntimeModel, bound: Vec<Bound>, workers: usize) -> Result<()> {
    match model {
        RuntimeModel::PerWorker => per_worker(bound, workers),
        RuntimeModel::WorkStealing => work_stealing(bound, workers),
    }
}

fn per_worker(bound: Vec<Bound>, workers: usize) -> Result<()> {
    let mut jobs: Vec<Vec<_>> = (0..workers).map(|_| Vec::new()).collect();
    for (socks, hcm, stats) in bound {
        for (w, s) in socks.into_iter().enumerate() {
            jobs[w].push((s, hcm.clone(), stats.clone()));
        }
    }
    for (w, jobs) in jobs.into_iter().enumerate() {
        std::thread::Builder::new()
            .name(format!("nuncio-worker-{w}"))
            .spawn(move || {
                let rt = match runtime() {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "worker {w} failed to start");
                        std::process::exit(1);
                    }
                };
                rt.block_on(serve(jobs, w));
            })?;
    }
    Ok(())
}

fn work_stealing(bound: Vec<Bound>, workers: usize) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("nuncio-worker")
        .enable_all()
        .build()
        .context("cannot start the work-stealing runtime")?;
    let jobs: Vec<_> = bound
        .into_iter()
        .flat_map(|(socks, hcm, stats)| {
            socks
                .into_iter()
                .map(move |s| (s, hcm.clone(), stats.clone()))
        })
        .collect();
    std::thread::Builder::new()
        .name("nuncio-ws-main".into())
        .spawn(move || {
            // Every task may run on any thread: all use pool 0.
            rt.block_on(serve(jobs, 0));
        })?;
    Ok(())
}

async fn serve(jobs: Vec<(std::net::TcpListener, Arc<Hcm>, Arc<ListenerStats>)>, worker: usize) {
    let tasks: Vec<_> = jobs
        .into_iter()
        .map(|(sock, hcm, stats)| tokio::spawn(nuncio_listener::run(sock, hcm, stats, worker)))
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    // Listeners closed (draining): the connections they accepted are tasks
    // of this runtime and must keep running until the process exits.
    std::future::pending::<()>().await;
}
