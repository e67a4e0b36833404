//! Deterministic guards that noise cannot hide: heap allocations per keep-alive `GET /`
//! (reactor and worker together, counted by an instrumented global allocator) must not rise
//! above the count measured when this guard was written. A regression shows here as a red test
//! long before a benchmark notices it. (Run alone in its own test binary: the allocator counts
//! the whole process.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::alloc::System;
use std::io::{Read, Write};
use std::net::TcpStream;

use httpkit::{Request, Response};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use util::*;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations per request (the seed's `hello`: one header set) measured on 2026-12-02: exactly
/// 4.00 (server side: the worker's request and exchange, the reactor's head parsing, the
/// header's value; the header map is one this thread used before; the client below allocates
/// nothing per request).
const BUDGET_PER_REQUEST: f64 = 4.1;

/// With the `Inline` pool, measured on 2026-12-02: exactly 3.00 (the request is served where it
/// was parsed, without a job: its exchange, the head and the header's value).
const INLINE_BUDGET_PER_REQUEST: f64 = 3.1;

#[test]
fn a_keep_alive_get_allocates_no_more_than_it_did() {
    // (One test: the allocator counts the whole process, so the two must not overlap.)
    for inline in [false, true] {
        let o = if inline { opts().worker_pool(httpkit::Inline) } else { opts().thread(1) };
        let budget = if inline { INLINE_BUDGET_PER_REQUEST } else { BUDGET_PER_REQUEST };
        let s = start(|_req: Request| Response::ok("hello HTTP!").header("content-type", "text/html"), o);
        let per_request = allocations_per_get(addr(&s));
        eprintln!("allocations per keep-alive GET (inline: {inline}): {per_request:.2}");
        assert!(
            per_request <= budget,
            "{per_request:.2} allocations per request (inline: {inline}), more than the {budget} measured before"
        );
    }
}

fn allocations_per_get(addr: std::net::SocketAddr) -> f64 {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut buf = [0u8; 4096];
    let mut one = |c: &mut TcpStream| {
        c.write_all(req).unwrap();
        let mut got = 0;
        // The answer ends with its 11-byte body.
        while !buf[..got].ends_with(b"hello HTTP!") {
            let n = c.read(&mut buf[got..]).unwrap();
            assert!(n > 0, "closed");
            got += n;
        }
    };
    for _ in 0..200 {
        one(&mut c); // warm up: thread-locals, buffers, the date cache
    }
    let n = 2000;
    let region = Region::new(GLOBAL);
    for _ in 0..n {
        one(&mut c);
    }
    let stats = region.change();
    eprintln!("{stats:?}");
    stats.allocations as f64 / f64::from(n)
}
