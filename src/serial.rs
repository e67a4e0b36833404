//! Per-connection serial execution on the worker pool: callbacks of one connection run one at a
//! time and in order; different connections run in parallel.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::attachment::ConnHandle;
use bytes::Bytes;
use httpkit_codec::ws::CloseCode;

use crate::exchange::ServerShared;
use crate::logging::{events, panic_message};
use crate::pool::{Job, WorkerPool};
use crate::ws::server_close_frame;

type Callback = Box<dyn FnOnce() + Send>;

/// Tasks drained per pool job before yielding the worker to other connections.
const BATCH: usize = 32;
/// Reading from the connection pauses when this many callbacks, or this many message bytes,
/// wait; it resumes below a quarter of each. So a peer that sends faster than its callbacks
/// run is held back by TCP instead of filling memory.
const PAUSE_TASKS: usize = 64;
const PAUSE_BYTES: usize = 1 << 20;

struct State {
    tasks: Tasks,
    bytes: usize,
    running: bool,
    paused: bool,
}

/// Why a connection's callbacks could not run as they should.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The pool refused the work (full or shut down).
    Rejected,
    /// A callback panicked.
    Panicked,
}

/// What a fault does to the connection's channel or socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnFault {
    /// A WebSocket: the first fault marks it closed for senders and closes it, 1013 when the
    /// pool refused its callbacks, 1011 when one panicked.
    CloseWebSocket,
    /// An HTTP channel: the pool's refusal marks it closed (a panic was answered already).
    MarkClosed,
}

/// A queue of callbacks for one connection.
pub(crate) struct Serial {
    state: Mutex<State>,
    /// The pool, the loggers and the write buffer's limit (one pointer per connection).
    server: Arc<ServerShared>,
    /// What the pool's refusal or a callback's panic does.
    on_fault: OnFault,
    /// Whether the channel or socket is open (senders look here; a fault clears it).
    open: AtomicBool,
    /// The connection whose reading is paused while the queue is full, and whose callbacks
    /// wait while its write buffer is above its limit (see [`Serial::write_blocked`]).
    conn: Option<ConnHandle>,
}

impl Serial {
    pub(crate) fn new(server: Arc<ServerShared>, on_fault: OnFault, conn: Option<ConnHandle>) -> Arc<Self> {
        let state = State { tasks: Tasks::default(), bytes: 0, running: false, paused: false };
        Arc::new(Self { state: Mutex::new(state), server, on_fault, open: AtomicBool::new(true), conn })
    }

    /// The owner's open flag (kept here: one allocation per connection, not two).
    pub(crate) fn open(&self) -> &AtomicBool {
        &self.open
    }

    /// Called once per fault.
    fn fault(&self, fault: Fault) {
        match self.on_fault {
            OnFault::MarkClosed => {
                if fault == Fault::Rejected {
                    self.open.store(false, Ordering::Release);
                }
            }
            OnFault::CloseWebSocket => {
                if !self.open.swap(false, Ordering::AcqRel) {
                    return;
                }
                let (code, reason) = match fault {
                    Fault::Rejected => (CloseCode::TRY_AGAIN_LATER, "Server overloaded"),
                    Fault::Panicked => (CloseCode::INTERNAL_ERROR, "internal error"),
                };
                let (frame, info) = server_close_frame(code, reason);
                if let Some(conn) = &self.conn {
                    conn.send_frame(frame, Bytes::new(), Some(info));
                }
            }
        }
    }

    /// Whether the connection's write buffer is above the high-water mark: callbacks then wait
    /// (a callback would most likely send, and its send would be refused) until the reactor
    /// says it drained ([`Serial::kick`] from `on_drained`). No worker waits meanwhile.
    fn write_blocked(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| !c.is_closed() && c.queued_bytes() > self.server.write_high_water)
    }

    /// Runs `f` now on this thread, as part of the queue: tasks queued meanwhile run after it.
    /// A panic in `f` is handed back (after the queue is set going again) for the caller to
    /// answer or re-raise.
    pub(crate) fn run_inline(self: &Arc<Self>, f: impl FnOnce()) -> std::thread::Result<()> {
        {
            let mut st = self.lock();
            if st.running {
                drop(st);
                // Another drain owns the order; `f` must still run now (it is synchronous
                // by contract), which only happens if the queue was kicked earlier.
                return catch_unwind(AssertUnwindSafe(f));
            }
            st.running = true;
        }
        let res = catch_unwind(AssertUnwindSafe(f));
        self.lock().running = false;
        self.kick();
        res
    }

    /// Drops every queued task (nothing ran yet).
    pub(crate) fn clear(&self) {
        let mut st = self.lock();
        st.tasks.clear();
        st.bytes = 0;
    }

    /// Queues `f` without starting a drain (see [`Serial::kick`]).
    pub(crate) fn push_quiet(&self, f: impl FnOnce() + Send + 'static) {
        self.lock().tasks.push_back((Box::new(f), 0));
    }

    /// Queues `f` and makes sure a drain is running.
    pub(crate) fn push(self: &Arc<Self>, f: impl FnOnce() + Send + 'static) {
        self.push_weighted(0, f);
    }

    /// Queues `f`, which holds a message of `bytes` bytes; pauses reading when the queue is
    /// full (see [`PAUSE_TASKS`]).
    pub(crate) fn push_weighted(self: &Arc<Self>, bytes: usize, f: impl FnOnce() + Send + 'static) {
        let start = {
            let mut st = self.lock();
            st.tasks.push_back((Box::new(f), bytes));
            st.bytes += bytes;
            if !st.paused && (st.tasks.len() >= PAUSE_TASKS || st.bytes >= PAUSE_BYTES) {
                st.paused = true;
                // Sent under the lock (it never blocks), so pause and resume reach the reactor
                // in the order the queue decided them.
                if let Some(c) = &self.conn {
                    c.pause_reading(true);
                }
            }
            // A drain starts unless one runs (as `kick`, under the same lock).
            !std::mem::replace(&mut st.running, true)
        };
        if start {
            self.submit();
        }
    }

    /// Starts a drain if tasks wait and none is running.
    pub(crate) fn kick(self: &Arc<Self>) {
        {
            let mut st = self.lock();
            if st.running || st.tasks.is_empty() {
                return;
            }
            st.running = true;
        }
        self.submit();
    }

    /// Hands a drain to the pool (`running` is set).
    fn submit(self: &Arc<Self>) {
        let job = Job::drain(self.clone());
        match catch_unwind(AssertUnwindSafe(|| self.server.pool.execute(job))) {
            Ok(Ok(())) => {}
            Ok(Err(job)) => job.reject(),
            Err(p) => {
                // A user pool panicked (possibly on the reactor thread): treat it as a refusal.
                self.server.loggers.error(&format!("worker pool panicked in execute: {}", panic_message(&*p)));
                self.lock().running = false;
                self.fault(Fault::Rejected);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn drain(self: &Arc<Self>) {
        loop {
            for _ in 0..BATCH {
                if self.write_blocked() {
                    // Park the queue (not the worker): the reactor's drained event kicks it.
                    self.lock().running = false;
                    if let Some(c) = &self.conn {
                        c.notify_when_drained();
                    }
                    // It may have drained before the request was seen: look again.
                    if !self.write_blocked() {
                        self.kick();
                    }
                    return;
                }
                let task = {
                    let mut st = self.lock();
                    match st.tasks.pop_front() {
                        Some((t, bytes)) => {
                            st.bytes -= bytes;
                            let low = st.tasks.len() <= PAUSE_TASKS / 4 && st.bytes <= PAUSE_BYTES / 4;
                            if st.paused && low {
                                st.paused = false;
                                if let Some(c) = &self.conn {
                                    c.pause_reading(false);
                                }
                            }
                            t
                        }
                        None => {
                            st.running = false;
                            // An idle connection (a WebSocket between messages, for hours)
                            // keeps no queue memory; a burst makes a new one.
                            st.tasks.more = VecDeque::new();
                            return;
                        }
                    }
                };
                let outer = RUNNING.with(|r| r.replace(self.key()));
                let res = catch_unwind(AssertUnwindSafe(task));
                RUNNING.with(|r| r.set(outer));
                if let Err(p) = res {
                    self.server.loggers.error(&format!("callback panicked: {}", panic_message(&*p)));
                    self.server.loggers.event(events::WS_FRAME_ERROR);
                    self.fault(Fault::Panicked);
                }
            }
            // More work: give other connections a turn, or go on here if the pool is full (or
            // its `execute` panicked: the queue must not stall with `running` set).
            let again = Job::drain(self.clone());
            if let Ok(Ok(())) = catch_unwind(AssertUnwindSafe(|| self.server.pool.execute(again))) {
                return;
            }
        }
    }
}

thread_local! {
    /// The queue whose callback this thread is running (its address; 0: none).
    static RUNNING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Serial {
    fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Whether this thread is running one of this queue's callbacks: a reply to the message
    /// being handled, which may be written to the socket from here (see
    /// `ConnHandle::send_frame`). Other senders (another connection's callback, a thread of
    /// the application looping over many channels) queue to the reactor instead: one system
    /// call per connection would make their loop slow.
    pub(crate) fn is_running_here(&self) -> bool {
        RUNNING.with(|r| r.get() == self.key())
    }
}

/// A queue of callbacks that holds the first one in place: a connection with one callback at a
/// time (a WebSocket echo, a request at a time) queues without an allocation.
#[derive(Default)]
struct Tasks {
    /// The oldest callback, when `more` is empty or all of `more` came after it.
    first: Option<(Callback, usize)>,
    more: VecDeque<(Callback, usize)>,
}

impl Tasks {
    fn push_back(&mut self, task: (Callback, usize)) {
        if self.first.is_none() && self.more.is_empty() {
            self.first = Some(task);
        } else {
            self.more.push_back(task);
        }
    }

    fn pop_front(&mut self) -> Option<(Callback, usize)> {
        self.first.take().or_else(|| self.more.pop_front())
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }

    fn is_empty(&self) -> bool {
        self.first.is_none() && self.more.is_empty()
    }

    fn clear(&mut self) {
        self.first = None;
        self.more.clear();
    }
}

/// Runs a connection's queued callbacks: a pool job (see [`Job::drain`]).
pub(crate) struct Drain(pub(crate) Arc<Serial>);

impl Drain {
    pub(crate) fn run(self) {
        self.0.drain();
    }

    pub(crate) fn reject(self) {
        // The pool is full or shut down. Tell the owner (it closes the connection), and still
        // run what is queued, on a thread of its own, so no callback (on_close above all) is lost.
        self.0.server.loggers.warn("worker pool rejected connection callbacks");
        self.0.server.loggers.event(events::STATUS_503);
        self.0.fault(Fault::Rejected);
        let s = self.0.clone();
        let spawned = std::thread::Builder::new().name("httpkit-overflow".into()).spawn(move || s.drain());
        if spawned.is_err() {
            self.0.drain();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_queue_keeps_its_order_whatever_slot_a_callback_lands_in() {
        use std::sync::Mutex as M;
        let seen = Arc::new(M::new(Vec::new()));
        let mut q = Tasks::default();
        let mut next = 0usize;
        let mut expect = 0usize;
        // Pushes and pops interleaved in every pattern of 8 steps.
        for pattern in 0u32..256 {
            for step in 0..8 {
                if pattern >> step & 1 == 1 {
                    let (s, n) = (seen.clone(), next);
                    q.push_back((Box::new(move || s.lock().unwrap().push(n)), n));
                    next += 1;
                } else if let Some((f, n)) = q.pop_front() {
                    assert_eq!(n, expect);
                    f();
                    expect += 1;
                }
                assert_eq!(q.len(), next - expect);
                assert_eq!(q.is_empty(), next == expect);
            }
        }
        while let Some((f, _)) = q.pop_front() {
            f();
            expect += 1;
        }
        assert_eq!(expect, next);
        assert_eq!(*seen.lock().unwrap(), (0..next).collect::<Vec<_>>());
        q.push_back((Box::new(|| {}), 0));
        q.push_back((Box::new(|| {}), 0));
        q.clear();
        assert!(q.is_empty());
    }
}
