//! The HTTP/1.1 request path: bytes in through a real connection manager
//! (native and hyper engines) to a fake upstream. Seeds:
//! fuzz/corpus/http1_request.
#![no_main]

use std::sync::OnceLock;

static HARNESS: OnceLock<nuncio_fuzzing::Http1Harness> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    HARNESS
        .get_or_init(nuncio_fuzzing::Http1Harness::new)
        .run(data)
});
