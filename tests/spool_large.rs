//! A 1 GiB upload is spooled to a disk-backed directory with resident memory growing by less
//! than 64 MiB, and echoed back byte for byte by streaming. Alone in its own test binary: it
//! measures the process's resident memory, which other tests running beside it would disturb.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use httpkit::{Body, Request, Response};
use util::*;

const LEN: u64 = 1 << 30;
/// The body repeats this block (a length prime to the piece sizes).
const PERIOD: usize = 1_000_003;

fn block() -> Vec<u8> {
    // Twice the period, so any offset has a whole period of comparison bytes after it.
    (0..2 * PERIOD).map(|i| ((i % PERIOD) * 131 % 256) as u8).collect()
}

#[test]
fn a_gigabyte_upload_is_spooled_with_bounded_memory_and_echoed() {
    // The target directory is on disk (not tmpfs, whose pages would count as memory).
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("spool-large-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let s = start(
        |req: Request| {
            assert!(req.is_body_spooled());
            Response::ok(Body::reader(req.into_body_reader()))
        },
        opts().max_body(2 << 30).spool_dir(&dir),
    );
    let block = Arc::new(block());
    let before = rss_kib();
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(rss_kib().saturating_sub(before), Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })
    };
    let mut c = Client::connect(addr(&s));
    c.send(format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {LEN}\r\n\r\n").as_bytes());
    let mut w = c.stream.try_clone().unwrap();
    let b2 = block.clone();
    let writer = std::thread::spawn(move || {
        let mut at = 0u64;
        while at < LEN {
            let off = (at % PERIOD as u64) as usize;
            let n = ((LEN - at) as usize).min(PERIOD).min(1 << 20);
            w.write_all(&b2[off..off + n]).unwrap();
            at += n as u64;
        }
    });
    // The echo: a chunked body, checked against the pattern as it arrives.
    let head = read_raw_head(&mut c.stream);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut byte = [0u8; 1];
    let mut at = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let mut line = Vec::new();
        while !line.ends_with(b"\r\n") {
            c.stream.read_exact(&mut byte).unwrap();
            line.push(byte[0]);
        }
        let size = usize::from_str_radix(std::str::from_utf8(&line[..line.len() - 2]).unwrap(), 16).unwrap();
        if size == 0 {
            break;
        }
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len()).min(PERIOD);
            c.stream.read_exact(&mut buf[..n]).unwrap();
            let off = (at % PERIOD as u64) as usize;
            assert!(buf[..n] == block[off..off + n], "the echo differs near byte {at}");
            at += n as u64;
            left -= n;
        }
        c.stream.read_exact(&mut buf[..2]).unwrap();
    }
    writer.join().unwrap();
    done.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    assert_eq!(at, LEN, "the echo's length");
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak < 64 * 1024, "resident memory grew by {peak} KiB for a 1 GiB upload");
    eprintln!("1 GiB spooled and echoed; resident memory grew by at most {peak} KiB");
    let _ = std::fs::remove_dir_all(&dir);
}
