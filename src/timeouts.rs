//! Held HTTP channels that time out (`Options::long_poll_timeout`): a long-poll nobody answers
//! within its time is answered with the configured status and closed, as http-kit's
//! `with-timeout` did. One timer thread per server, started at first use; a channel answered
//! or closed before its time costs nothing more than its entry.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::channel::ChannelInner;

struct Entry {
    at: Instant,
    seq: u64,
    /// Through a small slot the channel owns: an entry whose channel is gone holds these few
    /// bytes until its time, not the channel's memory.
    channel: Weak<TimerSlot>,
    status: u16,
}

/// What the timer reaches a channel through (owned by the channel).
pub(crate) struct TimerSlot(pub(crate) Weak<ChannelInner>);

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    started: bool,
}

/// The timer of one server's held channels.
#[derive(Default)]
pub(crate) struct LongPollTimer {
    state: Mutex<State>,
    wake: Condvar,
}

impl std::fmt::Debug for LongPollTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LongPollTimer")
    }
}

impl LongPollTimer {
    /// Times `channel` out at `at` (unless it is answered or closed first).
    pub(crate) fn schedule(self: &Arc<Self>, at: Instant, channel: Weak<TimerSlot>, status: u16) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.seq += 1;
        let seq = st.seq;
        let earliest = st.heap.peek().is_none_or(|e| at < e.0.at);
        st.heap.push(Reverse(Entry { at, seq, channel, status }));
        if !st.started {
            st.started = true;
            let weak = Arc::downgrade(self);
            let spawned = std::thread::Builder::new().name("httpkit-timer".into()).spawn(move || run(&weak));
            if spawned.is_err() {
                st.started = false;
                log::error!("httpkit: the long-poll timer thread could not start");
            }
        }
        drop(st);
        if earliest {
            self.wake.notify_one();
        }
    }
}

/// The timer thread: ends once its server is gone.
fn run(timer: &Weak<LongPollTimer>) {
    loop {
        let Some(t) = timer.upgrade() else { return };
        let due = {
            let mut st = t.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            match st.heap.peek() {
                Some(e) if e.0.at <= now => st.heap.pop().map(|e| (e.0.channel, e.0.status)),
                next => {
                    // At most a second, so a server that is gone is noticed.
                    let wait = next.map_or(Duration::from_secs(1), |e| (e.0.at - now).min(Duration::from_secs(1)));
                    let _ = t.wake.wait_timeout(st, wait);
                    None
                }
            }
        };
        drop(t);
        if let Some((ch, status)) = due {
            if let Some(ch) = ch.upgrade().and_then(|slot| slot.0.upgrade()) {
                crate::channel::Channel::from_inner(ch).time_out(status);
            }
        }
    }
}
