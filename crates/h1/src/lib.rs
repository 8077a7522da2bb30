//! HTTP/1.1 on the wire, for a proxy: parse request and response heads
//! into views that borrow the read buffer (no header map, no copies), decide
//! body framing with RFC 9112 section 6's rules, and follow chunked bodies
//! so they can be forwarded byte for byte once validated.
//!
//! Everything here is strict on purpose: a message that two parsers could
//! read differently (request smuggling) is an error, never a guess:
//! Content-Length together with Transfer-Encoding, differing or malformed
//! Content-Lengths, a Transfer-Encoding that does not end in `chunked`, bare
//! LF line endings, obs-fold, a missing or repeated Host.

#![forbid(unsafe_code)]

mod chunked;
mod framing;
mod head;
mod rules;

pub use chunked::{ChunkedState, ChunkedValidator};
pub use framing::{request_framing, response_framing, Framing};
pub use head::{
    check_partial_request, head_end, parse_request, parse_response, Limits, RequestHead,
    ResponseHead,
};
pub use rules::{is_known_method, valid_authority};

/// Why a message was refused, with the status a proxy answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum H1Error {
    /// Malformed message: 400.
    #[error("bad request: {0}")]
    Bad(&'static str),
    /// Headers over the size or count limit: 431.
    #[error("request header fields too large")]
    TooLarge,
    /// A transfer coding we do not implement: 501.
    #[error("not implemented: {0}")]
    NotImplemented(&'static str),
    /// An HTTP/1.1 request without Host: 400 from the connection manager
    /// (Envoy's reply has no body, unlike the codec's refusals).
    #[error("bad request: missing Host header")]
    NoHost,
    /// A `#fragment` in the target: 400 from path normalisation, with no
    /// body (Envoy counts `downstream_rq_failed_path_normalization`).
    #[error("bad request: fragment in request target")]
    Fragment,
    /// An HTTP version other than 1.0 and 1.1 (HTTP/1.2, HTTP/0.9's line
    /// without a version): Envoy's 426 Upgrade Required.
    #[error("unsupported HTTP version")]
    UnsupportedVersion,
}

impl H1Error {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            H1Error::Bad(_) | H1Error::NoHost | H1Error::Fragment => 400,
            H1Error::UnsupportedVersion => 426,
            H1Error::TooLarge => 431,
            H1Error::NotImplemented(_) => 501,
        }
    }

    /// The body of the local reply: Envoy's codec answers its refusals
    /// with the status's reason phrase; the connection manager's own 400
    /// for a missing Host is empty.
    pub fn body(&self) -> &'static str {
        match self {
            H1Error::Bad(_) => "Bad Request",
            H1Error::TooLarge => "Request Header Fields Too Large",
            H1Error::NotImplemented(_) => "Not Implemented",
            H1Error::NoHost | H1Error::Fragment => "",
            H1Error::UnsupportedVersion => "Upgrade Required",
        }
    }
}
