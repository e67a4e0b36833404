//! Memory per idle keep-alive connection: opens N connections (default 5000), makes one
//! request on each, then reports the growth of this process's RSS per connection.
//! The clients live in the same process but hold only a socket each, so the growth is the
//! server's. Run: `ulimit -n 20000; cargo bench --bench idle_memory -- 5000 [REACTORS]`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use httpkit::{run_server, Options, Request, Response};

#[path = "../tests/util/mod.rs"]
mod util;
use util::rss_kib;

fn open(addr: std::net::SocketAddr, buf: &mut [u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut got = 0;
    while !buf[..got].windows(11).any(|w| w == b"hello HTTP!") {
        let n = s.read(&mut buf[got..]).expect("read");
        assert!(n > 0, "closed");
        got += n;
    }
    s
}

fn main() {
    let mut nums = std::env::args().skip(1).filter_map(|a| a.parse::<usize>().ok());
    let n = nums.next().unwrap_or(5000);
    let reactors = nums.next().unwrap_or(1);
    let server = run_server(
        |_r: Request| Response::ok("hello HTTP!"),
        Options::default()
            .ip("127.0.0.1")
            .port(0)
            .reactors(reactors)
            .idle_timeout(Duration::from_secs(600))
            .max_connections(n + 100),
    )
    .expect("server");
    let addr = server.local_addr().expect("addr");
    let mut buf = vec![0u8; 4096];
    // Warm up allocator, pools and the slab's first pages.
    let warm: Vec<TcpStream> = (0..200).map(|_| open(addr, &mut buf)).collect();
    drop(warm);
    std::thread::sleep(Duration::from_millis(500));
    let mut conns = Vec::with_capacity(n);
    let before = rss_kib();
    for _ in 0..n {
        conns.push(open(addr, &mut buf));
    }
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_kib();
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / n as f64;
    println!("idle keep-alive connections: {n} ({reactors} reactors); open on server: {}", server.connections_open());
    println!("RSS before {before} KiB, after {after} KiB: {per:.0} bytes per idle connection");
    drop(conns);
    server.stop();
}
