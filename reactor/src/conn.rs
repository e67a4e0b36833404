//! One connection's state machine.
//!
//! A `Conn` is driven by four inputs — [`Conn::on_ready`] (socket readiness),
//! [`Conn::on_write`] / [`Conn::on_close_cmd`] (commands from other threads) and
//! [`Conn::on_timeout`] — and after each the loop checks [`Conn::is_closing`] and calls
//! [`Conn::update_timer`].
//!
//! ```text
//! Idle ──bytes──▶ ReadingHead ──head──▶ ReadingBody ──end──▶ Waiting ──response written──▶ Idle
//!   any state ──error / close response / timeout──▶ Lingering (write shut, discard input) ──▶ closed
//! ```

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use httpkit_codec::h1::{
    encode_head, BodyKind, BodyLength, RequestDecoder, RequestEvent, RequestHead, ResponseContext,
};
use httpkit_codec::ws::{encode_close, encode_frame, FrameDecoder, OpCode, WsEvent};

use crate::stream::Stream;
use crate::write_queue::WriteQueue;
use crate::Direct;
use crate::{CloseReason, ConnHandle, Dispatch, InboundRequest, ProxyProtocol, ReactorConfig, WsClose};

/// Reads per readiness event before yielding to other connections.
const READ_BUDGET: usize = 16;
/// How long a connection we are closing may keep sending before we give up on it.
const LINGER: Duration = Duration::from_secs(2);
/// Queued output above which a connection stops being read while the server is over its
/// buffer budget (the connections holding the most stop first).
const BUDGET_SHARE: usize = 64 * 1024;
/// How long we wait for the peer's close frame after sending ours.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(5);

pub(crate) struct Ctx<'a, D> {
    pub(crate) cfg: &'a ReactorConfig,
    pub(crate) dispatch: &'a mut D,
    pub(crate) now: Instant,
    pub(crate) date: &'a [u8],
    /// The server-wide count of buffered bytes, against [`ReactorConfig::buffer_budget`].
    pub(crate) buffered: &'a AtomicUsize,
}

impl<D> Ctx<'_, D> {
    /// Whether `more` bytes would take the server's buffered bytes past its budget.
    fn over_budget(&self, more: usize) -> bool {
        self.buffered.load(Ordering::Relaxed).saturating_add(more) > self.cfg.buffer_budget
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    None,
    HeaderRead,
    BodyRead,
    Idle,
    Write,
    Linger,
    CloseHandshake,
}

/// What the peer's side of the stream has done. "The FIN was seen" (the poller said so) and
/// "everything was read" are two states: bytes may remain unread in front of a FIN, and a close
/// before they are read would be a reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// The peer may send more.
    Open,
    /// The peer closed its side; what it sent before may not all be read yet.
    FinSeen,
    /// Read to the end (a read returned 0).
    Ended,
}

/// What is done with the bytes the peer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// A PROXY protocol header may come first.
    Proxy,
    /// Requests (or WebSocket frames) are decoded.
    Requests,
    /// Nothing more is decoded (after an error, a response that closes, an upgrade request
    /// until its 101): what arrives stays buffered, or is discarded while lingering.
    Stopped,
}

/// Where the connection stands on its way to being closed. Each state is later than the one
/// before it; answers that are due block every step but an abort (`Now`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Close {
    /// Not closing.
    Open,
    /// Close once every request in flight is answered (then `AfterFlush`).
    AfterAnswers(Ending),
    /// Close once the write queue is empty: then `Lingering`, or `Now` when the input is read
    /// to its end.
    AfterFlush(Ending),
    /// The write side is shut; the input is read and dropped until the peer's EOF (or the
    /// linger timeout), so unread input does not turn the last answer into a reset.
    Lingering(Ending),
    /// Closed: the loop reaps the connection with this reason.
    Now(CloseReason),
}

/// Who writes to the socket (see [`ConnHandle::try_write_direct`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    /// Only the reactor.
    Kept,
    /// The write side is lent to a worker, or what it did with it is not folded in yet.
    Lent,
}

/// Whether a WebSocket's frames are delivered to the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Flowing,
    /// The application's queue for the connection is full: it is not read until resumed.
    Paused,
}

/// How a connection that closes once its output is written ends, as the dispatcher hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The server chose to close (a response that closes, an error, a stop).
    Local,
    /// The peer left; what was due to it is written first.
    PeerClosed,
}

impl Ending {
    fn reason(self) -> CloseReason {
        match self {
            Ending::Local => CloseReason::Local,
            Ending::PeerClosed => CloseReason::PeerClosed,
        }
    }
}

#[derive(Debug)]
struct Pending {
    head: RequestHead,
    body: Vec<u8>,
}

#[derive(Debug)]
struct Slot {
    seq: u64,
    parts: Vec<Bytes>,
    done: bool,
    close: bool,
    /// Switch to WebSocket once this response is queued: (max message, auto pong).
    upgrade: Option<(usize, bool)>,
    /// The request's method is safe (GET, HEAD, OPTIONS, TRACE): it may run beside other safe
    /// requests of the pipeline.
    safe: bool,
}

#[derive(Debug)]
struct WsState {
    dec: FrameDecoder,
    auto_pong: bool,
    close_sent: bool,
    info: Option<WsClose>,
    flow: Flow,
    /// Where the last queued pong starts in the write queue: while none of it is written, a
    /// newer pong replaces it (at most one pong waits).
    pong_at: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) stream: Arc<Stream>,
    pub(crate) handle: ConnHandle,
    grant: Grant,
    decoder: RequestDecoder,
    rbuf: Vec<u8>,
    cur: Option<Box<Pending>>,
    /// A complete pipelined request that waits for the requests before it to be answered (it or
    /// one of them is not safe); nothing more is decoded meanwhile.
    held: Option<Box<InboundRequest>>,
    next_seq: u64,
    slots: VecDeque<Slot>,
    wq: WriteQueue,
    /// Readiness as the poller last said (edge-triggered: kept until a read or write would block).
    readable: bool,
    writable: bool,
    input: Input,
    reading: Reading,
    /// Frames sent before the 101 left (it waited behind pipelined responses): their write
    /// acknowledgements and a close among them, applied when the WebSocket starts. Boxed:
    /// rare, and idle connections should stay small.
    early: Option<Box<(Vec<u64>, Option<WsClose>)>>,
    close: Close,
    ws: Option<Box<WsState>>,
    /// The server is stopping: no request after the ones arriving now, every close is reported
    /// as the stop.
    stopping: bool,
    timer: Timer,
    deadline: Option<Instant>,
    /// What this connection last added to the server-wide count of buffered bytes.
    charged: usize,
    /// Bytes that moved in the current window of a rate timer (body read or write).
    window_bytes: u64,
    /// Links in the loop's list of evictable connections (slot indices), while in it.
    pub(crate) lru: Option<(u32, u32)>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Even when the loop ends abnormally, a grant must not keep the socket open.
        self.release_direct();
    }
}

impl Conn {
    pub(crate) fn new(stream: Stream, handle: ConnHandle, cfg: &ReactorConfig, now: Instant) -> Self {
        Self {
            stream: Arc::new(stream),
            handle,
            grant: Grant::Kept,
            decoder: RequestDecoder::new(cfg.limits),
            reading: if cfg.proxy_protocol == ProxyProtocol::Off { Reading::Requests } else { Reading::Proxy },
            early: None,
            rbuf: Vec::new(),
            cur: None,
            held: None,
            next_seq: 0,
            slots: VecDeque::new(),
            wq: WriteQueue::default(),
            readable: false,
            writable: true,
            input: Input::Open,
            close: Close::Open,
            ws: None,
            stopping: false,
            timer: Timer::HeaderRead,
            deadline: now.checked_add(cfg.header_read_timeout),
            window_bytes: 0,
            charged: 0,
            lru: None,
        }
    }

    /// Bytes this connection holds: read buffer, the body being received, a held request,
    /// responses queued or waiting for their turn.
    fn buffered_bytes(&self) -> usize {
        self.wq.len()
            + self.rbuf.len()
            + self.ws.as_ref().map_or(0, |w| w.dec.buffered())
            + self.cur.as_ref().map_or(0, |p| p.body.len())
            + self.held.as_ref().map_or(0, |r| r.body.len())
            + self.slots.iter().flat_map(|s| s.parts.iter()).map(Bytes::len).sum::<usize>()
    }

    /// Brings the server-wide count of buffered bytes up to date with this connection (after
    /// each visit of the loop; with `gone`, the connection is being removed).
    pub(crate) fn sync_budget(&mut self, total: &AtomicUsize, gone: bool) {
        let now = if gone { 0 } else { self.buffered_bytes() };
        if now > self.charged {
            total.fetch_add(now - self.charged, Ordering::Relaxed);
        } else if now < self.charged {
            total.fetch_sub(self.charged - now, Ordering::Relaxed);
        }
        self.charged = now;
    }

    /// Whether reading should wait: the write queue is above the high-water mark, or the
    /// server is over its buffer budget and this connection holds a share of it (queued output,
    /// a WebSocket message being assembled).
    fn output_backs_up<D>(&self, ctx: &Ctx<'_, D>) -> bool {
        self.wq.len() >= ctx.cfg.write_high_water || (self.held_share() >= BUDGET_SHARE && ctx.over_budget(0))
    }

    /// The bytes that pausing this connection's reading stops from growing.
    fn held_share(&self) -> usize {
        self.wq.len() + self.ws.as_ref().map_or(0, |w| w.dec.buffered())
    }

    /// Refuses the request whose head just arrived (or whose body is arriving) because the
    /// server's buffer budget cannot hold its body: `503` (`Retry-After: 1`), or `413` for a body
    /// larger than the whole budget; then a lingering close (the rest of the body is read and
    /// dropped, never parsed as a request).
    fn refuse_body<D: Dispatch>(&mut self, status: StatusCode, msg: &'static str, ctx: &mut Ctx<'_, D>) {
        ctx.dispatch.on_bad_request(&self.handle, status.as_u16(), msg);
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        let bytes = simple_response(status, &headers, msg.as_bytes(), ctx);
        self.cur = None;
        self.push_local(bytes, true);
        self.reading = Reading::Stopped;
        self.rbuf = Vec::new();
    }

    /// Whether the connection may be closed to admit a new one at the connection limit: it has
    /// nothing in progress — between requests on keep-alive, or not a byte received yet — and
    /// is not a WebSocket. (Valid after [`Conn::update_timer`].)
    pub(crate) fn is_evictable(&self) -> bool {
        matches!(self.timer, Timer::Idle | Timer::HeaderRead)
            && self.close == Close::Open
            && self.ws.is_none()
            && !self.stopping
            && self.slots.is_empty()
            && self.wq.is_empty()
            && self.cur.is_none()
            && self.held.is_none()
            && self.rbuf.is_empty()
            && self.decoder.is_idle()
            && self.grant == Grant::Kept
    }

    /// Why the connection is being closed, as the dispatcher should hear it.
    pub(crate) fn is_closing(&self) -> Option<CloseReason> {
        let Close::Now(reason) = &self.close else {
            return None;
        };
        let reason = reason.clone();
        if self.stopping || reason == CloseReason::ServerStop {
            return Some(CloseReason::ServerStop);
        }
        match self.ws.as_ref().and_then(|w| w.info.clone()) {
            Some(info) => Some(CloseReason::WebSocket(info)),
            None => Some(reason),
        }
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the loop should call [`Conn::on_ready`] again without a new event.
    pub(crate) fn wants_revisit(&self, cfg: &ReactorConfig, buffered: &AtomicUsize) -> bool {
        if self.closing() || !self.readable {
            return false;
        }
        if self.lingering() {
            return true;
        }
        // A paused connection is driven again by the command or writable event that unpauses
        // it; revisiting it now would spin.
        let over_budget = buffered.load(Ordering::Relaxed) > cfg.buffer_budget;
        let backs_up = self.wq.len() >= cfg.write_high_water || (self.held_share() >= BUDGET_SHARE && over_budget);
        self.can_read_more() && self.can_decode(cfg) && !backs_up
    }

    fn close(&mut self, reason: CloseReason) {
        if !self.closing() {
            self.close = Close::Now(reason);
        }
    }

    /// Whether the connection is closed (the loop reaps it).
    fn closing(&self) -> bool {
        matches!(self.close, Close::Now(_))
    }

    fn lingering(&self) -> bool {
        matches!(self.close, Close::Lingering(_))
    }

    /// How the connection ends, once it does.
    fn ending(&self) -> Ending {
        match self.close {
            Close::AfterAnswers(e) | Close::AfterFlush(e) | Close::Lingering(e) => e,
            _ => Ending::Local,
        }
    }

    /// Nothing more is read as requests; the connection closes once its queue is written.
    fn finish_after_flush(&mut self, ending: Ending) {
        self.reading = Reading::Stopped;
        if matches!(self.close, Close::Open | Close::AfterAnswers(_)) {
            self.close = Close::AfterFlush(ending);
        }
    }

    /// Nothing more is read as requests; the connection closes once the requests in flight are
    /// answered (and their answers written).
    fn finish_after_answers(&mut self) {
        self.reading = Reading::Stopped;
        if self.close == Close::Open {
            self.close = Close::AfterAnswers(Ending::Local);
        }
    }

    fn ws_paused(&self) -> bool {
        self.ws.as_ref().is_some_and(|w| w.flow == Flow::Paused)
    }

    fn can_decode(&self, cfg: &ReactorConfig) -> bool {
        self.reading != Reading::Stopped
            && !self.ws_paused()
            && self.held.is_none()
            && !self.closing()
            && (self.ws.is_some() || self.slots.len() < cfg.max_pipelined)
    }

    /// The application asks to stop (or resume) reading: its queue of work for this connection
    /// is full. Bytes already read stay buffered; TCP pushes back on the peer.
    pub(crate) fn set_app_paused(&mut self, paused: bool) {
        if let Some(ws) = &mut self.ws {
            ws.flow = if paused { Flow::Paused } else { Flow::Flowing };
        }
    }

    fn can_read_more(&self) -> bool {
        self.input != Input::Ended && self.reading != Reading::Stopped
    }

    pub(crate) fn on_ready<D: Dispatch>(
        &mut self,
        readable: bool,
        writable: bool,
        read_closed: bool,
        error: bool,
        ctx: &mut Ctx<'_, D>,
        scratch: &mut [u8],
    ) {
        if error && !self.lingering() {
            self.close(CloseReason::Error);
            return;
        }
        if read_closed && self.input == Input::Open {
            self.input = Input::FinSeen;
        }
        if writable {
            self.writable = true;
            self.flush(ctx);
        }
        if readable {
            self.readable = true;
        }
        self.drive(ctx, scratch);
    }

    /// Decodes what is buffered, reads while allowed, and writes what is queued.
    pub(crate) fn drive<D: Dispatch>(&mut self, ctx: &mut Ctx<'_, D>, scratch: &mut [u8]) {
        self.settle_direct(false);
        if self.lingering() {
            self.linger_read(scratch);
            return;
        }
        self.release_held(ctx);
        self.decode_buffered(ctx);
        let mut budget = READ_BUDGET;
        while !self.closing() && self.readable && budget > 0 {
            let paused = !self.can_decode(ctx.cfg) || self.output_backs_up(ctx);
            if paused || !self.can_read_more() {
                break;
            }
            budget -= 1;
            match (&*self.stream).read(scratch) {
                Ok(0) => {
                    self.on_eof(ctx);
                    break;
                }
                Ok(n) => {
                    // A short read drained the socket: the next arrival raises a new edge, so
                    // skip the read that would only say WouldBlock (tokio does the same).
                    if n < scratch.len() && self.input == Input::Open {
                        self.readable = false;
                    }
                    self.input(&scratch[..n], ctx);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.close(CloseReason::Error),
            }
        }
        if self.input == Input::FinSeen
            && self.ws.is_none()
            && !self.closing()
            && !self.lingering()
            && (self.reading == Reading::Stopped || (!self.slots.is_empty() && !self.can_decode(ctx.cfg)))
        {
            self.on_fin_unread(ctx);
        }
        self.flush(ctx);
    }

    /// The peer sent its FIN, but we do not read up to it: we no longer read its requests (a
    /// long-poll after `Connection: close`, a pending upgrade), or reading waits behind pending
    /// answers (a held request, a full pipeline). "FIN seen" is not "everything read": bytes may
    /// remain unread in front of the FIN, so the input is not marked ended, and the close that
    /// follows the answers due is a lingering one. The application hears that the peer is gone
    /// (a long-poll in front of the answers ends).
    fn on_fin_unread<D: Dispatch>(&mut self, ctx: &mut Ctx<'_, D>) {
        if self.reading == Reading::Stopped && matches!(self.close, Close::Open | Close::AfterAnswers(_)) {
            // Nothing more will be decoded as HTTP: answer what was asked, then close (what is
            // buffered stays: frames that followed an upgrade request are still read).
            let reason = if self.slots.is_empty() && self.wq.is_empty() { Ending::PeerClosed } else { Ending::Local };
            self.close_after_flush_when_done(reason);
        }
        // Once per connection (the EOF read later is not told again).
        if !self.handle.shared.peer_eof.swap(true, Ordering::SeqCst) {
            ctx.dispatch.on_peer_eof(&self.handle);
        }
    }

    fn on_eof<D: Dispatch>(&mut self, ctx: &mut Ctx<'_, D>) {
        self.settle_direct(true);
        self.input = Input::Ended;
        self.readable = false;
        if self.ws.is_some() {
            // A TCP close without (or after) the close handshake: what is queued still goes out.
            if self.wq.is_empty() {
                self.close(CloseReason::PeerClosed);
            } else {
                self.finish_after_flush(Ending::PeerClosed);
            }
            return;
        }
        if self.slots.is_empty() && self.wq.is_empty() {
            self.close(CloseReason::PeerClosed);
        } else {
            // Answer what was asked, then close; tell the dispatcher (long-polls end here).
            self.cur = None;
            self.rbuf = Vec::new();
            self.close_after_flush_when_done(Ending::Local);
            // Once per connection (it may have been said already, see `drive`).
            if !self.handle.shared.peer_eof.swap(true, Ordering::SeqCst) {
                ctx.dispatch.on_peer_eof(&self.handle);
            }
        }
    }

    fn close_after_flush_when_done(&mut self, reason: Ending) {
        if self.slots.is_empty() {
            self.finish_after_flush(reason);
        } else {
            self.finish_after_answers();
        }
    }

    /// New bytes from the socket.
    fn input<D: Dispatch>(&mut self, data: &[u8], ctx: &mut Ctx<'_, D>) {
        if self.rbuf.is_empty() {
            let used = self.decode_from(data, ctx);
            if used < data.len() && !self.closing() {
                self.rbuf.extend_from_slice(&data[used..]);
            }
        } else {
            self.rbuf.extend_from_slice(data);
            self.decode_buffered(ctx);
        }
    }

    fn decode_buffered<D: Dispatch>(&mut self, ctx: &mut Ctx<'_, D>) {
        let buf = std::mem::take(&mut self.rbuf);
        let used = self.decode_from(&buf, ctx);
        if used < buf.len() && !self.closing() {
            let mut buf = buf;
            buf.drain(..used);
            self.rbuf = buf;
        }
    }

    fn decode_from<D: Dispatch>(&mut self, input: &[u8], ctx: &mut Ctx<'_, D>) -> usize {
        if self.ws.is_some() {
            return self.decode_frames(input, ctx);
        }
        let mut off = 0;
        if self.reading == Reading::Proxy {
            match self.decode_proxy(input, ctx.cfg) {
                Some(n) => off = n,
                None => return 0,
            }
        }
        while self.can_decode(ctx.cfg) {
            match self.decoder.decode(&input[off..]) {
                Ok((0, None)) => break,
                Ok((n, ev)) => {
                    off += n;
                    match ev {
                        Some(RequestEvent::Head(head)) if head.body == BodyKind::Empty => {
                            // No body: its end follows at once (consumed here), so the request
                            // is complete without parking the head in a box.
                            self.settle_direct(true);
                            let _ = self.decoder.decode(&[]);
                            self.complete(head, Vec::new(), ctx);
                        }
                        Some(RequestEvent::Head(head)) => self.on_head(head, ctx),
                        Some(RequestEvent::Body(b)) => {
                            if ctx.over_budget(b.len()) {
                                // Other bodies filled the budget meanwhile: refuse rather than grow.
                                let busy = "server busy: too many bytes buffered";
                                self.refuse_body(StatusCode::SERVICE_UNAVAILABLE, busy, ctx);
                                break;
                            }
                            if let Some(p) = &mut self.cur {
                                p.body.extend_from_slice(b);
                            }
                            if self.timer == Timer::BodyRead {
                                self.window_bytes += b.len() as u64;
                            }
                        }
                        Some(RequestEvent::End) => self.on_end(ctx),
                        None => {}
                    }
                }
                Err(e) => {
                    self.settle_direct(true);
                    let mut headers = HeaderMap::new();
                    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
                    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
                    let msg = e.description();
                    ctx.dispatch.on_bad_request(&self.handle, status.as_u16(), msg);
                    let bytes = simple_response(status, &headers, msg.as_bytes(), ctx);
                    self.cur = None;
                    self.push_local(bytes, true);
                    self.reading = Reading::Stopped;
                    self.read_eof_or_bad_request();
                    break;
                }
            }
        }
        off
    }

    fn read_eof_or_bad_request(&mut self) {
        self.rbuf = Vec::new();
    }

    fn on_head<D: Dispatch>(&mut self, head: RequestHead, ctx: &mut Ctx<'_, D>) {
        // A new request: from here on the reactor alone orders the answers.
        self.settle_direct(true);
        // Refused before any `100 Continue`: a client that waits for it never sends the body.
        let declared = match head.body {
            BodyKind::Length(n) => usize::try_from(n).unwrap_or(usize::MAX),
            _ => 0,
        };
        if declared > ctx.cfg.buffer_budget {
            return self.refuse_body(StatusCode::PAYLOAD_TOO_LARGE, "request body larger than the server buffers", ctx);
        }
        if head.body != BodyKind::Empty && ctx.over_budget(declared) {
            return self.refuse_body(StatusCode::SERVICE_UNAVAILABLE, "server busy: too many bytes buffered", ctx);
        }
        if head.expect_continue {
            let interim = Bytes::from_static(b"HTTP/1.1 100 Continue\r\n\r\n");
            if self.slots.is_empty() {
                self.queue_local(interim);
            } else {
                // After the answers to the requests before this one, never inside them.
                self.push_local(interim, false);
            }
        }
        // The body timer (a rate window) starts in `update_timer`, unless output is waiting:
        // then the write window goes on.
        let body = match head.body {
            BodyKind::Length(n) => Vec::with_capacity(n.min(1 << 20) as usize),
            _ => Vec::new(),
        };
        self.cur = Some(Box::new(Pending { head, body }));
    }

    fn on_end<D: Dispatch>(&mut self, ctx: &mut Ctx<'_, D>) {
        if let Some(Pending { head, body }) = self.cur.take().map(|b| *b) {
            self.complete(head, body, ctx);
        }
    }

    /// A whole request: give it a slot and dispatch it (or hold it, see below).
    fn complete<D: Dispatch>(&mut self, head: RequestHead, body: Vec<u8>, ctx: &mut Ctx<'_, D>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        // Pipelined requests run in parallel only while all of them are safe (RFC 9112 §9.3.2):
        // a POST waits for the answers before it, and requests after a POST wait for its answer,
        // so no side effect happens out of order or after a response that closes.
        let safe = matches!(head.method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE);
        let may_run = self.slots.iter().all(|s| s.done || (safe && s.safe));
        self.slots.push_back(Slot { seq, parts: Vec::new(), done: false, close: false, upgrade: None, safe });
        if head.upgrade || !head.keep_alive || self.stopping {
            // After an upgrade request or a request that closes, nothing more is read as HTTP;
            // unless the upgrade happens, the connection closes after the response.
            self.finish_after_answers();
        }
        let trailers = self.decoder.take_trailers();
        // Lent only when nothing waits on this answer but the client: decoding goes on (the
        // pipeline has room), nothing is queued, the connection stays open after it.
        let lend = may_run
            && self.slots.len() == 1
            && self.slots.len() < ctx.cfg.max_pipelined
            && self.wq.is_empty()
            && head.keep_alive
            && !head.upgrade
            && self.reading != Reading::Stopped
            && self.close == Close::Open
            && self.input != Input::Ended
            && self.ws.is_none();
        let req = InboundRequest { seq, head, body, trailers, received: ctx.now };
        if may_run {
            if lend {
                self.lend_direct(seq);
            }
            ctx.dispatch.on_request(&self.handle, req);
        } else {
            self.held = Some(Box::new(req));
        }
    }

    /// Lends the write side to the worker answering `seq`, the only request waiting, with
    /// nothing queued (see [`ConnHandle::try_write_direct`]).
    fn lend_direct(&mut self, seq: u64) {
        *self.handle.shared.direct.lock().unwrap_or_else(|e| e.into_inner()) =
            Direct::Granted(seq, self.stream.clone());
        self.grant = Grant::Lent;
    }

    /// Folds in what a worker did with the lent write side: an answer it wrote whole completes
    /// its request (then `true`). With `take_back`, the right is withdrawn too (waiting out a
    /// write in progress: one non-blocking system call of at most 64 KiB), so that the reactor
    /// alone writes from here on.
    fn settle_direct(&mut self, take_back: bool) -> bool {
        if self.grant == Grant::Kept {
            return false;
        }
        let state = loop {
            let mut d = self.handle.shared.direct.lock().unwrap_or_else(|e| e.into_inner());
            match &*d {
                Direct::Active if take_back => {
                    drop(d);
                    std::thread::yield_now();
                }
                Direct::Active | Direct::Granted(..) if !take_back => return false,
                _ => break std::mem::take(&mut *d),
            }
        };
        self.grant = Grant::Kept;
        let Direct::Written(seq) = state else {
            return false;
        };
        if let Some(slot) = self.slots.iter_mut().find(|s| s.seq == seq && !s.done) {
            slot.done = true;
        }
        self.advance_slots();
        true
    }

    /// The connection is going away: drop a grant (and its reference to the socket). A worker
    /// writing now keeps the socket open until its write returns.
    fn release_direct(&mut self) {
        if std::mem::replace(&mut self.grant, Grant::Kept) == Grant::Lent {
            *self.handle.shared.direct.lock().unwrap_or_else(|e| e.into_inner()) = Direct::Off;
        }
    }

    /// Folds in a finished direct write (from the periodic sweep: the idle timer starts).
    /// `true` when an answer was completed so: the connection should be driven again.
    pub(crate) fn poll_direct(&mut self) -> bool {
        self.settle_direct(false)
    }

    /// Dispatches the held request once the requests before it allow (see [`Conn::on_end`]).
    fn release_held<D: Dispatch>(&mut self, ctx: &mut Ctx<'_, D>) {
        let Some(seq) = self.held.as_ref().map(|r| r.seq) else {
            return;
        };
        if self.closing() {
            return;
        }
        let Some(pos) = self.slots.iter().position(|s| s.seq == seq) else {
            // An earlier response closed the connection: this request never runs.
            self.held = None;
            return;
        };
        let safe = self.slots[pos].safe;
        if self.slots.iter().take(pos).all(|s| s.done || (safe && s.safe)) {
            if let Some(req) = self.held.take() {
                ctx.dispatch.on_request(&self.handle, *req);
            }
        }
    }

    /// Bytes the reactor writes on its own, outside any response slot (100 Continue).
    fn queue_local(&mut self, b: Bytes) {
        self.handle.charge_out(b.len());
        self.wq.push(b);
    }

    /// A whole response of the reactor's own, ordered after the responses in flight.
    fn push_local(&mut self, b: Bytes, close: bool) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.handle.charge_out(b.len());
        self.slots.push_back(Slot { seq, parts: vec![b], done: true, close, upgrade: None, safe: true });
        self.advance_slots();
    }

    /// A part of the response to request `seq`, from another thread.
    pub(crate) fn on_write<D: Dispatch>(
        &mut self,
        seq: u64,
        head: Bytes,
        body: Bytes,
        end: bool,
        close: bool,
        ctx: &mut Ctx<'_, D>,
    ) {
        self.settle_direct(true);
        let Some(pos) = self.slots.iter().position(|s| s.seq == seq && !s.done) else {
            self.handle.release_out(head.len() + body.len());
            return;
        };
        let front = pos == 0;
        let slot = &mut self.slots[pos];
        if front {
            // The common case: the answer to the oldest request goes straight out.
            self.wq.push(head);
            self.wq.push(body);
        } else {
            if !head.is_empty() {
                slot.parts.push(head);
            }
            if !body.is_empty() {
                slot.parts.push(body);
            }
        }
        if end {
            slot.done = true;
            slot.close = close;
        }
        self.advance_slots();
        if self.wq.len() >= ctx.cfg.write_high_water {
            self.flush(ctx);
        }
    }

    /// Moves the parts of the front slot(s) to the write queue, in request order.
    fn advance_slots(&mut self) {
        while let Some(front) = self.slots.front_mut() {
            for p in front.parts.drain(..) {
                self.wq.push(p);
            }
            if !front.done {
                break;
            }
            let close = front.close;
            let upgrade = front.upgrade;
            self.slots.pop_front();
            if let Some((max, auto_pong)) = upgrade {
                if self.input == Input::Ended {
                    // The client left before the 101 (its input is read to the end): there is
                    // no WebSocket to serve. What is queued (the answers before, the 101)
                    // still goes out, then it closes. (A FIN only seen, not read yet, still
                    // lets the frames before it be read; the EOF then closes the WebSocket.)
                    self.finish_after_flush(Ending::PeerClosed);
                    break;
                }
                // The 101 is queued: from here on the connection speaks WebSocket.
                self.slots.clear();
                let (early_acks, early_close) = self.early.take().map(|b| *b).unwrap_or_default();
                self.ws = Some(Box::new(WsState {
                    dec: FrameDecoder::new(max),
                    auto_pong,
                    close_sent: early_close.is_some(),
                    info: early_close,
                    flow: Flow::Flowing,
                    pong_at: None,
                }));
                for token in early_acks {
                    self.wq.mark(token);
                }
                self.reading = Reading::Requests;
                if let Close::AfterAnswers(_) = self.close {
                    self.close = Close::Open;
                }
                if self.stopping {
                    self.ws_close(1001, "server stopping", false);
                }
                break;
            }
            if close {
                let dropped: usize = self.slots.iter().flat_map(|s| s.parts.iter()).map(Bytes::len).sum();
                self.handle.release_out(dropped);
                self.slots.clear();
                self.finish_after_flush(Ending::Local);
                break;
            }
        }
        if let (true, Close::AfterAnswers(e)) = (self.slots.is_empty(), &self.close) {
            self.close = Close::AfterFlush(*e);
        }
    }

    /// The response to request `seq` is a `101`: queue it, then switch to WebSocket.
    pub(crate) fn on_upgrade<D: Dispatch>(
        &mut self,
        seq: u64,
        head: Bytes,
        max: usize,
        auto_pong: bool,
        ctx: &mut Ctx<'_, D>,
    ) {
        self.settle_direct(true);
        let Some(slot) = self.slots.iter_mut().find(|s| s.seq == seq && !s.done) else {
            self.handle.release_out(head.len());
            return;
        };
        slot.parts.push(head);
        slot.done = true;
        slot.upgrade = Some((max, auto_pong));
        self.advance_slots();
        self.flush(ctx);
    }

    /// A frame from another thread (WebSocket only). A close frame starts the close handshake.
    pub(crate) fn on_frame<D: Dispatch>(
        &mut self,
        head: Bytes,
        payload: Bytes,
        close: Option<WsClose>,
        ack: Option<u64>,
        ctx: &mut Ctx<'_, D>,
    ) {
        let n = head.len() + payload.len();
        if self.ws.is_none() {
            // The 101 may still wait behind earlier pipelined responses: the frame follows it.
            if let Some(slot) = self.slots.iter_mut().find(|s| s.upgrade.is_some()) {
                slot.parts.push(head);
                slot.parts.push(payload);
                let early = self.early.get_or_insert_with(Default::default);
                early.0.extend(ack);
                if early.1.is_none() {
                    early.1 = close;
                }
                return;
            }
        }
        let Some(ws) = &mut self.ws else {
            self.handle.release_out(n);
            return;
        };
        if ws.close_sent {
            self.handle.release_out(n);
            return;
        }
        self.wq.push(head);
        self.wq.push(payload);
        if let Some(token) = ack {
            self.wq.mark(token);
        }
        if let Some(info) = close {
            ws.close_sent = true;
            if ws.info.is_none() {
                ws.info = Some(info);
            }
            self.timer = Timer::CloseHandshake;
            self.deadline = ctx.now.checked_add(CLOSE_HANDSHAKE);
        }
        if self.wq.len() >= ctx.cfg.write_high_water {
            self.flush(ctx);
        }
    }

    /// Queues a pong (never refused for lack of room: control frames are tiny). At most one
    /// waits for the socket: while the socket takes what is queued, every ping gets its pong;
    /// when it does not (the peer is not reading), a newer pong replaces the one not yet
    /// written (RFC 6455 §5.5.3 allows answering only the latest ping), so a ping flood cannot
    /// grow the queue.
    pub(crate) fn queue_pong<D: Dispatch>(&mut self, payload: &[u8], ctx: &mut Ctx<'_, D>) {
        let Some(pong_at) = self.ws.as_ref().filter(|ws| !ws.close_sent).map(|ws| ws.pong_at) else {
            return;
        };
        if pong_at.is_some() && self.writable {
            // The last pong goes out now if the socket takes it.
            self.flush(ctx);
        }
        let mut out = Vec::with_capacity(payload.len() + 2);
        encode_frame(OpCode::Pong, true, payload, &mut out);
        let new_len = out.len();
        let frame = Bytes::from(out);
        if let Some(old) = pong_at.and_then(|at| self.wq.replace_unsent(at, frame.clone())) {
            if new_len >= old {
                self.handle.charge_out(new_len - old);
            } else {
                self.handle.release_out(old - new_len);
            }
            return;
        }
        let at = self.wq.end_position();
        if let Some(ws) = &mut self.ws {
            ws.pong_at = Some(at);
        }
        self.handle.charge_out(new_len);
        self.wq.push(frame);
    }

    /// Sends a close frame of the reactor's own (protocol error, server stop, echo). With
    /// `done` the TCP connection closes once it is written (the handshake is complete).
    fn ws_close(&mut self, code: u16, reason: &str, done: bool) {
        let Some(ws) = &mut self.ws else { return };
        if !ws.close_sent {
            let mut out = Vec::with_capacity(4 + reason.len());
            if code == 1005 {
                encode_frame(OpCode::Close, true, &[], &mut out);
            } else {
                encode_close(code, reason, &mut out);
            }
            ws.close_sent = true;
            self.handle.charge_out(out.len());
            self.wq.push(Bytes::from(out));
        }
        if ws.info.is_none() {
            ws.info = Some(WsClose { code, reason: reason.to_owned(), by_peer: false });
        }
        if done {
            self.finish_after_flush(Ending::Local);
        }
    }

    /// Reads the PROXY header at the start of the connection: `Some(consumed)` to go on with
    /// HTTP, `None` to wait for more bytes (or when the connection is being closed).
    fn decode_proxy(&mut self, input: &[u8], cfg: &ReactorConfig) -> Option<usize> {
        use httpkit_codec::proxy::{parse, starts_like_proxy, ProxyHeader};
        match starts_like_proxy(input) {
            None => None,
            Some(false) => {
                if cfg.proxy_protocol == ProxyProtocol::Required {
                    log::debug!("connection without the required PROXY header closed");
                    self.close(CloseReason::BadRequest);
                    return None;
                }
                self.reading = Reading::Requests;
                Some(0)
            }
            Some(true) => match parse(input) {
                Ok(None) => None,
                Ok(Some((n, header))) => {
                    if let ProxyHeader::Proxied { source, .. } = header {
                        let _ = self.handle.shared.proxied.set(source);
                    }
                    self.reading = Reading::Requests;
                    Some(n)
                }
                Err(e) => {
                    log::debug!("{e}; connection closed");
                    self.close(CloseReason::BadRequest);
                    None
                }
            },
        }
    }

    fn decode_frames<D: Dispatch>(&mut self, input: &[u8], ctx: &mut Ctx<'_, D>) -> usize {
        let mut off = 0;
        while self.reading != Reading::Stopped && !self.ws_paused() && !self.closing() {
            let Some(ws) = &mut self.ws else { break };
            match ws.dec.decode(&input[off..]) {
                Ok((0, None)) => break,
                Ok((n, None)) => off += n,
                Ok((n, Some(ev))) => {
                    off += n;
                    match ev {
                        WsEvent::Close(frame) => {
                            let (code, reason) = frame.map_or((1005, String::new()), |f| (f.code, f.reason));
                            let we_closed = ws.close_sent;
                            if ws.info.is_none() {
                                ws.info = Some(WsClose { code, reason: reason.clone(), by_peer: true });
                            }
                            if we_closed {
                                // The reply to our close: the handshake is complete.
                                self.finish_after_flush(Ending::Local);
                            } else {
                                // Echo the peer's code, then close the TCP connection.
                                self.ws_close(code, &reason, true);
                            }
                        }
                        WsEvent::Ping(p) => {
                            if ws.auto_pong {
                                self.queue_pong(&p, ctx);
                            }
                            ctx.dispatch.on_ws_event(&self.handle, WsEvent::Ping(p));
                        }
                        ev => ctx.dispatch.on_ws_event(&self.handle, ev),
                    }
                }
                Err(e) => {
                    self.ws_close(e.close_code(), e.description(), true);
                    break;
                }
            }
        }
        off
    }

    pub(crate) fn on_close_cmd(&mut self, abort: bool) {
        self.settle_direct(true);
        if abort {
            self.close(CloseReason::Local);
        } else {
            self.finish_after_flush(Ending::Local);
            let dropped: usize = self.slots.iter().flat_map(|s| s.parts.iter()).map(Bytes::len).sum();
            self.handle.release_out(dropped);
            self.slots.clear();
        }
    }

    /// Writes what is queued; starts the close when due.
    pub(crate) fn flush<D: Dispatch>(&mut self, ctx: &mut Ctx<'_, D>) {
        if self.closing() {
            return;
        }
        if self.writable && !self.wq.is_empty() {
            // The reactor writes: take back a lent write side first (the order of bytes).
            self.settle_direct(true);
            match self.wq.write_to(&mut &*self.stream) {
                Ok(n) => {
                    if n > 0 {
                        let left = self.handle.release_out(n);
                        if left <= ctx.cfg.write_high_water {
                            self.handle.shared.notify();
                        }
                        if left <= ctx.cfg.write_low_water()
                            && self.handle.shared.drained_wanted.load(Ordering::SeqCst)
                            && self.handle.shared.drained_wanted.swap(false, Ordering::SeqCst)
                        {
                            ctx.dispatch.on_drained(&self.handle);
                        }
                        if self.timer == Timer::Write {
                            self.window_bytes += n as u64;
                        }
                    }
                    if !self.wq.is_empty() {
                        self.writable = false;
                    }
                    if self.wq.has_marks() {
                        let mut acked = Vec::new();
                        self.wq.take_acked(&mut acked);
                        for token in acked {
                            ctx.dispatch.on_frame_written(&self.handle, token);
                        }
                    }
                }
                Err(_) => {
                    self.close(CloseReason::Error);
                    return;
                }
            }
        }
        if let (true, Close::AfterFlush(ending)) = (self.wq.is_empty(), &self.close) {
            let ending = *ending;
            if self.input == Input::Ended {
                self.close(ending.reason());
            } else {
                // Lingering close: shut our side, read and discard until the peer closes, so
                // unread input does not turn our last response into a reset.
                self.stream.shutdown_write();
                self.close = Close::Lingering(ending);
                self.rbuf = Vec::new();
                self.timer = Timer::Linger;
                self.deadline = ctx.now.checked_add(LINGER);
            }
        }
    }

    fn linger_read(&mut self, scratch: &mut [u8]) {
        for _ in 0..READ_BUDGET {
            match (&*self.stream).read(scratch) {
                Ok(0) => return self.close(self.ending().reason()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(CloseReason::Local),
            }
        }
    }

    /// Picks the timer for the connection's current state; a timer keeps its deadline while
    /// its state lasts (a trickling client cannot extend the header deadline).
    pub(crate) fn update_timer(&mut self, cfg: &ReactorConfig, now: Instant) {
        if self.closing() || self.lingering() {
            return;
        }
        let want = if self.ws.as_ref().is_some_and(|w| w.close_sent) {
            Timer::CloseHandshake
        } else if !self.wq.is_empty() {
            Timer::Write
        } else if self.ws.is_some() || !self.slots.is_empty() {
            Timer::None
        } else if self.cur.as_ref().is_some_and(|p| p.head.body != BodyKind::Empty) {
            Timer::BodyRead
        } else if !self.rbuf.is_empty() || !self.decoder.is_idle() {
            Timer::HeaderRead
        } else {
            Timer::Idle
        };
        if want != self.timer {
            self.timer = want;
            self.window_bytes = 0;
            self.deadline = match want {
                Timer::None => None,
                Timer::HeaderRead => now.checked_add(cfg.header_read_timeout),
                Timer::BodyRead => now.checked_add(cfg.body_read_timeout),
                Timer::Idle => now.checked_add(cfg.idle_timeout),
                Timer::Write => now.checked_add(cfg.write_timeout),
                Timer::Linger => now.checked_add(LINGER),
                Timer::CloseHandshake => now.checked_add(CLOSE_HANDSHAKE),
            };
        }
    }

    /// Gives back the memory an idle connection no longer needs (called from the timer sweep,
    /// so a busy connection keeps its buffers between requests).
    pub(crate) fn shrink_if_idle(&mut self) {
        if self.timer == Timer::Idle && self.slots.is_empty() && self.wq.is_empty() {
            if self.slots.capacity() > 0 {
                self.slots = VecDeque::new();
            }
            self.wq.release();
            if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
                self.rbuf = Vec::new();
            }
        }
    }

    pub(crate) fn on_timeout<D: Dispatch>(&mut self, ctx: &mut Ctx<'_, D>) {
        self.settle_direct(true);
        // A rate window ended: a peer at the minimum rate or above gets the next window.
        let (window, min) = match self.timer {
            Timer::BodyRead => (ctx.cfg.body_read_timeout, ctx.cfg.body_window_min()),
            Timer::Write => (ctx.cfg.write_timeout, ctx.cfg.send_window_min()),
            _ => (Duration::ZERO, u64::MAX),
        };
        if self.window_bytes >= min {
            self.window_bytes = 0;
            self.deadline = ctx.now.checked_add(window);
            return;
        }
        match self.timer {
            Timer::HeaderRead | Timer::BodyRead if self.slots.is_empty() => {
                let mut headers = HeaderMap::new();
                headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
                let bytes = simple_response(StatusCode::REQUEST_TIMEOUT, &headers, b"request timeout", ctx);
                self.cur = None;
                self.push_local(bytes, true);
                self.reading = Reading::Stopped;
                self.rbuf = Vec::new();
                self.flush(ctx);
                if !self.closing() && !self.lingering() {
                    // The peer does not read either: give up.
                    self.close(CloseReason::Timeout);
                }
            }
            Timer::None => {}
            // The peer kept its side open after our last response: a normal end.
            Timer::Linger => self.close(self.ending().reason()),
            _ => self.close(CloseReason::Timeout),
        }
    }

    /// Graceful stop: close now if idle, else once in-flight requests are answered.
    pub(crate) fn begin_drain<D: Dispatch>(&mut self, ctx: &mut Ctx<'_, D>) {
        self.settle_direct(true);
        self.stopping = true;
        if self.ws.is_some() {
            // WebSockets get a 1001 and a chance to answer it before the deadline.
            self.ws_close(1001, "server stopping", false);
            self.flush(ctx);
            return;
        }
        let receiving = self.cur.is_some() || !self.decoder.is_idle();
        if self.slots.is_empty() && self.wq.is_empty() && !receiving {
            self.close(CloseReason::ServerStop);
        } else if self.slots.is_empty() && receiving {
            // A request is arriving: let it finish (within the stop deadline); `on_end`
            // stops reading after it and the connection closes once it is answered.
        } else {
            self.cur = None;
            self.rbuf = Vec::new();
            self.close_after_flush_when_done(Ending::Local);
            self.flush(ctx);
        }
    }

    /// Immediate stop: a best-effort 1001 to WebSocket peers, written only if the socket takes it.
    pub(crate) fn stop_now(&mut self) {
        self.settle_direct(true);
        self.stopping = true;
        if self.ws.is_some() && !self.closing() {
            self.ws_close(1001, "server stopping", true);
            if self.writable {
                if let Ok(n) = self.wq.write_to(&mut &*self.stream) {
                    self.handle.release_out(n);
                }
            }
        }
    }

    /// Drops everything queued (the connection is being removed).
    pub(crate) fn discard_output(&mut self) {
        self.release_direct();
        let dropped = self.wq.clear() + self.slots.iter().flat_map(|s| s.parts.iter()).map(Bytes::len).sum::<usize>();
        self.slots.clear();
        self.handle.release_out(dropped);
    }
}

/// A complete response of the reactor's own (errors, timeouts): always `Connection: close`.
fn simple_response<D>(status: StatusCode, headers: &HeaderMap, body: &[u8], ctx: &Ctx<'_, D>) -> Bytes {
    let rctx = ResponseContext {
        method: &Method::GET,
        version: Version::HTTP_11,
        keep_alive: false,
        date: ctx.date,
        server: ctx.cfg.server_header.as_deref(),
    };
    let mut out = Vec::with_capacity(160 + body.len());
    if encode_head(status, headers, BodyLength::Known(body.len() as u64), &rctx, &mut out).is_ok() {
        out.extend_from_slice(body);
    }
    Bytes::from(out)
}

/// `Conn` driven directly, with a fake clock, over a Unix socket pair: timers fire at exactly
/// their deadline and pausing rules hold, without sleeps or a running event loop.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write;
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Condvar, Mutex};

    use super::*;
    use crate::command::{Remote, RemoteInner};
    use crate::slab::ConnId;
    use crate::ConnShared;

    #[derive(Default)]
    pub(super) struct Recorder {
        pub(super) requests: Vec<InboundRequest>,
        eofs: usize,
    }

    impl Dispatch for Recorder {
        fn on_request(&mut self, _conn: &ConnHandle, req: InboundRequest) {
            self.requests.push(req);
        }
        fn on_peer_eof(&mut self, _conn: &ConnHandle) {
            self.eofs += 1;
        }
    }

    pub(super) struct Harness {
        pub(super) conn: Conn,
        pub(super) peer: std::os::unix::net::UnixStream,
        pub(super) cfg: ReactorConfig,
        pub(super) rec: Recorder,
        pub(super) t0: Instant,
        pub(super) scratch: Vec<u8>,
        _poll: mio::Poll,
    }

    impl Harness {
        pub(super) fn new(cfg: ReactorConfig) -> Self {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            let poll = mio::Poll::new().unwrap();
            let waker = mio::Waker::new(poll.registry(), mio::Token(usize::MAX)).unwrap();
            let (tx, _rx) = crossbeam_channel::unbounded();
            let remote = Remote { inner: Arc::new(RemoteInner { tx, waker, sleeping: AtomicBool::new(false) }) };
            let shared = Arc::new(ConnShared {
                direct: std::sync::Mutex::new(crate::Direct::Off),
                queued: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                waiters: AtomicUsize::new(0),
                lock: Mutex::new(()),
                cond: Condvar::new(),
                peer: None,
                local: None,
                user: Mutex::new(None),
                proxied: std::sync::OnceLock::new(),
                peer_eof: AtomicBool::new(false),
                drained_wanted: AtomicBool::new(false),
            });
            let handle = ConnHandle { id: ConnId { index: 0, gen: 1 }, shared, remote };
            let t0 = Instant::now();
            let conn = Conn::new(Stream::Unix(mio::net::UnixStream::from_std(a)), handle, &cfg, t0);
            Self { conn, peer: b, cfg, rec: Recorder::default(), t0, scratch: vec![0; 64 * 1024], _poll: poll }
        }

        fn ready(&mut self, at: Duration) {
            let mut ctx = Ctx {
                cfg: &self.cfg,
                dispatch: &mut self.rec,
                now: self.t0 + at,
                date: b"D",
                buffered: &AtomicUsize::new(0),
            };
            self.conn.on_ready(true, true, false, false, &mut ctx, &mut self.scratch);
            self.conn.update_timer(&self.cfg, self.t0 + at);
        }

        /// What `ConnHandle::write` + a loop iteration do: count the bytes, queue, flush.
        fn respond(&mut self, seq: u64, data: &'static [u8], end: bool) {
            self.conn.handle.charge_out(data.len());
            let mut ctx = Ctx {
                cfg: &self.cfg,
                dispatch: &mut self.rec,
                now: self.t0,
                date: b"D",
                buffered: &AtomicUsize::new(0),
            };
            self.conn.on_write(seq, Bytes::from_static(data), Bytes::new(), end, false, &mut ctx);
            self.conn.drive(&mut ctx, &mut self.scratch);
        }

        fn timeout_if_due(&mut self, at: Duration) -> bool {
            let now = self.t0 + at;
            if self.conn.deadline().is_some_and(|d| d <= now) {
                let mut ctx =
                    Ctx { cfg: &self.cfg, dispatch: &mut self.rec, now, date: b"D", buffered: &AtomicUsize::new(0) };
                self.conn.on_timeout(&mut ctx);
                return true;
            }
            false
        }

        fn read_peer(&mut self) -> String {
            use std::io::Read;
            self.peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut b = vec![0u8; 4096];
            let n = self.peer.read(&mut b).unwrap();
            String::from_utf8_lossy(&b[..n]).into_owned()
        }
    }

    pub(super) fn cfg() -> ReactorConfig {
        ReactorConfig { header_read_timeout: Duration::from_secs(10), ..ReactorConfig::default() }
    }

    #[test]
    fn slowloris_hits_the_header_deadline_exactly() {
        let mut h = Harness::new(cfg());
        // One byte per second: each arrival is progress, but the head never completes.
        for (i, b) in b"GET / HTTP/1.1\r\nHost: x\r\n".iter().enumerate().take(10) {
            h.peer.write_all(&[*b]).unwrap();
            h.ready(Duration::from_secs(i as u64));
            assert!(!h.timeout_if_due(Duration::from_secs(i as u64)), "no timeout at {i}s");
        }
        assert!(!h.timeout_if_due(Duration::from_millis(9_999)));
        assert!(h.timeout_if_due(Duration::from_secs(10)), "deadline counted from the first byte");
        assert!(h.read_peer().starts_with("HTTP/1.1 408 Request Timeout"));
        assert!(h.rec.requests.is_empty());
    }

    #[test]
    fn a_body_below_the_minimum_rate_gets_a_408_at_the_end_of_its_window() {
        // 30 s windows, at least 256 B/s: a byte every second is progress, but too slow.
        let mut h = Harness::new(cfg());
        h.peer.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n").unwrap();
        h.ready(Duration::ZERO);
        for i in 1..30 {
            h.peer.write_all(b"b").unwrap();
            h.ready(Duration::from_secs(i));
            assert!(!h.timeout_if_due(Duration::from_secs(i)), "no timeout at {i}s");
        }
        assert!(h.timeout_if_due(Duration::from_secs(30)));
        assert!(h.read_peer().starts_with("HTTP/1.1 408"));
        assert!(h.rec.requests.is_empty());

        // At 1 KiB/s the body goes on from window to window.
        let mut h = Harness::new(cfg());
        h.peer.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n").unwrap();
        h.ready(Duration::ZERO);
        for i in 1..=90 {
            h.peer.write_all(&[b'b'; 1024]).unwrap();
            h.ready(Duration::from_secs(i));
            assert!(!h.timeout_if_due(Duration::from_secs(i)) || h.conn.is_closing().is_none(), "{i}s");
        }
        assert_eq!(h.conn.is_closing(), None);
        h.peer.write_all(&[b'b'; 100_000 - 90 * 1024]).unwrap();
        h.ready(Duration::from_secs(91));
        assert_eq!(h.rec.requests.len(), 1);
    }

    #[test]
    fn a_reader_below_the_minimum_rate_is_disconnected_at_the_end_of_its_window() {
        let mut h = Harness::new(ReactorConfig { min_send_rate: 1000, ..cfg() });
        h.peer.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        h.ready(Duration::ZERO);
        let seq = h.rec.requests[0].seq;
        let big = Bytes::from(vec![b'x'; 8 << 20]);
        h.conn.handle.charge_out(big.len());
        let mut ctx = Ctx { cfg: &h.cfg, dispatch: &mut h.rec, now: h.t0, date: b"D", buffered: &AtomicUsize::new(0) };
        h.conn.on_write(seq, Bytes::new(), big, true, false, &mut ctx);
        h.conn.flush(&mut ctx);
        h.conn.update_timer(&h.cfg, h.t0);
        // The peer reads 4 KiB a second for a window (above 1000 B/s), then 100 B/s (progress,
        // but below the minimum rate).
        let mut b = vec![0u8; 4096];
        for i in 1..=60u64 {
            h.peer.read_exact(&mut b).unwrap();
            let mut ctx = Ctx {
                cfg: &h.cfg,
                dispatch: &mut h.rec,
                now: h.t0 + Duration::from_secs(i),
                date: b"D",
                buffered: &AtomicUsize::new(0),
            };
            h.conn.on_ready(false, true, false, false, &mut ctx, &mut h.scratch);
        }
        assert!(h.timeout_if_due(Duration::from_secs(60)));
        assert_eq!(h.conn.is_closing(), None, "the first window was fast enough");
        for i in 61..=120u64 {
            h.peer.read_exact(&mut b[..100]).unwrap();
            let mut ctx = Ctx {
                cfg: &h.cfg,
                dispatch: &mut h.rec,
                now: h.t0 + Duration::from_secs(i),
                date: b"D",
                buffered: &AtomicUsize::new(0),
            };
            h.conn.on_ready(false, true, false, false, &mut ctx, &mut h.scratch);
        }
        assert!(h.timeout_if_due(Duration::from_secs(120)));
        assert_eq!(h.conn.is_closing(), Some(CloseReason::Timeout), "100 B/s is below 1000 B/s");
    }

    #[test]
    fn idle_keep_alive_times_out_quietly() {
        let mut h = Harness::new(cfg());
        h.peer.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        h.ready(Duration::ZERO);
        assert_eq!(h.rec.requests.len(), 1);
        let seq = h.rec.requests[0].seq;
        h.respond(
            seq,
            b"HTTP/1.1 200 OK
content-length: 0

",
            true,
        );
        h.conn.update_timer(&h.cfg, h.t0);
        assert!(h.read_peer().starts_with("HTTP/1.1 200 OK"));
        let idle = h.cfg.idle_timeout;
        assert!(!h.timeout_if_due(idle - Duration::from_millis(1)));
        assert!(h.timeout_if_due(idle));
        assert_eq!(h.conn.is_closing(), Some(CloseReason::Timeout));
    }

    #[test]
    fn pipelining_stops_at_the_configured_depth() {
        let mut h = Harness::new(ReactorConfig { max_pipelined: 3, ..cfg() });
        let mut burst = Vec::new();
        for i in 0..10 {
            burst.extend_from_slice(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        }
        h.peer.write_all(&burst).unwrap();
        h.ready(Duration::ZERO);
        assert_eq!(h.rec.requests.len(), 3, "three in flight at most");
        assert!(!h.conn.wants_revisit(&h.cfg, &AtomicUsize::new(0)), "a paused connection is not spun on");
        // Answering the first frees a slot: the next buffered request is decoded.
        let seq = h.rec.requests[0].seq;
        h.respond(seq, b"HTTP/1.1 204 No Content\r\n\r\n", true);
        assert_eq!(h.rec.requests.len(), 4);
        assert_eq!(h.rec.requests[3].head.path(), "/3");
    }

    #[test]
    fn a_lent_write_side_answers_directly_and_the_connection_goes_on() {
        let mut h = Harness::new(cfg());
        h.peer.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        h.ready(Duration::ZERO);
        let seq = h.rec.requests[0].seq;
        assert_eq!(h.conn.handle.try_write_direct(seq + 1, b"x", b""), None, "only for its request");
        assert_eq!(h.conn.handle.try_write_direct(seq, b"HTTP/1.1 200 OK\r\n", b"\r\n"), Some(19));
        assert_eq!(h.read_peer(), "HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(h.conn.handle.try_write_direct(seq, b"again", b""), None, "lent once");
        // Until the reactor looks, the request counts as waiting; then the idle timer runs.
        h.conn.update_timer(&h.cfg, h.t0);
        assert_eq!(h.conn.deadline(), None);
        assert!(h.conn.poll_direct());
        h.conn.update_timer(&h.cfg, h.t0);
        assert_eq!(h.conn.deadline(), Some(h.t0 + h.cfg.idle_timeout));
        // The next request is lent again.
        h.peer.write_all(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        h.ready(Duration::ZERO);
        assert_eq!(h.conn.handle.try_write_direct(h.rec.requests[1].seq, b"ok", b""), Some(2));
    }

    #[test]
    fn a_pipelined_request_takes_the_write_side_back() {
        let mut h = Harness::new(cfg());
        h.peer.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        h.ready(Duration::ZERO);
        h.peer.write_all(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        h.ready(Duration::ZERO);
        let (a, b) = (h.rec.requests[0].seq, h.rec.requests[1].seq);
        // Both answers now go through the reactor, in order.
        assert_eq!(h.conn.handle.try_write_direct(a, b"first", b""), None);
        assert_eq!(h.conn.handle.try_write_direct(b, b"second", b""), None);
        h.respond(b, b"second", true);
        h.respond(a, b"first", true);
        let mut got = String::new();
        while got.len() < 11 {
            got.push_str(&h.read_peer());
        }
        assert_eq!(got, "firstsecond");
    }

    #[test]
    fn a_peer_that_closes_behind_a_held_request_is_noticed() {
        let mut h = Harness::new(cfg());
        h.peer
            .write_all(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\nPOST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        h.peer.shutdown(std::net::Shutdown::Write).unwrap();
        let mut ctx = Ctx { cfg: &h.cfg, dispatch: &mut h.rec, now: h.t0, date: b"D", buffered: &AtomicUsize::new(0) };
        h.conn.on_ready(true, true, true, false, &mut ctx, &mut h.scratch);
        assert_eq!(h.rec.requests.len(), 1, "the POST waits behind the GET");
        assert_eq!(h.rec.eofs, 1, "the application hears the peer left");
        assert!(h.conn.handle.peer_closed());
        // The held POST is still answered once the GET is; the EOF read then is not told twice.
        let seq = h.rec.requests[0].seq;
        h.respond(seq, b"HTTP/1.1 204 No Content\r\n\r\n", true);
        assert_eq!(h.rec.requests.len(), 2);
        assert_eq!(h.rec.eofs, 1);

        // The same behind a full pipeline.
        let mut h = Harness::new(ReactorConfig { max_pipelined: 1, ..cfg() });
        h.peer.write_all(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        h.peer.shutdown(std::net::Shutdown::Write).unwrap();
        let mut ctx = Ctx { cfg: &h.cfg, dispatch: &mut h.rec, now: h.t0, date: b"D", buffered: &AtomicUsize::new(0) };
        h.conn.on_ready(true, true, true, false, &mut ctx, &mut h.scratch);
        assert_eq!((h.rec.requests.len(), h.rec.eofs), (1, 1));
    }

    #[test]
    fn nothing_is_lent_when_decoding_would_wait_for_the_answer() {
        let mut h = Harness::new(ReactorConfig { max_pipelined: 1, ..cfg() });
        h.peer.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        h.ready(Duration::ZERO);
        assert_eq!(h.conn.handle.try_write_direct(h.rec.requests[0].seq, b"x", b""), None);
        let mut h = Harness::new(cfg());
        h.peer.write_all(b"GET /a HTTP/1.0\r\n\r\n").unwrap();
        h.ready(Duration::ZERO);
        assert_eq!(h.conn.handle.try_write_direct(h.rec.requests[0].seq, b"x", b""), None, "closes after");
    }

    #[test]
    fn responses_leave_in_request_order() {
        let mut h = Harness::new(cfg());
        h.peer.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        h.ready(Duration::ZERO);
        let (a, b) = (h.rec.requests[0].seq, h.rec.requests[1].seq);
        h.conn.handle.charge_out(12);
        let mut ctx = Ctx { cfg: &h.cfg, dispatch: &mut h.rec, now: h.t0, date: b"D", buffered: &AtomicUsize::new(0) };
        // The second finishes first; it must wait behind the first.
        h.conn.on_write(b, Bytes::from_static(b"second"), Bytes::new(), true, false, &mut ctx);
        h.conn.flush(&mut ctx);
        h.conn.on_write(a, Bytes::from_static(b"first|"), Bytes::new(), true, false, &mut ctx);
        h.conn.flush(&mut ctx);
        assert_eq!(h.read_peer(), "first|second");
    }

    #[test]
    fn a_peer_that_does_not_read_pauses_reading_at_the_high_water_mark() {
        let mut h = Harness::new(ReactorConfig { write_high_water: 64 * 1024, ..cfg() });
        h.peer.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        h.ready(Duration::ZERO);
        let seq = h.rec.requests[0].seq;
        let big = Bytes::from(vec![b'x'; 4 << 20]);
        h.conn.handle.charge_out(big.len());
        let mut ctx = Ctx { cfg: &h.cfg, dispatch: &mut h.rec, now: h.t0, date: b"D", buffered: &AtomicUsize::new(0) };
        h.conn.on_write(seq, Bytes::new(), big, false, false, &mut ctx);
        h.conn.flush(&mut ctx);
        // The socket buffer is full; the next request is not read while output waits.
        h.peer.write_all(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        h.ready(Duration::from_millis(1));
        assert_eq!(h.rec.requests.len(), 1, "reading paused above the high-water mark");
        assert!(!h.conn.wants_revisit(&h.cfg, &AtomicUsize::new(0)));
        // A stalled write hits the write timeout.
        let wt = h.cfg.write_timeout;
        assert!(h.timeout_if_due(wt + Duration::from_millis(1)));
        assert_eq!(h.conn.is_closing(), Some(CloseReason::Timeout));
    }
}

/// The connection state machine against random request sequences: pipelined requests with and
/// without bodies, a `Connection: close`, an upgrade, trailing junk; the input cut at random
/// points; the peer's FIN and the workers' answers (whole, in parts, or written directly by the
/// worker) at random times. Invariants: every answer that was due is written whole and in order
/// before any close the server chose; a close never leaves input unread (it would be a reset);
/// nothing is dispatched after a request that ends the connection; and the connection does
/// close once the peer is gone and everything is answered.
#[cfg(test)]
mod state_machine {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::collections::BTreeMap;
    use std::io::{Read, Write as _};

    use proptest::prelude::*;

    use super::tests::Harness;
    use super::*;

    #[derive(Debug, Clone)]
    enum Req {
        Get,
        GetClose,
        Post(usize),
        Chunked(usize),
        Upgrade,
    }

    fn req() -> impl Strategy<Value = Req> {
        prop_oneof![
            4 => Just(Req::Get),
            1 => Just(Req::GetClose),
            2 => (0usize..3000).prop_map(Req::Post),
            1 => (1usize..3000).prop_map(Req::Chunked),
            1 => Just(Req::Upgrade),
        ]
    }

    const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
                           Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

    fn encode(i: usize, r: &Req) -> Vec<u8> {
        let mut out = match r {
            Req::Get => format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n"),
            Req::GetClose => format!("GET /{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            Req::Post(n) => format!("POST /{i} HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\n\r\n"),
            Req::Chunked(n) => format!("POST /{i} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{n:x}\r\n"),
            Req::Upgrade => format!("GET /{i} HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n"),
        }
        .into_bytes();
        match r {
            Req::Post(n) => out.extend(std::iter::repeat_n(b'b', *n)),
            Req::Chunked(n) => {
                out.extend(std::iter::repeat_n(b'c', *n));
                out.extend_from_slice(b"\r\n0\r\n\r\n");
            }
            _ => {}
        }
        out
    }

    /// How a request ends the connection, if it does.
    fn ends(r: &Req) -> bool {
        matches!(r, Req::GetClose | Req::Upgrade)
    }

    struct Run {
        h: Harness,
        reqs: Vec<Req>,
        input: Vec<Vec<u8>>,
        fin: bool,
        /// Parts of each request's answer already given (0, 1 or 2 = done).
        given: BTreeMap<u64, u8>,
        received: Vec<u8>,
        closed: Option<CloseReason>,
    }

    impl Run {
        fn ready(&mut self) {
            let mut ctx = Ctx {
                cfg: &self.h.cfg,
                dispatch: &mut self.h.rec,
                now: self.h.t0,
                date: b"D",
                buffered: &AtomicUsize::new(0),
            };
            self.h.conn.on_ready(true, true, self.fin, false, &mut ctx, &mut self.h.scratch);
            self.after();
        }

        fn drive(&mut self) {
            let mut ctx = Ctx {
                cfg: &self.h.cfg,
                dispatch: &mut self.h.rec,
                now: self.h.t0,
                date: b"D",
                buffered: &AtomicUsize::new(0),
            };
            self.h.conn.drive(&mut ctx, &mut self.h.scratch);
            self.after();
        }

        /// What the loop does after each visit: note a close, revisit a connection that wants it.
        fn after(&mut self) {
            for _ in 0..64 {
                if self.closed.is_none() {
                    self.closed = self.h.conn.is_closing();
                }
                if self.closed.is_some() || !self.h.conn.wants_revisit(&self.h.cfg, &AtomicUsize::new(0)) {
                    break;
                }
                let mut ctx = Ctx {
                    cfg: &self.h.cfg,
                    dispatch: &mut self.h.rec,
                    now: self.h.t0,
                    date: b"D",
                    buffered: &AtomicUsize::new(0),
                };
                self.h.conn.drive(&mut ctx, &mut self.h.scratch);
            }
            self.h.conn.update_timer(&self.h.cfg, self.h.t0);
            let mut buf = [0u8; 8192];
            loop {
                match self.h.peer.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => self.received.extend_from_slice(&buf[..n]),
                    Err(_) => break,
                }
            }
        }

        fn deliver(&mut self) -> bool {
            if self.input.is_empty() {
                return false;
            }
            // As much as the socket takes (a connection that stops reading holds the rest back).
            let n = match self.h.peer.write(&self.input[0]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                Err(e) => panic!("peer write: {e}"),
            };
            if n == self.input[0].len() {
                self.input.remove(0);
            } else {
                self.input[0].drain(..n);
            }
            self.ready();
            n > 0
        }

        fn send_fin(&mut self) -> bool {
            if self.fin || !self.input.is_empty() {
                return false;
            }
            self.h.peer.shutdown(std::net::Shutdown::Write).unwrap();
            self.fin = true;
            self.ready();
            true
        }

        /// Gives the next part of the answer to the `pick`-th unanswered dispatched request.
        fn answer(&mut self, pick: usize, direct: bool) -> bool {
            let open: Vec<u64> = self
                .h
                .rec
                .requests
                .iter()
                .map(|r| r.seq)
                .filter(|s| self.given.get(s).copied().unwrap_or(0) < 2)
                .collect();
            if open.is_empty() {
                return false;
            }
            let seq = open[pick % open.len()];
            let idx = self.h.rec.requests.iter().position(|r| r.seq == seq).unwrap();
            let r = self.reqs[idx].clone();
            let part = self.given.get(&seq).copied().unwrap_or(0);
            let close = matches!(r, Req::GetClose);
            let mut ctx = Ctx {
                cfg: &self.h.cfg,
                dispatch: &mut self.h.rec,
                now: self.h.t0,
                date: b"D",
                buffered: &AtomicUsize::new(0),
            };
            if matches!(r, Req::Upgrade) {
                let head = Bytes::from(format!("<101:{seq}>"));
                self.h.conn.handle.charge_out(head.len());
                self.h.conn.on_upgrade(seq, head, 1 << 20, true, &mut ctx);
                self.given.insert(seq, 2);
            } else if direct && part == 0 {
                let whole = format!("<{seq}:0><{seq}:1>");
                match self.h.conn.handle.try_write_direct(seq, whole.as_bytes(), b"") {
                    Some(n) if n == whole.len() => {
                        self.h.conn.poll_direct();
                    }
                    sent => {
                        let rest = Bytes::copy_from_slice(&whole.as_bytes()[sent.unwrap_or(0)..]);
                        self.h.conn.handle.charge_out(rest.len());
                        self.h.conn.on_write(seq, Bytes::new(), rest, true, close, &mut ctx);
                    }
                }
                self.given.insert(seq, 2);
            } else {
                let b = Bytes::from(format!("<{seq}:{part}>"));
                self.h.conn.handle.charge_out(b.len());
                let end = part == 1;
                self.h.conn.on_write(seq, b, Bytes::new(), end, close && end, &mut ctx);
                self.given.insert(seq, part + 1);
            }
            self.drive();
            true
        }

        /// The answers that were due, in request order, up to one that ends the connection.
        fn expected(&self) -> Vec<u8> {
            let mut out = Vec::new();
            for (i, r) in self.h.rec.requests.iter().enumerate() {
                let s = r.seq;
                match self.given.get(&s).copied().unwrap_or(0) {
                    2 if matches!(self.reqs[i], Req::Upgrade) => out.extend(format!("<101:{s}>").bytes()),
                    2 => out.extend(format!("<{s}:0><{s}:1>").bytes()),
                    _ => break,
                }
                if ends(&self.reqs[i]) {
                    break;
                }
            }
            out
        }

        fn check_close(&mut self) {
            let Some(reason) = self.closed.clone() else { return };
            assert_ne!(reason, CloseReason::Error, "no I/O error in this harness");
            // Nothing may be left unread: the peer's FIN must have been read.
            let mut b = [0u8; 16];
            match (&*self.h.conn.stream).read(&mut b) {
                Ok(0) => {}
                other => panic!("closed ({reason:?}) with input unread or before the peer's FIN: {other:?}"),
            }
            let expected = self.expected();
            let got = &self.received;
            assert!(
                got.starts_with(&expected),
                "answers due were not all written before the close ({reason:?}):\n got {:?}\nwant {:?}",
                String::from_utf8_lossy(got),
                String::from_utf8_lossy(&expected)
            );
            let rest = &got[expected.len()..];
            assert!(
                rest.is_empty() || rest.starts_with(b"HTTP/1.1 400"),
                "unexpected bytes after the answers: {:?}",
                String::from_utf8_lossy(rest)
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
        #[test]
        fn answers_due_are_written_before_any_close_and_no_close_is_a_reset(
            reqs in proptest::collection::vec(req(), 1..6),
            junk in proptest::option::of(1usize..200_000),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
            actions in proptest::collection::vec((0u8..3, any::<usize>(), any::<bool>()), 0..40),
        ) {
            // Nothing is generated after an upgrade (what follows would be WebSocket frames).
            let mut reqs = reqs;
            if let Some(u) = reqs.iter().position(|r| matches!(r, Req::Upgrade)) {
                reqs.truncate(u + 1);
            }
            let mut bytes: Vec<u8> = reqs.iter().enumerate().flat_map(|(i, r)| encode(i, r)).collect();
            let upgrade = reqs.iter().any(|r| matches!(r, Req::Upgrade));
            if let (Some(n), false) = (junk, upgrade) {
                bytes.extend_from_slice(b"J\x01");
                bytes.extend(std::iter::repeat_n(b'j', n));
            }
            let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len())).collect();
            at.push(0);
            at.push(bytes.len());
            at.sort_unstable();
            at.dedup();
            let input: Vec<Vec<u8>> = at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect();

            let h = Harness::new(tests::cfg());
            h.peer.set_nonblocking(true).unwrap();
            let mut run = Run { h, reqs: reqs.clone(), input, fin: false, given: BTreeMap::new(), received: Vec::new(), closed: None };
            for (kind, pick, direct) in actions {
                if run.closed.is_some() {
                    break;
                }
                let _ = match kind {
                    0 => run.deliver() || run.send_fin(),
                    1 => run.answer(pick, direct),
                    _ => run.send_fin() || run.deliver(),
                };
                run.check_close();
            }
            // The rest: all input, the FIN, every answer.
            for _ in 0..200 {
                if run.closed.is_some() {
                    break;
                }
                if !(run.deliver() || run.send_fin() || run.answer(0, false)) {
                    break;
                }
                run.check_close();
            }
            run.check_close();
            // Requests that end the connection are the last ones dispatched.
            if let Some(end) = reqs.iter().position(ends) {
                prop_assert!(run.h.rec.requests.len() <= end + 1, "dispatched past a request that ends the connection");
            }
            prop_assert!(run.closed.is_some(), "the peer is gone and everything is answered, yet the connection stays open");
        }
    }
}
