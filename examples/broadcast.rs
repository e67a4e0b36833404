//! The seed's unified-API example: an HTML page for plain requests; every message a WebSocket
//! client sends is broadcast to all open channels.
//!
//! `cargo run --example broadcast [PORT]` (default 8080). SIGINT (Ctrl-C) or SIGTERM stops it
//! gracefully: open WebSockets get a `1001` close.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use httpkit::{as_channel, run_server, Channel, ChannelHandlers, Options, Request, Response};

fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8080);
    let channels: Arc<Mutex<HashSet<Channel>>> = Arc::default();

    let (open, recv, close) = (channels.clone(), channels.clone(), channels.clone());
    let handlers = ChannelHandlers::new()
        .on_open(move |ch| {
            open.lock().unwrap_or_else(|e| e.into_inner()).insert(ch.clone());
        })
        .on_receive(move |_ch, message| {
            let text = format!("broadcasting: {}", message.to_text());
            for ch in recv.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                ch.send(text.as_str());
            }
        })
        .on_close(move |ch, _status| {
            close.lock().unwrap_or_else(|e| e.into_inner()).remove(ch);
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
