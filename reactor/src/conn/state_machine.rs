//! The connection state machine against random request sequences: pipelined requests with and
//! without bodies, a `Connection: close`, an upgrade, trailing junk; the input cut at random
//! points; the peer's FIN and the workers' answers (whole, in parts, or written directly by the
//! worker) at random times. Invariants: every answer that was due is written whole and in order
//! before any close the server chose; a close never leaves input unread (it would be a reset);
//! nothing is dispatched after a request that ends the connection; and the connection does
//! close once the peer is gone and everything is answered.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{Read, Write as _};

use proptest::prelude::*;

use super::tests::{ctx, Harness};
use super::*;
use crate::Part;

#[derive(Debug, Clone)]
enum Req {
    Get,
    GetClose,
    Post(usize),
    Chunked(usize),
    Upgrade,
}

fn req() -> impl Strategy<Value = Req> {
    prop_oneof![
        4 => Just(Req::Get),
        1 => Just(Req::GetClose),
        2 => (0usize..3000).prop_map(Req::Post),
        1 => (1usize..3000).prop_map(Req::Chunked),
        1 => Just(Req::Upgrade),
    ]
}

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

fn encode(i: usize, r: &Req) -> Vec<u8> {
    let mut out = match r {
        Req::Get => format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n"),
        Req::GetClose => format!("GET /{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        Req::Post(n) => format!("POST /{i} HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\n\r\n"),
        Req::Chunked(n) => format!("POST /{i} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{n:x}\r\n"),
        Req::Upgrade => format!("GET /{i} HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n"),
    }
    .into_bytes();
    match r {
        Req::Post(n) => out.extend(std::iter::repeat_n(b'b', *n)),
        Req::Chunked(n) => {
            out.extend(std::iter::repeat_n(b'c', *n));
            out.extend_from_slice(b"\r\n0\r\n\r\n");
        }
        _ => {}
    }
    out
}

/// How a request ends the connection, if it does.
fn ends(r: &Req) -> bool {
    matches!(r, Req::GetClose | Req::Upgrade)
}

struct Run {
    h: Harness,
    reqs: Vec<Req>,
    input: Vec<Vec<u8>>,
    fin: bool,
    /// Parts of each request's answer already given (0, 1 or 2 = done).
    given: BTreeMap<u64, u8>,
    received: Vec<u8>,
    closed: Option<CloseReason>,
}

impl Run {
    fn ready(&mut self) {
        let mut ctx = ctx!(self.h, self.h.t0);
        // What the loop does at every visit.
        self.h.conn.poll_direct();
        self.h.conn.on_ready(true, true, self.fin, false, &mut ctx, &mut self.h.scratch);
        self.after();
    }

    fn drive(&mut self) {
        let mut ctx = ctx!(self.h, self.h.t0);
        self.h.conn.poll_direct();
        self.h.conn.drive(&mut ctx, &mut self.h.scratch);
        self.after();
    }

    /// What the loop does after each visit: note a close, revisit a connection that wants it.
    fn after(&mut self) {
        for _ in 0..64 {
            if self.closed.is_none() {
                self.closed = self.h.conn.is_closing();
            }
            if self.closed.is_some() || !self.h.conn.wants_revisit(&self.h.cfg, &AtomicUsize::new(0)) {
                break;
            }
            let mut ctx = ctx!(self.h, self.h.t0);
            self.h.conn.poll_direct();
            self.h.conn.drive(&mut ctx, &mut self.h.scratch);
        }
        self.h.conn.update_timer(&self.h.cfg, self.h.t0);
        let mut buf = [0u8; 8192];
        loop {
            match self.h.peer.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
    }

    fn deliver(&mut self) -> bool {
        if self.input.is_empty() {
            return false;
        }
        // As much as the socket takes (a connection that stops reading holds the rest back).
        let n = match self.h.peer.write(&self.input[0]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) => panic!("peer write: {e}"),
        };
        if n == self.input[0].len() {
            self.input.remove(0);
        } else {
            self.input[0].drain(..n);
        }
        self.ready();
        n > 0
    }

    fn send_fin(&mut self) -> bool {
        if self.fin || !self.input.is_empty() {
            return false;
        }
        self.h.peer.shutdown(std::net::Shutdown::Write).unwrap();
        self.fin = true;
        self.ready();
        true
    }

    /// Gives the next part of the answer to the `pick`-th unanswered dispatched request.
    fn answer(&mut self, pick: usize, direct: bool) -> bool {
        let open: Vec<u64> =
            self.h.rec.requests.iter().map(|r| r.seq).filter(|s| self.given.get(s).copied().unwrap_or(0) < 2).collect();
        if open.is_empty() {
            return false;
        }
        let seq = open[pick % open.len()];
        let idx = self.h.rec.requests.iter().position(|r| r.seq == seq).unwrap();
        let r = self.reqs[idx].clone();
        let part = self.given.get(&seq).copied().unwrap_or(0);
        let close = matches!(r, Req::GetClose);
        let mut ctx = ctx!(self.h, self.h.t0);
        if matches!(r, Req::Upgrade) {
            let head = Bytes::from(format!("<101:{seq}>"));
            self.h.conn.handle.charge_out(head.len());
            self.h.conn.on_upgrade(
                seq,
                head,
                crate::WsUpgrade { max_message: 1 << 20, auto_pong: true, deflate: None },
                &mut ctx,
            );
            self.given.insert(seq, 2);
        } else if direct && part == 0 {
            let whole = format!("<{seq}:0><{seq}:1>");
            match self.h.conn.handle.try_write_direct(seq, whole.as_bytes(), b"") {
                Some(n) if n == whole.len() => {
                    self.h.conn.poll_direct();
                }
                sent => {
                    let rest = Bytes::copy_from_slice(&whole.as_bytes()[sent.unwrap_or(0)..]);
                    self.h.conn.handle.charge_out(rest.len());
                    self.h.conn.on_write(seq, Bytes::new(), rest, Part::last(close), &mut ctx);
                }
            }
            self.given.insert(seq, 2);
        } else {
            let b = Bytes::from(format!("<{seq}:{part}>"));
            self.h.conn.handle.charge_out(b.len());
            let end = part == 1;
            let which = if end { Part::last(close) } else { Part::More };
            self.h.conn.on_write(seq, b, Bytes::new(), which, &mut ctx);
            self.given.insert(seq, part + 1);
        }
        self.drive();
        true
    }

    /// The answers that were due, in request order, up to one that ends the connection.
    fn expected(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, r) in self.h.rec.requests.iter().enumerate() {
            let s = r.seq;
            match self.given.get(&s).copied().unwrap_or(0) {
                2 if matches!(self.reqs[i], Req::Upgrade) => out.extend(format!("<101:{s}>").bytes()),
                2 => out.extend(format!("<{s}:0><{s}:1>").bytes()),
                _ => break,
            }
            if ends(&self.reqs[i]) {
                break;
            }
        }
        out
    }

    fn check_close(&mut self) {
        let Some(reason) = self.closed.clone() else { return };
        assert_ne!(reason, CloseReason::Error, "no I/O error in this harness");
        // Nothing may be left unread: the peer's FIN must have been read.
        let mut b = [0u8; 16];
        match (&*self.h.conn.stream).read(&mut b) {
            Ok(0) => {}
            other => panic!("closed ({reason:?}) with input unread or before the peer's FIN: {other:?}"),
        }
        let expected = self.expected();
        let got = &self.received;
        assert!(
            got.starts_with(&expected),
            "answers due were not all written before the close ({reason:?}):\n got {:?}\nwant {:?}",
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(&expected)
        );
        let rest = &got[expected.len()..];
        // What the loop does when it reaps: every byte ever counted was written or is dropped.
        self.h.conn.discard_output();
        assert_eq!(self.h.conn.handle.queued_bytes(), 0, "the queued-byte count drifted");
        assert!(
            rest.is_empty() || rest.starts_with(b"HTTP/1.1 400"),
            "unexpected bytes after the answers: {:?}",
            String::from_utf8_lossy(rest)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    #[test]
    fn answers_due_are_written_before_any_close_and_no_close_is_a_reset(
        reqs in proptest::collection::vec(req(), 1..6),
        junk in proptest::option::of(1usize..200_000),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        actions in proptest::collection::vec((0u8..3, any::<usize>(), any::<bool>()), 0..40),
    ) {
        // Nothing is generated after an upgrade (what follows would be WebSocket frames).
        let mut reqs = reqs;
        if let Some(u) = reqs.iter().position(|r| matches!(r, Req::Upgrade)) {
            reqs.truncate(u + 1);
        }
        let mut bytes: Vec<u8> = reqs.iter().enumerate().flat_map(|(i, r)| encode(i, r)).collect();
        let upgrade = reqs.iter().any(|r| matches!(r, Req::Upgrade));
        if let (Some(n), false) = (junk, upgrade) {
            bytes.extend_from_slice(b"J\x01");
            bytes.extend(std::iter::repeat_n(b'j', n));
        }
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len())).collect();
        at.push(0);
        at.push(bytes.len());
        at.sort_unstable();
        at.dedup();
        let input: Vec<Vec<u8>> = at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect();

        let h = Harness::new(tests::cfg());
        h.peer.set_nonblocking(true).unwrap();
        let mut run = Run { h, reqs: reqs.clone(), input, fin: false, given: BTreeMap::new(), received: Vec::new(), closed: None };
        for (kind, pick, direct) in actions {
            if run.closed.is_some() {
                break;
            }
            let _ = match kind {
                0 => run.deliver() || run.send_fin(),
                1 => run.answer(pick, direct),
                _ => run.send_fin() || run.deliver(),
            };
            run.check_close();
        }
        // The rest: all input, the FIN, every answer.
        for _ in 0..200 {
            if run.closed.is_some() {
                break;
            }
            if !(run.deliver() || run.send_fin() || run.answer(0, false)) {
                break;
            }
            run.check_close();
        }
        run.check_close();
        // Requests that end the connection are the last ones dispatched.
        if let Some(end) = reqs.iter().position(ends) {
            prop_assert!(run.h.rec.requests.len() <= end + 1, "dispatched past a request that ends the connection");
        }
        prop_assert!(run.closed.is_some(), "the peer is gone and everything is answered, yet the connection stays open");
    }
}
