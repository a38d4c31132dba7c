//! Address ranges noted on one thread before a signal handler that uses them is armed:
//! the deferred work of `after_start.rs` (the executable's read-only segments to give back,
//! guest RAM to offer KSM) runs from SIGALRM in solo mode, where only atomics may be read.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Up to `N` (start, length) ranges; a slot of length 0 is empty.
pub(crate) struct NotedRanges<const N: usize>([(AtomicUsize, AtomicUsize); N]);

impl<const N: usize> NotedRanges<N> {
    pub(crate) const fn new() -> Self {
        NotedRanges([const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; N])
    }

    /// Notes `ranges`, the first `N` of them, and empties the slots past them.
    pub(crate) fn set(&self, ranges: impl IntoIterator<Item = (usize, usize)>) {
        let mut ranges = ranges.into_iter();
        for (start, len) in &self.0 {
            let (s, l) = ranges.next().unwrap_or((0, 0));
            start.store(s, Ordering::Relaxed);
            len.store(l, Ordering::Relaxed);
        }
    }

    /// Calls `f(start, length)` for each noted range (async-signal-safe: atomic loads).
    pub(crate) fn for_each(&self, mut f: impl FnMut(usize, usize)) {
        for (start, len) in &self.0 {
            let (start, len) = (start.load(Ordering::Relaxed), len.load(Ordering::Relaxed));
            if len > 0 {
                f(start, len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_past_the_slots_are_dropped_and_old_ones_cleared() {
        let noted = NotedRanges::<2>::new();
        noted.set([(1, 2), (3, 4), (5, 6)]);
        let mut seen = Vec::new();
        noted.for_each(|s, l| seen.push((s, l)));
        assert_eq!(seen, [(1, 2), (3, 4)]);
        noted.set([(7, 8)]);
        seen.clear();
        noted.for_each(|s, l| seen.push((s, l)));
        assert_eq!(seen, [(7, 8)]);
    }
}
