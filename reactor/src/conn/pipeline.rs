//! The HTTP pipeline of one connection: a slot per request in flight, answers written in
//! request order whatever order the workers finish in, a request that is not safe run alone
//! (RFC 9112 §9.3.2), interim `100 Continue`, and the switch to WebSocket after a `101`.

use std::collections::VecDeque;

use super::*;
use crate::write_queue::WriteQueue;
use crate::Part;
use crate::{BodySpool, SpoolRefusal, SPOOL_PIECE};

#[derive(Debug)]
pub(super) struct Pending {
    pub(super) head: RequestHead,
    /// The body so far; with a spool, the part not yet handed to it.
    pub(super) body: Vec<u8>,
    /// Where the body goes instead of memory (see [`Dispatch::open_spool`]).
    pub(super) spool: Option<Arc<dyn BodySpool>>,
}

impl std::fmt::Debug for dyn BodySpool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodySpool")
    }
}

#[derive(Debug)]
struct Slot {
    seq: u64,
    parts: Vec<Bytes>,
    state: SlotState,
    /// Switch to WebSocket once this response is queued: (max message, auto pong).
    upgrade: Option<WsUpgrade>,
    /// The request's method is safe (GET, HEAD, OPTIONS, TRACE): it may run beside other safe
    /// requests of the pipeline.
    safe: bool,
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
    fn is_done(&self) -> bool {
        self.state != SlotState::Open
    }
}

/// The requests of one connection in flight, in order: a slot per request, the answers moved
/// to the write queue in request order whatever order the workers finish in, the one request
/// held back by the safe-method rule, and frames sent before a pending `101` left.
#[derive(Debug, Default)]
pub(super) struct Pipeline {
    slots: VecDeque<Slot>,
    /// A complete pipelined request that waits for the requests before it to be answered (it or
    /// one of them is not safe); nothing more is decoded meanwhile.
    held: Option<Box<InboundRequest>>,
    next_seq: u64,
    /// Frames sent before the 101 left (it waited behind pipelined responses): their write
    /// acknowledgements and a close among them, applied when the WebSocket starts. Boxed:
    /// rare, and idle connections should stay small.
    early: Option<Box<(Vec<u64>, Option<WsClose>)>>,
}

/// What the front of the pipeline did when its answers moved to the write queue.
#[derive(Debug)]
pub(super) enum Front {
    /// It waits for an answer (or the pipeline is empty).
    Waiting,
    /// A `101` went out: the connection speaks WebSocket from here on.
    Upgrade { ws: WsUpgrade, early_acks: Vec<u64>, early_close: Option<WsClose> },
    /// An answer that closes the connection went out; the later answers (these many bytes)
    /// were dropped.
    Close { dropped: usize },
}

impl Pipeline {
    pub(super) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The request whose answer is written now (or the next one, when none waits).
    pub(super) fn front_seq(&self) -> u64 {
        self.slots.front().map_or(self.next_seq, |s| s.seq)
    }

    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// A request waits for the answers before it (see [`Pipeline::admit`]).
    pub(super) fn is_holding(&self) -> bool {
        self.held.is_some()
    }

    /// Bytes held: answers waiting for their turn, a held request's body.
    pub(super) fn bytes(&self) -> usize {
        self.held.as_ref().map_or(0, |r| r.body.len())
            + self.slots.iter().flat_map(|s| s.parts.iter()).map(Bytes::len).sum::<usize>()
    }

    /// A slot for the next request; `true` when it may run now. Pipelined requests run in
    /// parallel only while all of them are safe (RFC 9112 §9.3.2): a POST waits for the answers
    /// before it, and requests after a POST wait for its answer, so no side effect happens out
    /// of order or after a response that closes.
    pub(super) fn admit(&mut self, safe: bool) -> (u64, bool) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let may_run = self.slots.iter().all(|s| s.is_done() || (safe && s.safe));
        self.slots.push_back(Slot { seq, parts: Vec::new(), state: SlotState::Open, upgrade: None, safe });
        (seq, may_run)
    }

    /// Keeps a request that may not run yet.
    pub(super) fn hold(&mut self, req: InboundRequest) {
        self.held = Some(Box::new(req));
    }

    /// The held request, once the requests before it allow it to run (dropped if an earlier
    /// answer closed the connection: it never runs).
    pub(super) fn release_held(&mut self) -> Option<InboundRequest> {
        let seq = self.held.as_ref()?.seq;
        let Some(pos) = self.slots.iter().position(|s| s.seq == seq) else {
            self.held = None;
            return None;
        };
        let safe = self.slots[pos].safe;
        if self.slots.iter().take(pos).all(|s| s.is_done() || (safe && s.safe)) {
            return self.held.take().map(|b| *b);
        }
        None
    }

    /// A whole answer of the reactor's own, ordered after the ones in flight.
    pub(super) fn push_local(&mut self, b: Bytes, state: SlotState) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.slots.push_back(Slot { seq, parts: vec![b], state, upgrade: None, safe: true });
    }

    /// `part` of the answer to `seq`: straight to the write queue when it is the oldest, kept
    /// in its slot otherwise. `Err` with the bytes' length when no slot waits for it.
    pub(super) fn write(
        &mut self,
        seq: u64,
        head: Bytes,
        body: Bytes,
        part: Part,
        wq: &mut WriteQueue,
    ) -> Result<(), usize> {
        let Some(pos) = self.slots.iter().position(|s| s.seq == seq && !s.is_done()) else {
            return Err(head.len() + body.len());
        };
        let slot = &mut self.slots[pos];
        if pos == 0 {
            // The common case: the answer to the oldest request goes straight out.
            wq.push(head);
            wq.push(body);
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
        Ok(())
    }

    /// The answer to `seq` was written whole by the worker (the lent write side).
    pub(super) fn mark_done(&mut self, seq: u64) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.seq == seq && !s.is_done()) {
            slot.state = SlotState::Done;
        }
    }

    /// The answer to `seq` is a `101` (`head`): the switch happens when it reaches the front.
    /// `Err` with the length when no slot waits for it.
    pub(super) fn upgrade(&mut self, seq: u64, head: Bytes, ws: WsUpgrade) -> Result<(), usize> {
        let Some(slot) = self.slots.iter_mut().find(|s| s.seq == seq && !s.is_done()) else {
            return Err(head.len());
        };
        slot.parts.push(head);
        slot.state = SlotState::Done;
        slot.upgrade = Some(ws);
        Ok(())
    }

    /// Whether a `101` waits behind earlier answers.
    pub(super) fn upgrade_pending(&self) -> bool {
        self.slots.iter().any(|s| s.upgrade.is_some())
    }

    /// A frame sent while the `101` still waits behind earlier answers: it follows the `101`
    /// (see [`Pipeline::upgrade_pending`]).
    pub(super) fn early_frame(&mut self, head: Bytes, payload: Bytes, close: Option<WsClose>, ack: Option<u64>) {
        let Some(slot) = self.slots.iter_mut().find(|s| s.upgrade.is_some()) else {
            return;
        };
        slot.parts.push(head);
        slot.parts.push(payload);
        let early = self.early.get_or_insert_with(Default::default);
        early.0.extend(ack);
        if early.1.is_none() {
            early.1 = close;
        }
    }

    /// Moves the answers at the front to the write queue, in request order, up to the first
    /// one not complete, a `101` or an answer that closes.
    pub(super) fn advance(&mut self, wq: &mut WriteQueue) -> Front {
        while let Some(front) = self.slots.front_mut() {
            for p in front.parts.drain(..) {
                wq.push(p);
            }
            if !front.is_done() {
                break;
            }
            let close = front.state == SlotState::DoneThenClose;
            let upgrade = front.upgrade;
            self.slots.pop_front();
            if let Some(ws) = upgrade {
                let (early_acks, early_close) = self.early.take().map(|b| *b).unwrap_or_default();
                return Front::Upgrade { ws, early_acks, early_close };
            }
            if close {
                return Front::Close { dropped: self.clear() };
            }
        }
        Front::Waiting
    }

    /// Drops every answer in flight; returns the bytes dropped.
    pub(super) fn clear(&mut self) -> usize {
        let dropped = self.slots.iter().flat_map(|s| s.parts.iter()).map(Bytes::len).sum();
        self.slots.clear();
        dropped
    }

    /// Gives back the memory of a burst (an idle connection).
    pub(super) fn shrink(&mut self) {
        if self.slots.is_empty() && self.slots.capacity() > 0 {
            self.slots = VecDeque::new();
        }
    }
}

impl<A> Conn<A> {
    pub(super) fn on_head<D: Dispatch<Attachment = A>>(&mut self, head: RequestHead, ctx: &mut Ctx<'_, D>) {
        // Refused before any `100 Continue`: a client that waits for it never sends the body.
        let declared = match head.body {
            BodyKind::Length(n) => usize::try_from(n).unwrap_or(usize::MAX),
            _ => 0,
        };
        // A body too large to buffer may go elsewhere (a spool on disk).
        let spool = if declared > ctx.cfg.body_buffer_size {
            match ctx.dispatch.open_spool(&self.handle, &head, Some(declared as u64)) {
                Ok(s) => s,
                Err(r) => return self.refuse_spool(r, ctx),
            }
        } else {
            None
        };
        if spool.is_none() {
            if declared > ctx.cfg.buffer_budget {
                let msg = "request body larger than the server buffers";
                return self.refuse_body(StatusCode::PAYLOAD_TOO_LARGE, msg, ctx);
            }
            if head.body != BodyKind::Empty && ctx.over_budget(declared) {
                return self.refuse_body(StatusCode::SERVICE_UNAVAILABLE, "server busy: too many bytes buffered", ctx);
            }
        }
        if head.expect_continue {
            if let Some(answer) = ctx.dispatch.on_expect_continue(&self.handle, &head) {
                return self.refuse_with(answer);
            }
            let interim = Bytes::from_static(b"HTTP/1.1 100 Continue\r\n\r\n");
            if self.pipeline.is_empty() {
                self.queue_local(interim);
            } else {
                // After the answers to the requests before this one, never inside them.
                self.push_local(interim, SlotState::Done);
            }
        }
        // The body timer (a rate window) starts in `update_timer`, unless output is waiting:
        // then the write window goes on.
        let body = match head.body {
            _ if spool.is_some() => Vec::with_capacity(SPOOL_PIECE),
            BodyKind::Length(n) => Vec::with_capacity(n.min(1 << 20) as usize),
            _ => Vec::new(),
        };
        self.cur = Some(Box::new(Pending { head, body, spool }));
    }

    /// A piece of the body being received: kept, or gathered for its spool (which is opened
    /// once a chunked body outgrows [`ReactorConfig::body_buffer_size`]).
    pub(super) fn on_body_piece<D: Dispatch<Attachment = A>>(&mut self, piece: &[u8], ctx: &mut Ctx<'_, D>) {
        let Some(p) = &mut self.cur else { return };
        if p.spool.is_none() && p.body.len() + piece.len() > ctx.cfg.body_buffer_size {
            match ctx.dispatch.open_spool(&self.handle, &p.head, None) {
                Ok(s) => p.spool = s,
                Err(r) => return self.refuse_spool(r, ctx),
            }
        }
        if p.spool.is_none() || p.body.len() >= SPOOL_PIECE {
            p.body.extend_from_slice(piece);
            if p.spool.is_some() {
                self.spool_piece(ctx);
            }
            return;
        }
        // Gathered into pieces of exactly `SPOOL_PIECE` bytes (allocated once each).
        let mut rest = piece;
        while !rest.is_empty() {
            let Some(p) = &mut self.cur else { return };
            let take = (SPOOL_PIECE - p.body.len()).min(rest.len());
            p.body.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if p.body.len() == SPOOL_PIECE && !self.spool_piece(ctx) {
                return;
            }
        }
    }

    /// Hands what is gathered of the body to its spool; pauses reading when the spool is full.
    fn spool_piece<D: Dispatch<Attachment = A>>(&mut self, ctx: &mut Ctx<'_, D>) -> bool {
        let Some(p) = &mut self.cur else { return false };
        let Some(spool) = &p.spool else { return true };
        let piece = Bytes::from(std::mem::replace(&mut p.body, Vec::with_capacity(SPOOL_PIECE)));
        match spool.clone().write(piece) {
            Ok(true) => true,
            Ok(false) => {
                self.flow = super::ws::Flow::SpoolFull;
                true
            }
            Err(r) => {
                self.refuse_spool(r, ctx);
                false
            }
        }
    }

    fn refuse_spool<D: Dispatch<Attachment = A>>(&mut self, r: SpoolRefusal, ctx: &mut Ctx<'_, D>) {
        let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self.refuse_body(status, r.reason, ctx);
    }

    pub(super) fn on_end<D: Dispatch<Attachment = A>>(&mut self, ctx: &mut Ctx<'_, D>) {
        if self.cur.as_ref().is_some_and(|p| p.spool.is_some() && !p.body.is_empty()) && !self.spool_piece(ctx) {
            return;
        }
        if let Some(Pending { head, body, spool }) = self.cur.take().map(|b| *b) {
            // A spool full at the very end holds nothing up: the body is complete.
            if self.flow == super::ws::Flow::SpoolFull {
                self.flow = super::ws::Flow::Flowing;
            }
            let body = if spool.is_some() { Vec::new() } else { body };
            self.complete(head, body, spool, ctx);
        }
    }

    /// A whole request: give it a slot and dispatch it (or hold it, see below).
    pub(super) fn complete<D: Dispatch<Attachment = A>>(
        &mut self,
        head: RequestHead,
        body: Vec<u8>,
        spool: Option<Arc<dyn BodySpool>>,
        ctx: &mut Ctx<'_, D>,
    ) {
        // A new request: from here on the reactor alone orders the answers (a grant is lent
        // again below when this is the only one waiting).
        self.settle_direct(Settle::TakeBack);
        let safe = matches!(head.method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE);
        let (seq, may_run) = self.pipeline.admit(safe);
        self.publish_front();
        if head.upgrade || !head.keep_alive || self.stopping {
            // After an upgrade request or a request that closes, nothing more is read as HTTP;
            // unless the upgrade happens, the connection closes after the response.
            self.finish_after_answers();
        }
        let trailers = self.decoder.take_trailers();
        // Lent only when nothing waits on this answer but the client: decoding goes on (the
        // pipeline has room), nothing is queued, the connection stays open after it.
        let lend = may_run
            && self.pipeline.len() == 1
            && self.pipeline.len() < ctx.cfg.max_pipelined
            && self.wq.is_empty()
            && head.keep_alive
            && !head.upgrade
            && self.reading != Reading::Stopped
            && self.close == Close::Open
            && self.input != Input::Ended
            && self.ws.is_none();
        let req = InboundRequest { seq, head, body, trailers, received: ctx.now, spool };
        if may_run {
            if lend {
                self.lend_direct(seq);
            }
            ctx.dispatch.on_request(&self.handle, req);
        } else {
            self.pipeline.hold(req);
        }
    }

    /// Dispatches the held request once the requests before it allow (see [`Conn::on_end`]).
    pub(super) fn release_held<D: Dispatch<Attachment = A>>(&mut self, ctx: &mut Ctx<'_, D>) {
        if self.closing() {
            return;
        }
        if let Some(req) = self.pipeline.release_held() {
            ctx.dispatch.on_request(&self.handle, req);
        }
    }

    /// Bytes the reactor writes on its own, outside any response slot (100 Continue).
    pub(super) fn queue_local(&mut self, b: Bytes) {
        // Behind a lent answer: the reactor writes from here on, in order.
        self.settle_direct(Settle::TakeBack);
        self.wq.push_own(b, &self.handle.shared.queued);
    }

    /// A whole response of the reactor's own, ordered after the responses in flight.
    pub(super) fn push_local(&mut self, b: Bytes, state: SlotState) {
        // Behind a lent answer: it is folded in now, not at the next visit, so this one follows
        // at once.
        self.settle_direct(Settle::TakeBack);
        self.wq.expect(b.len(), &self.handle.shared.queued);
        self.pipeline.push_local(b, state);
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
        if let Err(n) = self.pipeline.write(seq, head, body, part, &mut self.wq) {
            self.wq.forget(n, &self.handle.shared.queued);
            return;
        }
        self.advance_slots();
        if self.wq.len() >= ctx.cfg.write_high_water {
            self.flush(ctx);
        } else if self.wq.len() <= ctx.cfg.write_low_water()
            && self.handle.shared.drained_wanted.load(Ordering::SeqCst)
            && self.handle.shared.drained_wanted.swap(false, Ordering::SeqCst)
        {
            // Drained without a write: e.g. an answer that ended with no bytes let the next one
            // to the front (see `ConnHandle::is_front`).
            ctx.dispatch.on_drained(&self.handle);
        }
    }

    /// Publishes which answer is at the front (see [`ConnHandle::is_front`]): a store only when
    /// it changed (once per request, as its slot leaves), not on every write.
    fn publish_front(&self) {
        let front = self.pipeline.front_seq();
        if self.handle.shared.front.load(Ordering::Relaxed) != front {
            self.handle.shared.front.store(front, Ordering::SeqCst);
        }
    }

    /// Moves the answers at the front to the write queue and acts on what went out: a `101`
    /// switches to WebSocket, an answer that closes ends the connection after it.
    pub(super) fn advance_slots(&mut self) {
        let front = self.pipeline.advance(&mut self.wq);
        self.publish_front();
        match front {
            Front::Waiting => {}
            Front::Upgrade { .. } if self.input == Input::Ended => {
                // The client left before the 101 (its input is read to the end): there is no
                // WebSocket to serve. What is queued (the answers before, the 101) still goes
                // out, then it closes. (A FIN only seen, not read yet, still lets the frames
                // before it be read; the EOF then closes the WebSocket.)
                self.finish_after_flush(Ending::PeerClosed);
            }
            Front::Upgrade { ws, early_acks, early_close } => {
                // The 101 is queued: from here on the connection speaks WebSocket.
                self.wq.forget(self.pipeline.clear(), &self.handle.shared.queued);
                self.ws = Some(Box::new(WsSession::new(&ws, early_close)));
                self.handle.remote.inner.stats.websockets.fetch_add(1, Ordering::Relaxed);
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
                return;
            }
            Front::Close { dropped } => {
                self.wq.forget(dropped, &self.handle.shared.queued);
                self.finish_after_flush(Ending::Local);
            }
        }
        if let (true, Close::AfterAnswers(e)) = (self.pipeline.is_empty(), &self.close) {
            self.close = Close::AfterFlush(*e);
        }
    }
}
