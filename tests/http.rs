//! The HTTP/1.1 server end to end, over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use httpkit::{Body, Method, Request, Response, ServerStatus};
use util::*;

fn hello(_req: Request) -> Response {
    Response::ok("hello HTTP!").header("content-type", "text/html")
}

fn echo(mut req: Request) -> Response {
    let ct = req.content_type().map(str::to_owned);
    let path = req.path().to_owned();
    if path == "/echo" {
        let body = req.take_body().unwrap_or_default();
        let r = Response::ok(body);
        return match ct {
            Some(ct) => r.header("content-type", ct),
            None => r,
        };
    }
    if let Some(ms) = path.strip_prefix("/sleep/") {
        let ms: u64 = ms.parse().unwrap();
        thread::sleep(Duration::from_millis(ms));
        return Response::ok(format!("slept {ms}"));
    }
    Response::ok(format!("{} {}", req.method(), req.uri()))
}

#[test]
fn hello_on_port_zero() {
    let s = start(hello, opts());
    assert_ne!(s.port(), Some(0));
    assert_eq!(s.status(), ServerStatus::Running);
    let r = request(addr(&s), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello HTTP!");
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert_eq!(r.header("content-length"), Some("11"));
    assert_eq!(r.header("server"), Some("httpkit"));
    assert_eq!(r.header("date").map(str::len), Some(29));
}

#[test]
fn server_header_can_be_changed_or_removed() {
    let s = start(hello, opts().server_header(None));
    let r = request(addr(&s), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.header("server"), None);
    let s = start(hello, opts().server_header(Some("mine/1.0")));
    let r = request(addr(&s), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.header("server"), Some("mine/1.0"));
}

#[test]
fn hundred_requests_on_one_keep_alive_connection() {
    let s = start(echo, opts());
    let mut c = Client::connect(addr(&s));
    for i in 0..100 {
        let r = c.get(&format!("/n/{i}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), format!("GET /n/{i}"));
    }
    assert_eq!(s.connections_accepted(), 1);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let s = start(echo, opts().thread(4));
    let mut c = Client::connect(addr(&s));
    let mut all = Vec::new();
    // Earlier requests sleep longer, so workers finish them out of order.
    for i in 0..10 {
        all.extend_from_slice(format!("GET /sleep/{} HTTP/1.1\r\nHost: x\r\n\r\n", (10 - i) * 10).as_bytes());
    }
    c.send(&all);
    for i in 0..10 {
        let r = c.read_response().unwrap();
        assert_eq!(r.text(), format!("slept {}", (10 - i) * 10));
    }
}

#[test]
fn pipelined_unsafe_requests_run_one_after_another() {
    let counter = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(Mutex::new(Vec::<String>::new()));
    let (c2, r2) = (counter.clone(), ran.clone());
    let s = start(
        move |req: Request| {
            r2.lock().unwrap().push(req.path().to_owned());
            match req.path() {
                "/incr" => {
                    thread::sleep(Duration::from_millis(100));
                    c2.fetch_add(1, Ordering::SeqCst);
                    Response::ok("done")
                }
                "/close" => Response::ok("bye").header("connection", "close"),
                _ => Response::ok(c2.load(Ordering::SeqCst).to_string()),
            }
        },
        opts().thread(4),
    );
    // A GET after a POST sees the POST's effect: it did not run beside it.
    let mut c = Client::connect(addr(&s));
    c.send(b"POST /incr HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nGET /value HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().unwrap().text(), "done");
    assert_eq!(c.read_response().unwrap().text(), "1");
    // A POST after a response that closes the connection never runs.
    let mut c = Client::connect(addr(&s));
    c.send(b"POST /close HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nPOST /incr HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(c.read_response().unwrap().text(), "bye");
    assert!(c.is_closed_within(Duration::from_secs(10)));
    assert_eq!(counter.load(Ordering::SeqCst), 1);
    assert_eq!(ran.lock().unwrap().iter().filter(|p| *p == "/incr").count(), 1);
}

#[test]
fn http10_closes_unless_keep_alive_requested() {
    let s = start(hello, opts());
    let mut c = Client::connect(addr(&s));
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 200);
    assert!(c.is_closed_within(Duration::from_secs(10)));

    let mut c = Client::connect(addr(&s));
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response().unwrap();
    assert_eq!(r.header("connection"), Some("keep-alive"));
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(c.read_response().unwrap().status, 200);
}

#[test]
fn connection_close_request_closes_after_response() {
    let s = start(hello, opts());
    let mut c = Client::connect(addr(&s));
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.read_response().unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed_within(Duration::from_secs(10)));
}

#[test]
fn chunked_request_body_is_decoded() {
    let s = start(echo, opts());
    let r = request(
        addr(&s),
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: text/x\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello world");
    assert_eq!(r.header("content-type"), Some("text/x"));
}

#[test]
fn eight_mib_body_is_echoed_intact() {
    let s = start(echo, opts());
    let body: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut c = Client::connect(addr(&s));
    let writer = {
        let mut w = c.stream.try_clone().unwrap();
        let body = body.clone();
        thread::spawn(move || {
            w.write_all(format!("PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes())
                .unwrap();
            w.write_all(&body).unwrap();
        })
    };
    let r = c.read_response().unwrap();
    writer.join().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), body.len());
    assert!(r.body == body, "body differs");
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let s = start(echo, opts());
    let mut c = Client::connect(addr(&s));
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    let interim = c.read_response().unwrap();
    assert_eq!(interim.status, 100);
    c.send(b"ping");
    let r = c.read_response().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "ping"));

    // Pipelined behind a slow request, the 100 follows that request's answer.
    c.send(b"GET /sleep/200 HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    assert_eq!(c.read_response().unwrap().text(), "slept 200");
    assert_eq!(c.read_response().unwrap().status, 100);
    c.send(b"pong");
    assert_eq!(c.read_response().unwrap().text(), "pong");
}

#[test]
fn limits_answer_413_414_431_and_close() {
    let s = start(echo, opts().max_body(1000).max_line(256).max_header_bytes(1024));
    let a = addr(&s);
    let mut c = Client::connect(a);
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n");
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed_within(Duration::from_secs(10)));

    let mut exact = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n".to_vec();
    exact.extend_from_slice(&[b'z'; 1000]);
    exact.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = request(a, &exact);
    assert_eq!((r.status, r.body.len()), (200, 1000), "exactly max_body is fine");
    let mut c = Client::connect(a);
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n");
    assert_eq!(c.read_response().unwrap().status, 413);

    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(300));
    assert_eq!(request(a, long.as_bytes()).status, 414);

    let mut big = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..40 {
        big.extend_from_slice(format!("X-H{i}: {}\r\n", "v".repeat(30)).as_bytes());
    }
    big.extend_from_slice(b"\r\n");
    assert_eq!(request(a, &big).status, 431);
}

#[test]
fn malformed_requests_answer_400_505_501() {
    let s = start(echo, opts());
    let a = addr(&s);
    for (raw, status) in [
        (&b"GARBAGE\r\n\r\n"[..], 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost:\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: localhost:es\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: localhost:()\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: localhost:65536\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: evil/x\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ] {
        let mut c = Client::connect(a);
        c.send(raw);
        let r = c.read_response().unwrap();
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(raw));
        assert!(c.is_closed_within(Duration::from_secs(10)));
    }
}

#[test]
fn head_handler_may_announce_the_length() {
    let s = start(
        |req: Request| {
            if req.method() == Method::HEAD {
                Response::ok("").header("content-length", "1234")
            } else {
                Response::ok("hello HTTP!")
            }
        },
        opts(),
    );
    let mut c = Client::connect(addr(&s));
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response_to(true).unwrap();
    assert_eq!(r.header("content-length"), Some("1234"));
    // No body followed the HEAD answer: the next response parses right after it.
    assert_eq!(c.read_response().unwrap().text(), "hello HTTP!");
}

#[test]
fn head_has_length_but_no_body() {
    let s = start(hello, opts());
    let mut c = Client::connect(addr(&s));
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response_to(true).unwrap();
    assert_eq!(r.header("content-length"), Some("11"));
    // The next response follows immediately: no body bytes were sent.
    let r = c.get("/");
    assert_eq!(r.text(), "hello HTTP!");
}

#[test]
fn server_owns_framing_and_refuses_header_injection() {
    let s = start(
        |req: Request| match req.path() {
            "/wrong-length" => {
                Response::ok("abc").header("content-length", "99").header("transfer-encoding", "chunked")
            }
            "/inject" => Response::ok("x").header("x-evil", "a\r\nSet-Cookie: pwned=1"),
            _ => Response::ok("ok"),
        },
        opts().error_logger(|_| {}),
    );
    let mut c = Client::connect(addr(&s));
    let r = c.get("/wrong-length");
    assert_eq!(r.header("content-length"), Some("3"));
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.text(), "abc");
    let r = c.get("/inject");
    assert_eq!(r.status, 500);
    assert_eq!(r.header("set-cookie"), None);
    assert_eq!(c.get("/").status, 200);
}

#[test]
fn handler_panic_answers_500_and_server_keeps_serving() {
    // On a worker, and with `Inline` on the reactor thread (served there without a job).
    for inline in [false, true] {
        let errors = Arc::new(Mutex::new(Vec::<String>::new()));
        let e2 = errors.clone();
        let o = if inline { opts().worker_pool(httpkit::Inline) } else { opts().thread(1) };
        let s = start(
            |req: Request| {
                if req.path() == "/boom" {
                    panic!("secret internals");
                }
                Response::ok("fine")
            },
            o.error_logger(move |m| e2.lock().unwrap().push(m.to_owned())),
        );
        let mut c = Client::connect(addr(&s));
        let r = c.get("/boom");
        assert_eq!(r.status, 500);
        assert!(!r.text().contains("secret"));
        let r = c.get("/");
        assert_eq!((r.status, r.text().as_str()), (200, "fine"));
        let errs = errors.lock().unwrap().clone();
        assert!(errs.iter().any(|m| m.contains("secret internals") && m.contains("/boom")), "{errs:?}");
    }
}

#[test]
fn full_queue_answers_503_and_recovers() {
    let gate = Arc::new(Barrier::new(2));
    let started = Arc::new(AtomicUsize::new(0));
    let (g, st) = (gate.clone(), started.clone());
    let pool = httpkit::ThreadPool::builder().threads(1).queue_capacity(1).build().unwrap();
    let s = start(
        move |req: Request| {
            if req.path() == "/block" {
                st.fetch_add(1, Ordering::SeqCst);
                g.wait();
            }
            Response::ok("done")
        },
        opts().worker_pool(pool.clone()).warn_logger(|_| {}),
    );
    let a = addr(&s);
    // 1st occupies the only worker, 2nd fills the queue, 3rd is rejected.
    let mut c1 = Client::connect(a);
    c1.send(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    let t0 = Instant::now();
    while started.load(Ordering::SeqCst) == 0 {
        assert!(t0.elapsed() < IO_TIMEOUT);
        thread::sleep(Duration::from_millis(5));
    }
    let mut c2 = Client::connect(a);
    c2.send(b"GET /queued HTTP/1.1\r\nHost: x\r\n\r\n");
    // Wait until the queued request is really in the queue.
    wait_until("one queued", || pool.queue_len() == 1);
    let mut c3 = Client::connect(a);
    let r = c3.get("/rejected");
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), "Server unavailable, please try again");
    gate.wait();
    assert_eq!(c1.read_response().unwrap().text(), "done");
    assert_eq!(c2.read_response().unwrap().text(), "done");
    assert_eq!(c3.get("/again").status, 200, "recovers once the queue drains");
}

/// A handler that reports it started, then waits for the test to let it finish.
fn gated() -> (impl Fn(Request) -> Response + Send + Sync + 'static, Arc<AtomicUsize>, Arc<Barrier>) {
    let started = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Barrier::new(2));
    let (st, g) = (started.clone(), gate.clone());
    let h = move |req: Request| {
        if req.path() == "/gated" {
            st.fetch_add(1, Ordering::SeqCst);
            g.wait();
            return Response::ok("finished");
        }
        Response::ok("ok")
    };
    (h, started, gate)
}

#[test]
fn graceful_stop_answers_in_flight_request() {
    let (h, started, gate) = gated();
    let s = start(h, opts());
    let a = addr(&s);
    let mut c = Client::connect(a);
    c.send(b"GET /gated HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_until("the request reached a worker", || started.load(Ordering::SeqCst) == 1);
    let mut idle = Client::connect(a);
    assert_eq!(idle.get("/").status, 200);
    thread::scope(|sc| {
        let stopper = sc.spawn(|| s.stop_graceful(Duration::from_secs(10)));
        wait_until("stopping", || s.status() == ServerStatus::Stopping);
        gate.wait();
        stopper.join().unwrap();
    });
    assert_eq!(s.status(), ServerStatus::Stopped);
    let r = c.read_response().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "finished"));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(idle.is_closed_within(Duration::from_secs(5)));
}

#[test]
fn immediate_stop_breaks_in_flight_request() {
    let (h, started, gate) = gated();
    let s = start(h, opts());
    let mut c = Client::connect(addr(&s));
    c.send(b"GET /gated HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_until("the request reached a worker", || started.load(Ordering::SeqCst) == 1);
    s.stop();
    assert_eq!(s.status(), ServerStatus::Stopped);
    gate.wait();
    assert!(c.read_response().is_err());
}

#[test]
fn graceful_stop_timeout_bounds_the_wait() {
    let s = start(echo, opts());
    let mut c = Client::connect(addr(&s));
    c.send(b"GET /sleep/3000 HTTP/1.1\r\nHost: x\r\n\r\n");
    thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    s.stop_graceful(Duration::from_millis(100));
    assert!(t.elapsed() < Duration::from_millis(2900), "stop waited for the handler");
    assert!(c.read_response().is_err());
}

#[test]
fn two_hundred_concurrent_clients() {
    let s = start(echo, opts());
    let a = addr(&s);
    let ok = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..200)
        .map(|i| {
            let ok = ok.clone();
            thread::spawn(move || {
                let mut c = Client::connect(a);
                for j in 0..10 {
                    let r = c.get(&format!("/c/{i}/{j}"));
                    if r.status == 200 && r.text() == format!("GET /c/{i}/{j}") {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ok.load(Ordering::SeqCst), 2000);
}

#[test]
fn streamed_body_is_chunked_and_close_delimited_on_http10() {
    let s = start(
        |_req: Request| {
            Response::ok(Body::stream(
                ["a", "b", "c"].into_iter().inspect(|_| thread::sleep(Duration::from_millis(20))),
            ))
        },
        opts(),
    );
    let mut c = Client::connect(addr(&s));
    let r = c.get("/");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.chunks, 3);
    assert_eq!(r.text(), "abc");
    assert_eq!(c.get("/").text(), "abc", "keep-alive after a chunked response");

    let mut c = Client::connect(addr(&s));
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    let r = c.read_response().unwrap();
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.text(), "abc");

    let mut c = Client::connect(addr(&s));
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response_to(true).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(c.get("/").text(), "abc");
}

#[test]
fn slowloris_gets_408_and_does_not_delay_others() {
    let s = start(hello, opts().header_read_timeout(Duration::from_millis(600)));
    let a = addr(&s);
    let t = Instant::now();
    let mut slow = Client::connect(a);
    slow.send(b"GET / HTTP/1.1\r\nHo");
    // A trickle of bytes does not extend the header deadline.
    let trickler = {
        let mut w = slow.stream.try_clone().unwrap();
        thread::spawn(move || {
            for b in b"st: x\r\nX-A: 1\r\n" {
                if w.write_all(&[*b]).is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut normal = Client::connect(a);
    let r = normal.get("/");
    assert_eq!(r.status, 200);
    assert!(t.elapsed() < Duration::from_millis(600) || r.status == 200);
    let r = slow.read_response().unwrap();
    assert_eq!(r.status, 408);
    assert!(t.elapsed() >= Duration::from_millis(550));
    assert!(slow.is_closed_within(Duration::from_secs(10)));
    trickler.join().unwrap();
}

#[test]
fn idle_keep_alive_connection_is_closed_after_idle_timeout() {
    let s = start(hello, opts().idle_timeout(Duration::from_millis(300)));
    let mut c = Client::connect(addr(&s));
    assert_eq!(c.get("/").status, 200);
    assert!(c.is_closed_within(Duration::from_secs(10)));
}

#[test]
fn request_fields_are_exposed() {
    let seen = Arc::new(Mutex::new(String::new()));
    let s2 = seen.clone();
    let s = start(
        move |req: Request| {
            *s2.lock().unwrap() = format!(
                "{} {} {:?} {:?} {} {:?} {} {} {}",
                req.method(),
                req.path(),
                req.query_string(),
                req.version(),
                req.server_port(),
                req.server_name(),
                req.remote_addr().map(|a| a.ip().to_string()).unwrap_or_default(),
                req.scheme(),
                req.body().is_none(),
            );
            Response::ok("")
        },
        opts(),
    );
    request(addr(&s), b"DELETE /a/b?x=1 HTTP/1.1\r\nHost: example.com:8443\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n");
    assert_eq!(
        *seen.lock().unwrap(),
        "DELETE /a/b Some(\"x=1\") HTTP/1.1 8443 Some(\"example.com\") 127.0.0.1 http true"
    );
}

#[test]
fn duplicate_header_lines_are_joined_on_request() {
    let s = start(
        |req: Request| {
            Response::ok(format!(
                "{}|{}|{}|{:?}",
                req.header_joined("x-dup").unwrap(),
                req.header_joined("cookie").unwrap(),
                req.header("x-dup").unwrap(),
                req.header_joined("x-none")
            ))
        },
        opts(),
    );
    let r = request(
        addr(&s),
        "GET / HTTP/1.1\r\nHost: x\r\nX-Dup: a\r\nCookie: c1=1\r\nX-Dup: b\r\nCookie: c2=café\r\n\r\n".as_bytes(),
    );
    assert_eq!(r.text(), "a,b|c1=1; c2=café|a|None");
}

#[test]
fn methods_and_http_types_round_trip() {
    let s = start(
        |req: Request| {
            let m = req.method().clone();
            let r = req.into_http();
            assert_eq!(r.method(), m);
            Response::from(http::Response::builder().status(201).header("x-m", m.as_str()).body(r.into_body()).unwrap())
        },
        opts(),
    );
    let r = request(addr(&s), b"PATCH /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!((r.status, r.header("x-m"), r.text().as_str()), (201, Some("PATCH"), "abc"));
    let _ = Method::GET;
}

#[test]
fn invalid_options_are_errors() {
    assert!(httpkit::run_server(hello, opts().thread(0)).is_err());
    assert!(httpkit::run_server(hello, opts().queue_size(0)).is_err());
    assert!(httpkit::run_server(hello, opts().ip("not an ip")).is_err());
    assert!(httpkit::run_server(hello, opts().max_line(3)).is_err());
    let e = httpkit::run_server(hello, opts().max_headers(100_000)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn worker_threads_carry_the_prefix() {
    let s = start(
        |_req: Request| Response::ok(thread::current().name().unwrap_or("").to_owned()),
        opts().thread(2).worker_name_prefix("pool-x-"),
    );
    let r = request(addr(&s), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.text().starts_with("pool-x-"), "{}", r.text());
}

#[test]
fn event_logger_gets_http_kit_event_names() {
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let e2 = events.clone();
    let s = start(
        |req: Request| {
            if req.path() == "/boom" {
                panic!("x");
            }
            Response::ok("ok")
        },
        opts().max_body(10).event_logger(move |e| e2.lock().unwrap().push(e.to_owned())).error_logger(|_| {}),
    );
    let a = addr(&s);
    assert_eq!(request(a, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
    assert_eq!(request(a, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n").status, 500);
    assert_eq!(request(a, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n").status, 413);
    let ev = events.lock().unwrap().clone();
    for want in ["httpkit.server.status.processed.200", "httpkit.server.status.500", "httpkit.server.status.413"] {
        assert!(ev.iter().any(|e| e == want), "{want} missing in {ev:?}");
    }
}

#[test]
fn max_connections_holds_new_clients_until_one_closes() {
    let s = start(hello, opts().max_connections(2));
    let a = addr(&s);
    let mut c1 = Client::connect(a);
    let mut c2 = Client::connect(a);
    assert_eq!(c1.get("/").status, 200);
    assert_eq!(c2.get("/").status, 200);
    // The third waits in the listen backlog: no answer while two are open.
    let mut c3 = Client::connect(a);
    c3.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    c3.stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut b = [0u8; 1];
    assert!(c3.stream.read(&mut b).is_err(), "answered beyond max_connections");
    c3.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    drop(c1);
    assert_eq!(c3.read_response().unwrap().status, 200);
    assert!(s.connections_open() <= 2);
}

#[test]
fn informational_status_from_a_handler_is_an_error_and_205_has_no_body() {
    let s = start(
        |req: Request| match req.path() {
            "/103" => Response::status_code(103),
            "/205" => Response::ok("dropped").with_status(205),
            _ => Response::ok("ok"),
        },
        opts().error_logger(|_| {}),
    );
    let mut c = Client::connect(addr(&s));
    assert_eq!(c.get("/103").status, 500);
    let r = c.get("/205");
    assert_eq!((r.status, r.header("content-length"), r.body.len()), (205, Some("0"), 0));
    assert_eq!(c.get("/").text(), "ok", "framing intact after both");
}

#[test]
fn graceful_stop_without_a_time_limit_returns_once_idle() {
    let s = start(hello, opts());
    assert_eq!(Client::connect(addr(&s)).get("/").status, 200);
    s.stop_graceful(Duration::MAX);
    assert_eq!(s.status(), ServerStatus::Stopped);
}

#[test]
fn a_higher_http_1_minor_version_is_served_as_http_1_1() {
    let s = start(|req: Request| Response::ok(format!("{:?}", req.version())), opts());
    let mut c = Client::connect(addr(&s));
    c.send(b"GET / HTTP/1.2\r\nHost: x\r\n\r\n");
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "HTTP/1.1");
    // The connection stays open, as for HTTP/1.1.
    assert_eq!(c.get("/").status, 200);
}

#[test]
fn max_pipelined_bounds_the_requests_of_one_connection_in_flight() {
    for (depth, want_parallel) in [(1usize, false), (16, true)] {
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (n, p) = (now.clone(), peak.clone());
        let s = start(
            move |_req: Request| {
                let cur = n.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(cur, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(200));
                n.fetch_sub(1, Ordering::SeqCst);
                Response::ok("x")
            },
            opts().thread(4).max_pipelined(depth).backlog(16),
        );
        let mut c = Client::connect(addr(&s));
        c.send(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(4));
        for _ in 0..4 {
            assert_eq!(c.read_response().unwrap().status, 200);
        }
        let peak = peak.load(Ordering::SeqCst);
        if want_parallel {
            assert!(peak > 1, "safe pipelined requests run in parallel at depth {depth}");
        } else {
            assert_eq!(peak, 1, "one request at a time at depth 1");
        }
    }
}

#[test]
fn query_form_and_cookies_are_parsed_and_a_cookie_is_set() {
    let s = start(
        |req: Request| {
            let q: Vec<String> = req.query_pairs().map(|(k, v)| format!("{k}={v}")).collect();
            let form: Vec<String> =
                req.form().map(|f| f.map(|(k, v)| format!("{k}={v}")).collect()).unwrap_or_default();
            let visits: u32 = req.cookie("visits").and_then(|v| v.parse().ok()).unwrap_or(0);
            let mut c = httpkit::Cookie::new("visits", (visits + 1).to_string());
            c.set_path("/");
            c.set_http_only(true);
            Response::ok(format!(
                "q[{}] form[{}] theme={} visits={visits}",
                q.join("&"),
                form.join("&"),
                req.cookie("theme").unwrap_or_default()
            ))
            .set_cookie(c)
        },
        opts(),
    );
    let mut c = Client::connect(addr(&s));
    let body = "name=J%C3%BCrgen&tags=a&tags=b+c";
    c.send(
        format!(
            "POST /p?x=1&y=two+words&z=%26 HTTP/1.1\r\nHost: t\r\nCookie: theme=dark%20blue; visits=4\r\n\
             Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let r = c.read_response().unwrap();
    assert_eq!(r.text(), "q[x=1&y=two words&z=&] form[name=Jürgen&tags=a&tags=b c] theme=dark blue visits=4");
    assert_eq!(r.header("set-cookie"), Some("visits=5; HttpOnly; Path=/"));
    // No form for another content type; cookies on several lines all count.
    let r = request(
        addr(&s),
        b"POST / HTTP/1.1\r\nHost: t\r\nCookie: visits=9\r\nCookie: theme=x\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\na=b",
    );
    assert_eq!(r.text(), "q[] form[] theme=x visits=9");
}

/// Answers of every size around the point where head and body stop being joined for one write
/// (2 KiB) arrive whole and in order on one keep-alive connection.
#[test]
fn answers_around_the_joined_write_size_arrive_whole() {
    let sizes = [0usize, 1, 500, 1900, 1950, 1990, 2048, 2100, 5000, 70_000];
    let body_of = |n: usize| (0..n).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>();
    let s = start(
        move |req: Request| {
            let n: usize = req.path().trim_start_matches('/').parse().unwrap_or(0);
            Response::ok(body_of(n))
        },
        opts(),
    );
    let mut c = Client::connect(addr(&s));
    for round in 0..3 {
        for n in sizes {
            let r = c.get(&format!("/{n}"));
            assert_eq!(r.status, 200, "size {n}, round {round}");
            assert_eq!(r.body, body_of(n), "size {n}, round {round}");
        }
    }
}

/// Header maps are reused by the next answer made on the same thread: never with the last
/// answer's headers in them.
#[test]
fn an_answers_headers_never_reach_the_next_answer() {
    for inline in [false, true] {
        let o = if inline { opts().worker_pool(httpkit::Inline) } else { opts().thread(1) };
        let s = start(
            |req: Request| match req.path() {
                "/a" => Response::ok("a").header("x-private", "for a only").header("cache-control", "no-store"),
                _ => Response::ok("b"),
            },
            o,
        );
        let mut c = Client::connect(addr(&s));
        for _ in 0..3 {
            let a = c.get("/a");
            assert_eq!(a.header("x-private"), Some("for a only"));
            let b = c.get("/b");
            assert_eq!(b.text(), "b");
            assert_eq!((b.header("x-private"), b.header("cache-control")), (None, None), "inline: {inline}");
        }
    }
}

/// A handler's `close` counts in any of its `Connection` headers, not only the first.
#[test]
fn a_close_in_a_second_connection_header_closes_the_connection() {
    let s = start(
        |_req: Request| Response::ok("bye").header("connection", "keep-alive").header("connection", "foo, Close"),
        opts(),
    );
    let mut c = Client::connect(addr(&s));
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response().unwrap();
    assert_eq!((r.text().as_str(), r.header("connection")), ("bye", Some("close")));
    assert!(c.is_closed_within(Duration::from_secs(10)));
}
