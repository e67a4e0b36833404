//! The unified channel API over real sockets: WebSockets (tungstenite and raw frames) and HTTP
//! long-polling / streaming.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use httpkit::{as_channel, Channel, ChannelHandlers, CloseStatus, Message, Request, Response};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message as WsMsg;
use util::*;

type Log = Arc<Mutex<Vec<String>>>;

/// An echo channel server that records every callback.
fn echo_server(log: Log) -> httpkit::Server {
    let handlers = {
        let (l1, l2, l3, l4) = (log.clone(), log.clone(), log.clone(), log.clone());
        ChannelHandlers::new()
            .on_open(move |ch| l1.lock().unwrap().push(format!("open ws={}", ch.is_websocket())))
            .on_receive(move |ch, msg| {
                l2.lock().unwrap().push(format!("recv {}", msg.to_text().len()));
                match msg {
                    Message::Text(t) => ch.send(t),
                    Message::Binary(b) => ch.send(b),
                    _ => false,
                };
            })
            .on_ping(move |_ch, data| l3.lock().unwrap().push(format!("ping {}", String::from_utf8_lossy(&data))))
            .on_close(move |_ch, st| {
                l4.lock().unwrap().push(format!("close {:?} {:?} {}", st.kind(), st.code(), st.reason()))
            })
    };
    start(move |req: Request| as_channel(&req, handlers.clone()), opts().max_ws(16 << 20).thread(4))
}

fn ws(addr: SocketAddr) -> tungstenite::WebSocket<MaybeTlsStream<std::net::TcpStream>> {
    let (ws, resp) = tungstenite::connect(format!("ws://{addr}/ws")).expect("ws connect");
    assert_eq!(resp.status(), 101);
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    }
    ws
}

/// A server whose channels are kept from `on_open`, and a way to wait for the first one.
fn keeping_server(o: httpkit::Options) -> (httpkit::Server, Arc<Mutex<Option<Channel>>>) {
    let kept: Arc<Mutex<Option<Channel>>> = Arc::default();
    let k = kept.clone();
    let handlers = ChannelHandlers::new().on_open(move |ch| *k.lock().unwrap() = Some(ch.clone()));
    (start(move |req: Request| as_channel(&req, handlers.clone()), o), kept)
}

fn kept_channel(kept: &Arc<Mutex<Option<Channel>>>) -> Channel {
    wait_until("open", || kept.lock().unwrap().is_some());
    kept.lock().unwrap().clone().unwrap()
}

/// Sends `req` on a new connection to a `poll_server` and returns the channel it opened.
fn open_poll(s: &httpkit::Server, chans: &Arc<Mutex<Vec<Channel>>>, req: &[u8]) -> (Client, Channel) {
    let mut c = Client::connect(addr(s));
    c.send(req);
    wait_until("channel", || chans.lock().unwrap().len() == 1);
    let ch = chans.lock().unwrap()[0].clone();
    (c, ch)
}

fn has(log: &Log, what: &str) -> bool {
    log.lock().unwrap().iter().any(|l| l.contains(what))
}

#[test]
fn websocket_echo_text_binary_and_large() {
    let log: Log = Arc::default();
    let s = echo_server(log.clone());
    let mut c = ws(addr(&s));
    c.send(WsMsg::text("hello")).unwrap();
    assert_eq!(c.read().unwrap(), WsMsg::text("hello"));
    c.send(WsMsg::binary(vec![0u8, 1, 2, 255])).unwrap();
    assert_eq!(c.read().unwrap(), WsMsg::binary(vec![0u8, 1, 2, 255]));
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    c.send(WsMsg::binary(big.clone())).unwrap();
    assert_eq!(c.read().unwrap(), WsMsg::binary(big));
    c.close(None).unwrap();
    wait_until("on_close", || has(&log, "close NoStatusReceived"));
    let opens = log.lock().unwrap().iter().filter(|l| l.starts_with("open")).count();
    assert_eq!(opens, 1, "on_open runs exactly once");
}

#[test]
fn fragmented_messages_and_interleaved_ping() {
    let log: Log = Arc::default();
    let s = echo_server(log.clone());
    let (mut c, r) = ws_connect(addr(&s), "/ws", "");
    assert_eq!(r.status, 101);
    assert_eq!(r.header("sec-websocket-accept"), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    let mut frames = client_frame(0x1, false, b"Hel");
    frames.extend(client_frame(0x9, true, b"pi"));
    frames.extend(client_frame(0x0, false, b"l"));
    frames.extend(client_frame(0x0, true, b"o"));
    c.send(&frames);
    assert_eq!(c.read_frame().unwrap(), (true, 0xA, b"pi".to_vec()), "pong first");
    assert_eq!(c.read_frame().unwrap(), (true, 0x1, b"Hello".to_vec()));
    wait_until("on_ping", || has(&log, "ping pi"));
}

#[test]
fn client_close_code_and_reason_reach_on_close_and_are_echoed() {
    let log: Log = Arc::default();
    let s = echo_server(log.clone());
    let (mut c, _) = ws_connect(addr(&s), "/ws", "");
    let mut p = 4001u16.to_be_bytes().to_vec();
    p.extend_from_slice(b"custom bye");
    c.send(&client_frame(0x8, true, &p));
    assert_eq!(c.read_close().unwrap(), (Some(4001), "custom bye".to_owned()));
    assert!(c.is_closed_within(Duration::from_secs(10)), "server closes TCP after the handshake");
    wait_until("on_close", || has(&log, "close Custom Some(4001) custom bye"));
}

#[test]
fn oversize_message_closes_1009_and_bad_utf8_1007() {
    let log: Log = Arc::default();
    let handlers = {
        let l = log.clone();
        ChannelHandlers::new()
            .on_close(move |_c, st| l.lock().unwrap().push(format!("close {:?} {:?}", st.kind(), st.code())))
    };
    let s = start(move |req: Request| as_channel(&req, handlers.clone()), opts().max_ws(1000));
    let (mut c, _) = ws_connect(addr(&s), "/ws", "");
    c.send(&client_frame(0x2, true, &[0u8; 1001]));
    assert_eq!(c.read_close().unwrap().0, Some(1009));
    assert!(c.is_closed_within(Duration::from_secs(10)));
    wait_until("1009 on_close", || has(&log, "close MessageTooBig Some(1009)"));

    let (mut c, _) = ws_connect(addr(&s), "/ws", "");
    c.send(&client_frame(0x1, true, &[b'a', 0xff, 0xfe]));
    assert_eq!(c.read_close().unwrap().0, Some(1007));
    wait_until("1007 on_close", || has(&log, "close InvalidPayloadData Some(1007)"));

    let (mut c, _) = ws_connect(addr(&s), "/ws", "");
    c.send(&[0x81, 0x02, b'h', b'i']); // unmasked
    assert_eq!(c.read_close().unwrap().0, Some(1002));
}

#[test]
fn frame_coalesced_with_upgrade_request_is_not_lost() {
    let log: Log = Arc::default();
    let s = echo_server(log);
    let mut c = Client::connect(addr(&s));
    let mut req = b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .to_vec();
    req.extend(client_frame(0x1, true, b"early"));
    c.send(&req);
    assert_eq!(c.read_response_to(true).unwrap().status, 101);
    assert_eq!(c.read_frame().unwrap(), (true, 0x1, b"early".to_vec()));
}

#[test]
fn invalid_handshake_is_400_and_bad_version_426() {
    let s = echo_server(Arc::default());
    let r = request(
        addr(&s),
        b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert_eq!(r.status, 400);
    let r = request(
        addr(&s),
        b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    );
    assert_eq!((r.status, r.header("sec-websocket-version")), (426, Some("13")));
}

#[test]
fn server_close_completes_handshake_and_closes_tcp() {
    let handlers = ChannelHandlers::new().on_receive(|ch, _m| {
        ch.close_with(4000, "bye").unwrap();
    });
    let s = start(move |req: Request| as_channel(&req, handlers.clone()), opts());
    let (mut c, _) = ws_connect(addr(&s), "/ws", "");
    c.send(&client_frame(0x1, true, b"x"));
    assert_eq!(c.read_close().unwrap(), (Some(4000), "bye".to_owned()));
    c.send(&client_frame(0x8, true, &4000u16.to_be_bytes()));
    assert!(c.is_closed_within(Duration::from_secs(10)));
}

#[test]
fn subprotocol_is_negotiated() {
    let handlers = ChannelHandlers::new().subprotocols(["v2.chat", "chat"]);
    let s = start(move |req: Request| as_channel(&req, handlers.clone()), opts());
    let (_c, r) = ws_connect(addr(&s), "/ws", "Sec-WebSocket-Protocol: chat, v2.chat\r\n");
    assert_eq!(r.header("sec-websocket-protocol"), Some("v2.chat"));
    let (_c, r) = ws_connect(addr(&s), "/ws", "Sec-WebSocket-Protocol: other\r\n");
    assert_eq!(r.header("sec-websocket-protocol"), None);
}

#[test]
fn broadcast_to_a_hundred_clients_from_another_thread() {
    let chans: Arc<Mutex<HashSet<Channel>>> = Arc::default();
    let (a, b) = (chans.clone(), chans.clone());
    let handlers = ChannelHandlers::new()
        .on_open(move |ch| {
            a.lock().unwrap().insert(ch.clone());
        })
        .on_close(move |ch, _| {
            b.lock().unwrap().remove(ch);
        });
    let s = start(move |req: Request| as_channel(&req, handlers.clone()), opts());
    let mut clients: Vec<_> = (0..100).map(|_| ws(addr(&s))).collect();
    wait_until("100 open channels", || chans.lock().unwrap().len() == 100);
    let c2 = chans.clone();
    thread::spawn(move || {
        for ch in c2.lock().unwrap().iter() {
            assert!(ch.send("news"));
        }
    })
    .join()
    .unwrap();
    for c in &mut clients {
        assert_eq!(c.read().unwrap(), WsMsg::text("news"));
    }
    for c in &mut clients {
        c.close(None).unwrap();
    }
    wait_until("all closed", || chans.lock().unwrap().is_empty());
}

#[test]
fn thousand_messages_keep_their_order_per_connection() {
    let seen: Arc<Mutex<Vec<u32>>> = Arc::default();
    let s2 = seen.clone();
    let handlers = ChannelHandlers::new().on_receive(move |_ch, m| {
        s2.lock().unwrap().push(m.to_text().parse().unwrap());
    });
    let s = start(move |req: Request| as_channel(&req, handlers.clone()), opts().thread(8));
    let mut c = ws(addr(&s));
    for i in 0..1000u32 {
        c.send(WsMsg::text(i.to_string())).unwrap();
    }
    wait_until("1000 messages", || seen.lock().unwrap().len() == 1000);
    assert_eq!(*seen.lock().unwrap(), (0..1000).collect::<Vec<_>>());
}

#[test]
fn on_close_runs_after_queued_messages() {
    let log: Log = Arc::default();
    let (l1, l2) = (log.clone(), log.clone());
    let handlers = ChannelHandlers::new()
        .on_receive(move |_c, m| {
            thread::sleep(Duration::from_millis(2));
            l1.lock().unwrap().push(m.to_text());
        })
        .on_close(move |_c, st| l2.lock().unwrap().push(format!("{:?}", st.kind())));
    let s = start(move |req: Request| as_channel(&req, handlers.clone()), opts().thread(4));
    let (mut c, _) = ws_connect(addr(&s), "/ws", "");
    let mut all = Vec::new();
    for i in 0..20 {
        all.extend(client_frame(0x1, true, i.to_string().as_bytes()));
    }
    c.send(&all);
    drop(c); // TCP drop without a close frame
    wait_until("close", || log.lock().unwrap().len() == 21);
    let l = log.lock().unwrap();
    assert_eq!(l[20], "Abnormal", "{l:?}");
    assert_eq!(l[..20].to_vec(), (0..20).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[test]
fn send_on_closed_channel_returns_false() {
    let (s, kept) = keeping_server(opts());
    let mut c = ws(addr(&s));
    let ch = kept_channel(&kept);
    assert!(ch.is_open());
    c.close(None).unwrap();
    let _ = c.read();
    wait_until("closed", || !ch.is_open());
    assert!(!ch.send("late"));
    assert!(matches!(ch.try_send("late", false), Err(httpkit::SendError::Closed(_))));
}

#[test]
fn server_stop_sends_1001_and_reports_server_stop() {
    let log: Log = Arc::default();
    let s = echo_server(log.clone());
    let (mut c, _) = ws_connect(addr(&s), "/ws", "");
    c.send(&client_frame(0x1, true, b"x"));
    assert_eq!(c.read_frame().unwrap().2, b"x");
    let t = thread::spawn(move || {
        s.stop_graceful(Duration::from_secs(5));
    });
    assert_eq!(c.read_close().unwrap().0, Some(1001));
    c.send(&client_frame(0x8, true, &1001u16.to_be_bytes()));
    t.join().unwrap();
    wait_until("on_close", || has(&log, "close ServerStop"));
}

// ---- HTTP long-polling and streaming ----

/// A `poll_server` with the list its channels go to and its callback log.
fn polling() -> (httpkit::Server, Arc<Mutex<Vec<Channel>>>, Log) {
    let (chans, log): (Arc<Mutex<Vec<Channel>>>, Log) = Default::default();
    (poll_server(chans.clone(), log.clone()), chans, log)
}

fn poll_server(chans: Arc<Mutex<Vec<Channel>>>, log: Log) -> httpkit::Server {
    let handlers = {
        let l = log.clone();
        ChannelHandlers::new()
            .on_open(move |ch| chans.lock().unwrap().push(ch.clone()))
            .on_close(move |_ch, st: CloseStatus| l.lock().unwrap().push(format!("close {:?}", st.kind())))
    };
    start(
        move |req: Request| match req.path() {
            "/plain" => Response::ok("plain"),
            _ => as_channel(&req, handlers.clone()),
        },
        opts(),
    )
}

#[test]
fn long_poll_is_held_until_another_thread_sends() {
    let (s, chans, log) = polling();
    let (mut c, ch) = open_poll(&s, &chans, b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(!ch.is_websocket());
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        assert!(ch.send(Response::ok("event!").with_status(202).header("x-k", "v")));
        assert!(!ch.send("second"), "the channel closed after a full response");
    });
    let r = c.read_response().unwrap();
    assert_eq!((r.status, r.text().as_str(), r.header("x-k")), (202, "event!", Some("v")));
    wait_until("on_close", || has(&log, "close ServerClose"));
    // The keep-alive connection is still usable.
    assert_eq!(c.get("/plain").text(), "plain");
}

#[test]
fn streaming_three_chunks_read_as_they_arrive() {
    let (s, chans, _) = polling();
    let (mut c, ch) = open_poll(&s, &chans, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ch.send_with("data: one\n\n", false));
    // The head and first chunk arrive before the stream ends.
    use std::io::Read;
    let mut buf = [0u8; 1024];
    let mut first = String::new();
    while !first.contains("data: one") {
        let n = c.stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {first}");
        first.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(first.contains("transfer-encoding: chunked") && first.contains("data: one"), "{first}");
    assert!(ch.send_with("data: two\n\n", false));
    assert!(ch.send_with("data: three\n\n", true));
    let mut rest = Vec::new();
    while !rest.ends_with(b"0\r\n\r\n") {
        let n = c.stream.read(&mut buf).unwrap();
        assert!(n > 0);
        rest.extend_from_slice(&buf[..n]);
    }
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains("data: two") && rest.contains("data: three"));
    assert_eq!(c.get("/plain").text(), "plain");
}

#[test]
fn client_disconnect_during_long_poll_fires_client_close() {
    let (s, chans, log) = polling();
    let (c, ch) = open_poll(&s, &chans, b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n");
    drop(c);
    wait_until("on_close(ClientClose)", || has(&log, "close ClientClose"));
    assert!(!ch.is_open());
    assert!(!ch.send("too late"));
}

#[test]
fn a_client_that_leaves_behind_a_held_request_ends_its_long_poll() {
    let (s, chans, log) = polling();
    // The POST waits behind the long-poll (it is not safe), so reading stops before the FIN.
    let (c, ch) = open_poll(
        &s,
        &chans,
        b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\nPOST /plain HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    wait_until("on_close(ClientClose)", || has(&log, "close ClientClose"));
    assert!(!ch.is_open());
}

#[test]
fn close_before_send_gives_a_valid_empty_response() {
    let handlers = ChannelHandlers::new().on_open(|ch| {
        ch.close();
    });
    let s = start(move |req: Request| as_channel(&req, handlers.clone()), opts());
    let mut c = Client::connect(addr(&s));
    let r = c.get("/");
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(c.get("/").status, 200, "connection still usable");
}

#[test]
fn send_and_ordinary_return_never_give_two_responses() {
    let s = start(
        |req: Request| {
            let handlers = ChannelHandlers::new().on_open(|ch| {
                ch.send("from channel");
            });
            let _ = as_channel(&req, handlers);
            Response::ok("ordinary")
        },
        opts().warn_logger(|_| {}),
    );
    let mut c = Client::connect(addr(&s));
    assert_eq!(c.get("/").text(), "from channel");
    assert_eq!(c.get("/").text(), "from channel", "no second response was written");
}

#[test]
fn http10_streaming_is_close_delimited() {
    let (s, chans, _) = polling();
    let (mut c, ch) = open_poll(&s, &chans, b"GET /stream HTTP/1.0\r\n\r\n");
    assert!(ch.send_with("a", false));
    assert!(ch.send_with("b", false));
    assert!(ch.send_with("c", true));
    let r = c.read_response().unwrap();
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.text(), "abc");
}

#[test]
fn concurrent_sends_never_interleave_frames() {
    let (s, kept) = keeping_server(opts());
    let (mut c, _) = ws_connect(addr(&s), "/ws", "");
    let ch = kept_channel(&kept);
    let senders: Vec<_> = (0..4u8)
        .map(|t| {
            let ch = ch.clone();
            thread::spawn(move || {
                for i in 0..200u32 {
                    // Mixed sizes, including ones needing 16-bit lengths.
                    let len = 1 + (i as usize * 37) % 3000;
                    let mut msg: Message = vec![t; len].into();
                    loop {
                        match ch.try_send(msg, false) {
                            Ok(()) => break,
                            Err(httpkit::SendError::Full(m)) => {
                                msg = m;
                                thread::sleep(Duration::from_millis(1));
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    let mut per_thread = [0u32; 4];
    for _ in 0..800 {
        let (fin, op, payload) = c.read_frame().unwrap();
        assert!(fin && op == 0x2);
        let t = payload[0];
        assert!(payload.iter().all(|b| *b == t), "bytes of two frames mixed");
        per_thread[t as usize] += 1;
    }
    assert_eq!(per_thread, [200; 4]);
    for t in senders {
        t.join().unwrap();
    }
}

#[test]
fn sends_to_a_client_that_does_not_read_report_full() {
    let (s, kept) = keeping_server(opts().write_buffer(256 * 1024));
    let (_c, _) = ws_connect(addr(&s), "/ws", "");
    let ch = kept_channel(&kept);
    let chunk = vec![0u8; 64 * 1024];
    let mut full = false;
    for _ in 0..2000 {
        match ch.try_send(chunk.clone(), false) {
            Ok(()) => {}
            Err(httpkit::SendError::Full(_)) => {
                full = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(full, "a client that never reads must not make the server buffer 128 MiB");
    assert!(ch.is_open());
}

#[test]
fn graceful_stop_ends_long_polls_with_server_stop() {
    let (s, chans, log) = polling();
    let (mut c, _) = open_poll(&s, &chans, b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n");
    s.stop_graceful(Duration::from_millis(200));
    wait_until("on_close(ServerStop)", || has(&log, "close ServerStop"));
    // The waiting request gets a proper answer, not a bare EOF.
    let r = c.read_response().unwrap();
    assert_eq!((r.status, r.header("connection")), (503, Some("close")));
    assert!(c.is_closed_within(Duration::from_secs(10)));
}

#[test]
fn graceful_stop_ends_a_stream_with_its_final_chunk() {
    let (s, chans, log) = polling();
    let (mut c, ch) = open_poll(&s, &chans, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ch.send_with("data: one\n\n", false));
    s.stop_graceful(Duration::from_millis(200));
    // A complete chunked body (read_response needs the final chunk), then the close.
    let r = c.read_response().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "data: one\n\n"));
    assert!(c.is_closed_within(Duration::from_secs(10)));
    wait_until("on_close(ServerStop)", || has(&log, "close ServerStop"));
    assert!(!ch.send("too late"));
}

#[test]
fn a_flooding_client_is_held_back_while_callbacks_lag() {
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let got = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (g, n) = (gate.clone(), got.clone());
    let handlers = ChannelHandlers::new().on_receive(move |_ch, _m| {
        let (m, c) = &*g;
        let mut open = m.lock().unwrap();
        while !*open {
            open = c.wait(open).unwrap();
        }
        n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    let s = start(move |req: Request| as_channel(&req, handlers.clone()), opts());
    let (mut c, _) = ws_connect(addr(&s), "/ws", "");
    c.stream.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let frame = client_frame(0x2, true, &[7u8; 1024]);
    let mut sent = 0usize;
    // 100 MiB would all be taken in if the server kept reading while its callbacks are stuck.
    use std::io::Write;
    while sent < 100 * 1024 {
        if c.stream.write_all(&frame).is_err() {
            break;
        }
        sent += 1;
    }
    assert!(sent < 100 * 1024, "the server kept reading: {sent} messages buffered");
    // Once the callbacks run again, reading resumes and every message is delivered.
    {
        let (m, cv) = &*gate;
        *m.lock().unwrap() = true;
        cv.notify_all();
    }
    wait_until("delivered", || got.load(std::sync::atomic::Ordering::SeqCst) >= sent);
}

#[test]
fn panicking_on_open_of_an_http_channel_answers_500_and_closes_the_channel() {
    let log: Log = Arc::default();
    let handlers = {
        let l = log.clone();
        ChannelHandlers::new()
            .on_open(|_ch| panic!("on_open failed"))
            .on_close(move |_c, st| l.lock().unwrap().push(format!("close {:?}", st.kind())))
    };
    let s = start(move |req: Request| as_channel(&req, handlers.clone()), opts());
    let mut c = Client::connect(addr(&s));
    let r = c.get("/poll");
    assert_eq!(r.status, 500);
    wait_until("on_close after the 500", || log.lock().unwrap().len() == 1);
    // The keep-alive connection serves the next request (which panics the same way).
    assert_eq!(c.get("/poll").status, 500);
}

#[test]
fn panicking_websocket_callback_closes_1011() {
    let log: Log = Arc::default();
    let handlers = {
        let l = log.clone();
        ChannelHandlers::new()
            .on_receive(|_ch, _msg| panic!("on_receive failed"))
            .on_close(move |_c, st| l.lock().unwrap().push(format!("close {:?} {:?}", st.kind(), st.code())))
    };
    let s = start(move |req: Request| as_channel(&req, handlers.clone()), opts());
    let (mut c, _) = ws_connect(addr(&s), "/ws", "");
    c.send(&client_frame(0x1, true, b"boom"));
    assert_eq!(c.read_close().unwrap(), (Some(1011), "internal error".to_owned()));
    c.send(&client_frame(0x8, true, &1011u16.to_be_bytes()));
    assert!(c.is_closed_within(Duration::from_secs(10)));
    wait_until("1011 on_close", || has(&log, "close InternalServerError Some(1011)"));
    // The server goes on serving.
    let mut w = ws(addr(&s));
    w.send(WsMsg::text("x")).unwrap();
    assert!(matches!(w.read().unwrap(), WsMsg::Close(Some(f)) if u16::from(f.code) == 1011));
}

#[test]
fn file_reader_and_stream_bodies_are_sent_whole_as_one_message() {
    use httpkit::{Body, SendError};
    // WebSocket: a file body is one frame of the file's length.
    let (s, kept) = keeping_server(opts());
    let mut w = ws(addr(&s));
    let ch = kept_channel(&kept);
    let file = std::fs::read("Cargo.toml").unwrap();
    assert!(ch.send(Response::ok(Body::from_path("Cargo.toml").unwrap())));
    assert_eq!(w.read().unwrap().into_data().to_vec(), file);
    assert!(ch.send(Response::ok(Body::reader(std::io::Cursor::new(b"from a reader".to_vec())))));
    assert_eq!(w.read().unwrap().into_text().unwrap().as_str(), "from a reader");
    // A body that fails is an error, and nothing is sent.
    let failing = Body::try_stream(vec![Ok(bytes::Bytes::from_static(b"x")), Err(std::io::Error::other("disk gone"))]);
    assert!(matches!(ch.try_send(Response::ok(failing), false), Err(SendError::Body(_))));
    assert!(ch.send("still open"));
    assert_eq!(w.read().unwrap().into_text().unwrap().as_str(), "still open");

    // HTTP: a stream body as the first piece keeps the response open; a reader body is a chunk.
    let (s, chans, _) = polling();
    let (mut c, ch) = open_poll(&s, &chans, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ch.send_with(Response::ok(Body::stream(vec!["a"])), false));
    assert!(ch.send_with(Response::ok(Body::reader(std::io::Cursor::new(b"b".to_vec()))), false));
    assert!(ch.send_with("c", true));
    let r = c.read_response().unwrap();
    assert_eq!((r.header("transfer-encoding"), r.text().as_str()), (Some("chunked"), "abc"));
}

#[test]
fn a_handler_that_panics_after_starting_a_stream_cuts_the_connection() {
    let log: Log = Arc::default();
    let handlers = {
        let l = log.clone();
        ChannelHandlers::new()
            .on_open(|ch| {
                ch.send_with("a", false);
                panic!("on_open failed after a piece");
            })
            .on_close(move |_c, st| l.lock().unwrap().push(format!("close {:?}", st.kind())))
    };
    let s = start(move |req: Request| as_channel(&req, handlers.clone()), opts());
    let mut c = Client::connect(addr(&s));
    c.send(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n");
    // Never a complete (and so misleading) response: the connection ends instead.
    assert!(c.read_response().is_err());
    assert!(c.is_closed_within(Duration::from_secs(10)));
    wait_until("on_close", || log.lock().unwrap().len() == 1);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(log.lock().unwrap().len(), 1, "on_close once");
}

#[test]
fn whole_body_reads_are_bounded_and_checked() {
    use httpkit::{Body, SendError};
    let (s, kept) = keeping_server(opts());
    let mut w = ws(addr(&s));
    let ch = kept_channel(&kept);
    // An endless reader is refused, not read forever.
    let endless = Body::reader(std::io::repeat(b'x'));
    match ch.try_send(Response::ok(endless), false) {
        Err(SendError::Body(e)) => assert!(e.to_string().contains("64 MiB"), "{e}"),
        other => panic!("expected a body error, got {other:?}"),
    }
    // A file that shrank after it was opened is an error, not a short message.
    let path = std::env::temp_dir().join(format!("httpkit-shrink-{}", std::process::id()));
    std::fs::write(&path, b"0123456789").unwrap();
    let body = Body::from_path(&path).unwrap();
    std::fs::write(&path, b"0123").unwrap();
    assert!(matches!(ch.try_send(Response::ok(body), false), Err(SendError::Body(_))));
    let _ = std::fs::remove_file(&path);
    assert!(ch.send("still fine"));
    assert_eq!(w.read().unwrap().into_text().unwrap().as_str(), "still fine");
}
