//! nuncio's own log lines, as Envoy writes its application log: one
//! tracing-subscriber layer that filters by Envoy component
//! (`-l`, `--component-log-level`), formats with `--log-format`
//! (`logfmt.rs`) and writes to stderr or to `--log-path`.
//!
//! Components: each event's target (its module path) maps onto the
//! Envoy logger whose job that code does, so `--component-log-level
//! upstream:debug,connection:trace` means what it means in Envoy:
//!
//! | nuncio code | component |
//! |---|---|
//! | `nuncio` (startup, signals, workers) | `main` |
//! | `nuncio::reload`, `nuncio::options`, `nuncio_config` | `config` |
//! | `nuncio_admin` | `admin` |
//! | `nuncio_listener` | `conn_handler` |
//! | `nuncio_hcm::native::io`, `::deadline` (sockets, timeouts) | `connection` |
//! | `nuncio_hcm` (the rest), `nuncio_h1`, `hyper` | `http` |
//! | `nuncio_hcm::native::h2*`, `nuncio_h2`, `nuncio_h2flood`, `h2` | `http2` |
//! | `nuncio_hcm::proxy`, `::body`, `::native::upstream`, `nuncio_router` | `router` |
//! | `nuncio_hcm::tunnel`, `::upgrade`, `nuncio_websocket` | `websocket` |
//! | `nuncio_cluster` | `upstream` |
//! | `nuncio_cluster::resolve` (hosts file, DNS) | `dns` |
//! | `nuncio_upstream` (connection pools) | `pool` |
//! | `nuncio_stats` | `stats` |
//! | anything else | `misc` |
//!
//! `--log-path`: lines go to that file (appended), buffered and flushed
//! every `--file-flush-interval-msec` or when `--file-flush-min-size-kb`
//! is buffered, as Envoy's file sinks; SIGUSR1 reopens it (log rotation),
//! and the buffer is flushed before the process exits.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Metadata};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::Layer;

use crate::logfmt::{Pattern, Record};

/// Targets (module paths) and their components; the longest match wins.
const COMPONENTS: &[(&str, &str)] = &[
    ("nuncio", "main"),
    ("nuncio::reload", "config"),
    ("nuncio::options", "config"),
    ("nuncio_config", "config"),
    ("nuncio_admin", "admin"),
    ("nuncio_listener", "conn_handler"),
    ("nuncio_hcm", "http"),
    ("nuncio_hcm::native::io", "connection"),
    ("nuncio_hcm::native::deadline", "connection"),
    ("nuncio_hcm::native::h2", "http2"),
    ("nuncio_hcm::native::h2guard", "http2"),
    ("nuncio_hcm::native::h2io", "http2"),
    ("nuncio_hcm::native::h2head", "http2"),
    ("nuncio_hcm::native::upstream", "router"),
    ("nuncio_hcm::proxy", "router"),
    ("nuncio_hcm::body", "router"),
    ("nuncio_hcm::tunnel", "websocket"),
    ("nuncio_hcm::upgrade", "websocket"),
    ("nuncio_h1", "http"),
    ("nuncio_h2", "http2"),
    ("nuncio_h2flood", "http2"),
    ("nuncio_router", "router"),
    ("nuncio_cluster", "upstream"),
    ("nuncio_cluster::resolve", "dns"),
    ("nuncio_upstream", "pool"),
    ("nuncio_stats", "stats"),
    ("nuncio_websocket", "websocket"),
    ("nuncio_echo", "main"),
    ("hyper", "http"),
    ("hyper_util", "http"),
    ("h2", "http2"),
];

/// The component of an event with `target`.
pub fn component(target: &str) -> &'static str {
    let mut best: Option<(&str, &'static str)> = None;
    for &(prefix, name) in COMPONENTS {
        let hit = target == prefix
            || (target.starts_with(prefix) && target[prefix.len()..].starts_with("::"));
        if hit && best.is_none_or(|(b, _)| prefix.len() > b.len()) {
            best = Some((prefix, name));
        }
    }
    best.map_or("misc", |(_, n)| n)
}

/// What the logger is set up with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `-l`.
    pub level: LevelFilter,
    /// `--component-log-level`, checked against Envoy's component names.
    pub components: Vec<(String, LevelFilter)>,
    /// `--log-format`.
    pub format: String,
    /// `--log-format-escaped`.
    pub escaped: bool,
    /// `--log-path`.
    pub path: Option<String>,
    /// `--file-flush-interval-msec` (0: every line is written at once).
    pub flush_interval: Duration,
    /// `--file-flush-min-size-kb`, in bytes (0: every line at once).
    pub flush_min_bytes: usize,
}

/// `--log-path`: a file and the lines not yet written to it.
struct FileSink {
    path: String,
    state: Mutex<FileState>,
    min_bytes: usize,
    write_through: bool,
}

struct FileState {
    file: File,
    buf: Vec<u8>,
}

fn open(path: &str) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl FileSink {
    fn write(&self, line: &[u8]) {
        let Ok(mut s) = self.state.lock() else { return };
        if self.write_through {
            let _ = s.file.write_all(line);
            return;
        }
        s.buf.extend_from_slice(line);
        if s.buf.len() >= self.min_bytes {
            s.flush();
        }
    }

    fn flush(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.flush();
        }
    }

    /// Writes what is buffered and reopens the path (a rotated file is
    /// replaced by a new one).
    fn reopen(&self) -> std::io::Result<()> {
        let file = open(&self.path)?;
        if let Ok(mut s) = self.state.lock() {
            s.flush();
            s.file = file;
        }
        Ok(())
    }
}

impl FileState {
    fn flush(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.file.write_all(&self.buf);
            self.buf.clear();
        }
    }
}

enum Sink {
    Stderr,
    File(Arc<FileSink>),
}

static FILE: OnceLock<Arc<FileSink>> = OnceLock::new();

/// Writes out what `--log-path` has buffered (before the process exits).
pub fn flush() {
    if let Some(f) = FILE.get() {
        f.flush();
    }
}

/// Reopens `--log-path` (SIGUSR1). A no-op when logging to stderr.
pub fn reopen() {
    if let Some(f) = FILE.get() {
        match f.reopen() {
            Ok(()) => tracing::info!(path = %f.path, "log file reopened"),
            Err(e) => tracing::error!(path = %f.path, error = %e, "cannot reopen the log file"),
        }
    }
}

/// The layer: filter, format, write.
struct EnvoyLayer {
    level: LevelFilter,
    components: Vec<(String, LevelFilter)>,
    pattern: Pattern,
    sink: Sink,
}

impl EnvoyLayer {
    fn level_of(&self, component: &str) -> LevelFilter {
        self.components
            .iter()
            .rev()
            .find(|(c, _)| c == component)
            .map_or(self.level, |(_, l)| *l)
    }

    fn wants(&self, meta: &Metadata<'_>) -> bool {
        self.level_of(component(meta.target())) >= *meta.level()
    }
}

thread_local! {
    /// This thread's OS id (Envoy's `%t`), and reused line buffers.
    static LOCAL: RefCell<Local> = RefCell::new(Local {
        tid: os_thread_id(),
        message: String::with_capacity(256),
        fields: String::new(),
        line: String::with_capacity(512),
        scratch: String::new(),
    });
}

struct Local {
    tid: u64,
    message: String,
    fields: String,
    line: String,
    scratch: String,
}

/// The OS id of the calling thread (the process id on the main thread),
/// read once per thread from `/proc/thread-self` (no system call wrapper
/// needed). 0 when that is not available.
fn os_thread_id() -> u64 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// Collects an event's message and its other fields as `key=value`.
struct Visitor<'a> {
    message: &'a mut String,
    fields: &'a mut String,
}

impl tracing::field::Visit for Visitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for EnvoyLayer {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        if self.wants(meta) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _: Context<'_, S>) -> bool {
        self.wants(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(
            self.components
                .iter()
                .map(|(_, l)| *l)
                .fold(self.level, std::cmp::max),
        )
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let time = SystemTime::now();
        let meta = event.metadata();
        LOCAL.with(|l| {
            let Ok(mut l) = l.try_borrow_mut() else {
                return; // an event logged while formatting one: dropped
            };
            let Local {
                tid,
                message,
                fields,
                line,
                scratch,
            } = &mut *l;
            message.clear();
            fields.clear();
            line.clear();
            event.record(&mut Visitor { message, fields });
            message.push_str(fields);
            let record = Record {
                time,
                level: *meta.level(),
                component: component(meta.target()),
                file: meta.file(),
                line: meta.line(),
                module: meta.module_path(),
                message,
                tid: *tid,
            };
            self.pattern.format(&record, line, scratch);
            match &self.sink {
                Sink::Stderr => {
                    let _ = std::io::stderr().lock().write_all(line.as_bytes());
                }
                Sink::File(f) => f.write(line.as_bytes()),
            }
        });
    }
}

/// Installs the logger for the whole process.
pub fn init(s: &Settings) -> Result<()> {
    let sink = match &s.path {
        None => Sink::Stderr,
        Some(path) => {
            let file = open(path).with_context(|| format!("--log-path '{path}'"))?;
            let write_through = s.flush_interval.is_zero() || s.flush_min_bytes == 0;
            let f = Arc::new(FileSink {
                path: path.clone(),
                state: Mutex::new(FileState {
                    file,
                    buf: Vec::with_capacity(if write_through { 0 } else { 64 * 1024 }),
                }),
                min_bytes: s.flush_min_bytes,
                write_through,
            });
            if !write_through {
                let flusher = f.clone();
                let every = s.flush_interval;
                std::thread::Builder::new()
                    .name("nuncio-log-flush".into())
                    .spawn(move || loop {
                        std::thread::sleep(every);
                        flusher.flush();
                    })
                    .context("cannot start the log flush thread")?;
            }
            let _ = FILE.set(f.clone());
            Sink::File(f)
        }
    };
    let layer = EnvoyLayer {
        level: s.level,
        components: s.components.clone(),
        pattern: Pattern::new(&s.format, s.escaped),
        sink,
    };
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .context("cannot install the logger")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_map_to_envoy_components() {
        assert_eq!(component("nuncio::server"), "main");
        assert_eq!(component("nuncio"), "main");
        assert_eq!(component("nuncio::reload"), "config");
        assert_eq!(component("nuncio_config::decode"), "config");
        assert_eq!(component("nuncio_hcm"), "http");
        assert_eq!(component("nuncio_hcm::native"), "http");
        assert_eq!(component("nuncio_hcm::native::h2"), "http2");
        assert_eq!(component("nuncio_hcm::native::h2guard"), "http2");
        assert_eq!(component("nuncio_hcm::native::upstream"), "router");
        assert_eq!(component("nuncio_hcm::native::io"), "connection");
        assert_eq!(component("nuncio_cluster::discovery"), "upstream");
        assert_eq!(component("nuncio_cluster::resolve"), "dns");
        assert_eq!(component("nuncio_upstream::pool"), "pool");
        assert_eq!(component("h2::proto"), "http2");
        assert_eq!(component("h2flood"), "misc");
        assert_eq!(component("tokio::runtime"), "misc");
        // Not a prefix at a module boundary.
        assert_eq!(component("nuncioX"), "misc");
        for (_, c) in COMPONENTS {
            assert!(crate::options::ENVOY_COMPONENTS.contains(c), "{c}");
        }
    }

    #[test]
    fn component_levels_override_the_default() {
        let layer = EnvoyLayer {
            level: LevelFilter::WARN,
            components: vec![
                ("upstream".into(), LevelFilter::DEBUG),
                ("main".into(), LevelFilter::OFF),
            ],
            pattern: Pattern::new("%v", false),
            sink: Sink::Stderr,
        };
        assert_eq!(layer.level_of("upstream"), LevelFilter::DEBUG);
        assert_eq!(layer.level_of("main"), LevelFilter::OFF);
        assert_eq!(layer.level_of("http"), LevelFilter::WARN);
        let hint = <EnvoyLayer as Layer<tracing_subscriber::Registry>>::max_level_hint(&layer);
        assert_eq!(hint, Some(LevelFilter::DEBUG));
    }

    #[test]
    fn file_sink_buffers_until_flushed_and_reopens() {
        let dir = std::env::temp_dir().join(format!("nuncio-logtest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        let p = path.to_str().unwrap().to_string();
        let sink = FileSink {
            path: p.clone(),
            state: Mutex::new(FileState {
                file: open(&p).unwrap(),
                buf: Vec::new(),
            }),
            min_bytes: 10,
            write_through: false,
        };
        sink.write(b"one\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        sink.write(b"two two\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo two\n");
        sink.write(b"3\n");
        std::fs::rename(&path, dir.join("a.log.1")).unwrap();
        sink.reopen().unwrap();
        sink.write(b"4\n");
        sink.flush();
        assert_eq!(
            std::fs::read_to_string(dir.join("a.log.1")).unwrap(),
            "one\ntwo two\n3\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "4\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
