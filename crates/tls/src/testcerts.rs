//! Test certificates made at test time with the `openssl` CLI into a
//! temporary directory (no private key is committed): a P-256 CA, leaves
//! signed by it (ECDSA P-256 or RSA 2048), and an empty CRL.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use nuncio_config::DataSource;

/// A leaf's key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// ECDSA P-256.
    EcdsaP256,
    /// RSA 2048.
    Rsa2048,
}

/// A temporary directory with a CA in it; removed on drop.
pub struct TestCerts {
    dir: PathBuf,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn newkey(kind: CertKind) -> [&'static str; 4] {
    match kind {
        CertKind::EcdsaP256 => ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        CertKind::Rsa2048 => ["-newkey", "rsa:2048", "-pkeyopt", "rsa_keygen_bits:2048"],
    }
}

impl TestCerts {
    /// A new directory with `ca.pem`/`ca.key` and `crl.pem`.
    pub fn new() -> TestCerts {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("nuncio-tls-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut args = vec!["req", "-x509"];
        args.extend(newkey(CertKind::EcdsaP256));
        args.extend([
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&dir, &args);
        std::fs::write(dir.join("index.txt"), "").expect("index");
        std::fs::write(dir.join("crlnumber"), "01\n").expect("crlnumber");
        std::fs::write(
            dir.join("ca.cnf"),
            "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 7\n",
        )
        .expect("ca.cnf");
        openssl(
            &dir,
            &[
                "ca", "-config", "ca.cnf", "-gencrl", "-keyfile", "ca.key", "-cert", "ca.pem",
                "-out", "crl.pem",
            ],
        );
        TestCerts { dir }
    }

    /// The CA certificate.
    pub fn ca(&self) -> DataSource {
        DataSource::File(self.dir.join("ca.pem"))
    }

    /// The CA's (empty) CRL.
    pub fn crl(&self) -> DataSource {
        DataSource::File(self.dir.join("crl.pem"))
    }

    /// A leaf for DNS name `name` signed by the CA: (chain, key) files.
    pub fn leaf(&self, kind: CertKind, name: &str) -> (DataSource, DataSource) {
        let base = format!("{name}-{kind:?}");
        let (key, csr, crt, ext) = (
            format!("{base}.key"),
            format!("{base}.csr"),
            format!("{base}.pem"),
            format!("{base}.ext"),
        );
        let subj = format!("/CN={name}");
        let mut args = vec!["req", "-new"];
        args.extend(newkey(kind));
        args.extend(["-nodes", "-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(&self.dir, &args);
        std::fs::write(
            self.dir.join(&ext),
            format!("subjectAltName=DNS:{name}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n"),
        )
        .expect("ext file");
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &crt,
                "-extfile",
                &ext,
            ],
        );
        (
            DataSource::File(self.dir.join(crt)),
            DataSource::File(self.dir.join(key)),
        )
    }

    pub fn sh(&self, script: &str) -> Vec<u8> {
        let out = Command::new("sh")
            .args(["-c", script])
            .current_dir(&self.dir)
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "{script}");
        out.stdout
    }

    /// `openssl x509 -fingerprint -sha256` of a certificate file.
    pub fn openssl_fingerprint(&self, cert: &DataSource) -> [u8; 32] {
        let out = self.sh(&format!(
            "openssl x509 -in '{}' -outform der | openssl dgst -sha256 -binary",
            cert.describe()
        ));
        <[u8; 32]>::try_from(out.as_slice()).expect("32 bytes")
    }

    /// SHA-256 of the certificate's SubjectPublicKeyInfo, by openssl.
    pub fn openssl_spki_hash(&self, cert: &DataSource) -> [u8; 32] {
        let out = self.sh(&format!(
            "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary",
            cert.describe()
        ));
        <[u8; 32]>::try_from(out.as_slice()).expect("32 bytes")
    }
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a handshake between a client built by `build_client` and a server
/// config over in-memory buffers; the error is rustls' error as text.
pub fn handshake(
    client: &crate::client::ClientTls,
    server: &std::sync::Arc<rustls::ServerConfig>,
) -> Result<(rustls::ClientConnection, rustls::ServerConnection), String> {
    let name = client.sni.clone().unwrap_or_else(|| {
        rustls_pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())
    });
    let mut c = rustls::ClientConnection::new(std::sync::Arc::clone(&client.config), name)
        .map_err(|e| e.to_string())?;
    let mut s =
        rustls::ServerConnection::new(std::sync::Arc::clone(server)).map_err(|e| e.to_string())?;
    for _ in 0..20 {
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).map_err(|e| e.to_string())?;
        }
        if !buf.is_empty() {
            s.read_tls(&mut buf.as_slice()).map_err(|e| e.to_string())?;
            s.process_new_packets()
                .map_err(|e| format!("server: {e:?}"))?;
        }
        let mut buf = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut buf).map_err(|e| e.to_string())?;
        }
        if !buf.is_empty() {
            c.read_tls(&mut buf.as_slice()).map_err(|e| e.to_string())?;
            c.process_new_packets()
                .map_err(|e| format!("client: {e:?}"))?;
        }
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok((c, s));
        }
    }
    Err("handshake did not finish".into())
}
