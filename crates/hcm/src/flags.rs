//! Envoy's response flags, as the connection manager sets them: the set
//! type lives with the filters (`nuncio_filters::ResponseFlags`), which set
//! flags too (`FI`, `DI`, `RL`); these are its values by their Envoy names.

pub use nuncio_filters::ResponseFlags;

/// No flag.
pub const NONE: ResponseFlags = ResponseFlags::NONE;
/// No route matched (`NR`).
pub const NO_ROUTE: ResponseFlags = ResponseFlags::NO_ROUTE;
/// The cluster had no healthy host (`UH`).
pub const NO_HEALTHY_UPSTREAM: ResponseFlags = ResponseFlags::NO_HEALTHY_UPSTREAM;
/// The upstream connection failed (`UF`).
pub const UPSTREAM_CONNECT_FAILURE: ResponseFlags = ResponseFlags::UPSTREAM_CONNECT_FAILURE;
/// The route timeout fired (`UT`).
pub const UPSTREAM_TIMEOUT: ResponseFlags = ResponseFlags::UPSTREAM_TIMEOUT;
/// The upstream reset the stream (`UR`).
pub const UPSTREAM_RESET: ResponseFlags = ResponseFlags::UPSTREAM_RESET;
/// The upstream connection ended (`UC`).
pub const UPSTREAM_TERMINATION: ResponseFlags = ResponseFlags::UPSTREAM_TERMINATION;
/// The request was refused locally (`LR`).
pub const LOCAL_REJECT: ResponseFlags = ResponseFlags::LOCAL_REJECT;
/// `stream_idle_timeout` fired (`SI`).
pub const STREAM_IDLE_TIMEOUT: ResponseFlags = ResponseFlags::STREAM_IDLE_TIMEOUT;
/// The client ended the connection (`DC`).
pub const DOWNSTREAM_TERMINATION: ResponseFlags = ResponseFlags::DOWNSTREAM_TERMINATION;
/// The client reset the stream (`DR`).
pub const DOWNSTREAM_RESET: ResponseFlags = ResponseFlags::DOWNSTREAM_RESET;
