//! [`BodyProgress`]: how far a request body streamed upstream has got,
//! shared with the connection manager that times the request. Envoy starts
//! the route timeout once the whole request has been received, and its
//! `stream_idle_timeout` fires when no body bytes move for that long.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// When a request body last moved, and when it ended.
#[derive(Debug)]
pub struct BodyProgress {
    base: Instant,
    /// Milliseconds after `base` of the last frame.
    last_ms: AtomicU64,
    /// Milliseconds after `base` of the end (`u64::MAX`: not yet).
    ended_ms: AtomicU64,
    ended: AtomicBool,
    end: Notify,
}

impl Default for BodyProgress {
    fn default() -> Self {
        BodyProgress {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
            ended_ms: AtomicU64::new(u64::MAX),
            ended: AtomicBool::new(false),
            end: Notify::new(),
        }
    }
}

impl BodyProgress {
    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// Records a frame.
    pub fn moved(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Records the end of the body (idempotent).
    pub fn ended(&self) {
        if !self.ended.swap(true, Ordering::AcqRel) {
            self.ended_ms.store(self.now_ms(), Ordering::Relaxed);
            self.moved();
            self.end.notify_waiters();
        }
    }

    /// When the body ended, if it has.
    pub fn ended_at(&self) -> Option<Instant> {
        match self.ended_ms.load(Ordering::Relaxed) {
            u64::MAX => None,
            ms => Some(self.base + Duration::from_millis(ms)),
        }
    }

    /// Resolves once the body has ended.
    pub async fn until_ended(&self) {
        loop {
            let notified = self.end.notified();
            if self.ended.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// Resolves once no frame has moved for `idle` before the body ended
    /// (never resolves after the end).
    pub async fn until_idle(&self, idle: Duration) {
        loop {
            if self.ended.load(Ordering::Acquire) {
                return std::future::pending().await;
            }
            let at = self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + idle;
            if Instant::now() >= at {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = self.until_ended() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_fires_only_without_progress() {
        let p = BodyProgress::default();
        tokio::time::advance(Duration::from_millis(600)).await;
        p.moved();
        let idle = tokio::time::timeout(
            Duration::from_millis(900),
            p.until_idle(Duration::from_secs(1)),
        );
        assert!(idle.await.is_err(), "fired although a frame moved 0.6 s in");
        let t0 = Instant::now();
        p.until_idle(Duration::from_secs(1)).await;
        assert!(t0.elapsed() <= Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn the_end_is_remembered_and_stops_the_idle_timer() {
        let p = BodyProgress::default();
        assert_eq!(p.ended_at(), None);
        tokio::time::advance(Duration::from_millis(300)).await;
        p.ended();
        p.until_ended().await;
        let at = p.ended_at().map(|a| a.duration_since(p.base));
        assert_eq!(at, Some(Duration::from_millis(300)));
        let idle =
            tokio::time::timeout(Duration::from_secs(5), p.until_idle(Duration::from_secs(1)));
        assert!(idle.await.is_err());
    }
}
