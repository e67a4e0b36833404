//! The seed's "virtual threads" section: every request runs on a thread of its own (the Rust
//! stand-in for `newVirtualThreadPerTaskExecutor`), here capped at 10 000 live threads.
//!
//! `cargo run --release --example thread_per_task [PORT]` (default 8080). SIGINT (Ctrl-C) or
//! SIGTERM stops it gracefully.

mod common;

use std::time::Duration;

use httpkit::{run_server, Options, Request, Response, ThreadPerTask};

fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8080);
    let pool = ThreadPerTask::new().max_threads(10_000);
    let signals = common::Signals::install()?;
    let server = run_server(|_req: Request| Response::ok("Hello"), Options::default().port(port).worker_pool(pool))?;
    println!("thread_per_task: listening on http://127.0.0.1:{}/", server.port().unwrap_or(port));
    common::serve_until_signal(&signals, &server, Duration::from_millis(100));
    Ok(())
}
