//! Worker pools over real sockets: the default pool's growth, shrinking and figures, the
//! thread-per-task and inline executors, and user pools (a counting wrapper, rayon).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use httpkit::{Inline, Job, Request, Response, ThreadPerTask, ThreadPool, WorkerPool};
use util::*;

/// A gate handlers wait on until the test opens it.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);
impl Gate {
    fn wait(&self) {
        let (m, c) = &*self.0;
        let mut open = m.lock().unwrap();
        while !*open {
            open = c.wait(open).unwrap();
        }
    }
    fn open(&self) {
        let (m, c) = &*self.0;
        *m.lock().unwrap() = true;
        c.notify_all();
    }
}

fn blocking_app(gate: Gate, running: Arc<AtomicUsize>) -> impl Fn(Request) -> Response + Send + Sync + 'static {
    move |req: Request| {
        if req.path() == "/block" {
            running.fetch_add(1, Ordering::SeqCst);
            gate.wait();
        }
        Response::ok(thread::current().name().unwrap_or("?").to_owned())
    }
}

#[test]
fn default_pool_grows_to_max_under_load_and_shrinks_back() {
    let pool = ThreadPool::builder()
        .min_threads(2)
        .max_threads(6)
        .queue_capacity(100)
        .name_prefix("grow-")
        .keep_alive(Duration::from_millis(200))
        .build()
        .unwrap();
    assert_eq!(pool.threads(), 2);
    let (gate, running) = (Gate::default(), Arc::new(AtomicUsize::new(0)));
    let s = start(blocking_app(gate.clone(), running.clone()), opts().worker_pool(pool.clone()));
    let mut clients: Vec<Client> = (0..6)
        .map(|_| {
            let mut c = Client::connect(addr(&s));
            c.send(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
            c
        })
        .collect();
    wait_until("6 handlers running at once", || running.load(Ordering::SeqCst) == 6);
    assert_eq!(pool.threads(), 6);
    assert_eq!(pool.active(), 6);
    gate.open();
    for c in &mut clients {
        assert!(c.read_response().unwrap().text().starts_with("grow-"));
    }
    wait_until("extra threads exit after keep_alive", || pool.threads() == 2);
    wait_until("all counted", || pool.completed() == 6);
}

#[test]
fn queue_length_moves_under_a_blocked_handler() {
    let pool = ThreadPool::builder().threads(1).queue_capacity(10).build().unwrap();
    let (gate, running) = (Gate::default(), Arc::new(AtomicUsize::new(0)));
    let s = start(blocking_app(gate.clone(), running.clone()), opts().worker_pool(pool.clone()));
    let mut clients: Vec<Client> = (0..5)
        .map(|_| {
            let mut c = Client::connect(addr(&s));
            c.send(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
            c
        })
        .collect();
    wait_until("one running, four queued", || running.load(Ordering::SeqCst) == 1 && pool.queue_len() == 4);
    assert_eq!(pool.active(), 1);
    assert_eq!(s.queue_len(), Some(4), "the server reports its pool's queue");
    gate.open();
    for c in &mut clients {
        assert_eq!(c.read_response().unwrap().status, 200);
    }
    wait_until("drained", || pool.queue_len() == 0 && pool.completed() == 5);
    assert_eq!(pool.rejected(), 0);
}

#[test]
fn thread_per_task_serves_and_caps() {
    let pool = ThreadPerTask::new().name_prefix("vt-").max_threads(2);
    let (gate, running) = (Gate::default(), Arc::new(AtomicUsize::new(0)));
    let s = start(blocking_app(gate.clone(), running.clone()), opts().worker_pool(pool.clone()).warn_logger(|_| {}));
    let r = request(addr(&s), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.text().starts_with("vt-"), "{}", r.text());
    wait_until("the first task's thread exits", || pool.live_threads() == 0);
    let mut a = Client::connect(addr(&s));
    a.send(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut b = Client::connect(addr(&s));
    b.send(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_until("two running", || running.load(Ordering::SeqCst) == 2);
    assert_eq!(request(addr(&s), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 503);
    gate.open();
    assert_eq!(a.read_response().unwrap().status, 200);
    assert_eq!(b.read_response().unwrap().status, 200);
    wait_until("threads gone", || pool.live_threads() == 0);
    assert_eq!(request(addr(&s), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
    assert_eq!(pool.rejected(), 1);
}

#[test]
fn thread_per_task_reuses_parked_threads_and_never_queues() {
    let pool = ThreadPerTask::new();
    // Eight requests that can only finish together: each must have a thread of its own at once.
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let b = barrier.clone();
    let s = start(
        move |req: Request| {
            if req.path() == "/together" {
                b.wait();
            }
            Response::ok("ok")
        },
        opts().worker_pool(pool.clone()),
    );
    let mut clients: Vec<Client> = (0..8).map(|_| Client::connect(addr(&s))).collect();
    for c in &mut clients {
        c.send(b"GET /together HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    for c in &mut clients {
        assert_eq!(c.read_response().unwrap().status, 200);
    }
    let started = pool.threads_started();
    assert_eq!(started, 8);
    // One after another, the parked threads take the next jobs: no new thread per request.
    let mut c = Client::connect(addr(&s));
    for _ in 0..50 {
        assert_eq!(c.get("/").status, 200);
    }
    assert_eq!(pool.threads_started(), started, "threads are reused");
}

/// Handlers that answer `together` only when `n` of them run at the same time (each waits up to
/// 10 s for the others): a job left in the queue while a worker sleeps shows as `alone`.
fn meeting_app(n: usize) -> impl Fn(Request) -> Response + Send + Sync + 'static {
    let room = Arc::new((Mutex::new((0usize, 0usize)), Condvar::new()));
    move |_req: Request| {
        let (m, c) = &*room;
        let mut g = m.lock().unwrap();
        let round = g.1;
        g.0 += 1;
        if g.0 == n {
            *g = (0, round + 1);
            c.notify_all();
            return Response::ok("together");
        }
        let (g, t) = c.wait_timeout_while(g, Duration::from_secs(10), |g| g.1 == round).unwrap();
        drop(g);
        Response::ok(if t.timed_out() { "alone" } else { "together" })
    }
}

/// Idle workers sleep; a burst of jobs must wake as many as it needs, every time, whether the
/// pool was idle for long (all asleep) or just now (one spinning).
fn burst_after_idle_meets(opts_pool: httpkit::Options, n: usize) {
    let s = start(meeting_app(n), opts_pool);
    let mut clients: Vec<Client> = (0..n).map(|_| Client::connect(addr(&s))).collect();
    for round in 0..12 {
        // Short and long pauses: workers spinning, snoozing, or asleep when the burst comes.
        thread::sleep(Duration::from_millis([0, 1, 30][round % 3]));
        for c in &mut clients {
            c.send(b"GET /meet HTTP/1.1\r\nHost: x\r\n\r\n");
        }
        for c in &mut clients {
            let r = c.read_response().unwrap();
            assert_eq!(r.text(), "together", "round {round}");
        }
    }
}

#[test]
fn a_burst_wakes_as_many_sleeping_workers_as_it_needs() {
    let pool = ThreadPool::builder().threads(4).build().unwrap();
    burst_after_idle_meets(opts().worker_pool(pool.clone()), 4);
    assert_eq!(pool.threads(), 4);
}

#[test]
fn thread_per_task_gives_every_job_of_a_burst_a_thread_after_idle() {
    let pool = ThreadPerTask::new();
    burst_after_idle_meets(opts().worker_pool(pool.clone()), 6);
    assert!(pool.threads_started() >= 6, "{}", pool.threads_started());
}

#[test]
fn inline_runs_handlers_on_the_reactor_thread() {
    let s = start(
        |_r: Request| Response::ok(thread::current().name().unwrap_or("?").to_owned()),
        opts().worker_pool(Inline),
    );
    let mut c = Client::connect(addr(&s));
    for _ in 0..20 {
        // `httpkit-reactor`, or `httpkit-reactor-N` with several reactors.
        let name = c.get("/").text();
        assert!(name.starts_with("httpkit-reactor"), "{name}");
    }
}

/// A user pool wrapping the default one and counting what it is given.
struct Counting {
    inner: ThreadPool,
    jobs: Arc<AtomicUsize>,
}

impl WorkerPool for Counting {
    fn execute(&self, job: Job) -> Result<(), Job> {
        self.jobs.fetch_add(1, Ordering::SeqCst);
        self.inner.execute(job)
    }
}

#[test]
fn a_custom_executor_receives_every_job() {
    let jobs = Arc::new(AtomicUsize::new(0));
    let pool = Counting { inner: ThreadPool::builder().threads(2).build().unwrap(), jobs: jobs.clone() };
    let s = start(|_r: Request| Response::ok("counted"), opts().worker_pool(pool));
    let mut c = Client::connect(addr(&s));
    for _ in 0..50 {
        assert_eq!(c.get("/").text(), "counted");
    }
    assert_eq!(jobs.load(Ordering::SeqCst), 50);
}

/// rayon's pool as the worker pool.
struct Rayon(rayon::ThreadPool);

impl WorkerPool for Rayon {
    fn execute(&self, job: Job) -> Result<(), Job> {
        self.0.spawn(move || job.run());
        Ok(())
    }
}

#[test]
fn rayon_pool_works() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).thread_name(|i| format!("rayon-{i}")).build().unwrap();
    let s = start(
        |_r: Request| Response::ok(thread::current().name().unwrap_or("?").to_owned()),
        opts().worker_pool(Rayon(pool)),
    );
    let mut c = Client::connect(addr(&s));
    for _ in 0..10 {
        assert!(c.get("/").text().starts_with("rayon-"));
    }
}

#[test]
fn websocket_message_rejected_by_the_pool_closes_1013() {
    /// Accepts the upgrade request, then rejects everything.
    struct OneShot(ThreadPool, AtomicUsize);
    impl WorkerPool for OneShot {
        fn execute(&self, job: Job) -> Result<(), Job> {
            if self.1.fetch_add(1, Ordering::SeqCst) == 0 {
                self.0.execute(job)
            } else {
                Err(job)
            }
        }
    }
    let got = Arc::new(Mutex::new(Vec::<String>::new()));
    let g = got.clone();
    let handlers = httpkit::ChannelHandlers::new().on_receive(move |_c, m| g.lock().unwrap().push(m.to_text()));
    let pool = OneShot(ThreadPool::builder().threads(1).build().unwrap(), AtomicUsize::new(0));
    let s = start(
        move |req: Request| httpkit::as_channel(&req, handlers.clone()),
        opts().worker_pool(pool).warn_logger(|_| {}),
    );
    let (mut c, r) = ws_connect(addr(&s), "/", "");
    assert_eq!(r.status, 101);
    c.send(&client_frame(0x1, true, b"hello"));
    assert_eq!(c.read_close().unwrap(), (Some(1013), "Server overloaded".to_owned()));
    // The message that was already received is still delivered (on an overflow thread).
    wait_until("delivered", || got.lock().unwrap().len() == 1);
}

#[test]
fn a_pool_that_panics_in_execute_does_not_take_the_server_down() {
    /// Panics on every other job.
    struct Flaky(ThreadPool, AtomicUsize);
    impl WorkerPool for Flaky {
        fn execute(&self, job: Job) -> Result<(), Job> {
            if self.1.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
                panic!("pool bug");
            }
            self.0.execute(job)
        }
    }
    let pool = Flaky(ThreadPool::builder().threads(1).build().unwrap(), AtomicUsize::new(0));
    let s = start(|_r: Request| Response::ok("ok"), opts().worker_pool(pool).error_logger(|_| {}));
    let a = addr(&s);
    assert_eq!(request(a, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
    // The second job panics in execute: that connection is dropped, the server lives on.
    let mut c = Client::connect(a);
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(c.read_response().is_err());
    assert_eq!(request(a, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
}
