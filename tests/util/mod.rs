//! Shared helpers of the integration tests: start a server on port 0, talk raw HTTP to it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use httpkit::{run_server, Handler, Options, Server};

/// Every blocking read in the tests has this timeout: long enough for a slow machine.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Options for a test server on port 0. `HTTPKIT_TEST_REACTORS=n` runs every test's server with
/// `n` reactors (CI runs the suite with 1 and with 2).
pub fn opts() -> Options {
    Options::default().ip("127.0.0.1").port(0).reactors(test_reactors())
}

/// The reactors each test server runs (`HTTPKIT_TEST_REACTORS`, default 1).
pub fn test_reactors() -> usize {
    std::env::var("HTTPKIT_TEST_REACTORS").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

pub fn start(h: impl Handler, opts: Options) -> Server {
    run_server(h, opts).expect("server starts")
}

pub fn addr(s: &Server) -> SocketAddr {
    s.local_addr().expect("tcp server")
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub chunks: usize,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn header_count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).count()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw HTTP/1.x client over one TCP connection.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Self { stream, buf: Vec::new() }
    }

    /// A client around a stream connected elsewhere.
    pub fn from_stream(stream: TcpStream) -> Self {
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Self { stream, buf: Vec::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write request");
    }

    pub fn get(&mut self, path: &str) -> Resp {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        self.read_response().expect("response")
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = [0u8; 65536];
        let n = self.stream.read(&mut tmp)?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    fn read_until_crlf(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..i].to_vec();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    fn read_exact_buf(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    pub fn read_response(&mut self) -> io::Result<Resp> {
        self.read_response_to(false)
    }

    /// Reads one response; `head` says the request was HEAD (no body follows).
    pub fn read_response_to(&mut self, head: bool) -> io::Result<Resp> {
        let status_line = self.read_until_crlf()?;
        let status_line = String::from_utf8_lossy(&status_line).into_owned();
        let status: u16 =
            status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad status line {status_line:?}"))
            })?;
        let mut headers = Vec::new();
        loop {
            let line = self.read_until_crlf()?;
            if line.is_empty() {
                break;
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            let (n, v) = line.split_once(':').unwrap_or((&line, ""));
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
        let mut r = Resp { status, headers, body: Vec::new(), chunks: 0 };
        if head || status < 200 || status == 204 || status == 304 {
            return Ok(r);
        }
        if let Some(cl) = r.header("content-length") {
            let n: usize = cl.parse().unwrap();
            r.body = self.read_exact_buf(n)?;
        } else if r.header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            loop {
                let size_line = self.read_until_crlf()?;
                let size = usize::from_str_radix(String::from_utf8_lossy(&size_line).trim(), 16).unwrap();
                if size == 0 {
                    while !self.read_until_crlf()?.is_empty() {}
                    break;
                }
                r.chunks += 1;
                let data = self.read_exact_buf(size)?;
                r.body.extend_from_slice(&data);
                assert_eq!(self.read_until_crlf()?, b"");
            }
        } else {
            while self.fill()? > 0 {}
            r.body = std::mem::take(&mut self.buf);
        }
        Ok(r)
    }

    /// True if the server closed the connection (EOF or reset) within `within`.
    pub fn is_closed_within(&mut self, within: Duration) -> bool {
        self.stream.set_read_timeout(Some(within)).unwrap();
        let deadline = Instant::now() + within;
        let res = loop {
            let mut b = [0u8; 4096];
            match self.stream.read(&mut b) {
                Ok(0) => break true,
                Ok(_) => {
                    if Instant::now() > deadline {
                        break false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => break false,
                Err(_) => break true,
            }
        };
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        res
    }
}

/// A one-shot request on a new connection.
pub fn request(addr: SocketAddr, raw: &[u8]) -> Resp {
    let mut c = Client::connect(addr);
    c.send(raw);
    c.read_response().expect("response")
}

/// Reads a response head byte by byte (nothing of the body is consumed), as text.
pub fn read_raw_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("response head");
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("a text head")
}

/// Resident set size of this process in KiB.
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Opens a WebSocket over a raw socket: sends the handshake, checks the 101, returns the client
/// (any bytes after the 101 stay buffered) and the response head.
pub fn ws_connect(addr: SocketAddr, path: &str, extra: &str) -> (Client, Resp) {
    let mut c = Client::connect(addr);
    c.send(
        format!(
            "GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
        .as_bytes(),
    );
    let r = c.read_response_to(true).expect("handshake response");
    (c, r)
}

/// A masked client frame.
pub fn client_frame(op: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let key = [0x12, 0x34, 0x56, 0x78];
    let mut out = vec![if fin { 0x80 } else { 0 } | op];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

impl Client {
    /// Reads one server frame: (fin, opcode, payload). Server frames must be unmasked.
    pub fn read_frame(&mut self) -> io::Result<(bool, u8, Vec<u8>)> {
        let (b0, payload) = self.read_frame_bits()?;
        Ok((b0 & 0x80 != 0, b0 & 0x0f, payload))
    }

    /// Reads one server frame: its first byte (FIN, RSV1–3, opcode) and payload.
    pub fn read_frame_bits(&mut self) -> io::Result<(u8, Vec<u8>)> {
        let h = self.read_exact_buf(2)?;
        assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
        let len = match h[1] & 0x7f {
            126 => {
                let b = self.read_exact_buf(2)?;
                u16::from_be_bytes([b[0], b[1]]) as usize
            }
            127 => {
                let b = self.read_exact_buf(8)?;
                u64::from_be_bytes(b.try_into().unwrap()) as usize
            }
            l => l as usize,
        };
        let payload = self.read_exact_buf(len)?;
        Ok((h[0], payload))
    }

    /// Reads frames until a close frame; returns its code and reason.
    pub fn read_close(&mut self) -> io::Result<(Option<u16>, String)> {
        loop {
            let (_, op, p) = self.read_frame()?;
            if op == 0x8 {
                if p.len() < 2 {
                    return Ok((None, String::new()));
                }
                return Ok((Some(u16::from_be_bytes([p[0], p[1]])), String::from_utf8_lossy(&p[2..]).into_owned()));
            }
        }
    }
}

/// Waits until `f` holds, failing the test after `IO_TIMEOUT`.
pub fn wait_until(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < IO_TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
