//! The per-function event queue: a min-queue of `(time, tag)` split in two binary heaps.
//!
//! Most events (completions, loads, ticks) are near in time and popped at the rate of
//! invocations; keep-alive expiries sit minutes ahead, one per idle instance, and are mostly
//! popped long after or rescheduled. Keeping the far events in a heap of their own keeps the
//! hot heap shallow: a pop sifts through as many levels as there are near events, not all.
//!
//! Order is exactly that of a single min-heap of `(time, tag)`: earliest time first and, among
//! events at the same millisecond, the smallest tag first (the engine encodes the event kind
//! in the tag's top bits, which gives the documented same-millisecond processing order).
//! Entries are stored as one `u128` (`time << 64 | tag`), which orders the same as the pair and
//! compares without branches.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A min-queue of `(time, tag)` pairs with a separate heap for far events.
#[derive(Debug, Default)]
pub struct EventQueue {
    near: BinaryHeap<Reverse<u128>>,
    far: BinaryHeap<Reverse<u128>>,
}

#[inline]
fn key(t: u64, tag: u64) -> u128 {
    (u128::from(t) << 64) | u128::from(tag)
}

#[inline]
fn split(k: u128) -> (u64, u64) {
    ((k >> 64) as u64, k as u64)
}

impl EventQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.near.len() + self.far.len()
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.near.is_empty() && self.far.is_empty()
    }

    /// Adds an entry expected to be popped soon.
    #[inline]
    pub fn push(&mut self, t: u64, tag: u64) {
        self.near.push(Reverse(key(t, tag)));
    }

    /// Adds an entry expected to stay long (only where it is kept differs; the order does not).
    #[inline]
    pub fn push_far(&mut self, t: u64, tag: u64) {
        self.far.push(Reverse(key(t, tag)));
    }

    /// The earliest entry.
    #[inline]
    pub fn peek(&self) -> Option<(u64, u64)> {
        match (self.near.peek(), self.far.peek()) {
            (Some(a), Some(b)) => Some(split(a.0.min(b.0))),
            (Some(x), None) | (None, Some(x)) => Some(split(x.0)),
            (None, None) => None,
        }
    }

    /// The earliest time in the queue.
    #[inline]
    pub fn peek_time(&self) -> Option<u64> {
        self.peek().map(|e| e.0)
    }

    /// Removes and returns the earliest entry (smallest tag among entries at the same time).
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, u64)> {
        let take_far = match (self.near.peek(), self.far.peek()) {
            (Some(a), Some(b)) => b.0 < a.0,
            (None, Some(_)) => true,
            _ => false,
        };
        let h = if take_far {
            &mut self.far
        } else {
            &mut self.near
        };
        h.pop().map(|r| split(r.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn pops_in_the_order_of_a_single_heap() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut q = EventQueue::new();
        let mut h = BinaryHeap::new();
        let mut now = 0u64;
        for step in 0..200_000u32 {
            if rng.random_bool(0.52) || h.is_empty() {
                // Near and far events, some at exactly now (ties on time).
                let far = rng.random_bool(0.3);
                let dt = match rng.random_range(0..10u32) {
                    0 => 0,
                    1..=6 => rng.random_range(0..50u64),
                    7 | 8 => rng.random_range(0..5_000u64),
                    _ => rng.random_range(0..1u64 << 40),
                };
                let tag = rng.random_range(0..8u64) << 60 | u64::from(step % 5);
                if far {
                    q.push_far(now + dt, tag);
                } else {
                    q.push(now + dt, tag);
                }
                h.push(Reverse((now + dt, tag)));
            } else {
                assert_eq!(q.peek_time(), h.peek().map(|r| r.0 .0));
                let got = q.pop();
                let want = h.pop().map(|r| r.0);
                assert_eq!(got, want);
                if let Some((t, _)) = got {
                    now = t;
                }
            }
            assert_eq!(q.len(), h.len());
        }
        while let Some(Reverse(want)) = h.pop() {
            assert_eq!(q.pop(), Some(want));
        }
        assert!(q.is_empty());
        assert_eq!(q.pop(), None);
    }
}
