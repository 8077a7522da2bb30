//! Passes the build's git revision to `server.version` (Envoy's stat: its
//! SCM revision as an integer). Without git or a repository it is unset,
//! and the stat is 0.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
    let rev = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok());
    if let Some(r) = rev {
        println!("cargo:rustc-env=NUNCIO_GIT_REVISION={}", r.trim());
    }
}
