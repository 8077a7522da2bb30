//! Envoy's checks on its flags (with Envoy's error messages), and what
//! nuncio says at startup about flags it accepts without acting on them.

use anyhow::{anyhow, bail, Result};
use tracing::level_filters::LevelFilter;

use crate::cli::{Args, DrainStrategy, LogLevel};
use crate::logging::Settings;

/// Envoy 1.40's logger (component) names, as its admin `/logging` lists
/// them. `--component-log-level` accepts these and no others, as Envoy.
pub const ENVOY_COMPONENTS: &[&str] = &[
    "a2a",
    "admin",
    "ai_protocol_manager",
    "alternate_protocols_cache",
    "aws",
    "assert",
    "backtrace",
    "basic_auth",
    "cache_filter",
    "client",
    "config",
    "connection",
    "conn_handler",
    "compression",
    "credential_injector",
    "decompression",
    "dns",
    "dubbo",
    "envoy_bug",
    "ext_authz",
    "ext_proc",
    "rocketmq",
    "file",
    "filter",
    "forward_proxy",
    "geolocation",
    "grpc",
    "happy_eyeballs",
    "hc",
    "health_checker",
    "http",
    "http2",
    "hystrix",
    "init",
    "io",
    "jwt",
    "json_rpc",
    "kafka",
    "key_value_store",
    "lua",
    "local_rate_limit",
    "main",
    "matcher",
    "mcp",
    "misc",
    "mongo",
    "multi_connection",
    "notification",
    "oauth2",
    "quic",
    "quic_stream",
    "pool",
    "rate_limit_quota",
    "rbac",
    "rds",
    "redis",
    "router",
    "runtime",
    "stats",
    "secret",
    "sse",
    "tap",
    "testing",
    "thrift",
    "tracing",
    "upstream",
    "udp",
    "wasm",
    "websocket",
    "golang",
    "stats_sinks",
    "dynamic_modules",
    "ip_tagging",
];

/// `-l`'s level as a filter (nuncio has no level above error).
pub fn level_filter(l: LogLevel) -> LevelFilter {
    match l {
        LogLevel::Trace => LevelFilter::TRACE,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warn | LogLevel::Warning => LevelFilter::WARN,
        LogLevel::Error | LogLevel::Critical => LevelFilter::ERROR,
        LogLevel::Off => LevelFilter::OFF,
    }
}

fn parse_level(s: &str) -> Result<LevelFilter> {
    Ok(match s {
        "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "info" => LevelFilter::INFO,
        "warning" | "warn" => LevelFilter::WARN,
        "error" | "critical" => LevelFilter::ERROR,
        "off" => LevelFilter::OFF,
        _ => bail!("invalid log level specified '{s}'"),
    })
}

/// Parses `--component-log-level` (`upstream:debug,connection:trace`).
pub fn component_levels(s: &str) -> Result<Vec<(String, LevelFilter)>> {
    let mut out = Vec::new();
    if s.is_empty() {
        return Ok(out);
    }
    for item in s.split(',') {
        let parts: Vec<&str> = item.split(':').collect();
        let [name, level] = parts[..] else {
            bail!("component log level not correctly specified '{item}'");
        };
        let level = parse_level(level)?;
        if !ENVOY_COMPONENTS.contains(&name) {
            bail!("invalid component specified '{name}'");
        }
        out.push((name.to_string(), level));
    }
    Ok(out)
}

fn check_stats_tag(t: &str) -> Result<()> {
    let (name, value) = t
        .split_once(':')
        .ok_or_else(|| anyhow!("misformatted stats-tag '{t}'"))?;
    if !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        bail!("misformatted stats-tag '{t}' contains invalid char in '{name}'");
    }
    if value.is_empty() || value.contains('.') {
        bail!("misformatted stats-tag '{t}' contains invalid char in '{value}'");
    }
    Ok(())
}

/// Envoy's checks across flags; returns the logger settings.
pub fn check(a: &Args) -> Result<Settings> {
    let h = &a.hot_restart;
    if h.use_dynamic_base_id && h.restart_epoch > 0 {
        bail!(
            "cannot use --restart-epoch={} with --use-dynamic-base-id",
            h.restart_epoch
        );
    }
    let components = component_levels(a.component_log_level.as_deref().unwrap_or(""))?;
    if a.enable_fine_grain_logging && !components.is_empty() {
        bail!("--component-log-level will not work with --enable-fine-grain-logging");
    }
    if !h.socket_path.starts_with('@') && u32::from_str_radix(&h.socket_mode, 8).is_err() {
        bail!("invalid socket-mode '{}'", h.socket_mode);
    }
    for t in &a.stats_tag {
        check_stats_tag(t)?;
    }
    Ok(Settings {
        level: level_filter(a.log_level),
        components,
        format: a.log_format.clone(),
        escaped: a.log_format_escaped,
        path: a.log_path.clone(),
        flush_interval: std::time::Duration::from_millis(u64::from(a.file_flush_interval_msec)),
        flush_min_bytes: a.file_flush_min_size_kb as usize * 1024,
    })
}

/// Logs [`startup_notes`]: Envoy's warnings about its options under the
/// `config` component (as Envoy), the rest under `main`.
pub fn log_startup_notes(a: &Args) {
    use tracing::Level;
    for (level, note) in startup_notes(a) {
        let config =
            note.starts_with("--allow-unknown-fields is") || note.contains("--cpuset-threads");
        match (level, config) {
            (Level::WARN, true) => tracing::warn!(target: "nuncio::options", "{note}"),
            (Level::WARN, false) => tracing::warn!(target: "nuncio", "{note}"),
            (Level::DEBUG, _) => tracing::debug!(target: "nuncio", "{note}"),
            _ => tracing::info!(target: "nuncio", "{note}"),
        }
    }
}

/// One startup line per accepted flag that does not apply to nuncio (and
/// Envoy's own warnings for these flags), with the level to log it at.
pub fn startup_notes(a: &Args) -> Vec<(tracing::Level, String)> {
    use tracing::Level;
    let h = &a.hot_restart;
    let hot = h.disable_hot_restart
        || h.restart_epoch > 0
        || h.base_id > 0
        || h.use_dynamic_base_id
        || h.base_id_path.is_some()
        || h.skip_hot_restart_on_no_parent
        || h.skip_hot_restart_parent_stats;
    let mut n = vec![(
        Level::INFO,
        format!(
            "initializing epoch {} (base id={}, hot restart version=disabled){}",
            h.restart_epoch,
            h.base_id,
            if hot {
                ": nuncio has no shared-memory hot restart; its hot restart flags are accepted and change nothing"
            } else {
                ""
            }
        ),
    )];
    let mut note = |on: bool, level: Level, text: &str| {
        if on {
            n.push((level, text.to_string()));
        }
    };
    note(
        h.base_id_path.is_some(),
        Level::INFO,
        "--base-id-path: not written (as Envoy with hot restart off)",
    );
    note(
        a.allow_unknown_fields,
        Level::WARN,
        "--allow-unknown-fields is deprecated, use --allow-unknown-static-fields instead.",
    );
    note(
        a.cpuset_threads && a.concurrency.is_some(),
        Level::WARN,
        "Both --concurrency and --cpuset-threads options are set; not applying --cpuset-threads.",
    );
    note(
        a.cpuset_threads && a.concurrency.is_none(),
        Level::WARN,
        "--cpuset-threads is now the default behavior and no longer required.",
    );
    note(
        a.drain_strategy == Some(DrainStrategy::Gradual),
        Level::INFO,
        "--drain-strategy gradual: nuncio drains immediately (every connection is told to close when the drain starts)",
    );
    note(
        a.reject_unknown_dynamic_fields || a.ignore_unknown_dynamic_fields,
        Level::INFO,
        "--reject/--ignore-unknown-dynamic-fields: nuncio has no dynamic (xDS) configuration; no effect",
    );
    note(
        a.enable_fine_grain_logging,
        Level::INFO,
        "--enable-fine-grain-logging: nuncio's log levels are per component (-l, --component-log-level); no effect",
    );
    note(
        a.enable_mutex_tracing,
        Level::INFO,
        "--enable-mutex-tracing: nuncio keeps no mutex contention stats; no effect",
    );
    note(
        a.disable_extensions.is_some(),
        Level::INFO,
        "--disable-extensions: nuncio has no extension registry; no effect",
    );
    note(
        !a.stats_tag.is_empty(),
        Level::WARN,
        "--stats-tag: checked, but nuncio does not add universal tags to its stats yet",
    );
    note(
        a.service_zone.is_some(),
        Level::DEBUG,
        "--service-zone: nuncio has no use for the node's zone yet",
    );
    if a.enable_core_dump {
        n.push((Level::INFO, core_dump_note()));
    }
    n
}

/// What `--enable-core-dump` can tell: nuncio changes neither its
/// dumpable flag nor its core size limit (both need a system call wrapper
/// that nuncio does not carry), so it says what the limit is.
fn core_dump_note() -> String {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max core file size"))
                .map(|l| {
                    l.trim_start_matches("Max core file size")
                        .split_whitespace()
                        .next()
                        .unwrap_or("?")
                        .to_string()
                })
        })
        .unwrap_or_else(|| "unknown".into());
    format!(
        "--enable-core-dump: core file size limit is {limit} (soft); nuncio does not raise it \
         (`ulimit -c unlimited` in the launcher does) and is dumpable unless started with file capabilities"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn args(a: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("nuncio").chain(a.iter().copied())).unwrap()
    }

    fn err(a: &[&str]) -> String {
        check(&args(a)).unwrap_err().to_string()
    }

    #[test]
    fn component_levels_as_envoy() {
        let l = component_levels("upstream:debug,connection:trace,misc:error").unwrap();
        assert_eq!(
            l,
            [
                ("upstream".into(), LevelFilter::DEBUG),
                ("connection".into(), LevelFilter::TRACE),
                ("misc".into(), LevelFilter::ERROR)
            ]
        );
        assert_eq!(
            component_levels("upstream").unwrap_err().to_string(),
            "component log level not correctly specified 'upstream'"
        );
        assert_eq!(
            component_levels("upstream:bogus").unwrap_err().to_string(),
            "invalid log level specified 'bogus'"
        );
        assert_eq!(
            component_levels("nope:debug").unwrap_err().to_string(),
            "invalid component specified 'nope'"
        );
        assert!(component_levels("").unwrap().is_empty());
    }

    #[test]
    fn envoys_cross_flag_checks() {
        assert_eq!(
            err(&["--use-dynamic-base-id", "--restart-epoch", "1"]),
            "cannot use --restart-epoch=1 with --use-dynamic-base-id"
        );
        assert_eq!(
            err(&[
                "--enable-fine-grain-logging",
                "--component-log-level",
                "http:debug"
            ]),
            "--component-log-level will not work with --enable-fine-grain-logging"
        );
        assert_eq!(
            err(&["--socket-path", "/tmp/s", "--socket-mode", "999"]),
            "invalid socket-mode '999'"
        );
        // The default socket path is abstract: the mode is not read.
        assert!(check(&args(&["--socket-mode", "999"])).is_ok());
        assert!(check(&args(&["--socket-path", "/tmp/s", "--socket-mode", "0644"])).is_ok());
    }

    #[test]
    fn stats_tags_as_envoy() {
        for ok in ["a:b", "a:b:c", ":x", "A9:v v"] {
            assert!(check_stats_tag(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            check_stats_tag("a_b:c").unwrap_err().to_string(),
            "misformatted stats-tag 'a_b:c' contains invalid char in 'a_b'"
        );
        assert_eq!(
            check_stats_tag("ab").unwrap_err().to_string(),
            "misformatted stats-tag 'ab'"
        );
        assert_eq!(
            check_stats_tag("a:b.c").unwrap_err().to_string(),
            "misformatted stats-tag 'a:b.c' contains invalid char in 'b.c'"
        );
        assert!(check_stats_tag("a:").is_err());
    }

    #[test]
    fn settings_from_flags() {
        let s = check(&args(&[
            "-l",
            "warning",
            "--log-path",
            "/tmp/x.log",
            "--file-flush-interval-msec",
            "250",
            "--file-flush-min-size-kb",
            "2",
            "--log-format-escaped",
        ]))
        .unwrap();
        assert_eq!(s.level, LevelFilter::WARN);
        assert_eq!(s.format, crate::logfmt::DEFAULT_FORMAT);
        assert!(s.escaped);
        assert_eq!(s.flush_interval, std::time::Duration::from_millis(250));
        assert_eq!(s.flush_min_bytes, 2048);
        assert_eq!(s.path.as_deref(), Some("/tmp/x.log"));
    }

    #[test]
    fn notes_name_what_is_ignored() {
        let n = startup_notes(&args(&["--disable-hot-restart", "--restart-epoch", "2"]));
        assert_eq!(n.len(), 1, "{n:?}");
        assert!(n[0].1.starts_with(
            "initializing epoch 2 (base id=0, hot restart version=disabled): nuncio has no"
        ));
        let n = startup_notes(&args(&[]));
        assert_eq!(
            n[0].1,
            "initializing epoch 0 (base id=0, hot restart version=disabled)"
        );
        let n = startup_notes(&args(&["--cpuset-threads", "--concurrency", "1"]));
        assert!(n
            .iter()
            .any(|(_, l)| l.starts_with("Both --concurrency and --cpuset-threads")));
        let n = startup_notes(&args(&["--drain-strategy", "immediate"]));
        assert_eq!(n.len(), 1);
        let n = startup_notes(&args(&["--drain-strategy", "gradual"]));
        assert!(n[1]
            .1
            .starts_with("--drain-strategy gradual: nuncio drains immediately"));
        let n = startup_notes(&args(&["--enable-core-dump"]));
        assert!(n.iter().any(|(_, l)| l.contains("core file size limit is")));
    }
}
