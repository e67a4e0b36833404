//! A broadcast of one 100-byte message to 10 000 WebSocket members of a `ChannelGroup`: the
//! time `broadcast` takes (the broadcaster's cost: the reactor writes afterwards) and the
//! allocations it makes (counting allocator), median of ROUNDS broadcasts; then how long until
//! every member has its copy. The members' clients run in a child process (file descriptors).
//!
//! With `deflate` the members negotiate permessage-deflate (the server's default
//! `WsCompression`: no context takeover), so the message is compressed once for all of them.
//!
//! Run: `ulimit -n 20000; cargo bench --bench broadcast -- [MEMBERS] [ROUNDS] [deflate]`

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use httpkit::{as_channel, ChannelGroup, ChannelHandlers, Options, Request};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// The child: opens `n` WebSockets, then reads every socket until each has `rounds` + 1
/// messages, and reports when.
fn clients(port: u16, n: usize, rounds: usize, deflate: bool) {
    let ext = if deflate { "Sec-WebSocket-Extensions: permessage-deflate\r\n" } else { "" };
    let handshake = format!(
        "GET /room HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut socks: Vec<TcpStream> = (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.write_all(handshake.as_bytes()).expect("handshake");
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut b).expect("101");
                head.push(b[0]);
            }
            s
        })
        .collect();
    println!("ready");
    std::io::stdout().flush().ok();
    // Each message is a 2-byte head and at most 125 bytes (100 plain, fewer compressed); the
    // last one is the "timed" one.
    let mut buf = [0u8; 128];
    for s in &mut socks {
        for _ in 0..=rounds {
            s.read_exact(&mut buf[..2]).expect("head");
            let len = usize::from(buf[1] & 0x7f);
            s.read_exact(&mut buf[..len]).expect("message");
        }
    }
    println!("done");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if args.first().map(String::as_str) == Some("clients") {
        clients(args[1].parse().unwrap(), args[2].parse().unwrap(), args[3].parse().unwrap(), args.len() > 4);
        return;
    }
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(9);
    let deflate = args.get(2).map(String::as_str) == Some("deflate");
    let room = ChannelGroup::new();
    let join = room.clone();
    let handlers = ChannelHandlers::new().on_open(move |ch| {
        join.join(ch);
    });
    let server = httpkit::run_server(move |req: Request| as_channel(&req, handlers.clone()), {
        let o = Options::default().ip("127.0.0.1").port(0).max_connections(n + 100);
        if deflate {
            o.ws_compression(httpkit::WsCompression::default())
        } else {
            o
        }
    })
    .expect("server");
    let port = server.port().expect("port");
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["clients", &port.to_string(), &n.to_string(), &rounds.to_string()]);
    if deflate {
        cmd.arg("deflate");
    }
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().expect("clients");
    let mut out = child.stdout.take().unwrap();
    let mut line = [0u8; 6];
    out.read_exact(&mut line).expect("ready");
    let t = Instant::now();
    while room.len() < n {
        assert!(t.elapsed() < Duration::from_secs(60), "only {} members", room.len());
        std::thread::sleep(Duration::from_millis(10));
    }
    let msg = bytes::Bytes::from(vec![b'x'; 100]);
    let mut times = Vec::new();
    let mut allocs = Vec::new();
    let mut report = None;
    for _ in 0..rounds {
        let region = Region::new(GLOBAL);
        let t = Instant::now();
        let r = room.broadcast(msg.clone());
        times.push(t.elapsed());
        allocs.push(region.change().allocations);
        report = Some(r);
        std::thread::sleep(Duration::from_millis(200));
    }
    let t = Instant::now();
    room.broadcast(msg.clone());
    let mut done = [0u8; 5];
    out.read_exact(&mut done).expect("done");
    let delivered = t.elapsed();
    times.sort();
    allocs.sort_unstable();
    println!(
        "broadcast of 100 B to {n} members{}: {:?} per broadcast (median of {rounds}; min {:?}, max {:?}), \
         {} allocations ({:.3} per member), all delivered {:?} after the call; last report {:?}",
        if deflate { " (compressed)" } else { "" },
        times[rounds / 2],
        times[0],
        times[rounds - 1],
        allocs[rounds / 2],
        allocs[rounds / 2] as f64 / n as f64,
        delivered,
        report
    );
    let _ = child.wait();
    server.stop();
}
