//! The request decoder: head (via `httparse`), then body framing (RFC 9112 §6), then the end.
//!
//! States, one `match` in [`RequestDecoder::decode`]:
//!
//! ```text
//! Head ──head complete──▶ Length(n) ──n bytes──▶ (End) ──▶ Head
//!   │                 └──▶ Chunked ──last chunk + trailers──▶ (End) ──▶ Head
//!   └──no body──▶ EndPending ──▶ (End) ──▶ Head
//! ```

use std::mem::MaybeUninit;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};

use super::chunked::{Chunk, ChunkedDecoder};
use super::{Limits, ParseError};

/// How the body of a request is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body (no `Content-Length`, or `Content-Length: 0`).
    Empty,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A decoded request head. Header values are kept as bytes; names are lower-case
/// (`http::HeaderName`) and matched case-insensitively.
///
/// The head keeps one copy of its raw bytes; the [`HeaderMap`] is built from them the first
/// time [`RequestHead::headers`] is called, so a handler that never looks at the headers never
/// pays for the map.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// The request method (any token; extension methods are kept).
    pub method: Method,
    /// The protocol version: `HTTP/1.0` or `HTTP/1.1`.
    pub version: Version,
    /// Whether the connection may be reused after this exchange, from the version and the
    /// `Connection` header (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request with a body: the server should send
    /// `100 Continue` before reading the body.
    pub expect_continue: bool,
    /// `Connection: upgrade` together with an `Upgrade` header.
    pub upgrade: bool,
    /// How the body is framed.
    pub body: BodyKind,
    /// Where the request-target lies in `raw` (no separate `Bytes`: slicing would allocate).
    target: (u32, u32),
    raw: Bytes,
    n_headers: usize,
    websocket: bool,
    headers: std::sync::OnceLock<Box<HeaderMap>>,
    path_start: usize,
    path_end: usize,
}

impl RequestHead {
    /// The raw request-target as sent (not percent-decoded).
    pub fn target(&self) -> &str {
        let (a, b) = self.target;
        self.raw.get(a as usize..b as usize).and_then(|t| std::str::from_utf8(t).ok()).unwrap_or("")
    }

    /// The raw request-target as shared bytes (a cheap reference-counted clone).
    pub fn target_bytes(&self) -> Bytes {
        let (a, b) = self.target;
        if (b as usize) <= self.raw.len() && a <= b {
            self.raw.slice(a as usize..b as usize)
        } else {
            Bytes::new()
        }
    }

    /// The path: the target up to `?`; for absolute-form targets (`http://host/p?q`) the path
    /// part only (`/p`), `/` when the target has none; `*` for `OPTIONS *`.
    pub fn path(&self) -> &str {
        match self.target().get(self.path_start..self.path_end) {
            Some("") | None => "/",
            Some(p) => p,
        }
    }

    /// The query string after the first `?`, `None` when there is no `?` (`Some("")` for a
    /// trailing `?`).
    pub fn query(&self) -> Option<&str> {
        let t = self.target();
        if self.path_end < t.len() {
            t.get(self.path_end + 1..)
        } else {
            None
        }
    }

    /// Whether the request asks for a WebSocket: an `Upgrade` header with the `websocket` token.
    pub fn is_websocket(&self) -> bool {
        self.websocket
    }

    /// The header fields in arrival order (duplicates kept), built on first use.
    pub fn headers(&self) -> &HeaderMap {
        self.headers.get_or_init(|| Box::new(build_headers(&self.raw, self.n_headers)))
    }
}

/// One step of decoding.
#[derive(Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // moved once per request; boxing would cost an allocation
pub enum RequestEvent<'a> {
    /// The head is complete. Body events follow, then [`RequestEvent::End`].
    Head(RequestHead),
    /// A piece of the body, borrowed from the input.
    Body(&'a [u8]),
    /// The request is complete; the decoder is ready for the next (pipelined) request.
    End,
}

impl PartialEq for RequestHead {
    fn eq(&self, other: &Self) -> bool {
        self.method == other.method
            && self.version == other.version
            && self.raw == other.raw
            && self.keep_alive == other.keep_alive
            && self.expect_continue == other.expect_continue
            && self.upgrade == other.upgrade
            && self.body == other.body
            && self.target() == other.target()
    }
}
impl Eq for RequestHead {}

#[derive(Debug)]
enum State {
    Head,
    EndPending,
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
}

/// An incremental HTTP/1.1 request decoder.
///
/// Feed it the bytes received so far; it returns how many it consumed and at most one event.
/// `Ok((0, None))` means "need more bytes". The caller drops consumed bytes and keeps the rest
/// (a partial head is re-offered whole on the next call: the decoder remembers how far it
/// scanned, so slow clients cost linear time).
///
/// ```
/// use httpkit_codec::h1::{RequestDecoder, RequestEvent, Limits};
/// let mut dec = RequestDecoder::new(Limits::default());
/// let input = b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi";
/// let (n, ev) = dec.decode(input).unwrap();
/// let Some(RequestEvent::Head(head)) = ev else { panic!() };
/// assert_eq!((head.path(), head.query()), ("/a", Some("b=1")));
/// let (m, ev) = dec.decode(&input[n..]).unwrap();
/// assert_eq!(ev, Some(RequestEvent::Body(b"hi")));
/// assert_eq!(dec.decode(&input[n + m..]).unwrap(), (0, Some(RequestEvent::End)));
/// ```
#[derive(Debug)]
pub struct RequestDecoder {
    limits: Limits,
    state: State,
    /// Start of the first line not yet known to be complete (head scanning).
    line_start: usize,
    /// Complete non-empty lines seen so far in this head.
    lines: usize,
    /// Start of the request line (after leading empty lines).
    head_start: usize,
    trailers: Option<Box<HeaderMap>>,
}

impl RequestDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self { limits, state: State::Head, line_start: 0, lines: 0, head_start: 0, trailers: None }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// True between requests: no byte of the next request has been consumed.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head) && self.line_start == 0 && self.lines == 0
    }

    /// The trailer fields of the last chunked request, if it had any.
    pub fn take_trailers(&mut self) -> Option<Box<HeaderMap>> {
        self.trailers.take()
    }

    fn reset(&mut self) {
        self.state = State::Head;
        self.line_start = 0;
        self.lines = 0;
        self.head_start = 0;
    }

    /// Decodes from `input`, which must start at the first byte not yet consumed.
    ///
    /// # Errors
    /// A [`ParseError`] naming the status to answer; the connection must then be closed.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Option<RequestEvent<'a>>), ParseError> {
        match &mut self.state {
            State::Head => self.decode_head(input),
            State::EndPending => {
                self.reset();
                Ok((0, Some(RequestEvent::End)))
            }
            State::Length(rem) => {
                if *rem == 0 {
                    self.reset();
                    return Ok((0, Some(RequestEvent::End)));
                }
                let n = (*rem).min(input.len() as u64) as usize;
                if n == 0 {
                    return Ok((0, None));
                }
                *rem -= n as u64;
                Ok((n, Some(RequestEvent::Body(&input[..n]))))
            }
            State::Chunked(c) => {
                let (n, chunk) = c.decode(input)?;
                match chunk {
                    Chunk::Data(d) => Ok((n, Some(RequestEvent::Body(d)))),
                    Chunk::End(trailers) => {
                        self.trailers = trailers.map(Box::new);
                        self.reset();
                        Ok((n, Some(RequestEvent::End)))
                    }
                    Chunk::NeedMore => Ok((n, None)),
                }
            }
        }
    }

    fn line_error(&self) -> ParseError {
        if self.lines == 0 {
            ParseError::UriTooLong
        } else {
            ParseError::HeadersTooLarge
        }
    }

    fn decode_head<'a>(&mut self, buf: &'a [u8]) -> Result<(usize, Option<RequestEvent<'a>>), ParseError> {
        // Fast path: the whole head usually arrives in one read.
        if self.lines == 0 && self.line_start == 0 && buf.first().is_some_and(|b| *b != b'\r') {
            if let Some((end, head)) = self.parse(buf, 0)? {
                return Ok((end, Some(RequestEvent::Head(head))));
            }
        }
        let lim = self.limits;
        let mut pos = self.line_start;
        loop {
            let Some(i) = buf[pos..].iter().position(|&b| b == b'\n') else {
                if buf.len() - pos > lim.max_line {
                    return Err(self.line_error());
                }
                if buf.len() > lim.max_header_bytes {
                    return Err(ParseError::HeadersTooLarge);
                }
                self.line_start = pos;
                return Ok((0, None));
            };
            let nl = pos + i;
            if nl + 1 - pos > lim.max_line {
                return Err(self.line_error());
            }
            if nl + 1 > lim.max_header_bytes {
                return Err(ParseError::HeadersTooLarge);
            }
            let empty = nl == pos || (nl == pos + 1 && buf[pos] == b'\r');
            pos = nl + 1;
            if !empty {
                self.lines += 1;
                continue;
            }
            if self.lines == 0 {
                // RFC 9112 §2.2: ignore empty lines before the request line.
                self.head_start = pos;
                continue;
            }
            let start = self.head_start;
            return match self.parse(&buf[..pos], start)? {
                Some((end, head)) => Ok((end, Some(RequestEvent::Head(head)))),
                None => Err(ParseError::Malformed),
            };
        }
    }

    /// Parses the head in `buf[start..]`; `Ok(None)` when it is incomplete.
    fn parse(&mut self, buf: &[u8], start: usize) -> Result<Option<(usize, RequestHead)>, ParseError> {
        let lim = self.limits;
        let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); Limits::HEADERS_CAP];
        let n_slots = lim.max_headers.min(Limits::HEADERS_CAP);
        let mut req = httparse::Request::new(&mut []);
        let src = &buf[start..];
        let len = match req.parse_with_uninit_headers(src, &mut slots[..n_slots]) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::Version) if higher_minor_at(src).is_some() => {
                // RFC 9110 §2.5: a higher minor version of HTTP/1 is served as HTTP/1.1. Rare:
                // the head is parsed again from a copy that says so.
                let mut patched = buf.to_vec();
                patched[start + higher_minor_at(src).unwrap_or(0)] = b'1';
                return self.parse(&patched, start);
            }
            Err(e) => return Err(map_httparse_error(e, src)),
        };
        let end = start + len;
        if end > lim.max_header_bytes {
            return Err(ParseError::HeadersTooLarge);
        }
        let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
            return Err(ParseError::Malformed);
        };
        // Each line's real length, line break included, as the line scanner measures it: from
        // its start to the next line's (the last one ends where the empty line begins).
        let offset = |s: &str| (s.as_ptr() as usize).wrapping_sub(src.as_ptr() as usize);
        let lines_end = len - if len >= 2 && src[len - 2] == b'\r' { 2 } else { 1 };
        let line_start = |i: usize| req.headers.get(i).map_or(lines_end, |h| offset(h.name));
        if line_start(0) > lim.max_line {
            return Err(ParseError::UriTooLong);
        }
        for i in 0..req.headers.len() {
            if line_start(i + 1).saturating_sub(line_start(i)) > lim.max_line {
                return Err(ParseError::HeadersTooLarge);
            }
        }
        let version = if minor == 1 { Version::HTTP_11 } else { Version::HTTP_10 };
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| ParseError::Malformed)?;

        let mut content_length: Option<u64> = None;
        let mut has_te = false;
        let mut te_chunked = false;
        let mut hosts = 0usize;
        let (mut conn_close, mut conn_keep_alive, mut conn_upgrade) = (false, false, false);
        let mut expect_continue = false;
        let mut has_upgrade = false;
        let mut websocket = false;
        for h in req.headers.iter() {
            let name = h.name.as_bytes();
            match name.len() {
                4 if name.eq_ignore_ascii_case(b"host") => {
                    if !valid_host(h.value) {
                        return Err(ParseError::Host);
                    }
                    hosts += 1;
                }
                6 if name.eq_ignore_ascii_case(b"expect") => {
                    expect_continue = h.value.eq_ignore_ascii_case(b"100-continue");
                }
                7 if name.eq_ignore_ascii_case(b"upgrade") => {
                    has_upgrade = true;
                    websocket |= has_token(h.value, b"websocket");
                }
                10 if name.eq_ignore_ascii_case(b"connection") => {
                    for t in tokens(h.value) {
                        conn_close |= t.eq_ignore_ascii_case(b"close");
                        conn_keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
                        conn_upgrade |= t.eq_ignore_ascii_case(b"upgrade");
                    }
                }
                14 if name.eq_ignore_ascii_case(b"content-length") => {
                    for v in h.value.split(|&b| b == b',') {
                        let n = parse_content_length(trim(v))?;
                        if content_length.is_some_and(|prev| prev != n) {
                            return Err(ParseError::ContentLength);
                        }
                        content_length = Some(n);
                    }
                }
                17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                    for t in tokens(h.value) {
                        if te_chunked {
                            // `chunked` must be the final coding, applied once.
                            return Err(if t.eq_ignore_ascii_case(b"chunked") {
                                ParseError::AmbiguousFraming
                            } else {
                                ParseError::UnsupportedTransferEncoding
                            });
                        }
                        if !t.eq_ignore_ascii_case(b"chunked") {
                            return Err(ParseError::UnsupportedTransferEncoding);
                        }
                        te_chunked = true;
                    }
                    has_te = true;
                }
                _ => {}
            }
        }
        if has_te {
            if content_length.is_some() || version == Version::HTTP_10 {
                return Err(ParseError::AmbiguousFraming);
            }
            if !te_chunked {
                return Err(ParseError::UnsupportedTransferEncoding);
            }
        }
        if hosts > 1 || (hosts == 0 && version == Version::HTTP_11) {
            return Err(ParseError::Host);
        }
        let body = if has_te {
            BodyKind::Chunked
        } else {
            match content_length {
                Some(n) if n > lim.max_body => return Err(ParseError::BodyTooLarge),
                Some(0) | None => BodyKind::Empty,
                Some(n) => BodyKind::Length(n),
            }
        };

        // One allocation holds the target and every header value.
        let raw = Bytes::copy_from_slice(&src[..len]);
        let t_off = (path.as_ptr() as usize).wrapping_sub(src.as_ptr() as usize);
        let target = (t_off as u32, (t_off + path.len()) as u32);
        let (path_start, path_end) = split_target(path)?;
        let keep_alive = match version {
            Version::HTTP_11 => !conn_close,
            _ => conn_keep_alive && !conn_close,
        };
        let head = RequestHead {
            method,
            version,
            n_headers: req.headers.len(),
            websocket,
            headers: std::sync::OnceLock::new(),
            raw,
            keep_alive,
            expect_continue: expect_continue && version == Version::HTTP_11 && body != BodyKind::Empty,
            upgrade: conn_upgrade && has_upgrade,
            body,
            target,
            path_start,
            path_end,
        };
        self.state = match body {
            BodyKind::Empty => State::EndPending,
            BodyKind::Length(n) => State::Length(n),
            BodyKind::Chunked => State::Chunked(Box::new(ChunkedDecoder::new(lim))),
        };
        Ok(Some((end, head)))
    }
}

/// Builds the header map from a head that already parsed once (so it cannot fail; a field that
/// `http` would refuse is skipped rather than trusted).
fn build_headers(raw: &Bytes, n: usize) -> HeaderMap {
    let mut slots = vec![httparse::EMPTY_HEADER; n];
    let mut req = httparse::Request::new(&mut slots);
    let mut map = HeaderMap::with_capacity(n);
    if req.parse(raw).is_err() {
        return map;
    }
    for h in req.headers.iter() {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(h.name.as_bytes()), HeaderValue::from_maybe_shared(sub(raw, raw, h.value)))
        {
            map.append(name, value);
        }
    }
    map
}

/// The part of `raw` (a copy of `src`) that `part` (a slice of `src`) covers.
fn sub(raw: &Bytes, src: &[u8], part: &[u8]) -> Bytes {
    let off = (part.as_ptr() as usize).wrapping_sub(src.as_ptr() as usize);
    if off <= raw.len() && part.len() <= raw.len() - off {
        raw.slice(off..off + part.len())
    } else {
        Bytes::copy_from_slice(part)
    }
}

/// A `Host` value as RFC 9110 §7.2 allows it, and not empty: `uri-host [":" port]`, where
/// uri-host is a reg-name (unreserved, pct-encoded, sub-delims) or a bracketed IP literal, and
/// the port is digits (possibly none) up to 65535.
fn valid_host(v: &[u8]) -> bool {
    let (host_ok, port) = if v.first() == Some(&b'[') {
        let Some(close) = v.iter().position(|&b| b == b']') else {
            return false;
        };
        let inner = &v[1..close];
        if inner.is_empty() || !inner.iter().all(|&b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.' | b'v' | b'V')) {
            return false;
        }
        match &v[close + 1..] {
            [] => (true, None),
            [b':', port @ ..] => (true, Some(port)),
            _ => return false,
        }
    } else {
        // One pass: reg-name bytes by table, up to the `:` before the port (the usual name,
        // without `%`, in a tight loop first).
        let mut i = v.iter().position(|&b| !REG_NAME[usize::from(b)]).unwrap_or(v.len());
        loop {
            match v.get(i) {
                None => break (i > 0, None),
                Some(&b) if REG_NAME[usize::from(b)] => i += 1,
                // pct-encoded: '%' and two hex digits.
                Some(b'%') if v.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) => i += 3,
                Some(b':') => break (i > 0, Some(&v[i + 1..])),
                Some(_) => return false,
            }
        }
    };
    let port_ok = match port {
        None => true,
        Some(p) => {
            p.len() <= 5
                && p.iter()
                    .try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
                    .is_some_and(|n| n <= 65535)
        }
    };
    host_ok && port_ok
}

/// The bytes of a reg-name (RFC 3986 §3.2.2) other than `%`: unreserved and sub-delims.
static REG_NAME: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')')
            || matches!(c, b'*' | b'+' | b',' | b';' | b'=');
        b += 1;
    }
    t
};

/// Splits a request-target into the path range; the query starts after `path_end`.
fn split_target(t: &str) -> Result<(usize, usize), ParseError> {
    let path_end = t.find('?').unwrap_or(t.len());
    if t.starts_with('/') || t == "*" {
        return Ok((0, path_end));
    }
    // absolute-form: scheme "://" authority [path], the "://" before any '?'.
    let before_query = &t[..path_end];
    if let Some(i) = before_query.find("://") {
        let scheme = &t[..i];
        let scheme_ok =
            !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(ParseError::Target);
        }
        let after = i + 3;
        let path_start = before_query[after..].find('/').map_or(path_end, |p| after + p);
        // With no path (`http://host?q`) the range is empty and `path()` answers `/`.
        return Ok((path_start, path_end));
    }
    // authority-form (CONNECT host:port): the whole target is the "path".
    if !t.is_empty() && !t.contains('/') {
        return Ok((0, path_end));
    }
    Err(ParseError::Target)
}

/// Where the minor digit of an `HTTP/1.2` … `HTTP/1.9` request line's version is.
fn higher_minor_at(src: &[u8]) -> Option<usize> {
    let line_end = src.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(src.len());
    let line = &src[..line_end];
    let sp = line.iter().rposition(|&b| b == b' ')?;
    let v = &line[sp + 1..];
    (v.len() == 8 && v.starts_with(b"HTTP/1.") && (b'2'..=b'9').contains(&v[7])).then_some(sp + 8)
}

fn map_httparse_error(e: httparse::Error, src: &[u8]) -> ParseError {
    match e {
        httparse::Error::HeaderName => ParseError::HeaderName,
        httparse::Error::HeaderValue => ParseError::HeaderValue,
        httparse::Error::TooManyHeaders => ParseError::TooManyHeaders,
        httparse::Error::Version => {
            // `HTTP/2.0`, `HTTP/0.9`, `HTTP/3`: a version we do not speak (505); anything else
            // is garbage (400).
            let line_end = src.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(src.len());
            let line = &src[..line_end];
            let last = line.rsplit(|&b| b == b' ').next().unwrap_or(b"");
            let looks_like_version = last.len() >= 6
                && last.starts_with(b"HTTP/")
                && last[5..].iter().all(|b| b.is_ascii_digit() || *b == b'.');
            if looks_like_version {
                ParseError::UnsupportedVersion
            } else {
                ParseError::Malformed
            }
        }
        _ => ParseError::Malformed,
    }
}

fn parse_content_length(v: &[u8]) -> Result<u64, ParseError> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::ContentLength);
    }
    let mut n: u64 = 0;
    for &b in v {
        n = n * 10 + u64::from(b - b'0');
    }
    Ok(n)
}

pub(crate) fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |e| e + 1);
    &v[start..end.max(start)]
}

/// The comma-separated tokens of a header value, trimmed, empty elements skipped.
pub(crate) fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(trim).filter(|t| !t.is_empty())
}

/// Whether the comma-separated list `v` contains `token` (ASCII case-insensitive).
pub(crate) fn has_token(v: &[u8], token: &[u8]) -> bool {
    tokens(v).any(|t| t.eq_ignore_ascii_case(token))
}
