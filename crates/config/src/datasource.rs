//! `DataSource`: bytes given by file name, inline text, inline base64 bytes
//! or an environment variable (certificates, keys, CRLs).

use std::path::PathBuf;

use crate::decode::{Result, Val};

/// Where some bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// `filename`: read at load (relative paths are relative to the
    /// working directory, as in Envoy).
    File(PathBuf),
    /// `inline_string`.
    InlineString(String),
    /// `inline_bytes` (base64 in the config), decoded.
    InlineBytes(Vec<u8>),
    /// `environment_variable`, read when the config was decoded.
    EnvironmentVariable {
        /// The variable's name.
        name: String,
        /// Its value at load.
        value: String,
    },
}

impl DataSource {
    /// The bytes: the file's contents, or the inline value.
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        match self {
            DataSource::File(p) => std::fs::read(p),
            DataSource::InlineString(s) => Ok(s.as_bytes().to_vec()),
            DataSource::InlineBytes(b) => Ok(b.clone()),
            DataSource::EnvironmentVariable { value, .. } => Ok(value.as_bytes().to_vec()),
        }
    }

    /// How Envoy names the source in its messages: the path, or
    /// `<inline>` for everything else.
    pub fn describe(&self) -> String {
        match self {
            DataSource::File(p) => p.display().to_string(),
            _ => "<inline>".to_string(),
        }
    }

    /// Whether the bytes are written in the config itself (to redact
    /// private keys in `/config_dump`).
    pub fn is_inline(&self) -> bool {
        !matches!(self, DataSource::File(_))
    }
}

/// Decodes a `config.core.v3.DataSource`: exactly one of `filename`,
/// `inline_string`, `inline_bytes`, `environment_variable`.
pub(crate) fn decode_data_source(v: &Val) -> Result<DataSource> {
    let o = v.obj()?;
    let mut found = Vec::new();
    for k in [
        "filename",
        "inline_string",
        "inline_bytes",
        "environment_variable",
    ] {
        if let Some(x) = o.get(k) {
            found.push((k, x));
        }
    }
    o.finish_with(&["watched_directory"])?;
    let (kind, val) = match found.len() {
        1 => found.remove(0),
        0 => return Err(v.err(
            "a data source needs one of 'filename', 'inline_string', 'inline_bytes', 'environment_variable' (Envoy: field \"specifier\" is required)",
        )),
        _ => {
            let names: Vec<&str> = found.iter().map(|(k, _)| *k).collect();
            return Err(found[1].1.err(format!(
                "a data source takes one of 'filename', 'inline_string', 'inline_bytes', 'environment_variable'; got {}",
                names.join(" and ")
            )));
        }
    };
    Ok(match kind {
        "filename" => DataSource::File(PathBuf::from(val.non_empty_str()?)),
        "inline_string" => DataSource::InlineString(val.str()?),
        "inline_bytes" => {
            let s = val.str()?;
            DataSource::InlineBytes(
                base64_decode(&s).ok_or_else(|| val.err("inline_bytes must be base64"))?,
            )
        }
        _ => {
            let name = val.non_empty_str()?;
            let value = std::env::var(&name)
                .map_err(|_| val.err(format!("Environment variable doesn't exist: {name}")))?;
            DataSource::EnvironmentVariable { name, value }
        }
    })
}

/// Standard base64 (padding optional, as protobuf JSON accepts), also the
/// URL-safe alphabet; `None` on anything else.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let body = s.trim_end_matches('=');
    if s.len() - body.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in body.bytes() {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be padding zeros, and 6 lone bits cannot be a byte.
    if bits >= 6 || acc != 0 {
        return None;
    }
    Some(out)
}

/// Standard base64 with padding (the dump writes `inline_bytes` so).
pub(crate) fn base64_encode(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_str;

    fn ds(text: &str) -> Result<DataSource> {
        decode_str("t.yaml", text, decode_data_source)
    }

    #[test]
    fn base64_round_trip() {
        for s in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            assert_eq!(base64_decode(&base64_encode(s)).as_deref(), Some(s));
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_decode("Zm8").as_deref(), Some(&b"fo"[..]));
        assert_eq!(base64_decode("Zm9=x"), None);
        assert_eq!(base64_decode("Z"), None);
        assert_eq!(base64_decode("Zm9v===="), None);
    }

    #[test]
    fn forms() {
        assert_eq!(
            ds("filename: certs/a.pem").unwrap(),
            DataSource::File("certs/a.pem".into())
        );
        assert_eq!(
            ds("inline_string: abc").unwrap().read().unwrap(),
            b"abc".to_vec()
        );
        assert_eq!(
            ds("inlineBytes: YWJj").unwrap(),
            DataSource::InlineBytes(b"abc".to_vec())
        );
        assert_eq!(ds("inline_string: x").unwrap().describe(), "<inline>");
        let e = ds("{}").unwrap_err();
        assert!(e.message.contains("specifier"), "{e}");
        let e = ds("{filename: a, inline_string: b}").unwrap_err();
        assert!(e.message.contains("filename and inline_string"), "{e}");
        let e = ds("environment_variable: NUNCIO_TEST_SURELY_UNSET_VAR").unwrap_err();
        assert_eq!(
            e.message,
            "Environment variable doesn't exist: NUNCIO_TEST_SURELY_UNSET_VAR"
        );
        let e = ds("inline_bytes: '@@'").unwrap_err();
        assert!(e.message.contains("base64"), "{e}");
    }
}
