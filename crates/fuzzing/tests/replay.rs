//! Replays the fuzz seed corpora and every saved finding through the
//! harnesses, so a regression fails the normal test run.

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        if let Ok(rd) = std::fs::read_dir(fuzz.join(dir).join(target)) {
            out.extend(rd.filter_map(|e| e.ok().map(|e| e.path())));
        }
    }
    out.sort();
    out
}

#[test]
fn config_load_corpus() {
    let files = inputs("config_load");
    assert!(files.len() >= 10, "seed corpus missing: {files:?}");
    for f in files {
        let data = std::fs::read(&f).unwrap();
        nuncio_fuzzing::config_load(&data);
    }
}

#[test]
fn http1_request_corpus() {
    let files = inputs("http1_request");
    assert!(files.len() >= 20, "seed corpus missing: {files:?}");
    let h = nuncio_fuzzing::Http1Harness::new();
    for f in files {
        let data = std::fs::read(&f).unwrap();
        h.run(&data);
    }
    // The good requests of the corpus went through (10 of the seeds are
    // requests an upstream must receive).
    assert!(h.upstream_requests() >= 10, "{}", h.upstream_requests());
}

#[test]
fn h2_frames_corpus() {
    let files = inputs("h2_frames");
    assert!(files.len() >= 10, "seed corpus missing: {files:?}");
    let mut accepted = 0;
    for f in files {
        let data = std::fs::read(&f).unwrap();
        accepted += nuncio_fuzzing::h2_frames(&data);
    }
    // The well-formed requests of the corpus reached the application.
    assert!(accepted >= 12, "{accepted}");
}

#[test]
fn client_hello_corpus() {
    use nuncio_tls::inspect::Inspect;
    let files = inputs("client_hello");
    assert!(files.len() >= 10, "seed corpus missing: {files:?}");
    let mut hellos = Vec::new();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        if let Inspect::Hello(h) = nuncio_fuzzing::client_hello(&data) {
            hellos.push(h.sni);
        }
    }
    // The captured hellos (crates/tls/testdata) and their re-fragmented
    // copies are read as hellos, with their names.
    for sni in ["www.example.com", "api.example.org", "mixed.case.example"] {
        assert!(
            hellos.iter().any(|h| h.as_deref() == Some(sni)),
            "{sni}: {hellos:?}"
        );
    }
    assert!(hellos.len() >= 7, "{hellos:?}");
}
