#![no_main]
//! The fuzz oracle in ../oracle/proxy.rs (also replayed on stable by codec/tests/fuzz_corpus.rs)

use libfuzzer_sys::fuzz_target;

include!("../oracle/proxy.rs");

fuzz_target!(|data: &[u8]| check(data));
