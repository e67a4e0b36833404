//! The seed's Unix domain socket section: serve on a socket file instead of a TCP port.
//!
//! `cargo run --example uds [PATH]` (default `/tmp/httpkit.sock`), then
//! `curl --unix-socket /tmp/httpkit.sock http://localhost/`. Ctrl-C or SIGTERM stops it
//! gracefully (and removes the socket file).

mod common;

use std::time::Duration;

use httpkit::{run_server, Options, Request, Response};

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "/tmp/httpkit.sock".to_owned());
    let signals = common::Signals::install()?;
    let server = run_server(
        |req: Request| Response::ok(format!("hello over a Unix socket: {} {}\n", req.method(), req.path())),
        Options::default().unix_socket(&path),
    )?;
    println!("uds: listening on {path} (Ctrl-C to stop; the socket file is removed on a clean stop)");
    common::serve_until_signal(&signals, &server, Duration::from_millis(100));
    Ok(())
}
