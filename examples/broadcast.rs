//! The seed's unified-API example: an HTML page for plain requests; every message a WebSocket
//! client sends is broadcast to all open channels, through a [`ChannelGroup`] (channels join
//! on open and leave by themselves on close; a client too slow to keep up misses messages
//! rather than holding the others back).
//!
//! `cargo run --example broadcast [PORT]` (default 8080). SIGINT (Ctrl-C) or SIGTERM stops it
//! gracefully: open WebSockets get a `1001` close.

mod common;

use std::time::Duration;

use httpkit::{as_channel, run_server, ChannelGroup, ChannelHandlers, Options, Request, Response};

fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8080);
    let everyone = ChannelGroup::new();

    let (open, recv) = (everyone.clone(), everyone.clone());
    let handlers = ChannelHandlers::new()
        .on_open(move |ch| {
            open.join(ch);
        })
        .on_receive(move |_ch, message| {
            recv.broadcast(format!("broadcasting: {}", message.to_text()));
        });

    let app = move |req: Request| {
        if !req.is_websocket() {
            return Response::ok("<h1>Main screen turn on.</h1><h2>Start connecting websockets.</h2>")
                .header("content-type", "text/html");
        }
        as_channel(&req, handlers.clone())
    };
    let signals = common::Signals::install()?;
    let server = run_server(app, Options::default().port(port))?;
    println!("broadcast: listening on http://127.0.0.1:{}/ (WebSocket on any path)", server.port().unwrap_or(port));
    common::serve_until_signal(&signals, &server, Duration::from_secs(1));
    Ok(())
}
