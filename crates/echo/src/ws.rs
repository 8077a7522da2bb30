//! A small RFC 6455 WebSocket echo: the handshake, then every data frame is
//! sent back with its opcode and FIN bit (so fragmented messages come back
//! fragmented the same way), pings are answered with pongs, and a close is
//! answered with the same status code.

use crate::EchoBody;
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use nuncio_websocket::accept_key;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest frame payload accepted (close 1009 beyond).
const MAX_FRAME: u64 = 16 * 1024 * 1024;

/// Whether `req` asks for a WebSocket upgrade.
pub fn is_upgrade<B>(req: &Request<B>) -> bool {
    nuncio_websocket::is_h1_websocket(req)
}

/// Answers the handshake and spawns the echo loop.
pub fn accept(req: &mut Request<Incoming>) -> Response<EchoBody> {
    let Some(key) = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| k.as_bytes().to_vec())
    else {
        let mut r = Response::new(EchoBody::new(
            Bytes::from_static(b"missing Sec-WebSocket-Key\n"),
            None,
        ));
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return r;
    };
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => {
                if let Err(e) = echo(TokioIo::new(up)).await {
                    tracing::debug!(error = %e, "websocket echo ended");
                }
            }
            Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
        }
    });
    let mut r = Response::new(EchoBody::new(Bytes::new(), None));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept_key(&key)) {
        h.insert("sec-websocket-accept", v);
    }
    r
}

async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    loop {
        if s.read_exact(&mut head).await.is_err() {
            return Ok(());
        }
        let fin_op = head[0];
        let opcode = fin_op & 0x0f;
        let masked = head[1] & 0x80 != 0;
        let mut len = u64::from(head[1] & 0x7f);
        if len == 126 {
            len = u64::from(s.read_u16().await?);
        } else if len == 127 {
            len = s.read_u64().await?;
        }
        if !masked {
            return close(&mut s, 1002).await;
        }
        if len > MAX_FRAME {
            return close(&mut s, 1009).await;
        }
        let mut mask = [0u8; 4];
        s.read_exact(&mut mask).await?;
        let mut payload = vec![0u8; len as usize];
        s.read_exact(&mut payload).await?;
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        match opcode {
            0x8 => {
                // Close: answer with the same code, then end.
                let code = if payload.len() >= 2 {
                    u16::from_be_bytes([payload[0], payload[1]])
                } else {
                    1000
                };
                let _ = close(&mut s, code).await;
                return Ok(());
            }
            0x9 => write_frame(&mut s, 0x80 | 0xA, &payload).await?,
            0xA => {}
            0x0..=0x2 => write_frame(&mut s, fin_op & 0x8f, &payload).await?,
            _ => return close(&mut s, 1002).await,
        }
    }
}

async fn close<S: tokio::io::AsyncWrite + Unpin>(s: &mut S, code: u16) -> std::io::Result<()> {
    write_frame(s, 0x88, &code.to_be_bytes()).await?;
    s.shutdown().await
}

async fn write_frame<S: tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    first: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(10);
    head.push(first);
    match payload.len() {
        n if n < 126 => head.push(n as u8),
        n if n <= 0xffff => {
            head.push(126);
            head.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            head.push(127);
            head.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    s.write_all(&head).await?;
    s.write_all(payload).await?;
    s.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn echoes_frames_and_close() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        tokio::spawn(echo(server));
        // Masked text frame "hi".
        let mask = [1u8, 2, 3, 4];
        let mut f = vec![0x81, 0x80 | 2];
        f.extend_from_slice(&mask);
        f.extend(b"hi".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        client.write_all(&f).await.unwrap();
        let mut got = [0u8; 4];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [0x81, 2, b'h', b'i']);
        // Close 4001.
        let mut f = vec![0x88, 0x80 | 2];
        f.extend_from_slice(&mask);
        f.extend([0x0f ^ 1, 0xa1 ^ 2]);
        client.write_all(&f).await.unwrap();
        let mut got = [0u8; 4];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [0x88, 2, 0x0f, 0xa1]);
    }
}
