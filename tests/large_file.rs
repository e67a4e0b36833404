//! A file body larger than 64 MiB is streamed with bounded memory. Alone in its own test binary:
//! it measures the process's resident memory, which other tests running beside it would disturb.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::io::{Read, Write};

use httpkit::{Body, Request, Response};
use util::*;

#[test]
fn large_file_is_streamed_with_bounded_memory() {
    let dir = std::env::temp_dir().join(format!("httpkit-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.bin");
    let len: u64 = 80 * 1024 * 1024;
    {
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(len).unwrap(); // sparse: zeros
        let mut f = f;
        use std::io::{Seek, SeekFrom};
        f.seek(SeekFrom::Start(len - 4)).unwrap();
        f.write_all(b"END!").unwrap();
    }
    // The default pool, then `Inline` (the handler on the reactor thread: the file is still
    // read off it, on the I/O threads, and only as the client reads).
    for inline in [false, true] {
        serve_slowly(&path, len, inline);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn serve_slowly(path: &std::path::Path, len: u64, inline: bool) {
    let p2 = path.to_owned();
    let o = if inline { opts().worker_pool(httpkit::Inline) } else { opts() };
    let s = start(move |_req: Request| Response::ok(Body::from_path(&p2).unwrap()), o);
    let before = rss_kib();
    let mut c = Client::connect(addr(&s));
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    // Read the head by hand, then the body slowly in pieces, sampling memory.
    let head = read_raw_head(&mut c.stream);
    assert!(head.contains(&format!("content-length: {len}")), "{head}");
    // A client that stalls first: the server must not read ahead.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut peak = rss_kib().saturating_sub(before);
    let mut got: u64 = 0;
    let mut buf = vec![0u8; 1 << 20];
    let mut tail = Vec::new();
    while got < len {
        let n = c.stream.read(&mut buf).unwrap();
        assert!(n > 0);
        got += n as u64;
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 8 {
            tail.drain(..tail.len() - 8);
        }
        peak = peak.max(rss_kib().saturating_sub(before));
    }
    assert_eq!(got, len);
    assert!(tail.ends_with(b"END!"));
    assert!(peak < 40 * 1024, "memory grew by {peak} KiB while serving an 80 MiB file (inline {inline})");
}
