//! The seed's first app: every request gets `200`, `Content-Type: text/html`, `hello HTTP!`.
//!
//! `cargo run --release --example hello [PORT]` (default 8080); Ctrl-C stops it gracefully.

use std::time::Duration;

use httpkit::{run_server, Options, Request, Response};

fn app(_req: Request) -> Response {
    Response::ok("hello HTTP!").header("content-type", "text/html")
}

fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8080);
    let server = run_server(app, Options::default().port(port))?;
    println!("hello: listening on http://127.0.0.1:{}/ (Ctrl-C to stop)", server.port().unwrap_or(port));
    let (tx, rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .map_err(std::io::Error::other)?;
    let _ = rx.recv();
    // Graceful shutdown: wait up to 100 ms for requests in progress.
    server.stop_graceful(Duration::from_millis(100));
    println!("hello: stopped");
    Ok(())
}
