//! Deadlines: one timer per connection, chosen from its state; a timer keeps its deadline while
//! its state lasts (a trickling client cannot extend the header deadline), and the rate timers
//! (request body, reading of queued output) check a minimum rate at the end of each window.

use super::*;
use crate::TimeoutKind;

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

/// The one deadline of a connection: which timer runs, when it fires, and for the rate timers
/// the bytes that moved in the current window.
#[derive(Debug)]
pub(super) struct Deadline {
    timer: Timer,
    at: Option<Instant>,
    window_bytes: u64,
}

impl Deadline {
    /// The header timer of a new connection.
    pub(super) fn new(cfg: &ReactorConfig, now: Instant) -> Self {
        Self { timer: Timer::HeaderRead, at: now.checked_add(cfg.header_read_timeout), window_bytes: 0 }
    }

    pub(super) fn timer(&self) -> Timer {
        self.timer
    }

    pub(super) fn at(&self) -> Option<Instant> {
        self.at
    }

    /// Runs `timer` from `now` (a new window), unless it runs already: a timer keeps its
    /// deadline while its state lasts.
    pub(super) fn run(&mut self, timer: Timer, cfg: &ReactorConfig, now: Instant) {
        if timer != self.timer {
            self.restart(timer, cfg, now);
        }
    }

    /// Runs `timer` from `now`, whatever ran before.
    pub(super) fn restart(&mut self, timer: Timer, cfg: &ReactorConfig, now: Instant) {
        self.timer = timer;
        self.window_bytes = 0;
        self.at = match timer {
            Timer::None => None,
            Timer::HeaderRead => now.checked_add(cfg.header_read_timeout),
            Timer::BodyRead => now.checked_add(cfg.body_read_timeout),
            Timer::Idle => now.checked_add(cfg.idle_timeout),
            Timer::Write => now.checked_add(cfg.write_timeout),
            Timer::Linger => now.checked_add(LINGER),
            Timer::CloseHandshake => now.checked_add(CLOSE_HANDSHAKE),
        };
    }

    /// `n` bytes moved while `timer` runs (a body arriving, output leaving).
    pub(super) fn count(&mut self, timer: Timer, n: usize) {
        if self.timer == timer {
            self.window_bytes += n as u64;
        }
    }

    /// At the end of a rate timer's window: `true` (and the next window starts) when at least
    /// the minimum moved.
    pub(super) fn window_passed(&mut self, cfg: &ReactorConfig, now: Instant) -> bool {
        let (window, min) = match self.timer {
            Timer::BodyRead => (cfg.body_read_timeout, cfg.body_window_min()),
            Timer::Write => (cfg.write_timeout, cfg.send_window_min()),
            _ => return false,
        };
        if self.window_bytes < min {
            return false;
        }
        self.window_bytes = 0;
        self.at = now.checked_add(window);
        true
    }
}

impl<A> Conn<A> {
    /// Something was read from a WebSocket: the peer is alive, the heartbeat starts over.
    /// (The heartbeat's instants are the session's own, beside the connection's one timer, so
    /// that output flowing to a dead peer, which switches that timer, cannot push them back.)
    pub(super) fn ws_alive(&mut self, cfg: &ReactorConfig, now: Instant) {
        if let Some(ws) = &mut self.ws {
            ws.ping_due = None;
            ws.ping_at = cfg.ws_ping_interval.and_then(|i| now.checked_add(i));
        }
    }

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
        } else if self.flow == super::ws::Flow::SpoolFull {
            // The server is the slow one (its spool's writes lag): no rate is asked of the client.
            Timer::None
        } else if self.cur.as_ref().is_some_and(|p| p.head.body != BodyKind::Empty) {
            Timer::BodyRead
        } else if !self.rbuf.is_empty() || !self.decoder.is_idle() {
            Timer::HeaderRead
        } else {
            Timer::Idle
        };
        self.deadline.run(want, cfg, now);
        // Heartbeats run only while the peer is read (a paused connection leaves its answers
        // unread): the first interval starts with the WebSocket or when reading resumes.
        let paused = self.ws_paused();
        if let (Some(ws), Some(interval)) = (&mut self.ws, cfg.ws_ping_interval) {
            if !paused && !ws.close_sent && ws.fail_at.is_none() && ws.ping_at.is_none() && ws.ping_due.is_none() {
                ws.ping_at = now.checked_add(interval);
            }
        }
    }

    /// Gives back the memory an idle connection no longer needs (called from the timer sweep,
    /// so a busy connection keeps its buffers between requests).
    pub(crate) fn shrink_if_idle(&mut self) {
        // A WebSocket between messages too: it may stay open for hours with nothing to send.
        let idle = self.deadline.timer() == Timer::Idle || self.ws.is_some();
        if idle && self.pipeline.is_empty() && self.wq.is_empty() {
            self.pipeline.shrink();
            self.wq.release();
            if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
                self.rbuf = Vec::new();
            }
        }
    }

    pub(crate) fn on_timeout<D: Dispatch<Attachment = A>>(&mut self, ctx: &mut Ctx<'_, D>) {
        self.settle_direct(Settle::TakeBack);
        if let Some(ws) = &self.ws {
            // A pinged WebSocket sent nothing in time: the peer is gone.
            if ws.ping_due.is_some_and(|due| due <= ctx.now) {
                ctx.stats.count_timeout(TimeoutKind::Idle);
                self.close(CloseReason::Timeout);
                return;
            }
            let fail = ws.fail_at.as_deref().copied();
            if ws.ping_at.is_some_and(|at| at <= ctx.now) {
                self.ws_heartbeat(ctx);
            }
            if let Some((at, code, reason)) = fail {
                if at <= ctx.now {
                    // The dispatcher's close did not come in time: close as the failure asks.
                    if let Some(ws) = &mut self.ws {
                        ws.fail_at = None;
                    }
                    self.ws_close(code, reason, CloseThen::CloseTcp);
                    return;
                }
            }
        }
        // The heartbeat may be what came due: the connection's own timer acts only at its time.
        if self.deadline.at().is_none_or(|at| at > ctx.now) {
            return;
        }
        // A rate window ended: a peer at the minimum rate or above gets the next window.
        if self.deadline.window_passed(ctx.cfg, ctx.now) {
            return;
        }
        let kind = match self.deadline.timer() {
            Timer::HeaderRead => Some(TimeoutKind::Header),
            Timer::BodyRead => Some(TimeoutKind::Body),
            Timer::Idle => Some(TimeoutKind::Idle),
            Timer::Write | Timer::CloseHandshake => Some(TimeoutKind::Write),
            Timer::Linger | Timer::None => None,
        };
        if let Some(kind) = kind {
            ctx.stats.count_timeout(kind);
        }
        match self.deadline.timer() {
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
