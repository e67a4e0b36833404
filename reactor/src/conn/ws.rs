//! A connection that speaks WebSocket: frames decoded and handed to the dispatcher, the close
//! handshake, pongs (at most one waiting for the socket), the application's flow control.

use super::*;
use httpkit_codec::ws::CloseCode;

#[derive(Debug)]
pub(super) struct WsState {
    pub(super) dec: FrameDecoder,
    pub(super) auto_pong: bool,
    pub(super) close_sent: bool,
    pub(super) info: Option<WsClose>,
    pub(super) flow: Flow,
    /// Where the last queued pong starts in the write queue: while none of it is written, a
    /// newer pong replaces it (at most one pong waits).
    pub(super) pong_at: Option<u64>,
}

/// Whether a WebSocket's frames are delivered to the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Flowing,
    /// The application's queue for the connection is full: it is not read until resumed.
    Paused,
}

/// What follows a close frame the reactor sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CloseThen {
    /// Wait for the peer's close frame (within the close-handshake timeout).
    AwaitReply,
    /// The handshake is complete (or cannot be): close the TCP connection once it is written.
    CloseTcp,
}

impl<A> Conn<A> {
    pub(super) fn ws_paused(&self) -> bool {
        self.ws.as_ref().is_some_and(|w| w.flow == Flow::Paused)
    }

    /// The application asks to stop (or resume) reading: its queue of work for this connection
    /// is full. Bytes already read stay buffered; TCP pushes back on the peer.
    pub(crate) fn set_app_paused(&mut self, paused: bool) {
        if let Some(ws) = &mut self.ws {
            ws.flow = if paused { Flow::Paused } else { Flow::Flowing };
        }
    }

    /// The response to request `seq` is a `101`: queue it, then switch to WebSocket.
    pub(crate) fn on_upgrade<D: Dispatch<Attachment = A>>(
        &mut self,
        seq: u64,
        head: Bytes,
        max: usize,
        auto_pong: bool,
        ctx: &mut Ctx<'_, D>,
    ) {
        self.settle_direct(Settle::TakeBack);
        if let Err(n) = self.pipeline.upgrade(seq, head, max, auto_pong) {
            self.handle.release_out(n);
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
        if self.ws.is_none() {
            // The 101 may still wait behind earlier pipelined responses: the frame follows it.
            if self.pipeline.upgrade_pending() {
                self.pipeline.early_frame(head, payload, close, ack);
                return;
            }
        }
        let Some(ws) = &mut self.ws else {
            self.handle.release_out(n);
            return;
        };
        if ws.close_sent {
            self.handle.release_out(n);
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
            self.timer = Timer::CloseHandshake;
            self.deadline = ctx.now.checked_add(CLOSE_HANDSHAKE);
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
        let mut out = Vec::with_capacity(payload.len() + 2);
        encode_frame(OpCode::Pong, true, payload, &mut out);
        let new_len = out.len();
        let frame = Bytes::from(out);
        if let Some(old) = pong_at.and_then(|at| self.wq.replace_unsent(at, frame.clone())) {
            if new_len >= old {
                self.handle.charge_out(new_len - old);
            } else {
                self.handle.release_out(old - new_len);
            }
            return;
        }
        let at = self.wq.end_position();
        if let Some(ws) = &mut self.ws {
            ws.pong_at = Some(at);
        }
        self.handle.charge_out(new_len);
        self.wq.push(frame);
    }

    /// Sends a close frame of the reactor's own (protocol error, server stop, echo). With
    /// `done` the TCP connection closes once it is written (the handshake is complete).
    pub(super) fn ws_close(&mut self, code: CloseCode, reason: &str, then: CloseThen) {
        let Some(ws) = &mut self.ws else { return };
        if !ws.close_sent {
            let mut out = Vec::with_capacity(4 + reason.len());
            if code == CloseCode::NO_STATUS {
                encode_frame(OpCode::Close, true, &[], &mut out);
            } else {
                encode_close(code.as_u16(), reason, &mut out);
            }
            ws.close_sent = true;
            self.handle.charge_out(out.len());
            self.wq.push(Bytes::from(out));
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
            match ws.dec.decode(&input[off..]) {
                Ok((0, None)) => break,
                Ok((n, None)) => off += n,
                Ok((n, Some(ev))) => {
                    off += n;
                    match ev {
                        WsEvent::Close(frame) => {
                            let (code, reason) =
                                frame.map_or((CloseCode::NO_STATUS, String::new()), |f| (CloseCode(f.code), f.reason));
                            let we_closed = ws.close_sent;
                            if ws.info.is_none() {
                                ws.info = Some(WsClose { code: code.as_u16(), reason: reason.clone(), by_peer: true });
                            }
                            if we_closed {
                                // The reply to our close: the handshake is complete.
                                self.finish_after_flush(Ending::Local);
                            } else {
                                // Echo the peer's code, then close the TCP connection.
                                self.ws_close(code, &reason, CloseThen::CloseTcp);
                            }
                        }
                        WsEvent::Ping(p) => {
                            if ws.auto_pong {
                                self.queue_pong(&p, ctx);
                            }
                            ctx.dispatch.on_ws_event(&self.handle, WsEvent::Ping(p));
                        }
                        ev => ctx.dispatch.on_ws_event(&self.handle, ev),
                    }
                }
                Err(e) => {
                    self.ws_close(CloseCode(e.close_code()), e.description(), CloseThen::CloseTcp);
                    break;
                }
            }
        }
        off
    }
}
