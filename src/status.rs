//! Where a server is in its life, stored in one atomic that every job reads.

use std::sync::atomic::{AtomicU8, Ordering};

/// Where a server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ServerStatus {
    /// Accepting and serving.
    Running = 0,
    /// A stop is in progress.
    Stopping = 1,
    /// Stopped: the listener and every connection are closed.
    Stopped = 2,
}

/// A [`ServerStatus`] that several threads read and change.
#[derive(Debug)]
pub(crate) struct AtomicStatus(AtomicU8);

impl AtomicStatus {
    pub(crate) fn new(s: ServerStatus) -> Self {
        Self(AtomicU8::new(s as u8))
    }

    pub(crate) fn get(&self) -> ServerStatus {
        match self.0.load(Ordering::Acquire) {
            0 => ServerStatus::Running,
            1 => ServerStatus::Stopping,
            _ => ServerStatus::Stopped,
        }
    }

    pub(crate) fn set(&self, s: ServerStatus) {
        self.0.store(s as u8, Ordering::Release);
    }

    /// Moves from `from` to `to`; `false` if the status was not `from`.
    pub(crate) fn change(&self, from: ServerStatus, to: ServerStatus) -> bool {
        self.0.compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}
