//! Server-sent events over the unified channel API: [`Event`] frames `event:` / `data:` / `id:` /
//! `retry:` as `text/event-stream` wants them, and [`Channel::send_event`] streams them.

use std::fmt::Write as _;
use std::time::Duration;

use crate::{Channel, Message, Response};

/// One server-sent event (the `text/event-stream` format a browser's `EventSource` reads).
///
/// Data with line breaks becomes several `data:` lines (the browser joins them with `\n`);
/// line breaks in the event name or id are removed, so no value can inject a field of its own.
///
/// ```
/// use httpkit::Event;
/// let e = Event::data("line 1\nline 2").event("update").id("42");
/// assert_eq!(e.to_string(), "event: update\nid: 42\ndata: line 1\ndata: line 2\n\n");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use = "an event does nothing until it is sent"]
pub struct Event {
    event: Option<String>,
    data: String,
    id: Option<String>,
    retry: Option<Duration>,
}

impl Event {
    /// An event carrying `data` (of the default type, `message`).
    pub fn data(data: impl Into<String>) -> Self {
        Self { data: data.into(), ..Self::default() }
    }

    /// The event's type (`addEventListener(name, …)` in the browser).
    pub fn event(mut self, name: impl Into<String>) -> Self {
        self.event = Some(name.into());
        self
    }

    /// The event's id: the browser sends it back as `Last-Event-ID` when it reconnects (see
    /// [`Request::last_event_id`](crate::Request::last_event_id)).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// How long the browser waits before it reconnects.
    pub fn retry(mut self, after: Duration) -> Self {
        self.retry = Some(after);
        self
    }
}

/// A field value on one line: line breaks (and NUL, which ends an id) removed.
fn one_line(v: &str) -> String {
    v.chars().filter(|c| !matches!(c, '\r' | '\n' | '\0')).collect()
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::with_capacity(self.data.len() + 32);
        if let Some(e) = &self.event {
            let _ = writeln!(out, "event: {}", one_line(e));
        }
        if let Some(id) = &self.id {
            let _ = writeln!(out, "id: {}", one_line(id));
        }
        if let Some(r) = self.retry {
            let _ = writeln!(out, "retry: {}", r.as_millis());
        }
        // Every line of the data (CRLF, CR and LF all end a line) is a `data:` line of its own.
        let data = self.data.replace("\r\n", "\n").replace('\r', "\n");
        for line in data.split('\n') {
            let _ = writeln!(out, "data: {line}");
        }
        out.push('\n');
        f.write_str(&out)
    }
}

impl Channel {
    /// Sends `event` on an HTTP channel as a server-sent event: the first one starts a
    /// `text/event-stream` answer (no caching, and `X-Accel-Buffering: no` so that nginx in
    /// front passes each event on at once), each one after is written as it is sent. `false`
    /// when the channel is closed or is a WebSocket.
    ///
    /// ```no_run
    /// use httpkit::{as_channel, ChannelHandlers, Event, Request, Response};
    /// fn events(req: Request) -> Response {
    ///     as_channel(&req, ChannelHandlers::new().on_open(|ch| {
    ///         let ch = ch.clone();
    ///         std::thread::spawn(move || {
    ///             for i in 0.. {
    ///                 if !ch.send_event(&Event::data(format!("tick {i}")).id(i.to_string())) {
    ///                     break; // the client left
    ///                 }
    ///                 std::thread::sleep(std::time::Duration::from_secs(1));
    ///             }
    ///         });
    ///     }))
    /// }
    /// ```
    pub fn send_event(&self, event: &Event) -> bool {
        if self.is_websocket() {
            return false;
        }
        // A response: its head starts the stream the first time; after that only its body,
        // the event, is sent.
        let resp = Response::ok(event.to_string())
            .header("content-type", "text/event-stream")
            .header("cache-control", "no-cache")
            .header("x-accel-buffering", "no");
        self.send_with(Message::from(resp), false)
    }
}
