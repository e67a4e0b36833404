//! Large request bodies are spooled to disk as they arrive (issue 15 item 3): the handler runs
//! once the whole body is there and reads it like a file; a disk budget answers 503 past it; an
//! aborted upload's file is gone at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use httpkit::{Body, Options, Request, Response, ThreadPool};
use util::*;

fn spool_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("spool-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn spool_opts(dir: &std::path::Path) -> Options {
    opts().max_body(1 << 30).body_buffer_size(64 << 10).spool_dir(dir)
}

/// Open descriptors of this process whose file is in `dir`.
fn files_open_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|p| p.starts_with(dir))
        .count()
}

/// A handler that tells how the body arrived: spooled or not, its length and a checksum.
fn describe(req: Request) -> Response {
    let spooled = req.is_body_spooled();
    let len = req.content_length();
    let mut sum = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    let mut r = req.body_reader();
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        sum = buf[..n].iter().fold(sum, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)));
    }
    let whole = req.body().map_or(0, <[u8]>::len);
    Response::ok(format!("{spooled} {len} {sum} {whole}"))
}

fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)))
}

#[test]
fn bodies_above_the_threshold_go_to_disk_and_read_the_same() {
    let dir = spool_dir("same");
    let s = start(describe, spool_opts(&dir));
    let mut c = Client::connect(addr(&s));
    for len in [10usize, 64 << 10, (64 << 10) + 1, 300_000, 3 << 20] {
        let body: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
        c.send(format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n").as_bytes());
        c.send(&body);
        let r = c.read_response().unwrap();
        let spooled = len > 64 << 10;
        assert_eq!(r.text(), format!("{spooled} {len} {} {len}", checksum(&body)), "length {len}");
        // A chunked body is spooled once it grows past the threshold, pieces of any size.
        c.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
        for piece in body.chunks(10_000) {
            c.send(format!("{:x}\r\n", piece.len()).as_bytes());
            c.send(piece);
            c.send(b"\r\n");
        }
        c.send(b"0\r\n\r\n");
        let r = c.read_response().unwrap();
        assert_eq!(r.text(), format!("{spooled} {len} {} {len}", checksum(&body)), "chunked length {len}");
    }
    // Every file is gone with its request.
    wait_until("the spooled bytes to be released", || s.spooled_bytes() == 0);
    wait_until("the spool files to be closed", || files_open_in(&dir) == 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_handler_runs_once_the_whole_body_is_on_disk_and_workers_stay_free() {
    let dir = spool_dir("wait");
    let calls = Arc::new(AtomicUsize::new(0));
    let pool = Arc::new(ThreadPool::builder().threads(1).build().unwrap());
    let c2 = calls.clone();
    let s = start(
        move |req: Request| {
            c2.fetch_add(1, Ordering::SeqCst);
            describe(req)
        },
        spool_opts(&dir).worker_pool(pool.clone()),
    );
    let len = 8 << 20;
    let body: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
    let mut c = Client::connect(addr(&s));
    c.send(format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n").as_bytes());
    c.send(&body[..len - 1]);
    wait_until("the upload to be on disk", || s.spooled_bytes() == len as u64);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler ran before the body was complete");
    assert_eq!(pool.active(), 0, "a worker is held by the upload");
    // Others are served meanwhile by the one worker.
    assert_eq!(Client::connect(addr(&s)).get("/").text(), "false 0 0 0");
    c.send(&body[len - 1..]);
    let r = c.read_response().unwrap();
    assert_eq!(r.text(), format!("true {len} {} {len}", checksum(&body)));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_aborted_upload_leaves_no_file() {
    let dir = spool_dir("abort");
    let s = start(describe, spool_opts(&dir));
    let mut c = Client::connect(addr(&s));
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n");
    c.send(&vec![1u8; 4 << 20]);
    wait_until("the spool file to exist", || files_open_in(&dir) == 1);
    assert_eq!(s.spooled_bytes(), 100_000_000, "the announced length is reserved");
    drop(c);
    wait_until("the spool file to be gone", || files_open_in(&dir) == 0);
    wait_until("the reservation to be released", || s.spooled_bytes() == 0);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "a named file was left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_disk_budget_answers_503_and_413() {
    let dir = spool_dir("budget");
    let s = start(describe, spool_opts(&dir).spool_budget(3 << 20));
    // An upload in progress holds its announced length.
    let mut first = Client::connect(addr(&s));
    first.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n");
    first.send(&[1u8; 100_000]);
    wait_until("the first upload to reserve its length", || s.spooled_bytes() == 2_000_000);
    // Another that does not fit beside it: 503 before any `100 Continue`, the body never read
    // as a request.
    let mut c = Client::connect(addr(&s));
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n");
    let r = c.read_response().unwrap();
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")), "{}", r.text());
    assert!(c.is_closed_within(IO_TIMEOUT));
    // One larger than the whole budget: 413 (it would never fit).
    let mut c = Client::connect(addr(&s));
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(c.read_response().unwrap().status, 413);
    // A chunked body that outgrows what is left: 503 once it does.
    let mut c = Client::connect(addr(&s));
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    let piece = vec![5u8; 100_000];
    let mut sent = 0;
    while sent < 3 << 20 {
        if c.stream.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).is_err()
            || c.stream.write_all(&piece).is_err()
            || c.stream.write_all(b"\r\n").is_err()
        {
            break;
        }
        sent += piece.len();
    }
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    // The first upload goes away: its reservation with it; then a body within the budget is
    // served.
    drop(first);
    wait_until("the spooled bytes to be released", || s.spooled_bytes() == 0);
    let body = vec![9u8; 500_000];
    let mut c = Client::connect(addr(&s));
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n");
    c.send(&body);
    assert_eq!(c.read_response().unwrap().text(), format!("true 500000 {} 500000", checksum(&body)));
    wait_until("the spooled bytes to be released", || s.spooled_bytes() == 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_spooled_body_streams_back() {
    let dir = spool_dir("echo");
    let s = start(
        |req: Request| {
            let len = req.content_length() as u64;
            Response::ok(Body::reader(req.into_body_reader())).header("x-len", len.to_string())
        },
        spool_opts(&dir),
    );
    let len = 5 << 20;
    let body: Vec<u8> = (0..len).map(|i| (i % 249) as u8).collect();
    let mut c = Client::connect(addr(&s));
    c.send(format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\nExpect: 100-continue\r\n\r\n").as_bytes());
    let interim = c.read_response().unwrap();
    assert_eq!(interim.status, 100);
    c.send(&body);
    let r = c.read_response().unwrap();
    assert_eq!(r.header("x-len"), Some("5242880"));
    assert!(r.body == body, "the echo differs");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn with_the_inline_pool_a_spooled_request_is_served_on_the_reactor_thread() {
    // Never on the I/O thread that wrote its last piece (it must stay free for disk I/O).
    let dir = spool_dir("inline");
    let s = start(
        |req: Request| {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            Response::ok(format!("{} {name}", req.is_body_spooled()))
        },
        spool_opts(&dir).worker_pool(httpkit::Inline),
    );
    let (mut c, len) = (Client::connect(addr(&s)), 1 << 20);
    c.send(format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n").as_bytes());
    c.send(&vec![3u8; len]);
    let r = c.read_response().unwrap();
    assert!(r.text().starts_with("true httpkit-reactor"), "{}", r.text());
    let _ = std::fs::remove_dir_all(&dir);
}
