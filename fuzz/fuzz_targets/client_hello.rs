//! The TLS inspector's ClientHello parser: bytes in as the first bytes of
//! a connection, checked against invariants (every prefix answers "need
//! more" or the same, the SNI is in the input, the limit is on the
//! message, re-fragmenting a hello changes nothing). Seeds:
//! fuzz/corpus/client_hello.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nuncio_fuzzing::client_hello(data);
});
