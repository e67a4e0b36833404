//! Spinning only when it pays: a thread that just finished work may poll for more for a moment
//! instead of sleeping (saving the two context switches of a sleep and a wake-up), but only
//! while such spins recently found work. Under load the next piece of work is microseconds away
//! and most spins find it; at a light load none do, and every spin is CPU spent for nothing.

use std::sync::atomic::{AtomicU32, Ordering};

/// How often a spin is tried anyway while spins fail (to notice that load came back).
const TRY_EVERY: u32 = 64;
/// The hit rate is kept in 1/1024ths; spins go on while at least this many of them found work
/// (about one in five: a spin that finds work saves two context switches, which cost several
/// spins that do not).
const PAYS: u32 = 192;

/// Whether spinning pays for one thread (or for the one spinning thread of a pool, shared):
/// the recent rate of spins that found work.
#[derive(Debug)]
pub struct SpinGate {
    /// Moving average of hits (1024 = every spin found work; weight 1/8 for the newest).
    hits: AtomicU32,
}

impl Default for SpinGate {
    fn default() -> Self {
        // Start by spinning: a server usually starts under the load it was started for.
        Self { hits: AtomicU32::new(1024) }
    }
}

impl SpinGate {
    /// A spin ended: it found work (`hit`) or gave up.
    pub fn spun(&self, hit: bool) {
        // One spinning thread at a time updates it: a plain load and store suffice.
        let h = self.hits.load(Ordering::Relaxed);
        self.hits.store(h - h / 8 + if hit { 128 } else { 0 }, Ordering::Relaxed);
    }

    /// Whether to spin before sleeping, this idle period (ask once per period);
    /// `since_try`: the asking thread's count of idle periods since it last spun.
    pub fn spin_pays(&self, since_try: &mut u32) -> bool {
        *since_try += 1;
        if self.hits.load(Ordering::Relaxed) >= PAYS || *since_try >= TRY_EVERY {
            *since_try = 0;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spins_while_spins_find_work_and_stops_when_they_do_not() {
        let g = SpinGate::default();
        let mut since = 0;
        assert!(g.spin_pays(&mut since), "starts spinning");
        for _ in 0..32 {
            g.spun(false);
        }
        let tries = (0..TRY_EVERY * 4).filter(|_| g.spin_pays(&mut since)).count();
        assert_eq!(tries, 4, "failing spins: a spin only now and then");
        for _ in 0..32 {
            g.spun(true);
        }
        assert!(g.spin_pays(&mut since), "load is back");
    }
}
