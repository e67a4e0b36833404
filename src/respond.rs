//! The bridge between the reactor and the handler: the dispatcher (reactor thread) turns each
//! request into a job for the pool; the job runs the handler and writes the response back.

use std::any::Any;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use httpkit_codec::h1::{encode_head, BodyEncoder, BodyLength, ResponseContext};
use httpkit_codec::ws::{check_handshake, HandshakeError};
use httpkit_reactor::{CloseReason, Dispatch, InboundRequest, WsEvent};

use crate::date::with_date;
use crate::logging::{events, Loggers};
use crate::pool::{Job, Task, WorkerPool};
use crate::response::BodyKind;
use crate::{Handler, Request, Response};

/// Bodies up to this size are copied after the head into one buffer (one write segment).
const INLINE_BODY: usize = 16 * 1024;
/// Piece size for files and readers.
const PIECE: usize = 64 * 1024;
/// How long a streaming worker waits for a slow client to drain before giving up.
const DRAIN_WAIT: Duration = Duration::from_secs(60);

pub(crate) const RUNNING: u8 = 0;
pub(crate) const STOPPING: u8 = 1;
pub(crate) const STOPPED: u8 = 2;

/// What every job of one server shares.
#[derive(Debug)]
pub(crate) struct ServerShared {
    pub(crate) status: AtomicU8,
    pub(crate) server_header: Option<Bytes>,
    pub(crate) loggers: Loggers,
    pub(crate) write_high_water: usize,
    pub(crate) max_ws: usize,
    pub(crate) pool: Arc<dyn WorkerPool>,
    pub(crate) trusted_proxies: Vec<std::net::IpAddr>,
    pub(crate) forwarded_header: crate::ForwardedHeader,
}

impl std::fmt::Debug for dyn WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkerPool")
    }
}

impl ServerShared {
    pub(crate) fn is_running(&self) -> bool {
        self.status.load(Ordering::Acquire) == RUNNING
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
    /// The channel made for this exchange, if any: closed when an ordinary response wins.
    pub(crate) channel: std::sync::OnceLock<std::sync::Weak<crate::channel::ChannelInner>>,
}

/// A number unique among channels and sockets for the life of the process.
pub(crate) fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
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
    pub(crate) ws: Option<Result<String, HandshakeError>>,
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

    /// Writes a complete in-memory response (the state must already say Done).
    pub(crate) fn write_simple(&self, status: StatusCode, headers: &HeaderMap, body: Bytes) -> bool {
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
        if direct && head.is_empty() && body.is_empty() {
            return true;
        }
        self.conn.write(self.seq, head, body, true, !framing.keep_alive)
    }

    /// A plain-text error response (the state must already say Done).
    pub(crate) fn write_error(&self, status: u16, msg: &'static str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
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
                self.conn.write(self.seq, Bytes::from(out), Bytes::new(), true, !f.keep_alive)
            }
            Err(_) => false,
        }
    }

    /// Answers with an error if nothing was written yet.
    pub(crate) fn send_error(&self, status: u16, msg: &'static str) -> bool {
        {
            let mut st = self.lock();
            if *st != RespState::Idle {
                return false;
            }
            *st = RespState::Done;
        }
        let ok = self.write_error(status, msg);
        self.close_orphan_channel();
        ok
    }

    /// Ends the exchange after a panic: a `500` if nothing was written yet; a response cut off
    /// in the middle (streaming, or `Done` while its body was being written when
    /// `done_is_partial`) ends the connection, so it never looks complete. A channel made for
    /// the exchange closes.
    fn fail(&self, done_is_partial: bool) {
        let was = std::mem::replace(&mut *self.lock(), RespState::Done);
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
    fn close_orphan_channel(&self) {
        // A lock-free look: most exchanges never make a channel.
        if let Some(inner) = self.state.channel.get().and_then(std::sync::Weak::upgrade) {
            crate::channel::Channel::from_inner(inner).end_exchange();
        }
    }

    /// Writes the handler's `resp`, whatever its body, unless the exchange was already answered
    /// (e.g. through a channel).
    pub(crate) fn send_response(&self, resp: Response) {
        if let BodyKind::Channel(ch) = &resp.body.kind {
            ch.start(&resp.headers);
            return;
        }
        if let BodyKind::WebSocket(up) = &resp.body.kind {
            crate::ring_ws::start(self, up, &resp.headers);
            return;
        }
        {
            let mut st = self.lock();
            if *st != RespState::Idle {
                drop(st);
                self.server.loggers.warn("a handler returned a response after its channel had answered; ignored");
                return;
            }
            *st = RespState::Done;
        }
        self.write_response(resp);
        self.close_orphan_channel();
    }

    /// Writes `resp` (the caller has claimed the exchange).
    pub(crate) fn write_response(&self, resp: Response) {
        if let Some(why) = &resp.invalid {
            self.server.loggers.error(&format!("invalid response to {} request: {why}", self.method));
            self.write_error(500, "Internal Server Error");
            return;
        }
        if resp.status.is_informational() {
            // A 1xx is never a final answer; the client would wait for one forever.
            self.server.loggers.error(&format!("a handler answered {} with status {}", self.method, resp.status));
            self.write_error(500, "Internal Server Error");
            return;
        }
        if self.server.loggers.has_event() {
            self.server.loggers.event(&format!("{}{}", events::STATUS_PROCESSED, resp.status.as_u16()));
        }
        let Response { status, headers, body, .. } = resp;
        match body.kind {
            BodyKind::Empty => {
                self.write_simple(status, &headers, Bytes::new());
            }
            BodyKind::Bytes(b) => {
                self.write_simple(status, &headers, b);
            }
            BodyKind::File(mut f, len) => {
                let Some((enc, close)) = self.start(status, &headers, BodyLength::Known(len)) else {
                    return;
                };
                let mut left = if enc.has_body() { len } else { 0 };
                while left > 0 {
                    // Pieces sized to what is left, read whole (a file that shrinks is an error).
                    let mut buf = vec![0u8; left.min(PIECE as u64) as usize];
                    if let Err(e) = f.read_exact(&mut buf) {
                        self.server.loggers.error(&format!("reading a file body failed: {e}"));
                        self.conn.abort();
                        return;
                    }
                    left -= buf.len() as u64;
                    if !self.wait_room() || !self.write_piece(enc, Bytes::from(buf)) {
                        return;
                    }
                }
                self.finish(enc, close);
            }
            BodyKind::Reader(mut r) => {
                let Some((enc, close)) = self.start(status, &headers, BodyLength::Streamed) else {
                    return;
                };
                if enc.has_body() && !self.pump(enc, |buf| r.read(buf)) {
                    return;
                }
                self.finish(enc, close);
            }
            BodyKind::Stream(iter) => {
                let Some((enc, close)) = self.start(status, &headers, BodyLength::Streamed) else {
                    return;
                };
                if enc.has_body() {
                    for item in iter {
                        match item {
                            Ok(b) if b.is_empty() => {}
                            Ok(b) => {
                                if !self.wait_room() || !self.write_piece(enc, b) {
                                    return;
                                }
                            }
                            Err(e) => {
                                self.server.loggers.error(&format!("response stream failed: {e}"));
                                self.conn.abort();
                                return;
                            }
                        }
                    }
                }
                self.finish(enc, close);
            }
            BodyKind::Channel(_) | BodyKind::WebSocket(_) => {
                // A channel handed over as the body of another response: not an HTTP body.
                self.write_error(500, "Internal Server Error");
            }
        }
    }

    /// Writes the head of a response whose body follows in pieces.
    pub(crate) fn start(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        len: BodyLength,
    ) -> Option<(BodyEncoder, bool)> {
        let mut out = Vec::with_capacity(192);
        let framing = with_date(|d| encode_head(status, headers, len, &self.ctx(d), &mut out));
        let Ok(framing) = framing else {
            self.write_error(500, "Internal Server Error");
            return None;
        };
        if !self.conn.write(self.seq, Bytes::from(out), Bytes::new(), false, false) {
            return None;
        }
        Some((framing.body, !framing.keep_alive))
    }

    /// Waits while the client is slow; `false` (and the connection aborted) if it never drains.
    fn wait_room(&self) -> bool {
        if httpkit_reactor::on_reactor_thread() {
            // The Inline pool: waiting here would stop the loop that drains the queue.
            return true;
        }
        if self.conn.wait_writable(self.server.write_high_water, DRAIN_WAIT) {
            return true;
        }
        self.conn.abort();
        false
    }

    /// Sends one piece of a body with its chunk framing.
    pub(crate) fn write_piece(&self, enc: BodyEncoder, data: Bytes) -> bool {
        if enc == BodyEncoder::Chunked {
            let mut v = Vec::with_capacity(data.len() + 12);
            enc.chunk_header(data.len(), &mut v);
            if data.len() <= INLINE_BODY {
                v.extend_from_slice(&data);
                enc.chunk_trailer(&mut v);
                return self.conn.write(self.seq, Bytes::from(v), Bytes::new(), false, false);
            }
            if !self.conn.write(self.seq, Bytes::from(v), data, false, false) {
                return false;
            }
            return self.conn.write(self.seq, Bytes::from_static(b"\r\n"), Bytes::new(), false, false);
        }
        self.conn.write(self.seq, Bytes::new(), data, false, false)
    }

    fn pump(&self, enc: BodyEncoder, mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize>) -> bool {
        loop {
            let mut buf = vec![0u8; PIECE];
            match read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => {
                    buf.truncate(n);
                    if !self.wait_room() || !self.write_piece(enc, Bytes::from(buf)) {
                        return false;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.server.loggers.error(&format!("reading response body failed: {e}"));
                    self.conn.abort();
                    return false;
                }
            }
        }
    }

    /// Ends a body written in pieces.
    pub(crate) fn finish(&self, enc: BodyEncoder, close: bool) -> bool {
        let mut tail = Vec::new();
        enc.finish(&mut tail);
        let close = close || enc == BodyEncoder::CloseDelimited;
        self.conn.write(self.seq, Bytes::from(tail), Bytes::new(), true, close)
    }
}

/// Runs the handler for one request and writes its response.
struct RequestTask<H> {
    handler: Arc<H>,
    req: Request,
}

impl<H: Handler> Task for RequestTask<H> {
    fn run(self: Box<Self>) {
        let RequestTask { handler, req } = *self;
        let Some(ex) = req.exchange.clone() else {
            return;
        };
        // The target, for a panic message, kept without an allocation (first 96 bytes).
        let mut what = [0u8; 96];
        let uri = req.uri().as_bytes();
        let what_len = uri.len().min(what.len());
        what[..what_len].copy_from_slice(&uri[..what_len]);
        let target = &what[..what_len];
        match catch_unwind(AssertUnwindSafe(move || handler.call(req))) {
            Ok(resp) => {
                // Body streams and readers are user code too.
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| ex.send_response(resp))) {
                    ex.server.loggers.error(&format!(
                        "response body panicked on {} {}: {}",
                        ex.method,
                        String::from_utf8_lossy(target),
                        panic_message(&*panic)
                    ));
                    ex.fail(true);
                }
            }
            Err(panic) => {
                let msg = panic_message(&*panic);
                ex.server.loggers.error(&format!(
                    "handler panicked on {} {}: {msg}",
                    ex.method,
                    String::from_utf8_lossy(target)
                ));
                ex.server.loggers.event(events::STATUS_500);
                ex.fail(false);
            }
        }
    }

    fn reject(self: Box<Self>) {
        if let Some(ex) = &self.req.exchange {
            ex.server.loggers.warn("worker pool rejected a request: 503");
            ex.server.loggers.event(events::STATUS_503);
            ex.send_error(503, "Server unavailable, please try again");
        }
    }
}

pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// Whoever wants a connection's WebSocket events and its close: channels and sockets.
pub(crate) trait ConnListener: Send + Sync {
    fn is_websocket(&self) -> bool;
    fn on_ws_event(&self, ev: WsEvent);
    fn on_peer_eof(&self);
    fn on_closed(&self, reason: CloseReason);
    fn on_frame_written(&self, _token: u64) {}
    /// The write buffer drained after callbacks stopped for it (see `Dispatch::on_drained`).
    fn on_drained(&self) {}
    /// A graceful stop's time is up: end the answer properly now (see `Dispatch::on_stop_deadline`).
    fn on_stop_deadline(&self) {}
}

/// What the server keeps for each connection (the reactor's `Dispatch::Attachment`): every
/// listener of the connection's exchanges (several HTTP channels can wait on one pipelined
/// connection), and its WebSocket listener reached without a lock for every message.
#[derive(Default)]
pub(crate) struct Attachment {
    /// The WebSocket listener, once there is one (weak: the strong reference is in `listeners`,
    /// which the close empties, so a listener holding the connection is no cycle).
    ws: std::sync::OnceLock<std::sync::Weak<dyn ConnListener>>,
    listeners: Mutex<Listeners>,
}

#[derive(Default)]
struct Listeners {
    by_id: Vec<(u64, Arc<dyn ConnListener>)>,
    /// `on_close` has run: nothing is attached any more.
    closed: bool,
}

impl Attachment {
    fn lock(&self) -> MutexGuard<'_, Listeners> {
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every listener now (rare events: a peer's EOF, a stop's deadline).
    fn all(&self) -> Vec<Arc<dyn ConnListener>> {
        self.lock().by_id.iter().map(|(_, l)| l.clone()).collect()
    }

    fn ws(&self) -> Option<Arc<dyn ConnListener>> {
        self.ws.get()?.upgrade()
    }
}

/// The reactor's handle to a connection, with the server's attachment.
pub(crate) type ConnHandle = httpkit_reactor::ConnHandle<Attachment>;

/// Adds a listener; `false` when the connection is already closed (nothing will be reported).
pub(crate) fn attach(conn: &ConnHandle, id: u64, l: Arc<dyn ConnListener>) -> bool {
    let a = conn.attachment();
    let mut g = a.lock();
    if g.closed {
        return false;
    }
    if l.is_websocket() {
        let _ = a.ws.set(Arc::downgrade(&l));
    }
    g.by_id.push((id, l));
    true
}

/// Removes the listener `id`, if it is still there.
pub(crate) fn detach(conn: &ConnHandle, id: u64) {
    conn.attachment().lock().by_id.retain(|(i, _)| *i != id);
}

/// The reactor's view of the server.
pub(crate) struct Dispatcher<H> {
    pub(crate) handler: Arc<H>,
    pub(crate) pool: Arc<dyn WorkerPool>,
    pub(crate) server: Arc<ServerShared>,
}

impl<H: Handler> Dispatch for Dispatcher<H> {
    type Attachment = Attachment;

    fn on_request(&mut self, conn: &ConnHandle, req: InboundRequest) {
        let InboundRequest { seq, head, body, trailers, received } = req;
        let ws = head.is_websocket().then(|| check_handshake(&head).map(|h| h.accept));
        let ex = Exchange {
            ws,
            conn: conn.clone(),
            seq,
            method: head.method.clone(),
            version: head.version,
            keep_alive: head.keep_alive && !head.upgrade,
            server: self.server.clone(),
            state: Arc::new(ExShared { resp: Mutex::new(RespState::Idle), channel: std::sync::OnceLock::new() }),
        };
        let request = Request::new(head, body, trailers, conn, received, ex);
        let job = Job::new(Box::new(RequestTask { handler: self.handler.clone(), req: request }));
        // A user pool runs here, on the reactor thread: its panic must not take the loop down.
        match catch_unwind(AssertUnwindSafe(|| self.pool.execute(job))) {
            Ok(Ok(())) => {}
            Ok(Err(job)) => job.reject(),
            Err(p) => {
                self.server.loggers.error(&format!("worker pool panicked in execute: {}", panic_message(&*p)));
                conn.abort();
            }
        }
    }

    fn on_bad_request(&mut self, _conn: &ConnHandle, status: u16, reason: &str) {
        let loggers = &self.server.loggers;
        if loggers.has_event() {
            loggers.event(&format!("{}{status}", events::STATUS_PREFIX));
        }
        log::debug!("bad request answered {status}: {reason}");
    }

    fn on_accept_error(&mut self, error: &std::io::Error) {
        self.server.loggers.error(&format!("accept failed: {error}; retrying in 100 ms"));
        self.server.loggers.event(events::ACCEPT_ERROR);
    }

    fn on_ws_event(&mut self, conn: &ConnHandle, event: WsEvent) {
        if let Some(l) = conn.attachment().ws() {
            l.on_ws_event(event);
        }
    }

    fn on_frame_written(&mut self, conn: &ConnHandle, token: u64) {
        if let Some(l) = conn.attachment().ws() {
            l.on_frame_written(token);
        }
    }

    fn on_drained(&mut self, conn: &ConnHandle) {
        if let Some(l) = conn.attachment().ws() {
            l.on_drained();
        }
    }

    fn on_stop_deadline(&mut self, conn: &ConnHandle) {
        {
            for l in conn.attachment().all() {
                l.on_stop_deadline();
            }
        }
    }

    fn on_peer_eof(&mut self, conn: &ConnHandle) {
        {
            for l in conn.attachment().all() {
                l.on_peer_eof();
            }
        }
    }

    fn on_close(&mut self, conn: &ConnHandle, reason: CloseReason) {
        if reason == CloseReason::Evicted {
            self.server.loggers.event(events::CONN_EVICTED);
        }
        if let CloseReason::WebSocket(w) = &reason {
            if !w.by_peer && matches!(w.code, 1002 | 1007 | 1009) {
                self.server.loggers.warn(&format!("websocket closed {}: {}", w.code, w.reason));
                self.server.loggers.event(events::WS_DECODE_ERROR);
            }
        }
        let listeners = {
            let mut g = conn.attachment().lock();
            g.closed = true;
            std::mem::take(&mut g.by_id)
        };
        for (_, l) in &listeners {
            l.on_closed(reason.clone());
        }
    }
}
