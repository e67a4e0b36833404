//! Commands from other threads to the loop, and the coalescing waker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::Sender;

use crate::{ConnId, Part, WsClose};

/// How a connection closes on request ([`crate::ConnHandle::close`] / `abort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseHow {
    /// After what is already queued is written.
    Graceful,
    /// Now, dropping queued output.
    Abort,
}

use crate::WsUpgrade;

#[derive(Debug)]
pub(crate) enum Command {
    Write {
        id: ConnId,
        seq: u64,
        head: Bytes,
        body: Bytes,
        part: Part,
    },
    Upgrade {
        id: ConnId,
        seq: u64,
        head: Bytes,
        ws: WsUpgrade,
    },
    Frame {
        id: ConnId,
        head: Bytes,
        payload: Bytes,
        close: Option<WsClose>,
        ack: Option<u64>,
    },
    Pong {
        id: ConnId,
        payload: Bytes,
    },
    Close {
        id: ConnId,
        how: CloseHow,
    },
    PauseReading {
        id: ConnId,
        paused: bool,
    },
    ResumeBody {
        id: ConnId,
    },
    Wake {
        id: ConnId,
    },
    Stop {
        deadline: Option<Instant>,
    },
    /// Close the longest idle connection (another loop admitted one at the limit).
    EvictIdle,
}

#[derive(Debug)]
pub(crate) struct RemoteInner {
    /// The reactor's counters (workers count the answers they write themselves).
    pub(crate) stats: Arc<crate::Stats>,
    pub(crate) tx: Sender<Command>,
    pub(crate) waker: mio::Waker,
    /// Set by the loop just before it may block in `poll`; a sender that flips it wakes the
    /// loop, every other sender saves the syscall.
    pub(crate) sleeping: AtomicBool,
}

/// Sends commands to the event loop from any thread, waking it only when needed.
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    pub(crate) inner: Arc<RemoteInner>,
}

impl Remote {
    pub(crate) fn send(&self, cmd: Command) {
        if self.inner.tx.send(cmd).is_ok() && self.inner.sleeping.swap(false, Ordering::SeqCst) {
            let _ = self.inner.waker.wake();
        }
    }
}
