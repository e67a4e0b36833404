//! Live counters (`Server::stats`) and the access log, over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use httpkit::{as_channel, ChannelHandlers, Job, Request, Response, WorkerPool};
use util::*;

fn app(req: Request) -> Response {
    match req.path() {
        "/ws" => as_channel(&req, ChannelHandlers::new()),
        "/missing" => Response::not_found(),
        _ => Response::ok("hello"),
    }
}

#[test]
fn counters_follow_what_happens() {
    let s = start(app, opts().header_read_timeout(Duration::from_millis(300)).max_connections(3));
    let mut c = Client::connect(addr(&s));
    for _ in 0..3 {
        assert_eq!(c.get("/").status, 200);
    }
    assert_eq!(c.get("/missing").status, 404);
    assert_eq!(request(addr(&s), b"GET / HTTP/1.1\r\n\r\n").status, 400); // no Host
                                                                          // A head that never completes: 408.
    let mut slow = Client::connect(addr(&s));
    slow.send(b"GET / HTTP/1.1\r\n");
    assert_eq!(slow.read_response().unwrap().status, 408);
    let (_ws, r) = ws_connect(addr(&s), "/ws", "");
    assert_eq!(r.status, 101);
    wait_until("the WebSocket counted", || s.stats().websockets_open == 1);
    let st = s.stats();
    assert_eq!((st.answered[0], st.answered[1]), (1, 3), "the 101, 3 × 200: {st:?}");
    assert!(st.answered[3] >= 2, "404 and 400: {st:?}");
    assert_eq!(st.timeouts_header, 1, "{st:?}");
    assert!(st.bytes_read > 0 && st.bytes_written > 0);
    assert!(st.connections_accepted >= 4);
    // At the limit of 3 (two idle keep-alive clients and the WebSocket), a new client evicts
    // the longest idle one.
    drop(slow);
    // Its close counted first (with several reactors, another one could admit `d` before).
    wait_until("the slow client gone", || s.connections_open() == 2);
    let mut d = Client::connect(addr(&s));
    assert_eq!(d.get("/").status, 200);
    wait_until("three open", || s.connections_open() == 3);
    let mut e = Client::connect(addr(&s));
    assert_eq!(e.get("/").status, 200);
    assert_eq!(s.stats().evictions, 1);
}

/// A pool that refuses everything.
struct Refuse;
impl WorkerPool for Refuse {
    fn execute(&self, job: Job) -> Result<(), Job> {
        Err(job)
    }
}

#[test]
fn rejections_are_counted_as_503() {
    let s = start(app, opts().worker_pool(Arc::new(Refuse)));
    assert_eq!(request(addr(&s), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 503);
    let st = s.stats();
    assert_eq!((st.rejected, st.answered[4]), (1, 1), "{st:?}");
}

/// Collects the lines of the `httpkit::access` target.
struct Capture(Mutex<Vec<String>>);
impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "httpkit::access"
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            self.0.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn captured() -> &'static Capture {
    static C: OnceLock<&'static Capture> = OnceLock::new();
    C.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(c).unwrap();
        log::set_max_level(log::LevelFilter::Info);
        c
    })
}

#[test]
fn the_access_log_has_a_line_per_answer_when_on() {
    let cap = captured();
    let s = start(
        |req: Request| match req.path() {
            "/stream" => Response::ok(httpkit::Body::stream(["ab", "cde"])),
            _ => Response::ok("hello"),
        },
        opts().access_log(true),
    );
    let mut c = Client::connect(addr(&s));
    assert_eq!(c.get("/x?y=1").status, 200);
    assert_eq!(c.get("/stream").text(), "abcde");
    wait_until("two lines", || cap.0.lock().unwrap().iter().filter(|l| l.contains("\"GET /")).count() >= 2);
    let lines = cap.0.lock().unwrap().clone();
    assert!(lines.iter().any(|l| l.starts_with("127.0.0.1 \"GET /x?y=1\" 200 5 ")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("127.0.0.1 \"GET /stream\" 200 5 ") && l.ends_with("ms")), "{lines:?}");
    // Off by default: no line for this server's answers.
    let quiet = start(|_req: Request| Response::ok("q"), opts());
    let before = cap.0.lock().unwrap().len();
    assert_eq!(request(addr(&quiet), b"GET /quiet HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
    std::thread::sleep(Duration::from_millis(50));
    assert!(!cap.0.lock().unwrap()[before..].iter().any(|l| l.contains("/quiet")));
    let _ = std::io::stderr().flush();
}

#[test]
fn the_longest_loop_turn_shows_a_stall_and_starts_over() {
    // With Inline, a handler that sleeps stalls the reactor loop: the gauge says so.
    let s = start(
        |_r: Request| {
            std::thread::sleep(Duration::from_millis(200));
            httpkit::Response::ok("slept")
        },
        opts().worker_pool(httpkit::Inline),
    );
    s.take_longest_loop_turn();
    assert_eq!(Client::connect(addr(&s)).get("/").text(), "slept");
    // The turn is recorded as the loop comes round, which may be just after the answer left.
    let stall = std::sync::Mutex::new(Duration::ZERO);
    wait_until("the stall to be recorded", || {
        let t = s.take_longest_loop_turn();
        *stall.lock().unwrap() = t;
        t >= Duration::from_millis(150)
    });
    let stall = *stall.lock().unwrap();
    // Taken: it starts over (the loop has been idle since).
    assert!(s.take_longest_loop_turn() < stall);
}
