//! Regression tests for races and hangs found in review, each over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use httpkit::{as_channel, Body, ChannelHandlers, Request, Response};
use util::*;

type Log = Arc<Mutex<Vec<String>>>;

fn recording(log: &Log) -> ChannelHandlers {
    let (a, b) = (log.clone(), log.clone());
    ChannelHandlers::new()
        .on_open(move |_ch| a.lock().unwrap().push("open".into()))
        .on_close(move |_ch, st| b.lock().unwrap().push(format!("close {:?}", st.kind())))
}

#[test]
fn client_gone_before_as_channel_gets_on_close_and_no_on_open() {
    let log: Log = Arc::default();
    let l = log.clone();
    let s = start(
        move |req: Request| {
            // The client leaves before the handler gets to as_channel.
            wait_until("the server noticed the client left", || req.client_closed());
            as_channel(&req, recording(&l))
        },
        opts(),
    );
    let mut c = Client::connect(addr(&s));
    c.send(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n");
    thread::sleep(Duration::from_millis(20));
    drop(c);
    wait_until("on_close", || log.lock().unwrap().iter().any(|l| l == "close ClientClose"));
    thread::sleep(Duration::from_millis(100));
    assert_eq!(*log.lock().unwrap(), vec!["close ClientClose".to_owned()]);
}

#[test]
fn long_poll_after_connection_close_request_still_notices_the_client_leaving() {
    let log: Log = Arc::default();
    let l = log.clone();
    let s = start(move |req: Request| as_channel(&req, recording(&l)), opts());
    let mut c = Client::connect(addr(&s));
    c.send(b"GET /poll HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    wait_until("open", || log.lock().unwrap().iter().any(|l| l == "open"));
    drop(c);
    wait_until("on_close(ClientClose)", || log.lock().unwrap().iter().any(|l| l == "close ClientClose"));
    wait_until("connection reaped", || s.connections_open() == 0);
}

#[test]
fn a_channel_beaten_by_an_ordinary_response_is_closed() {
    let log: Log = Arc::default();
    let l = log.clone();
    let s = start(
        move |req: Request| {
            let _ignored = as_channel(&req, recording(&l));
            Response::ok("ordinary")
        },
        opts(),
    );
    let mut c = Client::connect(addr(&s));
    assert_eq!(c.get("/").text(), "ordinary");
    wait_until("on_close", || log.lock().unwrap().iter().any(|l| l == "close ServerClose"));
    // The connection stays usable and the stale channel does not react to its EOF.
    assert_eq!(c.get("/").text(), "ordinary");
}

#[test]
fn websocket_closed_in_init_is_refused() {
    let s = start(
        |req: Request| {
            as_channel(
                &req,
                ChannelHandlers::new().init(|ch| {
                    ch.close();
                }),
            )
        },
        opts(),
    );
    let (_c, r) = ws_connect(addr(&s), "/", "");
    assert_eq!(r.status, 403);
}

#[test]
fn send_from_init_is_refused_before_the_handshake() {
    let sent = Arc::new(Mutex::new(None));
    let s2 = sent.clone();
    let s = start(
        move |req: Request| {
            let s3 = s2.clone();
            as_channel(&req, ChannelHandlers::new().init(move |ch| *s3.lock().unwrap() = Some(ch.send("too early"))))
        },
        opts(),
    );
    let (_c, r) = ws_connect(addr(&s), "/", "");
    assert_eq!(r.status, 101);
    assert_eq!(*sent.lock().unwrap(), Some(false));
}

#[test]
fn a_panicking_body_stream_aborts_that_response_only() {
    let s = start(
        |req: Request| {
            if req.path() == "/bad" {
                let mut n = 0;
                return Response::ok(Body::stream(std::iter::from_fn(move || {
                    n += 1;
                    if n == 2 {
                        panic!("stream broke");
                    }
                    Some("first")
                })));
            }
            Response::ok("fine")
        },
        opts().error_logger(|_| {}),
    );
    let mut c = Client::connect(addr(&s));
    c.send(b"GET /bad HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(c.read_response().is_err(), "incomplete chunked body, then the connection closes");
    assert_eq!(request(addr(&s), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").text(), "fine");
}

#[test]
fn upgrade_request_from_a_client_that_left_leaves_no_connection_behind() {
    let s = start(
        |req: Request| {
            thread::sleep(Duration::from_millis(200));
            as_channel(&req, ChannelHandlers::new())
        },
        opts(),
    );
    let (c, _) = {
        let mut c = Client::connect(addr(&s));
        c.send(
            b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
        (c, ())
    };
    drop(c);
    wait_until("connection reaped", || s.connections_open() == 0);
}

#[test]
fn websocket_refused_in_init_never_opens() {
    let log: Log = Arc::default();
    let l = log.clone();
    let s = start(
        move |req: Request| {
            as_channel(
                &req,
                recording(&l).init(|ch| {
                    ch.close();
                }),
            )
        },
        opts(),
    );
    let (_c, r) = ws_connect(addr(&s), "/", "");
    assert_eq!(r.status, 403);
    wait_until("on_close", || log.lock().unwrap().iter().any(|l| l.starts_with("close")));
    thread::sleep(Duration::from_millis(50));
    assert!(!log.lock().unwrap().iter().any(|l| l == "open"), "{:?}", log.lock().unwrap());
}

#[test]
fn frames_sent_while_the_101_waits_behind_a_pipelined_response_are_kept() {
    let gate = Arc::new(std::sync::Barrier::new(2));
    let g = gate.clone();
    let s = start(
        move |req: Request| {
            if req.path() == "/slow" {
                g.wait();
                return Response::ok("slow");
            }
            as_channel(
                &req,
                ChannelHandlers::new().on_open(|ch| {
                    assert!(ch.send("hello"));
                }),
            )
        },
        opts(),
    );
    let mut c = Client::connect(addr(&s));
    c.send(
        b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    // Let on_open run (and send) while the first response is still pending.
    thread::sleep(Duration::from_millis(100));
    gate.wait();
    assert_eq!(c.read_response().unwrap().text(), "slow");
    assert_eq!(c.read_response_to(true).unwrap().status, 101);
    assert_eq!(c.read_frame().unwrap(), (true, 0x1, b"hello".to_vec()));
}

/// Answers written by workers themselves (direct writes) to a client that does not read: the
/// socket fills, the rest of each answer goes through the reactor, and every byte arrives in
/// order once the client reads.
#[test]
fn direct_writes_to_a_client_that_does_not_read_lose_nothing() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let served = Arc::new(AtomicUsize::new(0));
    let s2 = served.clone();
    let s = start(
        move |req: Request| {
            let i: u8 = req.path()[1..].parse().unwrap();
            s2.fetch_add(1, Ordering::SeqCst);
            Response::ok(vec![b'a' + i % 26; 60_000])
        },
        // Room for everything the client does not read yet (beyond it, reading would pause).
        opts().write_buffer(64 << 20),
    );
    let mut c = Client::connect(addr(&s));
    // A fixed receive buffer (no autotuning): the server's socket fills after a few MiB.
    socket2::SockRef::from(&c.stream).set_recv_buffer_size(65536).unwrap();
    let n = 120usize;
    for i in 0..n {
        c.send(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        wait_until("handler ran", || served.load(Ordering::SeqCst) == i + 1);
    }
    for i in 0..n {
        let r = c.read_response().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), 60_000, "answer {i}");
        assert!(r.body.iter().all(|&b| b == b'a' + (i % 26) as u8), "answer {i} intact");
    }
}
