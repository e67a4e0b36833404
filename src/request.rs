//! The request a handler receives (Ring's request map, typed).

use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Instant;

use crate::attachment::ConnHandle;
use std::borrow::Cow;

use cookie::Cookie;
use http::{HeaderMap, Method, Version};
use httpkit_codec::h1::RequestHead;

/// An HTTP request with its whole body.
///
/// ```
/// # fn handler(req: httpkit::Request) -> httpkit::Response {
/// let name = req.query_string().unwrap_or("world");
/// httpkit::Response::ok(format!("hello {name} from {:?}", req.remote_addr()))
/// # }
/// ```
#[derive(Debug)]
pub struct Request {
    head: RequestHead,
    body: Option<Vec<u8>>,
    /// A body spooled to disk (larger than `Options::body_buffer_size`).
    spooled: Option<Box<Spooled>>,
    trailers: Option<Box<HeaderMap>>,
    remote_addr: Option<SocketAddr>,
    local_addr: Option<SocketAddr>,
    received: Instant,
    https: bool,
    pub(crate) exchange: Option<crate::exchange::Exchange>,
}

impl Request {
    pub(crate) fn new(
        head: RequestHead,
        body: Vec<u8>,
        trailers: Option<Box<HeaderMap>>,
        conn: &ConnHandle,
        received: Instant,
        exchange: crate::exchange::Exchange,
    ) -> Self {
        let origin =
            crate::forwarded::origin(&head, conn, &exchange.server.trusted_proxies, exchange.server.forwarded_header);
        Self {
            remote_addr: origin.addr,
            https: origin.https,
            head,
            body: if body.is_empty() { None } else { Some(body) },
            spooled: None,
            trailers,
            local_addr: conn.local_addr(),
            received,
            exchange: Some(exchange),
        }
    }

    /// The head of a request whose body has not arrived (for `Options::expect_continue`).
    pub(crate) fn head_only(head: RequestHead, conn: &ConnHandle, server: &crate::exchange::ServerShared) -> Self {
        let origin = crate::forwarded::origin(&head, conn, &server.trusted_proxies, server.forwarded_header);
        Self {
            remote_addr: origin.addr,
            https: origin.https,
            head,
            body: None,
            spooled: None,
            trailers: None,
            local_addr: conn.local_addr(),
            received: Instant::now(),
            exchange: None,
        }
    }

    /// A request made from `head` and `body` with no connection behind it (see
    /// [`Request::try_from`](#impl-TryFrom%3CRequest%3CB%3E%3E-for-Request)).
    fn detached(head: RequestHead, body: Vec<u8>) -> Self {
        Self {
            head,
            body: if body.is_empty() { None } else { Some(body) },
            spooled: None,
            trailers: None,
            remote_addr: None,
            local_addr: None,
            received: Instant::now(),
            https: false,
            exchange: None,
        }
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.head.method
    }

    /// The raw request-target as sent: path and query, or an absolute URI.
    pub fn uri(&self) -> &str {
        self.head.target()
    }

    /// The path (the request-target up to `?`, not percent-decoded; for an absolute-form target
    /// only its path).
    pub fn path(&self) -> &str {
        self.head.path()
    }

    /// The raw query string after the first `?`; `None` without `?`.
    pub fn query_string(&self) -> Option<&str> {
        self.head.query()
    }

    /// The query string's `name=value` pairs, percent-decoded (`+` is a space), in order
    /// (parsed by the `form_urlencoded` crate).
    ///
    /// ```
    /// # use httpkit::{Request, Response};
    /// fn search(req: Request) -> Response {
    ///     // GET /search?q=rust+http&page=2
    ///     let q = req.query("q").unwrap_or_default();
    ///     Response::ok(format!("looking for {q}"))
    /// }
    /// ```
    pub fn query_pairs(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> + '_ {
        form_urlencoded::parse(self.query_string().unwrap_or("").as_bytes())
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query(&self, name: &str) -> Option<Cow<'_, str>> {
        self.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The fields of a form body (`Content-Type: application/x-www-form-urlencoded`),
    /// percent-decoded, in order; `None` for another content type.
    pub fn form(&self) -> Option<impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> + '_> {
        let ct = self.content_type()?;
        let essence = ct.split(';').next().unwrap_or("").trim();
        essence
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            .then(|| form_urlencoded::parse(self.body().unwrap_or(&[])))
    }

    /// The first value of form field `name` (see [`Request::form`]).
    pub fn form_field(&self, name: &str) -> Option<Cow<'_, str>> {
        self.form()?.find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The cookies the client sent (every `Cookie` line, percent-decoded; pairs that are not
    /// valid cookies are skipped), parsed by the `cookie` crate.
    ///
    /// ```
    /// # use httpkit::{Cookie, Request, Response};
    /// fn visit(req: Request) -> Response {
    ///     let n: u32 = req.cookie("visits").and_then(|v| v.parse().ok()).unwrap_or(0);
    ///     Response::ok(format!("visit {}", n + 1)).set_cookie(Cookie::new("visits", (n + 1).to_string()))
    /// }
    /// ```
    pub fn cookies(&self) -> Vec<Cookie<'static>> {
        self.head
            .headers()
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|line| Cookie::split_parse_encoded(line.to_owned()))
            .filter_map(Result::ok)
            .collect()
    }

    /// The value of cookie `name`, percent-decoded.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies().into_iter().find(|c| c.name() == name).map(|c| c.value().to_owned())
    }

    /// The id of the last server-sent event a reconnecting `EventSource` saw (its
    /// `Last-Event-ID` header; see [`Event::id`](crate::Event::id)).
    pub fn last_event_id(&self) -> Option<&str> {
        self.header("last-event-id")
    }

    /// `HTTP/1.0` or `HTTP/1.1`.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The header fields (names case-insensitive; duplicates kept).
    pub fn headers(&self) -> &HeaderMap {
        self.head.headers()
    }

    /// The first value of header `name` if it is valid UTF-8 (see [`Request::header_joined`]
    /// for all of them).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.headers().get(name).and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
    }

    /// Every value of header `name` in one string, as http-kit's request map has it: lines
    /// joined with `,` (`Cookie` lines with `; `, RFC 6265). Values that are not valid UTF-8 are
    /// skipped; `None` when there is no valid value.
    ///
    /// ```
    /// # use httpkit::{Request, Response};
    /// fn handler(req: Request) -> Response {
    ///     // "a=1; b=2" for two lines `Cookie: a=1` and `Cookie: b=2`
    ///     Response::ok(req.header_joined("cookie").unwrap_or_default().into_owned())
    /// }
    /// ```
    pub fn header_joined(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        let mut values =
            self.head.headers().get_all(name).iter().filter_map(|v| std::str::from_utf8(v.as_bytes()).ok());
        let first = values.next()?;
        let Some(second) = values.next() else {
            return Some(std::borrow::Cow::Borrowed(first));
        };
        let sep = if name.eq_ignore_ascii_case("cookie") { "; " } else { "," };
        let mut joined = format!("{first}{sep}{second}");
        for v in values {
            joined.push_str(sep);
            joined.push_str(v);
        }
        Some(std::borrow::Cow::Owned(joined))
    }

    /// The trailer fields of a chunked request body.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_deref()
    }

    /// The body; `None` when the request had none.
    ///
    /// A body larger than [`Options::body_buffer_size`](crate::Options::body_buffer_size) is
    /// on disk: the first call reads it into memory (kept for later calls); `None` if that
    /// read fails. Read large bodies with [`Request::body_reader`] instead.
    pub fn body(&self) -> Option<&[u8]> {
        match &self.spooled {
            Some(s) => s.whole(),
            None => self.body.as_deref(),
        }
    }

    /// The body as a reader (empty when there is none), from memory or, for a body spooled to
    /// disk, from its file, without loading it.
    ///
    /// ```
    /// # fn handler(req: httpkit::Request) -> httpkit::Response {
    /// let mut sum = 0u64;
    /// let mut buf = [0u8; 8192];
    /// let mut body = req.body_reader();
    /// while let Ok(n @ 1..) = std::io::Read::read(&mut body, &mut buf) {
    ///     sum += buf[..n].iter().map(|&b| u64::from(b)).sum::<u64>();
    /// }
    /// httpkit::Response::ok(sum.to_string())
    /// # }
    /// ```
    pub fn body_reader(&self) -> impl Read + '_ {
        match &self.spooled {
            Some(s) => BodyReader::File { file: s.file(), at: 0, len: s.len() },
            None => BodyReader::Memory(io::Cursor::new(self.body.as_deref().unwrap_or(&[]))),
        }
    }

    /// Takes the body out of the request (a spooled body is read into memory: see
    /// [`Request::body`]).
    pub fn take_body(&mut self) -> Option<Vec<u8>> {
        if let Some(s) = self.spooled.take() {
            return (*s).into_whole();
        }
        self.body.take()
    }

    /// The body as an owned reader (empty when there is none), e.g. to send it back as a
    /// response body ([`Body::reader`](crate::Body::reader)) without loading a spooled body.
    pub fn into_body_reader(mut self) -> impl Read + Send + 'static {
        match self.spooled.take() {
            Some(s) => OwnedBody::File { len: s.len(), spool: s.spool, at: 0 },
            None => OwnedBody::Memory(io::Cursor::new(self.body.take().unwrap_or_default())),
        }
    }

    /// Whether the body was spooled to disk (see
    /// [`Options::body_buffer_size`](crate::Options::body_buffer_size)).
    pub fn is_body_spooled(&self) -> bool {
        self.spooled.is_some()
    }

    /// The body length in bytes (0 without a body).
    pub fn content_length(&self) -> usize {
        match &self.spooled {
            Some(s) => usize::try_from(s.len()).unwrap_or(usize::MAX),
            None => self.body.as_ref().map_or(0, Vec::len),
        }
    }

    /// The body went to disk: it is read from `spool` from here on.
    pub(crate) fn set_spooled(&mut self, spool: std::sync::Arc<crate::spool::Spool>) {
        self.body = None;
        self.spooled = Some(Box::new(Spooled { spool, whole: std::sync::OnceLock::new() }));
    }

    /// The `Content-Type` header.
    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    /// The client's address: the one a PROXY protocol header named (with
    /// [`Options::proxy_protocol`](crate::Options::proxy_protocol)); else, for a request from a
    /// proxy listed in [`Options::trusted_proxies`](crate::Options::trusted_proxies), the address
    /// in its [forwarding header](crate::Options::forwarded_header) (port 0); else the socket
    /// peer. `None` over a
    /// Unix domain socket. Forwarding headers from anyone else are never trusted.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// The local address the request arrived on (`None` over a Unix domain socket).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The host name from the `Host` header, without the port (IPv6 keeps its brackets).
    pub fn server_name(&self) -> Option<&str> {
        let host = self.header("host")?;
        Some(split_host(host).0)
    }

    /// The port from the `Host` header, 80 when it names none (as in Ring and http-kit).
    pub fn server_port(&self) -> u16 {
        self.header("host").and_then(|h| split_host(h).1).unwrap_or(80)
    }

    /// `"https"` when a [trusted proxy](crate::Options::trusted_proxies) says the client used
    /// TLS (`X-Forwarded-Proto: https`, `Forwarded: proto=https`, or a PROXY v2 header's TLS
    /// flag); `"http"` otherwise (httpkit itself leaves TLS to a proxy in front).
    pub fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }

    /// When the request finished arriving (monotonic).
    pub fn received_at(&self) -> Instant {
        self.received
    }

    /// Whether the client has closed its side of the connection since sending this request (it
    /// may have given up waiting). A long handler can check it and stop early.
    pub fn client_closed(&self) -> bool {
        self.exchange.as_ref().is_some_and(|e| e.conn.peer_closed() || e.conn.is_closed())
    }

    /// Whether the client asks for a WebSocket (`Upgrade: websocket`).
    pub fn is_websocket(&self) -> bool {
        self.head.is_websocket()
    }

    /// The subprotocols the client offers in `Sec-WebSocket-Protocol`, in its order.
    pub fn websocket_protocols(&self) -> Vec<&str> {
        httpkit_codec::ws::requested_protocols(self.head.headers())
    }

    /// Whether the connection will be kept open after this exchange (if the response allows).
    pub fn is_keep_alive(&self) -> bool {
        self.head.keep_alive
    }

    /// Converts into an `http::Request` with the body (empty when none).
    pub fn into_http(self) -> http::Request<Vec<u8>> {
        let mut b = http::Request::builder()
            .method(self.head.method.clone())
            .uri(self.head.target())
            .version(self.head.version);
        if let Some(h) = b.headers_mut() {
            *h = self.head.headers().clone();
        }
        let mut this = self;
        let body = this.take_body().unwrap_or_default();
        b.body(body).unwrap_or_else(|_| http::Request::new(Vec::new()))
    }
}

/// A request body spooled to disk, and its bytes once someone asked for them whole.
#[derive(Debug)]
struct Spooled {
    spool: std::sync::Arc<crate::spool::Spool>,
    whole: std::sync::OnceLock<Option<Vec<u8>>>,
}

impl Spooled {
    fn len(&self) -> u64 {
        self.spool.len()
    }

    fn file(&self) -> Option<&std::fs::File> {
        self.spool.file()
    }

    fn read_whole(&self) -> Option<Vec<u8>> {
        // The length is the client's: an allocation that fails is a `None`, never an abort.
        let mut v = Vec::new();
        if v.try_reserve_exact(usize::try_from(self.len()).unwrap_or(usize::MAX)).is_err() {
            log::error!("a spooled request body of {} bytes does not fit in memory", self.len());
            return None;
        }
        let mut reader = BodyReader::File { file: self.file(), at: 0, len: self.len() };
        match reader.read_to_end(&mut v) {
            Ok(_) => Some(v),
            Err(e) => {
                log::error!("reading a spooled request body failed: {e}");
                None
            }
        }
    }

    fn whole(&self) -> Option<&[u8]> {
        self.whole.get_or_init(|| self.read_whole()).as_deref()
    }

    fn into_whole(mut self) -> Option<Vec<u8>> {
        match self.whole.take() {
            Some(v) => v,
            None => self.read_whole(),
        }
    }
}

/// An owned request body being read (see [`Request::into_body_reader`]).
enum OwnedBody {
    Memory(io::Cursor<Vec<u8>>),
    File { spool: std::sync::Arc<crate::spool::Spool>, at: u64, len: u64 },
}

impl Read for OwnedBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            OwnedBody::Memory(c) => c.read(buf),
            OwnedBody::File { spool, at, len } => {
                let mut r = BodyReader::File { file: spool.file(), at: *at, len: *len };
                let n = r.read(buf)?;
                *at += n as u64;
                Ok(n)
            }
        }
    }
}

/// Reads a request body from memory or from its spool file (positioned reads: the file is
/// shared, never moved).
enum BodyReader<'a> {
    Memory(io::Cursor<&'a [u8]>),
    File { file: Option<&'a std::fs::File>, at: u64, len: u64 },
}

impl Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            BodyReader::Memory(c) => c.read(buf),
            BodyReader::File { file, at, len } => {
                let want = (*len - *at).min(buf.len() as u64) as usize;
                if want == 0 {
                    return Ok(0);
                }
                let Some(file) = file else {
                    return Err(io::Error::new(io::ErrorKind::NotFound, "the spooled body has no file"));
                };
                let n = std::os::unix::fs::FileExt::read_at(*file, &mut buf[..want], *at)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the spooled body is shorter than written",
                    ));
                }
                *at += n as u64;
                Ok(n)
            }
        }
    }
}

/// Splits `host[:port]` (with `[v6]` literals) into name and port.
fn split_host(host: &str) -> (&str, Option<u16>) {
    let colon = if host.starts_with('[') {
        host.find(']').and_then(|e| host[e..].find(':').map(|c| e + c))
    } else {
        host.rfind(':')
    };
    match colon {
        Some(i) => (&host[..i], host[i + 1..].parse().ok()),
        None => (host, None),
    }
}

/// Builds a request without a socket, so that a handler is a plain function in a unit test. The
/// request goes through the same parser as one from the network (an invalid one is an error);
/// it has no client address, and a channel or WebSocket cannot be opened on it (`as_channel`
/// answers `500`).
///
/// ```
/// use httpkit::{Request, Response};
///
/// fn hello(req: Request) -> Response {
///     Response::ok(format!("hello {}", req.query("name").unwrap_or_default()))
/// }
///
/// let req = Request::try_from(http::Request::get("/hi?name=Ada").body(Vec::new()).unwrap()).unwrap();
/// let resp = hello(req);
/// assert_eq!(resp.status(), 200);
/// assert_eq!(resp.body().as_bytes(), Some(&b"hello Ada"[..]));
/// ```
impl<B: Into<Vec<u8>>> TryFrom<http::Request<B>> for Request {
    type Error = io::Error;

    fn try_from(req: http::Request<B>) -> io::Result<Self> {
        let (parts, body) = req.into_parts();
        let body: Vec<u8> = body.into();
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let version = if parts.version == Version::HTTP_10 { "HTTP/1.0" } else { "HTTP/1.1" };
        let mut head = format!("{} {target} {version}\r\n", parts.method).into_bytes();
        if !parts.headers.contains_key(http::header::HOST) {
            let host = parts.uri.authority().map_or("localhost", |a| a.as_str());
            head.extend_from_slice(format!("host: {host}\r\n").as_bytes());
        }
        for (name, value) in &parts.headers {
            if name == http::header::CONTENT_LENGTH || name == http::header::TRANSFER_ENCODING {
                continue;
            }
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        if !body.is_empty() {
            head.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        let limits = httpkit_codec::h1::Limits { max_body: body.len() as u64, ..httpkit_codec::h1::Limits::DEFAULT };
        let mut decoder = httpkit_codec::h1::RequestDecoder::new(limits);
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
        match decoder.decode(&head) {
            Ok((_, Some(httpkit_codec::h1::RequestEvent::Head(h)))) => Ok(Self::detached(h, body)),
            Ok(_) => Err(invalid("incomplete request head".to_owned())),
            Err(e) => Err(invalid(format!("invalid request: {}", e.description()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_host;

    #[test]
    fn host_splitting() {
        assert_eq!(split_host("example.com"), ("example.com", None));
        assert_eq!(split_host("example.com:8080"), ("example.com", Some(8080)));
        assert_eq!(split_host("[::1]:9"), ("[::1]", Some(9)));
        assert_eq!(split_host("[::1]"), ("[::1]", None));
    }
}
