//! The config loader: YAML (or JSON) in, a config or a `ConfigError` out,
//! never a panic. Seeds: fuzz/corpus/config_load.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nuncio_fuzzing::config_load(data));
