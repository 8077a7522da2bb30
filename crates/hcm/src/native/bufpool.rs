//! A per-worker free list of read buffers: a request borrows one while it
//! talks to its upstream and gives it back, so a busy connection does not
//! allocate per request and an idle one holds none (the design of nginx's
//! and HAProxy's buffer pools).

use std::cell::RefCell;

use bytes::BytesMut;

/// Size of a pooled buffer.
const SIZE: usize = 8192;
/// Buffers kept per worker thread.
const KEEP: usize = 256;

thread_local! {
    static FREE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least 8 KiB.
pub(crate) fn take() -> BytesMut {
    let mut b = FREE.with(|f| f.borrow_mut().pop()).unwrap_or_default();
    b.reserve(SIZE);
    b
}

/// Returns a buffer; oversized or shared ones are dropped.
pub(crate) fn give(mut b: BytesMut) {
    b.clear();
    if b.capacity() < SIZE || b.capacity() > 16 * SIZE {
        return;
    }
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() < KEEP {
            f.push(b);
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn reuses_buffers() {
        let a = super::take();
        let ptr = a.as_ptr();
        super::give(a);
        let b = super::take();
        assert_eq!(b.as_ptr(), ptr);
        assert!(b.is_empty() && b.capacity() >= super::SIZE);
    }
}
