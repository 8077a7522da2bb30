//! Envoy's application log line format: the spdlog pattern language of
//! `--log-format` (default `[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v`),
//! with Envoy's own flags (`%j` JSON-escaped message, `%_` message with
//! newlines escaped) and `--log-format-escaped` (C-style escaping of the
//! whole line but its newline).
//!
//! Flags, as Envoy 1.40 renders them (checked against the real binary):
//! `%Y %C %m %d %H %M %S %e %f %F %T %X %R %x %D %c %a %A %b %B %p %I %r
//! %z %E` (time, UTC), `%t` (OS thread id) `%P` (process id), `%l %L`
//! (level long and short), `%n` (component, see `logging.rs`), `%g %s %#`
//! (source file, its base name, line), `%!` (function: nuncio gives the
//! module path), `%u %i %o %O` (time since the previous line in ns, us,
//! ms, s), `%v %_ %j %+` (message), `%%`; `%^ %$ %*` print nothing. Any
//! other `%x` is printed as it is, as Envoy does. Padding works on every
//! flag: `%8l` right-aligned, `%-8l` left, `%=8l` centred, `%8!l`
//! truncated (width at most 64, as spdlog).
//!
//! Formatting writes into a caller's `String` (a reused per-thread buffer
//! in `logging.rs`): no allocation per line once the buffer has grown.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Envoy's default `--log-format`.
pub const DEFAULT_FORMAT: &str = "[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v";

/// spdlog's widest padding.
const MAX_WIDTH: usize = 64;

/// One log event, as the formatter sees it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// When it happened.
    pub time: SystemTime,
    /// Its level.
    pub level: tracing::Level,
    /// Envoy component name (`main`, `config`, `upstream`, ...).
    pub component: &'a str,
    /// Source file.
    pub file: Option<&'a str>,
    /// Source line.
    pub line: Option<u32>,
    /// Module path (printed for `%!`).
    pub module: Option<&'a str>,
    /// The message with its fields (`message key=value ...`).
    pub message: &'a str,
    /// The OS thread id.
    pub tid: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
    Center,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pad {
    width: usize,
    align: Align,
    truncate: bool,
}

/// What one `%` flag prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    Year,
    Year2,
    Month,
    Day,
    Hour,
    Hour12,
    Minute,
    Second,
    Millis,
    Micros,
    Nanos,
    Hms,
    Hm,
    Mdy,
    DateTime,
    WeekdayShort,
    WeekdayLong,
    MonthShort,
    MonthLong,
    AmPm,
    Time12,
    TzOffset,
    Epoch,
    Tid,
    Pid,
    Level,
    LevelShort,
    Name,
    Source,
    SourceBase,
    Line,
    Func,
    ElapsedNs,
    ElapsedUs,
    ElapsedMs,
    ElapsedS,
    Message,
    MessageNewlines,
    MessageJson,
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Lit(String),
    Flag(Flag, Option<Pad>),
}

/// A compiled `--log-format` pattern.
#[derive(Debug)]
pub struct Pattern {
    items: Vec<Item>,
    escaped: bool,
    /// Nanoseconds since the epoch of the previous line (`%u %i %o %O`).
    last: AtomicU64,
}

fn flag(c: char) -> Option<Flag> {
    use Flag::*;
    Some(match c {
        'Y' => Year,
        'C' => Year2,
        'm' => Month,
        'd' => Day,
        'H' => Hour,
        'I' => Hour12,
        'M' => Minute,
        'S' => Second,
        'e' => Millis,
        'f' => Micros,
        'F' => Nanos,
        'T' | 'X' => Hms,
        'R' => Hm,
        'x' | 'D' => Mdy,
        'c' => DateTime,
        'a' => WeekdayShort,
        'A' => WeekdayLong,
        'b' | 'h' => MonthShort,
        'B' => MonthLong,
        'p' => AmPm,
        'r' => Time12,
        'z' => TzOffset,
        'E' => Epoch,
        't' => Tid,
        'P' => Pid,
        'l' => Level,
        'L' => LevelShort,
        'n' => Name,
        'g' => Source,
        's' => SourceBase,
        '#' => Line,
        '!' => Func,
        'u' => ElapsedNs,
        'i' => ElapsedUs,
        'o' => ElapsedMs,
        'O' => ElapsedS,
        'v' | '+' => Message,
        '_' => MessageNewlines,
        'j' => MessageJson,
        '^' | '$' | '*' => Nothing,
        _ => return None,
    })
}

impl Pattern {
    /// Compiles `format`. Every string is a pattern: unknown flags print
    /// as written, as in Envoy. `escaped`: `--log-format-escaped`.
    pub fn new(format: &str, escaped: bool) -> Self {
        let mut items = Vec::new();
        let mut lit = String::new();
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                lit.push(c);
                continue;
            }
            // Padding: [-=]?digits!?
            let mut spec = String::from("%");
            let align = match chars.peek() {
                Some('-') => Some(Align::Left),
                Some('=') => Some(Align::Center),
                _ => None,
            };
            if let Some(a) = align {
                spec.push(if a == Align::Left { '-' } else { '=' });
                chars.next();
            }
            let mut width: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                spec.push(chars.next().unwrap_or('0'));
                width = Some((width.unwrap_or(0) * 10 + d as usize).min(1000));
            }
            let mut truncate = false;
            if width.is_some() && chars.peek() == Some(&'!') {
                spec.push('!');
                chars.next();
                truncate = true;
            }
            let Some(f) = chars.next() else {
                // A trailing '%' (or pad spec) prints nothing, as in spdlog.
                break;
            };
            if f == '%' {
                lit.push('%');
                continue;
            }
            match flag(f) {
                Some(fl) => {
                    if !lit.is_empty() {
                        items.push(Item::Lit(std::mem::take(&mut lit)));
                    }
                    let pad = width.map(|w| Pad {
                        width: w.min(MAX_WIDTH),
                        align: align.unwrap_or(Align::Right),
                        truncate,
                    });
                    items.push(Item::Flag(fl, pad));
                }
                None => {
                    lit.push_str(&spec);
                    lit.push(f);
                }
            }
        }
        if !lit.is_empty() {
            items.push(Item::Lit(lit));
        }
        Pattern {
            items,
            escaped,
            last: AtomicU64::new(0),
        }
    }

    /// Appends `r` as one line, newline included, to `out`. `scratch` is
    /// a reused buffer (for `--log-format-escaped`).
    pub fn format(&self, r: &Record<'_>, out: &mut String, scratch: &mut String) {
        let since = r.time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let nanos = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
        let prev = self.last.swap(nanos, Ordering::Relaxed);
        let elapsed = if prev == 0 {
            0
        } else {
            nanos.saturating_sub(prev)
        };
        let t = Civil::new(since.as_secs(), since.subsec_nanos());
        let target: &mut String = if self.escaped { scratch } else { out };
        let start = target.len();
        for item in &self.items {
            match item {
                Item::Lit(s) => target.push_str(s),
                Item::Flag(f, None) => write_flag(*f, r, &t, elapsed, target),
                Item::Flag(f, Some(pad)) => {
                    let from = target.len();
                    write_flag(*f, r, &t, elapsed, target);
                    apply_pad(target, from, *pad);
                }
            }
        }
        if self.escaped {
            c_escape(&scratch[start..], out);
            scratch.truncate(start);
        }
        out.push('\n');
    }
}

fn apply_pad(s: &mut String, from: usize, pad: Pad) {
    let len = s[from..].chars().count();
    if len > pad.width {
        if pad.truncate {
            let cut = s[from..]
                .char_indices()
                .nth(pad.width)
                .map_or(s.len(), |(i, _)| from + i);
            s.truncate(cut);
        }
        return;
    }
    let fill = pad.width - len;
    let (left, right) = match pad.align {
        Align::Right => (fill, 0),
        Align::Left => (0, fill),
        Align::Center => (fill / 2, fill - fill / 2),
    };
    const SPACES: &str = "                                                                ";
    if left > 0 {
        s.insert_str(from, &SPACES[..left.min(SPACES.len())]);
    }
    if right > 0 {
        s.push_str(&SPACES[..right.min(SPACES.len())]);
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

/// A UTC civil time.
struct Civil {
    secs: u64,
    nanos: u32,
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    weekday: usize,
}

impl Civil {
    fn new(secs: u64, nanos: u32) -> Self {
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days as i64);
        Civil {
            secs,
            nanos,
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: ((rem / 60) % 60) as u32,
            second: (rem % 60) as u32,
            // 1970-01-01 was a Thursday.
            weekday: ((days + 4) % 7) as usize,
        }
    }

    fn hour12(&self) -> u32 {
        match self.hour % 12 {
            0 => 12,
            h => h,
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (the era arithmetic of "chrono-compatible low-level date algorithms").
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn level_name(l: tracing::Level) -> (&'static str, &'static str) {
    match l {
        tracing::Level::TRACE => ("trace", "T"),
        tracing::Level::DEBUG => ("debug", "D"),
        tracing::Level::INFO => ("info", "I"),
        tracing::Level::WARN => ("warning", "W"),
        tracing::Level::ERROR => ("error", "E"),
    }
}

fn write_flag(f: Flag, r: &Record<'_>, t: &Civil, elapsed: u64, o: &mut String) {
    use Flag::*;
    // Writing to a String cannot fail.
    let _ = match f {
        Year => write!(o, "{}", t.year),
        Year2 => write!(o, "{:02}", t.year.rem_euclid(100)),
        Month => write!(o, "{:02}", t.month),
        Day => write!(o, "{:02}", t.day),
        Hour => write!(o, "{:02}", t.hour),
        Hour12 => write!(o, "{:02}", t.hour12()),
        Minute => write!(o, "{:02}", t.minute),
        Second => write!(o, "{:02}", t.second),
        Millis => write!(o, "{:03}", t.nanos / 1_000_000),
        Micros => write!(o, "{:06}", t.nanos / 1_000),
        Nanos => write!(o, "{:09}", t.nanos),
        Hms => write!(o, "{:02}:{:02}:{:02}", t.hour, t.minute, t.second),
        Hm => write!(o, "{:02}:{:02}", t.hour, t.minute),
        Mdy => write!(
            o,
            "{:02}/{:02}/{:02}",
            t.month,
            t.day,
            t.year.rem_euclid(100)
        ),
        DateTime => write!(
            o,
            "{} {} {} {:02}:{:02}:{:02} {}",
            &WEEKDAYS[t.weekday][..3],
            &MONTHS[t.month as usize - 1][..3],
            t.day,
            t.hour,
            t.minute,
            t.second,
            t.year
        ),
        WeekdayShort => write!(o, "{}", &WEEKDAYS[t.weekday][..3]),
        WeekdayLong => write!(o, "{}", WEEKDAYS[t.weekday]),
        MonthShort => write!(o, "{}", &MONTHS[t.month as usize - 1][..3]),
        MonthLong => write!(o, "{}", MONTHS[t.month as usize - 1]),
        AmPm => write!(o, "{}", if t.hour >= 12 { "PM" } else { "AM" }),
        Time12 => write!(
            o,
            "{:02}:{:02}:{:02} {}",
            t.hour12(),
            t.minute,
            t.second,
            if t.hour >= 12 { "PM" } else { "AM" }
        ),
        TzOffset => write!(o, "+00:00"),
        Epoch => write!(o, "{}", t.secs),
        Tid => write!(o, "{}", r.tid),
        Pid => write!(o, "{}", std::process::id()),
        Level => write!(o, "{}", level_name(r.level).0),
        LevelShort => write!(o, "{}", level_name(r.level).1),
        Name => write!(o, "{}", r.component),
        Source => write!(o, "{}", r.file.unwrap_or("")),
        SourceBase => {
            let f = r.file.unwrap_or("");
            write!(o, "{}", f.rsplit(['/', '\\']).next().unwrap_or(f))
        }
        Line => match r.line {
            Some(l) => write!(o, "{l}"),
            None => Ok(()),
        },
        Func => write!(o, "{}", r.module.unwrap_or("")),
        ElapsedNs => write!(o, "{elapsed}"),
        ElapsedUs => write!(o, "{}", elapsed / 1_000),
        ElapsedMs => write!(o, "{}", elapsed / 1_000_000),
        ElapsedS => write!(o, "{}", elapsed / 1_000_000_000),
        Message => write!(o, "{}", r.message),
        MessageNewlines => {
            for (i, part) in r.message.split('\n').enumerate() {
                if i > 0 {
                    o.push_str("\\n");
                }
                o.push_str(part);
            }
            Ok(())
        }
        MessageJson => {
            json_escape(r.message, o);
            Ok(())
        }
        Nothing => Ok(()),
    };
}

/// Appends `s` escaped for the inside of a JSON string.
pub fn json_escape(s: &str, o: &mut String) {
    let mut rest = s;
    while let Some(i) = rest.find(|c: char| c == '"' || c == '\\' || c < ' ') {
        o.push_str(&rest[..i]);
        let c = rest[i..].chars().next().unwrap_or(' ');
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '\u{8}' => o.push_str("\\b"),
            '\u{c}' => o.push_str("\\f"),
            c => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
        }
        rest = &rest[i + 1..];
    }
    o.push_str(rest);
}

/// Appends `s` with C-style escapes (`\n`, `\t`, `\"`, `\'`, `\\`, other
/// control and non-ASCII bytes as `\ooo`), as Envoy's
/// `--log-format-escaped` does.
pub fn c_escape(s: &str, o: &mut String) {
    for &b in s.as_bytes() {
        match b {
            b'\n' => o.push_str("\\n"),
            b'\r' => o.push_str("\\r"),
            b'\t' => o.push_str("\\t"),
            b'"' => o.push_str("\\\""),
            b'\'' => o.push_str("\\'"),
            b'\\' => o.push_str("\\\\"),
            0x20..=0x7e => o.push(b as char),
            _ => {
                let _ = write!(o, "\\{b:03o}");
            }
        }
    }
}

#[cfg(test)]
#[path = "logfmt_tests.rs"]
mod tests;
