//! Bounded, tiered per-function history: ring buffers of 10 s bins for 6 h, 1 min bins for 3
//! days and 5 min bins for 28 days (invocation counts), plus 10 s bins of the concurrency
//! integral for the last hour (the observation window of a tick). About 58 KiB per function
//! when full; nothing grows past that.

use crate::policy::Millis;

/// Width and length of a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierSpec {
    /// Bin width in ms.
    pub width_ms: Millis,
    /// Number of bins kept.
    pub len: usize,
}

/// The count tiers: 10 s × 6 h, 1 min × 3 d, 5 min × 28 d.
pub const COUNT_TIERS: [TierSpec; 3] = [
    TierSpec {
        width_ms: 10_000,
        len: 6 * 360,
    },
    TierSpec {
        width_ms: 60_000,
        len: 3 * 24 * 60,
    },
    TierSpec {
        width_ms: 300_000,
        len: 28 * 24 * 12,
    },
];

/// The concurrency tier: 10 s × 1 h.
pub const CONC_TIER: TierSpec = TierSpec {
    width_ms: 10_000,
    len: 360,
};

/// Longest time a sample may lie in the past and still be stored (the coarsest tier's span).
pub const RETENTION_MS: Millis = 28 * 24 * 3_600_000;

/// A ring of fixed-width bins ending at the latest bin written (`head`).
///
/// Writes to the same bin accumulate in a small pending slot held inline and reach the
/// (large, usually cold) value array only when another bin is written or the ring is read for
/// persistence: a stream of 10 s samples touches the 1 min and 5 min arrays once per 6 and 30
/// samples, which keeps ingestion from being bound by cache misses.
#[derive(Debug, Clone, PartialEq)]
pub struct Ring {
    width_ms: Millis,
    vals: Vec<f32>,
    /// Index (time / width) of the newest bin in `vals`, if any.
    head: Option<u64>,
    /// Bin indices changed since the last [`Ring::take_dirty`] (inclusive range).
    dirty: Option<(u64, u64)>,
    /// A bin not yet added to `vals`, and its value.
    pending: Option<(u64, f32)>,
}

impl Ring {
    /// An empty ring.
    pub fn new(spec: TierSpec) -> Self {
        Self {
            width_ms: spec.width_ms,
            vals: vec![0.0; spec.len],
            head: None,
            dirty: None,
            pending: None,
        }
    }

    /// Bin width in ms.
    pub fn width_ms(&self) -> Millis {
        self.width_ms
    }

    /// Newest bin index (counting the pending bin).
    pub fn head(&self) -> Option<u64> {
        match (self.head, self.pending) {
            (Some(h), Some((b, _))) => Some(h.max(b)),
            (h, p) => h.or(p.map(|x| x.0)),
        }
    }

    /// Raw values in slot order (slot = bin index mod len), pending write included.
    pub fn values(&mut self) -> &[f32] {
        self.flush();
        &self.vals
    }

    /// Adds the pending bin to the value array.
    fn flush(&mut self) {
        if let Some((b, v)) = self.pending.take() {
            self.write_bin(b, v);
        }
    }

    fn len(&self) -> u64 {
        self.vals.len() as u64
    }

    fn mark(&mut self, lo: u64, hi: u64) {
        self.dirty = Some(match self.dirty {
            None => (lo, hi),
            Some((a, b)) => (a.min(lo), b.max(hi)),
        });
    }

    /// Adds `v` to bin `b` (through the pending slot).
    fn add_bin(&mut self, b: u64, v: f32) {
        match &mut self.pending {
            Some((pb, pv)) if *pb == b => *pv += v,
            _ => {
                self.flush();
                self.pending = Some((b, v));
            }
        }
    }

    /// Adds `v` to bin `b` of the value array; returns false when the bin is older than the
    /// ring holds.
    fn write_bin(&mut self, b: u64, v: f32) -> bool {
        let len = self.len();
        match self.head {
            None => self.head = Some(b),
            Some(h) if b > h => {
                // Zero the bins skipped over (at most one full turn).
                let from = (h + 1).max(b.saturating_sub(len - 1));
                for k in from..=b {
                    self.vals[(k % len) as usize] = 0.0;
                }
                self.mark(from, b);
                self.head = Some(b);
            }
            Some(h) if b + len <= h => return false,
            Some(_) => {}
        }
        self.vals[(b % len) as usize] += v;
        self.mark(b, b);
        true
    }

    /// Spreads `v` uniformly over `[start, start + width)` (parts older than the ring holds
    /// are dropped).
    pub fn add_spread(&mut self, start: Millis, width: Millis, v: f64) {
        let w = self.width_ms;
        let width = width.max(1);
        let end = start + width;
        let (b0, b1) = (start / w, (end - 1) / w);
        if b0 == b1 {
            self.add_bin(b0, v as f32);
            return;
        }
        for b in b0..=b1 {
            let lo = (b * w).max(start);
            let hi = ((b + 1) * w).min(end);
            let part = v * (hi - lo) as f64 / width as f64;
            self.add_bin(b, part as f32);
        }
    }

    /// True when bin `b` is inside the window the ring holds once `pending` is written.
    fn holds(&self, b: u64) -> bool {
        self.head().is_some_and(|h| b <= h && b + self.len() > h)
    }

    /// Sum of the bins whose start lies in `[from, to)`.
    pub fn sum(&self, from: Millis, to: Millis) -> f64 {
        let Some(h) = self.head() else { return 0.0 };
        let len = self.len();
        let lo = from
            .div_ceil(self.width_ms)
            .max((h + 1).saturating_sub(len));
        let hi = (to.div_ceil(self.width_ms)).min(h + 1); // exclusive
        let mut total = 0.0;
        if let Some(vh) = self.head {
            // Bins of `vals` still inside the window (a newer pending bin pushes old ones out).
            let lo = lo.max((vh + 1).saturating_sub(len));
            let hi = hi.min(vh + 1);
            total += (lo..hi)
                .map(|b| self.vals[(b % len) as usize] as f64)
                .sum::<f64>();
        }
        if let Some((b, v)) = self.pending {
            if b >= lo && b < hi && self.holds(b) {
                total += v as f64;
            }
        }
        total
    }

    /// Sum of every bin held.
    pub fn total(&self) -> f64 {
        self.sum(0, Millis::MAX)
    }

    /// The slots changed since the last call, as `(first slot, values)` runs, and clears the
    /// mark. A change wider than the ring gives the whole ring.
    pub fn take_dirty(&mut self) -> Vec<(usize, &[f32])> {
        self.flush();
        let Some((lo, hi)) = self.dirty.take() else {
            return Vec::new();
        };
        let len = self.len();
        if hi - lo + 1 >= len {
            return vec![(0, &self.vals[..])];
        }
        let (s, e) = ((lo % len) as usize, (hi % len) as usize);
        if s <= e {
            vec![(s, &self.vals[s..=e])]
        } else {
            vec![(s, &self.vals[s..]), (0, &self.vals[..=e])]
        }
    }

    /// Marks the whole ring changed (after a failed write).
    pub fn mark_all(&mut self) {
        self.flush();
        if let Some(h) = self.head {
            self.mark(h.saturating_sub(self.len() - 1), h);
        }
    }

    /// Restores a ring from stored values (a shorter run is zero-padded, as Redis `SETRANGE`
    /// leaves it); false (ring left as it was) if there are too many bytes or a partial value.
    pub fn restore(&mut self, head: Option<u64>, bytes: &[u8]) -> bool {
        if bytes.len() > self.vals.len() * 4 || !bytes.len().is_multiple_of(4) {
            return false;
        }
        self.vals.iter_mut().for_each(|v| *v = 0.0);
        for (v, c) in self.vals.iter_mut().zip(bytes.chunks_exact(4)) {
            *v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        self.head = head;
        self.dirty = None;
        self.pending = None;
        true
    }

    /// Adds every bin `other` holds to this ring (same bin width; bins older than this ring
    /// holds are dropped). Used when state loaded late from Redis meets history received
    /// meanwhile.
    pub fn merge_from(&mut self, other: &Ring) {
        let Some(h) = other.head() else { return };
        let w = other.width_ms;
        for b in (h + 1).saturating_sub(other.len())..=h {
            let v = other.sum(b * w, b * w + 1);
            if v != 0.0 {
                self.add_bin(b, v as f32);
            }
        }
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.vals.capacity() * std::mem::size_of::<f32>()
    }
}

/// Encodes f32 values little-endian (the Redis layout of a ring).
pub fn encode_f32(vals: &[f32]) -> Vec<u8> {
    vals.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The history of one function.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Invocation counts, finest first.
    pub counts: [Ring; 3],
    /// Concurrency integral (invocation·ms) per 10 s bin.
    pub conc: Ring,
    /// Samples stored.
    pub samples: u64,
    /// Latest bin end seen, ms.
    pub last_sample_end: Millis,
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

impl History {
    /// Empty history.
    pub fn new() -> Self {
        Self {
            counts: COUNT_TIERS.map(Ring::new),
            conc: Ring::new(CONC_TIER),
            samples: 0,
            last_sample_end: 0,
        }
    }

    /// Stores one bin: `count` invocations and a concurrency integral of `conc_ms` over
    /// `[start, start + width)`.
    pub fn add(&mut self, start: Millis, width: Millis, count: f64, conc_ms: f64) {
        for r in &mut self.counts {
            r.add_spread(start, width, count);
        }
        self.conc.add_spread(start, width, conc_ms);
        self.samples += 1;
        self.last_sample_end = self.last_sample_end.max(start + width);
    }

    /// Invocations and concurrency integral of the 10 s bins starting in `[from, to)`.
    pub fn window(&self, from: Millis, to: Millis) -> (f64, f64) {
        (self.counts[0].sum(from, to), self.conc.sum(from, to))
    }

    /// Adds `other`'s bins and sample count to this history (see [`Ring::merge_from`]).
    pub fn merge_from(&mut self, other: &History) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            a.merge_from(b);
        }
        self.conc.merge_from(&other.conc);
        self.samples += other.samples;
        self.last_sample_end = self.last_sample_end.max(other.last_sample_end);
    }

    /// All four rings, counts first then concurrency.
    pub fn rings_mut(&mut self) -> [&mut Ring; 4] {
        let [a, b, c] = &mut self.counts;
        [a, b, c, &mut self.conc]
    }

    /// Heap bytes held by the rings.
    pub fn heap_bytes(&self) -> usize {
        self.counts.iter().map(Ring::heap_bytes).sum::<usize>() + self.conc.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_and_sums_windows() {
        let mut h = History::new();
        h.add(60_000, 60_000, 60.0, 6_000.0);
        assert_eq!(h.window(60_000, 70_000).0, 10.0);
        assert_eq!(h.window(0, 1_000_000).0, 60.0);
        assert_eq!(h.counts[1].total(), 60.0);
        assert!((h.window(60_000, 120_000).1 - 6_000.0).abs() < 1e-3);
    }

    #[test]
    fn ring_drops_old_bins_and_zeroes_skipped_ones() {
        let mut r = Ring::new(TierSpec {
            width_ms: 10,
            len: 4,
        });
        r.add_spread(0, 10, 1.0);
        r.add_spread(30, 10, 1.0);
        assert_eq!(r.total(), 2.0);
        r.add_spread(50, 10, 1.0); // bin 5: bins 0 and 1 fall out
        assert_eq!(r.total(), 2.0);
        assert_eq!(r.sum(0, 60), 2.0);
        r.add_spread(10, 10, 1.0); // bin 1 is older than the ring: dropped
        r.add_spread(40, 10, 0.5);
        assert_eq!(r.total(), 2.5);
        assert_eq!(r.sum(30, 60), 2.5);
        assert_eq!(r.sum(40, 50), 0.5);
        assert_eq!(r.values().iter().sum::<f32>(), 2.5);
    }

    #[test]
    fn merge_adds_bins_and_keeps_the_newer_window() {
        let spec = TierSpec {
            width_ms: 10,
            len: 4,
        };
        // Stored: bins 0..=2. Received meanwhile: bins 2 and 5 (5 pushes bins 0 and 1 out).
        let mut stored = Ring::new(spec);
        for b in 0..3 {
            stored.add_spread(b * 10, 10, 1.0);
        }
        let mut recent = Ring::new(spec);
        recent.add_spread(20, 10, 2.0);
        recent.add_spread(50, 10, 4.0);
        stored.merge_from(&recent);
        assert_eq!(stored.head(), Some(5));
        assert_eq!(stored.sum(20, 30), 3.0);
        assert_eq!(stored.sum(50, 60), 4.0);
        assert_eq!(stored.total(), 7.0);
        // Whole histories: sample counts add up, the latest end wins.
        let mut a = History::new();
        a.add(0, 10_000, 5.0, 0.0);
        let mut b = History::new();
        b.add(60_000, 10_000, 7.0, 0.0);
        a.merge_from(&b);
        assert_eq!((a.samples, a.last_sample_end), (2, 70_000));
        assert_eq!(a.window(0, 100_000).0, 12.0);
        assert_eq!(a.counts[2].total(), 12.0);
    }

    #[test]
    fn dirty_runs_wrap_and_restore_round_trips() {
        let mut r = Ring::new(TierSpec {
            width_ms: 10,
            len: 4,
        });
        r.add_spread(20, 10, 1.0);
        let _ = r.take_dirty();
        r.add_spread(30, 20, 2.0); // bins 3 and 4 (slots 3, 0)
        let runs: Vec<(usize, usize)> = r.take_dirty().iter().map(|(s, v)| (*s, v.len())).collect();
        assert_eq!(runs, vec![(3, 1), (0, 1)]);
        let bytes = encode_f32(r.values());
        let mut r2 = Ring::new(TierSpec {
            width_ms: 10,
            len: 4,
        });
        assert!(r2.restore(r.head(), &bytes));
        assert_eq!(r2.values(), r.values());
        assert_eq!(r2.total(), 3.0);
    }

    #[test]
    fn full_history_fits_in_64_kib() {
        let mut h = History::new();
        let start = 1_700_000_000_000;
        for i in 0..(28 * 24 * 360) {
            h.add(start + i * 10_000, 10_000, 1.0, 100.0);
        }
        assert!(h.heap_bytes() <= 64 * 1024, "{} bytes", h.heap_bytes());
        assert_eq!(h.counts[0].total(), 2160.0);
    }
}
