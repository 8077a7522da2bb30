//! Access logs in Envoy's format language (`%START_TIME%`, `%REQ(X?Y):N%`,
//! `%RESPONSE_CODE%`, ...), written one line per request when the
//! response has been sent.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

/// Envoy's default access log format.
pub const DEFAULT_FORMAT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

/// A bad format string.
#[derive(Debug, thiserror::Error)]
#[error("access log format: {0}")]
pub struct FormatError(String);

#[derive(Debug, Clone)]
enum Op {
    Lit(String),
    StartTime,
    Req(String, Option<String>, Option<usize>),
    Resp(String, Option<usize>),
    Protocol,
    ResponseCode,
    ResponseFlags,
    BytesReceived,
    BytesSent,
    Duration,
    UpstreamHost,
    UpstreamCluster,
    DownstreamRemote,
    DownstreamRemoteNoPort,
    RouteName,
}

/// Everything a log line may print about one request.
#[derive(Debug)]
pub struct LogEntry {
    /// When the request started.
    pub start: SystemTime,
    /// Method.
    pub method: String,
    /// Original path.
    pub path: String,
    /// Authority (Host).
    pub authority: String,
    /// `HTTP/1.1`, `HTTP/2`.
    pub protocol: &'static str,
    /// Request headers.
    pub req_headers: HeaderMap,
    /// Response headers.
    pub resp_headers: HeaderMap,
    /// Status sent.
    pub code: u16,
    /// Envoy response flags (`UH`, `UF`, `NR`, ...), `-` when none.
    pub flags: crate::flags::ResponseFlags,
    /// Request body bytes.
    pub bytes_received: u64,
    /// Response body bytes.
    pub bytes_sent: u64,
    /// Total duration.
    pub duration: Duration,
    /// Upstream host.
    pub upstream_host: Option<SocketAddr>,
    /// Upstream cluster.
    pub upstream_cluster: Option<String>,
    /// Client address.
    pub downstream: SocketAddr,
    /// Route name.
    pub route_name: String,
}

impl LogEntry {
    /// An entry for a request from `peer` that starts now; the outcome
    /// fields are filled in when it ends.
    pub fn new<B>(
        req: &http::Request<B>,
        authority: &str,
        protocol: &'static str,
        peer: SocketAddr,
    ) -> Box<Self> {
        let mut e = Self::from_fields(
            SystemTime::now(),
            req.method().as_str(),
            req.uri().path_and_query().map_or("", |p| p.as_str()),
            authority,
            protocol,
            std::iter::empty(),
            peer,
        );
        e.req_headers = req.headers().clone();
        e
    }
}

impl LogEntry {
    /// An entry from a request's parts, for the native paths (which
    /// build no `http::Request`).
    pub fn from_fields<'a>(
        start: SystemTime,
        method: &str,
        path: &str,
        authority: &str,
        protocol: &'static str,
        fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        peer: SocketAddr,
    ) -> Box<Self> {
        let mut req_headers = HeaderMap::new();
        for (n, v) in fields {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(n),
                http::HeaderValue::from_bytes(v),
            ) {
                req_headers.append(n, v);
            }
        }
        Box::new(LogEntry {
            start,
            method: method.to_string(),
            path: path.to_string(),
            authority: authority.to_string(),
            protocol,
            req_headers,
            resp_headers: HeaderMap::new(),
            code: 0,
            flags: crate::flags::NONE,
            bytes_received: 0,
            bytes_sent: 0,
            duration: Duration::ZERO,
            upstream_host: None,
            upstream_cluster: None,
            downstream: peer,
            route_name: String::new(),
        })
    }
}

/// A compiled format.
#[derive(Debug, Clone)]
pub struct Format(Vec<Op>);

fn parse_len(rest: &str) -> Result<(Option<usize>, usize), FormatError> {
    // `:N` right after `)`.
    if let Some(r) = rest.strip_prefix(':') {
        let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return Err(FormatError("expected a length after ':'".into()));
        }
        let n = digits
            .parse()
            .map_err(|_| FormatError("bad length".into()))?;
        return Ok((Some(n), 1 + digits.len()));
    }
    Ok((None, 0))
}

impl Format {
    /// Parses an Envoy format string.
    pub fn parse(s: &str) -> Result<Self, FormatError> {
        let mut ops = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('%') {
            lit.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            let Some(end) = rest.find('%') else {
                return Err(FormatError(format!("unterminated '%' in '{s}'")));
            };
            let cmd = &rest[..end];
            rest = &rest[end + 1..];
            if cmd.is_empty() {
                lit.push('%');
                continue;
            }
            if !lit.is_empty() {
                ops.push(Op::Lit(std::mem::take(&mut lit)));
            }
            let op = if let Some(args) = cmd.strip_prefix("REQ(") {
                let close = args
                    .find(')')
                    .ok_or_else(|| FormatError(format!("missing ')' in %{cmd}%")))?;
                let (len, _) = parse_len(&args[close + 1..])?;
                let inner = &args[..close];
                let (a, b) = match inner.split_once('?') {
                    Some((a, b)) => (a.to_string(), Some(b.to_ascii_lowercase())),
                    None => (inner.to_string(), None),
                };
                Op::Req(a.to_ascii_lowercase(), b, len)
            } else if let Some(args) = cmd.strip_prefix("RESP(") {
                let close = args
                    .find(')')
                    .ok_or_else(|| FormatError(format!("missing ')' in %{cmd}%")))?;
                let (len, _) = parse_len(&args[close + 1..])?;
                Op::Resp(args[..close].to_ascii_lowercase(), len)
            } else if cmd.starts_with("START_TIME") {
                Op::StartTime
            } else {
                match cmd {
                    "PROTOCOL" => Op::Protocol,
                    "RESPONSE_CODE" => Op::ResponseCode,
                    "RESPONSE_FLAGS" => Op::ResponseFlags,
                    "BYTES_RECEIVED" => Op::BytesReceived,
                    "BYTES_SENT" => Op::BytesSent,
                    "DURATION" => Op::Duration,
                    "UPSTREAM_HOST" => Op::UpstreamHost,
                    "UPSTREAM_CLUSTER" => Op::UpstreamCluster,
                    "DOWNSTREAM_REMOTE_ADDRESS" => Op::DownstreamRemote,
                    "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => Op::DownstreamRemoteNoPort,
                    "ROUTE_NAME" => Op::RouteName,
                    other => return Err(FormatError(format!("unsupported command %{other}%"))),
                }
            };
            ops.push(op);
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            ops.push(Op::Lit(lit));
        }
        Ok(Format(ops))
    }

    /// Formats one line.
    pub fn render(&self, e: &LogEntry) -> String {
        let mut out = String::with_capacity(256);
        let header = |h: &HeaderMap, name: &str| -> Option<String> {
            match name {
                ":method" => Some(e.method.clone()),
                ":path" => Some(e.path.clone()),
                ":authority" | "host" => Some(e.authority.clone()),
                ":status" => Some(e.code.to_string()),
                _ => h
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            }
        };
        let trunc = |s: Option<String>, len: Option<usize>| -> String {
            match (s, len) {
                (Some(s), Some(n)) => s.chars().take(n).collect(),
                (Some(s), None) => s,
                (None, _) => "-".into(),
            }
        };
        for op in &self.0 {
            let _ = match op {
                Op::Lit(s) => write!(out, "{s}"),
                Op::StartTime => write!(out, "{}", iso8601(e.start)),
                Op::Req(a, b, len) => {
                    let v = header(&e.req_headers, a)
                        .or_else(|| b.as_deref().and_then(|b| header(&e.req_headers, b)));
                    write!(out, "{}", trunc(v, *len))
                }
                Op::Resp(a, len) => write!(out, "{}", trunc(header(&e.resp_headers, a), *len)),
                Op::Protocol => write!(out, "{}", e.protocol),
                Op::ResponseCode => write!(out, "{}", e.code),
                Op::ResponseFlags => write!(out, "{}", e.flags),
                Op::BytesReceived => write!(out, "{}", e.bytes_received),
                Op::BytesSent => write!(out, "{}", e.bytes_sent),
                Op::Duration => write!(out, "{}", e.duration.as_millis()),
                Op::UpstreamHost => write!(
                    out,
                    "{}",
                    e.upstream_host
                        .map(|a| a.to_string())
                        .unwrap_or_else(|| "-".into())
                ),
                Op::UpstreamCluster => {
                    write!(out, "{}", e.upstream_cluster.as_deref().unwrap_or("-"))
                }
                Op::DownstreamRemote => write!(out, "{}", e.downstream),
                Op::DownstreamRemoteNoPort => write!(out, "{}", e.downstream.ip()),
                Op::RouteName => write!(
                    out,
                    "{}",
                    if e.route_name.is_empty() {
                        "-"
                    } else {
                        &e.route_name
                    }
                ),
            };
        }
        out
    }
}

/// Calendar date of a day number since 1970-01-01: (year, month, day).
/// Howard Hinnant's civil-from-days.
pub(crate) fn civil(days: u64) -> (i64, i64, i64) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `2024-01-31T12:34:56.789Z`.
pub fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// The access log sinks of one connection manager.
#[derive(Debug)]
pub struct AccessLogger {
    sinks: Vec<(Format, Mutex<File>)>,
    /// Some format prints a response header other than the service time
    /// (`%RESP(...)%`): requests then keep the upstream's response head.
    reads_response: bool,
}

impl AccessLogger {
    /// Opens the sinks (`/dev/null` ones are dropped). `None` when no sink
    /// remains, so requests skip log bookkeeping entirely.
    pub fn open(logs: &[nuncio_config::AccessLog]) -> Result<Option<Self>, std::io::Error> {
        let mut sinks = Vec::new();
        for l in logs {
            if l.path == "/dev/null" {
                continue;
            }
            let format = Format::parse(l.format.as_deref().unwrap_or(DEFAULT_FORMAT))
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            let file = OpenOptions::new().create(true).append(true).open(&l.path)?;
            sinks.push((format, Mutex::new(file)));
        }
        let reads_response = sinks.iter().any(|(f, _)| {
            f.0.iter().any(
                |op| matches!(op, Op::Resp(name, _) if name != "x-envoy-upstream-service-time"),
            )
        });
        Ok(if sinks.is_empty() {
            None
        } else {
            Some(AccessLogger {
                sinks,
                reads_response,
            })
        })
    }

    /// Whether some format prints a response header (`%RESP(...)%`) that
    /// only the upstream's head has.
    pub fn reads_response_headers(&self) -> bool {
        self.reads_response
    }

    /// Writes one entry to every sink.
    pub fn log(&self, e: &LogEntry) {
        for (f, file) in &self.sinks {
            let mut line = f.render(e);
            if !line.ends_with('\n') {
                line.push('\n');
            }
            if let Ok(mut file) = file.lock() {
                let _ = file.write_all(line.as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_format_renders() {
        let mut req = HeaderMap::new();
        req.insert("user-agent", "curl/8".parse().unwrap());
        req.insert("x-request-id", "abc".parse().unwrap());
        let e = LogEntry {
            start: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            method: "GET".into(),
            path: "/x".into(),
            authority: "h".into(),
            protocol: "HTTP/1.1",
            req_headers: req,
            resp_headers: HeaderMap::new(),
            code: 200,
            flags: crate::flags::NONE,
            bytes_received: 0,
            bytes_sent: 12,
            duration: Duration::from_millis(3),
            upstream_host: Some("127.0.0.2:8080".parse().unwrap()),
            upstream_cluster: None,
            downstream: "127.0.0.1:5555".parse().unwrap(),
            route_name: String::new(),
        };
        let line = Format::parse(DEFAULT_FORMAT).unwrap().render(&e);
        assert_eq!(
            line,
            "[2023-11-14T22:13:20.123Z] \"GET /x HTTP/1.1\" 200 - 0 12 3 - \"-\" \"curl/8\" \"abc\" \"h\" \"127.0.0.2:8080\"\n"
        );
        assert!(Format::parse("%NOPE%").is_err());
        assert_eq!(
            Format::parse("%REQ(user-agent):4% 100%%")
                .unwrap()
                .render(&e),
            "curl 100%"
        );
    }
}
