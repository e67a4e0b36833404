//! What the server keeps for each connection (the reactor's `Dispatch::Attachment`): the
//! listeners of its exchanges, and its WebSocket listener reached without a lock per message.

use std::sync::atomic::{fence, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, Weak};

use httpkit_reactor::{CloseReason, WsEvent};

/// Whoever wants a connection's WebSocket events and its close: channels and sockets.
pub(crate) trait ConnListener: Send + Sync {
    fn is_websocket(&self) -> bool;
    fn on_ws_event(&self, ev: WsEvent);
    fn on_peer_eof(&self);
    fn on_closed(&self, reason: CloseReason);
    fn on_frame_written(&self, _token: u64) {}
    /// The write buffer drained after callbacks stopped for it (see `Dispatch::on_drained`).
    fn on_drained(&self) {}
    /// A frame failed the WebSocket: send the close with `code` behind the callbacks due
    /// (`true`), or let the reactor close now (`false`, the default).
    fn on_ws_fail(&self, _code: u16, _reason: &'static str) -> bool {
        false
    }
    /// A graceful stop's time is up: end the answer properly now (see `Dispatch::on_stop_deadline`).
    fn on_stop_deadline(&self) {}
}

/// A connection's listener: a channel or a Ring-style socket, each one pointer (no box around
/// it, and no second pointer to follow for every message).
#[derive(Clone)]
pub(crate) enum Listener {
    Channel(crate::Channel),
    Socket(crate::ring_ws::Socket),
}

impl std::ops::Deref for Listener {
    type Target = dyn ConnListener;

    fn deref(&self) -> &Self::Target {
        match self {
            Listener::Channel(c) => c,
            Listener::Socket(s) => s,
        }
    }
}

impl Listener {
    fn downgrade(&self) -> WeakListener {
        match self {
            Listener::Channel(c) => WeakListener::Channel(c.downgrade()),
            Listener::Socket(s) => WeakListener::Socket(s.downgrade()),
        }
    }
}

/// A [`Listener`] that does not keep it alive.
enum WeakListener {
    Channel(Weak<crate::channel::ChannelInner>),
    Socket(Weak<crate::ring_ws::SocketInner>),
}

impl WeakListener {
    fn upgrade(&self) -> Option<Listener> {
        match self {
            WeakListener::Channel(w) => w.upgrade().map(|inner| Listener::Channel(crate::Channel::from_inner(inner))),
            WeakListener::Socket(w) => {
                w.upgrade().map(|inner| Listener::Socket(crate::ring_ws::Socket::from_inner(inner)))
            }
        }
    }
}

/// What the server keeps for each connection (the reactor's `Dispatch::Attachment`): every
/// listener of the connection's exchanges (several HTTP channels can wait on one pipelined
/// connection), and its WebSocket listener reached without a lock for every message.
/// Lazily made: most connections never have a listener, and an idle connection stays small.
#[derive(Default)]
pub(crate) struct Attachment(OnceLock<Box<Listeners>>);

#[derive(Default)]
struct Listeners {
    /// The WebSocket listener, once there is one (weak: the strong reference is in `by_id`,
    /// which the close empties, so a listener holding the connection is no cycle).
    ws: OnceLock<WeakListener>,
    by_id: Mutex<Vec<(u64, Listener)>>,
    /// The rest of response bodies waiting for the connection to drain (see `pump.rs`):
    /// several when pipelined requests are answered at once.
    #[allow(clippy::vec_box)] // a pump moves between threads boxed; parking keeps the box
    body: Mutex<Vec<Box<crate::pump::Pump>>>,
    /// Requests whose spooled bodies are on disk, to be served from the reactor thread (see
    /// `Dispatch::on_wake`).
    ready: Mutex<Vec<crate::Request>>,
}

impl Listeners {
    fn lock(&self) -> MutexGuard<'_, Vec<(u64, Listener)>> {
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Attachment {
    /// Every listener now (rare events: a peer's EOF, a stop's deadline).
    pub(crate) fn all(&self) -> Vec<Listener> {
        // Pairs with the fence in `attach` (see there).
        fence(Ordering::SeqCst);
        self.0.get().map(|l| l.lock().iter().map(|(_, l)| l.clone()).collect()).unwrap_or_default()
    }

    /// The WebSocket listener, without a lock (every message).
    pub(crate) fn ws(&self) -> Option<Listener> {
        self.0.get()?.ws.get()?.upgrade()
    }

    /// The connection closed: every listener, taken out (nothing attaches any more, see
    /// [`attach`]).
    pub(crate) fn take_all(&self) -> Vec<(u64, Listener)> {
        // Pairs with the fence in `attach` (see there).
        fence(Ordering::SeqCst);
        self.0.get().map(|l| std::mem::take(&mut *l.lock())).unwrap_or_default()
    }
}

impl Attachment {
    /// Parks the rest of a response body until the connection drains.
    pub(crate) fn park_body(&self, pump: Box<crate::pump::Pump>) {
        let ls = self.0.get_or_init(Default::default);
        ls.body.lock().unwrap_or_else(|e| e.into_inner()).push(pump);
    }

    /// The parked body of the answer to request `seq`, if it is still parked (taken out).
    pub(crate) fn unpark_body(&self, seq: u64) -> Option<Box<crate::pump::Pump>> {
        let mut parked = self.0.get()?.body.lock().unwrap_or_else(|e| e.into_inner());
        let at = parked.iter().position(|p| p.seq() == seq)?;
        Some(parked.swap_remove(at))
    }

    /// Every parked body (taken out).
    #[allow(clippy::vec_box)]
    pub(crate) fn unpark_all(&self) -> Vec<Box<crate::pump::Pump>> {
        self.0.get().map(|l| std::mem::take(&mut *l.body.lock().unwrap_or_else(|e| e.into_inner()))).unwrap_or_default()
    }

    /// Keeps a request to be served on the reactor thread; `false` (the request dropped) when
    /// the connection is closed.
    pub(crate) fn push_ready(&self, conn: &ConnHandle, req: crate::Request) -> bool {
        let ls = self.0.get_or_init(Default::default);
        ls.ready.lock().unwrap_or_else(|e| e.into_inner()).push(req);
        // As for parked bodies: the reactor marks the connection closed before `on_close` takes
        // what is here, under the same lock.
        if conn.is_closed() {
            drop(std::mem::take(&mut *ls.ready.lock().unwrap_or_else(|e| e.into_inner())));
            return false;
        }
        true
    }

    /// The requests ready to be served (taken out).
    pub(crate) fn take_ready(&self) -> Vec<crate::Request> {
        self.0
            .get()
            .map(|l| std::mem::take(&mut *l.ready.lock().unwrap_or_else(|e| e.into_inner())))
            .unwrap_or_default()
    }
}

pub(crate) type ConnHandle = httpkit_reactor::ConnHandle<Attachment>;

/// Adds a listener; `false` when the connection is already closed (nothing will be reported).
pub(crate) fn attach(conn: &ConnHandle, id: u64, l: Listener) -> bool {
    let ls = conn.attachment().0.get_or_init(Default::default);
    // The reactor marks the connection closed (or its peer gone), then looks for listeners;
    // this makes the list, then looks at those marks. With a SeqCst fence on each side, at
    // least one of the two sees the other: the listener is taken by `on_close` (or told of the
    // EOF), or refused here.
    fence(Ordering::SeqCst);
    let mut g = ls.lock();
    // The reactor marks the connection closed before `on_close` takes the listeners (under
    // this lock): a listener pushed here is either taken then, or refused now.
    if conn.is_closed() {
        return false;
    }
    if l.is_websocket() {
        let _ = ls.ws.set(l.downgrade());
    }
    // Most connections have one listener for their whole life (a WebSocket): room for one.
    g.reserve_exact(1);
    g.push((id, l));
    true
}

/// Removes the listener `id`, if it is still there.
pub(crate) fn detach(conn: &ConnHandle, id: u64) {
    if let Some(ls) = conn.attachment().0.get() {
        ls.lock().retain(|(i, _)| *i != id);
    }
}
