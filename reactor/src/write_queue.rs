//! A per-connection queue of outgoing byte segments, written with vectored writes.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use bytes::{Buf, Bytes};

/// Segments waiting to be written; `len` counts their bytes.
#[derive(Debug, Default)]
pub(crate) struct WriteQueue {
    segs: VecDeque<Bytes>,
    len: usize,
    /// Bytes ever queued / ever written, to tell when a marked segment has left.
    pushed: u64,
    written: u64,
    /// (position in `pushed` terms, token): reported once `written` reaches the position.
    acks: VecDeque<(u64, u64)>,
}

impl WriteQueue {
    /// Marks the end of what is queued so far: `token` is returned by [`WriteQueue::take_acked`]
    /// once every byte up to here is written.
    pub(crate) fn mark(&mut self, token: u64) {
        self.acks.push_back((self.pushed, token));
    }

    /// Tokens whose bytes are all written.
    pub(crate) fn take_acked(&mut self, out: &mut Vec<u64>) {
        while let Some(&(pos, token)) = self.acks.front() {
            if pos > self.written {
                break;
            }
            self.acks.pop_front();
            out.push(token);
        }
    }

    /// Whether marks wait to be reported.
    pub(crate) fn has_marks(&self) -> bool {
        !self.acks.is_empty()
    }

    pub(crate) fn push(&mut self, b: Bytes) {
        self.pushed += b.len() as u64;
        if !b.is_empty() {
            self.len += b.len();
            self.segs.push_back(b);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes as much as the socket takes. Returns the bytes written; `Ok` with the queue not
    /// empty means the socket would block.
    pub(crate) fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<usize> {
        let mut total = 0;
        while !self.segs.is_empty() {
            let mut slices = [IoSlice::new(&[]); 32];
            let n = self.segs.iter().take(32).zip(slices.iter_mut()).map(|(s, d)| *d = IoSlice::new(s)).count();
            let written = match w.write_vectored(&slices[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += written;
            self.consume(written);
        }
        // Give the memory of a burst back once drained.
        if self.segs.capacity() > 64 {
            self.segs = VecDeque::new();
        }
        Ok(total)
    }

    fn consume(&mut self, mut n: usize) {
        self.len -= n;
        self.written += n as u64;
        while n > 0 {
            let Some(front) = self.segs.front_mut() else {
                return;
            };
            if front.len() <= n {
                n -= front.len();
                self.segs.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }

    /// Frees the queue's memory when it is empty.
    pub(crate) fn release(&mut self) {
        if self.len == 0 && self.acks.is_empty() {
            self.segs = VecDeque::new();
            self.acks = VecDeque::new();
        }
    }

    /// Drops everything queued; returns how many bytes were dropped.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.len;
        self.segs.clear();
        self.acks.clear();
        self.len = 0;
        n
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A writer that takes at most `cap` bytes per call, then would block after `calls` calls.
    struct Trickle {
        out: Vec<u8>,
        cap: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.calls == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls -= 1;
            let n = buf.len().min(self.cap);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let mut q = WriteQueue::default();
        q.push(Bytes::from_static(b"hello "));
        q.push(Bytes::from_static(b""));
        q.push(Bytes::from_static(b"world"));
        let mut w = Trickle { out: Vec::new(), cap: 4, calls: 2 };
        // "hell", then "o " (the default write_vectored writes the first non-empty slice)
        assert_eq!(q.write_to(&mut w).unwrap(), 6);
        assert_eq!(q.len(), 5);
        w.calls = 10;
        assert_eq!(q.write_to(&mut w).unwrap(), 5);
        assert!(q.is_empty());
        assert_eq!(w.out, b"hello world");
    }
}
