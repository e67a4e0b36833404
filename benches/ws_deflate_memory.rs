//! Memory per WebSocket that has exchanged one compressed message, for each permessage-deflate
//! setting: opens N WebSockets (default 2000) to an in-process echo server, sends each one 2 KiB
//! JSON message (compressed when the mode compresses; the same precomputed bytes for every
//! connection, so the clients hold no compressor) and reads its echo, then reports the growth of
//! the process's RSS per connection. The clients hold only a socket each, so the growth is the
//! server's.
//!
//! Run: `ulimit -n 20000; cargo bench --bench ws_deflate_memory -- N MODE` with MODE one of
//! `off` (no compression), `default` (`WsCompression::default()`: server context dropped,
//! client context kept), `no-context` (both dropped), `takeover` (both kept).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use flate2::{Compress, Compression, FlushCompress};
use httpkit::{as_channel, run_server, ChannelHandlers, Options, Request, WsCompression};

#[path = "../tests/util/mod.rs"]
mod util;
use util::rss_kib;

fn frame(op: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | op];
    assert!(payload.len() <= 0xffff);
    if payload.len() < 126 {
        out.push(0x80 | payload.len() as u8);
    } else {
        out.push(0x80 | 126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(&[0, 0, 0, 0]); // mask 0: the payload as is
    out.extend_from_slice(payload);
    out
}

fn open(addr: std::net::SocketAddr, offer: bool, msg: &[u8], buf: &mut [u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let ext = if offer { "Sec-WebSocket-Extensions: permessage-deflate\r\n" } else { "" };
    let hs = format!(
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
    );
    s.write_all(hs.as_bytes()).expect("write");
    s.write_all(msg).expect("write");
    // The 101, then the echo: wait for the echo's frame header and its payload.
    let mut got = 0;
    loop {
        let n = s.read(&mut buf[got..]).expect("read");
        assert!(n > 0, "closed");
        got += n;
        if let Some(end) = buf[..got].windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = &buf[end + 4..got];
            if rest.len() >= 4 {
                let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
                if rest.len() >= 4 + len {
                    return s;
                }
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let mode = args.get(1).map_or("default", String::as_str);
    let compression = match mode {
        "off" => None,
        "default" => Some(WsCompression::default()),
        "no-context" => Some(WsCompression::default().client_no_context_takeover(true)),
        "takeover" => Some(WsCompression::default().context_takeover(true)),
        m => panic!("unknown mode {m}"),
    };
    let mut opts =
        Options::default().ip("127.0.0.1").port(0).idle_timeout(Duration::from_secs(600)).max_connections(n + 300);
    if let Some(c) = compression {
        opts = opts.ws_compression(c);
    }
    let handlers = ChannelHandlers::new().on_receive(|ch, m| {
        ch.send(m);
    });
    let server = run_server(move |req: Request| as_channel(&req, handlers.clone()), opts).expect("server");
    let addr = server.local_addr().expect("addr");

    let text: String = (0..60).map(|i| format!("{{\"id\":{i},\"user\":\"ann\",\"text\":\"hello there\"}},")).collect();
    let msg = if compression.is_some() {
        let mut c = Compress::new_with_window_bits(Compression::new(6), false, 15);
        let mut out = Vec::with_capacity(text.len() + 64);
        c.compress_vec(text.as_bytes(), &mut out, FlushCompress::Sync).unwrap();
        out.truncate(out.len() - 4);
        frame(0x41, &out)
    } else {
        frame(0x1, text.as_bytes())
    };
    let mut buf = vec![0u8; 16 << 10];
    let warm: Vec<TcpStream> = (0..200).map(|_| open(addr, compression.is_some(), &msg, &mut buf)).collect();
    drop(warm);
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib();
    let conns: Vec<TcpStream> = (0..n).map(|_| open(addr, compression.is_some(), &msg, &mut buf)).collect();
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_kib();
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / n as f64;
    println!(
        "mode {mode}: {n} WebSockets after one {}-byte message each ({} on the wire): {per:.0} bytes per connection",
        text.len(),
        msg.len()
    );
    drop(conns);
}
