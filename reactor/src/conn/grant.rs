//! The lent write side (http-kit's `tryWrite`): the only answer a keep-alive connection waits for
//! may be written by the worker that computed it. The reactor grants the right, folds in what
//! the worker did, and takes it back before it writes or decodes anything itself.

use super::*;

/// Who writes to the socket (see [`ConnHandle::try_write_direct`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Grant {
    /// Only the reactor.
    Kept,
    /// The write side is lent to a worker, or what it did with it is not folded in yet.
    Lent,
}

/// What folding in the worker's use of the write side does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settle {
    /// Only look: an answer the worker wrote whole completes its request; a grant still in use
    /// stays lent.
    Look,
    /// Also withdraw the right (waiting out a write in progress), so that the reactor alone
    /// writes from here on.
    TakeBack,
}

impl<A> Conn<A> {
    /// Lends the write side to the worker answering `seq`, the only request waiting, with
    /// nothing queued (see [`ConnHandle::try_write_direct`]).
    pub(super) fn lend_direct(&mut self, seq: u64) {
        *self.handle.shared.direct.lock().unwrap_or_else(|e| e.into_inner()) =
            Direct::Granted(seq, self.stream.clone());
        self.grant = Grant::Lent;
    }

    /// Lends a WebSocket's write side to the threads that send on it (see
    /// [`ConnHandle::send_frame`]) when the reactor has nothing to write: nothing queued, none
    /// on its way (checked under the lock senders count under), no close begun.
    pub(super) fn lend_ws(&mut self) {
        if self.grant != Grant::Kept || !self.writable || self.close != Close::Open || self.stopping {
            return;
        }
        match &self.ws {
            Some(ws) if !ws.close_sent && ws.fail_at.is_none() && self.wq.is_empty() => {}
            _ => return,
        }
        let mut d = self.handle.shared.direct.lock().unwrap_or_else(|e| e.into_inner());
        if self.handle.shared.queued.load(Ordering::SeqCst) != 0 {
            return;
        }
        *d = Direct::Granted(crate::handle::WS_LEND, self.stream.clone());
        self.grant = Grant::Lent;
    }

    /// Folds in what a worker did with the lent write side: an answer it wrote whole completes
    /// its request (then `true`). With `take_back`, the right is withdrawn too (waiting out a
    /// write in progress: one non-blocking system call of at most 64 KiB), so that the reactor
    /// alone writes from here on.
    pub(super) fn settle_direct(&mut self, how: Settle) -> bool {
        if self.grant == Grant::Kept {
            return false;
        }
        let state = loop {
            let mut d = self.handle.shared.direct.lock().unwrap_or_else(|e| e.into_inner());
            match &*d {
                Direct::Active if how == Settle::TakeBack => {
                    drop(d);
                    std::thread::yield_now();
                }
                Direct::Active | Direct::Granted(..) if how == Settle::Look => return false,
                _ => break std::mem::take(&mut *d),
            }
        };
        self.grant = Grant::Kept;
        if let Direct::Rest(rest) = state {
            // A WebSocket frame's rest, counted as queued by its sender: first in line.
            let (head, payload) = *rest;
            self.wq.push(head);
            self.wq.push(payload);
            return false;
        }
        let Direct::Written(seq) = state else {
            return false;
        };
        self.pipeline.mark_done(seq);
        self.advance_slots();
        true
    }

    /// The connection is going away: drop a grant (and its reference to the socket). A worker
    /// writing now keeps the socket open until its write returns.
    pub(super) fn release_direct(&mut self) {
        if std::mem::replace(&mut self.grant, Grant::Kept) == Grant::Lent {
            *self.handle.shared.direct.lock().unwrap_or_else(|e| e.into_inner()) = Direct::Off;
        }
    }

    /// Folds in what a worker did with the lent write side, once per visit of the loop (and
    /// from the periodic sweep: the idle timer starts). `true` when an answer was completed so:
    /// the connection should be driven. The right is taken back only where the reactor itself
    /// orders answers (a new request), writes, or shuts the write side.
    ///
    /// A WebSocket's loan has nothing to fold in (no answer completes; what a sender handed
    /// back arrives as a frame, and the reactor takes the loan back before writing it): it is
    /// not looked at, which spares the lock its senders take on every frame.
    pub(crate) fn poll_direct(&mut self) -> bool {
        if self.ws.is_some() {
            return false;
        }
        self.settle_direct(Settle::Look)
    }
}
