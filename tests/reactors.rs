//! Several reactors (`Options::reactors`): the key cases of the suite with two event loops
//! sharing the port, the pool, the statistics and the limits. (The whole suite also runs with
//! `HTTPKIT_TEST_REACTORS=2`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use httpkit::{as_channel, Body, Channel, ChannelHandlers, Inline, Options, Request, Response};
use util::*;

fn two() -> Options {
    Options::default().ip("127.0.0.1").port(0).reactors(2)
}

/// With `Inline`, the handler runs on the reactor thread: its name tells which reactor served.
fn reactor_name(_req: Request) -> Response {
    Response::ok(std::thread::current().name().unwrap_or("").to_owned())
}

#[test]
fn both_reactors_take_connections_on_one_port() {
    let s = start(reactor_name, two().worker_pool(Inline));
    let mut seen = HashSet::new();
    for _ in 0..64 {
        let mut c = Client::connect(addr(&s));
        seen.insert(c.get("/").text());
    }
    // The kernel spreads connections by their ports: 64 on one reactor would be a 2⁻⁶³ chance.
    assert_eq!(seen, HashSet::from(["httpkit-reactor-0".to_owned(), "httpkit-reactor-1".to_owned()]));
    assert_eq!(s.stats().connections_accepted, 64);
}

#[test]
fn keep_alive_pipelining_bodies_and_server_wide_counts() {
    let s = start(
        |req: Request| match req.uri() {
            "/big" => Response::ok(Body::stream((0..64u8).map(|k| vec![k; 65536]))),
            _ => Response::ok(format!("{} {}", req.uri(), req.content_length())),
        },
        two().write_buffer(64 << 10),
    );
    let mut clients: Vec<Client> = (0..10).map(|_| Client::connect(addr(&s))).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(
            format!("GET /a{i} HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
                .as_bytes(),
        );
        assert_eq!(c.read_response().unwrap().text(), format!("/a{i} 0"));
        assert_eq!(c.read_response().unwrap().text(), "/b 3");
    }
    // Server-wide: every reactor's connections.
    wait_until("10 open", || s.connections_open() == 10);
    let r = clients[3].get("/big");
    assert_eq!(r.body.len(), 64 * 65536);
    assert!(r.body.chunks(65536).enumerate().all(|(k, c)| c.iter().all(|&b| usize::from(b) == k)));
    drop(clients);
    wait_until("all closed", || s.connections_open() == 0);
}

#[test]
fn websockets_and_channels_on_both_reactors() {
    let kept: Arc<Mutex<Vec<Channel>>> = Arc::default();
    let k = kept.clone();
    let s = start(
        move |req: Request| {
            let k = k.clone();
            as_channel(
                &req,
                ChannelHandlers::new().on_open(move |ch| k.lock().unwrap().push(ch.clone())).on_receive(|ch, m| {
                    ch.send(m);
                }),
            )
        },
        two(),
    );
    // Echo over sixteen WebSockets (spread over both reactors).
    let mut socks: Vec<_> = (0..16).map(|_| tungstenite::connect(format!("ws://{}/ws", addr(&s))).unwrap().0).collect();
    for (i, ws) in socks.iter_mut().enumerate() {
        ws.send(tungstenite::Message::text(format!("hello {i}"))).unwrap();
        assert_eq!(ws.read().unwrap().into_text().unwrap().as_str(), format!("hello {i}"));
    }
    assert_eq!(s.stats().websockets_open, 16);
    // A long-poll answered from another thread, whichever reactor holds it.
    let mut poll = Client::connect(addr(&s));
    poll.send(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_until("17 channels", || kept.lock().unwrap().len() == 17);
    let ch = kept.lock().unwrap().iter().find(|c| !c.is_websocket()).cloned().unwrap();
    std::thread::spawn(move || assert!(ch.send("later"))).join().unwrap();
    assert_eq!(poll.read_response().unwrap().text(), "later");
    for mut ws in socks {
        ws.close(None).unwrap();
        while ws.read().is_ok() {}
    }
    wait_until("websockets closed", || s.stats().websockets_open == 0);
}

#[test]
fn the_connection_limit_is_server_wide() {
    let s = start(reactor_name, two().max_connections(10).idle_timeout(Duration::from_secs(300)));
    let mut idle: Vec<Client> = (0..10).map(|_| Client::connect(addr(&s))).collect();
    for c in &mut idle {
        assert_eq!(c.get("/").status, 200);
    }
    wait_until("10 open", || s.connections_open() == 10);
    // Newcomers are served; the server never holds more than the limit for long.
    for _ in 0..5 {
        let mut fresh = Client::connect(addr(&s));
        assert_eq!(fresh.get("/").status, 200);
        idle.push(fresh);
    }
    wait_until("back at the limit", || s.connections_open() <= 10);
    assert!(s.stats().evictions >= 5, "{:?}", s.stats());
}

#[test]
fn graceful_stop_finishes_answers_on_every_reactor() {
    let s = start(
        |_req: Request| {
            std::thread::sleep(Duration::from_millis(300));
            Response::ok("done")
        },
        two(),
    );
    let a = addr(&s);
    let waiting: Vec<_> = (0..6).map(|_| std::thread::spawn(move || Client::connect(a).get("/").text())).collect();
    std::thread::sleep(Duration::from_millis(100));
    s.stop_graceful(Duration::from_secs(10));
    for w in waiting {
        assert_eq!(w.join().unwrap(), "done");
    }
    assert!(std::net::TcpStream::connect(a).is_err(), "still listening after stop");
}

#[test]
fn unix_sockets_and_caller_listeners_are_shared_by_the_reactors() {
    let path = std::env::temp_dir().join(format!("httpkit-reactors-{}.sock", std::process::id()));
    let s = start(reactor_name, Options::default().unix_socket(&path).reactors(2).worker_pool(Inline));
    for _ in 0..8 {
        use std::io::{Read, Write};
        let mut c = std::os::unix::net::UnixStream::connect(&path).unwrap();
        c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert!(out.contains("httpkit-reactor-"), "{out}");
    }
    s.stop();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    let s = httpkit::serve(reactor_name, Options::default().reactors(2).worker_pool(Inline), l).unwrap();
    for _ in 0..8 {
        assert!(Client::connect(a).get("/").text().starts_with("httpkit-reactor-"));
    }
    s.stop();
}
