//! Worker pools: where handlers run.
//!
//! The server hands every request (and, with the channel API, every WebSocket callback) to a
//! [`WorkerPool`] as a [`Job`]. The default is [`ThreadPool`]: a bounded queue on
//! crossbeam-channel in front of a fixed or growing set of named threads. Any type implementing
//! the trait can be injected with [`Options::worker_pool`](crate::Options::worker_pool).

use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

/// A unit of work from the server. Run it with [`Job::run`] on any thread, exactly once.
pub struct Job {
    task: JobKind,
}

enum JobKind {
    Task(Box<dyn Task>),
    /// A connection's callbacks (one per WebSocket message in flight): without a box of its
    /// own, as it is the most frequent job of a WebSocket server.
    Drain(crate::serial::Drain),
}

pub(crate) trait Task: Send {
    fn run(self: Box<Self>);
    /// The pool refused the job: answer 503 (HTTP) or close 1013 (WebSocket).
    fn reject(self: Box<Self>);
}

impl Job {
    pub(crate) fn new(task: Box<dyn Task>) -> Self {
        Self { task: JobKind::Task(task) }
    }

    pub(crate) fn drain(serial: Arc<crate::serial::Serial>) -> Self {
        Self { task: JobKind::Drain(crate::serial::Drain(serial)) }
    }

    /// Runs the job. Panics inside are caught by the server's own code (the client gets a 500).
    pub fn run(self) {
        match self.task {
            JobKind::Task(t) => t.run(),
            JobKind::Drain(d) => d.run(),
        }
    }

    pub(crate) fn reject(self) {
        match self.task {
            JobKind::Task(t) => t.reject(),
            JobKind::Drain(d) => d.reject(),
        }
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
    /// [`ThreadPerTask`]: every job gets a thread at once (one is started when none is idle),
    /// and `max` caps the jobs running at once instead of the threads of a queue.
    per_task: bool,
    keep_alive: Duration,
    live: AtomicUsize,
    busy: AtomicUsize,
    /// Jobs accepted and not yet finished (queued or running): the growth rule's measure,
    /// counted before the job is queued so a job between queue and worker is never missed.
    outstanding: AtomicUsize,
    spinners: AtomicUsize,
    /// How often jobs arrive: the one spinning worker spins only while they come often.
    spin_gate: httpkit_reactor::SpinGate,
    /// Idle workers asleep, newest last (the next to be woken: its caches are the warmest).
    sleepers: Mutex<Vec<Thread>>,
    /// `sleepers.len()`, readable without the lock.
    sleeping: AtomicUsize,
    /// Workers woken for a job that have not looked at the queue yet.
    waking: AtomicUsize,
    next_id: AtomicUsize,
    completed: AtomicU64,
    rejected: AtomicU64,
    exit_lock: Mutex<()>,
    exited: Condvar,
}

impl PoolShared {
    fn new(
        rx: Receiver<Job>,
        tx: Sender<Job>,
        prefix: String,
        max: usize,
        per_task: bool,
        keep_alive: Duration,
    ) -> Self {
        Self {
            rx,
            tx: Mutex::new(Some(tx)),
            prefix,
            max,
            per_task,
            keep_alive,
            live: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            outstanding: AtomicUsize::new(0),
            spinners: AtomicUsize::new(0),
            spin_gate: httpkit_reactor::SpinGate::default(),
            sleepers: Mutex::new(Vec::new()),
            sleeping: AtomicUsize::new(0),
            waking: AtomicUsize::new(0),
            next_id: AtomicUsize::new(1),
            completed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            exit_lock: Mutex::new(()),
            exited: Condvar::new(),
        }
    }

    fn sleepers(&self) -> std::sync::MutexGuard<'_, Vec<Thread>> {
        self.sleepers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After a job was queued: wakes a sleeping worker unless the idle workers already awake
    /// (spinning, starting, or woken and not yet at the queue) are enough for the jobs queued,
    /// and grows the pool when none is free. Waking one for every job (what a blocking `recv`
    /// does) costs a wake-up and two context switches even when the spinning worker takes the
    /// job a microsecond later.
    fn find_worker(self: &Arc<Self>) {
        // Pairs with the fence of a worker going to sleep: either it sees the job or this
        // sees it asleep.
        fence(Ordering::SeqCst);
        let outstanding = self.outstanding.load(Ordering::SeqCst);
        let sleeping = self.sleeping.load(Ordering::SeqCst);
        let live = self.live.load(Ordering::SeqCst);
        // A thread per task; or, for a pool, while the jobs accepted outnumber the threads
        // (growth does not wait for the queue to fill).
        let grow = self.per_task || (live < self.max && outstanding > live);
        if sleeping == 0 && !grow {
            // (A fixed pool at saturation: all busy, nothing to do.)
            return;
        }
        // The queue first, then who is free: a free worker counted here looks at the queue
        // after this and takes a job there (read the other way round, a worker could take a
        // job between the reads and still be counted for the one left).
        let queued = self.rx.len();
        let awake = self.spinners.load(Ordering::SeqCst) + self.waking.load(Ordering::SeqCst);
        if queued <= awake || (sleeping > 0 && self.wake_one()) {
            return;
        }
        if grow {
            let _ = self.spawn_worker(false);
        }
    }

    /// A worker counted as free (spinning, or woken) took a job and is no longer counted: a
    /// job queued while it was counted was left to it, so find that job another worker.
    fn after_counted_take(self: &Arc<Self>) {
        if !self.rx.is_empty() {
            self.find_worker();
        }
    }

    fn wake_one(&self) -> bool {
        let mut sleepers = self.sleepers();
        let Some(t) = sleepers.pop() else { return false };
        self.sleeping.fetch_sub(1, Ordering::SeqCst);
        self.waking.fetch_add(1, Ordering::SeqCst);
        drop(sleepers);
        t.unpark();
        true
    }

    /// Whether `me` is still among the sleepers (then taken off them when `leave`); if not, a
    /// waker took it off, and it is no longer counted as waking. (A wake-up while still listed
    /// is spurious.)
    fn still_asleep(&self, me: &Thread, leave: bool) -> bool {
        let mut sleepers = self.sleepers();
        if let Some(pos) = sleepers.iter().rposition(|t| t.id() == me.id()) {
            if leave {
                sleepers.swap_remove(pos);
                self.sleeping.fetch_sub(1, Ordering::SeqCst);
            }
            return true;
        }
        drop(sleepers);
        self.waking.fetch_sub(1, Ordering::SeqCst);
        false
    }

    fn spawn_worker(self: &Arc<Self>, core: bool) -> io::Result<()> {
        let shared = self.clone();
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        shared.live.fetch_add(1, Ordering::SeqCst);
        // A starting worker counts as free and awake until it first looks at the queue.
        shared.waking.fetch_add(1, Ordering::SeqCst);
        let name = format!("{}{id}", shared.prefix);
        let res = std::thread::Builder::new().name(name).spawn(move || worker_loop(&shared, core));
        if res.is_err() {
            self.live.fetch_sub(1, Ordering::SeqCst);
            self.waking.fetch_sub(1, Ordering::SeqCst);
        }
        res.map(|_| ())
    }

    fn execute(self: &Arc<Self>, job: Job) -> Result<(), Job> {
        let guard = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = guard.as_ref() else {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(job);
        };
        let outstanding = self.outstanding.fetch_add(1, Ordering::SeqCst) + 1;
        if self.per_task {
            // Every job a thread at once: the cap counts jobs, and unless the free threads
            // awake (spinning, starting, woken) outnumber the jobs queued, one is claimed for
            // this job before it is queued: a sleeper woken, or else a new thread started (if
            // none can start, the job is refused, never left in the queue without a thread).
            let queued = self.rx.len();
            let awake = self.spinners.load(Ordering::SeqCst) + self.waking.load(Ordering::SeqCst);
            let refused =
                outstanding > self.max || (queued >= awake && !self.wake_one() && self.spawn_worker(false).is_err());
            if refused {
                self.outstanding.fetch_sub(1, Ordering::SeqCst);
                self.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(job);
            }
        }
        let res = match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(j) | TrySendError::Disconnected(j)) => {
                self.outstanding.fetch_sub(1, Ordering::SeqCst);
                self.rejected.fetch_add(1, Ordering::Relaxed);
                Err(j)
            }
        };
        drop(guard);
        if res.is_ok() {
            self.find_worker();
        }
        res
    }

    /// Stops taking jobs (sleeping workers wake to finish the queue and leave), and waits up
    /// to `timeout` for every worker to leave.
    fn shutdown(&self, timeout: Duration) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        while self.wake_one() {}
        let deadline = crate::deadline_after(Instant::now(), timeout);
        let mut g = self.exit_lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.live.load(Ordering::SeqCst) > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            g = match self.exited.wait_timeout(g, (deadline - now).min(Duration::from_millis(50))) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
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
        let shared = Arc::new(PoolShared::new(rx, tx, self.prefix, self.max, false, self.keep_alive));
        let pool = ThreadPool { shared, capacity: self.capacity };
        for _ in 0..self.min.max(1) {
            pool.shared.spawn_worker(true)?;
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
}

fn worker_loop(shared: &Arc<PoolShared>, core: bool) {
    let mut since_try = 0;
    let me = std::thread::current();
    shared.waking.fetch_sub(1, Ordering::SeqCst);
    // Counted as free until now (starting): the first job taken is checked like a woken one's.
    let mut counted = true;
    loop {
        let idle = if core { None } else { Some(shared.keep_alive) };
        let Some(job) = next_job(shared, &me, idle, &mut since_try, &mut counted) else { return };
        shared.busy.fetch_add(1, Ordering::SeqCst);
        let _ = catch_unwind(AssertUnwindSafe(|| job.run()));
        shared.busy.fetch_sub(1, Ordering::SeqCst);
        shared.outstanding.fetch_sub(1, Ordering::SeqCst);
        shared.completed.fetch_add(1, Ordering::Relaxed);
    }
}

impl PoolShared {
    /// A worker leaves: no longer live (`next_job` gave back its place already).
    fn exited(&self) {
        let _g = self.exit_lock.lock();
        self.exited.notify_all();
    }
}

/// Looks at the queue before sleeping: six after short busy-waits, then four after yielding.
const SNOOZE: u32 = 10;

/// Workers that may spin at once; the others park at once, so spinning never crowds out the
/// reactor on a small machine.
const MAX_SPINNERS: usize = 1;

/// The next job: from the queue at once, or after a brief spin (if no other worker is
/// spinning, and recent spins found work), or after sleeping until a job is queued for this
/// worker. `None` when the pool is shut down (or, with `idle`, no job came for that long).
fn next_job(
    shared: &Arc<PoolShared>,
    me: &Thread,
    idle: Option<Duration>,
    since_try: &mut u32,
    counted: &mut bool,
) -> Option<Job> {
    match wait_job(shared, me, idle, since_try, counted) {
        Wait::Job(j) => {
            if std::mem::take(counted) {
                // This worker was counted as free (woken, or starting) until it looked at the
                // queue: a job queued meanwhile may have been left to it as well.
                shared.after_counted_take();
            }
            Some(j)
        }
        Wait::Exit => {
            shared.live.fetch_sub(1, Ordering::SeqCst);
            shared.exited();
            None
        }
        Wait::Left => {
            shared.exited();
            None
        }
    }
}

enum Wait {
    Job(Job),
    /// Shut down.
    Exit,
    /// Idle past the keep-alive, and no longer counted as live.
    Left,
}

/// [`next_job`] without the bookkeeping: `counted` is set when this worker was woken.
fn wait_job(
    shared: &Arc<PoolShared>,
    me: &Thread,
    idle: Option<Duration>,
    since_try: &mut u32,
    counted: &mut bool,
) -> Wait {
    let rx = &shared.rx;
    let deadline = idle.map(|d| crate::deadline_after(Instant::now(), d));
    loop {
        match rx.try_recv() {
            Ok(j) => return Wait::Job(j),
            Err(TryRecvError::Disconnected) => return Wait::Exit,
            Err(TryRecvError::Empty) => {}
        }
        if let Some(got) = spin(shared, since_try) {
            return got.map_or(Wait::Exit, Wait::Job);
        }
        // A few more looks, yielding the core in between (what a blocking channel receive does
        // before it sleeps): a job that is already on its way is taken without a sleep. (Not
        // with a thread per task: with hundreds of threads, their yields would crowd the core.)
        let snooze = if shared.per_task { 0 } else { SNOOZE };
        for step in 0..snooze {
            if step < 6 {
                for _ in 0..1 << step {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
            match rx.try_recv() {
                Ok(j) => return Wait::Job(j),
                Err(TryRecvError::Disconnected) => return Wait::Exit,
                Err(TryRecvError::Empty) => {}
            }
        }
        // Asleep: counted first, then one more look at the queue (a job queued before the
        // count was seen is found here; one queued after it wakes a sleeper).
        {
            // (Listed and counted under one lock: `wake_one` takes both back together.)
            let mut sleepers = shared.sleepers();
            sleepers.push(me.clone());
            shared.sleeping.fetch_add(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        loop {
            match rx.try_recv() {
                Ok(j) => {
                    if !shared.still_asleep(me, true) {
                        // Woken (counted as on its way to the queue) before it took this job.
                        *counted = true;
                    }
                    return Wait::Job(j);
                }
                Err(TryRecvError::Disconnected) => {
                    shared.still_asleep(me, true);
                    return Wait::Exit;
                }
                Err(TryRecvError::Empty) => {}
            }
            match deadline {
                None => std::thread::park(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        if shared.still_asleep(me, true) {
                            // Gone from the sleepers: no longer live either (so a job queued
                            // now makes the pool grow), then a last look at the queue.
                            shared.live.fetch_sub(1, Ordering::SeqCst);
                            fence(Ordering::SeqCst);
                            if let Ok(j) = rx.try_recv() {
                                shared.live.fetch_add(1, Ordering::SeqCst);
                                return Wait::Job(j);
                            }
                            return Wait::Left;
                        }
                        *counted = true;
                        break;
                    }
                    std::thread::park_timeout(d - now);
                }
            }
            if !shared.still_asleep(me, false) {
                *counted = true;
                break;
            }
        }
    }
}

/// Polls the queue for a moment, when that pays and no other worker does: `Some` with what it
/// found, `None` when nothing came.
fn spin(shared: &Arc<PoolShared>, since_try: &mut u32) -> Option<Option<Job>> {
    // Counted as a spinner first (so two never spin at once), given back at once if another is.
    let spin = shared.spin_gate.spin_pays(since_try) && {
        let first = shared.spinners.fetch_add(1, Ordering::SeqCst) < MAX_SPINNERS;
        if !first {
            shared.spinners.fetch_sub(1, Ordering::SeqCst);
        }
        first
    };
    if !spin {
        return None;
    }
    let start = Instant::now();
    let mut i = 0u32;
    let got = loop {
        match shared.rx.try_recv() {
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
    // (Given back before the sleeper's last look at the queue: a job queued while this one
    // was counted is seen there.)
    shared.spinners.fetch_sub(1, Ordering::SeqCst);
    shared.spin_gate.spun(got.is_some());
    if let Some(Some(_)) = got {
        shared.after_counted_take();
    }
    got
}

impl WorkerPool for ThreadPool {
    fn execute(&self, job: Job) -> Result<(), Job> {
        self.shared.execute(job)
    }

    fn queue_len(&self) -> Option<usize> {
        Some(self.shared.rx.len())
    }

    fn shutdown(&self, timeout: Duration) {
        self.shared.shutdown(timeout);
    }
}

/// Runs every job on a thread of its own at once: the stand-in for Java's
/// virtual-thread-per-task executor.
///
/// No queue to wait in: a job never waits behind another. A thread that finished its job stays
/// (for 10 s) and takes the next job that arrives, so a busy server does not pay for a thread
/// spawn per request; when no thread is free, a new one starts. With
/// [`ThreadPerTask::max_threads`] set, a job arriving when that many run at once is rejected
/// (503). Threads are named `prefix1`, `prefix2`, …
///
/// ```
/// let pool = httpkit::ThreadPerTask::new().max_threads(10_000);
/// let opts = httpkit::Options::default().worker_pool(pool);
/// ```
#[derive(Clone)]
pub struct ThreadPerTask {
    shared: Arc<PoolShared>,
}

impl fmt::Debug for ThreadPerTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPerTask")
            .field("threads", &self.shared.live.load(Ordering::Relaxed))
            .field("running", &self.live_threads())
            .field("max", &self.shared.max)
            .finish()
    }
}

/// How long a thread without a job stays for the next one.
const PARK_FOR: Duration = Duration::from_secs(10);

impl Default for ThreadPerTask {
    fn default() -> Self {
        Self::new()
    }
}

impl ThreadPerTask {
    /// No cap on running threads, names `task-1`, `task-2`, …
    pub fn new() -> Self {
        Self::build(usize::MAX, "task-".to_owned())
    }

    fn build(max: usize, prefix: String) -> Self {
        // The queue only holds jobs on their way to a thread that is already free or starting.
        let (tx, rx) = crossbeam_channel::unbounded();
        Self { shared: Arc::new(PoolShared::new(rx, tx, prefix, max, true, PARK_FOR)) }
    }

    /// At most `n` jobs running at once; beyond it jobs are rejected (503).
    pub fn max_threads(self, n: usize) -> Self {
        Self::build(n, self.shared.prefix.clone())
    }

    /// Thread name prefix. Default `task-`.
    pub fn name_prefix(self, p: impl Into<String>) -> Self {
        Self::build(self.shared.max, p.into())
    }

    /// Jobs running (or about to start) now.
    pub fn live_threads(&self) -> usize {
        self.shared.outstanding.load(Ordering::Relaxed)
    }

    /// Threads started since the pool was made (free threads are reused).
    pub fn threads_started(&self) -> u64 {
        (self.shared.next_id.load(Ordering::Relaxed) - 1) as u64
    }

    /// Jobs refused because of the cap.
    pub fn rejected(&self) -> u64 {
        self.shared.rejected.load(Ordering::Relaxed)
    }
}

impl WorkerPool for ThreadPerTask {
    fn execute(&self, job: Job) -> Result<(), Job> {
        self.shared.execute(job)
    }

    fn shutdown(&self, timeout: Duration) {
        self.shared.shutdown(timeout);
    }
}

/// Runs every job at once on the thread that submits it: the reactor thread.
///
/// The fastest choice for handlers that never block and answer with in-memory bodies (no
/// hand-off, no context switch; given to [`Options::worker_pool`](crate::Options::worker_pool),
/// a request goes from the parser to the handler without even a job). **Danger:** while a handler runs, no other connection is
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::mpsc;

    struct Call(Box<dyn FnOnce() + Send>);
    impl Task for Call {
        fn run(self: Box<Self>) {
            (self.0)();
        }
        fn reject(self: Box<Self>) {}
    }

    fn job(f: impl FnOnce() + Send + 'static) -> Job {
        Job::new(Box::new(Call(Box::new(f))))
    }

    /// `n` jobs that each wait (up to 10 s) until all `n` run at once, then report whether
    /// they met: a job queued while a worker sleeps, or behind a running job, never meets.
    fn meet(pool: &dyn WorkerPool, n: usize) -> bool {
        let room = Arc::new((Mutex::new(0usize), Condvar::new()));
        let (tx, rx) = mpsc::channel();
        for _ in 0..n {
            let (room, tx) = (room.clone(), tx.clone());
            let j = job(move || {
                let (m, c) = &*room;
                let mut g = m.lock().unwrap();
                *g += 1;
                c.notify_all();
                let (_g, t) = c.wait_timeout_while(g, Duration::from_secs(10), |g| *g < n).unwrap();
                let _ = tx.send(!t.timed_out());
            });
            assert!(pool.execute(j).is_ok());
        }
        (0..n).all(|_| rx.recv_timeout(Duration::from_secs(20)).unwrap_or(false))
    }

    #[test]
    fn bursts_find_every_sleeping_worker() {
        let pool = ThreadPool::builder().threads(3).build().unwrap();
        for round in 0..300 {
            if round % 50 == 0 {
                // Long enough for the spinner to give up and every worker to sleep.
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(meet(&pool, 3), "round {round}");
        }
        assert_eq!(pool.threads(), 3);
        pool.shutdown(Duration::from_secs(5));
        assert_eq!(pool.threads(), 0, "shut down: the sleepers were woken to leave");
    }

    #[test]
    fn thread_per_task_never_queues_a_job_behind_another() {
        let pool = ThreadPerTask::new();
        for round in 0..300 {
            if round % 50 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(meet(&pool, 1 + round % 5), "round {round}");
        }
        // ~900 jobs; a burst of up to 5 may find the last burst's threads still finishing (not
        // yet free), and then starts threads of its own: at most 5 + 5 threads, reused.
        assert!(pool.threads_started() <= 10, "threads are reused: {}", pool.threads_started());
        pool.shutdown(Duration::from_secs(5));
        assert_eq!(pool.shared.live.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_pool_above_its_minimum_grows_for_a_burst_and_its_extra_threads_leave() {
        let pool =
            ThreadPool::builder().min_threads(1).max_threads(4).keep_alive(Duration::from_millis(20)).build().unwrap();
        for _ in 0..20 {
            assert!(meet(&pool, 4));
            std::thread::sleep(Duration::from_millis(30));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.threads() > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(pool.threads(), 1);
    }
}
