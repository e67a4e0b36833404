//! An echo server for tests and benchmarks.
//!
//! * `GET /` → `hello HTTP!`
//! * `POST` / `PUT /echo` → 200 with the request body and its `Content-Type`
//! * `GET /stream` → the chunks `a` to `e`, about 100 ms apart (chunked on HTTP/1.1,
//!   close-delimited on HTTP/1.0, no body for HEAD): long enough to be in flight when the
//!   server is told to stop (`tests/signals.rs`)
//! * `GET /ws` → a WebSocket echoing every message with its opcode (text / binary); messages up
//!   to 16 MiB (the Autobahn test suite runs against this), on the unified channel API
//! * `GET /ring` → the same echo on the Ring-style listener API
//!
//! Both WebSocket routes accept permessage-deflate when the client offers it (Autobahn's cases
//! 12 and 13); a client that offers nothing talks uncompressed, as before.
//!
//! `cargo run --release --example echo [PORT]` (default 8080; 0 picks a free port, printed).
//! SIGINT (Ctrl-C) or SIGTERM stops it gracefully: answers in progress finish (up to 5 s).

mod common;

use std::time::Duration;

use httpkit::{
    as_channel, run_server, websocket_response, Body, ChannelHandlers, Method, Options, Request, Response, SendError,
    WsCompression, WsListener,
};

fn app(mut req: Request) -> Response {
    if req.path() == "/ring" {
        return websocket_response(WsListener::new().on_message(|s, m| {
            // Callbacks wait while the client is slow, so one echo per message is never
            // refused; a refusal means a message larger than the write buffer is still queued.
            if let Err(SendError::Full(_)) = s.send(m) {
                let _ = s.close(1013, "client too slow");
            }
        }));
    }
    if req.path() == "/ws" {
        let handlers = ChannelHandlers::new().on_receive(|ch, msg| {
            if let Err(SendError::Full(_)) = ch.try_send(msg, false) {
                let _ = ch.close_with(1013, "client too slow");
            }
        });
        return as_channel(&req, handlers);
    }
    match (req.method().clone(), req.path()) {
        (Method::POST | Method::PUT, "/echo") => {
            let ct = req.content_type().map(str::to_owned);
            let body = req.take_body().unwrap_or_default();
            let resp = Response::ok(body);
            match ct {
                Some(ct) => resp.header("content-type", ct),
                None => resp,
            }
        }
        (Method::GET | Method::HEAD, "/stream") => {
            Response::ok(Body::stream(["a", "b", "c", "d", "e"].into_iter().enumerate().map(|(i, s)| {
                if i > 0 {
                    std::thread::sleep(Duration::from_millis(100));
                }
                s
            })))
            .header("content-type", "text/plain")
        }
        (Method::GET | Method::HEAD, "/") => Response::ok("hello HTTP!").header("content-type", "text/html"),
        _ => Response::not_found(),
    }
}

fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8080);
    let signals = common::Signals::install()?;
    let server = run_server(
        app,
        Options::default().port(port).max_ws(16 * 1024 * 1024).ws_compression(WsCompression::default()),
    )?;
    println!("echo: listening on http://127.0.0.1:{}/", server.port().unwrap_or(port));
    common::serve_until_signal(&signals, &server, Duration::from_secs(5));
    Ok(())
}
