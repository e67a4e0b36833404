//! `Options::expect_continue` over real sockets: the application decides, from the head alone,
//! whether a client that waits for `100 Continue` may send its body.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use httpkit::{Request, Response};
use util::*;

const HEAD: &str = "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n";

/// A server that refuses uploads without credentials, and counts the handler's calls.
fn guarded(calls: &Arc<AtomicUsize>) -> httpkit::Server {
    let c = calls.clone();
    let handler = move |req: Request| {
        c.fetch_add(1, Ordering::SeqCst);
        Response::ok(req.body().unwrap_or_default().to_vec())
    };
    let o = opts().expect_continue(|req| {
        assert!(req.body().is_none(), "the body has not arrived");
        assert!(req.remote_addr().is_some());
        match req.header("authorization") {
            Some(_) => None,
            None => Some(Response::status_code(401).with_body("log in first")),
        }
    });
    start(handler, o)
}

#[test]
fn a_refused_client_gets_the_answer_instead_of_100_continue_and_never_sends_its_body() {
    let calls = Arc::default();
    let s = guarded(&calls);
    let mut c = Client::connect(addr(&s));
    c.send(format!("{HEAD}\r\n").as_bytes());
    let r = c.read_response().expect("an answer without the body");
    assert_eq!(r.status, 401, "no 100 Continue first: {}", r.text());
    assert_eq!(r.text(), "log in first");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed_within(IO_TIMEOUT), "closed after the answer");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler never ran");
    assert_eq!(s.stats().answered[3], 1);
}

#[test]
fn a_body_sent_anyway_is_never_taken_for_the_next_request() {
    let calls = Arc::default();
    let s = guarded(&calls);
    let mut c = Client::connect(addr(&s));
    // A client that does not wait: the body (itself a request) follows the head at once.
    c.send(format!("{HEAD}\r\nGET /").as_bytes());
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 401);
    assert!(c.is_closed_within(IO_TIMEOUT));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn an_allowed_client_gets_100_continue_then_its_answer() {
    let calls = Arc::default();
    let s = guarded(&calls);
    let mut c = Client::connect(addr(&s));
    c.send(format!("{HEAD}Authorization: Bearer t\r\n\r\n").as_bytes());
    let interim = c.read_response_to(true).unwrap();
    assert_eq!(interim.status, 100);
    c.send(b"hello");
    let r = c.read_response().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The connection goes on.
    let again = c.get("/");
    assert_eq!(again.status, 200);
}

#[test]
fn curl_refused_before_upload() {
    if std::process::Command::new("curl").arg("--version").output().is_err() {
        eprintln!("curl not installed: skipped");
        return;
    }
    let calls = Arc::default();
    let s = guarded(&calls);
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect: 100-continue", "--data-binary"])
        .arg("@-")
        .arg(format!("http://{}/upload", addr(&s)))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&vec![b'x'; 64 * 1024])?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn a_panicking_check_is_answered_500() {
    let s = start(
        |_req: Request| Response::ok("ran"),
        opts().expect_continue(|_req| -> Option<Response> { panic!("boom") }),
    );
    let mut c = Client::connect(addr(&s));
    c.send(format!("{HEAD}\r\n").as_bytes());
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 500);
    assert!(c.is_closed_within(IO_TIMEOUT));
    // The server lives on.
    let r = request(addr(&s), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r.status, r.text().as_str()), (200, "ran"));
}
