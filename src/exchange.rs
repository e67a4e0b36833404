//! One request/response exchange: where and how its answer is written (a whole response, a
//! head and body pieces, an error), who has claimed it, and what every job of a server shares.
//! Writing a [`Response`](crate::Response) value is `answer.rs`'s.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use httpkit_codec::h1::{encode_head, BodyEncoder, BodyLength, ResponseContext};
use httpkit_codec::ws::HandshakeError;

use crate::attachment::ConnHandle;
use crate::date::with_date;
use crate::logging::Loggers;
use crate::pool::WorkerPool;
use crate::status::{AtomicStatus, ServerStatus};
use httpkit_reactor::Part;

/// Bodies up to this size are copied after the head into one buffer (one write segment).
pub(crate) const INLINE_BODY: usize = 16 * 1024;
/// Piece size for files and readers.
pub(crate) const PIECE: usize = 64 * 1024;

/// What every job of one server shares.
#[derive(Debug)]
pub(crate) struct ServerShared {
    pub(crate) status: AtomicStatus,
    /// Answers written, by status class (1xx … 5xx).
    pub(crate) answered: [std::sync::atomic::AtomicU64; 5],
    /// Requests the worker pool refused (answered 503).
    pub(crate) rejected: std::sync::atomic::AtomicU64,
    /// Whether each answer is logged to the `httpkit::access` target.
    pub(crate) access_log: bool,
    pub(crate) server_header: Option<Bytes>,
    pub(crate) loggers: Loggers,
    pub(crate) write_high_water: usize,
    pub(crate) max_ws: usize,
    pub(crate) pool: Arc<dyn WorkerPool>,
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    pub(crate) origins: OriginPolicy,
    /// `Options::ws_compression`.
    pub(crate) ws_compression: Option<crate::WsCompression>,
    pub(crate) forwarded_header: crate::ForwardedHeader,
    /// `Options::expect_continue`.
    pub(crate) expect_continue: Option<ExpectHook>,
    /// The threads that read file bodies (see `pump.rs`).
    pub(crate) io: Arc<crate::pump::IoThreads>,
    /// `Options::long_poll_timeout`, and its timer.
    pub(crate) long_poll_timeout: Option<(std::time::Duration, u16)>,
    pub(crate) long_poll_timer: Arc<crate::timeouts::LongPollTimer>,
    /// Where large request bodies go (see `spool.rs`).
    pub(crate) spool: crate::spool::SpoolConfig,
}

/// What decides whether a request expecting `100 Continue` may send its body.
#[derive(Clone)]
pub(crate) struct ExpectHook(pub(crate) Arc<ExpectFn>);

type ExpectFn = dyn Fn(&crate::Request) -> Option<crate::Response> + Send + Sync;

impl std::fmt::Debug for ExpectHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExpectHook")
    }
}

impl std::fmt::Debug for dyn WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkerPool")
    }
}

impl ServerShared {
    pub(crate) fn is_running(&self) -> bool {
        self.status.get() == ServerStatus::Running
    }

    /// Counts an answer by its status class (1xx … 5xx) for `Server::stats`.
    pub(crate) fn count_status(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.answered[class].fetch_add(1, Ordering::Relaxed);
    }
}

/// Where the response of one exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RespState {
    /// Nothing written yet.
    Idle,
    /// The head is written; body pieces follow. `close`: the connection closes at the end.
    Streaming { enc: BodyEncoder, close: bool },
    /// Complete (or handed to a WebSocket).
    Done,
}

/// What the clones of one exchange share.
#[derive(Debug)]
pub(crate) struct ExShared {
    pub(crate) resp: Mutex<RespState>,
    /// For the access log (when it is on): who asked what, and when.
    pub(crate) access: std::sync::OnceLock<Box<AccessInfo>>,
    /// The status of a streamed answer and the body bytes sent so far (for the access log).
    pub(crate) streamed: std::sync::atomic::AtomicU64,
    /// The channel made for this exchange, if any: closed when an ordinary response wins.
    pub(crate) channel: std::sync::OnceLock<std::sync::Weak<dyn Orphan>>,
}

/// A number unique among channels and sockets for the life of the process.
pub(crate) fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Something made for an exchange that must end when another answer wins it (a channel).
pub(crate) trait Orphan: Send + Sync {
    /// The exchange was answered otherwise: end quietly.
    fn end_exchange(self: Arc<Self>);
}

/// One request/response exchange on a connection: where and how to write the answer.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    pub(crate) conn: ConnHandle,
    pub(crate) seq: u64,
    pub(crate) method: Method,
    pub(crate) version: Version,
    pub(crate) keep_alive: bool,
    pub(crate) server: Arc<ServerShared>,
    pub(crate) state: Arc<ExShared>,
    /// For a WebSocket request: the handshake check (`Sec-WebSocket-Accept`, or why not).
    pub(crate) ws: Option<Result<AcceptKey, Refusal>>,
    /// For a WebSocket request: the permessage-deflate parameters agreed, if any.
    pub(crate) ws_deflate: Option<httpkit_codec::ws::DeflateParams>,
}

/// A `Sec-WebSocket-Accept` value: base64 of a SHA-1, always 28 characters, kept inline (no
/// allocation per handshake, nothing on the heap for the life of the connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AcceptKey([u8; 28]);

impl AcceptKey {
    pub(crate) fn new(s: &str) -> Option<Self> {
        s.as_bytes().try_into().ok().map(Self)
    }

    pub(crate) fn as_str(&self) -> &str {
        // Built from a `&str` of ASCII (base64) only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Why a WebSocket handshake is refused: an invalid handshake (the codec's check) or an origin
/// the server does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    status: u16,
    reason: &'static str,
}

impl Refusal {
    /// A handshake from a page on an origin that is not allowed (see `Options::allowed_origins`).
    pub(crate) const ORIGIN: Refusal = Refusal { status: 403, reason: "origin not allowed" };

    pub(crate) fn status(self) -> u16 {
        self.status
    }

    pub(crate) fn description(self) -> &'static str {
        self.reason
    }
}

impl From<HandshakeError> for Refusal {
    fn from(e: HandshakeError) -> Self {
        Self { status: e.status(), reason: e.description() }
    }
}

/// Which pages may open WebSockets: browsers send a page's cookies with a handshake from any
/// site, so an app that authenticates sockets by cookie must check `Origin`.
#[derive(Clone, Default)]
pub(crate) enum OriginPolicy {
    /// Any origin (the default, as http-kit).
    #[default]
    Any,
    /// These origins (`scheme://host[:port]`, compared without regard to case).
    List(Vec<String>),
    /// The user's check.
    Check(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl std::fmt::Debug for OriginPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Any => f.write_str("Any"),
            Self::List(l) => f.debug_tuple("List").field(l).finish(),
            Self::Check(_) => f.write_str("Check(..)"),
        }
    }
}

impl OriginPolicy {
    /// Whether a handshake with this `Origin` header may proceed. A handshake without one is not
    /// from a browser page (browsers always send it), so no page's cookies ride on it: allowed.
    pub(crate) fn allows(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        match self {
            Self::Any => true,
            Self::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin.trim())),
            Self::Check(f) => f(origin.trim()),
        }
    }
}

/// Who asked what, and when: what the access log says of an answer.
#[derive(Debug)]
pub(crate) struct AccessInfo {
    pub(crate) path: Box<str>,
    pub(crate) client: Option<std::net::SocketAddr>,
    pub(crate) received: std::time::Instant,
}

/// The target of the access log (`log` facade, level `info`).
pub(crate) const ACCESS_TARGET: &str = "httpkit::access";

impl AccessInfo {
    /// One line: client, method and path, status, body bytes, time from the request's arrival.
    fn log(&self, method: &Method, status: u16, bytes: u64) {
        let client = self.client.map_or_else(|| "-".to_owned(), |c| c.ip().to_string());
        log::info!(
            target: ACCESS_TARGET,
            "{client} \"{method} {}\" {status} {bytes} {:.3}ms",
            self.path,
            self.received.elapsed().as_secs_f64() * 1000.0
        );
    }
}

impl Exchange {
    fn ctx<'a>(&'a self, date: &'a [u8]) -> ResponseContext<'a> {
        ResponseContext {
            method: &self.method,
            version: self.version,
            keep_alive: self.keep_alive && self.server.is_running(),
            date,
            server: self.server.server_header.as_deref(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, RespState> {
        self.state.resp.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts (and logs, when the access log is on) a whole answer.
    fn answered(&self, status: StatusCode, bytes: u64) {
        self.count_status(status);
        if let Some(a) = self.state.access.get() {
            a.log(&self.method, status.as_u16(), bytes);
        }
    }

    pub(crate) fn count_status(&self, status: StatusCode) {
        self.server.count_status(status.as_u16());
    }

    /// Claims the exchange: whoever gets a state other than `Done` back owns the answer from
    /// here on (and must finish it); the exchange is `Done` for everyone else.
    pub(crate) fn claim(&self) -> RespState {
        std::mem::replace(&mut *self.lock(), RespState::Done)
    }

    /// Claims the exchange only if nothing was written yet (`true`: the caller answers it).
    pub(crate) fn claim_idle(&self) -> bool {
        let mut st = self.lock();
        if *st != RespState::Idle {
            return false;
        }
        *st = RespState::Done;
        true
    }

    /// Writes a complete in-memory response (the state must already say Done).
    pub(crate) fn write_simple(&self, status: StatusCode, headers: &HeaderMap, body: Bytes) -> bool {
        let len = body.len() as u64;
        // Encoded in a per-thread scratch buffer, then copied into one exactly sized allocation:
        // cheaper than a growable Vec turned into `Bytes` (which needs a second, shared header).
        thread_local!(static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) });
        let encoded = SCRATCH.with(|s| {
            let mut out = s.borrow_mut();
            out.clear();
            let framing = with_date(|d| {
                encode_head(status, headers, BodyLength::Known(body.len() as u64), &self.ctx(d), &mut out)
            })
            .ok()?;
            let with_body = framing.body.has_body();
            let inline = with_body && body.len() <= INLINE_BODY;
            if inline {
                out.extend_from_slice(&body);
            }
            // A body not copied after the head is sent as it is (never copied).
            let body = if with_body && !inline { body.clone() } else { Bytes::new() };
            // The usual case (the only request waiting on a keep-alive connection): written from
            // here, straight from this buffer, sparing the reactor the system call.
            let sent = if framing.keep_alive { self.conn.try_write_direct(self.seq, &out, &body) } else { None };
            let (head, body) = match sent {
                Some(n) if n == out.len() + body.len() => (Bytes::new(), Bytes::new()),
                Some(n) if n < out.len() => (Bytes::copy_from_slice(&out[n..]), body),
                Some(n) => (Bytes::new(), body.slice(n - out.len()..)),
                None => (Bytes::copy_from_slice(&out), body),
            };
            if out.capacity() > 64 * 1024 {
                *out = Vec::new();
            }
            Some((head, body, framing, sent.is_some()))
        });
        let Some((head, body, framing, direct)) = encoded else {
            return self.write_error(500, "Internal Server Error");
        };
        self.answered(status, len);
        if direct && head.is_empty() && body.is_empty() {
            return true;
        }
        self.conn.write(self.seq, head, body, Part::last(!framing.keep_alive))
    }

    /// A plain-text error response (the state must already say Done).
    pub(crate) fn write_error(&self, status: u16, msg: &'static str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self.answered(status, msg.len() as u64);
        let mut out = Vec::with_capacity(192);
        let keep_alive = self.keep_alive && self.server.is_running();
        let ctx = |d: &[u8], out: &mut Vec<u8>| {
            let c = ResponseContext { keep_alive, ..self.ctx(d) };
            encode_head(status, &h, BodyLength::Known(msg.len() as u64), &c, out)
        };
        match with_date(|d| ctx(d, &mut out)) {
            Ok(f) => {
                if f.body.has_body() {
                    out.extend_from_slice(msg.as_bytes());
                }
                self.conn.write(self.seq, Bytes::from(out), Bytes::new(), Part::last(!f.keep_alive))
            }
            Err(_) => false,
        }
    }

    /// Answers with an error if nothing was written yet.
    pub(crate) fn send_error(&self, status: u16, msg: &'static str) -> bool {
        if !self.claim_idle() {
            return false;
        }
        let ok = self.write_error(status, msg);
        self.close_orphan_channel();
        ok
    }

    /// Ends the exchange after a panic: a `500` if nothing was written yet; a response cut off
    /// in the middle (streaming, or `Done` while its body was being written when
    /// `done_is_partial`) ends the connection, so it never looks complete. A channel made for
    /// the exchange closes.
    pub(crate) fn fail(&self, done_is_partial: bool) {
        let was = self.claim();
        match was {
            RespState::Idle => {
                self.write_error(500, "Internal Server Error");
            }
            RespState::Streaming { .. } => self.conn.abort(),
            RespState::Done if done_is_partial => self.conn.abort(),
            RespState::Done => {}
        }
        self.close_orphan_channel();
    }

    /// A channel was made for this exchange but something else answered it: close it.
    pub(crate) fn close_orphan_channel(&self) {
        // A lock-free look: most exchanges never make a channel.
        if let Some(orphan) = self.state.channel.get().and_then(std::sync::Weak::upgrade) {
            orphan.end_exchange();
        }
    }

    /// Writes the head of a response whose body follows in pieces.
    pub(crate) fn start(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        len: BodyLength,
    ) -> Option<(BodyEncoder, bool)> {
        self.count_status(status);
        if self.state.access.get().is_some() {
            self.state.streamed.store(u64::from(status.as_u16()) << 48, Ordering::Relaxed);
        }
        let mut out = Vec::with_capacity(192);
        let framing = with_date(|d| encode_head(status, headers, len, &self.ctx(d), &mut out));
        let Ok(framing) = framing else {
            self.write_error(500, "Internal Server Error");
            return None;
        };
        if !self.conn.write(self.seq, Bytes::from(out), Bytes::new(), Part::More) {
            return None;
        }
        Some((framing.body, !framing.keep_alive))
    }

    /// Sends one piece of a body with its chunk framing.
    pub(crate) fn write_piece(&self, enc: BodyEncoder, data: Bytes) -> bool {
        if self.state.access.get().is_some() {
            self.state.streamed.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        if enc == BodyEncoder::Chunked {
            let mut v = Vec::with_capacity(data.len() + 12);
            enc.chunk_header(data.len(), &mut v);
            if data.len() <= INLINE_BODY {
                v.extend_from_slice(&data);
                enc.chunk_trailer(&mut v);
                return self.conn.write(self.seq, Bytes::from(v), Bytes::new(), Part::More);
            }
            if !self.conn.write(self.seq, Bytes::from(v), data, Part::More) {
                return false;
            }
            return self.conn.write(self.seq, Bytes::from_static(b"\r\n"), Bytes::new(), Part::More);
        }
        self.conn.write(self.seq, Bytes::new(), data, Part::More)
    }

    /// Ends a body written in pieces.
    pub(crate) fn finish(&self, enc: BodyEncoder, close: bool) -> bool {
        if let Some(a) = self.state.access.get() {
            let s = self.state.streamed.load(Ordering::Relaxed);
            a.log(&self.method, (s >> 48) as u16, s & ((1 << 48) - 1));
        }
        let mut tail = Vec::new();
        enc.finish(&mut tail);
        let close = close || enc == BodyEncoder::CloseDelimited;
        self.conn.write(self.seq, Bytes::from(tail), Bytes::new(), Part::last(close))
    }
}
