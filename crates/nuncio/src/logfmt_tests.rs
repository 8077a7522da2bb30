//! The formatter against lines the real Envoy 1.40 printed for the same
//! pattern and event (its admin-address line at 2026-12-07 20:55:26.467250).

use super::*;
use std::time::Duration;

fn record(message: &str) -> Record<'_> {
    Record {
        time: UNIX_EPOCH + Duration::new(1_796_676_926, 467_250_000),
        level: tracing::Level::INFO,
        component: "admin",
        file: Some("source/server/admin/admin.cc"),
        line: Some(66),
        module: Some("startHttpListener"),
        message,
        tid: 14408,
    }
}

fn render(format: &str, escaped: bool, r: &Record<'_>) -> String {
    let (mut out, mut scratch) = (String::new(), String::new());
    Pattern::new(format, escaped).format(r, &mut out, &mut scratch);
    assert!(scratch.is_empty());
    out
}

#[test]
fn default_format_is_envoys() {
    assert_eq!(
        render(DEFAULT_FORMAT, false, &record("admin address: 127.0.0.1:19001")),
        "[2026-12-07 20:55:26.467][14408][info][admin] [source/server/admin/admin.cc:66] admin address: 127.0.0.1:19001\n"
    );
}

#[test]
fn every_flag_as_envoy_prints_it() {
    let f = "Y=%Y|m=%m|d=%d|H=%H|M=%M|S=%S|e=%e|f=%f|F=%F|T=%T|t=%t|l=%l|L=%L|n=%n|g=%g|s=%s|#=%#|!=%!|x=%x|X=%X|D=%D|a=%a|A=%A|b=%b|B=%B|c=%c|C=%C|y=%y|z=%z|E=%E|p=%p|I=%I|r=%r|R=%R|+=%+|^=%^|$=%$|pct=%%|q=%q|Z=%Z|k=%k|*=%*|v=%v";
    // Envoy's line, with its function name for %!.
    let envoy = "Y=2026|m=12|d=07|H=20|M=55|S=26|e=467|f=467250|F=467250000|T=20:55:26|t=14408|l=info|L=I|n=admin|g=source/server/admin/admin.cc|s=admin.cc|#=66|!=startHttpListener|x=12/07/26|X=20:55:26|D=12/07/26|a=Mon|A=Monday|b=Dec|B=December|c=Mon Dec 7 20:55:26 2026|C=26|y=%y|z=+00:00|E=1796676926|p=PM|I=08|r=08:55:26 PM|R=20:55|+=admin address: 127.0.0.1:19001|^=|$=|pct=%|q=%q|Z=%Z|k=%k|*=|v=admin address: 127.0.0.1:19001\n";
    assert_eq!(
        render(f, false, &record("admin address: 127.0.0.1:19001")),
        envoy
    );
    let pid = render("%P", false, &record(""));
    assert_eq!(pid, format!("{}\n", std::process::id()));
}

#[test]
fn padding_as_envoy_prints_it() {
    let f = "pad=[%-10l][%10n][%=9l][%3!l][%-3!n]";
    assert_eq!(
        render(f, false, &record("x")),
        "pad=[info      ][     admin][  info   ][inf][adm]\n"
    );
    let mut w = record("x");
    w.level = tracing::Level::WARN;
    w.component = "main";
    assert_eq!(
        render(f, false, &w),
        "pad=[warning   ][      main][ warning ][war][mai]\n"
    );
    // Widths stop at 64; a pad spec without a flag prints nothing.
    assert_eq!(render("%100l", false, &record("x")).len(), 65);
    assert_eq!(render("a%-5", false, &record("x")), "a\n");
    assert_eq!(render("a%", false, &record("x")), "a\n");
}

#[test]
fn message_escapes() {
    let r = record("say \"hi\"\n\tto 'x' \\ \u{1}é");
    assert_eq!(
        render("%j", false, &r),
        "say \\\"hi\\\"\\n\\tto 'x' \\\\ \\u0001é\n"
    );
    assert_eq!(render("%_", false, &r), "say \"hi\"\\n\tto 'x' \\ \u{1}é\n");
    // --log-format-escaped escapes the whole line, as Envoy does.
    assert_eq!(
        render("V=%v|", true, &r),
        "V=say \\\"hi\\\"\\n\\tto \\'x\\' \\\\ \\001\\303\\251|\n"
    );
}

#[test]
fn json_shaped_format() {
    let r = record("a \"quoted\"\nline");
    assert_eq!(
        render(r#"{"level":"%l","msg":"%j","caller":"%g:%#","thread":%t}"#, false, &r),
        "{\"level\":\"info\",\"msg\":\"a \\\"quoted\\\"\\nline\",\"caller\":\"source/server/admin/admin.cc:66\",\"thread\":14408}\n"
    );
}

#[test]
fn dates() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    assert_eq!(civil_from_days(-1), (1969, 12, 31));
    let mut r = record("x");
    r.time = UNIX_EPOCH + Duration::from_secs(1_709_164_800 + 3_600);
    assert_eq!(
        render("%a %c %r %I", false, &r),
        "Thu Thu Feb 29 01:00:00 2024 01:00:00 AM 01\n"
    );
}

#[test]
fn elapsed_since_previous_line() {
    let p = Pattern::new("%o", false);
    let (mut out, mut scratch) = (String::new(), String::new());
    let r1 = record("x");
    let mut r2 = record("y");
    r2.time = r1.time + Duration::from_millis(250);
    p.format(&r1, &mut out, &mut scratch);
    p.format(&r2, &mut out, &mut scratch);
    assert_eq!(out, "0\n250\n");
}
