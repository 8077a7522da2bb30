//! The HTTP/2 server codec: frames (after the preface) in, over an
//! in-memory pipe, to an application that answers every request. Seeds:
//! fuzz/corpus/h2_frames.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nuncio_fuzzing::h2_frames(data);
});
