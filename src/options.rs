//! Server options, with http-kit's names and defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use httpkit_reactor::{self as reactor, Limits};

use crate::logging::{LogFn, Loggers};
use crate::pool::WorkerPool;

/// Default of [`Options::max_ws`]: 4 MiB (http-kit's).
pub(crate) const MAX_WS: usize = 4 * 1024 * 1024;

/// Options of [`run_server`](crate::run_server). A by-value builder; every default below.
///
/// | option | http-kit | default | what the client sees when exceeded |
/// |---|---|---|---|
/// | [`ip`](Options::ip) | `:ip` | `0.0.0.0` | |
/// | [`port`](Options::port) | `:port` | 8090 (0 = ephemeral) | |
/// | [`thread`](Options::thread) | `:thread` | 4 worker threads | |
/// | [`worker_name_prefix`](Options::worker_name_prefix) | `:worker-name-prefix` | `worker-` | |
/// | [`queue_size`](Options::queue_size) | `:queue-size` | 20480 | `503` |
/// | [`max_body`](Options::max_body) | `:max-body` | 8 MiB | `413`, connection closed |
/// | [`max_line`](Options::max_line) | `:max-line` | 8192 | `414` (request line) / `431` (header line) |
/// | [`max_header_bytes`](Options::max_header_bytes) | | 64 KiB | `431` |
/// | [`max_ws`](Options::max_ws) | `:max-ws` | 4 MiB | close 1009 |
/// | [`ws_heartbeat`](Options::ws_heartbeat) | | off | a silent WebSocket is pinged, then closed (1006) |
/// | [`long_poll_timeout`](Options::long_poll_timeout) | `with-timeout` | off | a held HTTP channel is answered with your status |
/// | [`expect_continue`](Options::expect_continue) | | every request continues | your answer instead of `100 Continue`, closed |
/// | [`server_header`](Options::server_header) | `:server-header` | `httpkit` | |
/// | [`worker_pool`](Options::worker_pool) | `:worker-pool` | a [`ThreadPool`](crate::ThreadPool) | |
/// | [`error_logger`](Options::error_logger) etc. | `:error-logger` … | the `log` facade | |
/// | [`header_read_timeout`](Options::header_read_timeout) | | 30 s | `408`, closed |
/// | [`idle_timeout`](Options::idle_timeout) | | 60 s | closed |
/// | [`max_pipelined`](Options::max_pipelined) | | 16 | not read further until one is answered |
/// | [`backlog`](Options::backlog) | | 1024 | the kernel refuses or drops new connections |
/// | [`reactors`](Options::reactors) | | 1 | |
/// | [`body_read_timeout`](Options::body_read_timeout), [`min_body_rate`](Options::min_body_rate) | | 30 s window, 256 B/s | `408`, closed |
/// | [`buffer_budget`](Options::buffer_budget) | | 1 GiB | `503` for a body that does not fit |
/// | [`body_buffer_size`](Options::body_buffer_size) | | 1 MiB | larger bodies go to a temporary file |
/// | [`spool_budget`](Options::spool_budget), [`spool_dir`](Options::spool_dir) | | 8 GiB, the system's temporary directory | `503` |
/// | [`write_timeout`](Options::write_timeout), [`min_send_rate`](Options::min_send_rate) | | 60 s window, 256 B/s | closed |
/// | [`max_connections`](Options::max_connections) | | 10 000 | the longest idle connection is closed to admit the new one (none idle: not accepted until one closes) |
#[must_use = "a builder does nothing until it is used"]
#[derive(Clone)]
pub struct Options {
    pub(crate) ip: String,
    pub(crate) port: u16,
    pub(crate) thread: usize,
    pub(crate) worker_name_prefix: String,
    pub(crate) queue_size: usize,
    pub(crate) max_body: usize,
    pub(crate) max_line: usize,
    pub(crate) max_header_bytes: usize,
    pub(crate) max_headers: usize,
    pub(crate) max_ws: usize,
    pub(crate) server_header: Option<String>,
    pub(crate) header_read_timeout: Duration,
    pub(crate) body_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) min_body_rate: u64,
    pub(crate) min_send_rate: u64,
    pub(crate) max_connections: usize,
    pub(crate) write_buffer: usize,
    pub(crate) buffer_budget: usize,
    pub(crate) body_buffer_size: usize,
    pub(crate) reactors: usize,
    pub(crate) spool_budget: u64,
    pub(crate) spool_dir: Option<std::path::PathBuf>,
    pub(crate) backlog: i32,
    pub(crate) max_pipelined: usize,
    pub(crate) access_log: bool,
    pub(crate) max_in_flight: usize,
    pub(crate) worker_pool: Option<Arc<dyn WorkerPool>>,
    /// The pool given is [`Inline`](crate::Inline): requests are served without a job.
    pub(crate) inline_pool: bool,
    pub(crate) loggers: Loggers,
    pub(crate) unix_socket: Option<std::path::PathBuf>,
    pub(crate) proxy_protocol: crate::ProxyProtocol,
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    pub(crate) origins: crate::exchange::OriginPolicy,
    pub(crate) forwarded_header: ForwardedHeader,
    pub(crate) ws_heartbeat: Option<(Duration, Duration)>,
    pub(crate) ws_compression: Option<crate::WsCompression>,
    pub(crate) long_poll_timeout: Option<(Duration, u16)>,
    pub(crate) expect_continue: Option<crate::exchange::ExpectHook>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("ip", &self.ip)
            .field("port", &self.port)
            .field("thread", &self.thread)
            .field("queue_size", &self.queue_size)
            .field("max_body", &self.max_body)
            .field("max_line", &self.max_line)
            .field("max_ws", &self.max_ws)
            .field("server_header", &self.server_header)
            .field("custom_pool", &self.worker_pool.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ip: "0.0.0.0".to_owned(),
            port: 8090,
            thread: 4,
            worker_name_prefix: "worker-".to_owned(),
            queue_size: 20480,
            max_body: Limits::DEFAULT.max_body as usize,
            max_line: Limits::DEFAULT.max_line,
            max_header_bytes: Limits::DEFAULT.max_header_bytes,
            max_headers: Limits::DEFAULT.max_headers,
            max_ws: MAX_WS,
            server_header: Some("httpkit".to_owned()),
            header_read_timeout: reactor::HEADER_READ_TIMEOUT,
            body_read_timeout: reactor::BODY_READ_TIMEOUT,
            idle_timeout: reactor::IDLE_TIMEOUT,
            write_timeout: reactor::WRITE_TIMEOUT,
            min_body_rate: reactor::MIN_BODY_RATE,
            min_send_rate: reactor::MIN_SEND_RATE,
            max_connections: reactor::MAX_CONNECTIONS,
            write_buffer: reactor::WRITE_HIGH_WATER,
            buffer_budget: reactor::BUFFER_BUDGET,
            body_buffer_size: 1 << 20,
            reactors: 1,
            spool_budget: 8 << 30,
            spool_dir: None,
            backlog: 1024,
            max_pipelined: reactor::MAX_PIPELINED,
            access_log: false,
            max_in_flight: 10_000,
            worker_pool: None,
            inline_pool: false,
            loggers: Loggers::default(),
            unix_socket: None,
            proxy_protocol: crate::ProxyProtocol::Off,
            trusted_proxies: Vec::new(),
            origins: crate::exchange::OriginPolicy::Any,
            forwarded_header: ForwardedHeader::default(),
            ws_heartbeat: None,
            ws_compression: None,
            long_poll_timeout: None,
            expect_continue: None,
        }
    }
}

impl Options {
    /// Address to bind (an IP literal). Default `0.0.0.0`.
    pub fn ip(mut self, ip: impl Into<String>) -> Self {
        self.ip = ip.into();
        self
    }

    /// Port to bind; 0 picks a free one (read it back with [`Server::port`](crate::Server::port)).
    /// Default 8090.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Worker threads of the default pool. Default 4. Must be ≥ 1.
    pub fn thread(mut self, n: usize) -> Self {
        self.thread = n;
        self
    }

    /// Name prefix of the default pool's threads (`worker-1`, …). Default `worker-`.
    pub fn worker_name_prefix(mut self, p: impl Into<String>) -> Self {
        self.worker_name_prefix = p.into();
        self
    }

    /// Capacity of the default pool's queue. Default 20480. A request arriving when it is full
    /// is answered `503` with body `Server unavailable, please try again`. Must be ≥ 1.
    pub fn queue_size(mut self, n: usize) -> Self {
        self.queue_size = n;
        self
    }

    /// Largest request body in bytes. Default 8 MiB. Larger → `413` (checked against
    /// `Content-Length` before the body is read), then the connection is closed.
    pub fn max_body(mut self, n: usize) -> Self {
        self.max_body = n;
        self
    }

    /// Longest request line (and header line), CRLF included. Default 8192. A longer request
    /// line → `414`; a longer header line → `431`. Must be ≥ 64.
    pub fn max_line(mut self, n: usize) -> Self {
        self.max_line = n;
        self
    }

    /// Largest header block. Default 64 KiB (at least `max_line`). Larger → `431`.
    pub fn max_header_bytes(mut self, n: usize) -> Self {
        self.max_header_bytes = n;
        self
    }

    /// Most header fields. Default 100, at most 256. More → `431`.
    pub fn max_headers(mut self, n: usize) -> Self {
        self.max_headers = n;
        self
    }

    /// Largest WebSocket message (all fragments). Default 4 MiB. Larger → close 1009.
    pub fn max_ws(mut self, n: usize) -> Self {
        self.max_ws = n;
        self
    }

    /// permessage-deflate (RFC 7692) for WebSockets, both APIs: offered by every browser, it
    /// often shrinks text (JSON, chat) several-fold. The first acceptable offer a client makes
    /// is taken (see [`WsCompression`](crate::WsCompression) for the parameters honoured and the memory they cost);
    /// a client that offers nothing acceptable talks uncompressed. Compressed messages count
    /// against [`Options::max_ws`] as they inflate (a "zip bomb" is a 1009, not an allocation);
    /// data that does not inflate is a 1007.
    ///
    /// Off by default: compression costs CPU on every message and memory per connection (see
    /// [`WsCompression`](crate::WsCompression)), and it leaks secrets when a page mixes them with what an attacker
    /// controls (CRIME/BREACH); turn it on where the traffic is large and compressible.
    ///
    /// ```
    /// let opts = httpkit::Options::default().ws_compression(httpkit::WsCompression::default());
    /// # drop(opts);
    /// ```
    pub fn ws_compression(mut self, c: crate::WsCompression) -> Self {
        self.ws_compression = Some(c);
        self
    }

    /// WebSocket heartbeats, for both WebSocket APIs: a WebSocket nothing was read from for
    /// `interval` is pinged, and closed when nothing at all (a pong or any other frame) arrives
    /// within `timeout` after the ping. Its `on_close` then reports an abnormal close (1006,
    /// reason `"timeout"`), and everything queued for it is released. This finds peers whose
    /// network vanished without a FIN or RST, which TCP alone notices only hours later. Off by
    /// default (as http-kit); 30 s and 30 s suit most browsers and proxies (nginx closes an
    /// upstream that is silent for 60 s by default).
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = httpkit::Options::default()
    ///     .ws_heartbeat(Duration::from_secs(30), Duration::from_secs(30));
    /// # drop(opts);
    /// ```
    pub fn ws_heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.ws_heartbeat = Some((interval, timeout));
        self
    }

    /// Held HTTP channels (long-polls, see [`as_channel`](crate::as_channel)) that nothing was
    /// sent on for `after` are answered with `status` (empty body) and closed, their `on_close`
    /// reporting a server close: as http-kit's `with-timeout`, so that a long-poll client gets
    /// an answer (e.g. `204`, then polls again) before a proxy in front gives up on it (nginx's
    /// `proxy_read_timeout` is 60 s by default). A channel that started streaming is not timed
    /// out. Off by default (a channel is held until answered or its client leaves).
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = httpkit::Options::default().long_poll_timeout(Duration::from_secs(30), 204);
    /// # drop(opts);
    /// ```
    pub fn long_poll_timeout(mut self, after: Duration, status: u16) -> Self {
        self.long_poll_timeout = Some((after, status));
        self
    }

    /// The `Server` header added to responses that have none; `None` adds none.
    /// Default `Some("httpkit")`.
    pub fn server_header(mut self, v: Option<&str>) -> Self {
        self.server_header = v.map(str::to_owned);
        self
    }

    /// Time to receive a request head from its first byte. Default 30 s. Exceeded → `408`.
    pub fn header_read_timeout(mut self, d: Duration) -> Self {
        self.header_read_timeout = d;
        self
    }

    /// The window over which a request body's arrival is measured. Default 30 s. A window that
    /// brings less than [`Options::min_body_rate`] (or nothing) → `408`, closed.
    pub fn body_read_timeout(mut self, d: Duration) -> Self {
        self.body_read_timeout = d;
        self
    }

    /// Least bytes per second a request body must arrive at, averaged over each
    /// [`Options::body_read_timeout`] window (Apache's `MinRate`): a client that sends a byte
    /// now and then gets a `408` instead of holding its connection and buffers. Default 256;
    /// `0` requires only progress.
    pub fn min_body_rate(mut self, bytes_per_sec: u64) -> Self {
        self.min_body_rate = bytes_per_sec;
        self
    }

    /// Least bytes per second a client must read pending output at, averaged over each
    /// [`Options::write_timeout`] window; a slower reader is disconnected. Default 256; `0`
    /// requires only progress.
    pub fn min_send_rate(mut self, bytes_per_sec: u64) -> Self {
        self.min_send_rate = bytes_per_sec;
        self
    }

    /// Time an idle keep-alive connection is kept open. Default 60 s.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }

    /// The window over which a client's reading of pending output is measured. Default 60 s. A
    /// window in which it read less than [`Options::min_send_rate`] (or nothing) → closed.
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.write_timeout = d;
        self
    }

    /// Most open connections. Default 10 000. At the limit a new client is still served: the
    /// connection idle the longest among those with nothing in progress (a keep-alive connection
    /// between requests, or one that has sent nothing yet) is closed to admit it, and the event
    /// logger hears [`events::CONN_EVICTED`](crate::events::CONN_EVICTED). Connections mid-request,
    /// waiting for their answer, or WebSockets are never closed for this; when every connection
    /// is one of those, new ones wait in the listen backlog until one closes.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// How many reactors (single-threaded event loops, each owning its own sockets) serve the
    /// port. Default 1: one reactor does all socket I/O, which is the design's shape and enough
    /// while socket work fits one core (it does on small machines, and whenever the handlers,
    /// not the sockets, are what costs). Raise it on a machine with cores to spare when the
    /// reactor thread is the one at 100 %: then each reactor takes its share of new connections
    /// (`SO_REUSEPORT` on the address the server binds, so the kernel spreads them; a listener
    /// you hand to [`serve`](crate::serve) or a Unix socket is shared, each reactor accepting
    /// from it). All reactors share the one worker pool, the statistics and the server-wide
    /// limits: [`max_connections`](Options::max_connections) and
    /// [`buffer_budget`](Options::buffer_budget) count every reactor's connections (at the
    /// connection limit, a reactor makes room by closing the longest-idle connection among its
    /// own). Stop, graceful stop, channels and WebSockets work the same with any number.
    /// Must be ≥ 1.
    pub fn reactors(mut self, n: usize) -> Self {
        self.reactors = n;
        self
    }

    /// The listen backlog: connections the kernel keeps waiting to be accepted. Default 1024
    /// (the kernel may cap it: `net.core.somaxconn` on Linux).
    pub fn backlog(mut self, n: u32) -> Self {
        self.backlog = i32::try_from(n).unwrap_or(i32::MAX);
        self
    }

    /// Most async handlers ([`run_server_async`](crate::run_server_async), feature `tokio`)
    /// running at once; a request past it is answered `503`, as a full worker queue is.
    /// Default 10 000.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// Logs one line per answer through the `log` facade, target `httpkit::access`, level
    /// `info`: client address (after [trusted proxies](Options::trusted_proxies)), method and
    /// target, status, body bytes and the time from the request's arrival, e.g.
    /// `127.0.0.1 "GET /a?b=1" 200 11 0.210ms`. Default off (it costs a string per request).
    pub fn access_log(mut self, on: bool) -> Self {
        self.access_log = on;
        self
    }

    /// Most requests of one connection waiting for their answers at once (pipelining depth);
    /// the connection is not read further until one is answered. Default 16; `1` answers one
    /// request at a time. (Requests that are not safe run alone in any case, RFC 9112 §9.3.2.)
    pub fn max_pipelined(mut self, n: usize) -> Self {
        self.max_pipelined = n;
        self
    }

    /// Most bytes the server holds for all connections together: request bodies being
    /// received (or held behind other pipelined requests), read buffers, queued responses.
    /// Per-connection limits alone let many clients that upload large bodies and never read
    /// pin gigabytes. Past the budget, a request whose body would not fit is answered `503`
    /// (`Retry-After: 1`, connection closed after reading and dropping the rest), and
    /// connections holding queued output are not read until it drains. Default 1 GiB. (Bodies
    /// larger than [`body_buffer_size`](Options::body_buffer_size) go to disk and count against
    /// [`spool_budget`](Options::spool_budget) instead.)
    pub fn buffer_budget(mut self, bytes: usize) -> Self {
        self.buffer_budget = bytes;
        self
    }

    /// Request bodies larger than this (by `Content-Length`, or as a chunked body grows past
    /// it) are spooled to an anonymous temporary file as they arrive, instead of memory, as
    /// nginx does: raise [`max_body`](Options::max_body) to gigabytes and memory does not grow
    /// with it. The writes run on the server's I/O threads; reading the upload pauses while
    /// they lag behind. The handler runs once the whole body is on disk and reads it with
    /// [`Request::body_reader`](crate::Request::body_reader) (or loads it whole with
    /// [`Request::body`](crate::Request::body)). The file is gone as soon as the request is
    /// dropped or the upload aborted. Default 1 MiB; `usize::MAX` keeps every body in memory.
    ///
    /// ```no_run
    /// use httpkit::{Options, Request, Response};
    /// use std::io::Read;
    /// let opts = Options::default().max_body(4 << 30).body_buffer_size(1 << 20).spool_dir("/var/tmp");
    /// let server = httpkit::run_server(|req: Request| {
    ///     let mut n = 0u64;
    ///     let mut buf = vec![0; 1 << 16];
    ///     let mut body = req.body_reader();
    ///     while let Ok(k @ 1..) = body.read(&mut buf) { n += k as u64; }
    ///     Response::ok(format!("{n} bytes"))
    /// }, opts)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn body_buffer_size(mut self, bytes: usize) -> Self {
        self.body_buffer_size = bytes;
        self
    }

    /// Most bytes all spooled request bodies (see
    /// [`body_buffer_size`](Options::body_buffer_size)) may hold on disk at once. A body that
    /// would pass it is answered `503` (`Retry-After: 1`; before any `100 Continue` when its
    /// length is announced; `413` when the announced length alone is larger than the budget).
    /// An announced length is reserved whole when the head arrives, so slow uploads can hold
    /// the budget until they finish or time out. Default 8 GiB.
    pub fn spool_budget(mut self, bytes: u64) -> Self {
        self.spool_budget = bytes;
        self
    }

    /// The directory of spooled request bodies' temporary files. Default: the system's
    /// temporary directory (`TMPDIR`, else `/tmp`). Choose a disk-backed one: on `tmpfs` the
    /// files live in memory after all.
    pub fn spool_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// Bytes that may be queued for one connection before reading from it pauses and
    /// response bodies wait for it to drain. Default 1 MiB.
    pub fn write_buffer(mut self, n: usize) -> Self {
        self.write_buffer = n;
        self
    }

    /// Runs handlers on `pool` instead of the default [`ThreadPool`](crate::ThreadPool); then
    /// `thread`, `worker_name_prefix` and `queue_size` are unused. The server does not shut a
    /// pool it was given down: it stays the caller's.
    pub fn worker_pool<P: WorkerPool>(mut self, pool: P) -> Self {
        self.inline_pool = std::any::TypeId::of::<P>() == std::any::TypeId::of::<crate::Inline>();
        self.worker_pool = Some(Arc::new(pool));
        self
    }

    /// Receives error lines (handler and callback panics, accept errors, failing response
    /// bodies). Default: the
    /// `log` facade at error level.
    pub fn error_logger(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.loggers.error = Some(Arc::new(f) as LogFn);
        self
    }

    /// Receives warnings (WebSocket protocol errors, rejections). Default: `log` at warn level.
    pub fn warn_logger(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.loggers.warn = Some(Arc::new(f) as LogFn);
        self
    }

    /// Receives event names such as `httpkit.server.status.processed.200` (see
    /// [`events`](crate::events)). Default: none.
    pub fn event_logger(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.loggers.event = Some(Arc::new(f) as LogFn);
        self
    }

    /// Listens on a Unix domain socket at `path` instead of `ip:port` (http-kit's
    /// `:address-finder` + `:channel-factory` for UDS).
    ///
    /// A socket file left behind by a server that is gone (nothing accepts on it) is removed
    /// and replaced; if a live server answers there, or the path is not a socket, `run_server`
    /// fails with `AddrInUse`. The file is removed when the server stops. Requests over the
    /// socket have no remote address (`None`).
    pub fn unix_socket(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.unix_socket = Some(path.into());
        self
    }

    /// Whether connections start with a PROXY protocol header (v1 or v2), as sent by HAProxy or
    /// a cloud load balancer in TCP mode. Default off. With `Required`, a connection without a
    /// valid header is closed; with `Optional`, one is used if present. The client address it
    /// carries becomes [`Request::remote_addr`](crate::Request::remote_addr). Enable it only
    /// when every peer is such a proxy: anyone who can connect can claim any address.
    pub fn proxy_protocol(mut self, mode: crate::ProxyProtocol) -> Self {
        self.proxy_protocol = mode;
        self
    }

    /// Trusts the forwarding header named by [`Options::forwarded_header`] from these proxy
    /// addresses (e.g. nginx on `127.0.0.1`): for a request whose socket peer is one of them,
    /// [`Request::remote_addr`](crate::Request::remote_addr) is the client the header names
    /// (port 0), and [`Request::scheme`](crate::Request::scheme) the scheme it names. With
    /// several proxies in a chain, the header is walked from the right past every trusted
    /// address: the first one that is not trusted is the client. A Unix domain socket peer is
    /// trusted when a loopback address is. [`Options::trusted_networks`] takes CIDR ranges.
    ///
    /// Default: no one is trusted and the remote address is always the socket peer, because
    /// any client can send these headers (http-kit trusts them by default, which lets clients
    /// spoof their address).
    pub fn trusted_proxies(mut self, ips: impl IntoIterator<Item = std::net::IpAddr>) -> Self {
        self.trusted_proxies.extend(ips.into_iter().map(ipnet::IpNet::from));
        self
    }

    /// Accepts WebSocket handshakes (both APIs) only from pages on these origins
    /// (`https://app.example.com`, `http://localhost:3000`; compared without regard to case); a
    /// handshake from any other page is answered `403`. Browsers send a site's cookies with a
    /// WebSocket handshake from any page, so a socket authenticated by cookie is open to every
    /// site its user visits unless the origin is checked (cross-site WebSocket hijacking). A
    /// handshake without `Origin` (not from a browser) is allowed.
    ///
    /// Default: any origin, as http-kit — compatible, and right for sockets that authenticate
    /// by a token in the first message rather than by cookie; set it when cookies authenticate.
    ///
    /// ```
    /// # use httpkit::Options;
    /// let opts = Options::default().allowed_origins(["https://app.example.com"]);
    /// ```
    pub fn allowed_origins<S: Into<String>>(mut self, origins: impl IntoIterator<Item = S>) -> Self {
        self.origins = crate::exchange::OriginPolicy::List(origins.into_iter().map(Into::into).collect());
        self
    }

    /// Decides whether a request that announces a body with `Expect: 100-continue` may send
    /// it. `check` sees the request's head (the body has not arrived: [`Request::body`] is
    /// `None`) and returns `None` to let the client continue, or the answer to send at once
    /// (a `401`, `413`, `417`…): then the body is never read, and the connection closes after
    /// the answer. Only the status, headers and an in-memory body of that answer are used.
    ///
    /// By default every such request continues. `check` runs on the reactor thread, before any
    /// worker is involved: keep it quick and never block in it (a panic in it is answered
    /// `500`).
    ///
    /// ```
    /// use httpkit::{Options, Response};
    /// let opts = Options::default().expect_continue(|req| {
    ///     req.header("authorization").is_none().then(|| Response::status_code(401).with_body("log in first"))
    /// });
    /// # drop(opts);
    /// ```
    ///
    /// [`Request::body`]: crate::Request::body
    pub fn expect_continue(
        mut self,
        check: impl Fn(&crate::Request) -> Option<crate::Response> + Send + Sync + 'static,
    ) -> Self {
        self.expect_continue = Some(crate::exchange::ExpectHook(std::sync::Arc::new(check)));
        self
    }

    /// Decides with `check` which origins may open WebSockets (both APIs; `403` otherwise),
    /// e.g. every subdomain of a site. Replaces [`Options::allowed_origins`].
    ///
    /// ```
    /// # use httpkit::Options;
    /// let opts = Options::default().origin_check(|o| o == "https://example.com" || o.ends_with(".example.com"));
    /// ```
    pub fn origin_check(mut self, check: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.origins = crate::exchange::OriginPolicy::Check(std::sync::Arc::new(check));
        self
    }

    /// Trusts whole networks of proxies (a load balancer's subnet, a Kubernetes pod range), as
    /// [`Options::trusted_proxies`] does single addresses.
    ///
    /// ```
    /// # use httpkit::Options;
    /// let opts = Options::default().trusted_networks(["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()]);
    /// ```
    pub fn trusted_networks(mut self, nets: impl IntoIterator<Item = ipnet::IpNet>) -> Self {
        self.trusted_proxies.extend(nets);
        self
    }

    /// Which header the [trusted proxies](Options::trusted_proxies) put the client's address
    /// in. Only that one is read: a proxy passes the other through from the client, who can
    /// forge it. Default [`ForwardedHeader::XForwardedFor`].
    pub fn forwarded_header(mut self, h: ForwardedHeader) -> Self {
        self.forwarded_header = h;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.worker_pool.is_none() {
            if self.thread == 0 {
                return Err("thread must be at least 1".into());
            }
            if self.queue_size == 0 {
                return Err("queue_size must be at least 1".into());
            }
        }
        if self.reactors == 0 {
            return Err("reactors must be at least 1".into());
        }
        if self.max_pipelined == 0 {
            return Err("max_pipelined must be at least 1".into());
        }
        if self.max_line < 64 {
            return Err("max_line must be at least 64".into());
        }
        if self.max_headers == 0 || self.max_headers > httpkit_codec::h1::Limits::HEADERS_CAP {
            return Err(format!("max_headers must be within 1..={}", httpkit_codec::h1::Limits::HEADERS_CAP));
        }
        if self.max_ws == 0 {
            return Err("max_ws must be at least 1".into());
        }
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        if self.write_buffer < 1024 {
            return Err("write_buffer must be at least 1024".into());
        }
        if let Some((_, status)) = self.long_poll_timeout {
            if !(200..600).contains(&status) {
                return Err("long_poll_timeout's status must be a final status (200..=599)".into());
            }
        }
        if let Some((interval, timeout)) = self.ws_heartbeat {
            if interval.is_zero() || timeout.is_zero() {
                return Err("ws_heartbeat's interval and timeout must be greater than zero".into());
            }
        }
        for d in [self.header_read_timeout, self.body_read_timeout, self.idle_timeout, self.write_timeout] {
            if d.is_zero() {
                return Err("timeouts must be greater than zero".into());
            }
        }
        if let Some(h) = &self.server_header {
            if http::HeaderValue::from_str(h).is_err() {
                return Err("server_header is not a valid header value".into());
            }
        }
        Ok(())
    }
}

/// The header a trusted proxy gives the client's address in (see [`Options::forwarded_header`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For`, walked from the right: the entries trusted proxies appended (nginx's
    /// `$proxy_add_x_forwarded_for`, HAProxy's `option forwardfor`, cloud load balancers) are
    /// skipped, the first other one is the client; entries further left come from the client
    /// and are not believed. The scheme comes from `X-Forwarded-Proto`.
    #[default]
    XForwardedFor,
    /// `X-Real-IP`, which the proxy sets, replacing any from the client (nginx's
    /// `proxy_set_header X-Real-IP $remote_addr`).
    XRealIp,
    /// RFC 7239 `Forwarded` (`for=` and `proto=`), walked like `X-Forwarded-For`.
    Forwarded,
}
