//! permessage-deflate (RFC 7692) over real sockets, both WebSocket APIs: negotiation, compressed
//! echoes with and without context takeover, window sizes honoured or declined, a zip bomb
//! refused with 1009, broken data with 1007, and broadcasts to compressed and plain members.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use httpkit::{
    as_channel, websocket_response, ChannelGroup, ChannelHandlers, Request, Socket, WebSocketListener, WsCompression,
};
use util::*;

const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// A client's compressor and inflater, as a browser keeps them (context kept unless asked).
struct Peer {
    c: Compress,
    d: Decompress,
    reset_c: bool,
}

impl Peer {
    fn new(server_window: u8) -> Self {
        Self {
            c: Compress::new_with_window_bits(Compression::new(6), false, 15),
            d: Decompress::new_with_window_bits(false, server_window),
            reset_c: false,
        }
    }

    fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        let start = self.c.total_in();
        loop {
            let pos = (self.c.total_in() - start) as usize;
            self.c.compress_vec(&data[pos..], &mut out, FlushCompress::Sync).unwrap();
            if (self.c.total_in() - start) as usize == data.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        assert!(out.ends_with(&TAIL));
        out.truncate(out.len() - 4);
        if self.reset_c {
            self.c.reset();
        }
        out
    }

    fn inflate(&mut self, data: &[u8]) -> Vec<u8> {
        let mut input = data.to_vec();
        input.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity(1 << 22);
        let start = self.d.total_in();
        self.d.decompress_vec(&input, &mut out, FlushDecompress::Sync).expect("the server's data inflates");
        assert_eq!((self.d.total_in() - start) as usize, input.len(), "all consumed");
        out
    }
}

/// Echo servers on /ws (channel API) and /ring (listener API).
fn echo_server(c: WsCompression, max_ws: usize) -> httpkit::Server {
    struct Echo;
    impl WebSocketListener for Echo {
        fn on_message(&self, s: &Socket, m: httpkit::Message) {
            let _ = s.send(m);
        }
    }
    let handlers = ChannelHandlers::new().on_receive(|ch, m| {
        ch.send(m);
    });
    start(
        move |req: Request| {
            if req.path() == "/ring" {
                websocket_response(Echo)
            } else {
                as_channel(&req, handlers.clone())
            }
        },
        opts().ws_compression(c).max_ws(max_ws),
    )
}

fn json(n: usize) -> String {
    (0..n).map(|i| format!("{{\"id\":{i},\"user\":\"ann\",\"text\":\"hello there\"}},")).collect()
}

#[test]
fn compressed_echo_on_both_apis_with_context_kept() {
    let s = echo_server(WsCompression::default().context_takeover(true), 4 << 20);
    for path in ["/ws", "/ring"] {
        let (mut c, r) =
            ws_connect(addr(&s), path, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
        assert_eq!(r.status, 101);
        assert_eq!(r.header("sec-websocket-extensions"), Some("permessage-deflate"), "{path}");
        let mut peer = Peer::new(15);
        let mut sizes = Vec::new();
        for round in 0..3 {
            let msg = json(40 + round);
            let wire = peer.compress(msg.as_bytes());
            // The client keeps its context: the second message refers back to the first.
            c.send(&client_frame(0x41, true, &wire));
            let (b0, payload) = c.read_frame_bits().unwrap();
            assert_eq!(b0, 0x80 | 0x40 | 0x1, "{path}: FIN, RSV1, text");
            sizes.push(payload.len());
            assert_eq!(String::from_utf8(peer.inflate(&payload)).unwrap(), msg, "{path}");
        }
        assert!(sizes[0] < json(40).len() / 4, "{path}: compressed: {sizes:?}");
        assert!(sizes[1] < sizes[0] / 2, "{path}: the server kept its context: {sizes:?}");
        // A small message goes out uncompressed (under min_size), a fragmented compressed
        // binary message is assembled before it inflates.
        c.send(&client_frame(0x1, true, b"hi"));
        assert_eq!(c.read_frame_bits().unwrap(), (0x81, b"hi".to_vec()));
        let bin: Vec<u8> = json(30).into_bytes();
        let wire = peer.compress(&bin);
        let (a, b) = wire.split_at(wire.len() / 2);
        c.send(&client_frame(0x42, false, a));
        c.send(&client_frame(0x9, true, b"ping"));
        c.send(&client_frame(0x0, true, b));
        let (b0, pong) = c.read_frame_bits().unwrap();
        assert_eq!((b0, pong), (0x8A, b"ping".to_vec()), "pong, uncompressed");
        let (b0, payload) = c.read_frame_bits().unwrap();
        assert_eq!(b0, 0xC2);
        assert_eq!(peer.inflate(&payload), bin);
        c.send(&client_frame(0x8, true, &1000u16.to_be_bytes()));
        assert_eq!(c.read_close().unwrap().0, Some(1000));
    }
}

#[test]
fn without_context_takeover_each_message_stands_alone() {
    // The defaults: the server drops its context; asked, clients drop theirs.
    let s = echo_server(WsCompression::default().client_no_context_takeover(true), 4 << 20);
    let (mut c, r) = ws_connect(
        addr(&s),
        "/ws",
        "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_max_window_bits=10\r\n",
    );
    assert_eq!(
        r.header("sec-websocket-extensions"),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10")
    );
    // The server's window is 10 bits: an inflater with only 1 KiB of history reads every message
    // (a repeat 2 000 bytes back would break it if the server used a larger window).
    let block: String = (0..2000u32).map(|i| char::from(b'a' + ((i * 7919 + i / 13) % 26) as u8)).collect();
    let msg = format!("{block}{block}");
    for _ in 0..2 {
        let mut peer = Peer::new(10);
        peer.reset_c = true;
        let wire = peer.compress(msg.as_bytes());
        c.send(&client_frame(0x41, true, &wire));
        let (b0, payload) = c.read_frame_bits().unwrap();
        assert_eq!(b0, 0xC1);
        // A fresh inflater each time: no message refers to an earlier one.
        assert_eq!(String::from_utf8(peer.inflate(&payload)).unwrap(), msg);
    }
}

#[test]
fn offers_the_server_cannot_honour_are_declined() {
    let s = echo_server(WsCompression::default(), 4 << 20);
    for offer in [
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; unknown_param",
        "permessage-deflate; client_max_window_bits=20",
        "x-webkit-deflate-frame",
    ] {
        let (mut c, r) = ws_connect(addr(&s), "/ws", &format!("Sec-WebSocket-Extensions: {offer}\r\n"));
        assert_eq!(r.status, 101);
        assert_eq!(r.header("sec-websocket-extensions"), None, "{offer}");
        let text = json(10);
        c.send(&client_frame(0x1, true, text.as_bytes()));
        assert_eq!(c.read_frame_bits().unwrap(), (0x81, text.into_bytes()), "uncompressed echo");
        // Without the extension RSV1 is a protocol error.
        c.send(&client_frame(0x41, true, b"x"));
        assert_eq!(c.read_close().unwrap().0, Some(1002));
    }
    // A later acceptable offer is taken.
    let (_c, r) = ws_connect(
        addr(&s),
        "/ring",
        "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8, permessage-deflate\r\n",
    );
    assert_eq!(r.header("sec-websocket-extensions"), Some("permessage-deflate"));
    // Compression off (the default): an offer gets no extension.
    let plain = start(|req: Request| as_channel(&req, ChannelHandlers::new()), opts());
    let (_c, r) = ws_connect(addr(&plain), "/", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    assert_eq!((r.status, r.header("sec-websocket-extensions")), (101, None));
}

#[test]
fn a_zip_bomb_is_1009_and_garbage_is_1007() {
    let s = echo_server(WsCompression::default(), 64 << 10);
    for path in ["/ws", "/ring"] {
        let (mut c, _) = ws_connect(addr(&s), path, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
        let mut peer = Peer::new(15);
        // 16 MiB of zeros are about 16 KiB on the wire, far under the limit; inflated, far over.
        let wire = peer.compress(&vec![0u8; 16 << 20]);
        assert!(wire.len() < 64 << 10);
        c.send(&client_frame(0x42, true, &wire));
        assert_eq!(c.read_close().unwrap().0, Some(1009), "{path}");

        let (mut c, _) = ws_connect(addr(&s), path, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
        c.send(&client_frame(0x42, true, &[0xff; 40]));
        assert_eq!(c.read_close().unwrap().0, Some(1007), "{path}");
    }
}

#[test]
fn a_broadcast_is_encoded_per_wire_form() {
    let room = ChannelGroup::new();
    let join = room.clone();
    let handlers = ChannelHandlers::new().on_open(move |ch| {
        join.join(ch);
    });
    let s =
        start(move |req: Request| as_channel(&req, handlers.clone()), opts().ws_compression(WsCompression::default()));
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    let (mut z1, _) = ws_connect(addr(&s), "/", offer);
    let (mut z2, _) = ws_connect(addr(&s), "/", offer);
    let (mut plain, _) = ws_connect(addr(&s), "/", "");
    wait_until("3 members", || room.len() == 3);
    let msg = json(50);
    for _ in 0..2 {
        let report = room.broadcast(msg.clone());
        assert_eq!(report.sent, 3);
        for z in [&mut z1, &mut z2] {
            let (b0, p) = z.read_frame_bits().unwrap();
            assert_eq!(b0, 0xC1);
            assert!(p.len() < msg.len() / 4);
            assert_eq!(String::from_utf8(Peer::new(15).inflate(&p)).unwrap(), msg);
        }
        assert_eq!(plain.read_frame_bits().unwrap(), (0x81, msg.clone().into_bytes()));
    }
}
