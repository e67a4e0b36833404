//! The reactor's settings and their defaults, each a named constant (the one home of the
//! defaults: `httpkit`'s `Options` refers to these).

use std::time::Duration;

use bytes::Bytes;
use httpkit_codec::h1::Limits;

#[allow(unused_imports)] // doc links
use crate::{ConnHandle, Dispatch};

/// Settings of the event loop. Plain data; see each field for its default.
#[derive(Debug, Clone)]
pub struct ReactorConfig {
    /// Request size limits (request line, header block, body). Default: [`Limits::default`].
    pub limits: Limits,
    /// Most open connections. At the limit, a new connection is admitted by closing the longest
    /// idle connection with nothing in progress (a keep-alive connection between requests, or
    /// one that has sent nothing yet; never one mid-request or waiting for its answer); when
    /// there is none, the listener stops accepting until one closes. Default 10 000.
    pub max_connections: usize,
    /// Time allowed to receive a whole request head, from its first byte. Default 30 s. Exceeded
    /// → `408` and close (slowloris protection: trickling bytes does not extend it).
    pub header_read_timeout: Duration,
    /// The window over which a request body's rate is measured. Default 30 s. A window that
    /// brings fewer than [`ReactorConfig::min_body_rate`] bytes per second (and at least one
    /// byte) → `408` and close.
    pub body_read_timeout: Duration,
    /// Least bytes per second a request body must arrive at, averaged over each
    /// [`ReactorConfig::body_read_timeout`] window (as Apache's `mod_reqtimeout` `MinRate`), so
    /// a client that sends a byte now and then cannot hold its connection and buffers forever.
    /// `0`: only progress is required. Default [`MIN_BODY_RATE`].
    pub min_body_rate: u64,
    /// Time an idle keep-alive connection is kept. Default 60 s. Exceeded → closed quietly.
    pub idle_timeout: Duration,
    /// The window over which the peer's reading of queued output is measured. Default 60 s. A
    /// window in which fewer than [`ReactorConfig::min_send_rate`] bytes per second (and at
    /// least one byte) left while output waited → closed.
    pub write_timeout: Duration,
    /// Least bytes per second a peer must read queued output at, averaged over each
    /// [`ReactorConfig::write_timeout`] window. `0`: only progress is required. Default
    /// [`MIN_SEND_RATE`].
    pub min_send_rate: u64,
    /// Most bytes the reactor holds for all connections together: read buffers, request bodies
    /// being received or held behind others, responses queued. Per-connection bounds alone let
    /// many clients that send large bodies and never read pin gigabytes. Past the budget, a new
    /// request body that would not fit is answered `503` (and its connection closed after a
    /// lingering read), and connections holding queued output stop being read until it drains.
    /// Default [`BUFFER_BUDGET`].
    pub buffer_budget: usize,
    /// Request bodies larger than this are offered to [`Dispatch::open_spool`] (which may keep
    /// them out of memory). Default: never (`usize::MAX`).
    pub body_buffer_size: usize,
    /// Bytes queued for one connection above which the reactor stops reading from it (and
    /// producers should stop until [`Dispatch::on_drained`]). Default 1 MiB.
    pub write_high_water: usize,
    /// Most requests of one connection that may be waiting for their response at once
    /// (pipelining depth). Default 16.
    pub max_pipelined: usize,
    /// `Server` header of the responses the reactor writes itself (errors, 408). Default none.
    pub server_header: Option<Bytes>,
    /// Name of the reactor thread. Default `httpkit-reactor`.
    pub thread_name: String,
    /// Whether connections start with a PROXY protocol header. Default off.
    pub proxy_protocol: ProxyProtocol,
    /// WebSocket heartbeats: after this long with nothing read from a WebSocket, the reactor
    /// pings it, and closes it (the application sees an abnormal close, 1006) when nothing at
    /// all is read within [`ReactorConfig::ws_pong_timeout`] — a peer whose network vanished
    /// without a FIN or RST. `None` (the default): no heartbeats, as http-kit.
    pub ws_ping_interval: Option<Duration>,
    /// How long a pinged WebSocket has to answer (any frame counts). Default
    /// [`WS_PONG_TIMEOUT`].
    pub ws_pong_timeout: Duration,
}

/// Default of [`ReactorConfig::max_connections`].
pub const MAX_CONNECTIONS: usize = 10_000;
/// Default of [`ReactorConfig::header_read_timeout`].
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`ReactorConfig::body_read_timeout`].
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`ReactorConfig::idle_timeout`].
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default of [`ReactorConfig::write_timeout`].
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default of [`ReactorConfig::write_high_water`]: 1 MiB.
pub const WRITE_HIGH_WATER: usize = 1 << 20;
/// Default of [`ReactorConfig::max_pipelined`].
pub const MAX_PIPELINED: usize = 16;
/// Default of [`ReactorConfig::thread_name`].
pub const THREAD_NAME: &str = "httpkit-reactor";
/// Default of [`ReactorConfig::buffer_budget`]: 1 GiB.
pub const BUFFER_BUDGET: usize = 1 << 30;
/// Default of [`ReactorConfig::min_body_rate`]: 256 bytes per second (7.5 KiB per 30 s window).
pub const MIN_BODY_RATE: u64 = 256;
/// Default of [`ReactorConfig::min_send_rate`]: 256 bytes per second (15 KiB per 60 s window).
pub const MIN_SEND_RATE: u64 = 256;
/// Default [`ReactorConfig::ws_pong_timeout`].
pub const WS_PONG_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a failed WebSocket waits for the dispatcher's close (see
/// [`Dispatch::on_ws_fail`]) before the reactor sends it.
pub const WS_FAIL_GRACE: Duration = Duration::from_secs(2);

impl ReactorConfig {
    /// Bytes a body-read window must bring.
    pub(crate) fn body_window_min(&self) -> u64 {
        (self.min_body_rate.saturating_mul(self.body_read_timeout.as_secs())).max(1)
    }

    /// Bytes that must leave during a write window.
    pub(crate) fn send_window_min(&self) -> u64 {
        (self.min_send_rate.saturating_mul(self.write_timeout.as_secs())).max(1)
    }

    /// The low-water mark of a connection's write queue: a queue that was above
    /// [`ReactorConfig::write_high_water`] counts as drained once at most this much is left
    /// (a quarter of the high-water mark), and [`Dispatch::on_drained`] is said.
    pub fn write_low_water(&self) -> usize {
        self.write_high_water / 4
    }
}

/// PROXY protocol handling (versions 1 and 2 are both understood).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyProtocol {
    /// No PROXY header is expected; one would be a malformed request (400).
    #[default]
    Off,
    /// Every connection must start with a PROXY header; without one, or with an invalid one,
    /// the connection is closed.
    Required,
    /// A PROXY header is used if present; an invalid one closes the connection.
    Optional,
}

impl Default for ReactorConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_connections: MAX_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_read_timeout: BODY_READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
            min_send_rate: MIN_SEND_RATE,
            min_body_rate: MIN_BODY_RATE,
            buffer_budget: BUFFER_BUDGET,
            body_buffer_size: usize::MAX,
            write_high_water: WRITE_HIGH_WATER,
            max_pipelined: MAX_PIPELINED,
            server_header: None,
            thread_name: THREAD_NAME.to_owned(),
            proxy_protocol: ProxyProtocol::Off,
            ws_ping_interval: None,
            ws_pong_timeout: WS_PONG_TIMEOUT,
        }
    }
}

thread_local! {
    static ON_REACTOR: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling thread runs a reactor's loop (code that must never block it, such as an
/// inline executor's jobs, asks this; every reactor thread says so, whatever its name).
pub fn on_reactor_thread() -> bool {
    ON_REACTOR.with(std::cell::Cell::get)
}

/// Marks the calling thread as a reactor thread (for its whole life).
pub(crate) fn mark_reactor_thread() {
    ON_REACTOR.with(|c| c.set(true));
}
