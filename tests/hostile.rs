//! Hostile and unlucky clients over real sockets: half-closes behind pipelined answers, unread
//! input at close, clients that read slower than they write, ping floods, idle sockets at the
//! connection cap. Each test failed before the fix it guards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use httpkit::{as_channel, websocket_response, Body, ChannelHandlers, Request, Response, WsListener};
use util::*;

/// The echo example's routes: `/stream` (three chunks, 20 ms apart), `/ws` (channel echo),
/// `/ring` (listener echo); both echoes ignore `send`'s result, as natural echo code does.
fn app(mut req: Request) -> Response {
    match req.path() {
        "/len" => Response::ok(req.take_body().map_or(0, |b| b.len()).to_string()),
        "/ring" => websocket_response(WsListener::new().on_message(|s, m| {
            let _ = s.send(m);
        })),
        "/ws" => as_channel(
            &req,
            ChannelHandlers::new().on_receive(|ch, msg| {
                ch.send(msg);
            }),
        ),
        "/stream" => Response::ok(Body::stream(["a", "b", "c"].into_iter().enumerate().map(|(i, s)| {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
            s
        }))),
        _ => Response::ok("hello"),
    }
}

/// Reads until EOF; a reset (instead of an orderly close) fails the test.
fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read failed after {} bytes ({:?}): {e}", out.len(), String::from_utf8_lossy(&out)),
        }
    }
}

const UPGRADE: &str = "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn answers_before_an_upgrade_survive_a_half_close(addr: SocketAddr, first: &str, ws_path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(format!("GET {first} HTTP/1.1\r\nHost: x\r\n\r\nGET {ws_path} HTTP/1.1\r\n{UPGRADE}").as_bytes())
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    String::from_utf8_lossy(&read_to_eof(&mut s)).into_owned()
}

#[test]
fn a_response_before_an_upgrade_is_whole_when_the_client_half_closes() {
    let s = start(app, opts());
    for ws_path in ["/ws", "/ring"] {
        for _ in 0..5 {
            let got = answers_before_an_upgrade_survive_a_half_close(addr(&s), "/stream", ws_path);
            assert!(got.starts_with("HTTP/1.1 200"), "{ws_path}: {got:?}");
            assert!(got.contains("1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n"), "{ws_path}: cut: {got:?}");
            let got = answers_before_an_upgrade_survive_a_half_close(addr(&s), "/", ws_path);
            assert!(got.starts_with("HTTP/1.1 200"), "{ws_path}: {got:?}");
            assert!(got.contains("\r\n\r\nhello"), "{ws_path}: {got:?}");
        }
    }
}

#[test]
fn unread_input_after_an_error_gets_a_lingering_close_not_a_reset() {
    let s = start(app, opts());
    for _ in 0..5 {
        let mut c = TcpStream::connect(addr(&s)).unwrap();
        let mut req = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'j', 100_000));
        c.write_all(&req).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let got = read_to_eof(&mut c);
        assert!(got.starts_with(b"HTTP/1.1 400"), "{:?}", String::from_utf8_lossy(&got));
    }
}

#[test]
fn unread_pipelined_requests_after_connection_close_get_a_lingering_close() {
    let s = start(app, opts());
    for _ in 0..5 {
        let mut c = TcpStream::connect(addr(&s)).unwrap();
        let mut req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec();
        while req.len() < 80_000 {
            req.extend_from_slice(b"GET /more HTTP/1.1\r\nHost: x\r\n\r\n");
        }
        c.write_all(&req).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let got = read_to_eof(&mut c);
        assert!(got.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&got));
        assert!(got.ends_with(b"hello"), "one answer, whole");
    }
}

/// A WebSocket client with a small receive buffer (a client that reads slower than it writes).
fn slow_reader_ws(addr: SocketAddr, path: &str) -> Client {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(64 * 1024).unwrap();
    sock.connect(&addr.into()).unwrap();
    let mut c = Client::from_stream(sock.into());
    c.send(format!("GET {path} HTTP/1.1\r\n{UPGRADE}").as_bytes());
    let r = c.read_response_to(true).unwrap();
    assert_eq!(r.status, 101);
    c
}

/// Writes `bytes` from another thread (the server may stop reading until we read).
fn write_in_background(c: &Client, bytes: Vec<u8>) -> std::thread::JoinHandle<()> {
    let mut w = c.stream.try_clone().unwrap();
    std::thread::spawn(move || w.write_all(&bytes).unwrap())
}

#[test]
fn a_message_behind_a_large_echo_is_echoed_and_the_ping_answered() {
    let s = start(app, opts().max_ws(16 << 20));
    for path in ["/ws", "/ring"] {
        let mut c = slow_reader_ws(addr(&s), path);
        let big = vec![7u8; 8 << 20];
        let mut out = client_frame(0x2, true, &big);
        out.extend(client_frame(0x1, true, b"small"));
        out.extend(client_frame(0x9, true, b"are you there"));
        let w = write_in_background(&c, out);
        std::thread::sleep(Duration::from_millis(300));
        let (mut got_big, mut got_small, mut got_pong) = (false, false, false);
        while !(got_big && got_small && got_pong) {
            let (fin, op, p) =
                c.read_frame().unwrap_or_else(|e| panic!("{path}: {e} after {got_big} {got_small} {got_pong}"));
            assert!(fin);
            match op {
                0x2 => {
                    assert_eq!(p.len(), big.len(), "{path}");
                    assert!(!got_small, "{path}: echoes in order");
                    got_big = true;
                }
                0x1 => {
                    assert_eq!(p, b"small", "{path}");
                    got_small = true;
                }
                0xA => {
                    assert_eq!(p, b"are you there", "{path}");
                    got_pong = true;
                }
                other => panic!("{path}: unexpected opcode {other}"),
            }
        }
        w.join().unwrap();
    }
}

#[test]
fn a_flood_of_small_messages_from_a_client_that_does_not_read_loses_no_echo() {
    let s = start(app, opts());
    for path in ["/ws", "/ring"] {
        let mut c = slow_reader_ws(addr(&s), path);
        let n = 3000;
        let mut out = Vec::new();
        for i in 0..n {
            let mut msg = format!("{i:06}").into_bytes();
            msg.resize(1024, b'.');
            out.extend(client_frame(0x2, true, &msg));
        }
        let w = write_in_background(&c, out);
        // Read nothing for a while: the server's write buffer fills up.
        std::thread::sleep(Duration::from_millis(500));
        for i in 0..n {
            let (_, op, p) = c.read_frame().unwrap_or_else(|e| panic!("{path}: echo {i} of {n} never came: {e}"));
            assert_eq!(op, 0x2);
            assert_eq!(&p[..6], format!("{i:06}").as_bytes(), "{path}: echoes in order, none lost");
        }
        w.join().unwrap();
    }
}

#[test]
fn a_ping_flood_behind_a_large_echo_gets_the_latest_ping_answered_without_growing_the_queue() {
    // A write buffer large enough that the server keeps reading pings while the echo waits for
    // a client that does not read: the pongs wait for the socket too.
    let s = start(app, opts().max_ws(16 << 20).write_buffer(64 << 20));
    for path in ["/ws", "/ring"] {
        let mut c = slow_reader_ws(addr(&s), path);
        let n = 20_000;
        // First the echo that the client does not read fills the socket...
        write_in_background(&c, client_frame(0x2, true, &vec![1u8; 4 << 20])).join().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        // ...then the pings: their pongs wait behind it.
        let mut out = Vec::new();
        for i in 0..n {
            out.extend(client_frame(0x9, true, format!("{i:08}").as_bytes()));
        }
        out.extend(client_frame(0x1, true, b"last"));
        let w = write_in_background(&c, out);
        std::thread::sleep(Duration::from_millis(500));
        let (mut pongs, mut last, mut big, mut text) = (0usize, String::new(), false, false);
        let want = format!("{:08}", n - 1);
        while !(big && text && last == want) {
            let (_, op, p) = c.read_frame().unwrap_or_else(|e| panic!("{path}: {e}; {pongs} pongs, last {last:?}"));
            match op {
                0xA => {
                    pongs += 1;
                    last = String::from_utf8(p).unwrap();
                }
                0x2 => big = true,
                0x1 => text = true,
                other => panic!("{path}: unexpected opcode {other}"),
            }
        }
        // Pongs waiting behind the echo replace each other: the queue does not grow with pings.
        assert!(pongs < n / 10, "{path}: {pongs} pongs queued for {n} pings");
        w.join().unwrap();
    }
}

fn recording_events() -> (httpkit::Options, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let events: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let e = events.clone();
    let o = opts().max_connections(20).idle_timeout(Duration::from_secs(300)).event_logger(move |ev| {
        e.lock().unwrap().push(ev.to_owned());
    });
    (o, events)
}

#[test]
fn at_the_connection_limit_the_longest_idle_keep_alive_connection_makes_room() {
    let (o, events) = recording_events();
    let s = start(app, o);
    let mut idle: Vec<Client> = (0..20).map(|_| Client::connect(addr(&s))).collect();
    for c in &mut idle {
        assert_eq!(c.get("/").status, 200);
    }
    wait_until("all 20 open", || s.connections_open() == 20);
    // A new client is served at once, not after the idle timeout (300 s here).
    let mut fresh = Client::connect(addr(&s));
    assert_eq!(fresh.get("/").status, 200);
    if test_reactors() == 1 {
        // The oldest idle connection was the one closed; the newest ones still work.
        assert!(idle[0].is_closed_within(IO_TIMEOUT), "the longest idle connection was closed");
        assert_eq!(idle[19].get("/").status, 200);
    } else {
        // Several reactors: the longest idle among those the reactors have seen go idle (one
        // may not have looked at its connections yet): one of the first ones, and only one.
        let closed = idle.iter_mut().map(|c| c.is_closed_within(Duration::from_millis(200))).collect::<Vec<_>>();
        assert_eq!(closed.iter().filter(|&&c| c).count(), 1, "one idle connection made room: {closed:?}");
    }
    assert!(events.lock().unwrap().iter().any(|e| e == httpkit::events::CONN_EVICTED));
}

#[test]
fn at_the_connection_limit_silent_sockets_make_room_but_requests_in_progress_do_not() {
    let (o, _events) = recording_events();
    let s = start(app, o);
    // Twenty sockets that connect and say nothing cost an attacker nothing: they make room.
    let _silent: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(addr(&s)).unwrap()).collect();
    wait_until("all 20 open", || s.connections_open() == 20);
    let mut fresh = Client::connect(addr(&s));
    assert_eq!(fresh.get("/").status, 200);
    drop(fresh);
    drop(_silent);
    wait_until("closed", || s.connections_open() == 0);

    // Twenty requests in progress (a head half sent) are never closed for a newcomer.
    let mut busy: Vec<Client> = (0..20).map(|_| Client::connect(addr(&s))).collect();
    for c in &mut busy {
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n");
    }
    wait_until("all 20 open", || s.connections_open() == 20);
    std::thread::sleep(Duration::from_millis(100));
    let mut waiting = Client::connect(addr(&s));
    waiting.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    waiting.stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut b = [0u8; 16];
    assert!(waiting.stream.read(&mut b).is_err(), "not served while every connection is mid-request");
    waiting.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    // One request completes: that connection is idle now, and the newcomer gets its place.
    busy[0].send(b"\r\n");
    assert_eq!(busy[0].read_response().unwrap().status, 200);
    assert_eq!(waiting.read_response().unwrap().status, 200);
    for c in &mut busy[1..] {
        c.send(b"\r\n");
        assert_eq!(c.read_response().unwrap().status, 200, "no request in progress was dropped");
    }
}

#[test]
fn a_body_trickling_below_the_minimum_rate_gets_a_408() {
    // One-second windows, at least 1000 B/s: ten bytes a second is progress, but too slow.
    let s = start(app, opts().body_read_timeout(Duration::from_secs(1)).min_body_rate(1000));
    let mut c = Client::connect(addr(&s));
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
    let mut w = c.stream.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        // Longer than the read timeout: without a minimum rate, no answer would come.
        for _ in 0..400 {
            if w.write_all(b"b").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 408);
    trickle.join().unwrap();
}

#[test]
fn past_the_buffer_budget_a_body_that_does_not_fit_gets_503_and_the_budget_frees_again() {
    // Bodies kept in memory (`body_buffer_size` off): spooled ones have their own budget.
    let s = start(app, opts().buffer_budget(4 << 20).max_body(16 << 20).body_buffer_size(usize::MAX));
    let head = |n: usize| format!("POST /len HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\n\r\n");
    // A sends most of a 3 MiB body and stalls: the server holds it.
    let mut a = Client::connect(addr(&s));
    a.send(head(3 << 20).as_bytes());
    a.send(&vec![b'a'; (5 << 20) / 2]);
    wait_until("A's body is held", || s.buffered_bytes() >= 2 << 20);
    // B's 3 MiB would not fit: 503 at its head, before it sends a byte of its body.
    let mut b = Client::connect(addr(&s));
    b.send(head(3 << 20).as_bytes());
    let r = b.read_response().unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(b.is_closed_within(IO_TIMEOUT), "the refused body is never parsed as a request");
    // A is not hurt, and once it is answered the budget is free again.
    a.send(&vec![b'a'; (3 << 20) - (5 << 20) / 2]);
    assert_eq!(a.read_response().unwrap().text(), (3 << 20).to_string());
    wait_until("the budget frees", || s.buffered_bytes() < 1 << 20);
    let mut c = Client::connect(addr(&s));
    c.send(head(3 << 20).as_bytes());
    c.send(&vec![b'c'; 3 << 20]);
    assert_eq!(c.read_response().unwrap().text(), (3 << 20).to_string());
}

#[test]
fn a_channel_closed_while_its_callbacks_wait_for_room_still_runs_on_close() {
    let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let c2 = closed.clone();
    let handlers = ChannelHandlers::new()
        .on_receive(|ch, _msg| {
            // More than the write buffer holds: the second send is refused, so the app closes.
            for _ in 0..2 {
                if !ch.send(httpkit::Message::Binary(vec![0u8; 16 << 20].into())) {
                    ch.close_with(1013, "client too slow").unwrap();
                }
            }
        })
        .on_close(move |_ch, _st| c2.store(true, std::sync::atomic::Ordering::SeqCst));
    let s = start(move |req: Request| as_channel(&req, handlers.clone()), opts());
    let mut c = slow_reader_ws(addr(&s), "/ws");
    c.send(&client_frame(0x1, true, b"go"));
    std::thread::sleep(Duration::from_millis(300));
    drop(c);
    wait_until("on_close ran", || closed.load(std::sync::atomic::Ordering::SeqCst));
}

#[test]
fn a_body_refused_for_the_budget_gets_no_100_continue_first() {
    let s = start(app, opts().buffer_budget(1 << 20).max_body(16 << 20).body_buffer_size(usize::MAX));
    let expect =
        |n: usize| format!("POST /len HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\nExpect: 100-continue\r\n\r\n");
    // Larger than the whole budget: 413, never 100 Continue.
    let mut c = Client::connect(addr(&s));
    c.send(expect(2 << 20).as_bytes());
    assert_eq!(c.read_response().unwrap().status, 413);
    // Within the budget: 100 Continue, then the answer.
    let mut c = Client::connect(addr(&s));
    c.send(expect(1000).as_bytes());
    assert_eq!(c.read_response().unwrap().status, 100);
    c.send(&[b'x'; 1000]);
    assert_eq!(c.read_response().unwrap().text(), "1000");
}
