//! The bridge between the reactor and the handler: the dispatcher (reactor thread) turns each
//! request into a job for the pool; the job runs the handler and writes the response back.

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use httpkit_codec::h1::{encode_head, BodyEncoder, BodyLength, ResponseContext};
use httpkit_reactor::{CloseReason, ConnHandle, Dispatch, InboundRequest};

use crate::date::with_date;
use crate::logging::{events, Loggers};
use crate::pool::{Job, Task, WorkerPool};
use crate::response::BodyKind;
use crate::{Handler, Request, Response};

/// Bodies up to this size are copied after the head into one buffer (one write segment).
const INLINE_BODY: usize = 16 * 1024;
/// Piece size for files and readers.
const PIECE: usize = 64 * 1024;
/// How long a streaming worker waits for a slow client to drain before giving up.
const DRAIN_WAIT: Duration = Duration::from_secs(60);

pub(crate) const RUNNING: u8 = 0;
pub(crate) const STOPPING: u8 = 1;
pub(crate) const STOPPED: u8 = 2;

/// What every job of one server shares.
#[derive(Debug)]
pub(crate) struct ServerShared {
    pub(crate) status: AtomicU8,
    pub(crate) server_header: Option<Bytes>,
    pub(crate) loggers: Loggers,
    pub(crate) write_high_water: usize,
}

impl ServerShared {
    pub(crate) fn is_running(&self) -> bool {
        self.status.load(Ordering::Acquire) == RUNNING
    }
}

/// One request/response exchange on a connection: where and how to write the answer.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    pub(crate) conn: ConnHandle,
    pub(crate) seq: u64,
    pub(crate) method: Method,
    pub(crate) version: Version,
    pub(crate) keep_alive: bool,
    pub(crate) server: Arc<ServerShared>,
    /// Set by `start` when the framing decided the connection closes after this response.
    pub(crate) close_at_end: std::cell::Cell<bool>,
}

impl Exchange {
    fn ctx<'a>(&'a self, date: &'a [u8]) -> ResponseContext<'a> {
        ResponseContext {
            method: &self.method,
            version: self.version,
            keep_alive: self.keep_alive && self.server.is_running(),
            date,
            server: self.server.server_header.as_deref(),
        }
    }

    /// Writes a complete in-memory response.
    pub(crate) fn send_simple(&self, status: StatusCode, headers: &HeaderMap, body: Bytes) -> bool {
        let mut out = Vec::with_capacity(
            192 + if body.len() <= INLINE_BODY {
                body.len()
            } else {
                0
            },
        );
        let framing = with_date(|d| {
            encode_head(
                status,
                headers,
                BodyLength::Known(body.len() as u64),
                &self.ctx(d),
                &mut out,
            )
        });
        let Ok(framing) = framing else {
            return self.send_error(500, "Internal Server Error");
        };
        let body = if framing.body.has_body() {
            body
        } else {
            Bytes::new()
        };
        if body.len() <= INLINE_BODY {
            out.extend_from_slice(&body);
            self.conn.write(
                self.seq,
                Bytes::from(out),
                Bytes::new(),
                true,
                !framing.keep_alive,
            )
        } else {
            self.conn
                .write(self.seq, Bytes::from(out), body, true, !framing.keep_alive)
        }
    }

    /// A plain-text error response.
    pub(crate) fn send_error(&self, status: u16, msg: &'static str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self.send_simple(status, &h, Bytes::from_static(msg.as_bytes()))
    }

    /// Writes `resp`, whatever its body.
    pub(crate) fn send_response(&self, resp: Response) {
        if let Some(why) = &resp.invalid {
            self.server.loggers.error(&format!(
                "invalid response to {} request: {why}",
                self.method
            ));
            self.send_error(500, "Internal Server Error");
            return;
        }
        if self.server.loggers.has_event() {
            self.server.loggers.event(&format!(
                "{}{}",
                events::STATUS_PROCESSED,
                resp.status.as_u16()
            ));
        }
        let Response {
            status,
            headers,
            body,
            ..
        } = resp;
        match body.kind {
            BodyKind::Empty => {
                self.send_simple(status, &headers, Bytes::new());
            }
            BodyKind::Bytes(b) => {
                self.send_simple(status, &headers, b);
            }
            BodyKind::File(mut f, len) => {
                let Some(enc) = self.start(status, &headers, BodyLength::Known(len)) else {
                    return;
                };
                if enc.has_body() {
                    let mut left = len;
                    let ok = self.pump(enc, |buf| {
                        if left == 0 {
                            return Ok(0);
                        }
                        let want = (buf.len() as u64).min(left) as usize;
                        let n = f.read(&mut buf[..want])?;
                        if n == 0 {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "file shrank while being sent",
                            ));
                        }
                        left -= n as u64;
                        Ok(n)
                    });
                    if !ok {
                        return;
                    }
                }
                self.finish(enc);
            }
            BodyKind::Reader(mut r) => {
                let Some(enc) = self.start(status, &headers, BodyLength::Streamed) else {
                    return;
                };
                if enc.has_body() && !self.pump(enc, |buf| r.read(buf)) {
                    return;
                }
                self.finish(enc);
            }
            BodyKind::Stream(iter) => {
                let Some(enc) = self.start(status, &headers, BodyLength::Streamed) else {
                    return;
                };
                if enc.has_body() {
                    for item in iter {
                        match item {
                            Ok(b) if b.is_empty() => {}
                            Ok(b) => {
                                if !self.send_piece(enc, b) {
                                    return;
                                }
                            }
                            Err(e) => {
                                self.server
                                    .loggers
                                    .error(&format!("response stream failed: {e}"));
                                self.conn.abort();
                                return;
                            }
                        }
                    }
                }
                self.finish(enc);
            }
        }
    }

    /// Writes the head of a response whose body follows in pieces.
    fn start(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        len: BodyLength,
    ) -> Option<BodyEncoder> {
        let mut out = Vec::with_capacity(192);
        let framing = with_date(|d| encode_head(status, headers, len, &self.ctx(d), &mut out));
        let Ok(framing) = framing else {
            self.send_error(500, "Internal Server Error");
            return None;
        };
        self.close_at_end.set(!framing.keep_alive);
        if !self
            .conn
            .write(self.seq, Bytes::from(out), Bytes::new(), false, false)
        {
            return None;
        }
        Some(framing.body)
    }

    /// Sends one piece of a streamed body, waiting while the client is slow.
    fn send_piece(&self, enc: BodyEncoder, data: Bytes) -> bool {
        if !self
            .conn
            .wait_writable(self.server.write_high_water, DRAIN_WAIT)
        {
            self.conn.abort();
            return false;
        }
        let mut head = Vec::new();
        enc.chunk_header(data.len(), &mut head);
        let mut out_body = data;
        if enc == BodyEncoder::Chunked {
            let mut v = Vec::with_capacity(head.len() + out_body.len() + 2);
            v.extend_from_slice(&head);
            v.extend_from_slice(&out_body);
            enc.chunk_trailer(&mut v);
            out_body = Bytes::from(v);
        }
        self.conn
            .write(self.seq, Bytes::new(), out_body, false, false)
    }

    fn pump(
        &self,
        enc: BodyEncoder,
        mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
    ) -> bool {
        loop {
            let mut buf = vec![0u8; PIECE];
            match read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => {
                    buf.truncate(n);
                    if !self.send_piece(enc, Bytes::from(buf)) {
                        return false;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.server
                        .loggers
                        .error(&format!("reading response body failed: {e}"));
                    self.conn.abort();
                    return false;
                }
            }
        }
    }

    fn finish(&self, enc: BodyEncoder) {
        let mut tail = Vec::new();
        enc.finish(&mut tail);
        let close = self.close_at_end.get() || enc == BodyEncoder::CloseDelimited;
        self.conn
            .write(self.seq, Bytes::new(), Bytes::from(tail), true, close);
    }
}

/// Runs the handler for one request and writes its response.
struct RequestTask<H> {
    handler: Arc<H>,
    req: Request,
}

impl<H: Handler> Task for RequestTask<H> {
    fn run(self: Box<Self>) {
        let RequestTask { handler, req } = *self;
        let Some(ex) = req.exchange.clone() else {
            return;
        };
        let what = format!("{} {}", req.method(), req.path());
        match catch_unwind(AssertUnwindSafe(move || handler.call(req))) {
            Ok(resp) => ex.send_response(resp),
            Err(panic) => {
                let msg = panic_message(&*panic);
                ex.server
                    .loggers
                    .error(&format!("handler panicked on {what}: {msg}"));
                ex.server.loggers.event(events::STATUS_500);
                ex.send_error(500, "Internal Server Error");
            }
        }
    }

    fn reject(self: Box<Self>) {
        if let Some(ex) = &self.req.exchange {
            ex.server
                .loggers
                .warn("worker pool rejected a request: 503");
            ex.server.loggers.event(events::STATUS_503);
            ex.send_error(503, "Server unavailable, please try again");
        }
    }
}

pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// The reactor's view of the server.
pub(crate) struct Dispatcher<H> {
    pub(crate) handler: Arc<H>,
    pub(crate) pool: Arc<dyn WorkerPool>,
    pub(crate) server: Arc<ServerShared>,
}

impl<H: Handler> Dispatch for Dispatcher<H> {
    fn on_request(&mut self, conn: &ConnHandle, req: InboundRequest) {
        let InboundRequest {
            seq,
            head,
            body,
            trailers,
            received,
        } = req;
        let ex = Exchange {
            conn: conn.clone(),
            seq,
            method: head.method.clone(),
            version: head.version,
            keep_alive: head.keep_alive && !head.upgrade,
            server: self.server.clone(),
            close_at_end: Default::default(),
        };
        let request = Request::new(head, body, trailers, conn, received, ex);
        let job = Job::new(Box::new(RequestTask {
            handler: self.handler.clone(),
            req: request,
        }));
        if let Err(job) = self.pool.execute(job) {
            job.reject();
        }
    }

    fn on_close(&mut self, _conn: &ConnHandle, _reason: CloseReason) {}
}
