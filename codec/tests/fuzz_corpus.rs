//! Replays the committed fuzz seeds and past crash inputs on stable, so CI covers them without
//! cargo-fuzz. Each input is fed whole and one byte at a time; nothing may panic.

#![allow(clippy::panic)]

use std::path::Path;

use httpkit_codec::h1::{Limits, RequestDecoder};
use httpkit_codec::proxy::{parse, starts_like_proxy};
use httpkit_codec::ws::FrameDecoder;

/// The fuzz targets' own oracles (whole feed against a split feed), run here on every seed.
mod oracle {
    pub mod h1 {
        include!("../fuzz/oracle/h1_request.rs");
    }
    pub mod ws {
        include!("../fuzz/oracle/ws_frame.rs");
    }
    pub mod proxy {
        include!("../fuzz/oracle/proxy.rs");
    }
}

fn inputs(dir: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(dir);
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.map(|e| e.path()).unwrap_or_default();
        if let Ok(b) = std::fs::read(&p) {
            out.push(b);
        }
    }
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

/// Feeds `pieces` as the reactor would; `step` decodes from the buffer and returns how many
/// bytes it consumed (`None` to stop: need more, or an error).
fn drive(pieces: &[&[u8]], mut step: impl FnMut(&[u8]) -> Option<usize>) {
    let mut buf = Vec::new();
    for p in pieces {
        buf.extend_from_slice(p);
        while let Some(n) = step(&buf) {
            buf.drain(..n);
        }
    }
}

fn drive_h1(pieces: &[&[u8]]) {
    let mut d = RequestDecoder::new(Limits { max_line: 256, max_header_bytes: 1024, max_headers: 16, max_body: 4096 });
    drive(pieces, |buf| match d.decode(buf) {
        Ok((0, None)) | Err(_) => None,
        Ok((n, _)) => Some(n),
    });
}

fn drive_ws(pieces: &[&[u8]]) {
    let mut d = FrameDecoder::new(4096);
    drive(pieces, |buf| match d.decode(buf) {
        Ok((0, None)) | Err(_) => None,
        Ok((n, _)) => Some(n),
    });
}

/// The reactor's order (`decode_proxy` in reactor/src/conn.rs): the PROXY header first (none when
/// the bytes do not start like one), then HTTP/1.1 on the bytes after it.
fn drive_proxy_h1(pieces: &[&[u8]]) {
    let mut proxy_pending = true;
    let mut d = RequestDecoder::new(Limits { max_line: 256, max_header_bytes: 1024, max_headers: 16, max_body: 4096 });
    drive(pieces, |buf| {
        if proxy_pending {
            return match starts_like_proxy(buf) {
                None => None,
                Some(false) => {
                    proxy_pending = false;
                    Some(0)
                }
                Some(true) => match parse(buf) {
                    Ok(Some((n, _))) => {
                        proxy_pending = false;
                        Some(n)
                    }
                    Ok(None) | Err(_) => None,
                },
            };
        }
        match d.decode(buf) {
            Ok((0, None)) | Err(_) => None,
            Ok((n, _)) => Some(n),
        }
    });
}

#[test]
fn h1_request_seeds_and_crashes_replay() {
    for input in inputs("h1_request") {
        oracle::h1::check(&input);
        let data = input.get(1..).unwrap_or(&[]);
        drive_h1(&[data]);
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        drive_h1(&bytes);
    }
}

#[test]
fn ws_frame_seeds_replay() {
    for input in inputs("ws_frame") {
        oracle::ws::check(&input);
        let data = input.get(1..).unwrap_or(&[]);
        drive_ws(&[data]);
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        drive_ws(&bytes);
    }
}

#[test]
fn proxy_seeds_replay() {
    for input in inputs("proxy") {
        // No control byte: the oracle itself tries every split by growing the input.
        oracle::proxy::check(&input);
        let data = input.as_slice();
        drive_proxy_h1(&[data]);
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        drive_proxy_h1(&bytes);
    }
}
