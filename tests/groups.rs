//! Channel groups over real sockets: broadcast to WebSockets and long-polls, members leave by
//! themselves when they close, a full member is skipped or closed and never holds the others.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::io::Read;
use std::time::Duration;

use httpkit::{as_channel, ChannelGroup, ChannelHandlers, Request, WhenFull};
use util::*;

fn room_server(room: &ChannelGroup) -> httpkit::Server {
    let (join, say) = (room.clone(), room.clone());
    let handlers = ChannelHandlers::new()
        .on_open(move |ch| {
            assert!(join.join(ch));
        })
        .on_receive(move |_ch, m| {
            say.broadcast(format!("all: {}", m.to_text()));
        });
    start(move |req: Request| as_channel(&req, handlers.clone()), opts().write_buffer(64 << 10))
}

fn ws(addr: std::net::SocketAddr) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>> {
    let (mut ws, _) = tungstenite::connect(format!("ws://{addr}/room")).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    }
    ws
}

#[test]
fn a_broadcast_reaches_every_member_and_closed_ones_leave() {
    let room = ChannelGroup::new();
    let s = room_server(&room);
    let mut members: Vec<_> = (0..20).map(|_| ws(addr(&s))).collect();
    wait_until("20 members", || room.len() == 20);
    members[0].send(tungstenite::Message::text("hi")).unwrap();
    for m in &mut members {
        assert_eq!(m.read().unwrap().into_text().unwrap().as_str(), "all: hi");
    }
    // A long-poll member is answered with the broadcast (and closes, as a send does).
    let mut poll = Client::connect(addr(&s));
    poll.send(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_until("21 members", || room.len() == 21);
    let report = room.broadcast("news");
    assert_eq!((report.sent, report.skipped, report.gone), (21, 0, 0));
    assert_eq!(poll.read_response().unwrap().text(), "news");
    for m in &mut members {
        assert_eq!(m.read().unwrap().into_text().unwrap().as_str(), "news");
    }
    // Closed members leave by themselves: the answered long-poll, and ten WebSockets.
    for mut m in members.drain(..10) {
        m.close(None).unwrap();
        while m.read().is_ok() {}
    }
    wait_until("10 members left", || room.len() == 10);
    assert_eq!(room.broadcast("again").sent, 10);
}

fn full_room(policy: WhenFull) -> (ChannelGroup, httpkit::Server, Vec<std::net::TcpStream>) {
    let room = ChannelGroup::when_full(policy);
    let s = room_server(&room);
    // One member that never reads, nine that do.
    let (slow, _) = ws_connect(addr(&s), "/room", "");
    wait_until("the slow member", || room.len() == 1);
    let readers: Vec<_> = (0..9).map(|_| ws_connect(addr(&s), "/room", "").0.stream).collect();
    wait_until("10 members", || room.len() == 10);
    (room, s, std::iter::once(slow.stream).chain(readers).collect())
}

/// Reads frames of `size` payload bytes from a raw WebSocket stream until `n` have come.
fn drain(s: &mut std::net::TcpStream, n: usize, size: usize) {
    let frame = 4 + size; // 126-form head: 2 + 2 bytes
    let mut buf = vec![0u8; frame];
    for _ in 0..n {
        s.read_exact(&mut buf).unwrap();
    }
}

#[test]
fn a_member_that_does_not_read_is_skipped_and_never_holds_the_others() {
    let (room, _s, mut socks) = full_room(WhenFull::Skip);
    let msg = vec![7u8; 60 << 10];
    let mut skipped = 0;
    // Until the slow member's socket buffers and write buffer are full, and then some.
    for _ in 0..1000 {
        let r = room.broadcast(bytes::Bytes::from(msg.clone()));
        skipped += r.skipped;
        assert_eq!(r.sent + r.skipped, 10, "{r:?}");
        // The readers keep up.
        for s in &mut socks[1..] {
            drain(s, 1, msg.len());
        }
        if skipped >= 20 {
            break;
        }
    }
    assert!(skipped > 0, "the slow member was never full");
    assert_eq!(room.len(), 10, "skipped members stay");
}

#[test]
fn with_when_full_close_a_member_that_does_not_read_is_closed() {
    let (room, _s, mut socks) = full_room(WhenFull::Close);
    let msg = vec![7u8; 60 << 10];
    let mut closed = 0;
    for _ in 0..1000 {
        let r = room.broadcast(bytes::Bytes::from(msg.clone()));
        closed += r.closed_full;
        for s in &mut socks[1..] {
            drain(s, 1, msg.len());
        }
        if closed > 0 {
            break;
        }
    }
    assert_eq!(closed, 1, "the slow member is closed once");
    wait_until("the slow member to leave", || room.len() == 9);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(room.broadcast("still here").sent, 9);
}
