//! Admin `/certs`: every certificate the TLS contexts load, in Envoy's
//! JSON (`ca_cert` and `cert_chain` per context; serial number, SANs,
//! whole days until expiration, validity in RFC 3339 UTC).

use std::time::SystemTime;

use nuncio_config::Bootstrap;
use nuncio_filters::civil::{days_from_civil, Civil};
use nuncio_tls::certs::{contexts, CertInfo, CertTime};
use nuncio_tls::san::San;
use serde_json::{json, Value};

/// The `/certs` document for `b` at `now`.
pub(crate) fn json(b: &Bootstrap, now: SystemTime) -> Value {
    let now = Civil::of(now).epoch_seconds;
    let certificates: Vec<Value> = contexts(b)
        .iter()
        .map(|c| {
            json!({
                "ca_cert": c.ca.iter().map(|i| cert(i, now)).collect::<Vec<_>>(),
                "cert_chain": c.chain.iter().map(|i| cert(i, now)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "certificates": certificates })
}

fn epoch(t: &CertTime) -> i64 {
    days_from_civil(t.year, t.month, t.day) * 86_400
        + i64::from(t.hour * 3600 + t.minute * 60 + t.second)
}

fn rfc3339(t: &CertTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

fn cert(i: &CertInfo, now: i64) -> Value {
    let sans: Vec<Value> = i
        .sans
        .iter()
        .map(|s| match s {
            San::Dns(d) => json!({ "dns": d }),
            San::Uri(u) => json!({ "uri": u }),
            San::Email(e) => json!({ "email": e }),
            San::Ip(ip) => json!({ "ip_address": ip.to_string() }),
        })
        .collect();
    let mut v = json!({
        "path": i.path,
        "serial_number": i.serial,
        "subject_alt_names": sans,
    });
    if let (Some(from), Some(to)) = (&i.valid_from, &i.expiration) {
        v["days_until_expiration"] = json!(((epoch(to) - now).max(0) / 86_400).to_string());
        v["valid_from"] = json!(rfc3339(from));
        v["expiration_time"] = json!(rfc3339(to));
    }
    v
}
