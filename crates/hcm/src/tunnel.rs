//! Upgraded connections (WebSocket): once the upstream answers 101, bytes
//! are copied both ways until either side closes.

use std::sync::Arc;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use nuncio_stats::GaugeGuard;

use crate::Hcm;

/// Joins the downstream and upstream halves of an upgrade in a new task.
pub(crate) fn spawn(down: OnUpgrade, up: OnUpgrade, hcm: Arc<Hcm>) {
    tokio::spawn(async move {
        let (down, up) = match tokio::try_join!(down, up) {
            Ok(both) => both,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        hcm.stats.cx_upgrades_total.inc();
        let _active = GaugeGuard::new(&hcm.stats.cx_upgrades_active);
        let mut down = TokioIo::new(down);
        let mut up = TokioIo::new(up);
        match tokio::io::copy_bidirectional(&mut down, &mut up).await {
            Ok((from_client, from_server)) => {
                tracing::debug!(from_client, from_server, "tunnel closed");
            }
            Err(e) => tracing::debug!(error = %e, "tunnel ended with an error"),
        }
    });
}
