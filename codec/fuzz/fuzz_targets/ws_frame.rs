#![no_main]
//! The fuzz oracle in ../oracle/ws_frame.rs (also replayed on stable by codec/tests/fuzz_corpus.rs)

use libfuzzer_sys::fuzz_target;

include!("../oracle/ws_frame.rs");

fuzz_target!(|data: &[u8]| check(data));
