//! Frames written straight from the sending threads (the WebSocket's lent write side): many
//! threads sending at once to a client that reads late never interleave two frames' bytes, each
//! thread's frames keep their order, and nothing is lost when the socket takes only part of a
//! frame (the rest goes through the reactor, ahead of later frames). Both APIs share the path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use httpkit::{as_channel, ChannelHandlers, Request, SendError};
use util::*;

const THREADS: usize = 4;
const PER_THREAD: usize = 400;

/// Message `n` of thread `t`: a header line and a body whose size varies from a few bytes to
/// 40 KiB, so that some frames fill the socket buffer halfway through.
fn message(t: usize, n: usize) -> String {
    let size = [3, 100, 4000, 40_000, 17][n % 5];
    format!("{t} {n} {}", "x".repeat(size))
}

#[test]
fn concurrent_senders_never_interleave_or_reorder() {
    let finished = Arc::new(AtomicUsize::new(0));
    let done = finished.clone();
    let handlers = ChannelHandlers::new().on_open(move |ch| {
        for t in 0..THREADS {
            let ch = ch.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                for n in 0..PER_THREAD {
                    let mut msg = httpkit::Message::from(message(t, n));
                    // A full buffer (the client reads late) is retried: nothing may be lost.
                    loop {
                        match ch.try_send(msg, false) {
                            Ok(()) => break,
                            Err(SendError::Full(m)) => {
                                msg = m;
                                std::thread::sleep(Duration::from_millis(2));
                            }
                            Err(e) => panic!("send failed: {e}"),
                        }
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    let s = start(move |req: Request| as_channel(&req, handlers.clone()), opts().write_buffer(256 << 10));
    let (mut ws, _) = tungstenite::connect(format!("ws://{}/", addr(&s))).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    }
    // Read late: the socket's buffers fill, and senders meet partial writes.
    std::thread::sleep(Duration::from_millis(300));
    let mut next = [0usize; THREADS];
    for _ in 0..THREADS * PER_THREAD {
        let m = ws.read().expect("a well-formed frame");
        let text = m.into_text().unwrap();
        let mut parts = text.splitn(3, ' ');
        let t: usize = parts.next().unwrap().parse().unwrap();
        let n: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(n, next[t], "thread {t}'s frames in order");
        assert_eq!(text, message(t, n), "frame {t}/{n} whole");
        next[t] += 1;
    }
    assert_eq!(next, [PER_THREAD; THREADS]);
    wait_until("senders done", || finished.load(Ordering::SeqCst) == THREADS);
    // The connection still works both ways after all that.
    ws.send(tungstenite::Message::text("bye")).unwrap();
    ws.close(None).unwrap();
}
