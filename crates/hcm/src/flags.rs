//! Envoy's response flags, as the access log's `%RESPONSE_FLAGS%` prints
//! them.

/// No flag.
pub const NONE: &str = "-";
/// No route matched (`NR`).
pub const NO_ROUTE: &str = "NR";
/// The cluster had no healthy host (`UH`).
pub const NO_HEALTHY_UPSTREAM: &str = "UH";
/// The upstream connection failed (`UF`).
pub const UPSTREAM_CONNECT_FAILURE: &str = "UF";
/// The route timeout fired (`UT`).
pub const UPSTREAM_TIMEOUT: &str = "UT";
/// The upstream reset the stream (`UR`).
pub const UPSTREAM_RESET: &str = "UR";
/// The upstream connection ended (`UC`).
pub const UPSTREAM_TERMINATION: &str = "UC";
/// The request was refused locally (`LR`).
pub const LOCAL_REJECT: &str = "LR";
/// `stream_idle_timeout` fired (`SI`).
pub const STREAM_IDLE_TIMEOUT: &str = "SI";
/// The client ended the connection (`DC`).
pub const DOWNSTREAM_TERMINATION: &str = "DC";
/// The client reset the stream (`DR`).
pub const DOWNSTREAM_RESET: &str = "DR";
