//! Error, warning and event loggers (http-kit's `:error-logger`, `:warn-logger`,
//! `:event-logger`). By default errors and warnings go to the `log` facade and events nowhere.

use std::fmt;
use std::sync::Arc;

/// A function receiving a log line.
pub type LogFn = Arc<dyn Fn(&str) + Send + Sync>;

/// The three loggers of a server.
#[derive(Clone, Default)]
pub(crate) struct Loggers {
    pub(crate) error: Option<LogFn>,
    pub(crate) warn: Option<LogFn>,
    pub(crate) event: Option<LogFn>,
}

impl fmt::Debug for Loggers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loggers")
            .field("error", &self.error.is_some())
            .field("warn", &self.warn.is_some())
            .field("event", &self.event.is_some())
            .finish()
    }
}

impl Loggers {
    pub(crate) fn error(&self, msg: &str) {
        match &self.error {
            Some(f) => f(msg),
            None => log::error!("{msg}"),
        }
    }

    pub(crate) fn warn(&self, msg: &str) {
        match &self.warn {
            Some(f) => f(msg),
            None => log::warn!("{msg}"),
        }
    }

    /// Fires an event named like http-kit's (`httpkit.server.status.503`, …).
    pub(crate) fn event(&self, name: &str) {
        if let Some(f) = &self.event {
            f(name);
        }
    }

    pub(crate) fn has_event(&self) -> bool {
        self.event.is_some()
    }
}

/// Event names fired through the event logger, as in http-kit's `EventNames`.
pub mod events {
    /// Accepting a connection failed.
    pub const ACCEPT_ERROR: &str = "httpkit.server.accept.error";
    /// A WebSocket peer broke the protocol.
    pub const WS_DECODE_ERROR: &str = "httpkit.server.ws.decode.error";
    /// A channel or WebSocket callback panicked.
    pub const WS_FRAME_ERROR: &str = "httpkit.server.ws.frame.error";
    /// Prefix of `httpkit.server.status.processed.<status>`, fired for each handler response.
    pub const STATUS_PROCESSED: &str = "httpkit.server.status.processed.";
    /// Prefix of `httpkit.server.status.<status>`, fired when the server itself answers an
    /// invalid request (400, 413, 414, 431, 501, 505).
    pub const STATUS_PREFIX: &str = "httpkit.server.status.";
    /// A handler panicked (500).
    pub const STATUS_500: &str = "httpkit.server.status.500";
    /// The worker pool rejected a request (503).
    pub const STATUS_503: &str = "httpkit.server.status.503";
    /// At `max_connections`, the longest idle connection was closed to admit a new one.
    pub const CONN_EVICTED: &str = "httpkit.server.conn.evicted";
}

/// The message of a panic payload (a `&str` or a `String`), for the error logger.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}
