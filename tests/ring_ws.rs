//! The Ring-style WebSocket listener API over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use httpkit::{websocket_response, Message, Request, Response, Socket, WebSocketListener, WsListener};
use util::*;

type Log = Arc<Mutex<Vec<String>>>;

fn has(log: &Log, what: &str) -> bool {
    log.lock().unwrap().iter().any(|l| l.contains(what))
}

fn recording(log: &Log) -> WsListener {
    let (a, b, c, d, e) = (log.clone(), log.clone(), log.clone(), log.clone(), log.clone());
    WsListener::new()
        .on_open(move |s| a.lock().unwrap().push(format!("open {:?}", s.subprotocol())))
        .on_message(move |s, m| {
            b.lock().unwrap().push(format!("message {}", m.to_text()));
            match m.to_text().as_str() {
                "ping-me" => s.ping(b"foo").unwrap(),
                "close-me" => s.close(4000, "bye").unwrap(),
                "panic" => panic!("on_message failed"),
                "reader" => s.send(Response::ok(httpkit::Body::reader(std::io::Cursor::new(b"xyz".to_vec())))).unwrap(),
                _ => s.send(m).unwrap(),
            }
        })
        .on_pong(move |_s, d| c.lock().unwrap().push(format!("pong {}", String::from_utf8_lossy(&d))))
        .on_close(move |_s, code, reason| d.lock().unwrap().push(format!("close {code} {reason}")))
        .on_error(move |_s, err| e.lock().unwrap().push(format!("error {err}")))
}

fn server(log: &Log) -> httpkit::Server {
    let l = log.clone();
    start(
        move |req: Request| {
            if !req.is_websocket() {
                return Response::html("<h1>Main screen turn on.</h1>");
            }
            let protocol = req.websocket_protocols().first().map(|p| p.to_string());
            let r = websocket_response(recording(&l));
            match protocol {
                Some(p) => r.with_protocol(p),
                None => r,
            }
        },
        opts(),
    )
}

#[test]
fn callbacks_fire_with_their_arguments() {
    let log: Log = Arc::default();
    let s = server(&log);
    let (mut c, r) = ws_connect(addr(&s), "/", "Sec-WebSocket-Protocol: test\r\n");
    assert_eq!(r.header("sec-websocket-protocol"), Some("test"));
    wait_until("open", || has(&log, "open Some(\"test\")"));
    c.send(&client_frame(0x1, true, b"hello"));
    assert_eq!(c.read_frame().unwrap(), (true, 0x1, b"hello".to_vec()));
    c.send(&client_frame(0x1, true, b"ping-me"));
    assert_eq!(c.read_frame().unwrap(), (true, 0x9, b"foo".to_vec()));
    c.send(&client_frame(0xA, true, b"foo"));
    wait_until("pong", || has(&log, "pong foo"));
    let mut p = 1000u16.to_be_bytes().to_vec();
    p.extend_from_slice(b"normal closure");
    c.send(&client_frame(0x8, true, &p));
    assert_eq!(c.read_close().unwrap(), (Some(1000), "normal closure".to_owned()));
    wait_until("close", || has(&log, "close 1000 normal closure"));
}

#[test]
fn automatic_pong_without_on_ping() {
    let log: Log = Arc::default();
    let s = server(&log);
    let (mut c, _) = ws_connect(addr(&s), "/", "");
    c.send(&client_frame(0x9, true, b"are you there"));
    assert_eq!(c.read_frame().unwrap(), (true, 0xA, b"are you there".to_vec()));
}

#[test]
fn on_ping_replaces_the_automatic_pong() {
    let log: Log = Arc::default();
    let l = log.clone();
    let s = start(
        move |_req: Request| {
            let l = l.clone();
            websocket_response(WsListener::new().on_ping(move |s, d| {
                l.lock().unwrap().push("ping".into());
                s.pong(b"custom").unwrap();
                let _ = d;
            }))
        },
        opts(),
    );
    let (mut c, _) = ws_connect(addr(&s), "/", "");
    c.send(&client_frame(0x9, true, b"x"));
    assert_eq!(c.read_frame().unwrap(), (true, 0xA, b"custom".to_vec()));
    assert!(has(&log, "ping"));
}

#[test]
fn server_close_with_code_and_reason() {
    let log: Log = Arc::default();
    let s = server(&log);
    let (mut c, _) = ws_connect(addr(&s), "/", "");
    c.send(&client_frame(0x1, true, b"close-me"));
    assert_eq!(c.read_close().unwrap(), (Some(4000), "bye".to_owned()));
    c.send(&client_frame(0x8, true, &4000u16.to_be_bytes()));
    assert!(c.is_closed_within(Duration::from_secs(10)));
    wait_until("on_close", || has(&log, "close 4000 bye"));
}

#[test]
fn tungstenite_sees_close_4000_bye() {
    let log: Log = Arc::default();
    let s = server(&log);
    let (mut ws, _) = tungstenite::connect(format!("ws://{}/", addr(&s))).unwrap();
    ws.send(tungstenite::Message::text("close-me")).unwrap();
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(Some(f))) => {
                assert_eq!((u16::from(f.code), &*f.reason), (4000, "bye"));
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn on_error_fires_on_a_protocol_error() {
    let log: Log = Arc::default();
    let s = server(&log);
    let (mut c, _) = ws_connect(addr(&s), "/", "");
    c.send(&[0x81, 0x01, b'x']); // unmasked client frame
    assert_eq!(c.read_close().unwrap().0, Some(1002));
    wait_until("on_error then on_close", || has(&log, "close 1002"));
    let l = log.lock().unwrap();
    let e = l.iter().position(|x| x.starts_with("error")).expect("on_error called");
    let c = l.iter().position(|x| x.starts_with("close")).unwrap();
    assert!(e < c);
}

#[test]
fn send_async_success_and_failure_callbacks() {
    let kept: Arc<Mutex<Option<Socket>>> = Arc::default();
    let k = kept.clone();
    let s = start(
        move |_req: Request| {
            let k = k.clone();
            websocket_response(WsListener::new().on_open(move |s| *k.lock().unwrap() = Some(s.clone())))
        },
        opts(),
    );
    let (mut c, _) = ws_connect(addr(&s), "/", "");
    wait_until("open", || kept.lock().unwrap().is_some());
    let sock = kept.lock().unwrap().clone().unwrap();
    let results: Log = Arc::default();
    let (r1, r2) = (results.clone(), results.clone());
    sock.send_async(
        "hi",
        move || r1.lock().unwrap().push("ok".into()),
        move |e| r2.lock().unwrap().push(format!("fail {e}")),
    );
    assert_eq!(c.read_frame().unwrap(), (true, 0x1, b"hi".to_vec()));
    wait_until("success", || has(&results, "ok"));
    // Peer goes away; later sends fail and say so.
    drop(c);
    wait_until("closed", || !sock.is_open());
    let (r3, r4) = (results.clone(), results.clone());
    sock.send_async(
        "late",
        move || r3.lock().unwrap().push("ok-late".into()),
        move |_e| r4.lock().unwrap().push("fail-late".into()),
    );
    wait_until("failure", || has(&results, "fail-late"));
    assert!(!has(&results, "ok-late"));
    assert!(sock.send("x").is_err());
}

#[test]
fn server_stop_gives_listeners_1001() {
    let log: Log = Arc::default();
    let s = server(&log);
    let (mut c, _) = ws_connect(addr(&s), "/", "");
    wait_until("open", || has(&log, "open"));
    let t = std::thread::spawn(move || s.stop_graceful(Duration::from_secs(5)));
    assert_eq!(c.read_close().unwrap().0, Some(1001));
    drop(c);
    t.join().unwrap();
    wait_until("on_close 1001", || has(&log, "close 1001"));
}

#[test]
fn plain_requests_get_the_page() {
    let s = server(&Arc::default());
    let r = request(addr(&s), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.text().contains("Main screen"));
}

struct Echo;
impl WebSocketListener for Echo {
    fn on_message(&self, socket: &Socket, message: Message) {
        let _ = socket.send(message);
    }
}

#[test]
fn a_trait_listener_works() {
    let s = start(|_req: Request| websocket_response(Echo), opts());
    let (mut c, _) = ws_connect(addr(&s), "/", "");
    c.send(&client_frame(0x2, true, &[1, 2, 3]));
    assert_eq!(c.read_frame().unwrap(), (true, 0x2, vec![1, 2, 3]));
    c.send(&client_frame(0x9, true, b"p"));
    assert_eq!(c.read_frame().unwrap(), (true, 0xA, b"p".to_vec()), "default on_ping pongs");
}

#[test]
fn a_panicking_callback_reports_on_error_and_closes_1011() {
    let log: Log = Arc::default();
    let s = server(&log);
    let (mut c, _) = ws_connect(addr(&s), "/", "");
    c.send(&client_frame(0x1, true, b"panic"));
    assert_eq!(c.read_close().unwrap(), (Some(1011), "internal error".to_owned()));
    c.send(&client_frame(0x8, true, &1011u16.to_be_bytes()));
    assert!(c.is_closed_within(Duration::from_secs(10)));
    wait_until("on_error then on_close", || has(&log, "close 1011"));
    let l = log.lock().unwrap();
    let e = l.iter().position(|x| x.starts_with("error internal error")).expect("on_error called");
    assert!(e < l.iter().position(|x| x.starts_with("close")).unwrap());
}

#[test]
fn a_response_with_a_reader_body_is_sent_as_one_binary_message() {
    let log: Log = Arc::default();
    let s = server(&log);
    let (mut c, _) = ws_connect(addr(&s), "/", "");
    c.send(&client_frame(0x1, true, b"reader"));
    assert_eq!(c.read_frame().unwrap(), (true, 0x2, b"xyz".to_vec()));
}

#[test]
fn a_panicking_on_error_does_not_swallow_on_close() {
    let log: Log = Arc::default();
    let l = log.clone();
    let s = start(
        move |_req: Request| {
            let l = l.clone();
            websocket_response(
                WsListener::new()
                    .on_error(|_s, _e| panic!("on_error failed"))
                    .on_close(move |_s, code, _r| l.lock().unwrap().push(format!("close {code}"))),
            )
        },
        opts(),
    );
    let (mut c, _) = ws_connect(addr(&s), "/", "");
    c.send(&client_frame(0x1, true, &[b'a', 0xff]));
    assert_eq!(c.read_close().unwrap().0, Some(1007));
    wait_until("on_close after the panicking on_error", || has(&log, "close 1007"));
}

/// One WebSocket core under both APIs: the same message rule, the same close checks, the same
/// "buffer full" error.
#[test]
fn both_apis_share_the_message_rule_and_the_close_checks() {
    use httpkit::{as_channel, Channel, ChannelHandlers, CloseError, SendError};
    let sock_kept: Arc<Mutex<Option<Socket>>> = Arc::default();
    let chan_kept: Arc<Mutex<Option<Channel>>> = Arc::default();
    let (k1, k2) = (sock_kept.clone(), chan_kept.clone());
    let s = start(
        move |req: Request| {
            if req.path() == "/ring" {
                let k = k1.clone();
                websocket_response(WsListener::new().on_open(move |s| *k.lock().unwrap() = Some(s.clone())))
            } else {
                let k = k2.clone();
                as_channel(&req, ChannelHandlers::new().on_open(move |c| *k.lock().unwrap() = Some(c.clone())))
            }
        },
        opts(),
    );
    let (mut r, _) = ws_connect(addr(&s), "/ring", "");
    let (mut c, _) = ws_connect(addr(&s), "/ws", "");
    wait_until("both open", || sock_kept.lock().unwrap().is_some() && chan_kept.lock().unwrap().is_some());
    let sock = sock_kept.lock().unwrap().clone().unwrap();
    let chan = chan_kept.lock().unwrap().clone().unwrap();
    // A response that says it is text is a text frame; one that does not is binary.
    let json = || Response::ok("{\"a\":1}").header("content-type", "application/json");
    sock.send(json()).unwrap();
    assert!(chan.send(json()));
    assert_eq!(r.read_frame().unwrap(), (true, 0x1, b"{\"a\":1}".to_vec()));
    assert_eq!(c.read_frame().unwrap(), (true, 0x1, b"{\"a\":1}".to_vec()));
    sock.send(Response::ok("bytes")).unwrap();
    assert!(chan.send(Response::ok("bytes")));
    assert_eq!(r.read_frame().unwrap(), (true, 0x2, b"bytes".to_vec()));
    assert_eq!(c.read_frame().unwrap(), (true, 0x2, b"bytes".to_vec()));
    // A code that may not be sent is an error on both, and nothing is sent.
    assert_eq!(chan.close_with(1005, ""), Err(CloseError::InvalidCode(1005)));
    assert_eq!(chan.close_with(1000, &"x".repeat(124)), Err(CloseError::ReasonTooLong(124)));
    assert_eq!(sock.close(1006, "").unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    assert!(chan.is_open() && sock.is_open());
    // The same error for a closed socket.
    assert_eq!(chan.close_with(4001, "done"), Ok(true));
    sock.close(4002, "done").unwrap();
    assert_eq!(c.read_close().unwrap(), (Some(4001), "done".to_owned()));
    assert_eq!(r.read_close().unwrap(), (Some(4002), "done".to_owned()));
    assert!(matches!(sock.send("late"), Err(SendError::Closed(_))));
    assert!(matches!(chan.try_send("late", false), Err(SendError::Closed(_))));
}

/// Cross-site WebSocket hijacking: with allowed origins, a handshake from another page is a 403
/// on both APIs; one from an allowed page, or with no Origin (not a browser), opens.
#[test]
fn origins_outside_the_allow_list_get_403_on_both_apis() {
    use httpkit::{as_channel, ChannelHandlers};
    let app = |req: Request| {
        if req.path() == "/ring" {
            websocket_response(WsListener::new())
        } else {
            as_channel(&req, ChannelHandlers::new())
        }
    };
    let s = start(app, opts().allowed_origins(["https://app.example.com"]));
    for path in ["/ring", "/ws"] {
        let (_c, r) = ws_connect(addr(&s), path, "Origin: https://evil.example\r\n");
        assert_eq!(r.status, 403, "{path}");
        let (_c, r) = ws_connect(addr(&s), path, "Origin: HTTPS://App.Example.com\r\n");
        assert_eq!(r.status, 101, "{path}");
        let (_c, r) = ws_connect(addr(&s), path, "");
        assert_eq!(r.status, 101, "{path}: no Origin, not a browser");
    }
    // A check of one's own: every subdomain.
    let s = start(app, opts().origin_check(|o| o.ends_with(".example.com")));
    let (_c, r) = ws_connect(addr(&s), "/ws", "Origin: https://a.example.com\r\n");
    assert_eq!(r.status, 101);
    let (_c, r) = ws_connect(addr(&s), "/ring", "Origin: https://example.org\r\n");
    assert_eq!(r.status, 403);
    // By default any origin is accepted, as in http-kit.
    let s = start(app, opts());
    let (_c, r) = ws_connect(addr(&s), "/ws", "Origin: https://evil.example\r\n");
    assert_eq!(r.status, 101);
}
