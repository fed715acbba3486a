//! Small numeric helpers shared by the models: quantiles, medians, normal and count
//! distributions. Pure functions, no allocation beyond what the caller sees.

/// Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9).
pub fn norm_inv(p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let plow = 0.02425;
    if p < plow {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - plow {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 on erf, |error| < 1.5e-7).
pub fn norm_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// The probabilities P(X = 0), P(X = 1), … of a Poisson (`var <= mean`) or negative binomial
/// with the given mean and variance, by the recurrence on consecutive terms.
struct CountPmf {
    /// P(X = k).
    p: f64,
    k: f64,
    nb: bool,
    mean: f64,
    /// Success probability and size of the negative binomial.
    pr: f64,
    r: f64,
    /// Where quantile walks stop: far beyond any quantile short of 1 − 1e-9.
    limit: f64,
}

impl CountPmf {
    /// The distribution at k = 0, or `None` where the terms underflow or the mean is large
    /// (over 400), where callers use the continuity-corrected normal instead.
    fn new(mean: f64, var: f64) -> Option<Self> {
        if mean > 400.0 || !var.is_finite() {
            return None;
        }
        let nb = var > mean * (1.0 + 1e-6);
        let (pr, r) = (mean / var, mean * mean / (var - mean).max(1e-12));
        let log_p0 = if nb { r * pr.ln() } else { -mean };
        // (NaN too, so every term of the walk stays finite)
        if log_p0.is_nan() || log_p0 < -700.0 {
            return None;
        }
        Some(Self {
            p: log_p0.exp(),
            k: 0.0,
            nb,
            mean,
            pr,
            r,
            limit: mean + 60.0 * var.sqrt() + 50.0,
        })
    }

    /// Moves to P(X = k + 1).
    #[inline]
    fn advance(&mut self) {
        self.p *= if self.nb {
            (self.k + self.r) / (self.k + 1.0) * (1.0 - self.pr)
        } else {
            self.mean / (self.k + 1.0)
        };
        self.k += 1.0;
    }
}

/// The normal approximation `count_quantile` uses for large means.
fn normal_count_quantile(mean: f64, var: f64, q: f64) -> f64 {
    (mean + norm_inv(q) * var.sqrt()).max(0.0).round()
}

/// The `q`-quantile of a count distribution with the given mean and variance: Poisson when
/// `var <= mean`, negative binomial otherwise; a continuity-corrected normal for large means.
pub fn count_quantile(mean: f64, var: f64, q: f64) -> f64 {
    let mean = mean.max(0.0);
    if mean < 1e-9 {
        return 0.0;
    }
    let q = q.clamp(1e-9, 1.0 - 1e-9);
    let var = var.max(mean);
    let Some(mut pmf) = CountPmf::new(mean, var) else {
        return normal_count_quantile(mean, var, q);
    };
    let mut cdf = pmf.p;
    while cdf < q && pmf.k < pmf.limit {
        pmf.advance();
        cdf += pmf.p;
    }
    pmf.k
}

/// For each `(lo, hi)` of `levels`, whether the count `y` lies inside the interval
/// `[count_quantile(lo), count_quantile(hi)]` of the distribution `count_quantile` uses:
/// `(closed, open)`, the open test excluding the interval's ends. One walk of the
/// probabilities up to `y` serves every level (the quantiles themselves, O(1), for large
/// means).
pub fn count_intervals_hold<const N: usize>(
    mean: f64,
    var: f64,
    y: f64,
    levels: [(f64, f64); N],
) -> [(bool, bool); N] {
    let mean = mean.max(0.0);
    let var = var.max(mean);
    let pmf = if mean < 1e-9 {
        None
    } else {
        CountPmf::new(mean, var)
    };
    let Some(mut pmf) = pmf else {
        return levels.map(|(lo, hi)| {
            let (a, b) = (count_quantile(mean, var, lo), count_quantile(mean, var, hi));
            (a <= y && y <= b, a < y && y < b)
        });
    };
    // F(y − 1) and F(y); the quantile at q is the smallest k with F(k) >= q. The walk stops
    // where every upper quantile is passed (or capped, as in `count_quantile`): any larger y
    // is outside, and a burst of millions costs no more than the distribution's bulk
    let top = levels.iter().fold(0.0, |m: f64, l| m.max(l.1));
    let (mut below, mut cdf) = (0.0, pmf.p);
    while pmf.k < y {
        if cdf >= top || pmf.k >= pmf.limit {
            return [(false, false); N];
        }
        pmf.advance();
        below = cdf;
        cdf += pmf.p;
    }
    levels.map(|(lo, hi)| (cdf >= lo && below < hi, below >= lo && cdf < hi))
}

/// Complementary error function (Numerical Recipes `erfcc`): relative error below 1.2e-7
/// everywhere, so upper-tail probabilities stay accurate far into the tail.
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Normal tail probability of a deviation of `z` standard deviations on either side:
/// `P(Z > |z|)`, accurate far into the tail (relative error below 1.2e-7).
pub fn normal_tail(z: f64) -> f64 {
    0.5 * erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// Probability that a count with the given mean and variance is at most `x` (Poisson or
/// negative binomial as in [`count_quantile`]).
pub fn count_cdf(mean: f64, var: f64, x: f64) -> f64 {
    let mean = mean.max(0.0);
    if x < 0.0 {
        return 0.0;
    }
    if mean < 1e-9 {
        return 1.0;
    }
    let var = var.max(mean);
    let Some(mut pmf) = CountPmf::new(mean, var) else {
        return norm_cdf((x + 0.5 - mean) / var.sqrt());
    };
    let mut cdf = pmf.p;
    // past the walk's limit the remaining mass is negligible, so a huge x costs no more
    while pmf.k + 1.0 <= x.floor() && pmf.k < pmf.limit {
        pmf.advance();
        cdf += pmf.p;
    }
    cdf.min(1.0)
}

/// Median of a slice (copies; NaN-free input expected). `None` when empty.
pub fn median(x: &[f64]) -> Option<f64> {
    quantile(x, 0.5)
}

/// Linear-interpolated empirical quantile (type 7). `None` when empty.
pub fn quantile(x: &[f64], q: f64) -> Option<f64> {
    if x.is_empty() {
        return None;
    }
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    Some(quantile_sorted(&v, q))
}

/// Type-7 quantile of an already sorted, non-empty slice.
pub fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    let f = pos - lo as f64;
    v[lo] * (1.0 - f) + v[hi] * f
}

/// The [`quantile_sorted`] values of `v` at the ascending probabilities `levels`, without
/// sorting all of `v`: only the order statistics they interpolate between are selected
/// (O(n log levels)). Reorders `v`.
pub fn quantiles_unsorted(v: &mut [f64], levels: &[f64]) -> Vec<f64> {
    let n = v.len();
    if n == 0 {
        return vec![f64::NAN; levels.len()];
    }
    let pos: Vec<(usize, usize, f64)> = levels
        .iter()
        .map(|&q| {
            let p = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = p.floor() as usize;
            (lo, (lo + 1).min(n - 1), p - lo as f64)
        })
        .collect();
    let mut ranks: Vec<usize> = pos.iter().flat_map(|&(lo, hi, _)| [lo, hi]).collect();
    ranks.sort_unstable();
    ranks.dedup();
    select_ranks(v, &ranks, 0);
    pos.iter()
        .map(|&(lo, hi, f)| v[lo] * (1.0 - f) + v[hi] * f)
        .collect()
}

/// Puts the elements of the ascending `ranks` (offset by `base`) in their sorted places by
/// recursive selection around the middle rank.
fn select_ranks(v: &mut [f64], ranks: &[usize], base: usize) {
    if ranks.is_empty() || v.is_empty() {
        return;
    }
    let mid = ranks.len() / 2;
    let k = ranks[mid] - base;
    v.select_nth_unstable_by(k, f64::total_cmp);
    let (below, rest) = v.split_at_mut(k);
    select_ranks(below, &ranks[..mid], base);
    select_ranks(&mut rest[1..], &ranks[mid + 1..], base + k + 1);
}

/// Median absolute deviation around the median, scaled by 1.4826 to estimate σ.
pub fn mad_sigma(x: &[f64]) -> Option<f64> {
    let m = median(x)?;
    let dev: Vec<f64> = x.iter().map(|v| (v - m).abs()).collect();
    median(&dev).map(|d| d * 1.4826)
}

/// Mean of a slice; 0 when empty.
pub fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        0.0
    } else {
        x.iter().sum::<f64>() / x.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_inverse_and_cdf_agree() {
        for p in [0.01, 0.1, 0.5, 0.8, 0.975, 0.999] {
            assert!((norm_cdf(norm_inv(p)) - p).abs() < 1e-6, "{p}");
        }
        assert!((norm_inv(0.975) - 1.959_964).abs() < 1e-5);
    }

    #[test]
    fn erfc_is_accurate_in_the_tail() {
        // reference values of erfc
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (2.0, 4.677_734_981_047_266e-3),
            (5.0, 1.537_459_794_428_035e-12),
            (-1.0, 1.842_700_792_949_715),
        ] {
            assert!(
                (erfc(x) - want).abs() <= 2e-7 * want,
                "{x}: {} vs {want}",
                erfc(x)
            );
        }
        assert!((normal_tail(-1.959_964) - 0.025).abs() < 1e-8);
    }

    #[test]
    fn poisson_quantiles_match_known_values() {
        // Poisson(3): P(X<=1)=0.199, P(X<=5)=0.916
        assert_eq!(count_quantile(3.0, 3.0, 0.19), 1.0);
        assert_eq!(count_quantile(3.0, 3.0, 0.5), 3.0);
        assert_eq!(count_quantile(3.0, 3.0, 0.9), 5.0);
        assert!((count_cdf(3.0, 3.0, 5.0) - 0.916_082).abs() < 1e-5);
        assert!(count_cdf(3.0, 12.0, 1e15) > 1.0 - 1e-9);
        // an infinite variance (a series of huge bursts) has no walk to hang in
        assert_eq!(
            count_intervals_hold(2.0, f64::INFINITY, 1e300, [(0.1, 0.9)]),
            [(true, true)]
        );
        assert!((count_cdf(2.0, f64::INFINITY, 1e300) - 0.5).abs() < 1e-6);
        // Overdispersed: wider upper quantile
        assert!(count_quantile(3.0, 12.0, 0.95) > count_quantile(3.0, 3.0, 0.95));
    }

    #[test]
    fn interval_membership_agrees_with_the_quantiles() {
        // Poisson, negative binomial (mild and extreme), a zero mean and the normal range
        let levels = [(0.1, 0.9), (0.025, 0.975)];
        for (mean, var) in [
            (3.0, 3.0),
            (7.5, 20.0),
            (2.0, 3000.0),
            (0.0, 1.0),
            (900.0, 2500.0),
        ] {
            for y in (0..1000).chain([1e9 as i64, 1e15 as i64]) {
                let y = y as f64;
                let got = count_intervals_hold(mean, var, y, levels);
                for ((lo, hi), got) in levels.into_iter().zip(got) {
                    let (a, b) = (count_quantile(mean, var, lo), count_quantile(mean, var, hi));
                    assert_eq!(
                        got,
                        (a <= y && y <= b, a < y && y < b),
                        "mean {mean} var {var} y {y} interval [{a}, {b}]"
                    );
                }
            }
        }
    }

    #[test]
    fn quantiles_and_mad() {
        let x = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(median(&x), Some(3.0));
        assert_eq!(quantile(&x, 0.25), Some(2.0));
        assert!((mad_sigma(&x).unwrap_or(0.0) - 1.4826).abs() < 1e-9);
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn selected_quantiles_equal_those_of_the_sorted_values() {
        // a scrambled series with ties, and levels at both ends and in between
        let v: Vec<f64> = (0..1093).map(|i| ((i * 7919) % 613) as f64 / 7.0).collect();
        let levels = [0.0, 0.005, 0.01, 0.3, 0.5, 0.5, 0.77, 0.995, 1.0];
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        let want: Vec<f64> = levels
            .iter()
            .map(|&q| quantile_sorted(&sorted, q))
            .collect();
        let mut work = v.clone();
        assert_eq!(quantiles_unsorted(&mut work, &levels), want);
        // short inputs: one value, two values
        assert_eq!(quantiles_unsorted(&mut [4.0], &[0.1, 0.9]), vec![4.0, 4.0]);
        assert_eq!(quantiles_unsorted(&mut [3.0, 1.0], &[0.5]), vec![2.0]);
        assert!(quantiles_unsorted(&mut [], &[0.5])[0].is_nan());
    }
}
