//! Server memory under clients that upload large bodies and never read: each of N clients
//! (default 1000) pipelines 20 `POST`s of 8 MiB to an echo handler and reads nothing back. Per
//! connection the server holds a body being read, a held pipelined body and a queued echo; the
//! server-wide buffer budget (`Options::buffer_budget`) bounds the sum. Reports the peak RSS of
//! this process (the clients only hold sockets and one shared 8 MiB source buffer) and the
//! server's own count of buffered bytes.
//!
//! Run: `ulimit -n 20000; cargo bench --bench buffer_budget -- [CLIENTS] [BUDGET_MIB]`
//! (`BUDGET_MIB` 0 means no budget, as before the budget existed; mind the machine's memory).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use httpkit::{run_server, Options, Request, Response};

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

const BODY: usize = 8 << 20;
const REQUESTS: usize = 20;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let budget_mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(256);
    let budget = if budget_mib == 0 { usize::MAX } else { budget_mib << 20 };
    let echo = |mut req: Request| Response::ok(req.take_body().unwrap_or_default());
    let opts = Options::default()
        .ip("127.0.0.1")
        .port(0)
        .buffer_budget(budget)
        .body_buffer_size(usize::MAX)
        .max_connections(clients + 100);
    let server = run_server(echo, opts).expect("server");
    let addr = server.local_addr().expect("addr");
    let base = status_kib("VmRSS:");

    let head = format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY}\r\n\r\n").into_bytes();
    let body = vec![b'x'; BODY];
    let per_request = head.len() + BODY;
    let mut conns: Vec<(TcpStream, usize)> = (0..clients)
        .map(|_| {
            let s = TcpStream::connect(addr).expect("connect (raise the open-file limit: ulimit -n 20000)");
            s.set_nonblocking(true).unwrap();
            (s, 0)
        })
        .collect();
    // Write as long as anyone makes progress (bounded in time), reading nothing.
    let t0 = Instant::now();
    let mut last_progress = Instant::now();
    let mut peak_buffered = 0;
    while last_progress.elapsed() < Duration::from_secs(3) && t0.elapsed() < Duration::from_secs(60) {
        let mut progressed = false;
        for (s, sent) in conns.iter_mut() {
            while *sent < per_request * REQUESTS {
                let off = *sent % per_request;
                let chunk = if off < head.len() { &head[off..] } else { &body[off - head.len()..] };
                match s.write(&chunk[..chunk.len().min(256 * 1024)]) {
                    Ok(0) => break,
                    Ok(n) => {
                        *sent += n;
                        progressed = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        *sent = usize::MAX / 2; // refused and closed: done with this one
                        break;
                    }
                }
            }
        }
        peak_buffered = peak_buffered.max(server.buffered_bytes());
        if progressed {
            last_progress = Instant::now();
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let hwm = status_kib("VmHWM:");
    println!(
        "clients {clients}, budget {}: peak RSS {} MiB (start {} MiB), server's peak buffered bytes {} MiB, \
         {:.1} s",
        if budget_mib == 0 { "none".to_owned() } else { format!("{budget_mib} MiB") },
        hwm / 1024,
        base / 1024,
        peak_buffered >> 20,
        t0.elapsed().as_secs_f64()
    );
    drop(conns);
    server.stop();
}
