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
fn app(req: Request) -> Response {
    match req.path() {
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
