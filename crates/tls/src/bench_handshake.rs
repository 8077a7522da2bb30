//! A handshake micro-measure (ignored by default): full TLS 1.3
//! handshakes over in-memory buffers, client and server in one thread,
//! for ECDSA P-256 and RSA 2048 server certificates.
//! `cargo test --release -p nuncio-tls -- --ignored --nocapture handshake_rate`

use std::time::Instant;

use crate::client::build_client;
use crate::server::build_server;
use crate::testcerts::{handshake, CertKind, TestCerts};
use nuncio_config::tls::{decode_downstream_str, decode_upstream_str};

#[test]
#[ignore]
fn handshake_rate() {
    let t = TestCerts::new();
    for kind in [CertKind::EcdsaP256, CertKind::Rsa2048] {
        let (c, k) = t.leaf(kind, "bench.example.com");
        let ds = decode_downstream_str(
            "t.yaml",
            &format!(
                "common_tls_context: {{tls_certificates: [{{certificate_chain: {{filename: '{}'}}, private_key: {{filename: '{}'}}}}]}}",
                c.describe(),
                k.describe()
            ),
        )
        .unwrap();
        let server = build_server(&ds, &[]).unwrap();
        let us =
            decode_upstream_str("t.yaml", "{sni: bench.example.com, max_session_keys: 0, common_tls_context: {tls_params: {tls_maximum_protocol_version: TLSv1_3}}}").unwrap();
        let client = build_client(&us, &[], false).unwrap();
        for _ in 0..50 {
            handshake(&client, &server).unwrap();
        }
        let n = 1000;
        let start = Instant::now();
        for _ in 0..n {
            handshake(&client, &server).unwrap();
        }
        let per = start.elapsed() / n;
        println!(
            "{} {kind:?}: {per:?} per full handshake (client + server, one core)",
            crate::PROVIDER_NAME
        );
    }
}
