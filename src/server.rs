//! The running server: its address, status, and how to stop it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use httpkit_reactor::Handle;

use crate::exchange::ServerShared;
use crate::pool::WorkerPool;
pub use crate::status::ServerStatus;

/// Live counters of a server ([`Server::stats`]): gauges (open now) and totals since start.
/// Each is counted where its event happens, with relaxed atomics (no lock on the hot path).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Connections open now.
    pub connections_open: usize,
    /// WebSocket connections open now.
    pub websockets_open: usize,
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Answers written, by status class: `[1xx, 2xx, 3xx, 4xx, 5xx]` (the handlers' and the
    /// server's own, such as `400` for an invalid request or `503` for a full queue).
    pub answered: [u64; 5],
    /// Requests the worker pool refused (answered `503`).
    pub rejected: u64,
    /// Request heads that did not arrive in time (`408`).
    pub timeouts_header: u64,
    /// Request bodies too slow (`408`).
    pub timeouts_body: u64,
    /// Idle keep-alive connections closed.
    pub timeouts_idle: u64,
    /// Clients that did not read their answers fast enough (or end a close handshake).
    pub timeouts_write: u64,
    /// Connections closed to make room at `max_connections`.
    pub evictions: u64,
    /// Bytes read from clients.
    pub bytes_read: u64,
    /// Bytes written to clients.
    pub bytes_written: u64,
    /// Bytes held for all connections now (see `Options::buffer_budget`).
    pub buffered: usize,
}

/// A running server, returned by [`run_server`](crate::run_server).
///
/// Dropping a `Server` stops it immediately (as [`Server::stop`]); to serve until the process
/// ends, keep it alive, e.g. with [`Server::join`].
#[must_use = "dropping the Server stops it at once: keep it (e.g. call `join`) for as long as it should serve"]
pub struct Server {
    pub(crate) shared: Arc<ServerShared>,
    pub(crate) reactor: Handle,
    pub(crate) pool: Arc<dyn WorkerPool>,
    pub(crate) owns_pool: bool,
    pub(crate) local_addr: Option<SocketAddr>,
    pub(crate) stop_lock: Mutex<()>,
    pub(crate) unix_path: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("local_addr", &self.local_addr).field("status", &self.status()).finish()
    }
}

impl Server {
    /// The bound address (`None` for a Unix domain socket).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The bound port, useful after binding port 0 (`None` for a Unix domain socket).
    pub fn port(&self) -> Option<u16> {
        self.local_addr.map(|a| a.port())
    }

    /// The current status.
    pub fn status(&self) -> ServerStatus {
        self.shared.status.get()
    }

    /// Jobs waiting in the worker pool's queue, if the pool has one — the analogue of the seed's
    /// `(.size queue)` for the pool the server built (or the one you passed).
    pub fn queue_len(&self) -> Option<usize> {
        self.pool.queue_len()
    }

    /// Connections accepted since start.
    pub fn connections_accepted(&self) -> u64 {
        self.reactor.stats().accepted()
    }

    /// Connections open now.
    pub fn connections_open(&self) -> usize {
        self.reactor.stats().open()
    }

    /// The server's live counters (see [`ServerStats`]).
    ///
    /// ```no_run
    /// # let server = httpkit::run_server(|_req| httpkit::Response::ok("x"), httpkit::Options::default())?;
    /// let s = server.stats();
    /// println!("{} open, {} 5xx, {} rejected", s.connections_open, s.answered[4], s.rejected);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stats(&self) -> ServerStats {
        use httpkit_reactor::TimeoutKind;
        use std::sync::atomic::Ordering::Relaxed;
        let r = self.reactor.stats();
        ServerStats {
            connections_open: r.open(),
            websockets_open: r.websockets(),
            connections_accepted: r.accepted(),
            answered: std::array::from_fn(|i| self.shared.answered[i].load(Relaxed)),
            rejected: self.shared.rejected.load(Relaxed),
            timeouts_header: r.timeouts(TimeoutKind::Header),
            timeouts_body: r.timeouts(TimeoutKind::Body),
            timeouts_idle: r.timeouts(TimeoutKind::Idle),
            timeouts_write: r.timeouts(TimeoutKind::Write),
            evictions: r.evictions(),
            bytes_read: r.bytes_read(),
            bytes_written: r.bytes_written(),
            buffered: r.buffered(),
        }
    }

    /// The longest time one turn of the reactor loop took since the last call (or the start),
    /// and starts over: how long, at worst, the loop went without looking at its sockets. A
    /// gauge for monitoring (read it once per scrape) and for benchmarks: disk I/O or a slow
    /// `Inline` handler on the loop shows here.
    pub fn take_longest_loop_turn(&self) -> std::time::Duration {
        self.reactor.stats().take_longest_turn()
    }

    /// Bytes the server holds for its connections now (request bodies being received, read
    /// buffers, responses queued), counted against [`Options::buffer_budget`](crate::Options::buffer_budget).
    pub fn buffered_bytes(&self) -> usize {
        self.reactor.stats().buffered()
    }

    /// Bytes of request bodies spooled to disk now (arriving, or held by requests not yet
    /// dropped), counted against [`Options::spool_budget`](crate::Options::spool_budget).
    pub fn spooled_bytes(&self) -> u64 {
        self.shared.spool.used.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Stops now: the listener and every connection are closed; requests in progress are broken
    /// (their responses are dropped). Returns when the server is stopped. Calling it again, or
    /// after [`Server::stop_graceful`], does nothing.
    pub fn stop(&self) {
        self.stop_with(None);
    }

    /// Stops gracefully: stops accepting, closes idle connections at once, sends WebSockets a
    /// `1001` close, lets requests that reached a worker finish and be answered (with
    /// `Connection: close`) for up to `timeout`, then closes everything. HTTP channels still
    /// open then end properly first: a stream with its final chunk, a waiting long-poll with a
    /// `503`; their `on_close` gets [`CloseKind::ServerStop`](crate::CloseKind::ServerStop).
    /// Returns when the server is stopped.
    pub fn stop_graceful(&self, timeout: Duration) {
        self.stop_with(Some(timeout));
    }

    fn stop_with(&self, timeout: Option<Duration>) {
        let _g = self.stop_lock.lock().unwrap_or_else(|e| e.into_inner());
        if !self.shared.status.change(ServerStatus::Running, ServerStatus::Stopping) {
            return;
        }
        let start = Instant::now();
        self.reactor.stop(timeout.map(|t| crate::deadline_after(start, t)));
        self.reactor.join();
        if self.owns_pool {
            let left = timeout.map_or(Duration::ZERO, |t| t.saturating_sub(start.elapsed()));
            self.pool.shutdown(left);
        }
        if let Some(p) = &self.unix_path {
            let _ = std::fs::remove_file(p);
        }
        self.shared.status.set(ServerStatus::Stopped);
    }

    /// The Unix domain socket path the server listens on (set with
    /// [`Options::unix_socket`](crate::Options::unix_socket)).
    pub fn unix_path(&self) -> Option<&std::path::Path> {
        self.unix_path.as_deref()
    }

    /// Blocks until the server has stopped (stopped from another thread or by a signal handler
    /// calling [`Server::stop`]).
    pub fn join(&self) {
        self.reactor.join();
        if self.status() == ServerStatus::Running {
            // The loop ended without a stop (it can only have failed): finish the stop here.
            self.stop();
        }
        while self.status() != ServerStatus::Stopped {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
