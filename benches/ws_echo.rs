//! A closed-loop WebSocket echo client (one thread, mio): CONNS connections each send a SIZE
//! byte binary message, wait for its echo, send the next. Reports messages/s, p50/p99 of the
//! round trip and the server's CPU (from /proc/PID/stat) over the measured window; with `idle`,
//! opens CONNS WebSockets, holds them, and reports the server's RSS growth per connection.
//!
//! Run through `benches/ws.sh`, or:
//! `cargo bench --bench ws_echo -- echo PORT PATH CONNS SIZE SECS SERVER_PID`
//! `cargo bench --bench ws_echo -- idle PORT PATH CONNS SERVER_PID`

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

fn handshake(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).ok();
    s.write_all(
        format!(
            "GET {path} HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("handshake");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).expect("handshake answer");
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    s
}

/// A masked binary frame of `size` bytes, as a client sends it.
fn frame(size: usize) -> Vec<u8> {
    let mut f = vec![0x82];
    match size {
        0..=125 => f.push(0x80 | size as u8),
        126..=65535 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(size as u16).to_be_bytes());
        }
        _ => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(size as u64).to_be_bytes());
        }
    }
    let mask = [1u8, 2, 3, 4];
    f.extend_from_slice(&mask);
    f.extend((0..size).map(|i| (i as u8) ^ mask[i % 4]));
    f
}

/// The length of the server's frame at the start of `b` (unmasked), if its head is there.
fn frame_len(b: &[u8]) -> Option<usize> {
    if b.len() < 2 {
        return None;
    }
    match b[1] & 0x7f {
        126 if b.len() >= 4 => Some(4 + usize::from(u16::from_be_bytes([b[2], b[3]]))),
        127 if b.len() >= 10 => Some(10 + u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize),
        126 | 127 => None,
        n => Some(2 + usize::from(n)),
    }
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: utime is the 12th, stime the 13th.
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Conn {
    s: mio::net::TcpStream,
    out: usize,
    inbuf: Vec<u8>,
    sent: Instant,
}

fn echo(addr: SocketAddr, path: &str, n: usize, size: usize, secs: u64, pid: u32) {
    let msg = frame(size);
    let mut poll = Poll::new().unwrap();
    let mut conns: Vec<Conn> = (0..n)
        .map(|i| {
            let s = handshake(addr, path);
            s.set_nonblocking(true).unwrap();
            let mut s = mio::net::TcpStream::from_std(s);
            poll.registry().register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE).unwrap();
            Conn { s, out: 0, inbuf: Vec::with_capacity(size + 16), sent: Instant::now() }
        })
        .collect();
    let mut events = Events::with_capacity(1024);
    let start = Instant::now();
    let warm = Duration::from_secs(1);
    let end = warm + Duration::from_secs(secs);
    let mut lat: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut count = 0u64;
    let mut total = 0u64; // with the warm-up: what a server-side counter saw
    let mut t0 = None;
    let mut buf = vec![0u8; 1 << 16];
    // Every connection starts with a message to send.
    let mut pending: Vec<usize> = (0..n).collect();
    loop {
        let el = start.elapsed();
        if el >= end {
            break;
        }
        if el >= warm && t0.is_none() {
            t0 = Some((Instant::now(), cpu_ticks(pid)));
        }
        for i in pending.drain(..) {
            let c = &mut conns[i];
            while c.out < msg.len() {
                match c.s.write(&msg[c.out..]) {
                    Ok(k) => c.out += k,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("write: {e}"),
                }
            }
        }
        poll.poll(&mut events, Some(Duration::from_millis(100))).unwrap();
        for ev in &events {
            let i = ev.token().0;
            let c = &mut conns[i];
            if ev.is_writable() && c.out < msg.len() {
                pending.push(i);
            }
            if !ev.is_readable() {
                continue;
            }
            loop {
                match c.s.read(&mut buf) {
                    Ok(0) => panic!("connection {i} closed"),
                    Ok(k) => c.inbuf.extend_from_slice(&buf[..k]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read: {e}"),
                }
            }
            while let Some(len) = frame_len(&c.inbuf) {
                if c.inbuf.len() < len {
                    break;
                }
                assert_eq!(len - (len - size), size, "echo of another size");
                c.inbuf.drain(..len);
                total += 1;
                if t0.is_some() {
                    count += 1;
                    lat.push(c.sent.elapsed().as_micros() as u32);
                }
                c.sent = Instant::now();
                c.out = 0;
                pending.push(i);
            }
        }
    }
    let (t, ticks) = t0.expect("measured");
    let secs = t.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid) - ticks) as f64 / 100.0;
    lat.sort_unstable();
    let p = |q: f64| lat.get(((lat.len() as f64) * q) as usize).copied().unwrap_or(0);
    println!(
        "{path} {n} x {size} B: {:.0} msgs/s  {:.0} msgs per server CPU-s  server CPU {:.0}%  p50 {} us  p99 {} us  ({total} echoes in all)",
        count as f64 / secs,
        if cpu > 0.0 { count as f64 / cpu } else { 0.0 },
        100.0 * cpu / secs,
        p(0.5),
        p(0.99)
    );
}

fn idle(addr: SocketAddr, path: &str, n: usize, pid: u32) {
    let before = rss_kib(pid);
    let conns: Vec<TcpStream> = (0..n).map(|_| handshake(addr, path)).collect();
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_kib(pid);
    println!(
        "{path} {n} idle WebSockets: server RSS +{} KiB, {:.0} B per connection",
        after.saturating_sub(before),
        (after.saturating_sub(before) as f64 * 1024.0) / n as f64
    );
    drop(conns);
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let arg = |i: usize| a.get(i).cloned().unwrap_or_default();
    let port: u16 = arg(1).parse().expect("PORT");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    match arg(0).as_str() {
        "echo" => echo(
            addr,
            &arg(2),
            arg(3).parse().expect("CONNS"),
            arg(4).parse().expect("SIZE"),
            arg(5).parse().expect("SECS"),
            arg(6).parse().expect("SERVER_PID"),
        ),
        "idle" => idle(addr, &arg(2), arg(3).parse().expect("CONNS"), arg(4).parse().expect("SERVER_PID")),
        other => eprintln!("usage: ws_echo echo|idle ... (got {other:?})"),
    }
}
