//! Per-worker free lists of buffers: a request borrows a read buffer (and
//! a head buffer) while it is in flight and gives them back, so a busy
//! connection does not allocate per request and an idle one holds none
//! (the design of nginx's and HAProxy's buffer pools).
//!
//! Measured with `bash bench/profile.sh`: before the pool kept the
//! downstream buffer and reclaimed consumed space, every small GET paid
//! two 8 KiB allocations plus their frees (~900 instructions).

use std::cell::RefCell;

use bytes::BytesMut;

/// Size of a pooled read buffer.
const SIZE: usize = 8192;
/// Buffers kept per worker thread.
const KEEP: usize = 256;
/// Largest head buffer kept.
const HEAD_KEEP: usize = 16 * 1024;

thread_local! {
    static FREE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static HEADS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least 8 KiB.
pub(crate) fn take() -> BytesMut {
    let mut b = FREE.with(|f| f.borrow_mut().pop()).unwrap_or_default();
    b.reserve(SIZE);
    b
}

/// Returns a buffer. Space consumed by `advance` is reclaimed (no copy:
/// the buffer is empty); oversized or shared buffers are dropped.
pub(crate) fn give(mut b: BytesMut) {
    b.clear();
    // On an empty, uniquely owned buffer this only moves the start back.
    b.reserve(SIZE);
    if b.capacity() > 16 * SIZE {
        return;
    }
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() < KEEP {
            f.push(b);
        }
    });
}

/// An empty byte vector for writing a message head into.
pub(crate) fn take_head(size_hint: usize) -> Vec<u8> {
    let mut v = HEADS.with(|f| f.borrow_mut().pop()).unwrap_or_default();
    v.reserve(size_hint);
    v
}

/// Returns a head buffer (large ones are dropped).
pub(crate) fn give_head(mut v: Vec<u8>) {
    if v.capacity() > HEAD_KEEP {
        return;
    }
    v.clear();
    HEADS.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() < KEEP {
            f.push(v);
        }
    });
}

#[cfg(test)]
mod tests {
    use bytes::Buf;

    #[test]
    fn reuses_buffers() {
        let a = super::take();
        let ptr = a.as_ptr();
        super::give(a);
        let b = super::take();
        assert_eq!(b.as_ptr(), ptr);
        assert!(b.is_empty() && b.capacity() >= super::SIZE);
    }

    #[test]
    fn reclaims_consumed_space() {
        let mut a = super::take();
        let ptr = a.as_ptr();
        a.extend_from_slice(&[1; 5000]);
        a.advance(5000);
        super::give(a);
        let b = super::take();
        assert_eq!(b.as_ptr(), ptr, "same allocation, start moved back");
        assert!(b.capacity() >= super::SIZE);
    }

    #[test]
    fn reuses_head_buffers() {
        let mut a = super::take_head(300);
        a.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let ptr = a.as_ptr();
        super::give_head(a);
        let b = super::take_head(100);
        assert_eq!(b.as_ptr(), ptr);
        assert!(b.is_empty());
        super::give_head(Vec::with_capacity(super::HEAD_KEEP + 1));
        assert!(super::take_head(1).capacity() < super::HEAD_KEEP);
    }
}
