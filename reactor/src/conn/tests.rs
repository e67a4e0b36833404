//! `Conn` driven directly, with a fake clock, over a Unix socket pair: timers fire at exactly
//! their deadline and pausing rules hold, without sleeps or a running event loop.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::*;

/// The context the loop gives a connection, from a harness (`$h`) at time `$now`.
macro_rules! ctx {
    ($h:expr, $now:expr) => {
        Ctx { cfg: &$h.cfg, dispatch: &mut $h.rec, now: $now, date: b"D", stats: &crate::Stats::default() }
    };
}
use crate::command::{Remote, RemoteInner};
use crate::handle::ConnShared;
use crate::slab::ConnId;
use crate::Part;
pub(super) use ctx;

#[derive(Default)]
pub(super) struct Recorder {
    pub(super) requests: Vec<InboundRequest>,
    eofs: usize,
}

impl Dispatch for Recorder {
    type Attachment = ();

    fn on_request(&mut self, _conn: &ConnHandle<()>, req: InboundRequest) {
        self.requests.push(req);
    }
    fn on_peer_eof(&mut self, _conn: &ConnHandle<()>) {
        self.eofs += 1;
    }
}

pub(super) struct Harness {
    pub(super) conn: Conn<()>,
    pub(super) peer: std::os::unix::net::UnixStream,
    pub(super) cfg: ReactorConfig,
    pub(super) rec: Recorder,
    pub(super) t0: Instant,
    pub(super) scratch: Vec<u8>,
    _poll: mio::Poll,
}

impl Harness {
    pub(super) fn new(cfg: ReactorConfig) -> Self {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let poll = mio::Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), mio::Token(usize::MAX)).unwrap();
        let (tx, _rx) = crossbeam_channel::unbounded();
        let remote = Remote {
            inner: Arc::new(RemoteInner { stats: Arc::default(), tx, waker, sleeping: AtomicBool::new(false) }),
        };
        let shared = Arc::new(ConnShared::new(None, None, ()));
        let handle = ConnHandle { id: ConnId { index: 0, gen: 1 }, shared, remote };
        let t0 = Instant::now();
        let conn = Conn::new(Stream::Unix(mio::net::UnixStream::from_std(a)), handle, &cfg, t0);
        Self { conn, peer: b, cfg, rec: Recorder::default(), t0, scratch: vec![0; 64 * 1024], _poll: poll }
    }

    fn ready(&mut self, at: Duration) {
        let mut ctx = ctx!(self, self.t0 + at);
        // What the loop does at every visit.
        self.conn.poll_direct();
        self.conn.on_ready(true, true, false, false, &mut ctx, &mut self.scratch);
        self.conn.update_timer(&self.cfg, self.t0 + at);
    }

    /// What `ConnHandle::write` + a loop iteration do: count the bytes, queue, flush.
    fn respond(&mut self, seq: u64, data: &'static [u8], end: bool) {
        self.conn.handle.charge_out(data.len());
        let mut ctx = ctx!(self, self.t0);
        self.conn.on_write(
            seq,
            Bytes::from_static(data),
            Bytes::new(),
            if end { Part::Last } else { Part::More },
            &mut ctx,
        );
        self.conn.poll_direct();
        self.conn.drive(&mut ctx, &mut self.scratch);
    }

    /// An upgrade request, answered with a `101`: the connection speaks WebSocket.
    fn upgrade_to_websocket(&mut self) {
        self.peer.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n").unwrap();
        self.ready(Duration::ZERO);
        let seq = self.rec.requests[0].seq;
        let head = Bytes::from_static(b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
        self.conn.handle.charge_out(head.len());
        let mut ctx = ctx!(self, self.t0);
        let ws = crate::WsUpgrade { max_message: 1 << 20, auto_pong: true, deflate: None };
        self.conn.on_upgrade(seq, head, ws, &mut ctx);
        assert!(self.read_peer().starts_with("HTTP/1.1 101"));
    }

    fn timeout_if_due(&mut self, at: Duration) -> bool {
        let now = self.t0 + at;
        if self.conn.deadline().is_some_and(|d| d <= now) {
            let mut ctx =
                Ctx { cfg: &self.cfg, dispatch: &mut self.rec, now, date: b"D", stats: &crate::Stats::default() };
            self.conn.on_timeout(&mut ctx);
            return true;
        }
        false
    }

    fn read_peer(&mut self) -> String {
        use std::io::Read;
        self.peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = vec![0u8; 4096];
        let n = self.peer.read(&mut b).unwrap();
        String::from_utf8_lossy(&b[..n]).into_owned()
    }
}

pub(super) fn cfg() -> ReactorConfig {
    ReactorConfig { header_read_timeout: Duration::from_secs(10), ..ReactorConfig::default() }
}

#[test]
fn slowloris_hits_the_header_deadline_exactly() {
    let mut h = Harness::new(cfg());
    // One byte per second: each arrival is progress, but the head never completes.
    for (i, b) in b"GET / HTTP/1.1\r\nHost: x\r\n".iter().enumerate().take(10) {
        h.peer.write_all(&[*b]).unwrap();
        h.ready(Duration::from_secs(i as u64));
        assert!(!h.timeout_if_due(Duration::from_secs(i as u64)), "no timeout at {i}s");
    }
    assert!(!h.timeout_if_due(Duration::from_millis(9_999)));
    assert!(h.timeout_if_due(Duration::from_secs(10)), "deadline counted from the first byte");
    assert!(h.read_peer().starts_with("HTTP/1.1 408 Request Timeout"));
    assert!(h.rec.requests.is_empty());
}

#[test]
fn a_body_below_the_minimum_rate_gets_a_408_at_the_end_of_its_window() {
    // 30 s windows, at least 256 B/s: a byte every second is progress, but too slow.
    let mut h = Harness::new(cfg());
    h.peer.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n").unwrap();
    h.ready(Duration::ZERO);
    for i in 1..30 {
        h.peer.write_all(b"b").unwrap();
        h.ready(Duration::from_secs(i));
        assert!(!h.timeout_if_due(Duration::from_secs(i)), "no timeout at {i}s");
    }
    assert!(h.timeout_if_due(Duration::from_secs(30)));
    assert!(h.read_peer().starts_with("HTTP/1.1 408"));
    assert!(h.rec.requests.is_empty());

    // At 1 KiB/s the body goes on from window to window.
    let mut h = Harness::new(cfg());
    h.peer.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n").unwrap();
    h.ready(Duration::ZERO);
    for i in 1..=90 {
        h.peer.write_all(&[b'b'; 1024]).unwrap();
        h.ready(Duration::from_secs(i));
        assert!(!h.timeout_if_due(Duration::from_secs(i)) || h.conn.is_closing().is_none(), "{i}s");
    }
    assert_eq!(h.conn.is_closing(), None);
    h.peer.write_all(&[b'b'; 100_000 - 90 * 1024]).unwrap();
    h.ready(Duration::from_secs(91));
    assert_eq!(h.rec.requests.len(), 1);
}

#[test]
fn a_reader_below_the_minimum_rate_is_disconnected_at_the_end_of_its_window() {
    let mut h = Harness::new(ReactorConfig { min_send_rate: 1000, ..cfg() });
    h.peer.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    h.ready(Duration::ZERO);
    let seq = h.rec.requests[0].seq;
    let big = Bytes::from(vec![b'x'; 8 << 20]);
    h.conn.handle.charge_out(big.len());
    let mut ctx = ctx!(h, h.t0);
    h.conn.on_write(seq, Bytes::new(), big, Part::Last, &mut ctx);
    h.conn.flush(&mut ctx);
    h.conn.update_timer(&h.cfg, h.t0);
    // The peer reads 4 KiB a second for a window (above 1000 B/s), then 100 B/s (progress,
    // but below the minimum rate).
    let mut b = vec![0u8; 4096];
    for i in 1..=60u64 {
        h.peer.read_exact(&mut b).unwrap();
        let mut ctx = ctx!(h, h.t0 + Duration::from_secs(i));
        h.conn.on_ready(false, true, false, false, &mut ctx, &mut h.scratch);
    }
    assert!(h.timeout_if_due(Duration::from_secs(60)));
    assert_eq!(h.conn.is_closing(), None, "the first window was fast enough");
    for i in 61..=120u64 {
        h.peer.read_exact(&mut b[..100]).unwrap();
        let mut ctx = ctx!(h, h.t0 + Duration::from_secs(i));
        h.conn.on_ready(false, true, false, false, &mut ctx, &mut h.scratch);
    }
    assert!(h.timeout_if_due(Duration::from_secs(120)));
    assert_eq!(h.conn.is_closing(), Some(CloseReason::Timeout), "100 B/s is below 1000 B/s");
}

#[test]
fn idle_keep_alive_times_out_quietly() {
    let mut h = Harness::new(cfg());
    h.peer.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    h.ready(Duration::ZERO);
    assert_eq!(h.rec.requests.len(), 1);
    let seq = h.rec.requests[0].seq;
    h.respond(
        seq,
        b"HTTP/1.1 200 OK
content-length: 0

",
        true,
    );
    h.conn.update_timer(&h.cfg, h.t0);
    assert!(h.read_peer().starts_with("HTTP/1.1 200 OK"));
    let idle = h.cfg.idle_timeout;
    assert!(!h.timeout_if_due(idle - Duration::from_millis(1)));
    assert!(h.timeout_if_due(idle));
    assert_eq!(h.conn.is_closing(), Some(CloseReason::Timeout));
}

#[test]
fn pipelining_stops_at_the_configured_depth() {
    let mut h = Harness::new(ReactorConfig { max_pipelined: 3, ..cfg() });
    let mut burst = Vec::new();
    for i in 0..10 {
        burst.extend_from_slice(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    h.peer.write_all(&burst).unwrap();
    h.ready(Duration::ZERO);
    assert_eq!(h.rec.requests.len(), 3, "three in flight at most");
    assert!(!h.conn.wants_revisit(&h.cfg, &AtomicUsize::new(0)), "a paused connection is not spun on");
    // Answering the first frees a slot: the next buffered request is decoded.
    let seq = h.rec.requests[0].seq;
    h.respond(seq, b"HTTP/1.1 204 No Content\r\n\r\n", true);
    assert_eq!(h.rec.requests.len(), 4);
    assert_eq!(h.rec.requests[3].head.path(), "/3");
}

#[test]
fn a_lent_write_side_answers_directly_and_the_connection_goes_on() {
    let mut h = Harness::new(cfg());
    h.peer.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    h.ready(Duration::ZERO);
    let seq = h.rec.requests[0].seq;
    assert_eq!(h.conn.handle.try_write_direct(seq + 1, b"x", b""), None, "only for its request");
    assert_eq!(h.conn.handle.try_write_direct(seq, b"HTTP/1.1 200 OK\r\n", b"\r\n"), Some(19));
    assert_eq!(h.read_peer(), "HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(h.conn.handle.try_write_direct(seq, b"again", b""), None, "lent once");
    // Until the reactor looks, the request counts as waiting; then the idle timer runs.
    h.conn.update_timer(&h.cfg, h.t0);
    assert_eq!(h.conn.deadline(), None);
    assert!(h.conn.poll_direct());
    h.conn.update_timer(&h.cfg, h.t0);
    assert_eq!(h.conn.deadline(), Some(h.t0 + h.cfg.idle_timeout));
    // The next request is lent again.
    h.peer.write_all(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    h.ready(Duration::ZERO);
    assert_eq!(h.conn.handle.try_write_direct(h.rec.requests[1].seq, b"ok", b""), Some(2));
}

#[test]
fn a_pipelined_request_takes_the_write_side_back() {
    let mut h = Harness::new(cfg());
    h.peer.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    h.ready(Duration::ZERO);
    h.peer.write_all(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    h.ready(Duration::ZERO);
    let (a, b) = (h.rec.requests[0].seq, h.rec.requests[1].seq);
    // Both answers now go through the reactor, in order.
    assert_eq!(h.conn.handle.try_write_direct(a, b"first", b""), None);
    assert_eq!(h.conn.handle.try_write_direct(b, b"second", b""), None);
    h.respond(b, b"second", true);
    h.respond(a, b"first", true);
    let mut got = String::new();
    while got.len() < 11 {
        got.push_str(&h.read_peer());
    }
    assert_eq!(got, "firstsecond");
}

#[test]
fn a_peer_that_closes_behind_a_held_request_is_noticed() {
    let mut h = Harness::new(cfg());
    h.peer
        .write_all(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\nPOST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    h.peer.shutdown(std::net::Shutdown::Write).unwrap();
    let mut ctx = ctx!(h, h.t0);
    h.conn.on_ready(true, true, true, false, &mut ctx, &mut h.scratch);
    assert_eq!(h.rec.requests.len(), 1, "the POST waits behind the GET");
    assert_eq!(h.rec.eofs, 1, "the application hears the peer left");
    assert!(h.conn.handle.peer_closed());
    // The held POST is still answered once the GET is; the EOF read then is not told twice.
    let seq = h.rec.requests[0].seq;
    h.respond(seq, b"HTTP/1.1 204 No Content\r\n\r\n", true);
    assert_eq!(h.rec.requests.len(), 2);
    assert_eq!(h.rec.eofs, 1);

    // The same behind a full pipeline.
    let mut h = Harness::new(ReactorConfig { max_pipelined: 1, ..cfg() });
    h.peer.write_all(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    h.peer.shutdown(std::net::Shutdown::Write).unwrap();
    let mut ctx = ctx!(h, h.t0);
    h.conn.on_ready(true, true, true, false, &mut ctx, &mut h.scratch);
    assert_eq!((h.rec.requests.len(), h.rec.eofs), (1, 1));
}

#[test]
fn nothing_is_lent_when_decoding_would_wait_for_the_answer() {
    let mut h = Harness::new(ReactorConfig { max_pipelined: 1, ..cfg() });
    h.peer.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    h.ready(Duration::ZERO);
    assert_eq!(h.conn.handle.try_write_direct(h.rec.requests[0].seq, b"x", b""), None);
    let mut h = Harness::new(cfg());
    h.peer.write_all(b"GET /a HTTP/1.0\r\n\r\n").unwrap();
    h.ready(Duration::ZERO);
    assert_eq!(h.conn.handle.try_write_direct(h.rec.requests[0].seq, b"x", b""), None, "closes after");
}

#[test]
fn responses_leave_in_request_order() {
    let mut h = Harness::new(cfg());
    h.peer.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    h.ready(Duration::ZERO);
    let (a, b) = (h.rec.requests[0].seq, h.rec.requests[1].seq);
    h.conn.handle.charge_out(12);
    let mut ctx = ctx!(h, h.t0);
    // The second finishes first; it must wait behind the first.
    h.conn.on_write(b, Bytes::from_static(b"second"), Bytes::new(), Part::Last, &mut ctx);
    h.conn.flush(&mut ctx);
    h.conn.on_write(a, Bytes::from_static(b"first|"), Bytes::new(), Part::Last, &mut ctx);
    h.conn.flush(&mut ctx);
    assert_eq!(h.read_peer(), "first|second");
}

#[test]
fn a_peer_that_does_not_read_pauses_reading_at_the_high_water_mark() {
    let mut h = Harness::new(ReactorConfig { write_high_water: 64 * 1024, ..cfg() });
    h.peer.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    h.ready(Duration::ZERO);
    let seq = h.rec.requests[0].seq;
    let big = Bytes::from(vec![b'x'; 4 << 20]);
    h.conn.handle.charge_out(big.len());
    let mut ctx = ctx!(h, h.t0);
    h.conn.on_write(seq, Bytes::new(), big, Part::More, &mut ctx);
    h.conn.flush(&mut ctx);
    // The socket buffer is full; the next request is not read while output waits.
    h.peer.write_all(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    h.ready(Duration::from_millis(1));
    assert_eq!(h.rec.requests.len(), 1, "reading paused above the high-water mark");
    assert!(!h.conn.wants_revisit(&h.cfg, &AtomicUsize::new(0)));
    // A stalled write hits the write timeout.
    let wt = h.cfg.write_timeout;
    assert!(h.timeout_if_due(wt + Duration::from_millis(1)));
    assert_eq!(h.conn.is_closing(), Some(CloseReason::Timeout));
}

#[test]
fn a_peer_that_leaves_takes_the_lent_write_side_back() {
    // The answer would otherwise be written by the worker with nothing to wake the loop: the
    // close that follows it would wait for the sweep.
    let mut h = Harness::new(cfg());
    h.peer.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    h.peer.shutdown(std::net::Shutdown::Write).unwrap();
    let mut ctx = ctx!(h, h.t0);
    h.conn.on_ready(true, true, true, false, &mut ctx, &mut h.scratch);
    let seq = h.rec.requests[0].seq;
    assert_eq!(h.conn.handle.try_write_direct(seq, b"x", b""), None, "no longer lent once the peer left");
    // The answer through the loop, then the close.
    h.respond(seq, b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", true);
    assert!(h.read_peer().starts_with("HTTP/1.1 200 OK"));
    assert!(h.conn.is_closing().is_some());
}

/// The per-connection state, a deterministic guard of idle memory: what one connection costs the
/// reactor (the slab boxes a `Conn`; `ConnShared` is the part other threads see).
#[test]
fn the_per_connection_state_does_not_grow() {
    let conn = std::mem::size_of::<Conn<()>>();
    let shared = std::mem::size_of::<ConnShared<()>>();
    eprintln!("Conn {conn} B, ConnShared {shared} B");
    assert!(conn <= CONN_SIZE, "Conn grew to {conn} bytes (was {CONN_SIZE})");
    assert!(shared <= SHARED_SIZE, "ConnShared grew to {shared} bytes (was {SHARED_SIZE})");
}

/// Sizes measured on 2026-11-30 (x86_64).
const CONN_SIZE: usize = 392;
const SHARED_SIZE: usize = 168;

/// Heartbeats on a virtual clock: a ping after `interval` of silence, the peer's answer starts
/// the next interval, output to a silent peer does not push the answer's deadline back, and a
/// peer that stays silent is closed exactly when its answer was due.
#[test]
fn heartbeats_ping_a_silent_websocket_then_close_it() {
    use std::io::Read;
    let s = Duration::from_secs;
    let mut h = Harness::new(ReactorConfig { ws_ping_interval: Some(s(10)), ws_pong_timeout: s(5), ..cfg() });
    h.peer.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n").unwrap();
    h.ready(s(0));
    let seq = h.rec.requests[0].seq;
    let head = Bytes::from_static(b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
    h.conn.handle.charge_out(head.len());
    let mut ctx = ctx!(h, h.t0);
    h.conn.on_upgrade(seq, head, crate::WsUpgrade { max_message: 1 << 20, auto_pong: true, deflate: None }, &mut ctx);
    h.conn.update_timer(&h.cfg, h.t0);
    assert!(h.read_peer().starts_with("HTTP/1.1 101"));
    assert_eq!(h.conn.deadline(), Some(h.t0 + s(10)), "the first ping is due after the interval");

    let mut frame = [0u8; 2];
    let mut read_frame = |h: &mut Harness| {
        h.peer.set_read_timeout(Some(s(5))).unwrap();
        h.peer.read_exact(&mut frame).unwrap();
        frame
    };
    assert!(h.timeout_if_due(s(10)));
    h.conn.update_timer(&h.cfg, h.t0 + s(10));
    assert_eq!(read_frame(&mut h), [0x89, 0x00], "an empty ping");
    assert_eq!(h.conn.deadline(), Some(h.t0 + s(15)), "the answer is due 5 s later");

    // The pong (masked, empty) arrives at 12 s: the next ping is due at 22 s.
    h.peer.write_all(&[0x8A, 0x80, 1, 2, 3, 4]).unwrap();
    h.ready(s(12));
    assert_eq!(h.conn.deadline(), Some(h.t0 + s(22)));
    assert!(h.conn.is_closing().is_none());
    // Output at 15 s (the connection's timer switches to Write and back) does not push the
    // ping back either.
    let msg = Bytes::from_static(&[0x81, 0x01, b'y']);
    h.conn.handle.charge_out(msg.len());
    let mut ctx = ctx!(h, h.t0 + s(15));
    h.conn.on_frame(msg, Bytes::new(), None, None, &mut ctx);
    h.conn.update_timer(&h.cfg, h.t0 + s(15));
    h.conn.flush(&mut ctx);
    h.conn.update_timer(&h.cfg, h.t0 + s(16));
    assert_eq!(read_frame(&mut h), [0x81, 0x01]);
    assert_eq!(h.conn.deadline(), Some(h.t0 + s(22)));
    h.peer.read_exact(&mut [0u8; 1]).unwrap();

    assert!(h.timeout_if_due(s(22)));
    h.conn.update_timer(&h.cfg, h.t0 + s(22));
    assert_eq!(read_frame(&mut h), [0x89, 0x00]);
    // Output to the silent peer at 25 s: the answer is still due at 27 s.
    let msg = Bytes::from_static(&[0x81, 0x01, b'x']);
    h.conn.handle.charge_out(msg.len());
    let mut ctx = ctx!(h, h.t0 + s(25));
    h.conn.on_frame(msg, Bytes::new(), None, None, &mut ctx);
    h.conn.flush(&mut ctx);
    h.conn.update_timer(&h.cfg, h.t0 + s(25));
    assert_eq!(h.conn.deadline(), Some(h.t0 + s(27)));
    assert!(!h.timeout_if_due(s(26)));
    assert!(h.timeout_if_due(s(27)));
    assert!(matches!(h.conn.is_closing(), Some(CloseReason::Timeout)), "{:?}", h.conn.is_closing());
}

/// A WebSocket with nothing queued lends its write side: a data frame is written by the sending
/// thread at once (the loop does not run); a close frame ends the loan, and the frames after it
/// wait for the reactor, in order.
#[test]
fn a_websocket_frame_is_written_by_its_sender_while_nothing_is_queued() {
    use std::io::Read;
    let mut h = Harness::new(cfg());
    h.upgrade_to_websocket();

    let frame = |b: &'static [u8]| Bytes::from_static(b);
    assert!(h.conn.handle.send_frame(frame(&[0x81, 0x02]), frame(b"hi"), None));
    let mut got = [0u8; 4];
    h.peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    h.peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, &[0x81, 0x02, b'h', b'i'], "written by the sender, the loop idle");
    assert_eq!(h.conn.handle.queued_bytes(), 0);

    // A close goes through the reactor and ends the loan: the next frame is queued behind it.
    let close = WsClose { code: 1000, reason: String::new(), by_peer: false };
    assert!(h.conn.handle.send_frame(frame(&[0x88, 0x02, 0x03, 0xe8]), Bytes::new(), Some(close)));
    assert_eq!(h.conn.handle.queued_bytes(), 4);
    assert!(h.conn.handle.send_frame(frame(&[0x81, 0x01]), frame(b"x"), None));
    assert_eq!(h.conn.handle.queued_bytes(), 7, "queued, not written past the close");
    h.peer.set_nonblocking(true).unwrap();
    assert!(h.peer.read(&mut got).is_err(), "nothing written by the sender after the close");
}

/// A sender's frame that the socket took only part of keeps its place: the pong the reactor
/// queues next (the peer pinged meanwhile) goes out after the frame's rest, never inside it.
#[test]
fn a_partly_written_frame_goes_out_whole_before_the_reactors_pong() {
    use std::io::Read;
    let mut h = Harness::new(cfg());
    h.upgrade_to_websocket();

    // The peer does not read: frames go out directly until the socket takes only part of one.
    const LEN: usize = 60 * 1024;
    let mut sent = 0u8;
    while h.conn.handle.queued_bytes() == 0 {
        assert!(sent < 100, "the socket never filled");
        let head = Bytes::from(vec![0x82, 126, (LEN >> 8) as u8, LEN as u8]);
        assert!(h.conn.handle.send_frame(head, Bytes::from(vec![sent; LEN]), None));
        sent += 1;
    }
    // Now the peer pings (masked, empty): the reactor queues its pong.
    h.peer.write_all(&[0x89, 0x80, 1, 2, 3, 4]).unwrap();
    h.ready(Duration::ZERO);

    // Read everything: `sent` whole frames, then the pong.
    h.peer.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let want = sent as usize * (LEN + 4) + 2;
    for _ in 0..10_000 {
        match h.peer.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            r => got.extend_from_slice(&buf[..r.unwrap()]),
        }
        if got.len() >= want {
            break;
        }
        h.ready(Duration::ZERO);
    }
    assert_eq!(got.len(), want, "every byte, nothing more");
    for i in 0..sent as usize {
        let f = &got[i * (LEN + 4)..(i + 1) * (LEN + 4)];
        assert_eq!(&f[..4], &[0x82, 126, (LEN >> 8) as u8, LEN as u8], "frame {i}'s head in place");
        assert!(f[4..].iter().all(|&b| b == i as u8), "frame {i} whole, nothing inside it");
    }
    assert_eq!(&got[want - 2..], &[0x8A, 0x00], "the pong after the frames");
}
