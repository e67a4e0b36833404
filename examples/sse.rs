//! Server-sent events: `/` is a page whose `EventSource` shows a counter that `/events` streams,
//! one event a second; a browser that reconnects resumes after the last id it saw.
//!
//! `cargo run --example sse [PORT]` (default 8080), then open `http://127.0.0.1:8080/`.

mod common;

use std::time::Duration;

use httpkit::{as_channel, run_server, ChannelHandlers, Event, Options, Request, Response};

const PAGE: &str = r#"<!doctype html>
<title>httpkit server-sent events</title>
<p>ticks: <span id="n">…</span></p>
<script>
  const src = new EventSource("/events");
  src.addEventListener("tick", (e) => { document.getElementById("n").textContent = e.data; });
</script>
"#;

fn app(req: Request) -> Response {
    if req.path() != "/events" {
        return Response::html(PAGE);
    }
    // A browser that reconnects says where it was.
    let start: u64 = req.last_event_id().and_then(|id| id.parse().ok()).map_or(0, |n: u64| n + 1);
    as_channel(
        &req,
        ChannelHandlers::new().on_open(move |ch| {
            let ch = ch.clone();
            std::thread::spawn(move || {
                for n in start.. {
                    let event = Event::data(n.to_string()).event("tick").id(n.to_string());
                    if !ch.send_event(&event) {
                        break; // the browser left
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        }),
    )
}

fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8080);
    let signals = common::Signals::install()?;
    let server = run_server(app, Options::default().port(port))?;
    println!("sse: listening on http://127.0.0.1:{}/", server.port().unwrap_or(port));
    common::serve_until_signal(&signals, &server, Duration::from_secs(1));
    Ok(())
}
