//! The response encoder: status line, the caller's headers, then the headers the server owns
//! (framing, `Connection`, `Server`, `Date`), into a caller-owned buffer.
//!
//! The server owns framing: `Content-Length`, `Transfer-Encoding` and `Connection` set by the
//! caller in `headers` are ignored and replaced by the right ones, so a handler can never produce
//! a wrong frame. (An empty answer to `HEAD` keeps a single all-digit `Content-Length` of the
//! caller's: no body follows it either way, and it tells the length a `GET` would have.)

use http::{header, HeaderMap, Method, StatusCode, Version};

use super::request::has_token;
use super::EncodeError;

/// The length of the body about to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// A body of exactly this many bytes (`Content-Length`).
    Known(u64),
    /// A body of unknown length: chunked on HTTP/1.1, close-delimited on HTTP/1.0.
    Streamed,
}

/// What the encoder needs to know about the exchange.
#[derive(Debug, Clone, Copy)]
pub struct ResponseContext<'a> {
    /// The request's method (HEAD responses carry no body).
    pub method: &'a Method,
    /// The request's version.
    pub version: Version,
    /// Whether the connection may stay open (the request's decision, and the server's).
    pub keep_alive: bool,
    /// The `Date` value, an IMF-fixdate (see [`crate::date`]).
    pub date: &'a [u8],
    /// The `Server` value, if any; added only when `headers` has none.
    pub server: Option<&'a [u8]>,
}

/// How the body must be framed after the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoder {
    /// No body may be sent (HEAD, 1xx, 204, 304).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked: frame each piece with [`BodyEncoder::chunk_header`], end with
    /// [`BodyEncoder::finish`].
    Chunked,
    /// The body ends when the connection closes (HTTP/1.0 stream).
    CloseDelimited,
}

impl BodyEncoder {
    /// Whether body bytes are to be sent at all.
    pub fn has_body(self) -> bool {
        !matches!(self, Self::None)
    }

    /// Writes the framing that precedes a piece of `len` bytes (`len` must be > 0).
    pub fn chunk_header(self, len: usize, dst: &mut Vec<u8>) {
        if self == Self::Chunked {
            write_hex(dst, len);
            dst.extend_from_slice(b"\r\n");
        }
    }

    /// Writes the framing that follows a piece.
    pub fn chunk_trailer(self, dst: &mut Vec<u8>) {
        if self == Self::Chunked {
            dst.extend_from_slice(b"\r\n");
        }
    }

    /// Writes the end of the body (`0\r\n\r\n` when chunked).
    pub fn finish(self, dst: &mut Vec<u8>) {
        if self == Self::Chunked {
            dst.extend_from_slice(b"0\r\n\r\n");
        }
    }
}

/// The outcome of [`encode_head`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseFraming {
    /// How to frame the body.
    pub body: BodyEncoder,
    /// Whether the connection stays open after this response.
    pub keep_alive: bool,
}

/// Appends a response head to `dst`.
///
/// Status 101 is written with the caller's `Connection`/`Upgrade` headers as given and no body.
///
/// # Errors
/// [`EncodeError::InvalidHeaderValue`] if a value holds CR, LF or NUL; `dst` is then restored.
///
/// ```
/// use http::{HeaderMap, Method, StatusCode, Version};
/// use httpkit_codec::h1::{encode_head, BodyLength, ResponseContext, BodyEncoder};
/// let mut out = Vec::new();
/// let ctx = ResponseContext { method: &Method::GET, version: Version::HTTP_11, keep_alive: true,
///     date: b"Sun, 06 Nov 1994 08:49:37 GMT", server: Some(b"httpkit") };
/// let f = encode_head(StatusCode::OK, &HeaderMap::new(), BodyLength::Known(2), &ctx, &mut out).unwrap();
/// assert_eq!(f.body, BodyEncoder::Length(2));
/// assert_eq!(out, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nserver: httpkit\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n");
/// ```
pub fn encode_head(
    status: StatusCode,
    headers: &HeaderMap,
    length: BodyLength,
    ctx: &ResponseContext<'_>,
    dst: &mut Vec<u8>,
) -> Result<ResponseFraming, EncodeError> {
    let start = dst.len();
    let code = status.as_u16();
    let upgrade = code == 101;
    let no_body_status = status.is_informational() || code == 204 || code == 304;
    // 205 Reset Content: no content may be sent; it is framed as an empty body (RFC 9110 §15.3.6).
    let reset_content = code == 205;
    let is_head = *ctx.method == Method::HEAD;

    // (A handler's `Connection: close` is seen in the loop over the headers below.)
    let mut keep_alive = ctx.keep_alive;
    let body = if no_body_status || is_head || reset_content {
        BodyEncoder::None
    } else {
        match length {
            BodyLength::Known(n) => BodyEncoder::Length(n),
            BodyLength::Streamed if ctx.version == Version::HTTP_11 => BodyEncoder::Chunked,
            BodyLength::Streamed => {
                keep_alive = false;
                BodyEncoder::CloseDelimited
            }
        }
    };

    dst.reserve(128);
    if code == 200 {
        dst.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        let reason = status.canonical_reason().unwrap_or("Unknown").as_bytes();
        let line = [b"HTTP/1.1 ".as_slice(), &status_digits(code), b" ", reason, b"\r\n"];
        for part in line {
            dst.extend_from_slice(part);
        }
    }

    let mut has_server = false;
    let mut has_date = false;
    for (name, value) in headers {
        if name == header::CONNECTION && has_token(value.as_bytes(), b"close") {
            keep_alive = false;
        }
        if !upgrade
            && (name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING || name == header::CONNECTION)
        {
            continue;
        }
        let v = value.as_bytes();
        if v.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
            dst.truncate(start);
            return Err(EncodeError::InvalidHeaderValue);
        }
        has_server |= name == header::SERVER;
        has_date |= name == header::DATE;
        dst.extend_from_slice(name.as_str().as_bytes());
        dst.extend_from_slice(b": ");
        dst.extend_from_slice(v);
        dst.extend_from_slice(b"\r\n");
    }
    if !upgrade {
        if !keep_alive && ctx.version == Version::HTTP_11 {
            dst.extend_from_slice(b"connection: close\r\n");
        } else if keep_alive && ctx.version == Version::HTTP_10 {
            dst.extend_from_slice(b"connection: keep-alive\r\n");
        }
        match (length, no_body_status) {
            (_, true) => {}
            (_, false) if reset_content => dst.extend_from_slice(b"content-length: 0\r\n"),
            (BodyLength::Known(n), false) => {
                // HEAD may announce the length a GET would have (RFC 9110 §8.6): an empty HEAD
                // body keeps the handler's own valid Content-Length.
                let n = if is_head && n == 0 { declared_length(headers).unwrap_or(0) } else { n };
                // One copy for the whole line.
                let mut line = *b"content-length: 00000000000000000000\r\n";
                let digits = dec_digits(n, &mut line[16..36]);
                let from = 36 - digits;
                line.copy_within(0..16, from - 16);
                dst.extend_from_slice(&line[from - 16..]);
            }
            (BodyLength::Streamed, false) => {
                if body == BodyEncoder::Chunked || (is_head && ctx.version == Version::HTTP_11) {
                    dst.extend_from_slice(b"transfer-encoding: chunked\r\n");
                }
            }
        }
        if let (false, Some(server)) = (has_server, ctx.server) {
            dst.extend_from_slice(b"server: ");
            dst.extend_from_slice(server);
            dst.extend_from_slice(b"\r\n");
        }
    }
    if !has_date {
        dst.extend_from_slice(b"date: ");
        dst.extend_from_slice(ctx.date);
        dst.extend_from_slice(b"\r\n");
    }
    dst.extend_from_slice(b"\r\n");
    Ok(ResponseFraming { body, keep_alive })
}

/// A single, all-digit `Content-Length` the handler set.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    let v = values.next()?.as_bytes();
    if values.next().is_some() || v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Writes `n` in decimal at the end of `buf` (20 bytes: any `u64`), returning how many digits.
fn dec_digits(mut n: u64, buf: &mut [u8]) -> usize {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.len() - i
}

fn status_digits(code: u16) -> [u8; 3] {
    [b'0' + (code / 100) as u8, b'0' + (code / 10 % 10) as u8, b'0' + (code % 10) as u8]
}

fn write_hex(dst: &mut Vec<u8>, mut n: usize) {
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    dst.extend_from_slice(&buf[i..]);
}
