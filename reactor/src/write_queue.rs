//! A per-connection queue of outgoing byte segments, written with vectored writes, and the one
//! keeper of the connection's count of queued bytes on the reactor's side: the threads that send
//! count what they send (`ConnHandle::write` and friends); every change after that — bytes the
//! reactor queues itself, bytes written, bytes dropped — happens here. `count` is that shared
//! counter (what `ConnHandle::queued_bytes` reads).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

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

    /// The stream position the next pushed byte will have.
    pub(crate) fn end_position(&self) -> u64 {
        self.pushed
    }

    /// Replaces the segment pushed at stream position `at` with `new`, if none of its bytes has
    /// been written yet (a newer pong replaces an unsent one). Returns the replaced segment's
    /// length; `None` when it has started to leave (or is gone).
    pub(crate) fn replace_unsent(&mut self, at: u64, new: Bytes, count: &AtomicUsize) -> Option<usize> {
        // The front segment's remaining bytes start at `written`: a segment that started at
        // `at >= written` has not been touched.
        let mut pos = self.written;
        for seg in self.segs.iter_mut() {
            if pos > at {
                return None;
            }
            if pos == at {
                let old = seg.len();
                let new_len = new.len();
                if new_len >= old {
                    count.fetch_add(new_len - old, Ordering::AcqRel);
                } else {
                    count.fetch_sub(old - new_len, Ordering::SeqCst);
                }
                *seg = new;
                self.len = self.len - old + new_len;
                self.pushed = self.pushed - old as u64 + new_len as u64;
                for (p, _) in self.acks.iter_mut() {
                    if *p > at {
                        *p = *p - old as u64 + new_len as u64;
                    }
                }
                return Some(old);
            }
            pos += seg.len() as u64;
        }
        None
    }

    /// Queues bytes of the reactor's own (an error answer, a pong, a close frame): counted here.
    pub(crate) fn push_own(&mut self, b: Bytes, count: &AtomicUsize) {
        count.fetch_add(b.len(), Ordering::AcqRel);
        self.push(b);
    }

    /// Counts `n` bytes of the reactor's own that will come here once their turn comes (an
    /// answer waiting behind earlier ones in the pipeline).
    pub(crate) fn expect(&self, n: usize, count: &AtomicUsize) {
        count.fetch_add(n, Ordering::AcqRel);
    }

    /// Bytes that were counted for this queue but will never reach it (an answer to a request
    /// that no longer waits, frames after a close, answers dropped behind one that closes).
    pub(crate) fn forget(&self, n: usize, count: &AtomicUsize) {
        if n > 0 {
            count.fetch_sub(n, Ordering::SeqCst);
        }
    }

    /// Queues bytes their sender already counted.
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

    /// Writes as much as the socket takes and uncounts it. Returns the bytes written and the
    /// bytes still counted (queued here, in the pipeline, or on their way); `Ok` with the queue
    /// not empty means the socket would block.
    pub(crate) fn write_to<W: Write>(&mut self, w: &mut W, count: &AtomicUsize) -> io::Result<(usize, usize)> {
        let written = self.write_some(w);
        let n = *written.as_ref().unwrap_or(&0);
        // SeqCst, with `drained_wanted`: see `ConnHandle::notify_when_drained`.
        let left =
            if n > 0 { count.fetch_sub(n, Ordering::SeqCst).saturating_sub(n) } else { count.load(Ordering::SeqCst) };
        written.map(|n| (n, left))
    }

    fn write_some<W: Write>(&mut self, w: &mut W) -> io::Result<usize> {
        let mut total = 0;
        while !self.segs.is_empty() {
            let mut slices = [IoSlice::new(&[]); 32];
            let n = self.segs.iter().take(32).zip(slices.iter_mut()).map(|(s, d)| *d = IoSlice::new(s)).count();
            // (One piece: `write`, the kernel's cheaper single-buffer path.)
            let res = if n == 1 { w.write(&slices[0]) } else { w.write_vectored(&slices[..n]) };
            let written = match res {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // What went out before the error is reported (and uncounted); the error comes
                // back at the next write.
                Err(_) if total > 0 => return Ok(total),
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

    /// Drops everything queued (the connection is going away) and uncounts it.
    pub(crate) fn clear(&mut self, count: &AtomicUsize) {
        let n = self.len;
        self.segs.clear();
        self.acks.clear();
        self.len = 0;
        self.forget(n, count);
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
    fn an_unsent_segment_is_replaced_and_a_started_one_is_not() {
        let mut q = WriteQueue::default();
        q.push(Bytes::from_static(b"data"));
        let at = q.end_position();
        q.push(Bytes::from_static(b"pong1"));
        q.mark(7);
        q.push(Bytes::from_static(b"tail"));
        let count = AtomicUsize::new(4 + 5 + 4);
        assert_eq!(q.replace_unsent(at, Bytes::from_static(b"pong-22"), &count), Some(5));
        assert_eq!(q.len(), 4 + 7 + 4);
        assert_eq!(count.load(Ordering::SeqCst), 4 + 7 + 4, "the count follows");
        let mut w = Trickle { out: Vec::new(), cap: 6, calls: 2 };
        q.write_to(&mut w, &count).unwrap();
        // "data" and six bytes of the pong are out: it can no longer be replaced.
        assert_eq!(q.replace_unsent(at, Bytes::from_static(b"x"), &count), None);
        let mut acked = Vec::new();
        q.take_acked(&mut acked);
        assert!(acked.is_empty(), "the mark moved with the longer pong");
        w.calls = 10;
        q.write_to(&mut w, &count).unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 0);
        q.take_acked(&mut acked);
        assert_eq!(acked, vec![7]);
        assert_eq!(w.out, b"datapong-22tail");
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let mut q = WriteQueue::default();
        q.push(Bytes::from_static(b"hello "));
        q.push(Bytes::from_static(b""));
        q.push(Bytes::from_static(b"world"));
        let mut w = Trickle { out: Vec::new(), cap: 4, calls: 2 };
        // "hell", then "o " (the default write_vectored writes the first non-empty slice)
        let count = AtomicUsize::new(11);
        assert_eq!(q.write_to(&mut w, &count).unwrap(), (6, 5));
        assert_eq!(q.len(), 5);
        w.calls = 10;
        assert_eq!(q.write_to(&mut w, &count).unwrap(), (5, 0));
        assert!(q.is_empty());
        assert_eq!(w.out, b"hello world");
    }
}
