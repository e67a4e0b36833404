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
//! ## Threads
//! * `httpkit-reactor`: accepts, reads, parses, writes. Never runs your code.
//! * the worker pool (default: [`ThreadPool`], threads `worker-1` … `worker-4`): runs handlers.
//!   A full queue answers `503`; a handler panic answers `500` and the worker survives.
//!
//! ## Guarantees
//! * Responses on a keep-alive connection go out in request order, even when pipelined requests
//!   finish out of order.
//! * The server owns framing: a handler cannot produce a wrong `Content-Length` or inject headers.
//! * Memory per connection is bounded by the configured limits.
#![deny(missing_docs)]

mod channel;
mod date;
mod handler;
mod logging;
mod options;
mod pool;
mod request;
mod respond;
mod response;
mod ring_ws;
mod serial;
mod server;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU8;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use httpkit_reactor::{Limits, Listener, ReactorConfig};

pub use channel::{
    as_channel, Channel, ChannelHandlers, CloseKind, CloseStatus, Message, SendError,
};
pub use handler::Handler;
pub use logging::{events, LogFn};
pub use options::Options;
pub use pool::{Inline, Job, ThreadPerTask, ThreadPool, ThreadPoolBuilder, WorkerPool};
pub use request::Request;
pub use response::{Body, Response};
pub use ring_ws::{websocket_response, Socket, WebSocketListener, WsListener};
pub use server::{Server, ServerStatus};

/// Re-exported `http` types used in the API.
pub use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};

use respond::{Dispatcher, ServerShared, RUNNING};

/// Starts a server on `opts.ip:opts.port` that answers every request with `handler`.
///
/// # Errors
/// `InvalidInput` for invalid options (with a message naming the option); the bind error if the
/// address cannot be bound; any error starting threads.
pub fn run_server(handler: impl Handler, opts: Options) -> io::Result<Server> {
    opts.validate()
        .map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, m))?;
    let ip: IpAddr = opts.ip.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid ip address {:?}", opts.ip),
        )
    })?;
    let listener = httpkit_reactor::bind_tcp(SocketAddr::new(ip, opts.port), opts.backlog)?;
    start(handler, opts, Listener::Tcp(listener))
}

fn start(handler: impl Handler, opts: Options, listener: Listener) -> io::Result<Server> {
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
    let server_header = opts
        .server_header
        .as_ref()
        .map(|s| Bytes::from(s.clone().into_bytes()));
    let shared = Arc::new(ServerShared {
        status: AtomicU8::new(RUNNING),
        server_header: server_header.clone(),
        loggers: opts.loggers.clone(),
        write_high_water: opts.write_buffer,
        max_ws: opts.max_ws,
        pool: pool.clone(),
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
        write_high_water: opts.write_buffer,
        max_pipelined: 16,
        server_header,
        thread_name: respond::REACTOR_THREAD.to_owned(),
    };
    let dispatcher = Dispatcher {
        handler: Arc::new(handler),
        pool: pool.clone(),
        server: shared.clone(),
    };
    let reactor = match httpkit_reactor::spawn(config, listener, dispatcher) {
        Ok(r) => r,
        Err(e) => {
            if owns_pool {
                pool.shutdown(std::time::Duration::ZERO);
            }
            return Err(e);
        }
    };
    let local_addr = reactor.local_addr();
    Ok(Server {
        shared,
        reactor,
        pool,
        owns_pool,
        local_addr,
        stop_lock: Mutex::new(()),
    })
}
