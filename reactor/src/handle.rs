//! The handle to one connection that other threads hold: answers and frames sent as commands,
//! the lent write side, the queued-byte count and the wait for it, the dispatcher's attachment.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::command::{CloseHow, Command, Remote};
use crate::slab::ConnId;
use crate::stream::Stream;
#[allow(unused_imports)] // doc links
use crate::{Dispatch, ReactorConfig, WsClose, WsUpgrade};

/// Which part of a response [`ConnHandle::write`] queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// More follows.
    More,
    /// The last part; the connection stays open for the next request.
    Last,
    /// The last part; the connection closes once it is written.
    LastThenClose,
}

impl Part {
    /// The last part, closing the connection after it if `close`.
    pub fn last(close: bool) -> Self {
        if close {
            Self::LastThenClose
        } else {
            Self::Last
        }
    }
}

/// The largest answer [`ConnHandle::try_write_direct`] writes from a worker (larger ones go
/// through the reactor, which writes them as the peer reads).
pub const DIRECT_WRITE_MAX: usize = 64 * 1024;

/// The "request" a WebSocket's write side is lent for (see [`ConnHandle::send_frame`]).
pub(crate) const WS_LEND: u64 = u64::MAX;

/// Who may write the answer to the one request a connection waits for (see
/// [`ConnHandle::try_write_direct`]), or a WebSocket's frames ([`WS_LEND`]). Changed under `ConnShared::direct`'s lock, which is never
/// held across the write itself.
#[derive(Debug, Default)]
pub(crate) enum Direct {
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
    /// A WebSocket sender wrote part of a frame: the rest (counted as queued already), which
    /// the reactor queues first when it takes the write side back, before any frame of its
    /// own or of another sender.
    /// (Boxed: every connection's state has room for the largest variant.)
    Rest(Box<(Bytes, Bytes)>),
}

/// State of one connection shared between the reactor and the threads that answer it.
pub(crate) struct ConnShared<A> {
    pub(crate) direct: Mutex<Direct>,
    pub(crate) queued: AtomicUsize,
    pub(crate) closed: AtomicBool,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) local: Option<SocketAddr>,
    /// What the dispatcher keeps for the connection (its [`Dispatch::Attachment`]).
    pub(crate) attachment: A,
    pub(crate) proxied: std::sync::OnceLock<SocketAddr>,
    pub(crate) peer_eof: AtomicBool,
    /// The PROXY v2 header said the client's connection used TLS.
    pub(crate) proxied_tls: AtomicBool,
    /// Someone waits for [`Dispatch::on_drained`].
    pub(crate) drained_wanted: AtomicBool,
    /// The request whose answer is written now (every earlier one is complete).
    pub(crate) front: std::sync::atomic::AtomicU64,
}

impl<A> std::fmt::Debug for ConnShared<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnShared")
            .field("queued", &self.queued)
            .field("closed", &self.closed)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl<A> ConnShared<A> {
    /// A new connection's shared state.
    pub(crate) fn new(peer: Option<SocketAddr>, local: Option<SocketAddr>, attachment: A) -> Self {
        Self {
            direct: Mutex::new(Direct::Off),
            queued: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            peer,
            local,
            attachment,
            proxied: std::sync::OnceLock::new(),
            peer_eof: AtomicBool::new(false),
            proxied_tls: AtomicBool::new(false),
            drained_wanted: AtomicBool::new(false),
            front: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

/// A handle to one connection, usable from any thread. Cheap to clone. `A` is what the
/// dispatcher keeps for the connection ([`Dispatch::Attachment`]), reached without a lock or a
/// cast through [`ConnHandle::attachment`].
pub struct ConnHandle<A> {
    pub(crate) id: ConnId,
    pub(crate) shared: Arc<ConnShared<A>>,
    pub(crate) remote: Remote,
}

impl<A> Clone for ConnHandle<A> {
    fn clone(&self) -> Self {
        Self { id: self.id, shared: self.shared.clone(), remote: self.remote.clone() }
    }
}

impl<A> std::fmt::Debug for ConnHandle<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnHandle").field("id", &self.id).field("shared", &self.shared).finish_non_exhaustive()
    }
}

impl<A> ConnHandle<A> {
    /// What the dispatcher keeps for this connection, created with it (`Default`) and dropped
    /// with the last handle. The reactor never looks at it.
    pub fn attachment(&self) -> &A {
        &self.shared.attachment
    }

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

    /// Whether a PROXY protocol v2 header said the client's own connection used TLS (its
    /// `PP2_TYPE_SSL` TLV): the client's scheme was `https`.
    pub fn proxied_tls(&self) -> bool {
        self.shared.proxied_tls.load(Ordering::Acquire)
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
        // SeqCst, as in `WriteQueue::write_to`: with `drained_wanted` this is the store-then-load
        // handshake of `notify_when_drained`, which weaker orderings could let both sides miss.
        self.shared.queued.load(Ordering::SeqCst)
    }

    /// Counts `n` more bytes sent to this connection (from here on the write queue keeps the
    /// count: see `write_queue.rs`).
    pub(crate) fn charge_out(&self, n: usize) {
        self.shared.queued.fetch_add(n, Ordering::AcqRel);
    }

    /// Queues `head` then `body` as `part` of the response to request `seq`. Returns `false` if
    /// the connection is already closed (nothing is queued).
    pub fn write(&self, seq: u64, head: Bytes, body: Bytes, part: Part) -> bool {
        if self.is_closed() {
            return false;
        }
        self.charge_out(head.len() + body.len());
        self.remote.send(Command::Write { id: self.id, seq, head, body, part });
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
        let done = loop {
            match crate::stream::write_pair(&stream, head, body) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(n) => break n,
                Err(_) => break 0,
            }
        };
        drop(stream);
        self.remote.inner.stats.count_written(done);
        let whole = done == head.len() + body.len();
        *self.shared.direct.lock().unwrap_or_else(|e| e.into_inner()) =
            if whole { Direct::Written(seq) } else { Direct::HandedBack };
        Some(done)
    }

    /// Whether the answer to request `seq` is the one being written now: every earlier answer
    /// is complete, so what is queued for it goes out as the peer reads (a later pipelined
    /// answer's parts wait for it in memory). When it becomes so, a [`Dispatch::on_drained`]
    /// asked for follows.
    pub fn is_front(&self, seq: u64) -> bool {
        self.shared.front.load(Ordering::SeqCst) == seq
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

    /// Answers request `seq` with `head` (a `101 Switching Protocols`) and switches the
    /// connection to WebSocket as `ws` says. Returns `false` if the connection is closed.
    pub fn upgrade(&self, seq: u64, head: Bytes, ws: WsUpgrade) -> bool {
        if self.is_closed() {
            return false;
        }
        self.charge_out(head.len());
        self.remote.send(Command::Upgrade { id: self.id, seq, head, ws });
        true
    }

    /// Sends an encoded WebSocket frame (`head` then `payload`, so a large payload is not
    /// copied). With `close`, this is a close frame: the close handshake starts, later frames
    /// are dropped, and `close` is what the dispatcher hears in `on_close` unless the peer
    /// closed first. Returns `false` if the connection is closed.
    ///
    /// While nothing is queued for the WebSocket, the reactor lends its write side out: a data
    /// frame of at most [`DIRECT_WRITE_MAX`] bytes is then written from this thread, with one
    /// system call and no wake-up of the reactor; what the socket does not take goes the usual
    /// way, ahead of any later frame. Otherwise the frame is queued to the reactor.
    pub fn send_frame(&self, head: Bytes, payload: Bytes, close: Option<WsClose>) -> bool {
        if self.is_closed() {
            return false;
        }
        let n = head.len() + payload.len();
        if let Some(stream) = self.claim_ws_write(n, close.is_none()) {
            self.write_frame_direct(stream, head, payload);
            return true;
        }
        self.remote.send(Command::Frame { id: self.id, head, payload, close, ack: None });
        true
    }

    /// Like [`ConnHandle::send_frame`] (without close), but always queued to the reactor, never
    /// written from this thread: for a sender with many connections to serve at once (a
    /// broadcast), for which a system call per connection would be slow.
    pub fn queue_frame(&self, head: Bytes, payload: Bytes) -> bool {
        if self.is_closed() {
            return false;
        }
        let _ = self.claim_ws_write(head.len() + payload.len(), false);
        self.remote.send(Command::Frame { id: self.id, head, payload, close: None, ack: None });
        true
    }

    /// Like [`ConnHandle::send_frame`] (without close), and reports
    /// [`Dispatch::on_frame_written`] with `token` once the frame is written to the socket
    /// (always through the reactor, which tracks it).
    pub fn send_frame_acked(&self, head: Bytes, payload: Bytes, token: u64) -> bool {
        if self.is_closed() {
            return false;
        }
        let _ = self.claim_ws_write(head.len() + payload.len(), false);
        self.remote.send(Command::Frame { id: self.id, head, payload, close: None, ack: Some(token) });
        true
    }

    /// Takes a WebSocket's lent write side for a frame of `n` bytes (`Some`), or else counts
    /// the frame as queued (`None`: the caller sends it to the reactor). Both under the lock
    /// the reactor lends under, so it lends only when no frame is on its way to it (the order
    /// of frames). A frame that may not be written here (a close, a tracked one, a large one)
    /// ends the loan: the reactor writes from then on, in order.
    fn claim_ws_write(&self, n: usize, may_write: bool) -> Option<Arc<Stream>> {
        loop {
            let mut d = self.shared.direct.lock().unwrap_or_else(|e| e.into_inner());
            match &*d {
                Direct::Granted(WS_LEND, _) if may_write && n <= DIRECT_WRITE_MAX => {
                    if let Direct::Granted(_, stream) = std::mem::replace(&mut *d, Direct::Active) {
                        return Some(stream);
                    }
                }
                Direct::Granted(WS_LEND, _) => *d = Direct::HandedBack,
                // Another thread writes a frame now (one non-blocking system call): after it.
                Direct::Active => {
                    drop(d);
                    std::thread::yield_now();
                    continue;
                }
                _ => {}
            }
            self.charge_out(n);
            return None;
        }
    }

    /// Writes a frame on the lent write side; what the socket does not take goes to the reactor
    /// before anyone else may send (the loan then ends).
    fn write_frame_direct(&self, stream: Arc<Stream>, head: Bytes, payload: Bytes) {
        let total = head.len() + payload.len();
        let done = loop {
            match crate::stream::write_pair(&stream, &head, &payload) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(n) => break n,
                // The reactor meets the error itself and acts on it.
                Err(_) => break 0,
            }
        };
        self.remote.inner.stats.count_written(done);
        if done == total {
            let mut d = self.shared.direct.lock().unwrap_or_else(|e| e.into_inner());
            // Still lent, unless the reactor let the connection go meanwhile.
            if matches!(*d, Direct::Active) {
                *d = Direct::Granted(WS_LEND, stream);
            }
            return;
        }
        drop(stream);
        let (head, payload) = if done < head.len() {
            (head.slice(done..), payload)
        } else {
            (Bytes::new(), payload.slice(done - head.len()..))
        };
        // The rest stays with the loan's state, so that whatever the reactor writes next (its
        // own pong, ping or close; another sender's frame) it takes the rest first; an empty
        // frame wakes it to do so.
        {
            let mut d = self.shared.direct.lock().unwrap_or_else(|e| e.into_inner());
            if !matches!(*d, Direct::Active) {
                // The reactor let the connection go meanwhile: nothing more is written.
                return;
            }
            self.charge_out(total - done);
            *d = Direct::Rest(Box::new((head, payload)));
        }
        self.remote.send(Command::Frame {
            id: self.id,
            head: Bytes::new(),
            payload: Bytes::new(),
            close: None,
            ack: None,
        });
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

    /// The [`BodySpool`](crate::BodySpool) that said it was full has room again: reading
    /// resumes.
    pub fn resume_body(&self) {
        if !self.is_closed() {
            self.remote.send(Command::ResumeBody { id: self.id });
        }
    }

    /// Has [`Dispatch::on_wake`] called for this connection on the reactor thread (e.g. to
    /// dispatch work that another thread finished preparing). Nothing happens if the
    /// connection is closed by then.
    pub fn wake(&self) {
        if !self.is_closed() {
            self.remote.send(Command::Wake { id: self.id });
        }
    }

    /// Closes the connection after what is already queued has been written.
    pub fn close(&self) {
        if !self.is_closed() {
            self.remote.send(Command::Close { id: self.id, how: CloseHow::Graceful });
        }
    }

    /// Closes the connection now, dropping queued output.
    pub fn abort(&self) {
        if !self.is_closed() {
            self.remote.send(Command::Close { id: self.id, how: CloseHow::Abort });
        }
    }
}

impl<A> PartialEq for ConnHandle<A> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && Arc::ptr_eq(&self.shared, &other.shared)
    }
}
impl<A> Eq for ConnHandle<A> {}
impl<A> std::hash::Hash for ConnHandle<A> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}
