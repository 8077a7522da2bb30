//! Upstream connections. A [`HostPool`] belongs to one host of one cluster
//! and one worker thread (as in Envoy, pools are per worker, so the request
//! path takes no contended lock). It connects with the cluster's
//! `connect_timeout`, keeps HTTP/1.1 connections alive for reuse, and
//! returns a connection to the pool only when its response has been read to
//! the end.

#![forbid(unsafe_code)]

mod body;
mod error;
mod pool;

pub use body::{PooledBody, UpstreamBody};
pub use error::{ResetReason, UpstreamError};
pub use pool::{ConnStats, HostPool, PoolSettings};
