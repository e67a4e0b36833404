//! The phases of a connection, each an enum whose transitions `Conn` makes through named
//! methods (see the diagram in the parent module).

use crate::CloseReason;

/// What the peer's side of the stream has done. "The FIN was seen" (the poller said so) and
/// "everything was read" are two states: bytes may remain unread in front of a FIN, and a close
/// before they are read would be a reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Input {
    /// The peer may send more.
    Open,
    /// The peer closed its side; what it sent before may not all be read yet.
    FinSeen,
    /// Read to the end (a read returned 0).
    Ended,
}

/// What is done with the bytes the peer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reading {
    /// A PROXY protocol header may come first.
    Proxy,
    /// Requests (or WebSocket frames) are decoded.
    Requests,
    /// Nothing more is decoded (after an error, a response that closes, an upgrade request
    /// until its 101): what arrives stays buffered, or is discarded while lingering.
    Stopped,
}

/// Where the connection stands on its way to being closed. Each state is later than the one
/// before it; answers that are due block every step but an abort (`Now`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Close {
    /// Not closing.
    Open,
    /// Close once every request in flight is answered (then `AfterFlush`).
    AfterAnswers(Ending),
    /// Close once the write queue is empty: then `Lingering`, or `Now` when the input is read
    /// to its end.
    AfterFlush(Ending),
    /// The write side is shut; the input is read and dropped until the peer's EOF (or the
    /// linger timeout), so unread input does not turn the last answer into a reset.
    Lingering(Ending),
    /// Closed: the loop reaps the connection with this reason.
    Now(CloseReason),
}

/// How a connection that closes once its output is written ends, as the dispatcher hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// The server chose to close (a response that closes, an error, a stop).
    Local,
    /// The peer left; what was due to it is written first.
    PeerClosed,
}

impl Ending {
    pub(super) fn reason(self) -> CloseReason {
        match self {
            Ending::Local => CloseReason::Local,
            Ending::PeerClosed => CloseReason::PeerClosed,
        }
    }
}
