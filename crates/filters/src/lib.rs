//! The I/O-free logic of nuncio's HTTP filters, one module per filter. Each
//! takes its validated config from `nuncio_config`, the request's facts as
//! arguments (time as `Instant`, randomness through [`Random`]) and returns
//! a decision the request path carries out.

#![forbid(unsafe_code)]

/// A source of random numbers (Envoy's `RandomGenerator`), so decisions
/// that sample requests are deterministic in tests.
pub trait Random {
    /// A uniformly distributed 64-bit number.
    fn random(&mut self) -> u64;
}
