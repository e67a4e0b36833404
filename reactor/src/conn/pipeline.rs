//! The HTTP pipeline of one connection: a slot per request in flight, answers written in
//! request order whatever order the workers finish in, a request that is not safe run alone
//! (RFC 9112 §9.3.2), interim `100 Continue`, and the switch to WebSocket after a `101`.

use super::*;
use crate::Part;

#[derive(Debug)]
pub(super) struct Pending {
    pub(super) head: RequestHead,
    pub(super) body: Vec<u8>,
}

#[derive(Debug)]
pub(super) struct Slot {
    pub(super) seq: u64,
    pub(super) parts: Vec<Bytes>,
    pub(super) state: SlotState,
    /// Switch to WebSocket once this response is queued: (max message, auto pong).
    pub(super) upgrade: Option<(usize, bool)>,
    /// The request's method is safe (GET, HEAD, OPTIONS, TRACE): it may run beside other safe
    /// requests of the pipeline.
    pub(super) safe: bool,
}

/// Where the answer to one request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SlotState {
    /// Parts may still come.
    Open,
    /// Complete; the connection goes on.
    Done,
    /// Complete; the connection closes after it.
    DoneThenClose,
}

impl Slot {
    pub(super) fn is_done(&self) -> bool {
        self.state != SlotState::Open
    }
}

impl<A> Conn<A> {
    pub(super) fn on_head<D: Dispatch<Attachment = A>>(&mut self, head: RequestHead, ctx: &mut Ctx<'_, D>) {
        // A new request: from here on the reactor alone orders the answers.
        self.settle_direct(Settle::TakeBack);
        // Refused before any `100 Continue`: a client that waits for it never sends the body.
        let declared = match head.body {
            BodyKind::Length(n) => usize::try_from(n).unwrap_or(usize::MAX),
            _ => 0,
        };
        if declared > ctx.cfg.buffer_budget {
            return self.refuse_body(StatusCode::PAYLOAD_TOO_LARGE, "request body larger than the server buffers", ctx);
        }
        if head.body != BodyKind::Empty && ctx.over_budget(declared) {
            return self.refuse_body(StatusCode::SERVICE_UNAVAILABLE, "server busy: too many bytes buffered", ctx);
        }
        if head.expect_continue {
            let interim = Bytes::from_static(b"HTTP/1.1 100 Continue\r\n\r\n");
            if self.slots.is_empty() {
                self.queue_local(interim);
            } else {
                // After the answers to the requests before this one, never inside them.
                self.push_local(interim, SlotState::Done);
            }
        }
        // The body timer (a rate window) starts in `update_timer`, unless output is waiting:
        // then the write window goes on.
        let body = match head.body {
            BodyKind::Length(n) => Vec::with_capacity(n.min(1 << 20) as usize),
            _ => Vec::new(),
        };
        self.cur = Some(Box::new(Pending { head, body }));
    }

    pub(super) fn on_end<D: Dispatch<Attachment = A>>(&mut self, ctx: &mut Ctx<'_, D>) {
        if let Some(Pending { head, body }) = self.cur.take().map(|b| *b) {
            self.complete(head, body, ctx);
        }
    }

    /// A whole request: give it a slot and dispatch it (or hold it, see below).
    pub(super) fn complete<D: Dispatch<Attachment = A>>(
        &mut self,
        head: RequestHead,
        body: Vec<u8>,
        ctx: &mut Ctx<'_, D>,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        // Pipelined requests run in parallel only while all of them are safe (RFC 9112 §9.3.2):
        // a POST waits for the answers before it, and requests after a POST wait for its answer,
        // so no side effect happens out of order or after a response that closes.
        let safe = matches!(head.method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE);
        let may_run = self.slots.iter().all(|s| s.is_done() || (safe && s.safe));
        self.slots.push_back(Slot { seq, parts: Vec::new(), state: SlotState::Open, upgrade: None, safe });
        if head.upgrade || !head.keep_alive || self.stopping {
            // After an upgrade request or a request that closes, nothing more is read as HTTP;
            // unless the upgrade happens, the connection closes after the response.
            self.finish_after_answers();
        }
        let trailers = self.decoder.take_trailers();
        // Lent only when nothing waits on this answer but the client: decoding goes on (the
        // pipeline has room), nothing is queued, the connection stays open after it.
        let lend = may_run
            && self.slots.len() == 1
            && self.slots.len() < ctx.cfg.max_pipelined
            && self.wq.is_empty()
            && head.keep_alive
            && !head.upgrade
            && self.reading != Reading::Stopped
            && self.close == Close::Open
            && self.input != Input::Ended
            && self.ws.is_none();
        let req = InboundRequest { seq, head, body, trailers, received: ctx.now };
        if may_run {
            if lend {
                self.lend_direct(seq);
            }
            ctx.dispatch.on_request(&self.handle, req);
        } else {
            self.held = Some(Box::new(req));
        }
    }

    /// Dispatches the held request once the requests before it allow (see [`Conn::on_end`]).
    pub(super) fn release_held<D: Dispatch<Attachment = A>>(&mut self, ctx: &mut Ctx<'_, D>) {
        let Some(seq) = self.held.as_ref().map(|r| r.seq) else {
            return;
        };
        if self.closing() {
            return;
        }
        let Some(pos) = self.slots.iter().position(|s| s.seq == seq) else {
            // An earlier response closed the connection: this request never runs.
            self.held = None;
            return;
        };
        let safe = self.slots[pos].safe;
        if self.slots.iter().take(pos).all(|s| s.is_done() || (safe && s.safe)) {
            if let Some(req) = self.held.take() {
                ctx.dispatch.on_request(&self.handle, *req);
            }
        }
    }

    /// Bytes the reactor writes on its own, outside any response slot (100 Continue).
    pub(super) fn queue_local(&mut self, b: Bytes) {
        self.handle.charge_out(b.len());
        self.wq.push(b);
    }

    /// A whole response of the reactor's own, ordered after the responses in flight.
    pub(super) fn push_local(&mut self, b: Bytes, state: SlotState) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.handle.charge_out(b.len());
        self.slots.push_back(Slot { seq, parts: vec![b], state, upgrade: None, safe: true });
        self.advance_slots();
    }

    /// A part of the response to request `seq`, from another thread.
    pub(crate) fn on_write<D: Dispatch<Attachment = A>>(
        &mut self,
        seq: u64,
        head: Bytes,
        body: Bytes,
        part: Part,
        ctx: &mut Ctx<'_, D>,
    ) {
        self.settle_direct(Settle::TakeBack);
        let Some(pos) = self.slots.iter().position(|s| s.seq == seq && !s.is_done()) else {
            self.handle.release_out(head.len() + body.len());
            return;
        };
        let front = pos == 0;
        let slot = &mut self.slots[pos];
        if front {
            // The common case: the answer to the oldest request goes straight out.
            self.wq.push(head);
            self.wq.push(body);
        } else {
            if !head.is_empty() {
                slot.parts.push(head);
            }
            if !body.is_empty() {
                slot.parts.push(body);
            }
        }
        slot.state = match part {
            Part::More => SlotState::Open,
            Part::Last => SlotState::Done,
            Part::LastThenClose => SlotState::DoneThenClose,
        };
        self.advance_slots();
        if self.wq.len() >= ctx.cfg.write_high_water {
            self.flush(ctx);
        }
    }

    /// Moves the parts of the front slot(s) to the write queue, in request order.
    pub(super) fn advance_slots(&mut self) {
        while let Some(front) = self.slots.front_mut() {
            for p in front.parts.drain(..) {
                self.wq.push(p);
            }
            if !front.is_done() {
                break;
            }
            let close = front.state == SlotState::DoneThenClose;
            let upgrade = front.upgrade;
            self.slots.pop_front();
            if let Some((max, auto_pong)) = upgrade {
                if self.input == Input::Ended {
                    // The client left before the 101 (its input is read to the end): there is
                    // no WebSocket to serve. What is queued (the answers before, the 101)
                    // still goes out, then it closes. (A FIN only seen, not read yet, still
                    // lets the frames before it be read; the EOF then closes the WebSocket.)
                    self.finish_after_flush(Ending::PeerClosed);
                    break;
                }
                // The 101 is queued: from here on the connection speaks WebSocket.
                self.slots.clear();
                let (early_acks, early_close) = self.early.take().map(|b| *b).unwrap_or_default();
                self.ws = Some(Box::new(WsState {
                    dec: FrameDecoder::new(max),
                    auto_pong,
                    close_sent: early_close.is_some(),
                    info: early_close,
                    flow: Flow::Flowing,
                    pong_at: None,
                }));
                for token in early_acks {
                    self.wq.mark(token);
                }
                self.reading = Reading::Requests;
                if let Close::AfterAnswers(_) = self.close {
                    self.close = Close::Open;
                }
                if self.stopping {
                    self.ws_close(CloseCode::GOING_AWAY, "server stopping", CloseThen::AwaitReply);
                }
                break;
            }
            if close {
                let dropped: usize = self.slots.iter().flat_map(|s| s.parts.iter()).map(Bytes::len).sum();
                self.handle.release_out(dropped);
                self.slots.clear();
                self.finish_after_flush(Ending::Local);
                break;
            }
        }
        if let (true, Close::AfterAnswers(e)) = (self.slots.is_empty(), &self.close) {
            self.close = Close::AfterFlush(*e);
        }
    }
}
