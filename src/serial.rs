//! Per-connection serial execution on the worker pool: callbacks of one connection run one at a
//! time and in order; different connections run in parallel.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use crate::logging::{events, Loggers};
use crate::pool::{Job, Task, WorkerPool};
use crate::respond::panic_message;

type Callback = Box<dyn FnOnce() + Send>;

/// Tasks drained per pool job before yielding the worker to other connections.
const BATCH: usize = 32;
/// Reading from the connection pauses when this many callbacks, or this many message bytes,
/// wait; it resumes below a quarter of each. So a peer that sends faster than its callbacks
/// run is held back by TCP instead of filling memory.
const PAUSE_TASKS: usize = 64;
const PAUSE_BYTES: usize = 1 << 20;

struct State {
    tasks: VecDeque<(Callback, usize)>,
    bytes: usize,
    running: bool,
    paused: bool,
}

/// A queue of callbacks for one connection.
pub(crate) struct Serial {
    state: Mutex<State>,
    pool: Arc<dyn WorkerPool>,
    loggers: Loggers,
    /// Called (once per rejection) when the pool refuses work, e.g. to close a WebSocket 1013.
    on_reject: Box<dyn Fn() + Send + Sync>,
    /// The connection whose reading is paused while the queue is full.
    conn: Option<httpkit_reactor::ConnHandle>,
}

impl Serial {
    pub(crate) fn new(
        pool: Arc<dyn WorkerPool>,
        loggers: Loggers,
        on_reject: Box<dyn Fn() + Send + Sync>,
        conn: Option<httpkit_reactor::ConnHandle>,
    ) -> Arc<Self> {
        let state = State { tasks: VecDeque::new(), bytes: 0, running: false, paused: false };
        Arc::new(Self { state: Mutex::new(state), pool, loggers, on_reject, conn })
    }

    /// Runs `f` now on this thread, as part of the queue: tasks queued meanwhile run after it.
    pub(crate) fn run_inline(self: &Arc<Self>, f: impl FnOnce()) {
        {
            let mut st = self.lock();
            if st.running {
                drop(st);
                // Another drain owns the order; `f` must still run now (it is synchronous
                // by contract), which only happens if the queue was kicked earlier.
                f();
                return;
            }
            st.running = true;
        }
        if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
            self.loggers.error(&format!("callback panicked: {}", panic_message(&*p)));
        }
        self.lock().running = false;
        self.kick();
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
        {
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
        }
        self.kick();
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
        let job = Job::new(Box::new(Drain(self.clone())));
        match catch_unwind(AssertUnwindSafe(|| self.pool.execute(job))) {
            Ok(Ok(())) => {}
            Ok(Err(job)) => job.reject(),
            Err(p) => {
                // A user pool panicked (possibly on the reactor thread): treat it as a refusal.
                self.loggers.error(&format!("worker pool panicked in execute: {}", panic_message(&*p)));
                self.lock().running = false;
                (self.on_reject)();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn drain(self: &Arc<Self>) {
        loop {
            for _ in 0..BATCH {
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
                            return;
                        }
                    }
                };
                if let Err(p) = catch_unwind(AssertUnwindSafe(task)) {
                    self.loggers.error(&format!("callback panicked: {}", panic_message(&*p)));
                    self.loggers.event(events::WS_FRAME_ERROR);
                }
            }
            // More work: give other connections a turn, or go on here if the pool is full (or
            // its `execute` panicked: the queue must not stall with `running` set).
            let again = Job::new(Box::new(Drain(self.clone())));
            if let Ok(Ok(())) = catch_unwind(AssertUnwindSafe(|| self.pool.execute(again))) {
                return;
            }
        }
    }
}

struct Drain(Arc<Serial>);

impl Task for Drain {
    fn run(self: Box<Self>) {
        self.0.drain();
    }

    fn reject(self: Box<Self>) {
        // The pool is full or shut down. Tell the owner (it closes the connection), and still
        // run what is queued, on a thread of its own, so no callback (on_close above all) is lost.
        self.0.loggers.warn("worker pool rejected connection callbacks");
        self.0.loggers.event(events::STATUS_503);
        (self.0.on_reject)();
        let s = self.0.clone();
        let spawned = std::thread::Builder::new().name("httpkit-overflow".into()).spawn(move || s.drain());
        if spawned.is_err() {
            self.0.drain();
        }
    }
}
