//! Server-sent events over HTTP channels, read as a browser's EventSource would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use httpkit::{as_channel, Channel, ChannelHandlers, Event, Request};
use util::*;

/// The channel the handler opened, and the `Last-Event-ID` it was asked with.
type Kept = Arc<Mutex<Option<(Channel, Option<String>)>>>;

#[test]
fn events_are_framed_streamed_and_cannot_inject_fields() {
    let kept: Kept = Arc::default();
    let k = kept.clone();
    let s = start(
        move |req: Request| {
            let k = k.clone();
            let last = req.last_event_id().map(str::to_owned);
            as_channel(
                &req,
                ChannelHandlers::new().on_open(move |ch| *k.lock().unwrap() = Some((ch.clone(), last.clone()))),
            )
        },
        opts(),
    );
    let mut c = Client::connect(addr(&s));
    c.send(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nLast-Event-ID: 41\r\n\r\n");
    wait_until("open", || kept.lock().unwrap().is_some());
    let (ch, last) = kept.lock().unwrap().clone().unwrap();
    assert_eq!(last.as_deref(), Some("41"), "Last-Event-ID is readable on reconnect");
    assert!(ch.send_event(&Event::data("hello").id("42").retry(Duration::from_secs(3))));
    assert!(ch.send_event(&Event::data("a\nevent: evil\r\nb").event("up\ndate").id("4\n3")));
    assert!(ch.close());
    let r = c.read_response().unwrap();
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("x-accel-buffering"), Some("no"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.chunks, 2, "each event is written as it is sent");
    assert_eq!(
        r.text(),
        "id: 42\nretry: 3000\ndata: hello\n\nevent: update\nid: 43\ndata: a\ndata: event: evil\ndata: b\n\n"
    );
    assert!(!ch.send_event(&Event::data("late")), "closed");
}
