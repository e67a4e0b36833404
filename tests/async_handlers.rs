//! Async handlers (feature `tokio`) over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::sync::Arc;

use httpkit::{run_server_async, Request, Response};
use util::*;

/// 1000 requests whose handlers all wait on one barrier of 1000, with 4 runtime threads: only
/// possible if every one of them is in flight at once without holding a thread.
#[test]
fn a_thousand_handlers_wait_at_once_on_four_threads() {
    const N: usize = 1000;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_time().build().unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let b = barrier.clone();
    let s = run_server_async(
        move |req: Request| {
            let b = b.clone();
            async move {
                b.wait().await;
                Response::ok(req.path().to_owned())
            }
        },
        opts(),
        rt.handle().clone(),
    )
    .unwrap();
    let mut clients: Vec<Client> = (0..N)
        .map(|i| {
            let mut c = Client::connect(addr(&s));
            c.send(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
            c
        })
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let r = c.read_response().unwrap();
        assert_eq!((r.status, r.text()), (200, format!("/{i}")));
    }
}

#[test]
fn past_max_in_flight_a_request_gets_503_and_a_panic_500() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap();
    let gate = Arc::new(tokio::sync::Notify::new());
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (g, st) = (gate.clone(), started.clone());
    let s = run_server_async(
        move |req: Request| {
            let (g, st) = (g.clone(), st.clone());
            async move {
                match req.path() {
                    "/wait" => {
                        st.store(true, std::sync::atomic::Ordering::SeqCst);
                        g.notified().await
                    }
                    "/panic" => panic!("boom"),
                    "/stream" => return Response::ok(httpkit::Body::stream(["str", "eamed"])),
                    _ => {}
                }
                Response::ok("done")
            }
        },
        opts().max_in_flight(1),
        rt.handle().clone(),
    )
    .unwrap();
    let mut waiting = Client::connect(addr(&s));
    waiting.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_until("the first handler runs", || started.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(request(addr(&s), b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n").status, 503);
    gate.notify_one();
    assert_eq!(waiting.read_response().unwrap().text(), "done");
    // Its slot was given back before its answer left.
    assert_eq!(request(addr(&s), b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
    assert_eq!(request(addr(&s), b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n").status, 500);
    // A body read piece by piece is written from the blocking pool.
    assert_eq!(request(addr(&s), b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n").text(), "streamed");
    assert_eq!(s.stats().rejected, 1);
}
