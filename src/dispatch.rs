//! The reactor's view of the server: each request becomes a job for the pool (the job runs
//! the handler and writes its answer), and connection events reach the listeners attached.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use httpkit_codec::ws::{check_handshake, negotiate_deflate};
use httpkit_reactor::{CloseReason, Dispatch, InboundRequest, WsEvent};

use crate::attachment::{Attachment, ConnHandle};
use crate::exchange::{AcceptKey, AccessInfo, ExShared, Exchange, Refusal, RespState, ServerShared};
use crate::logging::{events, panic_message};
use crate::pool::{Job, Task, WorkerPool};
use crate::response::BodyKind;
use crate::spool::Spool;
use crate::{Handler, Request, Response};
use bytes::Bytes;
use httpkit_codec::h1::{encode_head, BodyLength, RequestHead, ResponseContext};

/// Runs the handler for one request and writes its response.
struct RequestTask<H> {
    handler: Arc<H>,
    req: Request,
}

impl<H: Handler> Task for RequestTask<H> {
    fn run(self: Box<Self>) {
        let Some(ex) = self.req.exchange.clone() else {
            return;
        };
        let target = Target::of(&self.req);
        // (The request goes from the box straight to the handler: the closure holds the box
        // only, so the request is not copied on its way.)
        answer(&ex, &target, move || self.handler.call(self.req));
    }

    fn reject(self: Box<Self>) {
        if let Some(ex) = &self.req.exchange {
            ex.server.loggers.warn("worker pool rejected a request: 503");
            ex.server.rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ex.server.loggers.event(events::STATUS_503);
            ex.send_error(503, "Server unavailable, please try again");
        }
    }
}

/// A request's target, for a panic message, kept without an allocation (first 96 bytes).
struct Target {
    buf: [u8; 96],
    len: usize,
}

impl Target {
    fn of(req: &Request) -> Self {
        let mut buf = [0u8; 96];
        let uri = req.uri().as_bytes();
        let len = uri.len().min(buf.len());
        buf[..len].copy_from_slice(&uri[..len]);
        Self { buf, len }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Runs the handler (`call`) and writes its response; a panic answers `500`.
fn answer(ex: &Exchange, target: &Target, call: impl FnOnce() -> Response) {
    let target = target.as_bytes();
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(resp) => {
            // Body streams and readers are user code too.
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| ex.send_response(resp))) {
                ex.server.loggers.error(&format!(
                    "response body panicked on {} {}: {}",
                    ex.method,
                    String::from_utf8_lossy(target),
                    panic_message(&*panic)
                ));
                ex.fail(true);
            }
        }
        Err(panic) => {
            let msg = panic_message(&*panic);
            ex.server.loggers.error(&format!(
                "handler panicked on {} {}: {msg}",
                ex.method,
                String::from_utf8_lossy(target)
            ));
            ex.server.loggers.event(events::STATUS_500);
            ex.fail(false);
        }
    }
}

/// Where a request's handler runs: the worker pool (a [`Handler`]), or an async runtime.
pub(crate) trait Serve: Send + Sync + 'static {
    /// Runs the handler for `req` somewhere and has its answer written. Called on the reactor
    /// thread: only the `Inline` pool's handlers run here.
    fn serve(&self, req: Request, conn: &ConnHandle);
}

/// A [`Handler`] run as a job on the worker pool.
pub(crate) struct OnPool<H> {
    pub(crate) handler: Arc<H>,
    pub(crate) pool: Arc<dyn WorkerPool>,
    pub(crate) server: Arc<ServerShared>,
    /// The pool is [`Inline`](crate::Inline): the handler runs here at once, without a job
    /// (no box, no hand-off; what `Inline::execute` would do with one).
    pub(crate) inline: bool,
}

impl<H: Handler> Serve for OnPool<H> {
    fn serve(&self, request: Request, conn: &ConnHandle) {
        if self.inline {
            if let Some(ex) = request.exchange.clone() {
                let target = Target::of(&request);
                // (A panicking logger is user code too: it must not take the loop down.)
                let _ = catch_unwind(AssertUnwindSafe(|| answer(&ex, &target, || self.handler.call(request))));
            }
            return;
        }
        let job = Job::new(Box::new(RequestTask { handler: self.handler.clone(), req: request }));
        // A user pool runs here, on the reactor thread: its panic must not take the loop down.
        match catch_unwind(AssertUnwindSafe(|| self.pool.execute(job))) {
            Ok(Ok(())) => {}
            Ok(Err(job)) => job.reject(),
            Err(p) => {
                self.server.loggers.error(&format!("worker pool panicked in execute: {}", panic_message(&*p)));
                conn.abort();
            }
        }
    }
}

/// The reactor's view of the server (one per reactor, sharing everything).
pub(crate) struct Dispatcher<S> {
    /// Shared: a spooled body's request is served from the I/O thread that finishes writing it.
    pub(crate) serve: Arc<S>,
    pub(crate) server: Arc<ServerShared>,
}

impl<S> Clone for Dispatcher<S> {
    fn clone(&self) -> Self {
        Self { serve: self.serve.clone(), server: self.server.clone() }
    }
}

impl<S: Serve> Dispatch for Dispatcher<S> {
    type Attachment = Attachment;

    fn on_request(&mut self, conn: &ConnHandle, req: InboundRequest) {
        let InboundRequest { seq, head, body, trailers, received, spool } = req;
        let ws = head.is_websocket().then(|| {
            let accept = check_handshake(&head).map(|h| h.accept)?;
            let accept = AcceptKey::new(&accept).ok_or(httpkit_codec::ws::HandshakeError::Key)?;
            let origin = head.headers().get("origin").and_then(|v| v.to_str().ok());
            if self.server.origins.allows(origin) {
                Ok(accept)
            } else {
                Err(Refusal::ORIGIN)
            }
        });
        let ws_deflate = match (&ws, &self.server.ws_compression) {
            (Some(Ok(_)), Some(c)) => negotiate_deflate(head.headers(), &c.cfg),
            _ => None,
        };
        let ex = Exchange {
            ws,
            ws_deflate,
            conn: conn.clone(),
            seq,
            method: head.method.clone(),
            version: head.version,
            keep_alive: head.keep_alive && !head.upgrade,
            server: self.server.clone(),
            state: Arc::new(ExShared {
                resp: Mutex::new(RespState::Idle),
                channel: std::sync::OnceLock::new(),
                access: std::sync::OnceLock::new(),
                streamed: std::sync::atomic::AtomicU64::new(0),
            }),
        };
        let mut request = Request::new(head, body, trailers, conn, received, ex);
        // Nothing is kept (the path is copied) unless the line would be written.
        if self.server.access_log && log::log_enabled!(target: crate::exchange::ACCESS_TARGET, log::Level::Info) {
            if let Some(ex) = &request.exchange {
                let info = AccessInfo { path: request.uri().into(), client: request.remote_addr(), received };
                let _ = ex.state.access.set(Box::new(info));
            }
        }
        let Some(spool) = spool else {
            self.serve.serve(request, conn);
            return;
        };
        let Ok(spool) = spool.into_any().downcast::<Spool>() else {
            // Never: every spool is made by `open_spool` below.
            if let Some(ex) = &request.exchange {
                ex.send_error(500, "Internal Server Error");
            }
            return;
        };
        // The handler runs once every byte is on disk (workers stay free during the upload).
        request.set_spooled(spool.clone());
        let conn = conn.clone();
        spool.when_flushed(move |ok| {
            if !ok {
                if let Some(ex) = &request.exchange {
                    ex.send_error(500, "the request body could not be stored");
                }
                return;
            }
            // Served from the reactor thread, as every request (an `Inline` pool runs the
            // handler there, never on an I/O thread).
            if conn.attachment().push_ready(&conn, request) {
                conn.wake();
            }
        });
    }

    fn on_wake(&mut self, conn: &ConnHandle) {
        for request in conn.attachment().take_ready() {
            self.serve.serve(request, conn);
        }
    }

    fn open_spool(
        &mut self,
        conn: &ConnHandle,
        _head: &RequestHead,
        declared: Option<u64>,
    ) -> Result<Option<Arc<dyn httpkit_reactor::BodySpool>>, httpkit_reactor::SpoolRefusal> {
        let spool: Arc<dyn httpkit_reactor::BodySpool> = Spool::open(&self.server, conn, declared)?;
        Ok(Some(spool))
    }

    fn on_expect_continue(&mut self, conn: &ConnHandle, head: &RequestHead) -> Option<Bytes> {
        let check = self.server.expect_continue.as_ref()?;
        let req = Request::head_only(head.clone(), conn, &self.server);
        let resp = match catch_unwind(AssertUnwindSafe(|| (check.0)(&req))) {
            Ok(None) => return None,
            Ok(Some(resp)) if resp.status.is_informational() || resp.invalid.is_some() => {
                self.server.loggers.error("expect_continue answered with an informational or invalid response");
                Response::status_code(500).with_body("Internal Server Error")
            }
            Ok(Some(resp)) => resp,
            Err(p) => {
                self.server.loggers.error(&format!("expect_continue panicked: {}", panic_message(&*p)));
                Response::status_code(500).with_body("Internal Server Error")
            }
        };
        let body = match &resp.body.kind {
            BodyKind::Bytes(b) => b.clone(),
            BodyKind::Empty => Bytes::new(),
            _ => {
                self.server.loggers.warn("expect_continue's answer has a file or streamed body; sent without it");
                Bytes::new()
            }
        };
        let mut out = Vec::with_capacity(256 + body.len());
        let ctx = |date: &[u8]| {
            let ctx = ResponseContext {
                method: &head.method,
                version: head.version,
                keep_alive: false,
                date,
                server: self.server.server_header.as_deref(),
            };
            encode_head(resp.status, &resp.headers, BodyLength::Known(body.len() as u64), &ctx, &mut out)
        };
        let framing = match crate::date::with_date(ctx) {
            Ok(f) => f,
            Err(e) => {
                self.server.loggers.error(&format!("expect_continue's answer cannot be encoded: {e}"));
                return Some(Bytes::from_static(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ));
            }
        };
        if framing.body.has_body() {
            out.extend_from_slice(&body);
        }
        self.on_bad_request(conn, resp.status.as_u16(), "refused by expect_continue");
        Some(Bytes::from(out))
    }

    fn on_bad_request(&mut self, _conn: &ConnHandle, status: u16, reason: &str) {
        self.server.count_status(status);
        let loggers = &self.server.loggers;
        if loggers.has_event() {
            loggers.event(&format!("{}{status}", events::STATUS_PREFIX));
        }
        log::debug!("bad request answered {status}: {reason}");
    }

    fn on_accept_error(&mut self, error: &std::io::Error) {
        self.server.loggers.error(&format!("accept failed: {error}; retrying in 100 ms"));
        self.server.loggers.event(events::ACCEPT_ERROR);
    }

    fn on_ws_event(&mut self, conn: &ConnHandle, event: WsEvent) {
        if let Some(l) = conn.attachment().ws() {
            l.on_ws_event(event);
        }
    }

    fn on_ws_fail(&mut self, conn: &ConnHandle, code: u16, reason: &'static str) -> bool {
        conn.attachment().ws().is_some_and(|l| l.on_ws_fail(code, reason))
    }

    fn on_frame_written(&mut self, conn: &ConnHandle, token: u64) {
        if let Some(l) = conn.attachment().ws() {
            l.on_frame_written(token);
        }
    }

    fn on_drained(&mut self, conn: &ConnHandle) {
        for body in conn.attachment().unpark_all() {
            body.resume();
        }
        if let Some(l) = conn.attachment().ws() {
            l.on_drained();
        }
    }

    fn on_stop_deadline(&mut self, conn: &ConnHandle) {
        for l in conn.attachment().all() {
            l.on_stop_deadline();
        }
    }

    fn on_peer_eof(&mut self, conn: &ConnHandle) {
        for l in conn.attachment().all() {
            l.on_peer_eof();
        }
    }

    fn on_close(&mut self, conn: &ConnHandle, reason: CloseReason) {
        if reason == CloseReason::Evicted {
            self.server.loggers.event(events::CONN_EVICTED);
        }
        if let CloseReason::WebSocket(w) = &reason {
            if !w.by_peer && matches!(w.code, 1002 | 1007 | 1009) {
                self.server.loggers.warn(&format!("websocket closed {}: {}", w.code, w.reason));
                self.server.loggers.event(events::WS_DECODE_ERROR);
            }
        }
        // A body waiting for room will never have it.
        drop(conn.attachment().unpark_all());
        drop(conn.attachment().take_ready());
        let listeners = conn.attachment().take_all();
        for (_, l) in &listeners {
            l.on_closed(reason.clone());
        }
    }
}
