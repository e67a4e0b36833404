//! The server-wide budget of buffered bytes, as one connection sees it: what it holds, what it
//! adds to the count, and what it refuses when the budget is spent.

use super::*;

impl<A> Conn<A> {
    /// Bytes this connection holds: read buffer, the body being received, a held request,
    /// responses queued or waiting for their turn.
    pub(super) fn buffered_bytes(&self) -> usize {
        self.wq.len()
            + self.rbuf.len()
            + self.ws.as_ref().map_or(0, |w| w.dec.buffered())
            + self.cur.as_ref().map_or(0, |p| p.body.len() + p.spool.as_ref().map_or(0, |s| s.pending()))
            + self.pipeline.bytes()
    }

    /// Brings the server-wide count of buffered bytes up to date with this connection (after
    /// each visit of the loop; with `gone`, the connection is being removed).
    pub(crate) fn sync_budget(&mut self, total: &AtomicUsize) {
        self.charge_budget(total, self.buffered_bytes());
    }

    /// The connection is being removed: it holds nothing any more.
    pub(crate) fn release_budget(&mut self, total: &AtomicUsize) {
        self.charge_budget(total, 0);
    }

    fn charge_budget(&mut self, total: &AtomicUsize, now: usize) {
        if now > self.charged {
            total.fetch_add(now - self.charged, Ordering::Relaxed);
        } else if now < self.charged {
            total.fetch_sub(self.charged - now, Ordering::Relaxed);
        }
        self.charged = now;
    }

    /// Whether reading should wait: the write queue is above the high-water mark, or the
    /// server is over its buffer budget and this connection holds a share of it (queued output,
    /// a WebSocket message being assembled).
    pub(super) fn output_backs_up<D>(&self, ctx: &Ctx<'_, D>) -> bool {
        self.wq.len() >= ctx.cfg.write_high_water || (self.held_share() >= BUDGET_SHARE && ctx.over_budget(0))
    }

    /// The bytes that pausing this connection's reading stops from growing.
    pub(super) fn held_share(&self) -> usize {
        self.wq.len() + self.ws.as_ref().map_or(0, |w| w.dec.buffered())
    }

    /// Refuses the request whose head just arrived (or whose body is arriving) because the
    /// server's buffer budget cannot hold its body: `503` (`Retry-After: 1`), or `413` for a body
    /// larger than the whole budget; then a lingering close (the rest of the body is read and
    /// dropped, never parsed as a request).
    pub(super) fn refuse_body<D: Dispatch<Attachment = A>>(
        &mut self,
        status: StatusCode,
        msg: &'static str,
        ctx: &mut Ctx<'_, D>,
    ) {
        ctx.dispatch.on_bad_request(&self.handle, status.as_u16(), msg);
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        let bytes = simple_response(status, &headers, msg.as_bytes(), ctx);
        self.refuse_with(bytes);
    }

    /// Answers the request whose head just arrived with `answer` instead of reading its body,
    /// then closes (after a lingering read, so the unread body cannot reset the answer).
    pub(super) fn refuse_with(&mut self, answer: Bytes) {
        self.cur = None;
        self.push_local(answer, SlotState::DoneThenClose);
        self.reading = Reading::Stopped;
        self.rbuf = Vec::new();
    }
}
