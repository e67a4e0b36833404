//! WebSocket heartbeats (`Options::ws_heartbeat`) over real sockets: a peer that goes silent is
//! pinged, then closed and reported as an abnormal close (1006) on both WebSocket APIs; a peer
//! that answers stays open however many heartbeats pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use httpkit::{as_channel, websocket_response, ChannelHandlers, Message, Request, Socket, WebSocketListener};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message as WsMsg;
use util::*;

type Log = Arc<Mutex<Vec<String>>>;

fn has(log: &Log, what: &str) -> bool {
    log.lock().unwrap().iter().any(|l| l == what)
}

/// Short heartbeats so the tests run quickly; no assertion depends on them being on time, and
/// the answer's 2 s leaves a loaded machine's client time to pong.
fn beating() -> httpkit::Options {
    opts().ws_heartbeat(Duration::from_millis(100), Duration::from_secs(2))
}

fn channel_server(log: &Log) -> httpkit::Server {
    let (l1, l2) = (log.clone(), log.clone());
    let handlers = ChannelHandlers::new()
        .on_receive(move |ch, msg| {
            if let Message::Text(t) = msg {
                ch.send(t);
            }
        })
        .on_ping(move |_ch, _| l1.lock().unwrap().push("ping".to_owned()))
        .on_close(move |_ch, st| l2.lock().unwrap().push(format!("close {:?} {}", st.code(), st.reason())));
    start(move |req: Request| as_channel(&req, handlers.clone()), beating())
}

struct Recorder(Log);
impl WebSocketListener for Recorder {
    fn on_message(&self, socket: &Socket, message: Message) {
        let _ = socket.send(message);
    }
    fn on_close(&self, _socket: &Socket, code: u16, reason: &str) {
        self.0.lock().unwrap().push(format!("close {code} {reason}"));
    }
}

/// A raw client that completes the handshake and then never answers: it gets a ping, then the
/// connection is closed (no close frame: the peer is presumed gone).
fn a_silent_peer_is_pinged_then_dropped(s: &httpkit::Server) {
    let (mut c, r) = ws_connect(addr(s), "/ws", "");
    assert_eq!(r.status, 101);
    let (fin, op, payload) = c.read_frame().expect("a heartbeat ping");
    assert_eq!((fin, op, payload.len()), (true, 0x9, 0), "an empty ping");
    // Silence: no pong. The server closes the TCP connection.
    assert!(c.is_closed_within(IO_TIMEOUT), "a silent peer is dropped");
}

#[test]
fn a_silent_channel_is_closed_with_1006() {
    let log: Log = Arc::default();
    let s = channel_server(&log);
    a_silent_peer_is_pinged_then_dropped(&s);
    wait_until("on_close 1006", || has(&log, "close Some(1006) timeout"));
    assert_eq!(s.stats().timeouts_idle, 1, "counted as an idle timeout");
}

#[test]
fn a_silent_ring_socket_is_closed_with_1006() {
    let log: Log = Arc::default();
    let l = log.clone();
    let s = start(move |_req: Request| websocket_response(Recorder(l.clone())), beating());
    a_silent_peer_is_pinged_then_dropped(&s);
    wait_until("on_close 1006", || has(&log, "close 1006 timeout"));
}

/// tungstenite answers every ping while it is read: the connection outlives many heartbeats.
#[test]
fn a_peer_that_answers_stays_open() {
    let log: Log = Arc::default();
    let s = channel_server(&log);
    let (mut ws, _) = tungstenite::connect(format!("ws://{}/ws", addr(&s))).expect("ws connect");
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    }
    let mut pings = 0;
    while pings < 4 {
        match ws.read().expect("still open") {
            WsMsg::Ping(_) => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    ws.send(WsMsg::text("still here")).unwrap();
    loop {
        match ws.read().expect("echo") {
            WsMsg::Text(t) => {
                assert_eq!(t.as_str(), "still here");
                break;
            }
            WsMsg::Ping(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(log.lock().unwrap().iter().all(|l| !l.starts_with("close")), "not closed: {log:?}");
    ws.close(None).unwrap();
}

#[test]
fn a_zero_heartbeat_is_refused() {
    let err = httpkit::run_server(
        |_req: Request| httpkit::Response::ok(""),
        opts().ws_heartbeat(Duration::ZERO, Duration::from_secs(1)),
    )
    .expect_err("refused");
    assert!(err.to_string().contains("ws_heartbeat"), "{err}");
}

/// Output flowing to a peer that never sends must not push the heartbeat's deadline back: a
/// chat server broadcasting to a dead client still drops it.
#[test]
fn a_peer_that_only_receives_is_dropped_all_the_same() {
    let log: Log = Arc::default();
    let l = log.clone();
    let handlers = ChannelHandlers::new()
        .on_open(|ch| {
            let ch = ch.clone();
            std::thread::spawn(move || {
                while ch.send("tick") {
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        })
        .on_close(move |_ch, st| l.lock().unwrap().push(format!("close {:?} {}", st.code(), st.reason())));
    let s = start(move |req: Request| as_channel(&req, handlers.clone()), beating());
    let (mut c, r) = ws_connect(addr(&s), "/ws", "");
    assert_eq!(r.status, 101);
    let (mut ticks, mut pings, mut closed) = (0, 0, false);
    // Read everything, answer nothing, until the server gives up on us.
    let t = std::time::Instant::now();
    while t.elapsed() < IO_TIMEOUT {
        match c.read_frame() {
            Ok((_, 0x1, _)) => ticks += 1,
            Ok((_, 0x9, _)) => pings += 1,
            Ok((_, other, _)) => panic!("unexpected opcode {other}"),
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "still open after {ticks} ticks and {pings} pings");
    assert!(ticks > 0 && pings > 0, "{ticks} ticks, {pings} pings");
    wait_until("on_close 1006", || has(&log, "close Some(1006) timeout"));
}
