//! Held HTTP channels time out (`Options::long_poll_timeout`): a long-poll nobody answers gets
//! the configured status in time and its `on_close` fires; answered or streaming ones do not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use httpkit::{as_channel, Channel, ChannelHandlers, CloseKind, Request};
use util::*;

type Kept = Arc<Mutex<Vec<(String, Channel)>>>;
type Closes = Arc<Mutex<Vec<(String, CloseKind)>>>;

fn server(kept: &Kept, closes: &Closes) -> httpkit::Server {
    let (k, c) = (kept.clone(), closes.clone());
    start(
        move |req: Request| {
            let (k, c) = (k.clone(), c.clone());
            let path = req.uri().to_owned();
            let p2 = path.clone();
            as_channel(
                &req,
                ChannelHandlers::new()
                    .on_open(move |ch| {
                        if path == "/now" {
                            ch.send("at once");
                        } else if path == "/stream" {
                            ch.send_with("first piece ", false);
                        }
                        k.lock().unwrap().push((path.clone(), ch.clone()));
                    })
                    .on_close(move |_ch, status| c.lock().unwrap().push((p2.clone(), status.kind()))),
            )
        },
        opts().long_poll_timeout(Duration::from_millis(300), 204),
    )
}

#[test]
fn an_unanswered_long_poll_gets_the_timeout_status_and_its_close() {
    let (kept, closes) = (Kept::default(), Closes::default());
    let s = server(&kept, &closes);
    let mut c = Client::connect(addr(&s));
    c.send(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response().unwrap();
    assert_eq!((r.status, r.body.len()), (204, 0));
    wait_until("on_close", || closes.lock().unwrap().iter().any(|(p, k)| p == "/poll" && *k == CloseKind::ServerClose));
    // The keep-alive connection goes on.
    c.send(b"GET /now HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().unwrap().text(), "at once");
    // A send after the timeout is refused: the channel is closed.
    let poll = kept.lock().unwrap().iter().find(|(p, _)| p == "/poll").map(|(_, ch)| ch.clone()).unwrap();
    assert!(!poll.send("too late"));
}

#[test]
fn answered_and_streaming_channels_are_not_timed_out() {
    let (kept, closes) = (Kept::default(), Closes::default());
    let s = server(&kept, &closes);
    let mut now = Client::connect(addr(&s));
    now.send(b"GET /now HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(now.read_response().unwrap().text(), "at once");
    let mut stream = Client::connect(addr(&s));
    stream.send(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    std::thread::sleep(Duration::from_millis(800));
    // Past the timeout: the stream goes on, and ends when its sender says.
    let ch = kept.lock().unwrap().iter().find(|(p, _)| p == "/stream").map(|(_, ch)| ch.clone()).unwrap();
    assert!(ch.is_open(), "a streaming channel was timed out");
    assert!(ch.send_with("last piece", true));
    let r = stream.read_response().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "first piece last piece"));
    // And the answered one got nothing more: its connection serves the next request.
    now.send(b"GET /now HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(now.read_response().unwrap().text(), "at once");
}
