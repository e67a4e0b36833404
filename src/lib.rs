//! # httpkit
//!
//! An event-driven HTTP/1.1 and WebSocket server library in the manner of Clojure's
//! [http-kit](https://http-kit.github.io): one thread owns every socket (a mio reactor with a
//! sans-IO codec), complete requests go to a bounded worker pool that you can swap out, and
//! handlers are plain functions from [`Request`] to [`Response`].
//!
//! ```no_run
//! use std::time::Duration;
//! use httpkit::{run_server, Options, Request, Response};
//!
//! fn main() -> std::io::Result<()> {
//!     let server = run_server(
//!         |_req: Request| Response::ok("hello HTTP!").header("content-type", "text/html"),
//!         Options::default().port(8080),
//!     )?;
//!     println!("listening on port {:?}", server.port());
//!     server.stop_graceful(Duration::from_millis(100)); // or server.stop()
//!     Ok(())
//! }
//! ```
//!
//! ## WebSockets, long-polling, streaming
//! * The unified channel API, [`as_channel`]: one set of callbacks serves WebSocket clients and
//!   HTTP long-polling / streaming clients; [`Channel::send`] answers or streams.
//! * The Ring-style API, [`websocket_response`] with a [`WebSocketListener`] (or the closure
//!   builder [`WsListener`]) and a [`Socket`] to send, ping and close.
//!
//! ## Worker pools
//! Handlers run on a [`WorkerPool`]: the default [`ThreadPool`] (bounded queue, growth, live
//! figures), [`ThreadPerTask`], [`Inline`], or your own type ([`Options::worker_pool`]).
//!
//! ## Listeners and proxies
//! TCP (`ip`/`port`), a Unix domain socket ([`Options::unix_socket`]), or a listener you bound
//! ([`serve`]); the PROXY protocol ([`Options::proxy_protocol`]) and forwarding headers from
//! proxies you trust ([`Options::trusted_proxies`]).
//!
//! ## Threads
//! * `httpkit-reactor`: accepts, reads, parses, writes. Your handlers never run there (unless
//!   you choose the [`Inline`] pool); what does run there must not block: a custom
//!   [`WorkerPool::execute`] and the loggers.
//! * the worker pool (default: [`ThreadPool`], threads `worker-1` … `worker-4`): runs handlers.
//!   A full queue answers `503`; a handler panic answers `500` and the worker survives; a
//!   panicking WebSocket callback closes that socket with `1011`.
//!
//! ## Guarantees
//! * Responses on a keep-alive connection go out in request order, even when pipelined requests
//!   finish out of order. Pipelined safe requests (GET, HEAD, OPTIONS, TRACE) run in parallel;
//!   any other request runs alone, after the answers before it, and requests after it wait for
//!   its answer (none runs after a response that closes the connection).
//! * The server owns framing: a handler cannot produce a wrong `Content-Length` or inject headers.
//! * Memory per connection is bounded by the configured limits.
#![deny(missing_docs)]

mod answer;
#[cfg(feature = "tokio")]
mod async_handler;
mod attachment;
mod channel;
mod close_status;
mod date;
mod deflate;
mod dispatch;
mod exchange;
mod forwarded;
mod group;
mod handler;
mod logging;
mod options;
mod pool;
mod pump;
mod request;
mod response;
mod ring_ws;
mod serial;
mod server;
mod spool;
mod sse;
mod status;
mod takeover;
pub mod test;
mod timeouts;
mod ws;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use httpkit_reactor::{Limits, Listener, ReactorConfig};

pub use channel::{as_channel, Channel, ChannelHandlers, CloseKind, CloseStatus};
pub use deflate::WsCompression;
pub use group::{Broadcast, ChannelGroup, WhenFull};
pub use handler::Handler;
pub use httpkit_codec::ws::CloseCode;
pub use httpkit_reactor::ProxyProtocol;
pub use logging::{events, LogFn};
pub use options::{ForwardedHeader, Options};
pub use pool::{Inline, Job, ThreadPerTask, ThreadPool, ThreadPoolBuilder, WorkerPool};
pub use request::Request;
pub use response::{Body, Response};
pub use ring_ws::{websocket_response, Socket, WebSocketListener, WsListener};
pub use server::{Server, ServerStats, ServerStatus};
pub use sse::Event;
pub use ws::{CloseError, Message, SendError, MAX_WHOLE_BODY};

/// `start + d`, where a `d` too long to add (`Duration::MAX` for "no limit") is about a century.
pub(crate) fn deadline_after(start: std::time::Instant, d: std::time::Duration) -> std::time::Instant {
    start.checked_add(d).unwrap_or_else(|| start + std::time::Duration::from_secs(u32::MAX.into()))
}

/// Re-exported `http` types used in the API.
#[cfg(feature = "tokio")]
pub use async_handler::run_server_async;
pub use cookie::Cookie;
pub use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
pub use ipnet::IpNet;

use dispatch::Dispatcher;
use exchange::ServerShared;
use status::AtomicStatus;

/// Starts a server on `opts.ip:opts.port` that answers every request with `handler`.
///
/// # Errors
/// `InvalidInput` for invalid options (with a message naming the option); the bind error if the
/// address cannot be bound; any error starting threads.
pub fn run_server(handler: impl Handler, opts: Options) -> io::Result<Server> {
    let handler = Arc::new(handler);
    let inline = opts.inline_pool;
    bind_and_start(move |pool, server| dispatch::OnPool { handler, pool, server, inline }, opts)
}

/// Binds what `opts` name (a Unix socket, or `ip:port`) and starts a server on it.
pub(crate) fn bind_and_start<S: dispatch::Serve>(
    serve: impl FnOnce(Arc<dyn WorkerPool>, Arc<ServerShared>) -> S,
    opts: Options,
) -> io::Result<Server> {
    opts.validate().map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, m))?;
    let ip: IpAddr = opts
        .ip
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid ip address {:?}", opts.ip)))?;
    if let Some(path) = opts.unix_socket.clone() {
        let listener = bind_unix(&path)?;
        let mut server = start_with(serve, opts, Listener::Unix(listener))?;
        server.unix_path = Some(path);
        return Ok(server);
    }
    let mut listeners = httpkit_reactor::bind_tcp_many(SocketAddr::new(ip, opts.port), opts.backlog, opts.reactors)?;
    let first = listeners.remove(0);
    start_many(serve, opts, Listener::Tcp(first), listeners.into_iter().map(Listener::Tcp).collect())
}

/// A listener you built and bound yourself (e.g. handed over by systemd socket activation),
/// for [`serve`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerListener {
    /// A bound TCP listener.
    Tcp(std::net::TcpListener),
    /// A bound Unix domain socket listener (its file is left in place on stop: it is yours).
    Unix(std::os::unix::net::UnixListener),
}

impl From<std::net::TcpListener> for ServerListener {
    fn from(l: std::net::TcpListener) -> Self {
        Self::Tcp(l)
    }
}

impl From<std::os::unix::net::UnixListener> for ServerListener {
    fn from(l: std::os::unix::net::UnixListener) -> Self {
        Self::Unix(l)
    }
}

/// Like [`run_server`], on a listener you built (`ip`, `port` and `unix_socket` are unused) —
/// the analogue of http-kit's `:address-finder` / `:channel-factory`.
///
/// ```no_run
/// let l = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let server = httpkit::serve(|_r: httpkit::Request| httpkit::Response::ok("hi"), httpkit::Options::default(), l)?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// `InvalidInput` for invalid options; errors making the listener non-blocking or starting
/// threads.
pub fn serve(handler: impl Handler, opts: Options, listener: impl Into<ServerListener>) -> io::Result<Server> {
    opts.validate().map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, m))?;
    let l = match listener.into() {
        ServerListener::Tcp(l) => Listener::Tcp(l),
        ServerListener::Unix(l) => Listener::Unix(l),
    };
    start(handler, opts, l)
}

/// Binds a Unix domain socket at `path`, replacing a stale socket file (one nobody accepts on).
fn bind_unix(path: &std::path::Path) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    use std::os::unix::net::{UnixListener, UnixStream};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("a server is already listening on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    UnixListener::bind(path)
}

fn start(handler: impl Handler, opts: Options, listener: Listener) -> io::Result<Server> {
    let handler = Arc::new(handler);
    let inline = opts.inline_pool;
    start_with(move |pool, server| dispatch::OnPool { handler, pool, server, inline }, opts, listener)
}

/// Starts a server whose requests go to what `serve` makes from the worker pool and the
/// server's shared state.
pub(crate) fn start_with<S: dispatch::Serve>(
    serve: impl FnOnce(Arc<dyn WorkerPool>, Arc<ServerShared>) -> S,
    opts: Options,
    listener: Listener,
) -> io::Result<Server> {
    // One listener for every reactor: duplicates of this one (each reactor accepts from it).
    let mut more = Vec::with_capacity(opts.reactors.saturating_sub(1));
    for _ in 1..opts.reactors {
        more.push(match &listener {
            Listener::Tcp(l) => Listener::Tcp(l.try_clone()?),
            Listener::Unix(l) => Listener::Unix(l.try_clone()?),
            _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "this listener cannot be shared by reactors")),
        });
    }
    start_many(serve, opts, listener, more)
}

/// Starts a server on `first` and, with [`Options::reactors`] above 1, the other reactors'
/// listeners in `more`.
fn start_many<S: dispatch::Serve>(
    serve: impl FnOnce(Arc<dyn WorkerPool>, Arc<ServerShared>) -> S,
    opts: Options,
    first: Listener,
    more: Vec<Listener>,
) -> io::Result<Server> {
    let (pool, owns_pool): (Arc<dyn WorkerPool>, bool) = match &opts.worker_pool {
        Some(p) => (p.clone(), false),
        None => (
            Arc::new(
                ThreadPool::builder()
                    .threads(opts.thread)
                    .queue_capacity(opts.queue_size)
                    .name_prefix(opts.worker_name_prefix.clone())
                    .build()?,
            ),
            true,
        ),
    };
    let server_header = opts.server_header.as_ref().map(|s| Bytes::from(s.clone().into_bytes()));
    let shared = Arc::new(ServerShared {
        status: AtomicStatus::new(ServerStatus::Running),
        answered: Default::default(),
        rejected: Default::default(),
        access_log: opts.access_log,
        server_header: server_header.clone(),
        loggers: opts.loggers.clone(),
        write_high_water: opts.write_buffer,
        max_ws: opts.max_ws,
        pool: pool.clone(),
        trusted_proxies: opts.trusted_proxies.clone(),
        forwarded_header: opts.forwarded_header,
        origins: opts.origins.clone(),
        ws_compression: opts.ws_compression,
        expect_continue: opts.expect_continue.clone(),
        io: pump::IoThreads::new(format!("{}io-", opts.worker_name_prefix)),
        long_poll_timeout: opts.long_poll_timeout,
        long_poll_timer: Arc::default(),
        spool: spool::SpoolConfig {
            dir: opts.spool_dir.clone(),
            budget: opts.spool_budget,
            used: std::sync::atomic::AtomicU64::new(0),
        },
    });
    let config = ReactorConfig {
        limits: Limits {
            max_line: opts.max_line,
            max_header_bytes: opts.max_header_bytes.max(opts.max_line),
            max_headers: opts.max_headers,
            max_body: opts.max_body as u64,
        },
        max_connections: opts.max_connections,
        header_read_timeout: opts.header_read_timeout,
        body_read_timeout: opts.body_read_timeout,
        idle_timeout: opts.idle_timeout,
        write_timeout: opts.write_timeout,
        min_body_rate: opts.min_body_rate,
        min_send_rate: opts.min_send_rate,
        buffer_budget: opts.buffer_budget,
        body_buffer_size: opts.body_buffer_size,
        write_high_water: opts.write_buffer,
        max_pipelined: opts.max_pipelined,
        server_header,
        thread_name: httpkit_reactor::THREAD_NAME.to_owned(),
        proxy_protocol: opts.proxy_protocol,
        ws_ping_interval: opts.ws_heartbeat.map(|(interval, _)| interval),
        ws_pong_timeout: opts.ws_heartbeat.map_or(httpkit_reactor::WS_PONG_TIMEOUT, |(_, timeout)| timeout),
    };
    let dispatcher = Dispatcher { serve: Arc::new(serve(pool.clone(), shared.clone())), server: shared.clone() };
    let mut listeners = vec![first];
    listeners.extend(more);
    let reactor = match httpkit_reactor::spawn_many(config, listeners, |_| Ok(dispatcher.clone())) {
        Ok(r) => r,
        Err(e) => {
            if owns_pool {
                pool.shutdown(std::time::Duration::ZERO);
            }
            return Err(e);
        }
    };
    let local_addr = reactor.local_addr();
    Ok(Server { shared, reactor, pool, owns_pool, local_addr, stop_lock: Mutex::new(()), unix_path: None })
}
