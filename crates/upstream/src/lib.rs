//! Upstream connections. A [`HostPool`] belongs to one host of one cluster
//! and one worker thread (as in Envoy, pools are per worker, so the request
//! path takes no contended lock). It connects with the cluster's
//! `connect_timeout`, keeps HTTP/1.1 connections alive for reuse, and
//! returns a connection to the pool only when its response has been read to
//! the end. HTTP/2 clusters share a few connections, each carrying up to
//! the peer's `SETTINGS_MAX_CONCURRENT_STREAMS` requests; another connection
//! opens when all are full.

#![forbid(unsafe_code)]

mod error;
mod h2;
mod pool;
mod raw;

pub use error::{ResetReason, UpstreamError};
pub use h2::{h2_reset_reason, H2Stream};
pub use nuncio_h2flood::{FloodLimits, FloodStats};
pub use pool::{ConnStats, HostPool, PoolSettings, Protocol};
pub use raw::RawConn;
