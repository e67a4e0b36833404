//! The ceiling of a one-reactor design on this machine: `floor PORT [THREADS]` (default 1).
//!
//! One thread, mio edge-triggered, no HTTP parsing beyond finding the blank line, no hand-off,
//! no allocation per request: every complete request head read gets a canned response of the
//! same size as httpkit's hello answer. Nothing built on one reactor thread that reads and writes
//! every socket can beat this on the same syscalls; it is here to show where that ceiling is.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nserver: httpkit\r\ndate: Thu, 26 Nov 2026 08:00:00 GMT\r\ncontent-type: text/html\r\ncontent-length: 11\r\n\r\nhello HTTP!";

fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8082);
    let threads: usize = std::env::args().nth(2).and_then(|p| p.parse().ok()).unwrap_or(1);
    let std_listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).expect("bind");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let mut handles = Vec::new();
    for _ in 1..threads {
        let l = std_listener.try_clone().expect("clone");
        handles.push(std::thread::spawn(move || reactor(TcpListener::from_std(l))));
    }
    reactor(TcpListener::from_std(std_listener));
}

/// One event loop over the shared listener (with `threads` > 1, each loop accepts its own share).
fn reactor(mut listener: TcpListener) {
    let mut poll = Poll::new().expect("poll");
    poll.registry().register(&mut listener, Token(0), Interest::READABLE).expect("register");
    let mut events = Events::with_capacity(1024);
    let mut conns: HashMap<usize, (TcpStream, usize)> = HashMap::new();
    let mut next = 1usize;
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::with_capacity(65536);
    loop {
        poll.poll(&mut events, None).expect("poll");
        for ev in &events {
            if ev.token() == Token(0) {
                while let Ok((mut s, _)) = listener.accept() {
                    let _ = s.set_nodelay(true);
                    poll.registry().register(&mut s, Token(next), Interest::READABLE).expect("register");
                    conns.insert(next, (s, 0));
                    next += 1;
                }
                continue;
            }
            let key = ev.token().0;
            let mut close = false;
            if let Some((s, matched)) = conns.get_mut(&key) {
                out.clear();
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => {
                            close = true;
                            break;
                        }
                        Ok(n) => {
                            for &b in &buf[..n] {
                                let want = b"\r\n\r\n"[*matched];
                                *matched = if b == want {
                                    *matched + 1
                                } else if b == b'\r' {
                                    1
                                } else {
                                    0
                                };
                                if *matched == 4 {
                                    out.extend_from_slice(RESPONSE);
                                    *matched = 0;
                                }
                            }
                            if n < buf.len() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => {
                            close = true;
                            break;
                        }
                    }
                }
                if !out.is_empty() && s.write_all(&out).is_err() {
                    close = true;
                }
            }
            if close {
                conns.remove(&key);
            }
        }
    }
}
