//! nuncio's HTTP filters: the extension point ([`chain`]: the
//! [`HttpFilter`] phase trait, the [`FilterChain`] the connection manager
//! runs, [`edits`] for header changes over the codec's views), the
//! registry that builds filters from `http_filters` ([`registry`]), and one
//! module per Envoy filter. Each filter's decisions are I/O-free functions
//! (time as `Instant`, randomness through [`Random`]) tested beside them;
//! its `filter.rs` carries them out through the trait. `cors` is the
//! worked example for adding a filter.

#![forbid(unsafe_code)]

pub mod buffer;
pub mod chain;
pub mod civil;
pub mod cors;
pub mod edits;
pub mod fault;
pub mod flags;
pub mod formatter;
pub mod header_mutation;
pub mod headers;
pub mod health_check;
pub mod local_ratelimit;
pub mod registry;

pub use chain::{
    FilterChain, Flow, HttpFilter, LocalResponse, RequestCx, ResponseCx, StreamFacts, StreamState,
    Verdict,
};
pub use edits::{Edits, Fields};
pub use flags::ResponseFlags;

/// A source of random numbers (Envoy's `RandomGenerator`), so decisions
/// that sample requests are deterministic in tests.
pub trait Random {
    /// A uniformly distributed 64-bit number.
    fn random(&mut self) -> u64;
}

/// A per-thread xorshift generator seeded from the OS-randomised std
/// hasher: the request path's source of [`Random`] numbers.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadRandom;

impl Random for ThreadRandom {
    fn random(&mut self) -> u64 {
        use std::cell::Cell;
        use std::hash::{BuildHasher, Hasher};
        thread_local! {
            static STATE: Cell<u64> = Cell::new({
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u64(0x6e75_6e63_696f);
                h.finish() | 1
            });
        }
        STATE.with(|s| {
            let mut x = s.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.set(x);
            x
        })
    }
}

/// Whether a request drawn from `random` falls in `percent` (Envoy's
/// `featureEnabled` with no runtime override).
pub fn sampled(percent: &nuncio_config::FractionalPercent, random: &mut dyn Random) -> bool {
    percent.hit(random.random())
}
