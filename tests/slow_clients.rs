//! No slow client holds a worker (issue 15): file, reader and stream bodies are produced only
//! while the connection has room; a client that stops reading leaves every worker free.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use httpkit::{Body, Inline, Request, Response, ThreadPool};
use util::*;

/// The byte at offset `i` of every test file.
fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

/// A file of `len` pattern bytes in the target's scratch directory (on disk).
fn pattern_file(name: &str, len: u64) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("slow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let block: Vec<u8> = (0..251 * 4096).map(pattern).collect();
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
    path
}

/// Sends `GET path`, reads the head; returns the client and the announced length.
fn begin_download(addr: std::net::SocketAddr, path: &str) -> (Client, Option<u64>) {
    let mut c = Client::connect(addr);
    c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    let head = read_raw_head(&mut c.stream);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let len = head.lines().find_map(|l| l.strip_prefix("content-length: ")).map(|v| v.trim().parse().unwrap());
    (c, len)
}

/// Reads `len` bytes of body and checks each against the pattern, starting at `offset`.
fn read_pattern(c: &mut Client, offset: u64, len: u64) {
    let mut buf = vec![0u8; 1 << 20];
    let mut at = offset;
    while at < offset + len {
        let want = ((offset + len - at) as usize).min(buf.len());
        let n = c.stream.read(&mut buf[..want]).unwrap();
        assert!(n > 0, "the body ended early at {at}");
        for (k, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, pattern(at + k as u64), "byte {}", at + k as u64);
        }
        at += n as u64;
    }
}

fn serve_files(path: PathBuf) -> impl Fn(Request) -> Response + Send + Sync + 'static {
    move |req: Request| match req.uri() {
        "/big" => Response::ok(Body::from_path(&path).unwrap()),
        _ => Response::ok("small"),
    }
}

#[test]
fn a_slow_download_leaves_the_only_worker_free() {
    let len = 64 << 20;
    let path = pattern_file("one.bin", len);
    let pool = Arc::new(ThreadPool::builder().threads(1).build().unwrap());
    let s = start(serve_files(path), opts().worker_pool(pool.clone()));
    let (mut slow, announced) = begin_download(addr(&s), "/big");
    assert_eq!(announced, Some(len));
    // The slow client reads 64 KiB a second; meanwhile another client's requests are answered
    // by the one worker, which the download does not hold.
    let mut read = 0;
    for _ in 0..3 {
        read_pattern(&mut slow, read, 64 << 10);
        read += 64 << 10;
        wait_until("the worker to be free", || pool.active() == 0);
        let mut other = Client::connect(addr(&s));
        for _ in 0..3 {
            let r = other.get("/");
            assert_eq!((r.status, r.text().as_str()), (200, "small"));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    // Then the rest, whole and in order.
    read_pattern(&mut slow, read, len - read);
    let r = slow.get("/");
    assert_eq!(r.text(), "small", "the connection goes on after the file");
}

#[test]
fn eight_slow_downloads_with_four_workers_hold_none() {
    let len = 16 << 20;
    let path = pattern_file("eight.bin", len);
    let pool = Arc::new(ThreadPool::builder().threads(4).build().unwrap());
    let s = start(serve_files(path), opts().worker_pool(pool.clone()));
    let mut slow: Vec<Client> = (0..8).map(|_| begin_download(addr(&s), "/big").0).collect();
    for c in &mut slow {
        read_pattern(c, 0, 4096);
    }
    wait_until("every worker to be free", || pool.active() == 0);
    // Sampled while all eight stall: the pool stays idle, and answers others at once.
    let mut busy = 0;
    for _ in 0..20 {
        busy = busy.max(pool.active());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(busy, 0, "workers busy while every client stalls");
    let r = Client::connect(addr(&s)).get("/");
    assert_eq!(r.status, 200);
    let readers: Vec<_> =
        slow.into_iter().map(|mut c| std::thread::spawn(move || read_pattern(&mut c, 4096, len - 4096))).collect();
    for r in readers {
        r.join().unwrap();
    }
}

/// A stream of `n` 64 KiB chunks that counts how many were pulled and says when it is dropped.
fn counted_stream(n: usize, pulled: Arc<AtomicUsize>, dropped: Arc<AtomicBool>) -> Body {
    struct Chunks {
        left: usize,
        at: u64,
        pulled: Arc<AtomicUsize>,
        dropped: Arc<AtomicBool>,
    }
    impl Iterator for Chunks {
        type Item = Bytes;
        fn next(&mut self) -> Option<Bytes> {
            if self.left == 0 {
                return None;
            }
            self.left -= 1;
            self.pulled.fetch_add(1, Ordering::SeqCst);
            let b: Vec<u8> = (self.at..self.at + 65536).map(pattern).collect();
            self.at += 65536;
            Some(Bytes::from(b))
        }
    }
    impl Drop for Chunks {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }
    Body::stream(Chunks { left: n, at: 0, pulled, dropped })
}

/// Reads a chunked body of pattern bytes to its end; returns its length.
fn read_chunked_pattern(c: &mut Client) -> u64 {
    let mut at = 0u64;
    loop {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            c.stream.read_exact(&mut byte).unwrap();
            line.push(byte[0]);
        }
        let size = u64::from_str_radix(std::str::from_utf8(&line[..line.len() - 2]).unwrap(), 16).unwrap();
        let mut data = vec![0u8; size as usize + 2];
        c.stream.read_exact(&mut data).unwrap();
        if size == 0 {
            return at;
        }
        for b in &data[..size as usize] {
            assert_eq!(*b, pattern(at));
            at += 1;
        }
    }
}

#[test]
fn streams_are_pulled_only_while_the_connection_has_room() {
    for inline in [false, true] {
        let chunks = 2048; // 128 MiB
        let pulled = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicBool::new(false));
        let (p, d) = (pulled.clone(), dropped.clone());
        let pool = Arc::new(ThreadPool::builder().threads(1).build().unwrap());
        let o = opts().write_buffer(256 << 10);
        let o = if inline { o.worker_pool(Inline) } else { o.worker_pool(pool.clone()) };
        let s = start(
            move |req: Request| match req.uri() {
                "/stream" => Response::ok(counted_stream(chunks, p.clone(), d.clone())),
                _ => Response::ok("small"),
            },
            o,
        );
        let (mut slow, _) = begin_download(addr(&s), "/stream");
        // The client reads nothing: pulling stops once the write buffer and the sockets'
        // buffers are full, far short of the whole stream.
        wait_until("the stream to start", || pulled.load(Ordering::SeqCst) > 0);
        let mut last = 0;
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let now = pulled.load(Ordering::SeqCst);
            if now == last {
                break;
            }
            last = now;
        }
        assert!(
            last < chunks / 4,
            "{last} of {chunks} chunks pulled for a client that reads nothing (inline {inline})"
        );
        if !inline {
            assert_eq!(pool.active(), 0, "a worker waits for the slow client");
        }
        let r = Client::connect(addr(&s)).get("/");
        assert_eq!(r.status, 200);
        // Read whole, in order; the stream is dropped at its end.
        assert_eq!(read_chunked_pattern(&mut slow), chunks as u64 * 65536);
        assert_eq!(pulled.load(Ordering::SeqCst), chunks);
        wait_until("the stream to be dropped", || dropped.load(Ordering::SeqCst));
    }
}

#[test]
fn a_client_gone_mid_stream_frees_the_body() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicBool::new(false));
    let (p, d) = (pulled.clone(), dropped.clone());
    let s = start(move |_req: Request| Response::ok(counted_stream(1 << 20, p.clone(), d.clone())), opts());
    let (mut c, _) = begin_download(addr(&s), "/");
    let mut buf = vec![0u8; 65536];
    c.stream.read_exact(&mut buf).unwrap();
    wait_until("pulling to stop", || {
        let a = pulled.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
        a == pulled.load(Ordering::SeqCst)
    });
    assert!(!dropped.load(Ordering::SeqCst));
    drop(c);
    // The parked rest of the body is dropped with the connection (no cycle keeps it).
    wait_until("the stream to be dropped", || dropped.load(Ordering::SeqCst));
    wait_until("the connection to close", || s.stats().connections_open == 0);
}

#[test]
fn reader_bodies_and_head_requests() {
    struct Pattern {
        at: u64,
        len: u64,
    }
    impl Read for Pattern {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = (self.len - self.at).min(buf.len() as u64).min(10_000) as usize;
            for (k, b) in buf[..n].iter_mut().enumerate() {
                *b = pattern(self.at + k as u64);
            }
            self.at += n as u64;
            Ok(n)
        }
    }
    let len = 24 << 20;
    let file = pattern_file("head.bin", 3 << 20);
    let pool = Arc::new(ThreadPool::builder().threads(1).build().unwrap());
    let s = start(
        move |req: Request| match req.uri() {
            "/file" => Response::ok(Body::from_path(&file).unwrap()),
            _ => Response::ok(Body::reader(Pattern { at: 0, len })),
        },
        opts().worker_pool(pool.clone()),
    );
    let (mut c, _) = begin_download(addr(&s), "/reader");
    std::thread::sleep(Duration::from_millis(300));
    wait_until("the worker to be free", || pool.active() == 0);
    assert_eq!(read_chunked_pattern(&mut c), len);
    // HEAD: the length, no body, and the connection goes on.
    c.send(b"HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response_to(true).unwrap();
    assert_eq!((r.status, r.header("content-length"), r.body.len()), (200, Some("3145728"), 0));
    c.send(b"HEAD /reader HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response_to(true).unwrap();
    assert_eq!((r.status, r.body.len()), (200, 0));
    let r = c.get("/file");
    assert_eq!(r.body.len(), 3 << 20);
    assert!(r.body.iter().enumerate().all(|(i, b)| *b == pattern(i as u64)));
}

#[test]
fn pipelined_bodies_each_wait_for_room_and_all_arrive() {
    // Two safe requests answered at once, each with a body far larger than the write buffer:
    // both park on the one connection, and both resume.
    let s = start(
        |_req: Request| {
            let chunks =
                (0..32u64).map(|k| Bytes::from((k * 65536..(k + 1) * 65536).map(pattern).collect::<Vec<u8>>()));
            Response::ok(Body::stream(chunks))
        },
        opts().write_buffer(64 << 10),
    );
    let mut c = Client::connect(addr(&s));
    c.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n");
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        assert!(read_raw_head(&mut c.stream).starts_with("HTTP/1.1 200"));
        assert_eq!(read_chunked_pattern(&mut c), 32 * 65536);
    }
}
