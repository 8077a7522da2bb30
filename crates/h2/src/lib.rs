//! nuncio's HTTP/2 codec: the server half for every HTTP/2 client, the client half
//! ([`client`]) for every HTTP/2 cluster. Framing, HPACK and stream state with the
//! request's header block kept as bytes, and responses HPACK-encoded
//! straight from the upstream's HTTP/1.1 header bytes.
//!
//! Why not the `h2` crate (now only a dev-dependency the tests talk to): on the h2c mix its connection (frame codec, HPACK with
//! Huffman coding and dynamic-table search, a general stream store and
//! prioritisation) plus the `HeaderMap`s built on both sides cost about
//! half of nuncio's ~41k instructions per request (`MIX=h2c bash
//! bench/profile.sh`, bench/RESULTS.md has the figures before and after).
//!
//! The parts: [`frame`] (frame headers, error codes, writers), `huffman`
//! (decoding), [`hpack`] (the decoder with its dynamic table, a table-free
//! encoder), `request` (RFC 9113 section 8 checks), `state` (the stream
//! table and windows, shared with the handles), `stream` (the handles),
//! `conn` (the connection driver, both roles; `conn/response.rs` checks a
//! client's response heads), [`client`] (opening streams).

#![forbid(unsafe_code)]

mod bufpool;
pub mod client;
mod conn;
pub mod frame;
pub mod hpack;
mod huffman;
mod request;
mod state;
mod stream;

pub use conn::{handshake, Accepted, Config, Connection, Error};
pub use frame::{Reason, PREFACE};
pub use hpack::Block;
pub use request::Request;
pub use stream::{Fields, RecvStream, SendResponse, SendStream, StreamError};

#[cfg(test)]
mod testutil {
    /// Bytes from RFC-style hex ("f1e3 c2e5").
    pub fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
