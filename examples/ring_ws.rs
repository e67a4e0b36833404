//! The seed's Ring-style WebSocket example: an HTML page for plain requests; every message is
//! broadcast to all open sockets.
//!
//! `cargo run --example ring_ws [PORT]` (default 8080). SIGINT (Ctrl-C) or SIGTERM stops it
//! gracefully: open WebSockets get a `1001` close.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use httpkit::{run_server, websocket_response, Options, Request, Response, Socket, WsListener};

fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8080);
    let sockets: Arc<Mutex<HashSet<Socket>>> = Arc::default();

    let app = move |req: Request| {
        if !req.is_websocket() {
            return Response::ok("<h1>Main screen turn on.</h1><h2>Start connecting websockets.</h2>")
                .header("content-type", "text/html");
        }
        let (open, message, close) = (sockets.clone(), sockets.clone(), sockets.clone());
        websocket_response(
            WsListener::new()
                .on_open(move |s| {
                    open.lock().unwrap_or_else(|e| e.into_inner()).insert(s.clone());
                })
                .on_message(move |_s, msg| {
                    let text = format!("broadcasting: {}", msg.to_text());
                    for s in message.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                        let _ = s.send(text.as_str());
                    }
                })
                .on_close(move |s, _code, _reason| {
                    close.lock().unwrap_or_else(|e| e.into_inner()).remove(s);
                }),
        )
    };
    let signals = common::Signals::install()?;
    let server = run_server(app, Options::default().port(port))?;
    println!("ring_ws: listening on http://127.0.0.1:{}/ (WebSocket on any path)", server.port().unwrap_or(port));
    common::serve_until_signal(&signals, &server, Duration::from_secs(1));
    Ok(())
}
