//! A client connection's response heads (RFC 9113 section 8.3.2):
//! checks, interim (1xx) responses skipped, the head handed to the
//! stream's response handle.

use crate::frame::Reason;
use crate::hpack::Block;
use crate::request::{check_field, Malformed};
use crate::state::State;

/// Applies a response head received on stream `i`. `Err(())`: the head
/// was malformed and the stream is reset (the caller counts it).
pub(super) fn on_head(st: &mut State, i: usize, end_stream: bool, fields: Block) -> Result<(), ()> {
    if st.streams[i].reset.is_some() {
        return Ok(());
    }
    let checked = check(&fields).and_then(|head| {
        let interim = (100..200).contains(&head.status);
        if interim && end_stream {
            return Err(Malformed("interim response ends the stream"));
        }
        Ok((head, interim))
    });
    let (head, interim) = match checked {
        Ok(h) => h,
        Err(m) => {
            tracing::debug!(
                stream = st.streams[i].id,
                why = m.0,
                "malformed HTTP/2 response"
            );
            if let Some(c) = &st.stats {
                c.rx_messaging_error.inc();
            }
            st.reset_stream(i, Reason::PROTOCOL_ERROR);
            return Err(());
        }
    };
    if interim {
        // 100 Continue and friends: the final head follows.
        return Ok(());
    }
    let s = &mut st.streams[i];
    let no_body = s.head_request || head.status == 204 || head.status == 304;
    s.content_length = head.content_length.filter(|_| !no_body);
    if end_stream && s.content_length.is_some_and(|n| n > 0) {
        st.reset_stream(i, Reason::PROTOCOL_ERROR);
        return Err(());
    }
    let s = &mut st.streams[i];
    s.head_received = true;
    s.recv_end = end_stream;
    s.head = Some(fields);
    s.wake();
    Ok(())
}

/// What the checks learn of a head.
struct Head {
    status: u16,
    content_length: Option<u64>,
}

/// RFC 9113 8.3.2 and 8.2: `:status` first and alone among pseudo
/// fields, three digits; lowercase names; no connection-specific fields;
/// one content-length.
fn check(block: &Block) -> Result<Head, Malformed> {
    let mut fields = block.iter();
    let status = match fields.next() {
        Some((b":status", v)) => match status_code(v) {
            Some(101) => return Err(Malformed("101 in HTTP/2")),
            Some(s) => s,
            None => return Err(Malformed("invalid :status")),
        },
        _ => return Err(Malformed("no :status first")),
    };
    let mut content_length = None;
    for (n, v) in fields {
        if n.starts_with(b":") {
            return Err(Malformed("pseudo-header other than a first :status"));
        }
        check_field(n, v, &mut content_length)?;
    }
    Ok(Head {
        status,
        content_length,
    })
}

/// A three-digit status code, 100 to 999.
pub(crate) fn status_code(v: &[u8]) -> Option<u16> {
    match v {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}
