//! NAB (Numenta Anomaly Benchmark) scoring: anomaly windows, the scaled sigmoid of each
//! detection's position, the standard-profile weights, the corpus-wide threshold sweep and the
//! normalisation between the null and the perfect detector (after numenta/NAB `sweeper.py`).

use serde::{Deserialize, Serialize};

/// Cost matrix of a NAB profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Weight of a true positive (scaled so the earliest detection scores exactly this).
    pub tp: f64,
    /// Weight of a false positive (positive number; FPs subtract).
    pub fp: f64,
    /// Weight of a missed window (positive number; subtracts).
    pub fn_: f64,
}

impl Profile {
    /// NAB's standard profile: A_TP = 1, A_FP = 0.11, A_FN = 1.
    pub const STANDARD: Profile = Profile {
        tp: 1.0,
        fp: 0.11,
        fn_: 1.0,
    };
}

/// `2·sigmoid(-5x) - 1`, and -1 from 3 window-widths after a window on.
pub fn scaled_sigmoid(x: f64) -> f64 {
    if x >= 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * x).exp()) - 1.0
    }
}

/// Length of the probationary period NAB ignores at the start of a file.
pub fn probation_len(n: usize) -> usize {
    ((0.15 * n as f64).floor()).min(0.15 * 5000.0) as usize
}

/// One labelled file: its length and anomaly windows as inclusive index ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledSeries {
    /// Points in the file.
    pub len: usize,
    /// Windows `(first, last)` as point indices, sorted and disjoint.
    pub windows: Vec<(usize, usize)>,
}

/// A scorable point: detector score, its window (global id) if any, and its weighted score.
#[derive(Debug, Clone, Copy)]
struct Point {
    score: f64,
    window: Option<usize>,
    weighted: f64,
}

#[allow(clippy::needless_range_loop)]
/// Builds NAB's per-point weighted scores for one file; `window_base` numbers its windows.
fn sweep_points(
    s: &LabelledSeries,
    scores: &[f64],
    window_base: usize,
    p: &Profile,
) -> (Vec<Point>, Vec<usize>) {
    let max_tp = scaled_sigmoid(-1.0);
    let prob = probation_len(s.len);
    let mut out = Vec::with_capacity(s.len);
    let mut live_windows = Vec::new();
    let mut prev: Option<(usize, f64)> = None; // (right index, width)
    let mut wi = 0;
    for i in 0..s.len.min(scores.len()) {
        let cur = s.windows.get(wi).filter(|w| i >= w.0 && i <= w.1).copied();
        let (weighted, window) = if let Some((l, r)) = cur {
            let width = (r - l + 1) as f64;
            let pos = -((r as f64) - i as f64 + 1.0) / width;
            (scaled_sigmoid(pos) * p.tp / max_tp, Some(window_base + wi))
        } else {
            let pos = match prev {
                None => 3.0,
                Some((right, width)) => (i as f64 - right as f64).abs() / (width - 1.0).max(1.0),
            };
            (scaled_sigmoid(pos) * p.fp, None)
        };
        if i >= prob {
            if let Some(w) = window {
                if live_windows.last() != Some(&w) {
                    live_windows.push(w);
                }
            }
            out.push(Point {
                score: scores[i],
                window,
                weighted,
            });
        }
        if let Some((l, r)) = cur {
            if i == r {
                prev = Some((r, (r - l + 1) as f64));
                wi += 1;
            }
        }
    }
    (out, live_windows)
}

/// Result of a corpus-wide threshold sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NabResult {
    /// Best threshold (points with score >= threshold are detections).
    pub threshold: f64,
    /// Raw score at that threshold.
    pub raw: f64,
    /// Normalised score: 100 · (raw − null) / (perfect − null).
    pub normalized: f64,
    /// Windows scored.
    pub windows: usize,
    /// True-positive windows at the best threshold.
    pub tp: usize,
    /// False-positive points at the best threshold.
    pub fp: usize,
}

/// Scores a corpus: `files[i]` is scored with `scores[i]`. Sweeps every distinct score as a
/// threshold across the whole corpus (one threshold for all files, as NAB's optimiser does).
pub fn score_corpus(files: &[LabelledSeries], scores: &[Vec<f64>], p: &Profile) -> NabResult {
    let mut points = Vec::new();
    let mut windows = Vec::new();
    let mut base = 0;
    for (f, s) in files.iter().zip(scores) {
        let (pts, live) = sweep_points(f, s, base, p);
        base += f.windows.len();
        points.extend(pts);
        windows.extend(live);
    }
    let nw = windows.len();
    let null = -p.fn_ * nw as f64;
    let perfect = p.tp * nw as f64;
    points.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut best_window = vec![f64::NEG_INFINITY; base];
    let mut window_sum = null; // every live window starts as a miss
    let mut fp_sum = 0.0;
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut best = NabResult {
        threshold: f64::INFINITY,
        raw: null,
        normalized: 0.0,
        windows: nw,
        tp: 0,
        fp: 0,
    };
    let mut i = 0;
    while i < points.len() {
        let thr = points[i].score;
        while i < points.len() && points[i].score == thr {
            let pt = points[i];
            match pt.window {
                Some(w) => {
                    let old = if best_window[w].is_finite() {
                        best_window[w]
                    } else {
                        tp += 1;
                        -p.fn_
                    };
                    let new = old.max(pt.weighted);
                    window_sum += new - old;
                    best_window[w] = new;
                }
                None => {
                    fp_sum += pt.weighted;
                    fp += 1;
                }
            }
            i += 1;
        }
        let raw = window_sum + fp_sum;
        if raw > best.raw {
            best = NabResult {
                threshold: thr,
                raw,
                normalized: 0.0,
                windows: nw,
                tp,
                fp,
            };
        }
    }
    best.normalized = if perfect > null {
        100.0 * (best.raw - null) / (perfect - null)
    } else {
        0.0
    };
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> LabelledSeries {
        LabelledSeries {
            len: 100,
            windows: vec![(50, 59)],
        }
    }

    #[test]
    fn perfect_null_and_late_detection() {
        let f = file();
        // detection at the window start: perfect
        let mut s = vec![0.0; 100];
        s[50] = 1.0;
        let r = score_corpus(std::slice::from_ref(&f), &[s], &Profile::STANDARD);
        assert!((r.normalized - 100.0).abs() < 1e-9, "{r:?}");
        // nothing detected: the best threshold is "none" and the score is 0
        let r = score_corpus(
            std::slice::from_ref(&f),
            &[vec![0.0; 100]],
            &Profile::STANDARD,
        );
        assert!(r.normalized.abs() < 1e-9 && r.tp == 0, "{r:?}");
        // detection at the last point of the window: sigmoid(-1/10) scaled
        let mut s = vec![0.0; 100];
        s[59] = 1.0;
        let r = score_corpus(std::slice::from_ref(&f), &[s], &Profile::STANDARD);
        let tp = scaled_sigmoid(-0.1) / scaled_sigmoid(-1.0);
        assert!((r.raw - tp).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn false_positives_cost_by_distance() {
        let f = file();
        // a detection in the window and one 11 points after it
        let mut s = vec![0.0; 100];
        s[50] = 1.0;
        s[70] = 1.0;
        let r = score_corpus(std::slice::from_ref(&f), &[s], &Profile::STANDARD);
        // the optimiser may keep only the TP (threshold 1 includes both here: equal scores)
        let fp = scaled_sigmoid(11.0 / 9.0) * 0.11;
        assert!((r.raw - (1.0 + fp)).abs() < 1e-9, "{r:?} {fp}");
        // a detection in the probationary period is ignored; one before any window costs 0.11
        let mut s = vec![0.0; 100];
        s[5] = 0.9;
        s[20] = 0.9;
        let r = score_corpus(&[f], &[s], &Profile::STANDARD);
        assert_eq!(r.fp, 0, "lower threshold would add a -0.11 FP: {r:?}");
        assert!((r.normalized - 0.0).abs() < 1e-9);
    }
}
