//! Responses and their bodies.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use cookie::Cookie;

use crate::takeover::Takeover;

/// A response: status (default 200), headers, body.
///
/// The server owns framing: `Content-Length`, `Transfer-Encoding` and `Connection` set here are
/// replaced by the right values (one exception: an empty answer to `HEAD` keeps a valid
/// `Content-Length`, so a handler can announce the length a `GET` would have). A header value with CR, LF or NUL is refused and the client
/// gets a `500` instead of the response (header injection).
///
/// ```
/// use httpkit::Response;
/// let r = Response::ok("hello HTTP!").header("content-type", "text/html");
/// assert_eq!(r.status(), 200);
/// ```
pub struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Body,
    pub(crate) invalid: Option<String>,
    /// A channel or a WebSocket upgrade that answers instead of this response.
    pub(crate) takeover: Option<Box<dyn Takeover>>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &self.body)
            .field("takeover", &self.takeover.as_ref().map(|t| t.kind()))
            .finish()
    }
}

impl Default for Response {
    fn default() -> Self {
        Self { status: StatusCode::OK, headers: spare_headers(), body: Body::empty(), invalid: None, takeover: None }
    }
}

thread_local! {
    /// Header maps of answers written on this thread, emptied for the next answer made here: a
    /// map's first header allocates its table (two allocations, freed with the map), which a
    /// used map already has.
    static SPARE_HEADERS: std::cell::RefCell<Vec<HeaderMap>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Spare maps kept per thread (a thread makes and writes one answer at a time).
const SPARE_MAX: usize = 2;
/// Largest map kept (in header names and in values: repeated values, such as many
/// `Set-Cookie`, are held apart from the names' table): a rare large answer's tables are not
/// held on to.
const SPARE_CAPACITY: usize = 24;

/// An empty header map: a spare one of this thread's, or a new one.
fn spare_headers() -> HeaderMap {
    SPARE_HEADERS.try_with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.pop())).ok().flatten().unwrap_or_default()
}

/// Keeps `headers` (of an answer written) for the next answer made on this thread.
pub(crate) fn recycle_headers(mut headers: HeaderMap) {
    if headers.capacity() == 0 || headers.capacity() > SPARE_CAPACITY || headers.len() > SPARE_CAPACITY {
        return;
    }
    headers.clear();
    let _ = SPARE_HEADERS.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            if s.len() < SPARE_MAX {
                s.push(headers);
            }
        }
    });
}

impl Response {
    /// A response answered by `t` (a channel, a WebSocket upgrade) instead of a body.
    pub(crate) fn taken_over(t: Box<dyn Takeover>) -> Self {
        Self { takeover: Some(t), ..Self::default() }
    }
}

impl Response {
    /// `200 OK` with `body`.
    pub fn ok(body: impl Into<Body>) -> Self {
        Self { body: body.into(), ..Self::default() }
    }

    /// A response with `status` (100–999) and no body. An invalid status answers 500.
    pub fn status_code(status: u16) -> Self {
        Self::default().with_status(status)
    }

    /// `404 Not Found`, empty body.
    pub fn not_found() -> Self {
        Self::status_code(404)
    }

    /// `200 OK`, `Content-Type: text/html; charset=utf-8`.
    pub fn html(body: impl Into<Body>) -> Self {
        Self::ok(body).header("content-type", "text/html; charset=utf-8")
    }

    /// Sets the status. An invalid code (outside 100–999) makes the response a 500.
    pub fn with_status(mut self, status: u16) -> Self {
        match StatusCode::from_u16(status) {
            Ok(s) => self.status = s,
            Err(_) => self.invalid = Some(format!("invalid HTTP status code: {status}")),
        }
        self
    }

    /// Appends a header. An invalid name or a value with CR, LF, NUL or other control bytes
    /// makes the response a 500 (never written to the wire).
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value.as_ref())) {
            (Ok(n), Ok(v)) => {
                self.headers.append(n, v);
            }
            _ => self.invalid = Some(format!("invalid header {name:?}")),
        }
        self
    }

    /// Adds a `Set-Cookie` header for `cookie` (its value percent-encoded; attributes such as
    /// `Path`, `Max-Age`, `Secure`, `HttpOnly`, `SameSite` as set on it).
    ///
    /// ```
    /// use httpkit::{Cookie, Response};
    /// let mut c = Cookie::new("session", "abc 123");
    /// c.set_http_only(true);
    /// let r = Response::ok("hi").set_cookie(c);
    /// assert_eq!(r.headers()["set-cookie"], "session=abc%20123; HttpOnly");
    /// ```
    pub fn set_cookie(self, cookie: Cookie<'_>) -> Self {
        self.header("set-cookie", cookie.encoded().to_string())
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, mutable.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }
}

impl<B: Into<Body>> From<http::Response<B>> for Response {
    fn from(r: http::Response<B>) -> Self {
        let (parts, body) = r.into_parts();
        Self { status: parts.status, headers: parts.headers, body: body.into(), invalid: None, takeover: None }
    }
}

/// A response body: empty, bytes, a file, or a stream of chunks.
///
/// Bytes and files are sent with `Content-Length`; streams with chunked encoding on HTTP/1.1
/// (close-delimited on HTTP/1.0). Files, readers and streams are sent piece by piece with
/// bounded memory, never loaded whole, and no thread waits for a slow client: pieces are
/// produced only while the connection has room (its write buffer below
/// [`Options::write_buffer`](crate::Options::write_buffer)); when it has none, the job ends, and
/// the next pieces are produced once the client has read most of what is buffered. A file's
/// pieces are read on the server's I/O threads (never on the reactor thread, whatever the
/// pool); a reader's or a stream's (your code) on the worker pool.
pub struct Body {
    pub(crate) kind: BodyKind,
}

pub(crate) type ChunkIter = Box<dyn Iterator<Item = io::Result<Bytes>> + Send>;

pub(crate) enum BodyKind {
    Empty,
    Bytes(Bytes),
    File(File, u64),
    Stream(ChunkIter),
    Reader(Box<dyn Read + Send>),
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BodyKind::Empty => f.write_str("Body::Empty"),
            BodyKind::Bytes(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            BodyKind::File(_, n) => write!(f, "Body::File({n} bytes)"),
            BodyKind::Stream(_) => f.write_str("Body::Stream"),
            BodyKind::Reader(_) => f.write_str("Body::Reader"),
        }
    }
}

impl Body {
    /// No body.
    pub fn empty() -> Self {
        Self { kind: BodyKind::Empty }
    }

    /// A file, sent with `Content-Length` from its size and streamed in pieces.
    ///
    /// # Errors
    /// Reading the file's metadata failed.
    pub fn file(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Self { kind: BodyKind::File(file, len) })
    }

    /// Opens the file at `path` (see [`Body::file`]).
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn from_path(path: impl AsRef<Path>) -> io::Result<Self> {
        Self::file(File::open(path)?)
    }

    /// A stream of chunks, each sent as soon as the iterator yields it (chunked encoding).
    ///
    /// The iterator is pulled on a worker only while the connection has room, so a slow client
    /// never holds a worker. An iterator that itself blocks (waits for data, sleeps between
    /// chunks) does hold the worker while it blocks: to stream what other threads produce,
    /// use the channel API instead ([`as_channel`](crate::as_channel) and
    /// [`Channel::send`](crate::Channel::send)), which holds no thread between sends.
    pub fn stream<I, B>(chunks: I) -> Self
    where
        I: IntoIterator<Item = B>,
        I::IntoIter: Send + 'static,
        B: Into<Bytes>,
    {
        Self { kind: BodyKind::Stream(Box::new(chunks.into_iter().map(|b| Ok(b.into())))) }
    }

    /// A stream of chunks that may fail; an error ends the response abruptly (the connection is
    /// closed, so the client sees an incomplete body rather than a wrong one).
    pub fn try_stream<I>(chunks: I) -> Self
    where
        I: IntoIterator<Item = io::Result<Bytes>>,
        I::IntoIter: Send + 'static,
    {
        Self { kind: BodyKind::Stream(Box::new(chunks.into_iter())) }
    }

    /// A reader of unknown length, sent in pieces (chunked encoding), read on a worker only
    /// while the connection has room (a reader that blocks holds the worker while it blocks;
    /// see [`Body::stream`]).
    pub fn reader(r: impl Read + Send + 'static) -> Self {
        Self { kind: BodyKind::Reader(Box::new(r)) }
    }

    /// The bytes of an in-memory body, if it is one.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.kind {
            BodyKind::Empty => Some(&[]),
            BodyKind::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Self { kind: BodyKind::Bytes(b) }
    }
}
impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Bytes::from(b).into()
    }
}
impl From<String> for Body {
    fn from(s: String) -> Self {
        Bytes::from(s).into()
    }
}
impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Bytes::from_static(s.as_bytes()).into()
    }
}
impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Self {
        Bytes::from_static(s).into()
    }
}
impl From<()> for Body {
    fn from(_: ()) -> Self {
        Self::empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn written_answers_lend_their_emptied_header_maps_to_the_next_ones() {
        // (Tests run on threads of their own: this thread's spares are this test's.)
        let r = Response::ok("a").header("x-secret", "1").header("content-type", "text/plain");
        let cap = r.headers.capacity();
        recycle_headers(r.headers);
        let next = Response::ok("b");
        assert!(next.headers.is_empty(), "a spare map comes back empty: {:?}", next.headers);
        assert_eq!(next.headers.capacity(), cap, "the spare one (its table already made)");
        // None kept that never held a header, has many names, or many values of one name.
        let spares = || SPARE_HEADERS.with(|s| s.borrow().len());
        assert_eq!(spares(), 0);
        recycle_headers(HeaderMap::new());
        let mut names = HeaderMap::new();
        for i in 0..100 {
            names.insert(HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap(), HeaderValue::from_static("v"));
        }
        recycle_headers(names);
        let mut values = Response::ok("d");
        for _ in 0..100 {
            values = values.header("set-cookie", "a=b");
        }
        assert!(values.headers.capacity() <= SPARE_CAPACITY, "one name: a small table, many values");
        recycle_headers(values.headers);
        assert_eq!(spares(), 0, "none of those kept");
        // At most SPARE_MAX kept.
        let made: Vec<_> = (0..5).map(|_| Response::ok("c").header("a", "1")).collect();
        for r in made {
            recycle_headers(r.headers);
        }
        assert_eq!(spares(), SPARE_MAX);
    }
}
