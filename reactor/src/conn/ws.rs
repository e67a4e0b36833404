//! A connection that speaks WebSocket: frames decoded and handed to the dispatcher, the close
//! handshake, pongs (at most one waiting for the socket), the application's flow control.

use super::*;
use httpkit_codec::ws::CloseCode;

/// The WebSocket side of a connection: the frame decoder, the close handshake's state, the
/// pong policy and the application's flow. It decides what a frame means and returns it as a
/// [`WsAction`]; the connection does the I/O.
#[derive(Debug)]
pub(super) struct WsSession {
    pub(super) dec: FrameDecoder,
    pub(super) auto_pong: bool,
    pub(super) close_sent: bool,
    pub(super) info: Option<WsClose>,
    /// Where the last queued pong starts in the write queue: while none of it is written, a
    /// newer pong replaces it (at most one pong waits).
    pub(super) pong_at: Option<u64>,
    /// A heartbeat ping is out and nothing was read since: the connection is closed at this
    /// instant unless something arrives.
    pub(super) ping_due: Option<Instant>,
    /// When the next heartbeat ping goes out (heartbeats on, none out, the peer read).
    pub(super) ping_at: Option<Instant>,
    /// A frame failed the connection and the dispatcher sends the close once the callbacks
    /// due before it have run (see [`Dispatch::on_ws_fail`]): the reactor closes with this
    /// code itself if that close has not come by this instant.
    /// (Boxed: rare, and every idle WebSocket would carry its room.)
    pub(super) fail_at: Option<Box<(Instant, CloseCode, &'static str)>>,
}

/// Whether the connection is read for the application (requests or WebSocket frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Flowing,
    /// The application's queue for the connection is full: it is not read until resumed.
    Paused,
    /// The request body's spool is full: the connection is not read until it has room.
    SpoolFull,
}

/// What follows a close frame the reactor sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CloseThen {
    /// Wait for the peer's close frame (within the close-handshake timeout).
    AwaitReply,
    /// The handshake is complete (or cannot be): close the TCP connection once it is written.
    CloseTcp,
}

/// What the session asks of its connection for a frame it decoded.
#[derive(Debug)]
pub(super) enum WsAction {
    /// Hand this to the application.
    Deliver(WsEvent),
    /// A ping: answered at once when the session pongs for the application, then handed over.
    Ping(Vec<u8>),
    /// The peer answered our close frame: the handshake is complete.
    HandshakeDone,
    /// The peer closed first: echo its code, then close the TCP connection.
    EchoClose(CloseCode, String),
    /// The peer broke the protocol: close with this code and reason.
    Fail(CloseCode, &'static str),
}

impl WsSession {
    pub(super) fn new(up: &WsUpgrade, early_close: Option<WsClose>) -> Self {
        Self {
            dec: FrameDecoder::with_deflate(up.max_message, up.deflate.as_ref()),
            auto_pong: up.auto_pong,
            close_sent: early_close.is_some(),
            info: early_close,
            pong_at: None,
            ping_due: None,
            ping_at: None,
            fail_at: None,
        }
    }

    /// Decodes from `input`: the bytes used and what to do (`(0, None)`: more bytes needed).
    pub(super) fn decode(&mut self, input: &[u8]) -> (usize, Option<WsAction>) {
        match self.dec.decode(input) {
            Ok((n, None)) => (n, None),
            Ok((n, Some(WsEvent::Close(frame)))) => {
                let (code, reason) =
                    frame.map_or((CloseCode::NO_STATUS, String::new()), |f| (CloseCode(f.code), f.reason));
                if self.info.is_none() {
                    self.info = Some(WsClose { code: code.as_u16(), reason: reason.clone(), by_peer: true });
                }
                if self.close_sent {
                    (n, Some(WsAction::HandshakeDone))
                } else {
                    (n, Some(WsAction::EchoClose(code, reason)))
                }
            }
            Ok((n, Some(WsEvent::Ping(p)))) => (n, Some(WsAction::Ping(p))),
            Ok((n, Some(ev))) => (n, Some(WsAction::Deliver(ev))),
            Err(e) => (0, Some(WsAction::Fail(CloseCode(e.close_code()), e.description()))),
        }
    }
}

impl<A> Conn<A> {
    /// Whether reading waits for the application (its queue, or a body's spool).
    pub(super) fn ws_paused(&self) -> bool {
        self.flow != Flow::Flowing
    }

    /// A body's spool has room again.
    pub(crate) fn resume_body(&mut self) {
        if self.flow == Flow::SpoolFull {
            self.flow = Flow::Flowing;
        }
    }

    /// The application asks to stop (or resume) reading: its queue of work for this connection
    /// is full. Bytes already read stay buffered; TCP pushes back on the peer.
    pub(crate) fn set_app_paused(&mut self, paused: bool) {
        self.flow = if paused { Flow::Paused } else { Flow::Flowing };
        if paused {
            // Its answer would wait unread: the next heartbeat starts once reading resumes.
            if let Some(ws) = &mut self.ws {
                ws.ping_due = None;
                ws.ping_at = None;
            }
        }
    }

    /// The response to request `seq` is a `101`: queue it, then switch to WebSocket.
    pub(crate) fn on_upgrade<D: Dispatch<Attachment = A>>(
        &mut self,
        seq: u64,
        head: Bytes,
        ws: WsUpgrade,
        ctx: &mut Ctx<'_, D>,
    ) {
        if let Err(n) = self.pipeline.upgrade(seq, head, ws) {
            self.wq.forget(n, &self.handle.shared.queued);
            return;
        }
        self.advance_slots();
        self.flush(ctx);
    }

    /// A frame from another thread (WebSocket only). A close frame starts the close handshake.
    pub(crate) fn on_frame<D: Dispatch<Attachment = A>>(
        &mut self,
        head: Bytes,
        payload: Bytes,
        close: Option<WsClose>,
        ack: Option<u64>,
        ctx: &mut Ctx<'_, D>,
    ) {
        let n = head.len() + payload.len();
        // A sender's partial frame may wait with the loan: it goes first (see `Direct::Rest`).
        self.settle_direct(Settle::TakeBack);
        if self.ws.is_none() {
            // The 101 may still wait behind earlier pipelined responses: the frame follows it.
            if self.pipeline.upgrade_pending() {
                self.pipeline.early_frame(head, payload, close, ack);
                return;
            }
        }
        let Some(ws) = &mut self.ws else {
            self.wq.forget(n, &self.handle.shared.queued);
            return;
        };
        if ws.close_sent {
            self.wq.forget(n, &self.handle.shared.queued);
            return;
        }
        self.wq.push(head);
        self.wq.push(payload);
        if let Some(token) = ack {
            self.wq.mark(token);
        }
        if let Some(info) = close {
            ws.close_sent = true;
            if ws.info.is_none() {
                ws.info = Some(info);
            }
            if ws.fail_at.take().is_some() {
                // The close of a failed connection: no reply is awaited (nothing more is read).
                self.finish_after_flush(Ending::Local);
            } else {
                self.deadline.restart(Timer::CloseHandshake, ctx.cfg, ctx.now);
            }
        }
        if self.wq.len() >= ctx.cfg.write_high_water {
            self.flush(ctx);
        }
    }

    /// Queues a pong (never refused for lack of room: control frames are tiny). At most one
    /// waits for the socket: while the socket takes what is queued, every ping gets its pong;
    /// when it does not (the peer is not reading), a newer pong replaces the one not yet
    /// written (RFC 6455 §5.5.3 allows answering only the latest ping), so a ping flood cannot
    /// grow the queue.
    pub(crate) fn queue_pong<D: Dispatch<Attachment = A>>(&mut self, payload: &[u8], ctx: &mut Ctx<'_, D>) {
        let Some(pong_at) = self.ws.as_ref().filter(|ws| !ws.close_sent).map(|ws| ws.pong_at) else {
            return;
        };
        if pong_at.is_some() && self.writable {
            // The last pong goes out now if the socket takes it.
            self.flush(ctx);
        }
        // The reactor's frames keep their place among the senders' (see `lend_ws`).
        self.settle_direct(Settle::TakeBack);
        let mut out = Vec::with_capacity(payload.len() + 2);
        encode_frame(OpCode::Pong, true, payload, &mut out);
        let frame = Bytes::from(out);
        if pong_at.and_then(|at| self.wq.replace_unsent(at, frame.clone(), &self.handle.shared.queued)).is_some() {
            return;
        }
        let at = self.wq.end_position();
        if let Some(ws) = &mut self.ws {
            ws.pong_at = Some(at);
        }
        self.wq.push_own(frame, &self.handle.shared.queued);
    }

    /// The heartbeat timer fired on a WebSocket nothing was read from: ping it, and give it
    /// [`ReactorConfig::ws_pong_timeout`] to show it is alive.
    pub(super) fn ws_heartbeat<D: Dispatch<Attachment = A>>(&mut self, ctx: &mut Ctx<'_, D>) {
        let Some(ws) = self.ws.as_mut() else { return };
        ws.ping_at = None;
        if ws.close_sent {
            return;
        }
        ws.ping_due = ctx.now.checked_add(ctx.cfg.ws_pong_timeout);
        self.settle_direct(Settle::TakeBack);
        let mut out = Vec::with_capacity(2);
        encode_frame(OpCode::Ping, true, &[], &mut out);
        self.wq.push_own(Bytes::from(out), &self.handle.shared.queued);
        self.flush(ctx);
    }

    /// Sends a close frame of the reactor's own (protocol error, server stop, echo). With
    /// `done` the TCP connection closes once it is written (the handshake is complete).
    pub(super) fn ws_close(&mut self, code: CloseCode, reason: &str, then: CloseThen) {
        if self.ws.is_none() {
            return;
        }
        self.settle_direct(Settle::TakeBack);
        let Some(ws) = &mut self.ws else { return };
        if !ws.close_sent {
            let mut out = Vec::with_capacity(4 + reason.len());
            if code == CloseCode::NO_STATUS {
                encode_frame(OpCode::Close, true, &[], &mut out);
            } else {
                encode_close(code.as_u16(), reason, &mut out);
            }
            ws.close_sent = true;
            self.wq.push_own(Bytes::from(out), &self.handle.shared.queued);
        }
        if ws.info.is_none() {
            ws.info = Some(WsClose { code: code.as_u16(), reason: reason.to_owned(), by_peer: false });
        }
        if then == CloseThen::CloseTcp {
            self.finish_after_flush(Ending::Local);
        }
    }

    pub(super) fn decode_frames<D: Dispatch<Attachment = A>>(&mut self, input: &[u8], ctx: &mut Ctx<'_, D>) -> usize {
        let mut off = 0;
        while self.reading != Reading::Stopped && !self.ws_paused() && !self.closing() {
            let Some(ws) = &mut self.ws else { break };
            let (n, action) = ws.decode(&input[off..]);
            off += n;
            match action {
                None if n == 0 => break,
                None => {}
                Some(WsAction::Deliver(ev)) => ctx.dispatch.on_ws_event(&self.handle, ev),
                Some(WsAction::Ping(p)) => {
                    if ws.auto_pong {
                        self.queue_pong(&p, ctx);
                    }
                    ctx.dispatch.on_ws_event(&self.handle, WsEvent::Ping(p));
                }
                // The reply to our close: the handshake is complete.
                Some(WsAction::HandshakeDone) => self.finish_after_flush(Ending::Local),
                Some(WsAction::EchoClose(code, reason)) => self.ws_close(code, &reason, CloseThen::CloseTcp),
                Some(WsAction::Fail(code, reason)) => {
                    // Messages before the bad frame may still be in the application's hands
                    // (their echoes due): the dispatcher may send the close behind them.
                    // (After a close of ours, nothing more is due: close now.)
                    if !ws.close_sent && ctx.dispatch.on_ws_fail(&self.handle, code.as_u16(), reason) {
                        self.reading = Reading::Stopped;
                        ws.fail_at = Some(Box::new((ctx.now + crate::WS_FAIL_GRACE, code, reason)));
                        // No heartbeat meanwhile: its answer would not be read.
                        ws.ping_at = None;
                        ws.ping_due = None;
                    } else {
                        self.ws_close(code, reason, CloseThen::CloseTcp);
                    }
                    break;
                }
            }
        }
        off
    }
}
