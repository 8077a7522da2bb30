//! The I/O-free logic of nuncio's HTTP filters, one module per filter. Each
//! takes its validated config from `nuncio_config`, the request's facts as
//! arguments (time as `Instant`, randomness through [`Random`]) and returns
//! a decision the request path carries out.

#![forbid(unsafe_code)]

pub mod buffer;
mod civil;
pub mod cors;
pub mod fault;
pub mod formatter;
pub mod headers;
pub mod health_check;
pub mod local_ratelimit;

/// A source of random numbers (Envoy's `RandomGenerator`), so decisions
/// that sample requests are deterministic in tests.
pub trait Random {
    /// A uniformly distributed 64-bit number.
    fn random(&mut self) -> u64;
}

/// Whether a request drawn from `random` falls in `percent` (Envoy's
/// `featureEnabled` with no runtime override).
pub fn sampled(percent: &nuncio_config::FractionalPercent, random: &mut dyn Random) -> bool {
    percent.hit(random.random())
}
