//! One handler serving WebSocket clients and an HTTP long-polling fallback with the same
//! callbacks: `POST /send` (body = message) publishes to every waiting client; `GET /poll`
//! waits for the next message; a WebSocket on `/ws` gets every message as it is published.
//!
//! `cargo run --example long_poll [PORT]` (default 8080), then e.g.
//! `curl localhost:8080/poll &` and `curl -d hi localhost:8080/send`. SIGINT (Ctrl-C) or SIGTERM
//! stops it gracefully: a waiting poll is answered `503`, open WebSockets get a `1001` close.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use httpkit::{as_channel, run_server, Channel, ChannelHandlers, Method, Options, Request, Response};

fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8080);
    let waiting: Arc<Mutex<HashSet<Channel>>> = Arc::default();

    let (open, close) = (waiting.clone(), waiting.clone());
    let handlers = ChannelHandlers::new()
        .on_open(move |ch| {
            open.lock().unwrap_or_else(|e| e.into_inner()).insert(ch.clone());
        })
        .on_close(move |ch, _status| {
            close.lock().unwrap_or_else(|e| e.into_inner()).remove(ch);
        });

    let publish = waiting.clone();
    let app = move |req: Request| match (req.method(), req.path()) {
        (&Method::POST, "/send") => {
            let msg = String::from_utf8_lossy(req.body().unwrap_or_default()).into_owned();
            let targets: Vec<Channel> = publish.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
            // On a WebSocket `send` keeps the channel open; on a long-poll it answers and closes.
            let n = targets.iter().filter(|ch| ch.send(msg.as_str())).count();
            Response::ok(format!("delivered to {n}\n"))
        }
        (_, "/poll") | (_, "/ws") => as_channel(&req, handlers.clone()),
        _ => Response::not_found(),
    };
    let signals = common::Signals::install()?;
    let server = run_server(app, Options::default().port(port))?;
    println!("long_poll: listening on http://127.0.0.1:{}/poll, /ws, POST /send", server.port().unwrap_or(port));
    common::serve_until_signal(&signals, &server, Duration::from_secs(1));
    Ok(())
}
