//! The Ring-style WebSocket API (Ring's `ring.websocket`): a handler returns a response that
//! carries a [`WebSocketListener`]; the server upgrades the connection and calls the listener
//! with a [`Socket`]. It runs on the same machinery as the channel API.
//!
//! ```no_run
//! use std::collections::HashSet;
//! use std::sync::{Arc, Mutex};
//! use httpkit::{run_server, websocket_response, WsListener, Options, Request, Response, Socket};
//!
//! let sockets: Arc<Mutex<HashSet<Socket>>> = Arc::default();
//! let (a, b, c) = (sockets.clone(), sockets.clone(), sockets.clone());
//! let app = move |req: Request| {
//!     if !req.is_websocket() {
//!         return Response::html("<h1>Main screen turn on.</h1>");
//!     }
//!     let (a, b, c) = (a.clone(), b.clone(), c.clone());
//!     websocket_response(
//!         WsListener::new()
//!             .on_open(move |s| { a.lock().unwrap().insert(s.clone()); })
//!             .on_message(move |_s, msg| {
//!                 for s in b.lock().unwrap().iter() {
//!                     let _ = s.send(format!("broadcasting: {}", msg.to_text()));
//!                 }
//!             })
//!             .on_close(move |s, _code, _reason| { c.lock().unwrap().remove(s); }),
//!     )
//! };
//! let server = run_server(app, Options::default().port(8080))?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::HeaderMap;
use httpkit_codec::ws::{encode_frame, encode_handshake_response, CloseCode, OpCode};
use httpkit_reactor::{CloseReason, WsClose, WsEvent, WsUpgrade};

use crate::attachment::{attach, ConnHandle, ConnListener, Listener};
use crate::date::with_date;
use crate::deflate::{send_message, send_on};
use crate::exchange::{next_id, Exchange};
use crate::serial::{OnFault, Serial};
use crate::takeover::Takeover;
use crate::ws::{close_frame, read_body_whole, Message, SendError};
use crate::Response;

/// Receives the events of one WebSocket (Ring's listener protocol). Every method has a default.
/// Pings are answered with a pong, as the Ring spec says: by the server itself, at once and
/// whatever the write buffer holds, unless [`WebSocketListener::pongs_itself`] says the
/// listener's `on_ping` does it.
///
/// Methods of one socket run one at a time and in order on the worker pool. While the socket's
/// write buffer is above its limit (`Options::write_buffer`: the client reads slower than it is
/// sent to), they wait until it drains, without holding a worker; so a callback that sends one
/// message at a time is never refused for lack of room.
pub trait WebSocketListener: Send + Sync + 'static {
    /// The handshake is done; the socket is open.
    fn on_open(&self, _socket: &Socket) {}
    /// A complete message arrived.
    fn on_message(&self, _socket: &Socket, _message: Message) {}
    /// A ping arrived (already answered, unless [`WebSocketListener::pongs_itself`]).
    fn on_ping(&self, _socket: &Socket, _data: Vec<u8>) {}
    /// Whether `on_ping` sends the pongs itself ([`Socket::pong`]). Default `false`: the server
    /// answers every ping at once (only the latest, when several wait to be written).
    fn pongs_itself(&self) -> bool {
        false
    }
    /// A pong arrived.
    fn on_pong(&self, _socket: &Socket, _data: Vec<u8>) {}
    /// The socket closed, with the close code and reason (1006 and an empty reason when the
    /// connection dropped without a close frame; 1001 when the server stops).
    fn on_close(&self, _socket: &Socket, _code: u16, _reason: &str) {}
    /// Called before `on_close` when the socket closes on a failure: the peer broke the protocol
    /// (1002, 1007, 1009), a callback panicked (the socket closes with 1011), or the pool could
    /// not run the callbacks (1013).
    fn on_error(&self, _socket: &Socket, _error: &io::Error) {}
}

type SockFn = Arc<dyn Fn(&Socket) + Send + Sync>;
type MsgFn = Arc<dyn Fn(&Socket, Message) + Send + Sync>;
type DataFn = Arc<dyn Fn(&Socket, Vec<u8>) + Send + Sync>;
type CloseFn = Arc<dyn Fn(&Socket, u16, &str) + Send + Sync>;
type ErrFn = Arc<dyn Fn(&Socket, &io::Error) + Send + Sync>;

/// A [`WebSocketListener`] built from closures (the analogue of Ring's listener map).
/// Without `on_ping`, pings are answered automatically.
#[must_use = "a builder does nothing until it is used"]
#[derive(Clone, Default)]
pub struct WsListener {
    on_open: Option<SockFn>,
    on_message: Option<MsgFn>,
    on_ping: Option<DataFn>,
    on_pong: Option<DataFn>,
    on_close: Option<CloseFn>,
    on_error: Option<ErrFn>,
}

impl fmt::Debug for WsListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsListener").finish_non_exhaustive()
    }
}

impl WsListener {
    /// A listener that does nothing (and answers pings).
    pub fn new() -> Self {
        Self::default()
    }
    /// See [`WebSocketListener::on_open`].
    pub fn on_open(mut self, f: impl Fn(&Socket) + Send + Sync + 'static) -> Self {
        self.on_open = Some(Arc::new(f));
        self
    }
    /// See [`WebSocketListener::on_message`].
    pub fn on_message(mut self, f: impl Fn(&Socket, Message) + Send + Sync + 'static) -> Self {
        self.on_message = Some(Arc::new(f));
        self
    }
    /// See [`WebSocketListener::on_ping`]: with this set, no pong is sent for you.
    pub fn on_ping(mut self, f: impl Fn(&Socket, Vec<u8>) + Send + Sync + 'static) -> Self {
        self.on_ping = Some(Arc::new(f));
        self
    }
    /// See [`WebSocketListener::on_pong`].
    pub fn on_pong(mut self, f: impl Fn(&Socket, Vec<u8>) + Send + Sync + 'static) -> Self {
        self.on_pong = Some(Arc::new(f));
        self
    }
    /// See [`WebSocketListener::on_close`].
    pub fn on_close(mut self, f: impl Fn(&Socket, u16, &str) + Send + Sync + 'static) -> Self {
        self.on_close = Some(Arc::new(f));
        self
    }
    /// See [`WebSocketListener::on_error`].
    pub fn on_error(mut self, f: impl Fn(&Socket, &io::Error) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Arc::new(f));
        self
    }
}

impl WebSocketListener for WsListener {
    fn on_open(&self, s: &Socket) {
        if let Some(f) = &self.on_open {
            f(s);
        }
    }
    fn on_message(&self, s: &Socket, m: Message) {
        if let Some(f) = &self.on_message {
            f(s, m);
        }
    }
    fn on_ping(&self, s: &Socket, d: Vec<u8>) {
        if let Some(f) = &self.on_ping {
            f(s, d);
        }
    }
    fn pongs_itself(&self) -> bool {
        self.on_ping.is_some()
    }
    fn on_pong(&self, s: &Socket, d: Vec<u8>) {
        if let Some(f) = &self.on_pong {
            f(s, d);
        }
    }
    fn on_close(&self, s: &Socket, code: u16, reason: &str) {
        if let Some(f) = &self.on_close {
            f(s, code, reason);
        }
    }
    fn on_error(&self, s: &Socket, e: &io::Error) {
        if let Some(f) = &self.on_error {
            f(s, e);
        }
    }
}

/// The body of a response that upgrades to a WebSocket.
pub(crate) struct Upgrade {
    listener: Arc<dyn WebSocketListener>,
    protocol: Option<String>,
}

/// A response that upgrades the request to a WebSocket served by `listener` (the analogue of
/// `{::ws/listener …}`). Answered to a request that is not a WebSocket upgrade, it is a `400`
/// with the text `expected a WebSocket upgrade`; to an invalid handshake, `400` (or `426` for a
/// wrong version) with the reason.
pub fn websocket_response(listener: impl WebSocketListener) -> Response {
    let up = Upgrade { listener: Arc::new(listener), protocol: None };
    Response::taken_over(Box::new(up))
}

impl Response {
    /// Sets the WebSocket subprotocol (`Sec-WebSocket-Protocol`) of a
    /// [`websocket_response`] — the analogue of `::ws/protocol`. Pick it from
    /// [`Request::websocket_protocols`](crate::Request::websocket_protocols).
    pub fn with_protocol(mut self, protocol: impl Into<String>) -> Self {
        if let Some(t) = &mut self.takeover {
            t.set_protocol(protocol.into());
        }
        self
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

type Callbacks = (Box<dyn FnOnce() + Send>, Box<dyn FnOnce(io::Error) + Send>);

pub(crate) struct SocketInner {
    id: u64,
    high_water: usize,
    conn: ConnHandle,
    close_fired: AtomicBool,
    serial: Arc<Serial>,
    listener: Arc<dyn WebSocketListener>,
    protocol: Option<String>,
    pending: Mutex<HashMap<u64, Callbacks>>,
    /// permessage-deflate, when the handshake agreed to it.
    deflate: Option<Box<crate::deflate::WsDeflate>>,
}

/// One open WebSocket of the Ring-style API. `Clone + Send + Sync + Eq + Hash`.
#[derive(Clone)]
pub struct Socket {
    inner: Arc<SocketInner>,
}

impl Socket {
    pub(crate) fn downgrade(&self) -> std::sync::Weak<SocketInner> {
        Arc::downgrade(&self.inner)
    }

    pub(crate) fn from_inner(inner: Arc<SocketInner>) -> Self {
        Self { inner }
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket").field("id", &self.inner.id).field("open", &self.is_open()).finish()
    }
}
impl PartialEq for Socket {
    fn eq(&self, o: &Self) -> bool {
        self.inner.id == o.inner.id
    }
}
impl Eq for Socket {}
impl Hash for Socket {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.inner.id.hash(h);
    }
}

fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "websocket is closed")
}

impl Socket {
    /// Whether the socket is open.
    pub fn is_open(&self) -> bool {
        self.inner.serial.open().load(Ordering::Acquire) && !self.inner.conn.is_closed()
    }

    /// The negotiated subprotocol.
    pub fn subprotocol(&self) -> Option<&str> {
        self.inner.protocol.as_deref()
    }

    /// Queues a text (`&str`, `String`) or binary (`Vec<u8>`, `Bytes`) message, or a
    /// [`Response`] whose body (bytes, or a file, reader or stream read whole) is sent as one
    /// message (text or binary by the rule of [`Message`]). The same as the channel API's
    /// [`Channel::try_send`](crate::Channel::try_send), errors included.
    ///
    /// # Errors
    /// [`SendError::Closed`] when the socket is closed; [`SendError::Full`] when its write
    /// buffer is over the limit (the client is slow); [`SendError::Body`] when a body failed
    /// while it was read. The message comes back (it converts into an `io::Error` for `?`).
    ///
    /// Callbacks wait while the buffer is over its limit, so one send per callback (an echo) is
    /// never refused. `Full` means more was sent than the buffer holds: several large messages
    /// from one callback, or sends from other threads that do not wait for the client (a
    /// broadcast); the message was not sent, and [`Socket::send_async`] tells when one has left.
    pub fn send(&self, msg: impl Into<Message>) -> Result<(), SendError<Message>> {
        let msg = self.check_writable(msg.into())?;
        let msg = read_body_whole(msg).map_err(SendError::Body)?;
        let here = self.inner.serial.is_running_here();
        if send_on(&self.inner.conn, self.inner.deflate.as_deref(), &msg, here) {
            Ok(())
        } else {
            Err(SendError::Closed(msg))
        }
    }

    fn check_writable(&self, msg: Message) -> Result<Message, SendError<Message>> {
        if !self.is_open() {
            return Err(SendError::Closed(msg));
        }
        if self.inner.conn.queued_bytes() > self.inner.high_water {
            return Err(SendError::Full(msg));
        }
        Ok(msg)
    }

    /// Sends `msg` and calls `on_success` once it has been written to the socket, or
    /// `on_failure` if it cannot be (closed before or before the bytes left). Exactly one of
    /// them runs, on the worker pool, in order with the socket's other callbacks.
    pub fn send_async(
        &self,
        msg: impl Into<Message>,
        on_success: impl FnOnce() + Send + 'static,
        on_failure: impl FnOnce(io::Error) + Send + 'static,
    ) {
        let checked = self.check_writable(msg.into()).map_err(io::Error::from);
        let msg = match checked.and_then(read_body_whole) {
            Ok(m) => m,
            Err(e) => {
                self.inner.serial.push(move || on_failure(e));
                return;
            }
        };
        let token = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token, (Box::new(on_success), Box::new(on_failure)));
        let conn = &self.inner.conn;
        if !send_message(self.inner.deflate.as_deref(), &msg, |head, payload| {
            conn.send_frame_acked(head, payload, token)
        }) {
            self.fail_pending();
        } else if self.inner.conn.is_closed() {
            // Closed while we queued: the reactor will never report it.
            self.fail_pending();
        }
    }

    /// Sends a ping. Control frames are never refused for lack of room.
    ///
    /// # Errors
    /// `NotConnected` when closed; `InvalidInput` for a payload over 125 bytes.
    pub fn ping(&self, data: &[u8]) -> io::Result<()> {
        self.check_control(data)?;
        let mut out = Vec::with_capacity(data.len() + 2);
        encode_frame(OpCode::Ping, true, data, &mut out);
        if self.inner.conn.send_frame(Bytes::from(out), Bytes::new(), None) {
            Ok(())
        } else {
            Err(closed_error())
        }
    }

    /// Sends a pong. Never refused for lack of room; at most one pong waits to be written (a
    /// newer one replaces the payload of one not yet sent).
    ///
    /// # Errors
    /// `NotConnected` when closed; `InvalidInput` for a payload over 125 bytes.
    pub fn pong(&self, data: &[u8]) -> io::Result<()> {
        self.check_control(data)?;
        if self.inner.conn.send_pong(data) {
            Ok(())
        } else {
            Err(closed_error())
        }
    }

    fn check_control(&self, data: &[u8]) -> io::Result<()> {
        if !self.is_open() {
            return Err(closed_error());
        }
        if data.len() > 125 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "control frame payload over 125 bytes"));
        }
        Ok(())
    }

    /// Closes with `code` (1000–4999 except 1004–1006, 1015) and `reason` (≤ 123 bytes); the
    /// close handshake completes and then the TCP connection closes.
    ///
    /// # Errors
    /// `InvalidInput` for a code that may not be sent; `NotConnected` when already closed.
    pub fn close(&self, code: u16, reason: &str) -> io::Result<()> {
        let (frame, info) = close_frame(code, reason)?;
        if !self.inner.serial.open().swap(false, Ordering::AcqRel) {
            return Err(closed_error());
        }
        self.inner.conn.send_frame(frame, Bytes::new(), Some(info));
        Ok(())
    }

    fn fail_pending(&self) {
        let all: Vec<Callbacks> =
            self.inner.pending.lock().unwrap_or_else(|e| e.into_inner()).drain().map(|(_, v)| v).collect();
        for (_, fail) in all {
            self.inner.serial.push(move || fail(closed_error()));
        }
    }

    fn push(&self, f: impl FnOnce(&Arc<dyn WebSocketListener>, &Socket) + Send + 'static) {
        self.push_weighted(0, f);
    }

    fn push_weighted(&self, bytes: usize, f: impl FnOnce(&Arc<dyn WebSocketListener>, &Socket) + Send + 'static) {
        let s = self.clone();
        self.inner.serial.push_weighted(bytes, move || f(&s.inner.listener, &s));
    }
}

impl ConnListener for Socket {
    fn is_websocket(&self) -> bool {
        true
    }

    fn on_ws_event(&self, ev: WsEvent) {
        match ev {
            WsEvent::Text(t) => self.push_weighted(t.len(), move |l, s| l.on_message(s, Message::Text(t))),
            WsEvent::Binary(b) => self.push_weighted(b.len(), move |l, s| l.on_message(s, Message::Binary(b.into()))),
            WsEvent::Ping(p) => self.push(move |l, s| l.on_ping(s, p)),
            WsEvent::Pong(p) => self.push(move |l, s| l.on_pong(s, p)),
            WsEvent::Close(_) => {}
        }
    }

    fn on_peer_eof(&self) {}

    fn on_drained(&self) {
        self.inner.serial.kick();
    }

    fn on_ws_fail(&self, code: u16, reason: &'static str) -> bool {
        // Behind the callbacks of the messages before the bad frame (their sends go first).
        let s = self.clone();
        self.inner.serial.push(move || {
            if s.inner.serial.open().swap(false, Ordering::AcqRel) {
                let (frame, info) = crate::ws::server_close_frame(CloseCode(code), reason);
                s.inner.conn.send_frame(frame, Bytes::new(), Some(info));
            }
        });
        true
    }

    fn on_frame_written(&self, token: u64) {
        let cb = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&token);
        if let Some((ok, _)) = cb {
            self.inner.serial.push(ok);
        }
    }

    fn on_closed(&self, reason: CloseReason) {
        self.inner.serial.open().store(false, Ordering::Release);
        self.fail_pending();
        if self.inner.close_fired.swap(true, Ordering::AcqRel) {
            return;
        }
        let (code, text, error) = match reason {
            CloseReason::ServerStop => (CloseCode::GOING_AWAY.as_u16(), "server stopping".to_owned(), None),
            CloseReason::WebSocket(WsClose { code, reason, by_peer }) => {
                // Our close for a protocol error, an oversized message, a panicking callback
                // (1011) or a pool that refused the callbacks (1013) is reported as an error too.
                let kind = match code {
                    1002 | 1007 | 1009 => Some(io::ErrorKind::InvalidData),
                    1011 | 1013 => Some(io::ErrorKind::Other),
                    _ => None,
                };
                let err = kind.filter(|_| !by_peer).map(|k| (k, reason.clone()));
                (code, reason, err)
            }
            // A peer silent past its heartbeat, or too slow to read: as the channel API says.
            CloseReason::Timeout => (1006, "timeout".to_owned(), None),
            _ => (1006, String::new(), None),
        };
        // Two callbacks, so a panicking on_error cannot swallow on_close.
        if let Some((kind, e)) = error {
            self.push(move |l, s| l.on_error(s, &io::Error::new(kind, e)));
        }
        self.push(move |l, s| l.on_close(s, code, &text));
    }
}

/// Upgrades the exchange for a Ring-style listener (called with the handler's response).
pub(crate) fn start(ex: &Exchange, up: &Upgrade, extra: &HeaderMap) {
    if !ex.claim_idle() {
        return;
    }
    let accept = match &ex.ws {
        None => {
            ex.write_error(400, "expected a WebSocket upgrade");
            return;
        }
        Some(Err(e)) => {
            ex.write_error(e.status(), e.description());
            return;
        }
        Some(Ok(accept)) => *accept,
    };
    let conn = ex.conn.clone();
    let deflate = ex.ws_deflate;
    let socket = Socket {
        inner: Arc::new(SocketInner {
            id: next_id(),
            high_water: ex.server.write_high_water,
            conn: conn.clone(),
            close_fired: AtomicBool::new(false),
            serial: Serial::new(ex.server.clone(), OnFault::CloseWebSocket, Some(conn.clone())),
            listener: up.listener.clone(),
            protocol: up.protocol.clone(),
            pending: Mutex::new(HashMap::new()),
            deflate: deflate
                .as_ref()
                .zip(ex.server.ws_compression.as_ref())
                .map(|(p, c)| Box::new(crate::deflate::WsDeflate::new(p, c))),
        }),
    };
    // on_open is queued before the socket can hear a close, so it always comes first.
    let s = socket.clone();
    socket.inner.serial.push_quiet(move || s.inner.listener.on_open(&s));
    if !attach(&conn, socket.inner.id, Listener::Socket(socket.clone())) {
        // The client left before the handshake: no on_open, just the close (1006).
        socket.inner.serial.clear();
        socket.on_closed(CloseReason::PeerClosed);
        return;
    }
    let mut out = Vec::with_capacity(256);
    let extensions = deflate.map(|p| p.response_header());
    with_date(|d| {
        encode_handshake_response(accept.as_str(), up.protocol.as_deref(), extensions.as_deref(), extra, d, &mut out)
    });
    ex.count_status(http::StatusCode::SWITCHING_PROTOCOLS);
    // The reactor answers pings at once unless the listener pongs itself.
    let ws = WsUpgrade { max_message: ex.server.max_ws, auto_pong: !up.listener.pongs_itself(), deflate };
    conn.upgrade(ex.seq, Bytes::from(out), ws);
    socket.inner.serial.kick();
}

impl Takeover for Upgrade {
    fn take_over(self: Box<Self>, ex: &Exchange, headers: &HeaderMap) {
        start(ex, &self, headers);
    }

    fn set_protocol(&mut self, protocol: String) {
        self.protocol = Some(protocol);
    }

    fn kind(&self) -> &'static str {
        "websocket upgrade"
    }
}
