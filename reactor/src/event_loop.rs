//! The loop: poll → socket events → commands → flush → timers, one iteration per wake-up.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;
use httpkit_codec::date::{fmt_http_date, DATE_LEN};
use mio::{Events, Interest, Poll, Token};

use crate::command::{Command, Remote, RemoteInner};
use crate::conn::{Conn, Ctx};
use crate::handle::ConnShared;
use crate::slab::{ConnId, Slab};
use crate::stream::MioListener;
use crate::{CloseReason, ConnHandle, Dispatch, Listener, ReactorConfig, Stats};

const WAKER: Token = Token(usize::MAX);
const LISTENER: Token = Token(usize::MAX - 1);
/// How long the loop keeps polling without blocking after it last had work.
const REACTOR_SPIN: Duration = Duration::from_micros(50);
/// Read buffer shared by all connections (idle connections own none).
const SCRATCH: usize = 64 * 1024;

pub(crate) struct EventLoop<D: Dispatch> {
    poll: Poll,
    listener: Option<MioListener>,
    accept_paused: bool,
    accept_retry: Option<Instant>,
    conns: Slab<Conn<D::Attachment>>,
    rx: Receiver<Command>,
    remote: Remote,
    cfg: ReactorConfig,
    dispatch: D,
    scratch: Vec<u8>,
    stats: Arc<Stats>,
    stop_deadline: Option<Instant>,
    stopping: bool,
    date_secs: u64,
    date: [u8; DATE_LEN],
    next_sweep: Instant,
    sweep_every: Duration,
    ready: Vec<ConnId>,
    touched: Vec<ConnId>,
    last_work: Instant,
    /// Whether spinning pays (see `SpinGate`), whether this idle period may spin, whether the
    /// last poll was a spin, and idle periods since a spin was tried.
    spin: crate::SpinGate,
    spin_ok: bool,
    spinning: bool,
    since_try: u32,
    /// Connections that may be evicted at the connection limit, longest idle first: a list
    /// threaded through the connections' `lru` links (slot indices), so that keeping it costs
    /// no allocation and no scan.
    lru_head: u32,
    lru_tail: u32,
    /// What the server's loops share to evict the longest idle connection of them all.
    peers: Arc<Peers>,
    /// This loop's place among them.
    index: usize,
}

/// What the loops of one server share beyond the counters: a clock for idle times, and each
/// loop's longest-idle evictable connection, so that the one closed at the connection limit is
/// the server's longest idle, whichever loop holds it.
pub(crate) struct Peers {
    /// Counts connections becoming idle, in every loop: the order of idleness across loops.
    clock: std::sync::atomic::AtomicU32,
    /// Per loop: when (on `clock`) its longest idle evictable connection became idle, or
    /// `u64::MAX` when it has none.
    oldest: Vec<std::sync::atomic::AtomicU64>,
    remotes: std::sync::OnceLock<Vec<Remote>>,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers").field("loops", &self.oldest.len()).finish_non_exhaustive()
    }
}

impl Peers {
    pub(crate) fn new(loops: usize) -> Self {
        Self {
            clock: std::sync::atomic::AtomicU32::new(0),
            oldest: (0..loops).map(|_| std::sync::atomic::AtomicU64::new(u64::MAX)).collect(),
            remotes: std::sync::OnceLock::new(),
        }
    }

    /// The loops' remotes, once all are made.
    pub(crate) fn set_remotes(&self, remotes: Vec<Remote>) {
        let _ = self.remotes.set(remotes);
    }

    /// The next tick of the shared clock (one loop alone needs none: its list is in order).
    /// Wrapping: only ages, differences of ticks, are compared, right while fewer than 2³¹
    /// connections became idle since the oldest did.
    fn tick(&self) -> u32 {
        if self.oldest.len() < 2 {
            return 0;
        }
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    fn publish(&self, index: usize, since: Option<u32>) {
        if self.oldest.len() > 1 {
            self.oldest[index].store(since.map_or(u64::MAX, u64::from), Ordering::Relaxed);
        }
    }

    /// Whether a loop other than `me` has an idle connection.
    fn idle_elsewhere(&self, me: usize) -> bool {
        self.oldest.len() > 1
            && (0..self.oldest.len()).any(|i| i != me && self.oldest[i].load(Ordering::Relaxed) != u64::MAX)
    }

    /// At the limit: if another loop holds a connection idle longer than any of loop `me`,
    /// asks it to close that one and says `true`.
    fn make_room_elsewhere(&self, me: usize) -> bool {
        if self.oldest.len() < 2 {
            return false;
        }
        let now = self.clock.load(Ordering::Relaxed);
        let age = |v: u64| (v != u64::MAX).then(|| now.wrapping_sub(v as u32));
        let mine = age(self.oldest[me].load(Ordering::Relaxed));
        let other = (0..self.oldest.len())
            .filter(|&i| i != me)
            .filter_map(|i| age(self.oldest[i].load(Ordering::Relaxed)).map(|a| (a, i)))
            .max();
        match other {
            Some((a, i)) if mine.is_none_or(|m| a > m) => {
                // Not asked twice for the same connection: the loop publishes its next one.
                self.oldest[i].store(u64::MAX, Ordering::Relaxed);
                if let Some(r) = self.remotes.get().and_then(|r| r.get(i)) {
                    r.send(Command::EvictIdle);
                }
                true
            }
            _ => false,
        }
    }
}

/// No slot (the end of the eviction list).
const NONE: u32 = u32::MAX;

/// A loop that ends with connections still open (it panicked) gives back what they hold of the
/// server-wide counts (`open`, WebSockets, the buffer budget), so that `max_connections` stays
/// whole for the other loops, and marks them closed for the threads that hold their handles.
/// (The dispatcher is not called: this may run while a panic unwinds.)
impl<D: Dispatch> Drop for EventLoop<D> {
    fn drop(&mut self) {
        // No other loop counts on this one to make room any more.
        self.peers.publish(self.index, None);
        for id in self.conns.ids() {
            if let Some(mut conn) = self.conns.remove(id) {
                release(&mut conn, &self.stats);
            }
        }
    }
}

/// What a connection that is going away gives back: its output, its share of the server-wide
/// counts; and it is marked closed for the threads holding its handle.
fn release<A>(conn: &mut Conn<A>, stats: &Stats) {
    conn.discard_output();
    conn.release_budget(&stats.buffered);
    if conn.is_websocket() {
        stats.websockets.fetch_sub(1, Ordering::Relaxed);
    }
    conn.handle.shared.closed.store(true, Ordering::Release);
    stats.open.fetch_sub(1, Ordering::Relaxed);
}

impl<D: Dispatch> EventLoop<D> {
    pub(crate) fn new(
        cfg: ReactorConfig,
        listener: Listener,
        dispatch: D,
        stats: Arc<Stats>,
        peers: Arc<Peers>,
        index: usize,
    ) -> io::Result<(Self, Remote, Option<SocketAddr>)> {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let remote = Remote {
            inner: Arc::new(RemoteInner { stats: stats.clone(), tx, waker, sleeping: AtomicBool::new(false) }),
        };
        let (mut listener, local) = match listener {
            Listener::Tcp(l) => {
                l.set_nonblocking(true)?;
                let local = l.local_addr().ok();
                (MioListener::Tcp(mio::net::TcpListener::from_std(l)), local)
            }
            Listener::Unix(l) => {
                l.set_nonblocking(true)?;
                (MioListener::Unix(mio::net::UnixListener::from_std(l)), None)
            }
        };
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let shortest = [cfg.header_read_timeout, cfg.body_read_timeout, cfg.idle_timeout, cfg.write_timeout]
            .into_iter()
            .chain(cfg.ws_ping_interval.map(|i| i.min(cfg.ws_pong_timeout)))
            .min()
            .unwrap_or(Duration::from_secs(1));
        let sweep_every = (shortest / 8).clamp(Duration::from_millis(10), Duration::from_millis(500));
        let lp = Self {
            poll,
            listener: Some(listener),
            accept_paused: false,
            accept_retry: None,
            conns: Slab::new(),
            rx,
            remote: remote.clone(),
            cfg,
            dispatch,
            scratch: vec![0; SCRATCH],
            stats,
            stop_deadline: None,
            stopping: false,
            date_secs: 0,
            date: [0; DATE_LEN],
            next_sweep: Instant::now(),
            sweep_every,
            ready: Vec::new(),
            touched: Vec::new(),
            last_work: Instant::now(),
            spin: crate::SpinGate::default(),
            spin_ok: true,
            spinning: false,
            since_try: 0,
            lru_head: NONE,
            lru_tail: NONE,
            peers,
            index,
        };
        Ok((lp, remote, local))
    }

    fn update_date(&mut self) {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        if secs != self.date_secs {
            self.date_secs = secs;
            self.date = fmt_http_date(secs);
        }
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        let mut t: Option<Instant> = None;
        let mut consider = |i: Option<Instant>| {
            if let Some(i) = i {
                t = Some(t.map_or(i, |t| t.min(i)));
            }
        };
        if self.conns.len() > 0 {
            consider(Some(self.next_sweep));
        }
        consider(self.accept_retry);
        consider(self.stop_deadline);
        t.map(|t| t.saturating_duration_since(now))
    }

    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut turn_began: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if let Some(began) = turn_began {
                // A plain load per turn; a store only when a turn is the longest yet.
                let took = now.saturating_duration_since(began).as_micros() as u64;
                if took > self.stats.longest_turn.load(Ordering::Relaxed) {
                    self.stats.longest_turn.fetch_max(took, Ordering::Relaxed);
                }
            }
            let mut timeout = self.poll_timeout(now);
            // Right after work, answers from the workers are usually microseconds away: poll
            // without blocking for a moment (yielding the core) instead of sleeping and being
            // woken, which costs two context switches per wake-up.
            let spin = self.spin_ok && now.saturating_duration_since(self.last_work) < REACTOR_SPIN;
            if self.spinning && !spin {
                // The spin ran out without work.
                self.spin.spun(false);
                self.spin_ok = false;
            }
            self.spinning = spin;
            if spin {
                timeout = Some(Duration::ZERO);
                std::thread::yield_now();
            } else {
                // Order matters: publish "sleeping", then look at the queue (see Remote::send).
                self.remote.inner.sleeping.store(true, Ordering::SeqCst);
            }
            if !self.rx.is_empty() || !self.ready.is_empty() {
                timeout = Some(Duration::ZERO);
            }
            let res = self.poll.poll(&mut events, timeout);
            self.remote.inner.sleeping.store(false, Ordering::SeqCst);
            if let Err(e) = res {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("httpkit reactor: poll failed: {e}");
                    break;
                }
            }
            let now = Instant::now();
            turn_began = Some(now);
            self.update_date();
            if events.iter().any(|e| e.token() != WAKER) || !self.rx.is_empty() {
                self.last_work = now;
                if self.spinning {
                    self.spin.spun(true);
                }
                // Whether the wait after this work spins.
                self.spin_ok = self.spin.spin_pays(&mut self.since_try);
            }

            for ev in events.iter() {
                match ev.token() {
                    WAKER => {}
                    LISTENER => self.accept(now),
                    t => {
                        let id = ConnId::from_token(t.0);
                        let closed = ev.is_read_closed();
                        let error = ev.is_error();
                        let readable = ev.is_readable() || closed || error;
                        self.with_conn(id, now, |c, ctx, scratch| {
                            c.on_ready(readable, ev.is_writable(), closed, error, ctx, scratch)
                        });
                    }
                }
            }
            let ready = std::mem::take(&mut self.ready);
            for id in ready {
                self.with_conn(id, now, |c, ctx, scratch| c.drive(ctx, scratch));
            }
            if self.drain_commands(now) {
                break;
            }
            self.dispatch.on_flush();
            if now >= self.next_sweep {
                self.sweep(now);
                self.next_sweep = now + self.sweep_every;
            }
            if self.accept_paused && self.accept_retry.is_none_or(|t| now >= t) {
                let room = self.stats.open() < self.cfg.max_connections
                    || self.lru_head != NONE
                    || self.peers.idle_elsewhere(self.index);
                if room {
                    self.accept_paused = false;
                    self.accept_retry = None;
                    self.accept(now);
                } else if self.accept_retry.is_some() {
                    // Still no room: look again later (a retry left in the past would make
                    // every poll return at once).
                    self.accept_retry = Some(now + Duration::from_millis(100));
                }
            }
            if self.stopping {
                let expired = self.stop_deadline.is_some_and(|d| now >= d);
                if expired && self.conns.len() > 0 {
                    // Last words (end streams, answer waiting requests), written without waiting.
                    for id in self.conns.ids() {
                        if let Some(c) = self.conns.get_mut(id) {
                            let handle = c.handle.clone();
                            self.dispatch.on_stop_deadline(&handle);
                        }
                    }
                    self.drain_commands(now);
                }
                if expired || self.conns.len() == 0 {
                    break;
                }
            }
        }
        for id in self.conns.ids() {
            if let Some(c) = self.conns.get_mut(id) {
                c.stop_now();
            }
            self.reap(id, CloseReason::ServerStop);
        }
        self.dispatch.on_flush();
    }

    /// Runs `f` on connection `id` (if it still exists), then reaps or re-arms it.
    fn with_conn(
        &mut self,
        id: ConnId,
        now: Instant,
        f: impl FnOnce(&mut Conn<D::Attachment>, &mut Ctx<'_, D>, &mut [u8]),
    ) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let mut ctx = Ctx { cfg: &self.cfg, dispatch: &mut self.dispatch, now, date: &self.date, stats: &self.stats };
        // Once per visit: what a worker did with a lent write side.
        conn.poll_direct();
        f(conn, &mut ctx, &mut self.scratch);
        conn.sync_budget(&self.stats.buffered);
        if let Some(reason) = conn.is_closing() {
            self.reap(id, reason);
            return;
        }
        conn.update_timer(&self.cfg, now);
        let revisit = conn.wants_revisit(&self.cfg, &self.stats.buffered);
        let evictable = conn.is_evictable();
        let listed = conn.lru.is_some();
        if revisit && !self.ready.contains(&id) {
            self.ready.push(id);
        }
        if evictable != listed {
            if evictable {
                self.lru_push(id.index);
            } else {
                self.lru_unlink(id.index);
            }
        }
    }

    /// Appends slot `index` to the eviction list (it became idle now: the newest).
    fn lru_push(&mut self, index: u32) {
        let tail = self.lru_tail;
        let since = self.peers.tick();
        let Some((_, c)) = self.conns.at_mut(index) else { return };
        c.lru = Some((tail, NONE, since));
        match self.conns.at_mut(tail) {
            Some((_, t)) => {
                if let Some(l) = &mut t.lru {
                    l.1 = index;
                }
            }
            None => {
                self.lru_head = index;
                self.peers.publish(self.index, Some(since));
            }
        }
        self.lru_tail = index;
    }

    /// Takes slot `index` out of the eviction list, if it is in it.
    fn lru_unlink(&mut self, index: u32) {
        let Some((prev, next, _)) = self.conns.at_mut(index).and_then(|(_, c)| c.lru.take()) else {
            return;
        };
        match self.conns.at_mut(prev) {
            Some((_, p)) => {
                if let Some(l) = &mut p.lru {
                    l.1 = next;
                }
            }
            None => {
                self.lru_head = next;
                let since = self.conns.at_mut(next).and_then(|(_, c)| c.lru).map(|l| l.2);
                self.peers.publish(self.index, since);
            }
        }
        match self.conns.at_mut(next) {
            Some((_, n)) => {
                if let Some(l) = &mut n.lru {
                    l.0 = prev;
                }
            }
            None => self.lru_tail = prev,
        }
    }

    /// At the connection limit: closes the longest idle evictable connection. `false` when
    /// every connection has something in progress.
    fn evict_one(&mut self, now: Instant) -> bool {
        // A candidate may have input the loop has not read yet (its event is later in this
        // batch, or it was accepted a moment ago): it is read first, and a connection that
        // turns out to have a request in progress is not evicted.
        for _ in 0..64 {
            let Some((id, _)) = self.conns.at_mut(self.lru_head) else {
                return false;
            };
            self.with_conn(id, now, |c, ctx, scratch| c.on_ready(true, false, false, false, ctx, scratch));
            if self.conns.get_mut(id).is_some_and(|c| c.lru.is_some()) {
                log::debug!("httpkit reactor: connection limit reached; closing the longest idle connection");
                self.stats.evictions.fetch_add(1, Ordering::Relaxed);
                self.reap(id, CloseReason::Evicted);
                return true;
            }
        }
        false
    }

    fn drain_commands(&mut self, now: Instant) -> bool {
        let mut touched = std::mem::take(&mut self.touched);
        touched.clear();
        while let Ok(cmd) = self.rx.try_recv() {
            let id = match cmd {
                Command::Stop { deadline: None } => return true,
                Command::Stop { deadline } => {
                    self.begin_stop(deadline, now);
                    continue;
                }
                Command::EvictIdle => {
                    // Another loop admitted a connection at the limit, counting on this one's
                    // longest idle connection to make room.
                    self.evict_one(now);
                    continue;
                }
                Command::Write { id, .. }
                | Command::Upgrade { id, .. }
                | Command::Frame { id, .. }
                | Command::Pong { id, .. }
                | Command::PauseReading { id, .. }
                | Command::ResumeBody { id }
                | Command::Wake { id }
                | Command::Close { id, .. } => id,
            };
            // A command for a connection that is gone is dropped (its id's generation is stale).
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            let mut ctx =
                Ctx { cfg: &self.cfg, dispatch: &mut self.dispatch, now, date: &self.date, stats: &self.stats };
            match cmd {
                Command::Write { seq, head, body, part, .. } => conn.on_write(seq, head, body, part, &mut ctx),
                Command::Upgrade { seq, head, ws, .. } => conn.on_upgrade(seq, head, ws, &mut ctx),
                Command::Frame { head, payload, close, ack, .. } => conn.on_frame(head, payload, close, ack, &mut ctx),
                Command::Pong { payload, .. } => conn.queue_pong(&payload, &mut ctx),
                Command::PauseReading { paused, .. } => conn.set_app_paused(paused),
                Command::ResumeBody { .. } => conn.resume_body(),
                Command::Wake { .. } => ctx.dispatch.on_wake(&conn.handle),
                Command::Close { how, .. } => conn.on_close_cmd(how),
                Command::Stop { .. } | Command::EvictIdle => {}
            }
            if touched.last() != Some(&id) {
                touched.push(id);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for &id in &touched {
            // Flush, then decode whatever pipelined input was waiting for a free slot.
            self.with_conn(id, now, |c, ctx, scratch| c.drive(ctx, scratch));
        }
        // Kept for the next iteration: no allocation per loop pass.
        self.touched = touched;
        false
    }

    fn begin_stop(&mut self, deadline: Option<Instant>, now: Instant) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        self.stop_deadline = deadline;
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        for id in self.conns.ids() {
            self.with_conn(id, now, |c, ctx, _| c.begin_drain(ctx));
        }
    }

    fn sweep(&mut self, now: Instant) {
        for id in self.conns.ids() {
            let (answered, due) = match self.conns.get_mut(id) {
                Some(c) => {
                    // An answer a worker wrote itself: the connection goes on (idle timer,
                    // input that waited).
                    let answered = c.poll_direct();
                    c.update_timer(&self.cfg, now);
                    c.shrink_if_idle();
                    (answered, c.deadline().is_some_and(|d| d <= now))
                }
                None => (false, false),
            };
            if answered {
                self.with_conn(id, now, |c, ctx, scratch| c.drive(ctx, scratch));
            } else if due {
                self.with_conn(id, now, |c, ctx, _| c.on_timeout(ctx));
            }
        }
    }

    fn reap(&mut self, id: ConnId, reason: CloseReason) {
        if self.conns.get_mut(id).is_some_and(|c| c.lru.is_some()) {
            self.lru_unlink(id.index);
        }
        let Some(mut conn) = self.conns.remove(id) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut mio::unix::SourceFd(&conn.stream.raw_fd()));
        release(&mut conn, &self.stats);
        self.dispatch.on_close(&conn.handle, reason);
        self.ready.retain(|r| *r != id);
    }

    fn accept(&mut self, now: Instant) {
        loop {
            // At the limit (server-wide: every reactor counts in `stats.open`), a connection is
            // accepted only if an idle one of this reactor can make room for it.
            let full = self.stats.open() >= self.cfg.max_connections;
            if full && self.lru_head == NONE && !self.peers.idle_elsewhere(self.index) {
                self.accept_paused = true;
                // Room may be made by another reactor, which does not wake this one: look again.
                self.accept_retry = Some(now + Duration::from_millis(100));
                return;
            }
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer, local)) => {
                    // The newcomer's place is taken at once (server-wide, so that two loops
                    // admitting at the same instant cannot both take the last one); over the
                    // limit, the server's longest idle connection makes room: another loop's
                    // (which closes it when it hears), or this one's.
                    let over = self.stats.open.fetch_add(1, Ordering::AcqRel) >= self.cfg.max_connections;
                    if over && !self.peers.make_room_elsewhere(self.index) && !self.evict_one(now) {
                        self.stats.open.fetch_sub(1, Ordering::AcqRel);
                        // Every candidate had a request arriving after all: no room. As nginx
                        // does past worker_connections, the newcomer is closed.
                        log::warn!("httpkit reactor: max_connections reached and no idle connection to close");
                        drop(stream);
                        self.accept_paused = true;
                        self.accept_retry = Some(now + Duration::from_millis(100));
                        return;
                    }
                    let shared = Arc::new(ConnShared::new(peer, local, D::Attachment::default()));
                    let remote = self.remote.clone();
                    let cfg = &self.cfg;
                    let id = self.conns.insert_with(|id| {
                        let handle = ConnHandle { id, shared, remote };
                        Conn::new(stream, handle, cfg, now)
                    });
                    let Some(conn) = self.conns.get_mut(id) else {
                        self.stats.open.fetch_sub(1, Ordering::AcqRel);
                        continue;
                    };
                    if let Err(e) = self.poll.registry().register(
                        &mut mio::unix::SourceFd(&conn.stream.raw_fd()),
                        Token(id.to_token()),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        log::warn!("httpkit reactor: register failed: {e}");
                        self.conns.remove(id);
                        self.stats.open.fetch_sub(1, Ordering::AcqRel);
                        continue;
                    }
                    self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                    // Not a byte received yet: evictable until it sends one.
                    self.lru_push(id.index);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if is_transient_accept_error(&e) => continue,
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: back off, retry later (or when a
                    // connection closes); never spin, never exit.
                    self.dispatch.on_accept_error(&e);
                    self.accept_paused = true;
                    self.accept_retry = Some(now + Duration::from_millis(100));
                    return;
                }
            }
        }
    }
}

fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::PermissionDenied
    ) || e.raw_os_error() == Some(71) // EPROTO
}
