//! Envoy's substitution format strings as header values use them
//! (`request_headers_to_add`, `response_headers_to_add`, the local rate
//! limit's headers): text with `%%` for a percent sign and `%COMMAND%`,
//! `%COMMAND(arg)%` or `%COMMAND(arg):N%` substitutions. Compiled once at
//! config time into [`Segment`]s; `nuncio_filters::formatter` evaluates them.
//!
//! The grammar is Envoy 1.40's (`SubstitutionFormatParser::parse`): after an
//! unescaped `%` comes `[A-Z0-9_]+`, optionally `(arg)` (the shortest `arg`
//! that lets the rest match), optionally `:digits`, then `%`. Anything else
//! is "Incorrect configuration: {format}. Couldn't find valid command at
//! position {pos}", as Envoy says (checked with `envoy --mode validate` on
//! `%`, `a%`, `a%b`, `%START_TIME%x%`, `%req(x)%`, `%REQ(x-a):abc%`).
//! The per-command messages are Envoy's too: "REQ requires parameters",
//! "PROTOCOL does not take any parameters or length", "START_TIME does not
//! allow length to be specified.", "More than 1 alternative header
//! specified in token: a?b?c", "Not supported field in StreamInfo: FOO".
//! Envoy commands nuncio does not evaluate yet are refused with one message
//! naming the supported ones.

use std::fmt;

/// A compiled format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatString {
    /// The string as written.
    pub source: String,
    /// Its pieces, in order.
    pub segments: Vec<Segment>,
}

/// One piece of a [`FormatString`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Text (`%%` already unescaped).
    Literal(String),
    /// A substitution.
    Command(Command),
}

/// Which connection an address command reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `DOWNSTREAM_REMOTE_*`: the client (after `x-forwarded-for` handling).
    DownstreamRemote,
    /// `DOWNSTREAM_DIRECT_REMOTE_*`: the peer of the socket.
    DownstreamDirectRemote,
    /// `DOWNSTREAM_LOCAL_*`: the listener side of the socket.
    DownstreamLocal,
    /// `UPSTREAM_REMOTE_*` and `UPSTREAM_HOST`: the chosen upstream host.
    UpstreamRemote,
    /// `UPSTREAM_LOCAL_*`: nuncio's side of the upstream socket.
    UpstreamLocal,
}

/// Which part of an address a command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressPart {
    /// `ip:port` (`[ip6]:port`).
    Full,
    /// `_WITHOUT_PORT`: the IP only.
    WithoutPort,
    /// `_PORT`: the port only.
    Port,
}

/// A header read by `%REQ(name?alternative):N%` or `%RESP(...)%`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRef {
    /// The header (lowercased).
    pub name: String,
    /// Read when `name` is absent.
    pub alternative: Option<String>,
    /// Keep at most this many bytes of the value (`:N`).
    pub max_length: Option<usize>,
}

/// One piece of a `START_TIME` format (UTC, as Envoy prints it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimePiece {
    /// Text.
    Literal(String),
    /// `%Y`.
    Year,
    /// `%y`.
    Year2,
    /// `%m`.
    Month,
    /// `%d`.
    Day,
    /// `%e` (space-padded day).
    DaySpace,
    /// `%H`.
    Hour,
    /// `%M`.
    Minute,
    /// `%S`.
    Second,
    /// `%j`.
    DayOfYear,
    /// `%a`.
    WeekdayShort,
    /// `%A`.
    WeekdayLong,
    /// `%b` / `%h`.
    MonthShort,
    /// `%B`.
    MonthLong,
    /// `%s`: seconds since the epoch.
    EpochSeconds,
    /// `%f` (9 digits) and `%1f`..`%9f`: that many digits of the second.
    Fraction(u8),
    /// `%E1S`..`%E9S`: `%S` with that many fraction digits.
    SecondsFraction(u8),
    /// `%E*S`: `%S` with the fraction's significant digits.
    SecondsFractionTrimmed,
    /// `%z`: always `+0000`.
    Offset,
    /// `%Z`: always `UTC`.
    ZoneName,
}

/// A substitution command nuncio evaluates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// An address or port (`DOWNSTREAM_REMOTE_ADDRESS`, `..._WITHOUT_PORT`,
    /// `..._PORT`, and the `DIRECT_REMOTE`, `LOCAL`, `UPSTREAM_*` forms).
    Address {
        /// Which connection.
        of: Endpoint,
        /// Which part.
        part: AddressPart,
    },
    /// `START_TIME` or `START_TIME(format)`.
    StartTime(Vec<TimePiece>),
    /// `REQ(...)`: a request header.
    RequestHeader(HeaderRef),
    /// `RESP(...)`: a response header.
    ResponseHeader(HeaderRef),
    /// `PROTOCOL`: `HTTP/1.0`, `HTTP/1.1`, `HTTP/2`.
    Protocol,
    /// `HOSTNAME`: the machine's host name.
    Hostname,
    /// `RESPONSE_CODE`.
    ResponseCode,
    /// `UPSTREAM_CLUSTER`.
    UpstreamCluster,
    /// `ROUTE_NAME`.
    RouteName,
}

/// Why a format string was refused (one line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

/// Envoy's default `START_TIME` format, `%Y-%m-%dT%H:%M:%E3SZ`.
pub const DEFAULT_START_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%E3SZ";

/// The commands [`FormatString::parse`] accepts, for error messages.
pub const SUPPORTED_COMMANDS: &str = "DOWNSTREAM_REMOTE_ADDRESS[_WITHOUT_PORT], DOWNSTREAM_REMOTE_PORT, \
DOWNSTREAM_DIRECT_REMOTE_ADDRESS[_WITHOUT_PORT], DOWNSTREAM_DIRECT_REMOTE_PORT, \
DOWNSTREAM_LOCAL_ADDRESS[_WITHOUT_PORT], DOWNSTREAM_LOCAL_PORT, UPSTREAM_REMOTE_ADDRESS[_WITHOUT_PORT], \
UPSTREAM_REMOTE_PORT, UPSTREAM_LOCAL_ADDRESS[_WITHOUT_PORT], UPSTREAM_LOCAL_PORT, UPSTREAM_HOST, \
UPSTREAM_CLUSTER, START_TIME, REQ, RESP, PROTOCOL, HOSTNAME, RESPONSE_CODE, ROUTE_NAME";

/// Envoy 1.40 commands that nuncio does not evaluate (refused by name).
const ENVOY_ONLY: &[&str] = &[
    "TRAILER",
    "LOCAL_REPLY_BODY",
    "GRPC_STATUS",
    "GRPC_STATUS_NUMBER",
    "REQUEST_HEADERS_BYTES",
    "RESPONSE_HEADERS_BYTES",
    "RESPONSE_TRAILERS_BYTES",
    "STREAM_INFO_REQ",
    "REQUEST_DURATION",
    "REQUEST_TX_DURATION",
    "RESPONSE_DURATION",
    "RESPONSE_TX_DURATION",
    "DOWNSTREAM_HANDSHAKE_DURATION",
    "ROUNDTRIP_DURATION",
    "BYTES_RECEIVED",
    "BYTES_SENT",
    "BYTES_RETRANSMITTED",
    "PACKETS_RETRANSMITTED",
    "UPSTREAM_WIRE_BYTES_SENT",
    "UPSTREAM_WIRE_BYTES_RECEIVED",
    "UPSTREAM_HEADER_BYTES_SENT",
    "UPSTREAM_HEADER_BYTES_RECEIVED",
    "DOWNSTREAM_WIRE_BYTES_SENT",
    "DOWNSTREAM_WIRE_BYTES_RECEIVED",
    "DOWNSTREAM_HEADER_BYTES_SENT",
    "DOWNSTREAM_HEADER_BYTES_RECEIVED",
    "UPSTREAM_PROTOCOL",
    "RESPONSE_CODE_DETAILS",
    "CONNECTION_TERMINATION_DETAILS",
    "RESPONSE_FLAGS",
    "RESPONSE_FLAGS_LONG",
    "UPSTREAM_TRANSPORT_FAILURE_REASON",
    "DOWNSTREAM_TRANSPORT_FAILURE_REASON",
    "DURATION",
    "UPSTREAM_REQUEST_ATTEMPT_COUNT",
    "CONNECTION_ID",
    "UPSTREAM_CONNECTION_ID",
    "STREAM_ID",
    "UNIQUE_ID",
    "VIRTUAL_CLUSTER_NAME",
    "UPSTREAM_CLUSTER_RAW",
    "UPSTREAM_FILTER_STATE",
    "DOWNSTREAM_REMOTE_ADDRESS_ENDPOINT_ID",
    "REQUESTED_SERVER_NAME",
    "ROUTE_METADATA",
    "UPSTREAM_METADATA",
    "DYNAMIC_METADATA",
    "CLUSTER_METADATA",
    "UPSTREAM_HOST_METADATA",
    "FILTER_STATE",
    "FILTER_CHAIN_NAME",
    "ENVIRONMENT",
    "EMIT_TIME",
    "START_TIME_LOCAL",
    "EMIT_TIME_LOCAL",
    "SYSTEM_TIME",
    "UPSTREAM_HOST_NAME",
    "UPSTREAM_HOST_NAME_WITHOUT_PORT",
    "DOWNSTREAM_LOCAL_URI_SAN",
    "DOWNSTREAM_PEER_URI_SAN",
    "DOWNSTREAM_LOCAL_DNS_SAN",
    "DOWNSTREAM_PEER_DNS_SAN",
    "DOWNSTREAM_LOCAL_SUBJECT",
    "DOWNSTREAM_PEER_SUBJECT",
    "DOWNSTREAM_PEER_ISSUER",
    "DOWNSTREAM_TLS_SESSION_ID",
    "DOWNSTREAM_TLS_CIPHER",
    "DOWNSTREAM_TLS_VERSION",
    "DOWNSTREAM_PEER_FINGERPRINT_256",
    "DOWNSTREAM_PEER_FINGERPRINT_1",
    "DOWNSTREAM_PEER_SERIAL",
    "DOWNSTREAM_PEER_CERT",
    "DOWNSTREAM_PEER_CERT_V_START",
    "DOWNSTREAM_PEER_CERT_V_END",
    "UPSTREAM_PEER_SUBJECT",
    "UPSTREAM_PEER_ISSUER",
    "UPSTREAM_TLS_SESSION_ID",
    "UPSTREAM_TLS_CIPHER",
    "UPSTREAM_TLS_VERSION",
    "UPSTREAM_PEER_CERT",
    "DOWNSTREAM_LOCAL_ADDRESS_ENDPOINT_ID",
    "TRACE_ID",
    "QUERY_PARAM",
    "PATH",
    "CUSTOM_FLAGS",
    "COMMON_DURATION",
    "ACCESS_LOG_TYPE",
    "CEL",
    "METADATA",
    "REQ_WITHOUT_QUERY",
    "VIRTUAL_HOST_NAME",
    "UPSTREAM_LOCAL_CLOSE_REASON",
    "UPSTREAM_DETECTED_CLOSE_TYPE",
    "DOWNSTREAM_DETECTED_CLOSE_TYPE",
    "DOWNSTREAM_LOCAL_CLOSE_REASON",
];

impl FormatString {
    /// Compiles `format`.
    pub fn parse(format: &str) -> Result<FormatString, FormatError> {
        let b = format.as_bytes();
        let mut segments = Vec::new();
        let mut text = String::new();
        let mut pos = 0;
        let mut lit_start = 0;
        while pos < b.len() {
            if b[pos] != b'%' {
                pos += 1;
                continue;
            }
            text.push_str(&format[lit_start..pos]);
            if b.get(pos + 1) == Some(&b'%') {
                text.push('%');
                pos += 2;
                lit_start = pos;
                continue;
            }
            if !text.is_empty() {
                segments.push(Segment::Literal(std::mem::take(&mut text)));
            }
            let Some(tok) = match_command(format, pos) else {
                return Err(FormatError(format!(
                    "Incorrect configuration: {format}. Couldn't find valid command at position {pos}"
                )));
            };
            segments.push(Segment::Command(build_command(&tok)?));
            pos = tok.end;
            lit_start = pos;
        }
        text.push_str(&format[lit_start..]);
        if !text.is_empty() {
            segments.push(Segment::Literal(text));
        }
        Ok(FormatString {
            source: format.to_string(),
            segments,
        })
    }

    /// The value when it has no command (so evaluation is a copy).
    pub fn constant(&self) -> Option<String> {
        let mut out = String::new();
        for s in &self.segments {
            match s {
                Segment::Literal(t) => out.push_str(t),
                Segment::Command(_) => return None,
            }
        }
        Some(out)
    }
}

/// `%COMMAND(arg):N%` as matched at one position.
struct Token<'a> {
    command: &'a str,
    arg: Option<&'a str>,
    max_len: Option<usize>,
    /// Byte after the closing `%`.
    end: usize,
}

/// Envoy's `^%((?:[A-Z]|[0-9]|_)+)(?:\((.*?)\))?(?::([0-9]+))?%` at `start`.
fn match_command(s: &str, start: usize) -> Option<Token<'_>> {
    let b = s.as_bytes();
    let name_start = start + 1;
    let mut i = name_start;
    while i < b.len() && (b[i].is_ascii_uppercase() || b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    if i == name_start {
        return None;
    }
    let command = &s[name_start..i];
    let tail = |at: usize| -> Option<(Option<usize>, usize)> {
        // `(:digits)?%` from `at`.
        if b.get(at) == Some(&b':') {
            let d0 = at + 1;
            let mut d = d0;
            while d < b.len() && b[d].is_ascii_digit() {
                d += 1;
            }
            if d > d0 && b.get(d) == Some(&b'%') {
                if let Ok(n) = s[d0..d].parse::<usize>() {
                    return Some((Some(n), d + 1));
                }
            }
        }
        (b.get(at) == Some(&b'%')).then_some((None, at + 1))
    };
    if b.get(i) == Some(&b'(') {
        let arg_start = i + 1;
        let mut j = arg_start;
        while j < b.len() && b[j] != b'\n' {
            if b[j] == b')' {
                if let Some((max_len, end)) = tail(j + 1) {
                    return Some(Token {
                        command,
                        arg: Some(&s[arg_start..j]),
                        max_len,
                        end,
                    });
                }
            }
            j += 1;
        }
        return None;
    }
    let (max_len, end) = tail(i)?;
    Some(Token {
        command,
        arg: None,
        max_len,
        end,
    })
}

fn build_command(t: &Token) -> Result<Command, FormatError> {
    let cmd = t.command;
    let arg = t.arg.filter(|a| !a.is_empty());
    let plain = |c: Command| -> Result<Command, FormatError> {
        if t.arg.is_some() || t.max_len.is_some() {
            return Err(FormatError(format!(
                "{cmd} does not take any parameters or length"
            )));
        }
        Ok(c)
    };
    let addr = |of, part| plain(Command::Address { of, part });
    use AddressPart::{Full, Port, WithoutPort};
    use Endpoint::*;
    match cmd {
        "REQ" | "RESP" => {
            let Some(arg) = arg else {
                return Err(FormatError(format!("{cmd} requires parameters")));
            };
            let h = header_ref(arg, t.max_len)?;
            Ok(if cmd == "REQ" {
                Command::RequestHeader(h)
            } else {
                Command::ResponseHeader(h)
            })
        }
        "START_TIME" => {
            if t.max_len.is_some() {
                return Err(FormatError(
                    "START_TIME does not allow length to be specified.".into(),
                ));
            }
            Ok(Command::StartTime(parse_time_format(
                arg.unwrap_or(DEFAULT_START_TIME_FORMAT),
            )?))
        }
        "DOWNSTREAM_REMOTE_ADDRESS" => addr(DownstreamRemote, Full),
        "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => addr(DownstreamRemote, WithoutPort),
        "DOWNSTREAM_REMOTE_PORT" => addr(DownstreamRemote, Port),
        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS" => addr(DownstreamDirectRemote, Full),
        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT" => addr(DownstreamDirectRemote, WithoutPort),
        "DOWNSTREAM_DIRECT_REMOTE_PORT" => addr(DownstreamDirectRemote, Port),
        "DOWNSTREAM_LOCAL_ADDRESS" => addr(DownstreamLocal, Full),
        "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => addr(DownstreamLocal, WithoutPort),
        "DOWNSTREAM_LOCAL_PORT" => addr(DownstreamLocal, Port),
        "UPSTREAM_REMOTE_ADDRESS" | "UPSTREAM_HOST" => addr(UpstreamRemote, Full),
        "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => addr(UpstreamRemote, WithoutPort),
        "UPSTREAM_REMOTE_PORT" => addr(UpstreamRemote, Port),
        "UPSTREAM_LOCAL_ADDRESS" => addr(UpstreamLocal, Full),
        "UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => addr(UpstreamLocal, WithoutPort),
        "UPSTREAM_LOCAL_PORT" => addr(UpstreamLocal, Port),
        "PROTOCOL" => plain(Command::Protocol),
        "HOSTNAME" => plain(Command::Hostname),
        "RESPONSE_CODE" => plain(Command::ResponseCode),
        "UPSTREAM_CLUSTER" => plain(Command::UpstreamCluster),
        "ROUTE_NAME" => plain(Command::RouteName),
        other if ENVOY_ONLY.contains(&other) => Err(FormatError(format!(
            "%{other}% is an Envoy command that nuncio does not support yet; nuncio supports {SUPPORTED_COMMANDS}"
        ))),
        other => Err(FormatError(format!(
            "Not supported field in StreamInfo: {other}"
        ))),
    }
}

fn header_ref(arg: &str, max_length: Option<usize>) -> Result<HeaderRef, FormatError> {
    let mut parts = arg.split('?');
    let name = parts.next().unwrap_or_default();
    let alternative = parts.next();
    if parts.next().is_some() {
        return Err(FormatError(format!(
            "More than 1 alternative header specified in token: {arg}"
        )));
    }
    let ok = |h: &str| {
        let n = h.strip_prefix(':').unwrap_or(h);
        !n.is_empty() && crate::headers::valid_header_name(n)
    };
    if !ok(name) || alternative.is_some_and(|a| !ok(a)) {
        return Err(FormatError(
            "Invalid header configuration. Format string contains invalid characters.".into(),
        ));
    }
    Ok(HeaderRef {
        name: name.to_ascii_lowercase(),
        alternative: alternative.map(str::to_ascii_lowercase),
        max_length,
    })
}

/// Compiles a `START_TIME` format (a strftime subset plus Envoy's `%s`,
/// `%f`, `%1f`..`%9f` and Abseil's `%E#S`/`%E*S`).
pub fn parse_time_format(f: &str) -> Result<Vec<TimePiece>, FormatError> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = f.chars().peekable();
    let bad = |spec: &str| {
        FormatError(format!(
            "START_TIME format '{f}': '%{spec}' is not supported; use %Y %y %m %d %e %H %M %S %j %a %A %b %B %s %f %1f-%9f %E1S-%E9S %E*S %z %Z %T %D %F %R %%"
        ))
    };
    while let Some(c) = chars.next() {
        if c != '%' {
            lit.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            return Err(bad(""));
        };
        let mut piece = |p: TimePiece, lit: &mut String| {
            if !lit.is_empty() {
                out.push(TimePiece::Literal(std::mem::take(lit)));
            }
            out.push(p);
        };
        match spec {
            '%' => lit.push('%'),
            'Y' => piece(TimePiece::Year, &mut lit),
            'y' => piece(TimePiece::Year2, &mut lit),
            'm' => piece(TimePiece::Month, &mut lit),
            'd' => piece(TimePiece::Day, &mut lit),
            'e' => piece(TimePiece::DaySpace, &mut lit),
            'H' => piece(TimePiece::Hour, &mut lit),
            'M' => piece(TimePiece::Minute, &mut lit),
            'S' => piece(TimePiece::Second, &mut lit),
            'j' => piece(TimePiece::DayOfYear, &mut lit),
            'a' => piece(TimePiece::WeekdayShort, &mut lit),
            'A' => piece(TimePiece::WeekdayLong, &mut lit),
            'b' | 'h' => piece(TimePiece::MonthShort, &mut lit),
            'B' => piece(TimePiece::MonthLong, &mut lit),
            's' => piece(TimePiece::EpochSeconds, &mut lit),
            'f' => piece(TimePiece::Fraction(9), &mut lit),
            'z' => piece(TimePiece::Offset, &mut lit),
            'Z' => piece(TimePiece::ZoneName, &mut lit),
            'T' | 'D' | 'F' | 'R' => {
                let expanded = match spec {
                    'T' => "%H:%M:%S",
                    'D' => "%m/%d/%y",
                    'F' => "%Y-%m-%d",
                    _ => "%H:%M",
                };
                if !lit.is_empty() {
                    out.push(TimePiece::Literal(std::mem::take(&mut lit)));
                }
                out.extend(parse_time_format(expanded)?);
            }
            d @ '1'..='9' if chars.peek() == Some(&'f') => {
                chars.next();
                piece(TimePiece::Fraction(d as u8 - b'0'), &mut lit);
            }
            'E' => match (chars.next(), chars.next()) {
                (Some(d @ '1'..='9'), Some('S')) => {
                    piece(TimePiece::SecondsFraction(d as u8 - b'0'), &mut lit)
                }
                (Some('*'), Some('S')) => piece(TimePiece::SecondsFractionTrimmed, &mut lit),
                _ => return Err(bad("E")),
            },
            other => return Err(bad(&other.to_string())),
        }
    }
    if !lit.is_empty() {
        out.push(TimePiece::Literal(lit));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        FormatString::parse(s).unwrap_err().0
    }

    #[test]
    fn literals_and_escapes() {
        let f = FormatString::parse("100%% sure").unwrap();
        assert_eq!(f.constant().as_deref(), Some("100% sure"));
        assert_eq!(FormatString::parse("").unwrap().segments, vec![]);
        assert_eq!(
            FormatString::parse("%%%%").unwrap().constant().as_deref(),
            Some("%%")
        );
    }

    #[test]
    fn commands() {
        let f = FormatString::parse("a%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%b%REQ(X-A?x-b):3%")
            .unwrap();
        assert_eq!(
            f.segments,
            vec![
                Segment::Literal("a".into()),
                Segment::Command(Command::Address {
                    of: Endpoint::DownstreamRemote,
                    part: AddressPart::WithoutPort
                }),
                Segment::Literal("b".into()),
                Segment::Command(Command::RequestHeader(HeaderRef {
                    name: "x-a".into(),
                    alternative: Some("x-b".into()),
                    max_length: Some(3)
                })),
            ]
        );
        assert!(f.constant().is_none());
        // The shortest argument that lets the rest match: `)` may be inside.
        let t = FormatString::parse("%START_TIME(%Y) x)%").unwrap();
        assert_eq!(
            t.segments,
            vec![Segment::Command(Command::StartTime(vec![
                TimePiece::Year,
                TimePiece::Literal(") x".into())
            ]))]
        );
        assert!(FormatString::parse("%REQ(:path)%").is_ok());
        assert!(FormatString::parse("%REQ(x):0%").is_ok());
        assert!(FormatString::parse("%UPSTREAM_HOST%%PROTOCOL%%HOSTNAME%").is_ok());
        assert!(FormatString::parse("%START_TIME(%s.%3f %E3S %E*S %T %F)%").is_ok());
    }

    #[test]
    fn envoy_messages() {
        for s in [
            "%",
            "a%",
            "%DOWNSTREAM_REMOTE_ADDRESS",
            "%req(x)%",
            "%REQ(x-a):abc%",
            "%START_TIME(%Y) %",
        ] {
            assert!(
                err(s).contains("Couldn't find valid command at position"),
                "{s}: {}",
                err(s)
            );
        }
        assert_eq!(
            err("a%b"),
            "Incorrect configuration: a%b. Couldn't find valid command at position 1"
        );
        assert_eq!(
            err("%START_TIME%x%"),
            "Incorrect configuration: %START_TIME%x%. Couldn't find valid command at position 13"
        );
        assert_eq!(err("%FOO%"), "Not supported field in StreamInfo: FOO");
        assert_eq!(err("%REQ%"), "REQ requires parameters");
        assert_eq!(err("%REQ()%"), "REQ requires parameters");
        assert_eq!(
            err("%PROTOCOL(x)%"),
            "PROTOCOL does not take any parameters or length"
        );
        assert_eq!(
            err("%HOSTNAME:3%"),
            "HOSTNAME does not take any parameters or length"
        );
        assert_eq!(
            err("%START_TIME:3%"),
            "START_TIME does not allow length to be specified."
        );
        assert_eq!(
            err("%REQ(a?b?c)%"),
            "More than 1 alternative header specified in token: a?b?c"
        );
        assert!(err("%REQ(a)b)%").contains("invalid characters"));
        assert!(err("%UPSTREAM_METADATA([\"a\"])%").contains("nuncio does not support yet"));
        assert!(err("%START_TIME(%Q)%").contains("'%Q' is not supported"));
    }
}
