//! What the server keeps for each connection (the reactor's `Dispatch::Attachment`): the
//! listeners of its exchanges, and its WebSocket listener reached without a lock per message.

use std::sync::{Arc, Mutex, MutexGuard};

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
pub(crate) struct Listeners {
    pub(crate) by_id: Vec<(u64, Arc<dyn ConnListener>)>,
    /// `on_close` has run: nothing is attached any more.
    pub(crate) closed: bool,
}

impl Attachment {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Listeners> {
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every listener now (rare events: a peer's EOF, a stop's deadline).
    pub(crate) fn all(&self) -> Vec<Arc<dyn ConnListener>> {
        self.lock().by_id.iter().map(|(_, l)| l.clone()).collect()
    }

    pub(crate) fn ws(&self) -> Option<Arc<dyn ConnListener>> {
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
