//! Season-length detection from the autocorrelation function, computed through the
//! periodogram (Wiener–Khinchin: FFT, squared magnitude, inverse FFT).

use rustfft::{num_complex::Complex, FftPlanner};

/// Periods that bins of common widths produce (per-minute day/hour/week, 5-minute day/week,
/// 30-minute day/week, hourly day/week, daily week); a detected peak within 2 % of one of them
/// snaps to it when its autocorrelation is nearly as high.
const CALENDAR: [usize; 11] = [7, 12, 24, 48, 60, 168, 288, 336, 1440, 2016, 10080];

/// Autocorrelation of `y` at lags `0..=max_lag` (linear detrending first).
pub fn acf(y: &[f64], max_lag: usize) -> Vec<f64> {
    let n = y.len();
    if n < 3 {
        return vec![1.0; max_lag.min(n) + 1];
    }
    // linear detrend
    let tm = (n as f64 - 1.0) / 2.0;
    let ym = y.iter().sum::<f64>() / n as f64;
    let mut sxy = 0.0;
    let mut sxx = 0.0;
    for (t, v) in y.iter().enumerate() {
        let dt = t as f64 - tm;
        sxy += dt * (v - ym);
        sxx += dt * dt;
    }
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let m = (2 * n).next_power_of_two();
    let mut buf: Vec<Complex<f64>> = (0..m)
        .map(|t| {
            if t < n {
                Complex::new(y[t] - ym - b * (t as f64 - tm), 0.0)
            } else {
                Complex::new(0.0, 0.0)
            }
        })
        .collect();
    let mut planner = FftPlanner::new();
    planner.plan_fft_forward(m).process(&mut buf);
    for c in buf.iter_mut() {
        *c = Complex::new(c.norm_sqr(), 0.0);
    }
    planner.plan_fft_inverse(m).process(&mut buf);
    let c0 = buf[0].re;
    let max_lag = max_lag.min(n - 1);
    if c0 <= 1e-12 {
        return vec![0.0; max_lag + 1];
    }
    (0..=max_lag).map(|k| buf[k].re / c0).collect()
}

/// Detects the dominant season length in `y`, searching lags up to `max_period` (and at most
/// half the series, so that two full seasons are seen). `None` when no clear season.
pub fn detect_season(y: &[f64], max_period: usize) -> Option<usize> {
    let n = y.len();
    let max_lag = max_period.min(n / 2);
    if max_lag < 4 {
        return None;
    }
    let r = acf(y, max_lag);
    // skip the initial decay: start after the first local minimum or zero crossing
    let mut start = 1;
    while start + 1 < r.len() && r[start + 1] < r[start] && r[start] > 0.0 {
        start += 1;
    }
    let mut peaks: Vec<(usize, f64)> = Vec::new();
    for k in start.max(2)..r.len().saturating_sub(1) {
        if r[k] > r[k - 1] && r[k] >= r[k + 1] {
            peaks.push((k, r[k]));
        }
    }
    let best = peaks.iter().map(|p| p.1).fold(f64::MIN, f64::max);
    if best < 0.2 {
        return None;
    }
    // smallest lag whose peak is close to the best one (avoid picking a multiple)
    let (mut lag, mut val) = peaks.iter().copied().find(|p| p.1 >= 0.9 * best)?;
    // refine: the highest autocorrelation within 5 % of the candidate
    let lo = lag - lag / 20;
    let hi = (lag + lag / 20).min(r.len() - 1);
    for (k, &v) in r.iter().enumerate().take(hi + 1).skip(lo) {
        if v > val {
            lag = k;
            val = v;
        }
    }
    for &c in &CALENDAR {
        if c <= max_lag && (c as f64 - lag as f64).abs() <= 0.02 * c as f64 && r[c] >= 0.95 * val {
            lag = c;
            break;
        }
    }
    Some(lag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(t: u64) -> f64 {
        let s = t
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let s = s ^ (s >> 29);
        let s = s.wrapping_mul(0xbf58476d1ce4e5b9);
        ((s >> 33) as f64 / (1u64 << 31) as f64) - 0.5
    }

    #[test]
    fn finds_period_of_noisy_sine() {
        let y: Vec<f64> = (0..2000)
            .map(|t| {
                10.0 + 3.0 * (2.0 * std::f64::consts::PI * t as f64 / 48.0).sin()
                    + lcg(t as u64) * 2.0
            })
            .collect();
        assert_eq!(detect_season(&y, 500), Some(48));
    }

    #[test]
    fn white_noise_has_no_season() {
        let mut s: u64 = 42;
        let y: Vec<f64> = (0..1000)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 33) as f64 / (1u64 << 31) as f64
            })
            .collect();
        assert_eq!(detect_season(&y, 300), None);
    }
}
