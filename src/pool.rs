//! Worker pools: where handlers run.
//!
//! The server hands every request (and, with the channel API, every WebSocket callback) to a
//! [`WorkerPool`] as a [`Job`]. The default is [`ThreadPool`]: a bounded queue on
//! crossbeam-channel in front of a fixed or growing set of named threads. Any type implementing
//! the trait can be injected with [`Options::worker_pool`](crate::Options::worker_pool).

use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

/// A unit of work from the server. Run it with [`Job::run`] on any thread, exactly once.
pub struct Job {
    task: Box<dyn Task>,
}

pub(crate) trait Task: Send {
    fn run(self: Box<Self>);
    /// The pool refused the job: answer 503 (HTTP) or close 1013 (WebSocket).
    fn reject(self: Box<Self>);
}

impl Job {
    pub(crate) fn new(task: Box<dyn Task>) -> Self {
        Self { task }
    }

    /// Runs the job. Panics inside are caught by the server's own code (the client gets a 500).
    pub fn run(self) {
        self.task.run();
    }

    pub(crate) fn reject(self) {
        self.task.reject();
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Job")
    }
}

/// Where the server runs handlers: the extension point for custom request queues.
///
/// What the server expects:
/// * `execute` must not block for long: it is called on the reactor thread. It either accepts
///   the job (and runs it later, exactly once, on some thread) or gives it back as `Err(job)`;
///   the server then answers `503 Service Unavailable` with body
///   `Server unavailable, please try again` (for a WebSocket message: close code 1013).
/// * Jobs of one connection are submitted one at a time when order matters (the server chains
///   them itself), so a pool may run jobs in any order and in parallel.
/// * [`WorkerPool::shutdown`] is called on server stop only for the pool the server built
///   itself; a pool you pass in stays yours to stop.
///
/// ```
/// use httpkit::{Job, WorkerPool};
/// /// Runs every job on a new thread.
/// struct Spawner;
/// impl WorkerPool for Spawner {
///     fn execute(&self, job: Job) -> Result<(), Job> {
///         std::thread::spawn(move || job.run());
///         Ok(())
///     }
/// }
/// ```
pub trait WorkerPool: Send + Sync + 'static {
    /// Accepts `job` to run later, or gives it back when full or shut down.
    ///
    /// # Errors
    /// `Err(job)` when the job is rejected.
    fn execute(&self, job: Job) -> Result<(), Job>;

    /// Jobs waiting in the queue, if the pool has one.
    fn queue_len(&self) -> Option<usize> {
        None
    }

    /// Stops taking jobs and waits up to `timeout` for running ones to finish.
    fn shutdown(&self, _timeout: Duration) {}
}

impl<P: WorkerPool + ?Sized> WorkerPool for Arc<P> {
    fn execute(&self, job: Job) -> Result<(), Job> {
        (**self).execute(job)
    }
    fn queue_len(&self) -> Option<usize> {
        (**self).queue_len()
    }
    fn shutdown(&self, timeout: Duration) {
        (**self).shutdown(timeout);
    }
}

/// How long an idle worker spins on the queue before parking. Spinning briefly avoids a
/// park/unpark (two context switches) per request under load; an idle pool does not spin.
const SPIN: Duration = Duration::from_micros(50);

struct PoolShared {
    rx: Receiver<Job>,
    tx: Mutex<Option<Sender<Job>>>,
    prefix: String,
    max: usize,
    keep_alive: Duration,
    live: AtomicUsize,
    busy: AtomicUsize,
    /// Jobs accepted and not yet finished (queued or running): the growth rule's measure,
    /// counted before the job is queued so a job between queue and worker is never missed.
    outstanding: AtomicUsize,
    spinners: AtomicUsize,
    /// How often jobs arrive: the one spinning worker spins only while they come often.
    spin_gate: httpkit_reactor::SpinGate,
    next_id: AtomicUsize,
    completed: AtomicU64,
    rejected: AtomicU64,
    exit_lock: Mutex<()>,
    exited: Condvar,
}

/// The default worker pool: a bounded queue in front of named threads.
///
/// Threads: `min_threads` start at once and live until shutdown. When a job is submitted and
/// the jobs accepted but not finished (queued or running) outnumber the live threads, one more
/// thread is started, up to `max_threads`; such an extra
/// thread exits after `keep_alive` without work. (Unlike Java's `ThreadPoolExecutor`, growth
/// does not wait for the queue to fill: a blocked handler should not delay others while threads
/// are allowed.) When the queue holds `queue_capacity` jobs, new jobs are rejected (503).
///
/// ```
/// let pool = httpkit::ThreadPool::builder().min_threads(4).max_threads(8)
///     .queue_capacity(20480).name_prefix("worker-").build().unwrap();
/// assert_eq!(pool.queue_len(), 0);
/// ```
#[derive(Clone)]
pub struct ThreadPool {
    shared: Arc<PoolShared>,
    capacity: usize,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("threads", &self.threads())
            .field("active", &self.active())
            .field("queue_len", &self.queue_len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// Builds a [`ThreadPool`].
#[must_use = "a builder does nothing until it is used"]
#[derive(Debug, Clone)]
pub struct ThreadPoolBuilder {
    min: usize,
    max: usize,
    capacity: usize,
    prefix: String,
    keep_alive: Duration,
}

impl ThreadPoolBuilder {
    /// Threads started at once and kept. Default 4.
    pub fn min_threads(mut self, n: usize) -> Self {
        self.min = n;
        if self.max < n {
            self.max = n;
        }
        self
    }

    /// Most threads. Default: equal to `min_threads` (a fixed pool).
    pub fn max_threads(mut self, n: usize) -> Self {
        self.max = n;
        self
    }

    /// A fixed pool of `n` threads.
    pub fn threads(self, n: usize) -> Self {
        self.min_threads(n).max_threads(n)
    }

    /// Most jobs waiting in the queue. Default 20480 (http-kit's `:queue-size`).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }

    /// Thread names are this prefix followed by 1, 2, … Default `worker-`.
    pub fn name_prefix(mut self, p: impl Into<String>) -> Self {
        self.prefix = p.into();
        self
    }

    /// How long a thread above `min_threads` waits for work before exiting. Default 60 s.
    pub fn keep_alive(mut self, d: Duration) -> Self {
        self.keep_alive = d;
        self
    }

    /// Starts the pool.
    ///
    /// # Errors
    /// `InvalidInput` when `max_threads` is 0, below `min_threads`, or the queue capacity is 0;
    /// or a thread could not be spawned.
    pub fn build(self) -> io::Result<ThreadPool> {
        if self.max == 0 || self.max < self.min || self.capacity == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "worker pool needs max_threads >= max(1, min_threads) and queue_capacity >= 1",
            ));
        }
        let (tx, rx) = crossbeam_channel::bounded(self.capacity);
        let shared = Arc::new(PoolShared {
            rx,
            tx: Mutex::new(Some(tx)),
            prefix: self.prefix,
            max: self.max,
            keep_alive: self.keep_alive,
            live: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            outstanding: AtomicUsize::new(0),
            spinners: AtomicUsize::new(0),
            spin_gate: httpkit_reactor::SpinGate::default(),
            next_id: AtomicUsize::new(1),
            completed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            exit_lock: Mutex::new(()),
            exited: Condvar::new(),
        });
        let pool = ThreadPool { shared, capacity: self.capacity };
        for _ in 0..self.min.max(1) {
            pool.spawn_worker(true)?;
        }
        Ok(pool)
    }
}

impl ThreadPool {
    /// A builder with the defaults (4 threads, queue 20480, prefix `worker-`).
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder {
            min: 4,
            max: 4,
            capacity: 20480,
            prefix: "worker-".to_owned(),
            keep_alive: Duration::from_secs(60),
        }
    }

    /// Jobs waiting in the queue now (the analogue of `(.size queue)`).
    pub fn queue_len(&self) -> usize {
        self.shared.rx.len()
    }

    /// The queue's capacity.
    pub fn queue_capacity(&self) -> usize {
        self.capacity
    }

    /// Live worker threads.
    pub fn threads(&self) -> usize {
        self.shared.live.load(Ordering::Relaxed)
    }

    /// Threads running a job now.
    pub fn active(&self) -> usize {
        self.shared.busy.load(Ordering::Relaxed)
    }

    /// Jobs run to the end.
    pub fn completed(&self) -> u64 {
        self.shared.completed.load(Ordering::Relaxed)
    }

    /// Jobs refused because the queue was full or the pool shut down.
    pub fn rejected(&self) -> u64 {
        self.shared.rejected.load(Ordering::Relaxed)
    }

    fn spawn_worker(&self, core: bool) -> io::Result<()> {
        let shared = self.shared.clone();
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        shared.live.fetch_add(1, Ordering::SeqCst);
        let name = format!("{}{id}", shared.prefix);
        let res = std::thread::Builder::new().name(name).spawn(move || worker_loop(&shared, core));
        if res.is_err() {
            self.shared.live.fetch_sub(1, Ordering::SeqCst);
        }
        res.map(|_| ())
    }
}

fn worker_loop(shared: &PoolShared, core: bool) {
    let mut since_try = 0;
    loop {
        let job = match next_job(shared, if core { None } else { Some(shared.keep_alive) }, &mut since_try) {
            Some(j) => j,
            None => break,
        };
        shared.busy.fetch_add(1, Ordering::SeqCst);
        let _ = catch_unwind(AssertUnwindSafe(|| job.run()));
        shared.busy.fetch_sub(1, Ordering::SeqCst);
        shared.outstanding.fetch_sub(1, Ordering::SeqCst);
        shared.completed.fetch_add(1, Ordering::Relaxed);
    }
    shared.live.fetch_sub(1, Ordering::SeqCst);
    let _g = shared.exit_lock.lock();
    shared.exited.notify_all();
}

/// Workers that may spin at once; the others park at once, so spinning never crowds out the
/// reactor on a small machine.
const MAX_SPINNERS: usize = 1;

/// Spins briefly (if no other worker is spinning, and recent waits were short), then parks;
/// `None` when the pool is shut down (or idle past `idle`).
fn next_job(shared: &PoolShared, idle: Option<Duration>, since_try: &mut u32) -> Option<Job> {
    let rx = &shared.rx;
    match rx.try_recv() {
        Ok(j) => return Some(j),
        Err(TryRecvError::Disconnected) => return None,
        Err(TryRecvError::Empty) => {}
    }
    // Counted as a spinner first (so two never spin at once), given back at once if another is.
    let spin = shared.spin_gate.spin_pays(since_try) && {
        let first = shared.spinners.fetch_add(1, Ordering::AcqRel) < MAX_SPINNERS;
        if !first {
            shared.spinners.fetch_sub(1, Ordering::AcqRel);
        }
        first
    };
    if spin {
        let start = Instant::now();
        let mut i = 0u32;
        let got = loop {
            match rx.try_recv() {
                Ok(j) => break Some(Some(j)),
                Err(TryRecvError::Disconnected) => break Some(None),
                Err(TryRecvError::Empty) => {}
            }
            i = i.wrapping_add(1);
            if i % 8 == 0 && start.elapsed() >= SPIN {
                break None;
            }
            // Yield rather than burn: on a shared core the reactor gets to run at once.
            std::thread::yield_now();
        };
        shared.spinners.fetch_sub(1, Ordering::AcqRel);
        shared.spin_gate.spun(got.is_some());
        if let Some(r) = got {
            return r;
        }
    }
    match idle {
        None => rx.recv().ok(),
        Some(d) => rx.recv_timeout(d).ok(),
    }
}

impl WorkerPool for ThreadPool {
    fn execute(&self, job: Job) -> Result<(), Job> {
        let guard = self.shared.tx.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = guard.as_ref() else {
            self.shared.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(job);
        };
        let outstanding = self.shared.outstanding.fetch_add(1, Ordering::SeqCst) + 1;
        let res = match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(j) | TrySendError::Disconnected(j)) => {
                self.shared.outstanding.fetch_sub(1, Ordering::SeqCst);
                self.shared.rejected.fetch_add(1, Ordering::Relaxed);
                Err(j)
            }
        };
        drop(guard);
        if res.is_ok() {
            // Grow while jobs outnumber threads (each accepted job is counted until it ends).
            let live = self.shared.live.load(Ordering::SeqCst);
            if live < self.shared.max && outstanding > live {
                let _ = self.spawn_worker(false);
            }
        }
        res
    }

    fn queue_len(&self) -> Option<usize> {
        Some(self.shared.rx.len())
    }

    fn shutdown(&self, timeout: Duration) {
        self.shared.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let deadline = crate::deadline_after(Instant::now(), timeout);
        let mut g = self.shared.exit_lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.shared.live.load(Ordering::SeqCst) > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            g = match self.shared.exited.wait_timeout(g, (deadline - now).min(Duration::from_millis(50))) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

/// Runs every job on a thread of its own at once: the stand-in for Java's
/// virtual-thread-per-task executor.
///
/// No queue: a job never waits behind another. A thread that finished its job stays parked for
/// a while (10 s) and takes the next job that arrives, so a busy server does not pay for a
/// thread spawn per request; when none is parked, a new thread starts. With
/// [`ThreadPerTask::max_threads`] set, a job arriving when that many run at once is rejected
/// (503). Threads are named `prefix1`, `prefix2`, …
///
/// ```
/// let pool = httpkit::ThreadPerTask::new().max_threads(10_000);
/// let opts = httpkit::Options::default().worker_pool(pool);
/// ```
#[derive(Debug, Clone)]
pub struct ThreadPerTask {
    inner: Arc<PerTaskInner>,
}

/// How long a thread without a job stays for the next one.
const PARK_FOR: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct PerTaskInner {
    max: Option<usize>,
    prefix: String,
    live: AtomicUsize,
    spawned: AtomicU64,
    rejected: AtomicU64,
    /// Threads parked without a job, newest last: each takes its next job (or `None`: leave)
    /// on its own channel.
    parked: Mutex<Vec<Sender<Option<Job>>>>,
}

impl Default for ThreadPerTask {
    fn default() -> Self {
        Self::new()
    }
}

impl ThreadPerTask {
    /// No cap on running threads, names `task-1`, `task-2`, …
    pub fn new() -> Self {
        Self::build(None, "task-".to_owned())
    }

    fn build(max: Option<usize>, prefix: String) -> Self {
        Self {
            inner: Arc::new(PerTaskInner {
                max,
                prefix,
                live: AtomicUsize::new(0),
                spawned: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                parked: Mutex::new(Vec::new()),
            }),
        }
    }

    /// At most `n` jobs running at once; beyond it jobs are rejected (503).
    pub fn max_threads(self, n: usize) -> Self {
        Self::build(Some(n), self.inner.prefix.clone())
    }

    /// Thread name prefix. Default `task-`.
    pub fn name_prefix(self, p: impl Into<String>) -> Self {
        Self::build(self.inner.max, p.into())
    }

    /// Threads running a job now.
    pub fn live_threads(&self) -> usize {
        self.inner.live.load(Ordering::Relaxed)
    }

    /// Threads started since the pool was made (parked threads are reused).
    pub fn threads_started(&self) -> u64 {
        self.inner.spawned.load(Ordering::Relaxed)
    }

    /// Jobs refused because of the cap.
    pub fn rejected(&self) -> u64 {
        self.inner.rejected.load(Ordering::Relaxed)
    }
}

impl PerTaskInner {
    fn parked(&self) -> std::sync::MutexGuard<'_, Vec<Sender<Option<Job>>>> {
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A thread's life: its first job, then each job handed to it while it is parked.
    fn work(self: &Arc<Self>, first: Job, tx: &Sender<Option<Job>>, rx: &Receiver<Option<Job>>) {
        let mut job = Some(first);
        while let Some(j) = job.take() {
            let _ = catch_unwind(AssertUnwindSafe(|| j.run()));
            self.live.fetch_sub(1, Ordering::AcqRel);
            self.parked().push(tx.clone());
            job = match rx.recv_timeout(PARK_FOR) {
                Ok(next) => next,
                Err(_) => {
                    // Leave, unless a job was handed to this thread just now.
                    let mut parked = self.parked();
                    if let Some(pos) = parked.iter().position(|s| s.same_channel(tx)) {
                        parked.remove(pos);
                        return;
                    }
                    drop(parked);
                    rx.recv().ok().flatten()
                }
            };
        }
    }
}

impl WorkerPool for ThreadPerTask {
    fn execute(&self, job: Job) -> Result<(), Job> {
        let live = self.inner.live.fetch_add(1, Ordering::AcqRel);
        if self.inner.max.is_some_and(|m| live >= m) {
            self.inner.live.fetch_sub(1, Ordering::AcqRel);
            self.inner.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(job);
        }
        // A parked thread takes it at once (its channel is empty while it is parked).
        let parked = self.inner.parked().pop();
        let mut job = job;
        if let Some(tx) = parked {
            match tx.try_send(Some(job)) {
                Ok(()) => return Ok(()),
                // (Its channel was not empty after all: a new thread takes the job.)
                Err(TrySendError::Full(back) | TrySendError::Disconnected(back)) => match back {
                    Some(j) => job = j,
                    None => return Ok(()),
                },
            }
        }
        let n = self.inner.spawned.fetch_add(1, Ordering::Relaxed) + 1;
        let inner = self.inner.clone();
        let (tx, rx) = crossbeam_channel::bounded::<Option<Job>>(1);
        // The job moves into the thread only if spawning succeeds; keep it reachable otherwise.
        let slot = Arc::new(Mutex::new(Some(job)));
        let s2 = slot.clone();
        let res = std::thread::Builder::new().name(format!("{}{n}", inner.prefix)).spawn(move || {
            let job = s2.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(job) = job {
                inner.work(job, &tx, &rx);
            }
        });
        match res {
            Ok(_) => Ok(()),
            Err(_) => {
                self.inner.live.fetch_sub(1, Ordering::AcqRel);
                self.inner.rejected.fetch_add(1, Ordering::Relaxed);
                match slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    Some(job) => Err(job),
                    None => Ok(()),
                }
            }
        }
    }

    fn shutdown(&self, _timeout: Duration) {
        // Parked threads leave now instead of after their wait.
        for tx in self.inner.parked().drain(..) {
            let _ = tx.try_send(None);
        }
    }
}

/// Runs every job at once on the thread that submits it: the reactor thread.
///
/// The fastest choice for handlers that never block and answer with in-memory bodies (no
/// hand-off, no context switch). **Danger:** while a handler runs, no other connection is
/// served; a handler that sleeps, waits on I/O or locks stalls the whole server, and large
/// file or stream bodies are queued whole in memory (the reactor cannot drain while it waits).
#[derive(Debug, Clone, Copy, Default)]
pub struct Inline;

impl WorkerPool for Inline {
    fn execute(&self, job: Job) -> Result<(), Job> {
        let _ = catch_unwind(AssertUnwindSafe(|| job.run()));
        Ok(())
    }
}
