//! Envoy's header value formatter: evaluates a [`FormatString`] (compiled
//! by `nuncio_config` at config time) against a request's facts, given
//! through [`FormatContext`], which the request path implements.
//!
//! Verified against Envoy 1.40 (`request_headers_to_add` and
//! `response_headers_to_add` on a route, values read back from an echoing
//! upstream and the response): `%START_TIME%` is
//! `2026-12-07T23:50:30.597Z`; `%START_TIME(%s|%f|%3f|%E3S|%E*S|%T)%` is
//! `1796687430|597748000|597|30.597|30.597748|23:50:30`; `%PROTOCOL%` is
//! `HTTP/1.1` or `HTTP/2`; `%RESPONSE_CODE%` is `0` in request headers and
//! `200` in response headers; `%UPSTREAM_REMOTE_ADDRESS%` is empty in
//! request headers; `%REQ(x-in):3%` is `hel` (the first value only);
//! a missing header formats as nothing (`a%REQ(x-missing)%b` is `ab`),
//! `%REQ(x-missing?x-in)%` reads the alternative;
//! `%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%|%DOWNSTREAM_REMOTE_PORT%` is
//! `127.0.0.1|37734`.

use std::net::SocketAddr;
use std::time::SystemTime;

pub use nuncio_config::{
    AddressPart, Command, Endpoint, FormatError, FormatString, HeaderRef, Segment, TimePiece,
};

use crate::civil::Civil;

/// The HTTP version of a request, as `%PROTOCOL%` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `HTTP/1.0`.
    Http10,
    /// `HTTP/1.1`.
    Http11,
    /// `HTTP/2`.
    Http2,
}

impl Protocol {
    /// Envoy's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http10 => "HTTP/1.0",
            Protocol::Http11 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
        }
    }
}

/// What a format string can read about the request being handled.
pub trait FormatContext {
    /// An address, if known at this point (the upstream ones are unknown
    /// while request headers are formatted).
    fn address(&self, of: Endpoint) -> Option<SocketAddr>;
    /// When the request's first byte arrived.
    fn start_time(&self) -> SystemTime;
    /// The first value of request header `name` (lowercase).
    fn request_header(&self, name: &str) -> Option<&str>;
    /// The first value of response header `name` (lowercase), once there
    /// is a response.
    fn response_header(&self, name: &str) -> Option<&str>;
    /// The request's HTTP version.
    fn protocol(&self) -> Option<Protocol>;
    /// The machine's host name.
    fn hostname(&self) -> Option<&str>;
    /// The response status (`None` while there is none: prints `0`).
    fn response_code(&self) -> Option<u16>;
    /// The cluster the route chose.
    fn upstream_cluster(&self) -> Option<&str>;
    /// The matched route's name (empty names print nothing).
    fn route_name(&self) -> Option<&str>;
}

/// Compiles `format` (a convenience over [`FormatString::parse`]).
pub fn compile(format: &str) -> Result<FormatString, FormatError> {
    FormatString::parse(format)
}

/// Evaluates `f` into a new string. Values that are unknown format as
/// nothing (Envoy's `omit_empty_values` for headers).
pub fn format(f: &FormatString, ctx: &dyn FormatContext) -> String {
    let mut out = String::new();
    format_into(f, ctx, &mut out);
    out
}

/// Evaluates `f`, appending to `out`.
pub fn format_into(f: &FormatString, ctx: &dyn FormatContext, out: &mut String) {
    for s in &f.segments {
        match s {
            Segment::Literal(t) => out.push_str(t),
            Segment::Command(c) => command(c, ctx, out),
        }
    }
}

fn command(c: &Command, ctx: &dyn FormatContext, out: &mut String) {
    use std::fmt::Write;
    match c {
        Command::Address { of, part } => {
            if let Some(a) = ctx.address(*of) {
                let _ = match part {
                    AddressPart::Full => write!(out, "{a}"),
                    AddressPart::WithoutPort => write!(out, "{}", a.ip()),
                    AddressPart::Port => write!(out, "{}", a.port()),
                };
            }
        }
        Command::StartTime(pieces) => format_time(pieces, ctx.start_time(), out),
        Command::RequestHeader(h) => header(h, |n| ctx.request_header(n), out),
        Command::ResponseHeader(h) => header(h, |n| ctx.response_header(n), out),
        Command::Protocol => {
            if let Some(p) = ctx.protocol() {
                out.push_str(p.as_str());
            }
        }
        Command::Hostname => out.push_str(ctx.hostname().unwrap_or_default()),
        Command::ResponseCode => {
            let _ = write!(out, "{}", ctx.response_code().unwrap_or(0));
        }
        Command::UpstreamCluster => out.push_str(ctx.upstream_cluster().unwrap_or_default()),
        Command::RouteName => out.push_str(ctx.route_name().unwrap_or_default()),
    }
}

fn header<'c>(h: &HeaderRef, get: impl Fn(&str) -> Option<&'c str>, out: &mut String) {
    let v = get(&h.name).or_else(|| h.alternative.as_deref().and_then(&get));
    if let Some(v) = v {
        let cut = match h.max_length {
            Some(n) if n < v.len() => {
                let mut n = n;
                while !v.is_char_boundary(n) {
                    n -= 1;
                }
                &v[..n]
            }
            _ => v,
        };
        out.push_str(cut);
    }
}

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Formats `t` (UTC) with compiled `START_TIME` pieces.
pub fn format_time(pieces: &[TimePiece], t: SystemTime, out: &mut String) {
    use std::fmt::Write;
    let c = Civil::of(t);
    let frac = |digits: u8| -> String {
        let s = format!("{:09}", c.nanos);
        s[..usize::from(digits.min(9))].to_string()
    };
    for p in pieces {
        let _ = match p {
            TimePiece::Literal(s) => {
                out.push_str(s);
                Ok(())
            }
            TimePiece::Year => write!(out, "{}", c.year),
            TimePiece::Year2 => write!(out, "{:02}", c.year.rem_euclid(100)),
            TimePiece::Month => write!(out, "{:02}", c.month),
            TimePiece::Day => write!(out, "{:02}", c.day),
            TimePiece::DaySpace => write!(out, "{:2}", c.day),
            TimePiece::Hour => write!(out, "{:02}", c.hour),
            TimePiece::Minute => write!(out, "{:02}", c.minute),
            TimePiece::Second => write!(out, "{:02}", c.second),
            TimePiece::DayOfYear => write!(out, "{:03}", c.day_of_year),
            TimePiece::WeekdayShort => out.write_str(&WEEKDAYS[c.weekday as usize][..3]),
            TimePiece::WeekdayLong => out.write_str(WEEKDAYS[c.weekday as usize]),
            TimePiece::MonthShort => out.write_str(&MONTHS[c.month as usize - 1][..3]),
            TimePiece::MonthLong => out.write_str(MONTHS[c.month as usize - 1]),
            TimePiece::EpochSeconds => write!(out, "{}", c.epoch_seconds),
            TimePiece::Fraction(d) => out.write_str(&frac(*d)),
            TimePiece::SecondsFraction(d) => write!(out, "{:02}.{}", c.second, frac(*d)),
            TimePiece::SecondsFractionTrimmed => {
                let f = format!("{:09}", c.nanos);
                let f = f.trim_end_matches('0');
                if f.is_empty() {
                    write!(out, "{:02}", c.second)
                } else {
                    write!(out, "{:02}.{f}", c.second)
                }
            }
            TimePiece::Offset => out.write_str("+0000"),
            TimePiece::ZoneName => out.write_str("UTC"),
        };
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// A request's facts for tests.
    #[derive(Default)]
    pub struct Facts {
        pub remote: Option<SocketAddr>,
        pub local: Option<SocketAddr>,
        pub upstream: Option<SocketAddr>,
        pub request: Vec<(&'static str, &'static str)>,
        pub response: Vec<(&'static str, &'static str)>,
        pub code: Option<u16>,
    }

    impl FormatContext for Facts {
        fn address(&self, of: Endpoint) -> Option<SocketAddr> {
            match of {
                Endpoint::DownstreamRemote | Endpoint::DownstreamDirectRemote => self.remote,
                Endpoint::DownstreamLocal => self.local,
                Endpoint::UpstreamRemote => self.upstream,
                Endpoint::UpstreamLocal => None,
            }
        }
        fn start_time(&self) -> SystemTime {
            UNIX_EPOCH + Duration::new(1_796_687_430, 597_748_000)
        }
        fn request_header(&self, name: &str) -> Option<&str> {
            self.request
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
        }
        fn response_header(&self, name: &str) -> Option<&str> {
            self.response
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
        }
        fn protocol(&self) -> Option<Protocol> {
            Some(Protocol::Http11)
        }
        fn hostname(&self) -> Option<&str> {
            Some("box")
        }
        fn response_code(&self) -> Option<u16> {
            self.code
        }
        fn upstream_cluster(&self) -> Option<&str> {
            Some("origin")
        }
        fn route_name(&self) -> Option<&str> {
            Some("myroute")
        }
    }

    fn f(s: &str, ctx: &Facts) -> String {
        format(&compile(s).unwrap(), ctx)
    }

    #[test]
    fn as_envoy_printed_them() {
        let ctx = Facts {
            remote: Some("127.0.0.1:37734".parse().unwrap()),
            local: Some("127.0.0.1:10000".parse().unwrap()),
            request: vec![("x-in", "hello")],
            ..Facts::default()
        };
        assert_eq!(f("%START_TIME%", &ctx), "2026-12-07T23:50:30.597Z");
        assert_eq!(
            f("%START_TIME(%s|%f|%3f|%E3S|%E*S|%T)%", &ctx),
            "1796687430|597748000|597|30.597|30.597748|23:50:30"
        );
        assert_eq!(
            f("%PROTOCOL%|%DOWNSTREAM_REMOTE_ADDRESS%|%DOWNSTREAM_LOCAL_PORT%|%UPSTREAM_CLUSTER%|%RESPONSE_CODE%|%ROUTE_NAME%|%UPSTREAM_REMOTE_ADDRESS%", &ctx),
            "HTTP/1.1|127.0.0.1:37734|10000|origin|0|myroute|"
        );
        assert_eq!(f("%REQ(x-in):3%", &ctx), "hel");
        assert_eq!(f("%REQ(x-missing)%", &ctx), "");
        assert_eq!(f("a%REQ(x-missing)%b", &ctx), "ab");
        assert_eq!(f("%REQ(x-missing?x-in)%", &ctx), "hello");
        assert_eq!(
            f(
                "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%|%DOWNSTREAM_REMOTE_PORT%",
                &ctx
            ),
            "127.0.0.1|37734"
        );
        let resp = Facts {
            upstream: Some("127.0.0.1:18080".parse().unwrap()),
            response: vec![("x-up", "1")],
            code: Some(200),
            ..Facts::default()
        };
        assert_eq!(
            f(
                "%RESPONSE_CODE%|%UPSTREAM_REMOTE_ADDRESS%|%RESP(x-up)%|%UPSTREAM_HOST%",
                &resp
            ),
            "200|127.0.0.1:18080|1|127.0.0.1:18080"
        );
    }

    #[test]
    fn other_pieces() {
        let ctx = Facts {
            remote: Some("[::1]:8080".parse().unwrap()),
            request: vec![("x-u", "héllo")],
            ..Facts::default()
        };
        assert_eq!(f("%DOWNSTREAM_REMOTE_ADDRESS%", &ctx), "[::1]:8080");
        assert_eq!(f("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", &ctx), "::1");
        assert_eq!(f("%REQ(x-u):2%", &ctx), "h", "never splits a character");
        assert_eq!(f("%HOSTNAME% 100%%", &ctx), "box 100%");
        assert_eq!(
            f(
                "%START_TIME(%a %A %b %B %e %j %y %D %F %R %z %Z %1f %9f)%",
                &ctx
            ),
            "Mon Monday Dec December  7 341 26 12/07/26 2026-12-07 23:50 +0000 UTC 5 597748000"
        );
        let mut whole = String::new();
        let pieces = nuncio_config::FormatString::parse("%START_TIME(%E*S)%").unwrap();
        let Segment::Command(Command::StartTime(p)) = &pieces.segments[0] else {
            panic!()
        };
        format_time(p, UNIX_EPOCH + Duration::from_secs(61), &mut whole);
        assert_eq!(whole, "01");
    }
}
