//! WebSocket (RFC 6455) pieces shared by the proxy and the echo service:
//! - [`handshake`]: accept keys and how to recognise upgrade requests;
//! - [`frame`]: frame headers (parse, encode) and masking;
//! - [`message`]: messages from frames, with the fragmentation, RSV,
//!   UTF-8 and size rules, and the close code each violation calls for;
//! - [`utf8`]: UTF-8 validation of a text message as its bytes arrive;
//! - [`close`]: close codes and close frame payloads.

#![forbid(unsafe_code)]

pub mod close;
pub mod frame;
pub mod handshake;
pub mod message;
pub mod utf8;

pub use handshake::{accept_key, base64, is_h1_websocket, is_h2_websocket, new_key, sha1};
