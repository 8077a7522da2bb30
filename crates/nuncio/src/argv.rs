//! Envoy's command-line syntax, on top of clap. Envoy parses its flags with
//! TCLAP, which launchers rely on in two ways clap does not accept:
//!
//! - a flag and its value in ONE argument, split at the first space:
//!   Envoy Gateway passes `"--service-cluster NAME"`, `"--config-yaml
//!   <yaml>"`, `"--drain-time-s 60"` as single container args, and Docker
//!   `CMD`s carry `"-c /etc/envoy.yaml"`; only flags that take a value are
//!   split (`"--cpuset-threads x"` stays an error, as in Envoy);
//! - `--` (or `--ignore_rest`) ends the flags: Envoy ignores what follows.
//!
//! Both `--flag value` and clap's `--flag=value` work; Envoy itself
//! accepts only the first.

use std::ffi::OsString;

use clap::CommandFactory as _;

use crate::cli::Args;

/// The flags that take a value, as written on the command line
/// (`--config-path`, `-c`, ...).
fn value_flags() -> Vec<String> {
    let cmd = Args::command();
    let mut out = Vec::new();
    for a in cmd.get_arguments() {
        if !a.get_action().takes_values() {
            continue;
        }
        if let Some(l) = a.get_long() {
            out.push(format!("--{l}"));
        }
        if let Some(s) = a.get_short() {
            out.push(format!("-{s}"));
        }
    }
    out
}

/// Rewrites `argv` (program name first) into what clap parses. Subcommand
/// lines (`nuncio echo ...`) are left alone.
pub fn normalize(argv: Vec<OsString>) -> Vec<OsString> {
    if argv.get(1).and_then(|a| a.to_str()) == Some("echo") {
        return argv;
    }
    let flags = value_flags();
    let mut out = Vec::with_capacity(argv.len());
    let mut iter = argv.into_iter();
    if let Some(program) = iter.next() {
        out.push(program);
    }
    // Whether the previous argument was a flag still waiting for its value.
    let mut wants_value = false;
    for arg in iter {
        let Some(s) = arg.to_str() else {
            wants_value = false;
            out.push(arg);
            continue;
        };
        if wants_value {
            wants_value = false;
            out.push(arg);
            continue;
        }
        if s == "--" || s == "--ignore_rest" {
            break;
        }
        if s.starts_with('-') {
            if let Some((flag, value)) = s.split_once(' ') {
                if flags.iter().any(|f| f == flag) {
                    out.push(OsString::from(flag));
                    out.push(OsString::from(value));
                    continue;
                }
            }
            wants_value = flags.iter().any(|f| f == s);
        }
        out.push(arg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        let v = std::iter::once("nuncio")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        normalize(v)
            .into_iter()
            .skip(1)
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn flag_and_value_in_one_argument_are_split_once() {
        assert_eq!(
            norm(&["--service-node a b", "-c /etc/e.yaml", "--drain-time-s 60"]),
            [
                "--service-node",
                "a b",
                "-c",
                "/etc/e.yaml",
                "--drain-time-s",
                "60"
            ]
        );
        // As TCLAP: split at the first space only.
        assert_eq!(norm(&["--mode  validate"]), ["--mode", " validate"]);
        // A multi-line YAML value.
        assert_eq!(
            norm(&["--config-yaml admin:\n  address: x"]),
            ["--config-yaml", "admin:\n  address: x"]
        );
    }

    #[test]
    fn switches_and_unknown_flags_are_not_split() {
        assert_eq!(norm(&["--cpuset-threads x"]), ["--cpuset-threads x"]);
        assert_eq!(norm(&["--bogus 1"]), ["--bogus 1"]);
    }

    #[test]
    fn values_are_never_rewritten() {
        assert_eq!(
            norm(&["--log-format", "-- %v", "--service-node", "--"]),
            ["--log-format", "-- %v", "--service-node", "--"]
        );
        assert_eq!(
            norm(&["--log-format", "--concurrency 2"]),
            ["--log-format", "--concurrency 2"]
        );
    }

    #[test]
    fn double_dash_ends_the_flags() {
        assert_eq!(norm(&["-c", "x", "--", "--concurrency", "2"]), ["-c", "x"]);
        assert_eq!(norm(&["--ignore_rest", "--bogus"]), Vec::<String>::new());
    }

    #[test]
    fn subcommands_untouched() {
        assert_eq!(norm(&["echo", "--listen 1"]), ["echo", "--listen 1"]);
    }

    #[test]
    fn istio_and_envoy_gateway_lines_parse() {
        use clap::Parser as _;
        let istio = [
            "nuncio",
            "-c",
            "etc/istio/proxy/envoy-rev.json",
            "--drain-time-s",
            "45",
            "--drain-strategy",
            "immediate",
            "--local-address-ip-version",
            "v4",
            "--file-flush-interval-msec",
            "1000",
            "--disable-hot-restart",
            "--allow-unknown-static-fields",
            "--log-format",
            "%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t",
            "-l",
            "warning",
            "--component-log-level",
            "misc:error",
            "--skip-deprecated-logs",
            "--concurrency",
            "2",
        ];
        let a =
            Args::try_parse_from(normalize(istio.iter().map(OsString::from).collect())).unwrap();
        assert_eq!(a.drain_time_s, 45);
        assert_eq!(a.file_flush_interval_msec, 1000);
        assert!(a.hot_restart.disable_hot_restart && a.allow_unknown_static_fields);
        assert_eq!(a.component_log_level.as_deref(), Some("misc:error"));
        let eg = [
            "nuncio",
            "--service-cluster default",
            "--service-node $(ENVOY_POD_NAME)",
            "--config-yaml admin: {}",
            "--log-level warn",
            "--cpuset-threads",
            "--drain-strategy immediate",
            "--drain-time-s 60",
            "--component-log-level upstream:debug,connection:trace",
        ];
        let a = Args::try_parse_from(normalize(eg.iter().map(OsString::from).collect())).unwrap();
        assert_eq!(a.service_node.as_deref(), Some("$(ENVOY_POD_NAME)"));
        assert_eq!(a.config_yaml.as_deref(), Some("admin: {}"));
        assert!(a.cpuset_threads);
        assert_eq!(a.drain_strategy, Some(crate::cli::DrainStrategy::Immediate));
        assert!(Args::try_parse_from(["nuncio", "--bogus-flag"]).is_err());
    }
}
