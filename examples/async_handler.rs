//! An async handler (feature `tokio`): each request awaits an async client — here
//! `tokio::time::sleep` stands in for a database query — on a tokio runtime the app hands over,
//! without holding a thread while it waits. 1000 requests in flight need no 1000 threads.
//!
//! `cargo run --release --features tokio --example async_handler [PORT]` (default 8080), then
//! e.g. `curl 'http://127.0.0.1:8080/user?id=7'`.

mod common;

use std::time::Duration;

use httpkit::{run_server_async, Options, Request, Response};

/// Stands in for an async database client.
async fn find_user(id: u32) -> Option<String> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    (id < 100).then(|| format!("user #{id}"))
}

async fn app(req: Request) -> Response {
    let id = req.query("id").and_then(|v| v.parse().ok()).unwrap_or(0);
    match find_user(id).await {
        Some(name) => Response::ok(name),
        None => Response::not_found(),
    }
}

fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8080);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build()?;
    let signals = common::Signals::install()?;
    let server = run_server_async(app, Options::default().port(port), runtime.handle().clone())?;
    println!("async_handler: listening on http://127.0.0.1:{}/", server.port().unwrap_or(port));
    common::serve_until_signal(&signals, &server, Duration::from_secs(1));
    Ok(())
}
