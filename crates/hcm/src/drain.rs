//! Draining a connection manager (SIGTERM, POST /drain_listeners, a
//! replaced listener): its listener stops accepting (at once, or after the
//! drain time for `/drain_listeners?graceful`), every response from
//! then on carries `Connection: close` (HTTP/2: GOAWAY, in-flight streams
//! finish), and a keep-alive connection left idle is closed after the
//! manager's `drain_timeout`. Nothing that was already accepted is cut.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::native::deadline;

/// One connection manager's drain state.
#[derive(Debug)]
pub struct Drain {
    draining: AtomicBool,
    /// 0 live, 1 draining connections, 2 listener closed too.
    tx: watch::Sender<u8>,
    /// The deadline wheel's group for this manager's idle waits.
    pub(crate) group: u64,
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            draining: AtomicBool::new(false),
            tx: watch::channel(0).0,
            group: deadline::new_group(),
        }
    }
}

impl Drain {
    /// Starts draining; idle connections get `grace` to send a last
    /// request. Returns false if it was already draining.
    pub fn start(&self, grace: Duration) -> bool {
        if self.draining.swap(true, Ordering::AcqRel) {
            return false;
        }
        deadline::drain_group(self.group, grace);
        self.tx.send_if_modified(|s| {
            let was = *s;
            *s = (*s).max(1);
            was != *s
        });
        true
    }

    /// Closes the listener (new connections are refused) and starts
    /// draining if it had not begun.
    pub fn close_listener(&self, grace: Duration) {
        self.start(grace);
        self.tx.send_replace(2);
    }

    /// Whether draining has begun (one relaxed load: on the request path).
    #[inline]
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Resolves once draining has begun.
    pub async fn started(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|s| *s >= 1).await;
    }

    /// Resolves once the listener must close.
    pub async fn listener_closed(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|s| *s >= 2).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_once_and_wakes_waiters() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let d = std::sync::Arc::new(Drain::default());
            let d2 = d.clone();
            let waiter = tokio::spawn(async move { d2.started().await });
            tokio::task::yield_now().await;
            assert!(!d.is_draining());
            assert!(d.start(Duration::from_secs(1)));
            assert!(!d.start(Duration::from_secs(1)));
            assert!(d.is_draining());
            tokio::time::timeout(Duration::from_secs(1), waiter)
                .await
                .expect("waiter woke")
                .unwrap();
            // Late subscribers see it at once.
            tokio::time::timeout(Duration::from_millis(50), d.started())
                .await
                .expect("already started");
            // Draining alone keeps the listener open.
            assert!(
                tokio::time::timeout(Duration::from_millis(50), d.listener_closed())
                    .await
                    .is_err()
            );
            d.close_listener(Duration::from_secs(1));
            tokio::time::timeout(Duration::from_millis(50), d.listener_closed())
                .await
                .expect("closed");
        });
    }
}
