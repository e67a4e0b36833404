//! The seed's first app: every request gets `200`, `Content-Type: text/html`, `hello HTTP!`.
//!
//! `cargo run --release --example hello [PORT]` (default 8080); Ctrl-C or SIGTERM stops it
//! gracefully.

mod common;

use std::time::Duration;

use httpkit::{run_server, Options, Request, Response};

fn app(_req: Request) -> Response {
    Response::ok("hello HTTP!").header("content-type", "text/html")
}

fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8080);
    let signals = common::Signals::install()?;
    let server = run_server(app, Options::default().port(port))?;
    println!("hello: listening on http://127.0.0.1:{}/ (Ctrl-C to stop)", server.port().unwrap_or(port));
    // Graceful shutdown on SIGINT / SIGTERM: wait up to 100 ms for requests in progress.
    common::serve_until_signal(&signals, &server, Duration::from_millis(100));
    println!("hello: stopped");
    Ok(())
}
