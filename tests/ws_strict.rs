//! Strict failure (issue 17 item 5): when a frame fails a WebSocket, the echoes due for the
//! messages before it still go out, then the close (1002 / 1007), on both APIs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use httpkit::{as_channel, websocket_response, ChannelHandlers, Request, Response, WsListener};
use util::*;

fn server() -> httpkit::Server {
    start(
        |req: Request| {
            if req.uri() == "/ring" {
                return websocket_response(WsListener::new().on_message(|s, m| {
                    // A slow echo: the bad frame has long been read when it is sent.
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    s.send(m).unwrap();
                }));
            }
            if !req.is_websocket() {
                return Response::status_code(404);
            }
            as_channel(
                &req,
                ChannelHandlers::new().on_receive(|ch, m| {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    ch.send(m);
                }),
            )
        },
        opts(),
    )
}

#[test]
fn echoes_before_a_bad_frame_arrive_then_the_close() {
    let s = server();
    for path in ["/ws", "/ring"] {
        // Two valid messages, then a frame with a reserved opcode, in one write.
        let (mut c, _) = ws_connect(addr(&s), path, "");
        let mut bytes = client_frame(0x1, true, b"first");
        bytes.extend(client_frame(0x1, true, b"second"));
        bytes.extend(client_frame(0x3, true, b"bad"));
        c.send(&bytes);
        assert_eq!(c.read_frame().unwrap(), (true, 0x1, b"first".to_vec()), "{path}");
        assert_eq!(c.read_frame().unwrap(), (true, 0x1, b"second".to_vec()), "{path}");
        assert_eq!(c.read_close().unwrap().0, Some(1002), "{path}");
        assert!(c.is_closed_within(IO_TIMEOUT), "{path}");
        // Invalid UTF-8 after a valid message: its echo, then 1007.
        let (mut c, _) = ws_connect(addr(&s), path, "");
        let mut bytes = client_frame(0x1, true, b"ok");
        bytes.extend(client_frame(0x1, true, &[0xff, 0xfe]));
        c.send(&bytes);
        assert_eq!(c.read_frame().unwrap(), (true, 0x1, b"ok".to_vec()), "{path}");
        assert_eq!(c.read_close().unwrap().0, Some(1007), "{path}");
    }
}
