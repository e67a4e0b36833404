//! Async handlers (cargo feature `tokio`): a handler returns a future, run on a tokio runtime the
//! user hands over, as a worker pool is handed over for blocking handlers. No thread is held
//! while the future waits; the answer reaches the reactor as any other.

use std::future::Future;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::attachment::ConnHandle;
use crate::dispatch::Serve;
use crate::logging::events;
use crate::{Options, Request, Response, Server};

/// Like [`run_server`](crate::run_server), with a handler that returns a future: each request's
/// future runs on `runtime` (a handle to a tokio runtime you built, with its own threads), so a
/// handler can await an async client (a database driver, an HTTP client) without holding a
/// thread. At most [`Options::max_in_flight`] run at once; past it a request is answered `503`.
/// A panic in a future answers `500`. A response whose body is a file, reader or stream is
/// written from tokio's blocking pool (it may wait on a slow client); in-memory bodies are
/// written at once. WebSocket and long-poll callbacks still run on the worker pool.
///
/// ```no_run
/// use std::time::Duration;
/// use httpkit::{run_server_async, Options, Request, Response};
///
/// let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_time().build()?;
/// let server = run_server_async(
///     |req: Request| async move {
///         tokio::time::sleep(Duration::from_millis(10)).await; // e.g. a database query
///         Response::ok(format!("hello {}", req.path()))
///     },
///     Options::default().port(8080),
///     rt.handle().clone(),
/// )?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// As [`run_server`](crate::run_server).
pub fn run_server_async<F, Fut>(handler: F, opts: Options, runtime: tokio::runtime::Handle) -> io::Result<Server>
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let limit = opts.max_in_flight;
    let handler = Arc::new(handler);
    crate::bind_and_start(
        move |_pool, _server| OnRuntime { handler, runtime, in_flight: Arc::new(AtomicUsize::new(0)), limit },
        opts,
    )
}

struct OnRuntime<F> {
    handler: Arc<F>,
    runtime: tokio::runtime::Handle,
    in_flight: Arc<AtomicUsize>,
    limit: usize,
}

impl<F, Fut> Serve for OnRuntime<F>
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    fn serve(&self, req: Request, _conn: &ConnHandle) {
        let Some(ex) = req.exchange.clone() else {
            return;
        };
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.limit {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            ex.server.loggers.warn("too many async handlers in flight: 503");
            ex.server.rejected.fetch_add(1, Ordering::Relaxed);
            ex.server.loggers.event(events::STATUS_503);
            ex.send_error(503, "Server unavailable, please try again");
            return;
        }
        let handler = self.handler.clone();
        // The handler itself is called on the runtime too: nothing of it runs on the reactor.
        let task = self.runtime.spawn(async move { handler(req).await });
        let in_flight = self.in_flight.clone();
        self.runtime.spawn(async move {
            let outcome = task.await;
            in_flight.fetch_sub(1, Ordering::AcqRel);
            match outcome {
                Ok(resp) if resp.body().as_bytes().is_some() => {
                    if catch_unwind(AssertUnwindSafe(|| ex.send_response(resp))).is_err() {
                        ex.fail(true);
                    }
                }
                Ok(resp) => {
                    // A body read piece by piece may wait on the client: off the async threads.
                    // Not awaited: the blocking task writes the answer on its own.
                    drop(tokio::task::spawn_blocking(move || {
                        if catch_unwind(AssertUnwindSafe(|| ex.send_response(resp))).is_err() {
                            ex.fail(true);
                        }
                    }));
                }
                Err(e) => {
                    ex.server.loggers.error(&format!("async handler failed on {}: {e}", ex.method));
                    ex.server.loggers.event(events::STATUS_500);
                    ex.fail(false);
                }
            }
        });
    }
}
