//! A deterministic guard of the WebSocket path: heap allocations per echoed 32-byte text message
//! (reactor, callback queue and worker together, counted by an instrumented global allocator)
//! must not rise above the count measured when this guard was written. (Alone in its own test
//! binary: the allocator counts the whole process.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::alloc::System;
use std::io::{Read, Write};

use httpkit::{as_channel, ChannelHandlers, Request};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use util::*;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations per echo measured on 2026-12-01 (session 7): exactly 3.00, idle or busy (the
/// reactor's message buffer, the callback in the connection's queue, the reply's frame). 4.09
/// (idle) to 5.00 (busy) before the queue held its first callback in place and the pool job
/// that drains it lost its box; 6.00 before frames were sized exactly, when `Bytes::from` added
/// a shared header to each.
const BUDGET_PER_MESSAGE: f64 = 3.1;

#[test]
fn a_websocket_echo_allocates_no_more_than_it_did() {
    let handlers = ChannelHandlers::new().on_receive(|ch, m| {
        ch.send(m);
    });
    let s = start(move |req: Request| as_channel(&req, handlers.clone()), opts().thread(1));
    let (c, r) = ws_connect(addr(&s), "/", "");
    assert_eq!(r.status, 101);
    let payload = [b'x'; 32];
    let frame = client_frame(0x1, true, &payload);
    let mut stream = c.stream.try_clone().unwrap();
    let mut buf = [0u8; 34];
    let mut one = || {
        stream.write_all(&frame).unwrap();
        stream.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[..2], &[0x81, 32]);
    };
    for _ in 0..200 {
        one(); // warm up: thread-locals, buffers, the pool's threads
    }
    let n = 2000;
    let region = Region::new(GLOBAL);
    for _ in 0..n {
        one();
    }
    let stats = region.change();
    let per_message = stats.allocations as f64 / f64::from(n);
    eprintln!("allocations per WebSocket echo: {per_message:.2} ({stats:?})");
    assert!(
        per_message <= BUDGET_PER_MESSAGE,
        "{per_message:.2} allocations per message, more than the {BUDGET_PER_MESSAGE} measured before"
    );
    drop(c);
}
