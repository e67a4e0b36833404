//! The single-threaded mio event loop behind httpkit.
//!
//! **Stability:** a building block of `httpkit`, with a less stable API: it follows what
//! `httpkit` needs and may change in any minor release. Depend on `httpkit` for a stable API.
//!
//! One thread (named `httpkit-reactor` unless configured otherwise) owns the listener and every
//! connection. It reads into per-connection buffers, drives the sans-IO codec of
//! [`httpkit_codec`], and hands each complete request to a [`Dispatch`] supplied by the caller.
//! Everything else talks to the loop through one channel of commands plus a `mio::Waker`
//! (through a [`ConnHandle`] or the [`Handle`]); wake-ups are coalesced: a sender wakes the loop only when the
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
//!   [`ReactorConfig::write_high_water`] (reading pauses above it, and senders can ask for
//!   [`Dispatch::on_drained`] instead of waiting); idle connections hold no read buffer.
//! * On a graceful stop the listener is closed, idle connections are closed at once, in-flight
//!   requests are answered until the deadline, then everything is closed.
#![deny(missing_docs)]

mod command;
mod config;
mod conn;
mod event_loop;
mod handle;
mod slab;
mod spin;
mod stream;
mod write_queue;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

pub use httpkit_codec::h1::{Limits, RequestHead};
pub use httpkit_codec::ws::{DeflateParams, WsEvent};

use command::{Command, Remote};
pub use config::*;
pub use handle::{ConnHandle, Part, DIRECT_WRITE_MAX};
pub use slab::ConnId;
pub use spin::SpinGate;

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
    bind_one(addr, backlog, false)
}

/// Binds `n` TCP listeners on one address with `SO_REUSEPORT`, one per event loop: the kernel
/// spreads new connections across them. Port 0 picks one free port for all of them. (Any
/// process of the same user may then bind the port too and take a share of its connections.)
/// With `n == 1`, as [`bind_tcp`].
///
/// # Errors
/// Any error from socket creation, bind or listen.
pub fn bind_tcp_many(addr: SocketAddr, backlog: i32, n: usize) -> io::Result<Vec<std::net::TcpListener>> {
    if n <= 1 {
        return Ok(vec![bind_tcp(addr, backlog)?]);
    }
    let first = bind_one(addr, backlog, true)?;
    let addr = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..n {
        all.push(bind_one(addr, backlog, true)?);
    }
    Ok(all)
}

fn bind_one(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
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
    pub trailers: Option<Box<http::HeaderMap>>,
    /// When the request finished arriving.
    pub received: Instant,
    /// Where the body went instead of `body`, when it was larger than
    /// [`ReactorConfig::body_buffer_size`] (see [`Dispatch::open_spool`]): every piece has been
    /// handed to it, the last one included, when the request is dispatched.
    pub spool: Option<Arc<dyn BodySpool>>,
}

/// Where a request body larger than [`ReactorConfig::body_buffer_size`] goes as it arrives,
/// instead of memory (e.g. a temporary file): see [`Dispatch::open_spool`]. Called on the
/// reactor thread: hand the piece to another thread, never block.
pub trait BodySpool: Send + Sync + 'static {
    /// Takes the next piece of the body (pieces come in order, each [`SPOOL_PIECE`] bytes
    /// but the last, and the first of a chunked body: what arrived before the spool opened). `Ok(true)`: send
    /// more. `Ok(false)`: the spool is full; the reactor reads nothing more from the connection
    /// until [`ConnHandle::resume_body`]. `Err`: the request is refused with that answer (and
    /// the connection closed after it).
    ///
    /// # Errors
    /// The piece cannot be taken (e.g. a disk budget is spent, or an earlier write failed).
    fn write(self: Arc<Self>, piece: bytes::Bytes) -> Result<bool, SpoolRefusal>;

    /// Bytes handed over and not yet stored: counted in the server's buffered bytes (see
    /// [`ReactorConfig::buffer_budget`]).
    fn pending(&self) -> usize {
        0
    }

    /// The spool as `Any`, for the dispatcher to recover its own type from
    /// [`InboundRequest::spool`].
    fn into_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync>;
}

/// How many bytes of a spooled body the reactor gathers before handing them over as one piece.
pub const SPOOL_PIECE: usize = 256 * 1024;

/// Why a body is not taken: the answer the request gets (`413`, `503`, `500`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolRefusal {
    /// The status of the answer.
    pub status: u16,
    /// Its reason (the answer's body).
    pub reason: &'static str,
}

/// How a connection speaks WebSocket once its `101` is out (see [`ConnHandle::upgrade`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsUpgrade {
    /// The largest message, in bytes (after inflating, when compressed): larger is a 1009.
    pub max_message: usize,
    /// Pings are answered by the reactor at once.
    pub auto_pong: bool,
    /// permessage-deflate as agreed in the handshake: compressed client messages are inflated.
    pub deflate: Option<DeflateParams>,
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
    /// What the dispatcher keeps for each connection (e.g. the objects that receive its
    /// WebSocket messages): created with the connection, reached from every
    /// [`ConnHandle::attachment`] without a lock or a cast; the reactor never looks at it.
    type Attachment: Default + Send + Sync + 'static;

    /// A complete request arrived. Answer it (now or later, from any thread) with
    /// [`ConnHandle::write`] using `req.seq`.
    fn on_request(&mut self, conn: &ConnHandle<Self::Attachment>, req: InboundRequest);

    /// A request announced a body with `Expect: 100-continue`, and its head is complete.
    /// `None` (the default) sends `100 Continue` and reads the body. `Some(answer)`, a whole
    /// encoded response, is sent instead: the body is never read (so it is never mistaken for
    /// the next request) and the connection closes after the answer.
    fn on_expect_continue(
        &mut self,
        _conn: &ConnHandle<Self::Attachment>,
        _head: &RequestHead,
    ) -> Option<bytes::Bytes> {
        None
    }

    /// A request's body is larger than [`ReactorConfig::body_buffer_size`] (its announced
    /// length, or what arrived so far of a chunked body): where it goes instead of memory.
    /// `Ok(None)` (the default) keeps it in memory, within the buffer budget; `Ok(Some(spool))`
    /// sends every piece to `spool`, beginning with what arrived so far; `Err` refuses the
    /// request with that answer. `declared` is the announced length (`None` when chunked).
    ///
    /// # Errors
    /// The request is refused (e.g. a disk budget cannot hold `declared` bytes).
    fn open_spool(
        &mut self,
        _conn: &ConnHandle<Self::Attachment>,
        _head: &RequestHead,
        _declared: Option<u64>,
    ) -> Result<Option<Arc<dyn BodySpool>>, SpoolRefusal> {
        Ok(None)
    }

    /// A frame failed a WebSocket (a protocol error, invalid UTF-8, a message too big: `code`
    /// 1002, 1007 or 1009). `false` (the default): the reactor sends the close now. `true`: the
    /// dispatcher sends it ([`ConnHandle::send_frame`] with a close) once what is due for the
    /// messages before the bad frame has been sent (their echoes, say); the reactor reads
    /// nothing more meanwhile, does not wait for the peer's reply to that close, and closes
    /// with `code` itself if it has not come within [`WS_FAIL_GRACE`].
    fn on_ws_fail(&mut self, _conn: &ConnHandle<Self::Attachment>, _code: u16, _reason: &'static str) -> bool {
        false
    }

    /// A WebSocket message or control frame arrived (close frames are reported through
    /// [`Dispatch::on_close`]). Pings have already been answered when auto-pong is on.
    fn on_ws_event(&mut self, _conn: &ConnHandle<Self::Attachment>, _event: httpkit_codec::ws::WsEvent) {}

    /// Every byte of the frame sent with [`ConnHandle::send_frame_acked`] and this `token` has
    /// been written to the socket.
    fn on_frame_written(&mut self, _conn: &ConnHandle<Self::Attachment>, _token: u64) {}

    /// The reactor answered an invalid request with `status` (400, 413, 414, 431, 501, 505)
    /// and will close the connection.
    fn on_bad_request(&mut self, _conn: &ConnHandle<Self::Attachment>, _status: u16, _reason: &str) {}

    /// Accepting failed for a reason other than a vanished client (e.g. out of file
    /// descriptors); the listener pauses for 100 ms.
    fn on_accept_error(&mut self, error: &io::Error) {
        log::error!("httpkit reactor: accept failed: {error}; retrying in 100 ms");
    }

    /// The peer closed its sending side while requests were still being answered.
    fn on_peer_eof(&mut self, _conn: &ConnHandle<Self::Attachment>) {}

    /// A graceful stop's time is up and this connection is still open: a last chance to end
    /// what it is answering properly (e.g. the final chunk of a stream). What is written through
    /// `conn` now is flushed as far as the socket takes it without waiting, then every connection
    /// closes.
    fn on_stop_deadline(&mut self, _conn: &ConnHandle<Self::Attachment>) {}

    /// The connection is closed; nothing more can be written to it.
    fn on_close(&mut self, _conn: &ConnHandle<Self::Attachment>, _reason: CloseReason) {}

    /// The connection's write queue drained to [`ReactorConfig::write_low_water`] after
    /// [`ConnHandle::notify_when_drained`] asked for it (once per request). The non-blocking way
    /// to wait for a slow peer: whatever stopped producing output for it (callbacks, body
    /// pieces) starts again here, and no thread sleeps meanwhile.
    fn on_drained(&mut self, _conn: &ConnHandle<Self::Attachment>) {}

    /// [`ConnHandle::wake`] was called for this connection.
    fn on_wake(&mut self, _conn: &ConnHandle<Self::Attachment>) {}

    /// Called once per loop iteration after all events were handled (for batching).
    fn on_flush(&mut self) {}
}

/// Counters of the reactor, readable at any time.
#[derive(Debug, Default)]
pub struct Stats {
    accepted: AtomicU64,
    open: AtomicUsize,
    buffered: AtomicUsize,
    pub(crate) websockets: AtomicUsize,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    pub(crate) evictions: AtomicU64,
    timeouts: [AtomicU64; 4],
    /// The longest turn of the loop (µs) since [`Stats::take_longest_turn`].
    pub(crate) longest_turn: AtomicU64,
}

/// What timed out (see [`Stats::timeouts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// A request head did not arrive in time (`408`).
    Header = 0,
    /// A request body was too slow (`408`).
    Body = 1,
    /// An idle keep-alive connection was closed.
    Idle = 2,
    /// A client did not read its answers fast enough (or a close handshake did not end).
    Write = 3,
}

impl Stats {
    /// The longest time one turn of the loop took (from `poll` returning to the next `poll`)
    /// since the last call or the start, and starts over: how long the loop at worst went
    /// without looking at its sockets (a stall shows here).
    pub fn take_longest_turn(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.longest_turn.swap(0, Ordering::Relaxed))
    }

    /// Connections accepted since start.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// WebSocket connections open now.
    pub fn websockets(&self) -> usize {
        self.websockets.load(Ordering::Relaxed)
    }

    /// Bytes read from clients since start.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    /// Bytes written to clients since start (by the reactor or by a worker it lent the write).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }

    /// Connections closed to make room at the connection limit, since start.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Timeouts of `kind` since start.
    pub fn timeouts(&self, kind: TimeoutKind) -> u64 {
        self.timeouts[kind as usize].load(Ordering::Relaxed)
    }

    pub(crate) fn count_read(&self, n: usize) {
        self.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn count_written(&self, n: usize) {
        self.bytes_written.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn count_timeout(&self, kind: TimeoutKind) {
        self.timeouts[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Bytes the reactor holds for all its connections now (read buffers, request bodies
    /// being received or held, responses queued), counted against
    /// [`ReactorConfig::buffer_budget`].
    pub fn buffered(&self) -> usize {
        self.buffered.load(Ordering::Relaxed)
    }
}

/// The running reactor (one event loop, or several that share the port, the counters and the
/// limits): stop it, wait for it, read its address and counters.
#[derive(Debug)]
pub struct Handle {
    loops: Vec<(Remote, Mutex<Option<JoinHandle<()>>>)>,
    local_addr: Option<SocketAddr>,
    stats: Arc<Stats>,
}

impl Handle {
    /// The bound address of a TCP listener.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The reactor's counters (of every loop together).
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// How many event loops run.
    pub fn loops(&self) -> usize {
        self.loops.len()
    }

    /// Asks every loop to stop: immediately (`None`: every connection closed now) or gracefully
    /// (stop accepting, close idle connections, answer in-flight requests until `deadline`).
    pub fn stop(&self, deadline: Option<Instant>) {
        for (remote, _) in &self.loops {
            remote.send(Command::Stop { deadline });
        }
    }

    /// Waits until every loop has exited.
    pub fn join(&self) {
        for (_, thread) in &self.loops {
            // The lock is held while joining, so every caller returns only once the loop is gone.
            let mut guard = thread.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = guard.take() {
                let _ = t.join();
            }
        }
    }

    /// Whether every loop has exited.
    pub fn is_finished(&self) -> bool {
        self.loops.iter().all(|(_, thread)| match thread.try_lock() {
            Ok(g) => g.as_ref().is_none_or(|t| t.is_finished()),
            // Someone is joining it: it is not finished yet.
            Err(std::sync::TryLockError::WouldBlock) => false,
            Err(std::sync::TryLockError::Poisoned(g)) => g.into_inner().as_ref().is_none_or(|t| t.is_finished()),
        })
    }
}

/// Starts the event loop on its own thread.
///
/// # Errors
/// Creating the poller, registering the listener or spawning the thread failed.
pub fn spawn<D: Dispatch>(config: ReactorConfig, listener: Listener, dispatch: D) -> io::Result<Handle> {
    let mut dispatch = Some(dispatch);
    spawn_many(config, vec![listener], move |_| dispatch.take().ok_or_else(|| io::Error::other("one loop only")))
}

/// Starts one event loop per listener, each on its own thread with its own dispatcher (`make`
/// is called with the loop's index). The loops share the counters ([`Handle::stats`]) and so the
/// server-wide limits: [`ReactorConfig::max_connections`] and
/// [`ReactorConfig::buffer_budget`] count every loop's connections. (At the connection limit, a
/// loop makes room by closing the longest-idle connection among its own.) The listeners are
/// usually the same port: sockets bound with `SO_REUSEPORT` (see [`bind_tcp_many`]), or
/// duplicates of one listener (`try_clone`), which every loop then accepts from.
///
/// # Errors
/// No listener; creating a poller, registering a listener or spawning a thread failed (the
/// loops already started are stopped).
pub fn spawn_many<D: Dispatch>(
    config: ReactorConfig,
    listeners: Vec<Listener>,
    mut make: impl FnMut(usize) -> io::Result<D>,
) -> io::Result<Handle> {
    if listeners.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no listener"));
    }
    let stats = Arc::new(Stats::default());
    let n = listeners.len();
    let peers = Arc::new(event_loop::Peers::new(n));
    // Every loop is made before any runs: each may ask any other to evict.
    let mut loops = Vec::with_capacity(n);
    let mut local = None;
    for (i, listener) in listeners.into_iter().enumerate() {
        let d = make(i)?;
        let (lp, remote, local_addr) =
            event_loop::EventLoop::new(config.clone(), listener, d, stats.clone(), peers.clone(), i)?;
        local = local.or(local_addr);
        loops.push((lp, remote));
    }
    peers.set_remotes(loops.iter().map(|(_, r)| r.clone()).collect());
    let mut handle = Handle { loops: Vec::with_capacity(n), local_addr: local, stats };
    for (i, (lp, remote)) in loops.into_iter().enumerate() {
        let name = if n == 1 { config.thread_name.clone() } else { format!("{}-{i}", config.thread_name) };
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            // A bug here must not vanish silently: say so (the handle then reports the loop as
            // finished, and stopping returns at once).
            config::mark_reactor_thread();
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run())).is_err() {
                log::error!("httpkit reactor: the event loop panicked and stopped");
            }
        });
        match spawned {
            Ok(thread) => handle.loops.push((remote, Mutex::new(Some(thread)))),
            Err(e) => {
                handle.stop(None);
                handle.join();
                return Err(e);
            }
        }
    }
    Ok(handle)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod loop_tests {
    use super::*;
    use std::io::{Read, Write};

    /// Panics on the first request: a bug in a dispatcher, which stops its loop.
    struct Panicky;

    impl Dispatch for Panicky {
        type Attachment = ();
        fn on_request(&mut self, _conn: &ConnHandle<()>, _req: InboundRequest) {
            panic!("a dispatcher bug");
        }
    }

    /// A loop that panics gives back its connections' share of the server-wide counts (or
    /// `max_connections` would shrink for good), and its clients see their connection close.
    #[test]
    fn a_loop_that_panics_gives_back_its_open_connections() {
        let listener = bind_tcp(SocketAddr::from(([127, 0, 0, 1], 0)), 128).unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = spawn(ReactorConfig::default(), Listener::Tcp(listener), Panicky).unwrap();
        let mut idle = std::net::TcpStream::connect(addr).unwrap();
        let mut asking = std::net::TcpStream::connect(addr).unwrap();
        let t = Instant::now();
        while handle.stats().open() < 2 {
            assert!(t.elapsed() < std::time::Duration::from_secs(20), "both connections counted");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        asking.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        handle.join();
        assert!(handle.is_finished());
        assert_eq!(handle.stats().open(), 0, "the dead loop's connections are not counted");
        idle.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        assert_eq!(idle.read(&mut [0u8; 16]).unwrap_or(0), 0, "closed");
    }
}
