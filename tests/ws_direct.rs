//! Frames written straight from the connection's own callbacks (the WebSocket's lent write
//! side) while other threads queue frames to the reactor, to a client that reads late: no two
//! frames' bytes ever interleave, each sender's frames keep their order, and nothing is lost
//! when the socket takes only part of a frame (the rest goes through the reactor, ahead of later
//! frames). Both APIs share the path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use httpkit::{as_channel, Channel, ChannelHandlers, Request, SendError};
use util::*;

/// Senders: threads 0 and 1 (queued), and 2: the channel's own callbacks (written directly).
const THREADS: usize = 2;
const PER_THREAD: usize = 400;
const GOS: usize = 100;
const PER_GO: usize = 4;

/// Message `n` of sender `t`: a header line and a body whose size varies from a few bytes to
/// 40 KiB, so that some frames fill the socket buffer halfway through.
fn message(t: usize, n: usize) -> String {
    let size = [3, 100, 4000, 40_000, 17][n % 5];
    format!("{t} {n} {}", "x".repeat(size))
}

/// Sends, retrying while the buffer is full (the client reads late): nothing may be lost.
fn send(ch: &Channel, text: String) {
    let mut msg = httpkit::Message::from(text);
    loop {
        match ch.try_send(msg, false) {
            Ok(()) => return,
            Err(SendError::Full(m)) => {
                msg = m;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("send failed: {e}"),
        }
    }
}

#[test]
fn direct_and_queued_senders_never_interleave_or_reorder() {
    let finished = Arc::new(AtomicUsize::new(0));
    let done = finished.clone();
    let replies: Arc<std::sync::Mutex<std::collections::HashMap<Channel, usize>>> = Arc::default();
    let handlers = ChannelHandlers::new()
        .on_open(move |ch| {
            for t in 0..THREADS {
                let ch = ch.clone();
                let done = done.clone();
                std::thread::spawn(move || {
                    for n in 0..PER_THREAD {
                        send(&ch, message(t, n));
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
        })
        .on_receive(move |ch, _go| {
            // The connection's own callback: its sends may be written from here.
            for _ in 0..PER_GO {
                let n = {
                    let mut r = replies.lock().unwrap();
                    let c = r.entry(ch.clone()).or_default();
                    *c += 1;
                    *c - 1
                };
                send(ch, message(THREADS, n));
            }
        });
    let s = start(move |req: Request| as_channel(&req, handlers.clone()), opts().write_buffer(256 << 10));
    // Three connections at once, each with its own senders: more partial writes to get wrong.
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let a = addr(&s);
            std::thread::spawn(move || one_client(a))
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    wait_until("senders done", || finished.load(Ordering::SeqCst) == 3 * THREADS);
}

fn one_client(addr: std::net::SocketAddr) {
    let (mut ws, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    }
    for _ in 0..GOS {
        ws.send(tungstenite::Message::text("go")).unwrap();
    }
    // Read late: the socket's buffers fill, and senders meet partial writes.
    std::thread::sleep(Duration::from_millis(300));
    let mut next = [0usize; THREADS + 1];
    for _ in 0..THREADS * PER_THREAD + GOS * PER_GO {
        let m = ws.read().expect("a well-formed frame");
        let text = m.into_text().unwrap();
        let mut parts = text.splitn(3, ' ');
        let t: usize = parts.next().unwrap().parse().unwrap();
        let n: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(n, next[t], "sender {t}'s frames in order");
        assert_eq!(text, message(t, n), "frame {t}/{n} whole");
        next[t] += 1;
    }
    assert_eq!(next, [PER_THREAD, PER_THREAD, GOS * PER_GO]);
    ws.close(None).unwrap();
}
