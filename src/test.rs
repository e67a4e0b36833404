//! Integration tests without boilerplate: [`TestServer`] starts an app on a free loopback port
//! and talks to it over real sockets — plain requests as `http` values, and WebSockets.
//!
//! ```
//! use httpkit::test::TestServer;
//! use httpkit::{as_channel, ChannelHandlers, Message, Request, Response};
//!
//! let app = |req: Request| {
//!     if req.path() == "/ws" {
//!         return as_channel(&req, ChannelHandlers::new().on_receive(|ch, m| { ch.send(m); }));
//!     }
//!     Response::ok(format!("hello {}", req.query("name").unwrap_or_default()))
//! };
//! let server = TestServer::start(app)?;
//! let resp = server.get("/?name=Ada")?;
//! assert_eq!(resp.status(), 200);
//! assert_eq!(resp.body(), b"hello Ada");
//!
//! let mut ws = server.websocket("/ws")?;
//! ws.send(Message::Text("ping".into()))?;
//! assert_eq!(ws.recv()?.to_text(), "ping");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! To call a handler with no server at all, build its request with
//! [`Request::try_from`](crate::Request#impl-TryFrom%3CRequest%3CB%3E%3E-for-Request).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;

use crate::{run_server, Handler, Message, Options, Server};

/// How long a test client waits for a byte before it gives up.
const TIMEOUT: Duration = Duration::from_secs(30);

/// An app served on `127.0.0.1` and a free port, for a test; stopped when dropped.
#[derive(Debug)]
pub struct TestServer {
    server: Server,
    addr: SocketAddr,
}

impl TestServer {
    /// Serves `handler` with the default options (on a free loopback port).
    ///
    /// # Errors
    /// The server could not start.
    pub fn start(handler: impl Handler) -> io::Result<Self> {
        Self::with_options(handler, Options::default())
    }

    /// Serves `handler` with `opts`; its address and port are replaced by `127.0.0.1` and a
    /// free port.
    ///
    /// # Errors
    /// The server could not start.
    pub fn with_options(handler: impl Handler, opts: Options) -> io::Result<Self> {
        let server = run_server(handler, opts.ip("127.0.0.1").port(0))?;
        let addr = server.local_addr().ok_or_else(|| io::Error::other("the server has no TCP address"))?;
        Ok(Self { server, addr })
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The running server (its status, counters, stop).
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// `GET path`.
    ///
    /// # Errors
    /// As [`TestServer::send`].
    pub fn get(&self, path: &str) -> io::Result<http::Response<Vec<u8>>> {
        self.send(http::Request::get(path).body(Vec::new()).map_err(io::Error::other)?)
    }

    /// Sends `req` on a new connection (with `Connection: close`) and reads the whole answer.
    ///
    /// # Errors
    /// The connection failed, or the answer is not a valid HTTP/1.1 response.
    pub fn send(&self, req: http::Request<Vec<u8>>) -> io::Result<http::Response<Vec<u8>>> {
        let mut s = self.connect()?;
        let head_only = req.method() == http::Method::HEAD;
        s.write_all(&encode_request(&req, "close"))?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        parse_response(&raw, head_only)
    }

    /// Opens a WebSocket on `path` (the handshake must answer `101`).
    ///
    /// # Errors
    /// The connection failed, or the server did not switch to WebSocket.
    pub fn websocket(&self, path: &str) -> io::Result<TestWebSocket> {
        let mut s = self.connect()?;
        let req = http::Request::get(path)
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-version", "13")
            .body(Vec::new())
            .map_err(io::Error::other)?;
        s.write_all(&encode_request(&req, "Upgrade"))?;
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte)? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no handshake answer"));
            }
            buf.push(byte[0]);
        }
        let resp = parse_response(&buf, true)?;
        if resp.status() != 101 {
            return Err(io::Error::other(format!("the handshake was answered {}", resp.status())));
        }
        Ok(TestWebSocket { stream: s })
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let s = TcpStream::connect(self.addr)?;
        s.set_read_timeout(Some(TIMEOUT))?;
        s.set_write_timeout(Some(TIMEOUT))?;
        Ok(s)
    }
}

/// The client side of a WebSocket opened by [`TestServer::websocket`].
#[derive(Debug)]
pub struct TestWebSocket {
    stream: TcpStream,
}

impl TestWebSocket {
    /// Sends a text or binary message (a [`Message::Response`] is sent as its body, binary).
    ///
    /// # Errors
    /// The connection failed.
    pub fn send(&mut self, msg: Message) -> io::Result<()> {
        let (op, payload) = match &msg {
            Message::Text(t) => (0x1, t.as_bytes()),
            _ => (0x2, msg.as_bytes()),
        };
        self.stream.write_all(&client_frame(op, payload))
    }

    /// The next message (control frames are skipped; a close frame is an `UnexpectedEof`
    /// error whose text holds the code).
    ///
    /// # Errors
    /// The connection failed or closed.
    pub fn recv(&mut self) -> io::Result<Message> {
        let mut data = Vec::new();
        let mut first_op = 0;
        loop {
            let mut h = [0u8; 2];
            self.stream.read_exact(&mut h)?;
            let len = match h[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.stream.read_exact(&mut b)?;
                    u64::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.stream.read_exact(&mut b)?;
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            let mut payload = vec![0u8; usize::try_from(len).map_err(io::Error::other)?];
            self.stream.read_exact(&mut payload)?;
            let op = h[0] & 0x0f;
            match op {
                0x8 => {
                    let code = payload.get(..2).map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("closed with {code}")));
                }
                0x9 | 0xA => continue,
                0x0 => data.extend_from_slice(&payload),
                _ => {
                    first_op = op;
                    data = payload;
                }
            }
            if h[0] & 0x80 != 0 {
                break;
            }
        }
        Ok(if first_op == 0x1 {
            Message::Text(String::from_utf8(data).map_err(io::Error::other)?)
        } else {
            Message::Binary(Bytes::from(data))
        })
    }

    /// Sends a close frame with `code` and waits for the server's.
    ///
    /// # Errors
    /// The connection failed.
    pub fn close(mut self, code: u16) -> io::Result<()> {
        self.stream.write_all(&client_frame(0x8, &code.to_be_bytes()))?;
        loop {
            match self.recv() {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
    }
}

fn encode_request(req: &http::Request<Vec<u8>>, connection: &str) -> Vec<u8> {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut out =
        format!("{} {target} HTTP/1.1\r\nhost: test\r\nconnection: {connection}\r\n", req.method()).into_bytes();
    for (name, value) in req.headers() {
        if name == http::header::HOST || name == http::header::CONNECTION || name == http::header::CONTENT_LENGTH {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !req.body().is_empty() || req.method() == http::Method::POST || req.method() == http::Method::PUT {
        out.extend_from_slice(format!("content-length: {}\r\n", req.body().len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(req.body());
    out
}

fn client_frame(op: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![0x80 | op];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

fn parse_response(raw: &[u8], head_only: bool) -> io::Result<http::Response<Vec<u8>>> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let n = match parsed.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(bad("incomplete response head")),
        Err(e) => return Err(bad(&format!("invalid response: {e}"))),
    };
    let mut builder = http::Response::builder().status(parsed.code.unwrap_or(0));
    let mut chunked = false;
    let mut length = None;
    for h in parsed.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") && h.value.eq_ignore_ascii_case(b"chunked") {
            chunked = true;
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<usize>().ok());
        }
        builder = builder.header(h.name, h.value);
    }
    let rest = &raw[n..];
    let status = parsed.code.unwrap_or(0);
    let body = if head_only || status < 200 || status == 204 || status == 304 {
        Vec::new()
    } else if chunked {
        dechunk(rest).ok_or_else(|| bad("invalid chunked body"))?
    } else if let Some(len) = length {
        rest.get(..len).ok_or_else(|| bad("body shorter than its Content-Length"))?.to_vec()
    } else {
        rest.to_vec()
    };
    builder.body(body).map_err(io::Error::other)
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}
