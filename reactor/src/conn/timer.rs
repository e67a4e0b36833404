//! Deadlines: one timer per connection, chosen from its state; a timer keeps its deadline while
//! its state lasts (a trickling client cannot extend the header deadline), and the rate timers
//! (request body, reading of queued output) check a minimum rate at the end of each window.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    None,
    HeaderRead,
    BodyRead,
    Idle,
    Write,
    Linger,
    CloseHandshake,
}

impl<A> Conn<A> {
    /// Picks the timer for the connection's current state; a timer keeps its deadline while
    /// its state lasts (a trickling client cannot extend the header deadline).
    pub(crate) fn update_timer(&mut self, cfg: &ReactorConfig, now: Instant) {
        if self.closing() || self.lingering() {
            return;
        }
        let want = if self.ws.as_ref().is_some_and(|w| w.close_sent) {
            Timer::CloseHandshake
        } else if !self.wq.is_empty() {
            Timer::Write
        } else if self.ws.is_some() || !self.pipeline.is_empty() {
            Timer::None
        } else if self.cur.as_ref().is_some_and(|p| p.head.body != BodyKind::Empty) {
            Timer::BodyRead
        } else if !self.rbuf.is_empty() || !self.decoder.is_idle() {
            Timer::HeaderRead
        } else {
            Timer::Idle
        };
        if want != self.timer {
            self.timer = want;
            self.window_bytes = 0;
            self.deadline = match want {
                Timer::None => None,
                Timer::HeaderRead => now.checked_add(cfg.header_read_timeout),
                Timer::BodyRead => now.checked_add(cfg.body_read_timeout),
                Timer::Idle => now.checked_add(cfg.idle_timeout),
                Timer::Write => now.checked_add(cfg.write_timeout),
                Timer::Linger => now.checked_add(LINGER),
                Timer::CloseHandshake => now.checked_add(CLOSE_HANDSHAKE),
            };
        }
    }

    /// Gives back the memory an idle connection no longer needs (called from the timer sweep,
    /// so a busy connection keeps its buffers between requests).
    pub(crate) fn shrink_if_idle(&mut self) {
        if self.timer == Timer::Idle && self.pipeline.is_empty() && self.wq.is_empty() {
            self.pipeline.shrink();
            self.wq.release();
            if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
                self.rbuf = Vec::new();
            }
        }
    }

    pub(crate) fn on_timeout<D: Dispatch<Attachment = A>>(&mut self, ctx: &mut Ctx<'_, D>) {
        // A rate window ended: a peer at the minimum rate or above gets the next window.
        let (window, min) = match self.timer {
            Timer::BodyRead => (ctx.cfg.body_read_timeout, ctx.cfg.body_window_min()),
            Timer::Write => (ctx.cfg.write_timeout, ctx.cfg.send_window_min()),
            _ => (Duration::ZERO, u64::MAX),
        };
        if self.window_bytes >= min {
            self.window_bytes = 0;
            self.deadline = ctx.now.checked_add(window);
            return;
        }
        match self.timer {
            Timer::HeaderRead | Timer::BodyRead if self.pipeline.is_empty() => {
                let mut headers = HeaderMap::new();
                headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
                let bytes = simple_response(StatusCode::REQUEST_TIMEOUT, &headers, b"request timeout", ctx);
                self.cur = None;
                self.push_local(bytes, SlotState::DoneThenClose);
                self.reading = Reading::Stopped;
                self.rbuf = Vec::new();
                self.flush(ctx);
                if !self.closing() && !self.lingering() {
                    // The peer does not read either: give up.
                    self.close(CloseReason::Timeout);
                }
            }
            Timer::None => {}
            // The peer kept its side open after our last response: a normal end.
            Timer::Linger => self.close(self.ending().reason()),
            _ => self.close(CloseReason::Timeout),
        }
    }
}
