//! The testing helpers: a handler called without a socket (`Request::try_from`), and
//! `httpkit::test::TestServer` over real sockets (HTTP and WebSocket).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use httpkit::test::TestServer;
use httpkit::{as_channel, Body, ChannelHandlers, Message, Request, Response};

fn app(mut req: Request) -> Response {
    match req.path() {
        "/ws" => as_channel(
            &req,
            ChannelHandlers::new().on_receive(|ch, m| {
                ch.send(m);
            }),
        ),
        "/stream" => Response::ok(Body::stream(["a", "b", "c"])),
        "/echo" => {
            let ct = req.content_type().unwrap_or("none").to_owned();
            let body = req.take_body().unwrap_or_default();
            Response::ok(body).header("x-ct", ct)
        }
        _ => Response::ok(format!(
            "{} {} q={} host={}",
            req.method(),
            req.path(),
            req.query("q").unwrap_or_default(),
            req.header("host").unwrap_or("")
        )),
    }
}

#[test]
fn a_handler_is_a_plain_function_in_a_unit_test() {
    let req = http::Request::post("http://example.org/echo?x=1")
        .header("content-type", "text/plain")
        .body(b"payload".to_vec())
        .unwrap();
    let resp = app(Request::try_from(req).unwrap());
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-ct"], "text/plain");
    assert_eq!(resp.body().as_bytes(), Some(&b"payload"[..]));

    let resp = app(Request::try_from(http::Request::get("/a?q=x%20y").body(Vec::new()).unwrap()).unwrap());
    assert_eq!(resp.body().as_bytes(), Some(&b"GET /a q=x y host=localhost"[..]));
    // A request the parser refuses is an error, as it would be a 400 on the wire.
    let bad = http::Request::get("/").header("host", "a b").body(Vec::new()).unwrap();
    assert!(Request::try_from(bad).is_err());
    // No channel without a connection.
    let ws = app(Request::try_from(http::Request::get("/ws").body(Vec::new()).unwrap()).unwrap());
    assert_eq!(ws.status(), 500);
}

#[test]
fn a_test_server_answers_over_real_sockets() {
    let s = TestServer::start(app).unwrap();
    let r = s.get("/hello?q=1").unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.body(), b"GET /hello q=1 host=test");
    let r = s.get("/stream").unwrap();
    assert_eq!(r.headers()["transfer-encoding"], "chunked");
    assert_eq!(r.body(), b"abc");
    let post = http::Request::post("/echo").header("content-type", "application/json").body(b"{}".to_vec()).unwrap();
    let r = s.send(post).unwrap();
    assert_eq!((r.headers()["x-ct"].to_str().unwrap(), r.body().as_slice()), ("application/json", &b"{}"[..]));
    let head = s.send(http::Request::head("/hello").body(Vec::new()).unwrap()).unwrap();
    assert_eq!((head.status().as_u16(), head.body().len()), (200, 0));
}

#[test]
fn a_test_server_speaks_websocket() {
    let s = TestServer::start(app).unwrap();
    let mut ws = s.websocket("/ws").unwrap();
    ws.send(Message::Text("ping".into())).unwrap();
    assert_eq!(ws.recv().unwrap().to_text(), "ping");
    let big = vec![7u8; 200_000];
    ws.send(Message::Binary(big.clone().into())).unwrap();
    assert_eq!(ws.recv().unwrap().as_bytes(), &big[..]);
    ws.close(1000).unwrap();
    // A path that does not upgrade is an error.
    assert!(s.websocket("/hello").is_err());
}
