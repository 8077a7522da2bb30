//! Worker threads. The default model (measured in ARCHITECTURE.md) is
//! Envoy's: one thread per worker, each a current-thread runtime with its
//! own listening socket (SO_REUSEPORT) and its own upstream pools, sharing
//! nothing on the request path. The alternative, one multi-thread
//! work-stealing runtime, cost more CPU per request and was removed once
//! measured (ARCHITECTURE.md, "Threading model").
//!
//! Each worker takes new listener sockets from a channel, so a config
//! reload can add listeners to running workers.

use std::sync::Arc;

use anyhow::Result;
use nuncio_listener::{ListenerSlot, ListenerStats};
use tokio::sync::mpsc;

use crate::server::runtime;

/// One listener socket for one worker: the socket, the listener's slot
/// and its stats.
pub(crate) type Job = (std::net::TcpListener, Arc<ListenerSlot>, Arc<ListenerStats>);

/// The running workers: where to send each one new listener sockets.
pub(crate) struct Workers {
    senders: Vec<mpsc::UnboundedSender<Job>>,
}

impl Workers {
    /// Starts the workers (no listeners yet).
    pub(crate) fn start(workers: usize) -> Result<Self> {
        per_worker(workers)
    }

    /// How many sockets a listener needs: one per worker.
    pub(crate) fn sockets(&self) -> usize {
        self.senders.len()
    }

    /// Hands a listener's sockets (from `nuncio_listener::bind` with
    /// [`Workers::sockets`] sockets) to the workers.
    pub(crate) fn serve(
        &self,
        sockets: Vec<std::net::TcpListener>,
        slot: &Arc<ListenerSlot>,
        stats: &Arc<ListenerStats>,
    ) {
        for (s, tx) in sockets.into_iter().zip(&self.senders) {
            if tx.send((s, slot.clone(), stats.clone())).is_err() {
                tracing::error!("a worker has stopped; its share of a listener is not served");
            }
        }
    }
}

fn per_worker(workers: usize) -> Result<Workers> {
    let mut senders = Vec::with_capacity(workers);
    for w in 0..workers {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        std::thread::Builder::new()
            .name(format!("nuncio-worker-{w}"))
            .spawn(move || {
                let rt = match runtime() {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "worker {w} failed to start");
                        crate::logging::flush();
                        std::process::exit(1);
                    }
                };
                rt.block_on(serve(rx, w));
            })?;
    }
    Ok(Workers { senders })
}

/// A worker's life: serve every listener socket it is given. When a
/// listener closes (draining) its accepted connections are tasks of this
/// runtime and keep running, so the worker never returns.
async fn serve(mut jobs: mpsc::UnboundedReceiver<Job>, worker: usize) {
    while let Some((sock, slot, stats)) = jobs.recv().await {
        tokio::spawn(nuncio_listener::run(sock, slot, stats, worker));
    }
    std::future::pending::<()>().await;
}
