//! One connection's state machine.
//!
//! A `Conn` is driven by four inputs — [`Conn::on_ready`] (socket readiness),
//! [`Conn::on_write`] / [`Conn::on_close_cmd`] and the other commands from other threads, and
//! [`Conn::on_timeout`] — and after each the loop checks [`Conn::is_closing`] and calls
//! [`Conn::update_timer`]. Its state is a few enums (`phase.rs`), each changed only through
//! named methods, and a few parts that own their concern:
//!
//! ```text
//! reading  Proxy ──header──▶ Requests ──error / answer that closes / upgrade request──▶ Stopped
//!                               ▲                                                      │
//!                               └─────────── 101 written: WebSocket frames ────────────┘
//! input    Open ──the poller says FIN──▶ FinSeen ──a read returns 0──▶ Ended
//! close    Open ─▶ AfterAnswers ─▶ AfterFlush ─┬─ input Ended ─────────────────────────▶ Now
//!                                              └─▶ Lingering (write shut, input dropped) ─▶ Now
//!          any ──I/O error, abort, timeout with nothing due, server stop──▶ Now
//! ```
//!
//! "FIN seen" is not "everything read": answers that are due block every close but an abort,
//! and a close with unread input lingers instead of resetting.
//!
//! * `pipeline.rs`: a slot per request in flight, answers in request order, the safe-method
//!   rule, the switch to WebSocket.
//! * `ws.rs`: the WebSocket session (decoder, close handshake, pongs, flow control).
//! * `grant.rs`: the write side lent to a worker.
//! * `timer.rs`: the one deadline, chosen from the state; minimum rates.
//! * `budget.rs`: the connection's share of the server-wide buffer budget.

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

use crate::command::CloseHow;
use crate::handle::Direct;
use crate::stream::Stream;
use crate::write_queue::WriteQueue;
use crate::{CloseReason, ConnHandle, Dispatch, InboundRequest, ProxyProtocol, ReactorConfig, WsClose, WsUpgrade};

mod budget;
mod grant;
mod phase;
mod pipeline;
#[cfg(test)]
mod state_machine;
#[cfg(test)]
mod tests;
mod timer;
mod ws;

use grant::{Grant, Settle};
use httpkit_codec::ws::CloseCode;
use phase::{Close, Ending, Input, Reading};
use pipeline::{Pending, Pipeline, SlotState};
use timer::{Deadline, Timer};
use ws::{CloseThen, Flow, WsSession};

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
    /// The reactor's counters, the server-wide count of buffered bytes among them (against
    /// [`ReactorConfig::buffer_budget`]).
    pub(crate) stats: &'a crate::Stats,
}

impl<D> Ctx<'_, D> {
    /// Whether `more` bytes would take the server's buffered bytes past its budget.
    fn over_budget(&self, more: usize) -> bool {
        self.stats.buffered().saturating_add(more) > self.cfg.buffer_budget
    }
}

#[derive(Debug)]
pub(crate) struct Conn<A> {
    pub(crate) stream: Arc<Stream>,
    pub(crate) handle: ConnHandle<A>,
    grant: Grant,
    decoder: RequestDecoder,
    rbuf: Vec<u8>,
    cur: Option<Box<Pending>>,
    pipeline: Pipeline,
    wq: WriteQueue,
    /// Readiness as the poller last said (edge-triggered: kept until a read or write would block).
    readable: bool,
    writable: bool,
    input: Input,
    reading: Reading,
    close: Close,
    /// The application paused reading (its queue of work for the connection is full).
    flow: Flow,
    ws: Option<Box<WsSession>>,
    /// The server is stopping: no request after the ones arriving now, every close is reported
    /// as the stop.
    stopping: bool,
    deadline: Deadline,
    /// What this connection last added to the server-wide count of buffered bytes.
    charged: usize,
    /// Links in the loop's list of evictable connections (slot indices), while in it, and when
    /// it joined the list (on the loops' shared clock, see `Peers`).
    pub(crate) lru: Option<(u32, u32, u32)>,
}

impl<A> Drop for Conn<A> {
    fn drop(&mut self) {
        // Even when the loop ends abnormally, a grant must not keep the socket open.
        self.release_direct();
    }
}

impl<A> Conn<A> {
    pub(crate) fn new(stream: Stream, handle: ConnHandle<A>, cfg: &ReactorConfig, now: Instant) -> Self {
        Self {
            stream: Arc::new(stream),
            handle,
            grant: Grant::Kept,
            decoder: RequestDecoder::new(cfg.limits),
            reading: if cfg.proxy_protocol == ProxyProtocol::Off { Reading::Requests } else { Reading::Proxy },
            rbuf: Vec::new(),
            cur: None,
            pipeline: Pipeline::default(),
            wq: WriteQueue::default(),
            readable: false,
            writable: true,
            input: Input::Open,
            close: Close::Open,
            flow: Flow::Flowing,
            ws: None,
            stopping: false,
            deadline: Deadline::new(cfg, now),
            charged: 0,
            lru: None,
        }
    }

    /// Whether the connection may be closed to admit a new one at the connection limit: it has
    /// nothing in progress — between requests on keep-alive, or not a byte received yet — and
    /// is not a WebSocket. (Valid after [`Conn::update_timer`].)
    pub(crate) fn is_evictable(&self) -> bool {
        matches!(self.deadline.timer(), Timer::Idle | Timer::HeaderRead)
            && self.close == Close::Open
            && self.ws.is_none()
            && !self.stopping
            && self.pipeline.is_empty()
            && self.wq.is_empty()
            && self.cur.is_none()
            && !self.pipeline.is_holding()
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

    /// When the connection's timer fires: its one deadline, or a heartbeat's answer being due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let own = self.deadline.at();
        let Some(ws) = &self.ws else { return own };
        [own, ws.ping_due, ws.ping_at, ws.fail_at.as_ref().map(|f| f.0)].into_iter().flatten().min()
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

    /// Whether the connection speaks WebSocket.
    pub(crate) fn is_websocket(&self) -> bool {
        self.ws.is_some()
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

    fn can_decode(&self, cfg: &ReactorConfig) -> bool {
        self.reading != Reading::Stopped
            && !self.ws_paused()
            && !self.pipeline.is_holding()
            && !self.closing()
            && (self.ws.is_some() || self.pipeline.len() < cfg.max_pipelined)
    }

    fn can_read_more(&self) -> bool {
        self.input != Input::Ended && self.reading != Reading::Stopped
    }

    pub(crate) fn on_ready<D: Dispatch<Attachment = A>>(
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
    pub(crate) fn drive<D: Dispatch<Attachment = A>>(&mut self, ctx: &mut Ctx<'_, D>, scratch: &mut [u8]) {
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
                    ctx.stats.count_read(n);
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
            && (self.reading == Reading::Stopped || (!self.pipeline.is_empty() && !self.can_decode(ctx.cfg)))
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
    fn on_fin_unread<D: Dispatch<Attachment = A>>(&mut self, ctx: &mut Ctx<'_, D>) {
        if self.reading == Reading::Stopped && matches!(self.close, Close::Open | Close::AfterAnswers(_)) {
            // Nothing more will be decoded as HTTP: answer what was asked, then close (what is
            // buffered stays: frames that followed an upgrade request are still read).
            let reason =
                if self.pipeline.is_empty() && self.wq.is_empty() { Ending::PeerClosed } else { Ending::Local };
            self.close_after_flush_when_done(reason);
        }
        // Once per connection (the EOF read later is not told again).
        if !self.handle.shared.peer_eof.swap(true, Ordering::SeqCst) {
            ctx.dispatch.on_peer_eof(&self.handle);
        }
    }

    fn on_eof<D: Dispatch<Attachment = A>>(&mut self, ctx: &mut Ctx<'_, D>) {
        // The connection's fate changes: a lent answer goes the usual way from here on, so the
        // loop hears of it at once.
        self.settle_direct(Settle::TakeBack);
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
        if self.pipeline.is_empty() && self.wq.is_empty() {
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
        if self.pipeline.is_empty() {
            self.finish_after_flush(reason);
        } else {
            self.finish_after_answers();
        }
    }

    /// New bytes from the socket.
    fn input<D: Dispatch<Attachment = A>>(&mut self, data: &[u8], ctx: &mut Ctx<'_, D>) {
        if self.ws.is_some() {
            self.ws_alive(ctx.cfg, ctx.now);
        }
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

    fn decode_buffered<D: Dispatch<Attachment = A>>(&mut self, ctx: &mut Ctx<'_, D>) {
        let buf = std::mem::take(&mut self.rbuf);
        let used = self.decode_from(&buf, ctx);
        if used < buf.len() && !self.closing() {
            let mut buf = buf;
            buf.drain(..used);
            self.rbuf = buf;
        }
    }

    fn decode_from<D: Dispatch<Attachment = A>>(&mut self, input: &[u8], ctx: &mut Ctx<'_, D>) -> usize {
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
            if off == input.len() && self.decoder.is_idle() {
                // Between requests with nothing left: nothing to decode (the common end).
                break;
            }
            match self.decoder.decode(&input[off..]) {
                Ok((0, None)) => break,
                Ok((n, ev)) => {
                    off += n;
                    match ev {
                        Some(RequestEvent::Head(head)) if head.body == BodyKind::Empty => {
                            // No body: its end follows at once (consumed here), so the request
                            // is complete without parking the head in a box.
                            let _ = self.decoder.decode(&[]);
                            self.complete(head, Vec::new(), None, ctx);
                        }
                        Some(RequestEvent::Head(head)) => self.on_head(head, ctx),
                        Some(RequestEvent::Body(b)) => {
                            // A spooled body holds one piece of memory at most: the buffer
                            // budget is not its to refuse.
                            let spooled = self.cur.as_ref().is_some_and(|p| p.spool.is_some());
                            if !spooled && ctx.over_budget(b.len()) {
                                // Other bodies filled the budget meanwhile: refuse rather than grow.
                                let busy = "server busy: too many bytes buffered";
                                self.refuse_body(StatusCode::SERVICE_UNAVAILABLE, busy, ctx);
                                break;
                            }
                            self.on_body_piece(b, ctx);
                            self.deadline.count(Timer::BodyRead, b.len());
                        }
                        Some(RequestEvent::End) => self.on_end(ctx),
                        None => {}
                    }
                }
                Err(e) => {
                    let mut headers = HeaderMap::new();
                    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
                    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
                    let msg = e.description();
                    ctx.dispatch.on_bad_request(&self.handle, status.as_u16(), msg);
                    let bytes = simple_response(status, &headers, msg.as_bytes(), ctx);
                    self.cur = None;
                    self.push_local(bytes, SlotState::DoneThenClose);
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
                        if httpkit_codec::proxy::v2_client_used_tls(&input[..n]) {
                            self.handle.shared.proxied_tls.store(true, Ordering::Release);
                        }
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

    pub(crate) fn on_close_cmd(&mut self, how: CloseHow) {
        self.settle_direct(Settle::TakeBack);
        if how == CloseHow::Abort {
            self.close(CloseReason::Local);
        } else {
            self.finish_after_flush(Ending::Local);
            self.wq.forget(self.pipeline.clear(), &self.handle.shared.queued);
        }
    }

    /// Writes what is queued; starts the close when due.
    pub(crate) fn flush<D: Dispatch<Attachment = A>>(&mut self, ctx: &mut Ctx<'_, D>) {
        if self.closing() {
            return;
        }
        if self.writable && !self.wq.is_empty() {
            // The reactor writes: take back a lent write side first (the order of bytes).
            self.settle_direct(Settle::TakeBack);
            match self.wq.write_to(&mut &*self.stream, &self.handle.shared.queued) {
                Ok((n, left)) => {
                    if n > 0 {
                        ctx.stats.count_written(n);
                        if left <= ctx.cfg.write_low_water()
                            && self.handle.shared.drained_wanted.load(Ordering::SeqCst)
                            && self.handle.shared.drained_wanted.swap(false, Ordering::SeqCst)
                        {
                            ctx.dispatch.on_drained(&self.handle);
                        }
                        self.deadline.count(Timer::Write, n);
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
        if self.ws.is_some() {
            self.lend_ws();
        }
        if let (true, Close::AfterFlush(ending)) = (self.wq.is_empty(), &self.close) {
            let ending = *ending;
            if self.input == Input::Ended {
                self.close(ending.reason());
            } else {
                // Lingering close: shut our side, read and discard until the peer closes, so
                // unread input does not turn our last response into a reset. (Not under a
                // worker writing an answer it was lent: the write side is taken back first.)
                self.settle_direct(Settle::TakeBack);
                self.stream.shutdown_write();
                self.close = Close::Lingering(ending);
                self.rbuf = Vec::new();
                self.deadline.restart(Timer::Linger, ctx.cfg, ctx.now);
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

    /// Graceful stop: close now if idle, else once in-flight requests are answered.
    pub(crate) fn begin_drain<D: Dispatch<Attachment = A>>(&mut self, ctx: &mut Ctx<'_, D>) {
        self.settle_direct(Settle::TakeBack);
        self.stopping = true;
        if self.ws.is_some() {
            // WebSockets get a 1001 and a chance to answer it before the deadline.
            self.ws_close(CloseCode::GOING_AWAY, "server stopping", CloseThen::AwaitReply);
            self.flush(ctx);
            return;
        }
        let receiving = self.cur.is_some() || !self.decoder.is_idle();
        if self.pipeline.is_empty() && self.wq.is_empty() && !receiving {
            self.close(CloseReason::ServerStop);
        } else if self.pipeline.is_empty() && receiving {
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
        self.settle_direct(Settle::TakeBack);
        self.stopping = true;
        if self.ws.is_some() && !self.closing() {
            self.ws_close(CloseCode::GOING_AWAY, "server stopping", CloseThen::CloseTcp);
            if self.writable {
                let _ = self.wq.write_to(&mut &*self.stream, &self.handle.shared.queued);
            }
        }
    }

    /// Drops everything queued (the connection is being removed).
    pub(crate) fn discard_output(&mut self) {
        self.release_direct();
        self.wq.clear(&self.handle.shared.queued);
        self.wq.forget(self.pipeline.clear(), &self.handle.shared.queued);
    }
}

/// A complete response of the reactor's own (errors, timeouts): always `Connection: close`.
pub(super) fn simple_response<D>(status: StatusCode, headers: &HeaderMap, body: &[u8], ctx: &Ctx<'_, D>) -> Bytes {
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
