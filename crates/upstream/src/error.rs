//! Why an upstream request failed, in Envoy's reset-reason vocabulary.

use std::fmt;

/// Envoy's stream reset reasons, as they appear in local replies
/// (`upstream connect error or disconnect/reset before headers. reset reason: ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    /// The TCP connection could not be made (refused, unreachable).
    ConnectionFailure,
    /// The TCP connection was not made within `connect_timeout`.
    ConnectionTimeout,
    /// The connection closed before a response.
    ConnectionTermination,
    /// The peer reset the stream.
    RemoteReset,
    /// The peer refused the stream (HTTP/2 REFUSED_STREAM): it was not
    /// processed.
    RemoteRefusedStreamReset,
    /// The peer broke the protocol.
    ProtocolError,
    /// A limit was hit.
    Overflow,
}

/// Each reason's name, and Envoy's local reply body for a failure before
/// the response head, from one table.
macro_rules! reset_reasons {
    ($($reason:ident => $name:literal,)*) => {
        impl ResetReason {
            /// Envoy's name for the reason.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $(ResetReason::$reason => $name,)*
                }
            }

            /// Envoy's local reply body for a request that failed this way
            /// before any response head.
            pub fn local_reply_body(&self) -> &'static str {
                match self {
                    $(ResetReason::$reason => concat!(
                        "upstream connect error or disconnect/reset before headers. reset reason: ",
                        $name
                    ),)*
                }
            }
        }
    };
}

reset_reasons! {
    ConnectionFailure => "remote connection failure",
    ConnectionTimeout => "connection timeout",
    ConnectionTermination => "connection termination",
    RemoteReset => "remote reset",
    RemoteRefusedStreamReset => "remote refused stream reset",
    ProtocolError => "protocol error",
    Overflow => "overflow",
}

impl ResetReason {
    /// The connection was never made (Envoy's `UF` flag).
    pub fn is_connect_failure(&self) -> bool {
        matches!(
            self,
            ResetReason::ConnectionFailure | ResetReason::ConnectionTimeout
        )
    }
}

impl fmt::Display for ResetReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An upstream failure.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Connecting failed (refused, unreachable).
    #[error("connect to {addr} failed: {source}")]
    Connect {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Connecting took longer than `connect_timeout`.
    #[error("connect to {0} timed out")]
    ConnectTimeout(std::net::SocketAddr),
    /// The TLS handshake with the upstream failed.
    #[error("TLS handshake with {addr} failed: {reason}")]
    Tls {
        /// The address.
        addr: std::net::SocketAddr,
        /// rustls' reason.
        reason: String,
    },
    /// No HTTP/2 stream could be opened: the connection went, or the
    /// upstream does not accept WebSockets (no
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL).
    #[error("upstream HTTP/2 stream not opened: {0}")]
    H2Open(nuncio_h2::client::OpenError),
}

impl UpstreamError {
    /// The reset reason Envoy would report.
    pub fn reset_reason(&self) -> ResetReason {
        match self {
            UpstreamError::Connect { .. } => ResetReason::ConnectionFailure,
            UpstreamError::ConnectTimeout(_) => ResetReason::ConnectionTimeout,
            UpstreamError::Tls { .. } => ResetReason::ConnectionFailure,
            UpstreamError::H2Open(nuncio_h2::client::OpenError::NoConnectProtocol) => {
                ResetReason::ProtocolError
            }
            UpstreamError::H2Open(_) => ResetReason::ConnectionTermination,
        }
    }

    /// True for failures to establish the connection.
    pub fn is_connect_failure(&self) -> bool {
        self.reset_reason().is_connect_failure()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_reply_bodies_are_envoys() {
        assert_eq!(
            ResetReason::RemoteRefusedStreamReset.local_reply_body(),
            "upstream connect error or disconnect/reset before headers. reset reason: remote refused stream reset"
        );
        // Envoy 1.40's words for a refused connect and a connect timeout.
        assert_eq!(
            ResetReason::ConnectionFailure.to_string(),
            "remote connection failure"
        );
        assert_eq!(
            ResetReason::ConnectionTimeout.to_string(),
            "connection timeout"
        );
        assert!(ResetReason::ConnectionTimeout.is_connect_failure());
        assert!(!ResetReason::RemoteReset.is_connect_failure());
    }
}
