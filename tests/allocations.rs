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

/// Allocations per request measured on 2026-11-30: exactly 3.00 (server side: the worker's request and
/// exchange, the reactor's head parsing; the client below allocates nothing per request).
const BUDGET_PER_REQUEST: f64 = 3.1;

#[test]
fn a_keep_alive_get_allocates_no_more_than_it_did() {
    let s = start(|_req: Request| Response::ok("hello HTTP!"), opts().thread(1));
    let mut c = TcpStream::connect(addr(&s)).unwrap();
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
    let per_request = stats.allocations as f64 / f64::from(n);
    eprintln!("allocations per keep-alive GET: {per_request:.2} ({stats:?})");
    assert!(
        per_request <= BUDGET_PER_REQUEST,
        "{per_request:.2} allocations per request, more than the {BUDGET_PER_REQUEST} measured before"
    );
}
