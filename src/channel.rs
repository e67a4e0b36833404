//! The unified channel API (http-kit's `as-channel`): one handler, one set of callbacks, for
//! WebSocket clients and HTTP long-polling / streaming clients alike.
//!
//! ```no_run
//! use std::collections::HashSet;
//! use std::sync::{Arc, Mutex};
//! use httpkit::{as_channel, run_server, Channel, ChannelHandlers, Options, Request, Response};
//!
//! let channels: Arc<Mutex<HashSet<Channel>>> = Arc::default();
//! let (open, recv, close) = (channels.clone(), channels.clone(), channels.clone());
//! let handlers = ChannelHandlers::new()
//!     .on_open(move |ch| { open.lock().unwrap().insert(ch.clone()); })
//!     .on_receive(move |_ch, msg| {
//!         for ch in recv.lock().unwrap().iter() {
//!             ch.send(format!("broadcasting: {}", msg.to_text()));
//!         }
//!     })
//!     .on_close(move |ch, _status| { close.lock().unwrap().remove(ch); });
//! let app = move |req: Request| {
//!     if !req.is_websocket() {
//!         return Response::html("<h1>Main screen turn on.</h1>");
//!     }
//!     as_channel(&req, handlers.clone())
//! };
//! let server = run_server(app, Options::default().port(8080))?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::hash::{Hash, Hasher};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use httpkit_codec::h1::{BodyEncoder, BodyLength};
use httpkit_codec::ws::{encode_frame, encode_handshake_response, requested_protocols, CloseCode, OpCode};
use httpkit_reactor::{CloseReason, WsClose, WsEvent, WsUpgrade};

use crate::attachment::{attach, detach, ConnListener, Listener};
pub use crate::close_status::{CloseKind, CloseStatus};
use crate::date::with_date;
use crate::deflate::{send_on, FrameCache};
use crate::exchange::{next_id, Exchange, Orphan, RespState};
use crate::serial::{OnFault, Serial};
use crate::takeover::Takeover;
use crate::ws::{close_frame, read_body_whole, server_close_frame, CloseError, Message, SendError};
use crate::{Request, Response};

type OpenFn = Arc<dyn Fn(&Channel) + Send + Sync>;
type ReceiveFn = Arc<dyn Fn(&Channel, Message) + Send + Sync>;
type PingFn = Arc<dyn Fn(&Channel, Vec<u8>) + Send + Sync>;
type CloseFn = Arc<dyn Fn(&Channel, CloseStatus) + Send + Sync>;

/// The callbacks of [`as_channel`]. Callbacks of one channel run one at a time, in order, on
/// the worker pool; `on_close` runs after every `on_receive` already queued.
#[must_use = "a builder does nothing until it is used"]
#[derive(Clone, Default)]
pub struct ChannelHandlers(Arc<Callbacks>);

/// What [`ChannelHandlers`] holds, shared by every channel made with it (a channel keeps one
/// pointer, not a copy of each callback).
#[derive(Clone, Default)]
struct Callbacks {
    init: Option<OpenFn>,
    on_open: Option<OpenFn>,
    on_receive: Option<ReceiveFn>,
    on_ping: Option<PingFn>,
    on_close: Option<CloseFn>,
    protocols: Vec<String>,
}

impl fmt::Debug for ChannelHandlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelHandlers").field("protocols", &self.0.protocols).finish_non_exhaustive()
    }
}

impl ChannelHandlers {
    /// No callbacks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs first, on the handler's thread, before the handshake response is sent.
    pub fn init(mut self, f: impl Fn(&Channel) + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.0).init = Some(Arc::new(f));
        self
    }

    /// The channel is open: after the `101` for a WebSocket; at once (on the handler's thread)
    /// for HTTP.
    pub fn on_open(mut self, f: impl Fn(&Channel) + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.0).on_open = Some(Arc::new(f));
        self
    }

    /// A complete WebSocket message arrived.
    pub fn on_receive(mut self, f: impl Fn(&Channel, Message) + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.0).on_receive = Some(Arc::new(f));
        self
    }

    /// A ping arrived (the pong has already been sent).
    pub fn on_ping(mut self, f: impl Fn(&Channel, Vec<u8>) + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.0).on_ping = Some(Arc::new(f));
        self
    }

    /// The channel closed; runs exactly once.
    pub fn on_close(mut self, f: impl Fn(&Channel, CloseStatus) + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.0).on_close = Some(Arc::new(f));
        self
    }

    /// WebSocket subprotocols the server speaks, in its order of preference; the first one the
    /// client offers is chosen and sent in `Sec-WebSocket-Protocol`.
    pub fn subprotocols<I: IntoIterator<Item = S>, S: Into<String>>(mut self, p: I) -> Self {
        Arc::make_mut(&mut self.0).protocols = p.into_iter().map(Into::into).collect();
        self
    }
}

pub(crate) struct ChannelInner {
    id: u64,
    ex: Exchange,
    ws: bool,
    handlers: ChannelHandlers,
    close_fired: AtomicBool,
    /// The 101 was sent (a WebSocket's on_open only runs then).
    upgraded: AtomicBool,
    serial: Arc<Serial>,
    /// The subprotocol chosen: its index in the handlers' list.
    protocol: Option<u16>,
    /// permessage-deflate, when the handshake agreed to it.
    deflate: Option<Box<crate::deflate::WsDeflate>>,
    /// The client's address when it is not the connection's peer (a trusted proxy named it);
    /// `None`: the connection's peer (one pointer, not an address, per channel).
    remote_addr: Option<Box<Option<SocketAddr>>>,
    /// The groups this channel is in: it leaves them when it closes.
    groups: crate::group::Groups,
    /// What the long-poll timer holds of this channel (see `timeouts.rs`).
    timer_slot: std::sync::OnceLock<Arc<crate::timeouts::TimerSlot>>,
}

/// A connection seen through the unified API: a WebSocket, or an HTTP request answered later
/// (long-polling) or in pieces (streaming).
///
/// `Clone + Send + Sync + Eq + Hash`: keep channels in a `HashSet` shared by threads and send
/// from anywhere.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<ChannelInner>,
}

impl Channel {
    pub(crate) fn downgrade(&self) -> std::sync::Weak<ChannelInner> {
        Arc::downgrade(&self.inner)
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.inner.id)
            .field("websocket", &self.inner.ws)
            .field("open", &self.is_open())
            .finish()
    }
}

impl PartialEq for Channel {
    fn eq(&self, other: &Self) -> bool {
        self.inner.id == other.inner.id
    }
}
impl Eq for Channel {}
impl Hash for Channel {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.id.hash(state);
    }
}

/// Turns `req` into a channel served by `handlers`, and returns the response the handler must
/// return (it carries the channel).
///
/// For a WebSocket request the handshake is checked: an invalid one gets `400` (or `426` for a
/// wrong `Sec-WebSocket-Version`) and no channel is opened. For other requests the channel is
/// an HTTP response waiting to be sent with [`Channel::send`].
pub fn as_channel(req: &Request, handlers: ChannelHandlers) -> Response {
    let Some(ex) = req.exchange.clone() else {
        return Response::status_code(500);
    };
    let ws = req.is_websocket();
    let (accepted, protocol) = if ws {
        match ex
            .ws
            .as_ref()
            .map_or(Err(httpkit_codec::ws::HandshakeError::Upgrade.into()), |r| r.as_ref().map_err(|e| *e))
        {
            Ok(_) => {
                let offered = requested_protocols(req.headers());
                let protocol =
                    handlers.0.protocols.iter().position(|p| offered.contains(&p.as_str())).map(|i| i as u16);
                (true, protocol)
            }
            Err(e) => {
                let r =
                    Response::status_code(e.status()).header("content-type", "text/plain").with_body(e.description());
                return if e.status() == 426 { r.header("sec-websocket-version", "13") } else { r };
            }
        }
    } else {
        (false, None)
    };
    let conn = ex.conn.clone();
    let on_fault = if ws { OnFault::CloseWebSocket } else { OnFault::MarkClosed };
    let serial = Serial::new(ex.server.clone(), on_fault, ws.then(|| conn.clone()));
    let deflate = match (ex.ws_deflate.as_ref(), ex.server.ws_compression.as_ref()) {
        (Some(p), Some(c)) if accepted => Some(Box::new(crate::deflate::WsDeflate::new(p, c))),
        _ => None,
    };
    let ch = Channel {
        inner: Arc::new(ChannelInner {
            deflate,
            id: next_id(),
            remote_addr: (req.remote_addr() != conn.peer_addr()).then(|| Box::new(req.remote_addr())),
            ex,
            ws,
            handlers,
            close_fired: AtomicBool::new(false),
            upgraded: AtomicBool::new(false),
            serial,
            protocol,
            groups: Default::default(),
            timer_slot: std::sync::OnceLock::new(),
        }),
    };
    let weak = Arc::downgrade(&ch.inner);
    let orphan: std::sync::Weak<dyn Orphan> = weak;
    let _ = ch.inner.ex.state.channel.set(orphan);
    if ws {
        // Queued before the channel can hear a close, so on_open always comes first; it runs
        // once the 101 is on its way (see `start`).
        if let Some(f) = ch.inner.handlers.0.on_open.clone() {
            let c = ch.clone();
            // Only if the 101 really went out (not refused in `init`, not beaten by another
            // response, not a panicking handler).
            ch.inner.serial.push_quiet(move || {
                if c.inner.upgraded.load(Ordering::Acquire) {
                    f(&c)
                }
            });
        }
    }
    let attached = attach(&conn, ch.inner.id, Listener::Channel(ch.clone()));
    // An HTTP client that already hung up will never read this channel's answer.
    let gone = !ws && conn.peer_closed();
    if gone {
        detach(&conn, ch.inner.id);
        conn.abort();
    }
    if !attached || gone {
        // The client is already gone: no on_open, just the close.
        ch.inner.serial.clear();
        ch.inner.serial.open().store(false, Ordering::Release);
        let status = if ws {
            CloseStatus::new(CloseKind::Abnormal, Some(1006), "")
        } else {
            CloseStatus::new(CloseKind::ClientClose, None, "")
        };
        ch.fire_close(status);
        return Response::taken_over(Box::new(ch));
    }
    if let Some(init) = &ch.inner.handlers.0.init {
        init(&ch);
    }
    if !ws {
        if let Some((after, status)) = ch.inner.ex.server.long_poll_timeout {
            let at = std::time::Instant::now() + after;
            let slot = Arc::new(crate::timeouts::TimerSlot(Arc::downgrade(&ch.inner)));
            let _ = ch.inner.timer_slot.set(slot.clone());
            ch.inner.ex.server.long_poll_timer.schedule(at, Arc::downgrade(&slot), status);
        }
        if let Some(f) = ch.inner.handlers.0.on_open.clone() {
            let c = ch.clone();
            if let Err(panic) = ch.inner.serial.run_inline(move || f(&c)) {
                // on_open runs inside the handler for HTTP: its panic is the handler's (500,
                // logged once), and the channel then closes with the exchange.
                std::panic::resume_unwind(panic);
            }
        }
    }
    Response::taken_over(Box::new(ch))
}

impl Channel {
    /// A number unique to this channel for the life of the process.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Whether the channel is open (sends are possible).
    pub fn is_open(&self) -> bool {
        self.inner.serial.open().load(Ordering::Acquire) && !self.inner.ex.conn.is_closed()
    }

    /// Whether the client asked for a WebSocket.
    pub fn is_websocket(&self) -> bool {
        self.inner.ws
    }

    /// The client's address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        match &self.inner.remote_addr {
            Some(other) => **other,
            None => self.inner.ex.conn.peer_addr(),
        }
    }

    /// The negotiated WebSocket subprotocol.
    pub fn subprotocol(&self) -> Option<&str> {
        self.inner.protocol.and_then(|i| self.inner.handlers.0.protocols.get(usize::from(i))).map(String::as_str)
    }

    /// Sends `msg`; `true` if it was queued, `false` if the channel is closed or its write
    /// buffer is full (see [`Channel::try_send`] to tell which and get the message back).
    ///
    /// On a WebSocket, callbacks wait while the write buffer is over its limit (the client reads
    /// slower than it is sent to), without holding a worker; so one send per callback (an echo)
    /// is never refused. A full buffer means more was sent than it holds: several large
    /// messages from one callback, or sends from other threads (a broadcast) to a slow client.
    ///
    /// On a WebSocket the channel stays open. On HTTP this is a complete response (status,
    /// headers and body if `msg` is a [`Response`], a `200` body otherwise) and the channel
    /// closes, as in http-kit; use [`Channel::send_with`] to stream.
    pub fn send(&self, msg: impl Into<Message>) -> bool {
        self.try_send(msg, !self.inner.ws).is_ok()
    }

    /// Sends `msg`, closing the channel after it if `close_after_send`. On HTTP, the first send
    /// without close starts a chunked response (close-delimited on HTTP/1.0) and each later send
    /// is a piece of it; a send with close ends it.
    pub fn send_with(&self, msg: impl Into<Message>, close_after_send: bool) -> bool {
        self.try_send(msg, close_after_send).is_ok()
    }

    /// Like [`Channel::send_with`], returning the message when it cannot be sent.
    ///
    /// # Errors
    /// [`SendError::Closed`] if the channel is closed, [`SendError::Full`] if the connection's
    /// write buffer is over its limit (the client is slow).
    pub fn try_send(&self, msg: impl Into<Message>, close_after_send: bool) -> Result<(), SendError<Message>> {
        let msg = msg.into();
        if !self.is_open() {
            return Err(SendError::Closed(msg));
        }
        if self.inner.ex.conn.queued_bytes() > self.inner.ex.server.write_high_water {
            return Err(SendError::Full(msg));
        }
        if self.inner.ws {
            self.ws_send(msg, close_after_send)
        } else {
            self.http_send(msg, close_after_send)
        }
    }

    fn ws_send(&self, msg: Message, close: bool) -> Result<(), SendError<Message>> {
        // Before the handshake (e.g. from `init`) there is no WebSocket to send on yet. The
        // channel's own callbacks run only once the 101 is on its way (a message may even be
        // delivered before the flag is set, which follows the upgrade's command).
        let here = self.inner.serial.is_running_here();
        if !self.inner.upgraded.load(Ordering::Acquire) && !here {
            return Err(SendError::Closed(msg));
        }
        let msg = read_body_whole(msg).map_err(SendError::Body)?;
        if !send_on(&self.inner.ex.conn, self.inner.deflate.as_deref(), &msg, here) {
            return Err(SendError::Closed(msg));
        }
        if close {
            self.close_ws(CloseCode::NORMAL, "");
        }
        Ok(())
    }

    fn http_send(&self, mut msg: Message, close: bool) -> Result<(), SendError<Message>> {
        let ex = &self.inner.ex;
        let mut st = ex.lock();
        let unread = matches!(&msg, Message::Response(r) if r.body.as_bytes().is_none());
        if unread && !(close && *st == RespState::Idle) {
            // The body becomes one chunk: read it without holding the exchange (the reactor
            // takes that lock), then look at the state again.
            drop(st);
            msg = read_body_whole(msg).map_err(SendError::Body)?;
            st = ex.lock();
        }
        match *st {
            RespState::Done => {
                drop(st);
                Err(SendError::Closed(msg))
            }
            RespState::Idle => {
                let mut resp = match msg {
                    Message::Response(r) => *r,
                    Message::Text(s) => Response::ok(s),
                    Message::Binary(b) => Response::ok(b),
                };
                if resp.headers.is_empty() {
                    resp.headers
                        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
                }
                let streamable = resp.invalid.is_none() && resp.body.as_bytes().is_some();
                if close || !streamable {
                    *st = RespState::Done;
                    drop(st);
                    ex.write_response(resp);
                    self.closed_by_server();
                    return Ok(());
                }
                let first = Bytes::copy_from_slice(resp.body.as_bytes().unwrap_or(&[]));
                let Some((enc, close_at_end)) = ex.start(resp.status, &resp.headers, BodyLength::Streamed) else {
                    *st = RespState::Done;
                    drop(st);
                    self.closed_by_server();
                    return Err(SendError::Closed(Message::Response(Box::default())));
                };
                if enc == BodyEncoder::None {
                    // HEAD, 204, 304: nothing can follow.
                    *st = RespState::Done;
                    ex.finish(enc, close_at_end);
                    drop(st);
                    self.closed_by_server();
                    return Ok(());
                }
                *st = RespState::Streaming { enc, close: close_at_end };
                if !first.is_empty() {
                    ex.write_piece(enc, first);
                }
                Ok(())
            }
            RespState::Streaming { enc, close: close_at_end } => {
                let data = match &msg {
                    Message::Text(s) => Bytes::copy_from_slice(s.as_bytes()),
                    Message::Binary(b) => b.clone(),
                    Message::Response(r) => Bytes::copy_from_slice(r.body.as_bytes().unwrap_or(&[])),
                };
                if !data.is_empty() && !ex.write_piece(enc, data) {
                    return Err(SendError::Closed(msg));
                }
                if close {
                    *st = RespState::Done;
                    ex.finish(enc, close_at_end);
                    drop(st);
                    self.closed_by_server();
                }
                Ok(())
            }
        }
    }

    /// Closes the channel: a WebSocket gets close 1000; an HTTP response is ended (an empty
    /// `200` if nothing was sent yet). Returns `true` the first time.
    pub fn close(&self) -> bool {
        if self.inner.ws {
            return self.close_ws(CloseCode::NORMAL, "");
        }
        let ex = &self.inner.ex;
        match ex.claim() {
            RespState::Done => return false,
            RespState::Idle => {
                let mut h = HeaderMap::new();
                h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
                ex.write_simple(StatusCode::OK, &h, Bytes::new());
            }
            RespState::Streaming { enc, close } => {
                ex.finish(enc, close);
            }
        }
        self.closed_by_server()
    }

    /// Closes a WebSocket with `code` and `reason` (see [`CloseCode`] for the named codes).
    /// The close handshake completes, then the TCP connection closes. `Ok(true)` the first time,
    /// `Ok(false)` when it was closed already. On an HTTP channel this is [`Channel::close`].
    ///
    /// # Errors
    /// A code that may not be sent (only 1000–1003, 1007–1014 and 3000–4999 may) or a reason
    /// over 123 bytes: nothing is sent and the channel stays open.
    pub fn close_with(&self, code: u16, reason: &str) -> Result<bool, CloseError> {
        if !self.inner.ws {
            return Ok(self.close());
        }
        let (frame, info) = close_frame(code, reason)?;
        Ok(self.send_close(frame, info))
    }

    /// A close of the server's own choosing (a valid code).
    fn close_ws(&self, code: CloseCode, reason: &'static str) -> bool {
        let (frame, info) = server_close_frame(code, reason);
        self.send_close(frame, info)
    }

    fn send_close(&self, frame: Bytes, info: WsClose) -> bool {
        if !self.inner.serial.open().swap(false, Ordering::AcqRel) {
            return false;
        }
        let status = CloseStatus::new(CloseKind::ServerClose, Some(info.code), info.reason.clone());
        self.inner.ex.conn.send_frame(frame, Bytes::new(), Some(info));
        self.fire_close(status);
        true
    }

    /// Sends a WebSocket ping. `false` on HTTP channels or when closed.
    pub fn ping(&self, data: &[u8]) -> bool {
        if !self.inner.ws || !self.is_open() {
            return false;
        }
        let mut out = Vec::new();
        encode_frame(OpCode::Ping, true, data, &mut out);
        self.inner.ex.conn.send_frame(Bytes::from(out), Bytes::new(), None)
    }

    fn closed_by_server(&self) -> bool {
        if !self.inner.serial.open().swap(false, Ordering::AcqRel) {
            return false;
        }
        // The exchange is over: a later request on this keep-alive connection is not ours.
        detach(&self.inner.ex.conn, self.inner.id);
        self.fire_close(CloseStatus::new(CloseKind::ServerClose, None, ""));
        true
    }

    fn fire_close(&self, status: CloseStatus) {
        {
            // Marked under the groups' lock: a group joining now either is on the list taken
            // here, or sees the mark (see `remember_group`).
            let mut groups = self.inner.groups.lock().unwrap_or_else(|e| e.into_inner());
            if self.inner.close_fired.swap(true, Ordering::AcqRel) {
                return;
            }
            for g in std::mem::take(&mut *groups) {
                if let Some(g) = g.upgrade() {
                    g.remove(self.inner.id);
                }
            }
        }
        if let Some(f) = self.inner.handlers.0.on_close.clone() {
            let ch = self.clone();
            self.inner.serial.push(move || f(&ch, status));
        }
    }

    /// A held HTTP channel's time is up (`Options::long_poll_timeout`): if nothing was sent on
    /// it yet, it is answered with `status` and closed.
    pub(crate) fn time_out(&self, status: u16) {
        if self.inner.ws || !self.is_open() {
            return;
        }
        let ex = &self.inner.ex;
        if !ex.claim_idle() {
            // Answered (or streaming) already.
            return;
        }
        ex.write_response(Response::status_code(status));
        self.closed_by_server();
    }

    /// Notes that `group` holds this channel; `false` if the channel has closed already (the
    /// group must drop it itself).
    pub(crate) fn remember_group(&self, group: std::sync::Weak<crate::group::GroupShared>) -> bool {
        let mut groups = self.inner.groups.lock().unwrap_or_else(|e| e.into_inner());
        if self.inner.close_fired.load(Ordering::Acquire) {
            return false;
        }
        groups.retain(|g| g.strong_count() > 0);
        // Joined, left and joined again: one entry per group.
        if !groups.iter().any(|g| g.ptr_eq(&group)) {
            groups.push(group);
        }
        true
    }

    /// Whether the connection's write buffer is over its limit (a send would be refused).
    pub(crate) fn is_full(&self) -> bool {
        self.inner.ex.conn.queued_bytes() > self.inner.ex.server.write_high_water
    }

    /// Sends a broadcast's message, its frame shared with the other members of the same wire
    /// form (see [`FrameCache`]); `None` before the handshake.
    pub(crate) fn send_broadcast(&self, msg: &Message, cache: &mut FrameCache) -> Option<bool> {
        if !self.inner.upgraded.load(Ordering::Acquire) {
            return None;
        }
        let conn = &self.inner.ex.conn;
        let z = self.inner.deflate.as_deref();
        // Queued, not written here: a system call per member would make the broadcast slow.
        Some(match cache.frame(z, msg) {
            Some((head, payload)) => conn.queue_frame(head, payload),
            None => send_on(conn, z, msg, false),
        })
    }

    /// Called by the server after the `101` is queued or for an HTTP channel body.
    pub(crate) fn start(&self, extra: &HeaderMap) {
        let ex = &self.inner.ex;
        if !self.inner.ws {
            return;
        }
        if !ex.claim_idle() {
            return;
        }
        if !self.inner.serial.open().load(Ordering::Acquire) {
            // Closed before the handshake (e.g. refused in `init`): no WebSocket.
            ex.write_error(403, "Forbidden");
            detach(&ex.conn, self.inner.id);
            return;
        }
        // The handshake's accept key, kept by the exchange (checked valid in `as_channel`).
        let Some(Ok(accept)) = &ex.ws else {
            return;
        };
        let mut head = Vec::with_capacity(256);
        let extensions = self.inner.deflate.as_ref().and(ex.ws_deflate).map(|p| p.response_header());
        with_date(|d| {
            encode_handshake_response(accept.as_str(), self.subprotocol(), extensions.as_deref(), extra, d, &mut head)
        });
        self.inner.ex.count_status(StatusCode::SWITCHING_PROTOCOLS);
        let deflate = self.inner.deflate.as_ref().and(ex.ws_deflate);
        ex.conn.upgrade(
            ex.seq,
            Bytes::from(head),
            WsUpgrade { max_message: ex.server.max_ws, auto_pong: true, deflate },
        );
        // Only now may frames be sent (a broadcast from another thread among them): they reach
        // the reactor after the 101's command, so they follow it instead of being dropped.
        self.inner.upgraded.store(true, Ordering::Release);
        // on_open was queued by `as_channel`; it runs now that the 101 is on its way.
        self.inner.serial.kick();
    }
}

impl Channel {
    pub(crate) fn from_inner(inner: Arc<ChannelInner>) -> Self {
        Self { inner }
    }

    /// Another response answered this channel's exchange: the channel is over.
    pub(crate) fn end_exchange(&self) {
        self.closed_by_server();
    }
}

impl ConnListener for Channel {
    fn is_websocket(&self) -> bool {
        self.inner.ws
    }

    fn on_ws_event(&self, ev: WsEvent) {
        if self.inner.close_fired.load(Ordering::Acquire) {
            // After our close: on_close has been queued, nothing may follow it.
            return;
        }
        match ev {
            WsEvent::Text(s) => self.deliver(Message::Text(s)),
            WsEvent::Binary(b) => self.deliver(Message::Binary(b.into())),
            WsEvent::Ping(p) => {
                if let Some(f) = self.inner.handlers.0.on_ping.clone() {
                    let ch = self.clone();
                    self.inner.serial.push(move || f(&ch, p));
                }
            }
            WsEvent::Pong(_) | WsEvent::Close(_) => {}
        }
    }

    fn on_ws_fail(&self, code: u16, reason: &'static str) -> bool {
        // Behind the callbacks of the messages before the bad frame, so their echoes go first;
        // the close is then reported as the failure it is (by the reactor's close).
        let ch = self.clone();
        self.inner.serial.push(move || {
            if ch.inner.serial.open().swap(false, Ordering::AcqRel) {
                let (frame, info) = crate::ws::server_close_frame(CloseCode(code), reason);
                ch.inner.ex.conn.send_frame(frame, Bytes::new(), Some(info));
            }
        });
        true
    }

    fn on_drained(&self) {
        self.inner.serial.kick();
    }

    fn on_peer_eof(&self) {
        if !self.inner.ws && *self.inner.ex.lock() == RespState::Done {
            // This exchange is already answered; the EOF concerns a later one.
            return;
        }
        if !self.inner.ws && self.inner.serial.open().swap(false, Ordering::AcqRel) {
            // The long-poll client is gone: end the exchange and the connection.
            *self.inner.ex.lock() = RespState::Done;
            self.inner.ex.conn.abort();
            self.fire_close(CloseStatus::new(CloseKind::ClientClose, None, ""));
        }
    }

    fn on_stop_deadline(&self) {
        if self.inner.ws {
            // WebSockets were sent 1001 when the stop began.
            return;
        }
        // An HTTP channel still answering when the stop's time is up ends properly: a stream
        // with its final chunk, a waiting long-poll with a 503; the connection then closes.
        let ex = &self.inner.ex;
        match ex.claim() {
            RespState::Done => return,
            RespState::Idle => {
                ex.write_error(503, "Server is stopping");
            }
            RespState::Streaming { enc, .. } => {
                ex.finish(enc, true);
            }
        }
        self.inner.serial.open().store(false, Ordering::Release);
        self.fire_close(CloseStatus::new(CloseKind::ServerStop, None, "server stopping"));
    }

    fn on_closed(&self, reason: CloseReason) {
        self.inner.serial.open().store(false, Ordering::Release);
        let status = if self.inner.ws {
            CloseStatus::from_ws(&reason)
        } else if reason == CloseReason::ServerStop {
            CloseStatus::new(CloseKind::ServerStop, None, "server stopping")
        } else {
            CloseStatus::new(CloseKind::ClientClose, None, "")
        };
        self.fire_close(status);
        // A queue parked for a slow reader must run what it holds (on_close among it): the
        // connection is gone, so nothing waits for room any more.
        self.inner.serial.kick();
    }
}

impl Channel {
    fn deliver(&self, msg: Message) {
        if let Some(f) = self.inner.handlers.0.on_receive.clone() {
            let ch = self.clone();
            let bytes = msg.as_bytes().len();
            self.inner.serial.push_weighted(bytes, move || f(&ch, msg));
        }
    }
}

impl Takeover for Channel {
    fn take_over(self: Box<Self>, _ex: &Exchange, headers: &HeaderMap) {
        // The channel holds its exchange already (it was made from the request).
        self.start(headers);
    }

    fn kind(&self) -> &'static str {
        "channel"
    }
}

impl Orphan for ChannelInner {
    fn end_exchange(self: Arc<Self>) {
        Channel::from_inner(self).end_exchange();
    }
}
