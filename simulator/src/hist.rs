//! A compact log-linear histogram of integer latencies (ms) with mergeable counts, used for
//! latency percentiles without holding per-invocation records.

/// Values below this are recorded exactly.
const LINEAR: u64 = 128;
/// Sub-buckets per power of two above `LINEAR` (relative error below 1/64).
const SUB: u64 = 64;
const SUB_BITS: u32 = 6;

/// Log-linear histogram over u64 values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogHistogram {
    counts: Vec<u64>,
    total: u64,
}

#[inline]
fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= 7
    let sub = (v >> (e - SUB_BITS)) & (SUB - 1);
    (LINEAR + (e as u64 - 7) * SUB + sub) as usize
}

fn lower_bound(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let e = (i - LINEAR) / SUB + 7;
    let sub = (i - LINEAR) % SUB;
    (1u64 << e) + (sub << (e - SUB_BITS as u64))
}

impl LogHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `n` occurrences of `v`.
    #[inline]
    pub fn record_n(&mut self, v: u64, n: u64) {
        let i = index(v);
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += n;
        self.total += n;
    }

    /// Records one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.record_n(v, 1);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &LogHistogram) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    /// The value at quantile `q` in [0, 1] (the middle of its bucket; exact below 128).
    pub fn quantile(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let want = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut acc = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            acc += c;
            if acc >= want {
                let lo = lower_bound(i) as f64;
                let hi = lower_bound(i + 1) as f64;
                return if hi - lo <= 1.0 {
                    lo
                } else {
                    (lo + hi - 1.0) / 2.0
                };
            }
        }
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_linear_range_and_bounded_error_above() {
        let mut h = LogHistogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 50.0);
        assert_eq!(h.quantile(0.99), 99.0);
        let mut h = LogHistogram::new();
        h.record_n(1_000_000, 10);
        let q = h.quantile(0.5);
        assert!((q - 1e6).abs() / 1e6 < 1.0 / 64.0, "{q}");
    }

    #[test]
    fn buckets_are_contiguous() {
        for i in 0..2000 {
            assert!(lower_bound(i + 1) > lower_bound(i));
            assert_eq!(index(lower_bound(i)), i);
        }
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = LogHistogram::new();
        let mut b = LogHistogram::new();
        a.record(5);
        b.record_n(7, 3);
        a.merge(&b);
        assert_eq!(a.count(), 4);
        assert_eq!(a.quantile(1.0), 7.0);
    }
}
