//! The seed's "Stop server": an immediate stop breaks requests in progress, a graceful one lets
//! them finish (up to a timeout).
//!
//! `cargo run --example stop [PORT] [immediate|graceful]` (default 8080, graceful). Try
//! `curl localhost:8080/slow` (a 1 s request) and press Ctrl-C (or `kill` the process: SIGTERM)
//! while it runs: `graceful` waits up to 2 s so curl gets its answer; `immediate` cuts it off.

mod common;

use std::time::Duration;

use httpkit::{run_server, Options, Request, Response};

fn app(req: Request) -> Response {
    if req.path() == "/slow" {
        std::thread::sleep(Duration::from_secs(1));
    }
    Response::ok("hello HTTP!").header("content-type", "text/html")
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(8080);
    let immediate = args.next().as_deref() == Some("immediate");
    let signals = common::Signals::install()?;
    let server = run_server(app, Options::default().port(port))?;
    println!("stop: listening on http://127.0.0.1:{}/ ({:?})", server.port().unwrap_or(port), server.status());
    signals.wait(); // SIGINT (Ctrl-C) or SIGTERM
    if immediate {
        eprintln!("stopping immediately");
        server.stop(); // (my-server): breaks requests in progress
    } else {
        eprintln!("stopping gracefully (up to 2 s)");
        server.stop_graceful(Duration::from_secs(2)); // (my-server :timeout 2000)
    }
    println!("stop: {:?}", server.status());
    Ok(())
}
