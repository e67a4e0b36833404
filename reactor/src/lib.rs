//! The single-threaded mio event loop behind httpkit.
//!
//! One thread (named `httpkit-reactor` unless configured otherwise) owns the listener and every
//! connection. It reads into per-connection buffers, drives the sans-IO codec of
//! [`httpkit_codec`], and hands each complete request to a [`Dispatch`] supplied by the caller.
//! Everything else talks to the loop through one channel of commands plus a `mio::Waker`
//! ([`Remote`], [`ConnHandle`]); wake-ups are coalesced: a sender wakes the loop only when the
//! loop is about to sleep or sleeping.
//!
//! One exception, as in http-kit: when a keep-alive connection waits for exactly one answer and
//! has nothing else to write, the loop lends the worker that answers it the right to write that
//! answer itself ([`ConnHandle::try_write_direct`]), so the write system call runs on the
//! worker's core. The loop still owns the socket: it grants and takes back that right, and a
//! write that does not complete hands the rest back to it as a command.
//!
//! The reactor never runs user code beyond the [`Dispatch`] callbacks (which must not block),
//! and knows no HTTP policy beyond framing: what to answer is the dispatcher's business; it only
//! answers on its own when the codec says the request is invalid (400/413/414/431/501/505), when a
//! request times out (408), and `100 Continue`.
//!
//! # Guarantees
//! * Edge-triggered readiness is drained until `WouldBlock`, with a per-wake read budget; a
//!   connection whose budget ran out is revisited before the loop sleeps.
//! * A [`ConnId`] carries a generation: commands for a closed connection are dropped, never
//!   delivered to a later connection in the same slot.
//! * Responses on a pipelined connection are written in request order, whatever order the
//!   workers finish in.
//! * Per-connection memory is bounded: the read buffer by the codec limits, the write queue by
//!   [`ReactorConfig::write_high_water`] (reading pauses above it, and senders can wait with
//!   [`ConnHandle::wait_writable`]); idle connections hold no read buffer.
//! * On a graceful stop the listener is closed, idle connections are closed at once, in-flight
//!   requests are answered until the deadline, then everything is closed.
#![deny(missing_docs)]

mod command;
mod conn;
mod event_loop;
mod slab;
mod stream;
mod write_queue;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
pub use httpkit_codec::h1::{Limits, RequestHead};
pub use httpkit_codec::ws::WsEvent;

use command::Command;
pub use command::Remote;
pub use slab::ConnId;
use stream::Stream;

/// Settings of the event loop. Plain data; see each field for its default.
#[derive(Debug, Clone)]
pub struct ReactorConfig {
    /// Request size limits (request line, header block, body). Default: [`Limits::default`].
    pub limits: Limits,
    /// Most open connections. At the limit, a new connection is admitted by closing the longest
    /// idle connection with nothing in progress (a keep-alive connection between requests, or
    /// one that has sent nothing yet; never one mid-request or waiting for its answer); when
    /// there is none, the listener stops accepting until one closes. Default 10 000.
    pub max_connections: usize,
    /// Time allowed to receive a whole request head, from its first byte. Default 30 s. Exceeded
    /// → `408` and close (slowloris protection: trickling bytes does not extend it).
    pub header_read_timeout: Duration,
    /// The window over which a request body's rate is measured. Default 30 s. A window that
    /// brings fewer than [`ReactorConfig::min_body_rate`] bytes per second (and at least one
    /// byte) → `408` and close.
    pub body_read_timeout: Duration,
    /// Least bytes per second a request body must arrive at, averaged over each
    /// [`ReactorConfig::body_read_timeout`] window (as Apache's `mod_reqtimeout` `MinRate`), so
    /// a client that sends a byte now and then cannot hold its connection and buffers forever.
    /// `0`: only progress is required. Default [`MIN_BODY_RATE`].
    pub min_body_rate: u64,
    /// Time an idle keep-alive connection is kept. Default 60 s. Exceeded → closed quietly.
    pub idle_timeout: Duration,
    /// The window over which the peer's reading of queued output is measured. Default 60 s. A
    /// window in which fewer than [`ReactorConfig::min_send_rate`] bytes per second (and at
    /// least one byte) left while output waited → closed.
    pub write_timeout: Duration,
    /// Least bytes per second a peer must read queued output at, averaged over each
    /// [`ReactorConfig::write_timeout`] window. `0`: only progress is required. Default
    /// [`MIN_SEND_RATE`].
    pub min_send_rate: u64,
    /// Most bytes the reactor holds for all connections together: read buffers, request bodies
    /// being received or held behind others, responses queued. Per-connection bounds alone let
    /// many clients that send large bodies and never read pin gigabytes. Past the budget, a new
    /// request body that would not fit is answered `503` (and its connection closed after a
    /// lingering read), and connections holding queued output stop being read until it drains.
    /// Default [`BUFFER_BUDGET`].
    pub buffer_budget: usize,
    /// Bytes queued for one connection above which the reactor stops reading from it and
    /// [`ConnHandle::wait_writable`] blocks. Default 1 MiB.
    pub write_high_water: usize,
    /// Most requests of one connection that may be waiting for their response at once
    /// (pipelining depth). Default 16.
    pub max_pipelined: usize,
    /// `Server` header of the responses the reactor writes itself (errors, 408). Default none.
    pub server_header: Option<Bytes>,
    /// Name of the reactor thread. Default `httpkit-reactor`.
    pub thread_name: String,
    /// Whether connections start with a PROXY protocol header. Default off.
    pub proxy_protocol: ProxyProtocol,
}

/// Default of [`ReactorConfig::buffer_budget`]: 1 GiB.
pub const BUFFER_BUDGET: usize = 1 << 30;
/// Default of [`ReactorConfig::min_body_rate`]: 256 bytes per second (7.5 KiB per 30 s window).
pub const MIN_BODY_RATE: u64 = 256;
/// Default of [`ReactorConfig::min_send_rate`]: 256 bytes per second (15 KiB per 60 s window).
pub const MIN_SEND_RATE: u64 = 256;

impl ReactorConfig {
    /// Bytes a body-read window must bring.
    pub(crate) fn body_window_min(&self) -> u64 {
        (self.min_body_rate.saturating_mul(self.body_read_timeout.as_secs())).max(1)
    }

    /// Bytes that must leave during a write window.
    pub(crate) fn send_window_min(&self) -> u64 {
        (self.min_send_rate.saturating_mul(self.write_timeout.as_secs())).max(1)
    }

    /// The low-water mark of a connection's write queue: a queue that was above
    /// [`ReactorConfig::write_high_water`] counts as drained once at most this much is left
    /// (a quarter of the high-water mark), and [`Dispatch::on_drained`] is said.
    pub fn write_low_water(&self) -> usize {
        self.write_high_water / 4
    }
}

/// PROXY protocol handling (versions 1 and 2 are both understood).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyProtocol {
    /// No PROXY header is expected; one would be a malformed request (400).
    #[default]
    Off,
    /// Every connection must start with a PROXY header; without one, or with an invalid one,
    /// the connection is closed.
    Required,
    /// A PROXY header is used if present; an invalid one closes the connection.
    Optional,
}

impl Default for ReactorConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            min_send_rate: MIN_SEND_RATE,
            min_body_rate: MIN_BODY_RATE,
            buffer_budget: BUFFER_BUDGET,
            write_high_water: 1 << 20,
            max_pipelined: 16,
            server_header: None,
            thread_name: "httpkit-reactor".to_owned(),
            proxy_protocol: ProxyProtocol::Off,
        }
    }
}

/// A bound, listening socket for the reactor to accept on.
#[derive(Debug)]
#[non_exhaustive]
pub enum Listener {
    /// A TCP listener (see [`bind_tcp`]).
    Tcp(std::net::TcpListener),
    /// A Unix domain socket listener.
    Unix(std::os::unix::net::UnixListener),
}

/// Binds a TCP listener the way a server should: `SO_REUSEADDR`, the given backlog, non-blocking.
///
/// # Errors
/// Any error from socket creation, bind or listen.
pub fn bind_tcp(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        let _ = socket.set_only_v6(false);
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// A complete request, handed to [`Dispatch::on_request`].
#[derive(Debug)]
pub struct InboundRequest {
    /// Position of this request on its connection; pass it back with every part of the response.
    pub seq: u64,
    /// The decoded head.
    pub head: RequestHead,
    /// The whole body (empty when there is none).
    pub body: Vec<u8>,
    /// Trailer fields of a chunked body.
    pub trailers: Option<http::HeaderMap>,
    /// When the request finished arriving.
    pub received: Instant,
}

/// How a WebSocket connection ended: the close code and reason that were exchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsClose {
    /// The close code (1005 when the peer's close frame had none).
    pub code: u16,
    /// The close reason.
    pub reason: String,
    /// Whether the peer sent the first close frame (otherwise the server did, e.g. for a
    /// protocol error or a `close` call).
    pub by_peer: bool,
}

/// Why a connection was closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed its side (end of stream).
    PeerClosed,
    /// An I/O error (reset by peer, broken pipe).
    Error,
    /// A timeout expired (header read, body read, idle, write).
    Timeout,
    /// Closed after a response that ends the connection, or by [`ConnHandle::close`].
    Local,
    /// The request was invalid and answered with an error status.
    BadRequest,
    /// The server is stopping.
    ServerStop,
    /// Closed to admit a new connection at [`ReactorConfig::max_connections`]: it was the
    /// longest idle of the connections with nothing in progress (an idle keep-alive connection,
    /// or one that has sent nothing yet).
    Evicted,
    /// A WebSocket closed with a close frame (sent or received).
    WebSocket(WsClose),
}

/// The seam between the reactor and the API crate. Runs on the reactor thread: never block here.
pub trait Dispatch: Send + 'static {
    /// A complete request arrived. Answer it (now or later, from any thread) with
    /// [`ConnHandle::write`] using `req.seq`.
    fn on_request(&mut self, conn: &ConnHandle, req: InboundRequest);

    /// A WebSocket message or control frame arrived (close frames are reported through
    /// [`Dispatch::on_close`]). Pings have already been answered when auto-pong is on.
    fn on_ws_event(&mut self, _conn: &ConnHandle, _event: httpkit_codec::ws::WsEvent) {}

    /// Every byte of the frame sent with [`ConnHandle::send_frame_acked`] and this `token` has
    /// been written to the socket.
    fn on_frame_written(&mut self, _conn: &ConnHandle, _token: u64) {}

    /// The reactor answered an invalid request with `status` (400, 413, 414, 431, 501, 505)
    /// and will close the connection.
    fn on_bad_request(&mut self, _conn: &ConnHandle, _status: u16, _reason: &str) {}

    /// Accepting failed for a reason other than a vanished client (e.g. out of file
    /// descriptors); the listener pauses for 100 ms.
    fn on_accept_error(&mut self, error: &io::Error) {
        log::error!("httpkit reactor: accept failed: {error}; retrying in 100 ms");
    }

    /// The peer closed its sending side while requests were still being answered.
    fn on_peer_eof(&mut self, _conn: &ConnHandle) {}

    /// A graceful stop's time is up and this connection is still open: a last chance to end
    /// what it is answering properly (e.g. the final chunk of a stream). What is written through
    /// `conn` now is flushed as far as the socket takes it without waiting, then every connection
    /// closes.
    fn on_stop_deadline(&mut self, _conn: &ConnHandle) {}

    /// The connection is closed; nothing more can be written to it.
    fn on_close(&mut self, _conn: &ConnHandle, _reason: CloseReason) {}

    /// The connection's write queue drained to [`ReactorConfig::write_low_water`] after
    /// [`ConnHandle::notify_when_drained`] asked for it (once per request). The non-blocking way
    /// to wait for a slow peer: whatever stopped producing output for it (callbacks, body
    /// pieces) starts again here, and no thread sleeps meanwhile.
    fn on_drained(&mut self, _conn: &ConnHandle) {}

    /// Called once per loop iteration after all events were handled (for batching).
    fn on_flush(&mut self) {}
}

/// The largest answer [`ConnHandle::try_write_direct`] writes from a worker (larger ones go
/// through the reactor, which writes them as the peer reads).
pub const DIRECT_WRITE_MAX: usize = 64 * 1024;

/// Who may write the answer to the one request a connection waits for (see
/// [`ConnHandle::try_write_direct`]). Changed under `ConnShared::direct`'s lock, which is never
/// held across the write itself.
#[derive(Debug, Default)]
enum Direct {
    /// Only the reactor writes.
    #[default]
    Off,
    /// The worker answering request `seq` may write its whole answer itself, on this stream.
    Granted(u64, Arc<Stream>),
    /// That worker is writing now.
    Active,
    /// It wrote the whole answer: the reactor marks the request answered when it next looks.
    Written(u64),
    /// It wrote part (or nothing, on an error) and sent the rest as a command.
    HandedBack,
}

/// State of one connection shared between the reactor and the threads that answer it.
struct ConnShared {
    direct: Mutex<Direct>,
    queued: AtomicUsize,
    closed: AtomicBool,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    cond: Condvar,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    user: Mutex<Option<Arc<dyn std::any::Any + Send + Sync>>>,
    proxied: std::sync::OnceLock<SocketAddr>,
    peer_eof: AtomicBool,
    /// Someone waits for [`Dispatch::on_drained`].
    drained_wanted: AtomicBool,
}

impl std::fmt::Debug for ConnShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnShared")
            .field("queued", &self.queued)
            .field("closed", &self.closed)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl ConnShared {
    fn notify(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _g = self.lock.lock();
            self.cond.notify_all();
        }
    }
}

/// A handle to one connection, usable from any thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    id: ConnId,
    shared: Arc<ConnShared>,
    remote: Remote,
}

impl ConnHandle {
    /// The connection's id (unique for the life of the reactor).
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The peer's address (`None` for Unix domain sockets).
    ///
    /// When the connection began with a PROXY protocol header, this is the client it names.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.shared.proxied.get().copied().or(self.shared.peer)
    }

    /// The socket's own peer (the proxy, when a PROXY header named another client).
    pub fn socket_peer_addr(&self) -> Option<SocketAddr> {
        self.shared.peer
    }

    /// Whether the peer has closed its sending side (it may still be reading what is owed to
    /// it, but it sends no more requests). Set before [`Dispatch::on_peer_eof`] is called.
    pub fn peer_closed(&self) -> bool {
        self.shared.peer_eof.load(Ordering::SeqCst)
    }

    /// Whether a PROXY protocol header gave the client's address.
    pub fn is_proxied(&self) -> bool {
        self.shared.proxied.get().is_some()
    }

    /// The local address the connection was accepted on (`None` for Unix domain sockets).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.local
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Bytes queued for this connection and not yet written to the socket.
    pub fn queued_bytes(&self) -> usize {
        // SeqCst, as in `release_out`: with `drained_wanted` this is the store-then-load
        // handshake of `notify_when_drained`, which weaker orderings could let both sides miss.
        self.shared.queued.load(Ordering::SeqCst)
    }

    /// Counts `n` more bytes queued for this connection (the one place the count grows).
    pub(crate) fn charge_out(&self, n: usize) {
        self.shared.queued.fetch_add(n, Ordering::AcqRel);
    }

    /// Counts `n` queued bytes as written or dropped; returns how many are left.
    pub(crate) fn release_out(&self, n: usize) -> usize {
        self.shared.queued.fetch_sub(n, Ordering::SeqCst).saturating_sub(n)
    }

    /// Queues `head` then `body` as part of the response to request `seq`. `end` marks the last
    /// part; `close` (with `end`) closes the connection once it is written. Returns `false` if
    /// the connection is already closed (nothing is queued).
    pub fn write(&self, seq: u64, head: Bytes, body: Bytes, end: bool, close: bool) -> bool {
        if self.is_closed() {
            return false;
        }
        self.charge_out(head.len() + body.len());
        self.remote.send(Command::Write { id: self.id, seq, head, body, end, close });
        true
    }

    /// Writes the answer to request `seq` (`head` then `body`: a whole response that keeps the
    /// connection open, at most [`DIRECT_WRITE_MAX`] bytes) straight to the socket from this
    /// thread, with one system call, if the reactor lent this connection's write side to that
    /// request: it does so when the request is the only one waiting and nothing else is queued.
    ///
    /// `None`: it was not lent; send the answer with [`ConnHandle::write`] as usual.
    /// `Some(n)`: `n` bytes went out; if that is not all of it, the caller must at once send the
    /// rest with [`ConnHandle::write`] (`end`, not `close`): the reactor waits for it.
    pub fn try_write_direct(&self, seq: u64, head: &[u8], body: &[u8]) -> Option<usize> {
        if head.len() + body.len() > DIRECT_WRITE_MAX {
            return None;
        }
        let stream = {
            let mut d = self.shared.direct.lock().unwrap_or_else(|e| e.into_inner());
            match std::mem::take(&mut *d) {
                Direct::Granted(s, stream) if s == seq => {
                    *d = Direct::Active;
                    stream
                }
                other => {
                    *d = other;
                    return None;
                }
            }
        };
        // One write, so the reactor never waits long for the right back: whatever the socket
        // does not take at once (or an error, which the reactor meets and acts on) goes the
        // usual way.
        let bufs = [io::IoSlice::new(head), io::IoSlice::new(body)];
        let done = loop {
            match io::Write::write_vectored(&mut &*stream, &bufs) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(n) => break n,
                Err(_) => break 0,
            }
        };
        drop(stream);
        let whole = done == head.len() + body.len();
        *self.shared.direct.lock().unwrap_or_else(|e| e.into_inner()) =
            if whole { Direct::Written(seq) } else { Direct::HandedBack };
        Some(done)
    }

    /// Asks for one [`Dispatch::on_drained`] once the write queue is at or below
    /// [`ReactorConfig::write_low_water`]. The caller checks the queue again after asking: if it
    /// drained meanwhile, the event may or may not come (it is harmless twice).
    pub fn notify_when_drained(&self) {
        self.shared.drained_wanted.store(true, Ordering::SeqCst);
    }

    /// Queues a pong with `payload` (at most 125 bytes; longer is cut). Control frames are
    /// never refused for lack of room, and at most one pong waits per connection: a newer one
    /// replaces the payload of one not yet written, so a ping flood cannot grow the queue.
    /// Returns `false` if the connection is closed.
    pub fn send_pong(&self, payload: &[u8]) -> bool {
        if self.is_closed() {
            return false;
        }
        let payload = Bytes::copy_from_slice(&payload[..payload.len().min(125)]);
        self.remote.send(Command::Pong { id: self.id, payload });
        true
    }

    /// Waits until at most `limit` bytes are queued for this connection. Returns `false` if the
    /// connection closed or `timeout` passed first.
    pub fn wait_writable(&self, limit: usize, timeout: Duration) -> bool {
        let now = Instant::now();
        // A timeout too long to add (`Duration::MAX`) means "no timeout": about a century.
        let deadline = now.checked_add(timeout).unwrap_or_else(|| now + Duration::from_secs(u32::MAX.into()));
        loop {
            if self.is_closed() {
                return false;
            }
            if self.queued_bytes() <= limit {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let guard = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.waiters.fetch_add(1, Ordering::SeqCst);
            if !self.is_closed() && self.queued_bytes() > limit {
                let wait = (deadline - now).min(Duration::from_millis(100));
                let _ = self.shared.cond.wait_timeout(guard, wait);
            }
            self.shared.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Answers request `seq` with `head` (a `101 Switching Protocols`) and switches the
    /// connection to WebSocket: frames of at most `max_message` bytes per message, pings
    /// answered automatically if `auto_pong`. Returns `false` if the connection is closed.
    pub fn upgrade(&self, seq: u64, head: Bytes, max_message: usize, auto_pong: bool) -> bool {
        if self.is_closed() {
            return false;
        }
        self.charge_out(head.len());
        self.remote.send(Command::Upgrade { id: self.id, seq, head, max_message, auto_pong });
        true
    }

    /// Queues an encoded WebSocket frame (`head` then `payload`, so a large payload is not
    /// copied). With `close`, this is a close frame: the close handshake starts, later frames
    /// are dropped, and `close` is what the dispatcher hears in `on_close` unless the peer
    /// closed first. Returns `false` if the connection is closed.
    pub fn send_frame(&self, head: Bytes, payload: Bytes, close: Option<WsClose>) -> bool {
        if self.is_closed() {
            return false;
        }
        self.charge_out(head.len() + payload.len());
        self.remote.send(Command::Frame { id: self.id, head, payload, close, ack: None });
        true
    }

    /// Like [`ConnHandle::send_frame`] (without close), and reports
    /// [`Dispatch::on_frame_written`] with `token` once the frame is written to the socket.
    pub fn send_frame_acked(&self, head: Bytes, payload: Bytes, token: u64) -> bool {
        if self.is_closed() {
            return false;
        }
        self.charge_out(head.len() + payload.len());
        self.remote.send(Command::Frame { id: self.id, head, payload, close: None, ack: Some(token) });
        true
    }

    /// Changes the value of the caller's attached to the connection (e.g. the objects that
    /// receive its WebSocket messages), under its lock. The reactor never looks at it.
    /// Returns `false`, without calling `f`, once the connection is closed: from then on the
    /// slot only empties (see [`ConnHandle::take_user_data`]), so whatever `on_close` finds
    /// there is all that was ever attached.
    pub fn update_user_data(&self, f: impl FnOnce(&mut Option<Arc<dyn std::any::Any + Send + Sync>>)) -> bool {
        let mut g = self.shared.user.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_closed() {
            return false;
        }
        f(&mut g);
        true
    }

    /// Removes and returns the attached value.
    pub fn take_user_data(&self) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        self.shared.user.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The value attached with [`ConnHandle::update_user_data`].
    pub fn user_data(&self) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        self.shared.user.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops (`true`) or resumes (`false`) reading from this connection, e.g. while the
    /// application's queue of messages for it is full: the peer is then held back by TCP
    /// instead of the server buffering without bound. Requests or frames already read are
    /// kept and decoded on resume.
    pub fn pause_reading(&self, paused: bool) {
        if !self.is_closed() {
            self.remote.send(Command::PauseReading { id: self.id, paused });
        }
    }

    /// Closes the connection after what is already queued has been written.
    pub fn close(&self) {
        if !self.is_closed() {
            self.remote.send(Command::Close { id: self.id, abort: false });
        }
    }

    /// Closes the connection now, dropping queued output.
    pub fn abort(&self) {
        if !self.is_closed() {
            self.remote.send(Command::Close { id: self.id, abort: true });
        }
    }
}

impl PartialEq for ConnHandle {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && Arc::ptr_eq(&self.shared, &other.shared)
    }
}
impl Eq for ConnHandle {}
impl std::hash::Hash for ConnHandle {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

/// Counters of the reactor, readable at any time.
#[derive(Debug, Default)]
pub struct Stats {
    accepted: AtomicU64,
    open: AtomicUsize,
    buffered: AtomicUsize,
}

impl Stats {
    /// Connections accepted since start.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Bytes the reactor holds for all its connections now (read buffers, request bodies
    /// being received or held, responses queued), counted against
    /// [`ReactorConfig::buffer_budget`].
    pub fn buffered(&self) -> usize {
        self.buffered.load(Ordering::Relaxed)
    }
}

/// The running reactor: stop it, wait for it, read its address and counters.
#[derive(Debug)]
pub struct Handle {
    remote: Remote,
    thread: Mutex<Option<JoinHandle<()>>>,
    local_addr: Option<SocketAddr>,
    stats: Arc<Stats>,
}

impl Handle {
    /// The bound address of a TCP listener.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The reactor's counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// A sender of commands to the loop.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// Asks the loop to stop: immediately (`None`: every connection closed now) or gracefully
    /// (stop accepting, close idle connections, answer in-flight requests until `deadline`).
    pub fn stop(&self, deadline: Option<Instant>) {
        self.remote.send(Command::Stop { deadline });
    }

    /// Waits until the loop has exited.
    pub fn join(&self) {
        // The lock is held while joining, so every caller returns only once the loop is gone.
        let mut guard = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = guard.take() {
            let _ = t.join();
        }
    }

    /// Whether the loop has exited.
    pub fn is_finished(&self) -> bool {
        match self.thread.try_lock() {
            Ok(g) => g.as_ref().is_none_or(|t| t.is_finished()),
            // Someone is joining it: it is not finished yet.
            Err(std::sync::TryLockError::WouldBlock) => false,
            Err(std::sync::TryLockError::Poisoned(g)) => g.into_inner().as_ref().is_none_or(|t| t.is_finished()),
        }
    }
}

/// Starts the event loop on its own thread.
///
/// # Errors
/// Creating the poller, registering the listener or spawning the thread failed.
pub fn spawn<D: Dispatch>(config: ReactorConfig, listener: Listener, dispatch: D) -> io::Result<Handle> {
    let (lp, remote, local_addr) = event_loop::EventLoop::new(config.clone(), listener, dispatch)?;
    let stats = lp.stats();
    let thread = std::thread::Builder::new().name(config.thread_name.clone()).spawn(move || {
        // A bug here must not vanish silently: say so (the handle then reports the loop as
        // finished, and stopping returns at once).
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run())).is_err() {
            log::error!("httpkit reactor: the event loop panicked and stopped");
        }
    })?;
    Ok(Handle { remote, thread: Mutex::new(Some(thread)), local_addr, stats })
}
