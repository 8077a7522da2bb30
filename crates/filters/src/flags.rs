//! Envoy's response flags (`%RESPONSE_FLAGS%`): what went wrong or was
//! done to a request, as a set. Printed as Envoy prints them: the short
//! names in Envoy's order, joined with `,`, or `-` for none.

use std::fmt;

/// A set of response flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ResponseFlags(u32);

/// Each flag's bit and short name, in the order Envoy prints them.
const NAMES: [(u32, &str); 13] = [
    (1 << 0, "UH"),
    (1 << 1, "UT"),
    (1 << 2, "LR"),
    (1 << 3, "UR"),
    (1 << 4, "UF"),
    (1 << 5, "UC"),
    (1 << 6, "NR"),
    (1 << 7, "DI"),
    (1 << 8, "FI"),
    (1 << 9, "RL"),
    (1 << 10, "DC"),
    (1 << 11, "SI"),
    (1 << 12, "DR"),
];

impl ResponseFlags {
    /// No flag (`-`).
    pub const NONE: ResponseFlags = ResponseFlags(0);
    /// The cluster had no healthy host (`UH`).
    pub const NO_HEALTHY_UPSTREAM: ResponseFlags = ResponseFlags(1 << 0);
    /// The route timeout fired (`UT`).
    pub const UPSTREAM_TIMEOUT: ResponseFlags = ResponseFlags(1 << 1);
    /// The request was refused locally (`LR`).
    pub const LOCAL_REJECT: ResponseFlags = ResponseFlags(1 << 2);
    /// The upstream reset the stream (`UR`).
    pub const UPSTREAM_RESET: ResponseFlags = ResponseFlags(1 << 3);
    /// The upstream connection failed (`UF`).
    pub const UPSTREAM_CONNECT_FAILURE: ResponseFlags = ResponseFlags(1 << 4);
    /// The upstream connection ended (`UC`).
    pub const UPSTREAM_TERMINATION: ResponseFlags = ResponseFlags(1 << 5);
    /// No route matched (`NR`).
    pub const NO_ROUTE: ResponseFlags = ResponseFlags(1 << 6);
    /// The fault filter delayed the request (`DI`).
    pub const DELAY_INJECTED: ResponseFlags = ResponseFlags(1 << 7);
    /// The fault filter aborted the request (`FI`).
    pub const FAULT_INJECTED: ResponseFlags = ResponseFlags(1 << 8);
    /// A rate limiter refused the request (`RL`).
    pub const RATE_LIMITED: ResponseFlags = ResponseFlags(1 << 9);
    /// The client ended the connection (`DC`).
    pub const DOWNSTREAM_TERMINATION: ResponseFlags = ResponseFlags(1 << 10);
    /// `stream_idle_timeout` fired (`SI`).
    pub const STREAM_IDLE_TIMEOUT: ResponseFlags = ResponseFlags(1 << 11);
    /// The client reset the stream (`DR`).
    pub const DOWNSTREAM_RESET: ResponseFlags = ResponseFlags(1 << 12);

    /// No flag set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: ResponseFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets.
    #[must_use]
    pub fn with(self, other: ResponseFlags) -> ResponseFlags {
        ResponseFlags(self.0 | other.0)
    }
}

impl std::ops::BitOr for ResponseFlags {
    type Output = ResponseFlags;
    fn bitor(self, other: ResponseFlags) -> ResponseFlags {
        self.with(other)
    }
}

impl std::ops::BitOrAssign for ResponseFlags {
    fn bitor_assign(&mut self, other: ResponseFlags) {
        *self = self.with(other);
    }
}

impl fmt::Display for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut first = true;
        for (bit, name) in NAMES {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_as_envoy_prints_them() {
        assert_eq!(ResponseFlags::NONE.to_string(), "-");
        assert_eq!(ResponseFlags::NO_ROUTE.to_string(), "NR");
        let f = ResponseFlags::UPSTREAM_CONNECT_FAILURE | ResponseFlags::DELAY_INJECTED;
        assert_eq!(f.to_string(), "UF,DI");
        assert!(f.contains(ResponseFlags::DELAY_INJECTED));
        assert!(!f.contains(ResponseFlags::NO_ROUTE));
        let mut g = ResponseFlags::NO_HEALTHY_UPSTREAM;
        g |= ResponseFlags::UPSTREAM_TIMEOUT;
        assert_eq!(g.to_string(), "UH,UT");
    }
}
