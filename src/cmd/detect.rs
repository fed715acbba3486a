//! `prewarm detect`: anomalies in one series (robust residual MAD, seasonal ESD, and the
//! isolation forest and seasonal MAD behind the anomaly likelihood), or the NAB
//! standard-profile score of each detector over a NAB corpus.

use crate::cmd::series_io::{parse_timestamp, read_csv, read_csv_with};
use crate::cmd::ExitError;
use prewarm_models::anomaly::{
    score_series, seasonal_esd, Ensemble, ForecastMad, IsolationDetector, Likelihood,
    LikelihoodParams, OnlineDetector, SeasonalMad, WindowedGaussian,
};
use prewarm_models::cad::{Cad, CadParams};
use prewarm_models::nab::{probation_len, score_corpus, LabelledSeries, Profile};
use prewarm_models::season::detect_season;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `prewarm detect`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Series file (`timestamp,value` or `index,value` CSV).
    #[arg(long, conflicts_with = "nab")]
    pub series: Option<PathBuf>,
    /// NAB directory (with `data/` and `labels/combined_windows.json`): score every detector.
    #[arg(long)]
    pub nab: Option<PathBuf>,
    /// Also write the results as JSON to this path.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// With --series: also draw the series with every anomaly marked, as SVG, to this path.
    #[arg(long, conflicts_with = "nab")]
    pub plot: Option<PathBuf>,
}

/// One anomaly in the report.
#[derive(Debug, Serialize)]
pub struct Found {
    /// Detector name.
    pub detector: String,
    /// Timestamp (or index) of the point.
    pub timestamp: String,
    /// Index of the point.
    pub index: usize,
    /// Observed value.
    pub value: f64,
    /// Expected value (NaN when the detector has none).
    pub expected: Option<f64>,
    /// Score in [0, 1].
    pub score: f64,
    /// Why.
    pub reason: String,
}

/// Score of one detector on the NAB corpus.
#[derive(Debug, Serialize)]
pub struct NabRow {
    /// Detector name.
    pub detector: String,
    /// Normalised NAB standard-profile score.
    pub score: f64,
    /// Best corpus-wide threshold.
    pub threshold: f64,
    /// Windows detected.
    pub tp: usize,
    /// False-positive points.
    pub fp: usize,
    /// Windows scored.
    pub windows: usize,
    /// Detector time per point, µs.
    pub us_per_point: f64,
}

/// CAD for values expected in `[lo, hi]`, with NAB's runner's rest period (a fifth of the
/// probationary part `warm`).
fn cad_in(lo: f64, hi: f64, warm: &[f64]) -> Box<dyn OnlineDetector> {
    Box::new(Cad::new(
        lo,
        hi,
        CadParams {
            rest: (warm.len() / 5).max(1),
            ..CadParams::default()
        },
    ))
}

/// The detectors, built for a series whose probationary part is `warm`: the three raw
/// detectors, NAB's windowed-Gaussian reference (it checks the scorer against the public
/// board), the three raw detectors behind the anomaly-likelihood post-processor, the
/// contextual anomaly detector (CAD), and the maximum of seasonal-likelihood and CAD. The
/// last two rows give CAD the min and max of the whole file (`file`), as NAB's runner gives
/// every detector on the public board: not known online, so they are reported separately.
fn detectors(warm: &[f64], file: &[f64]) -> Vec<Box<dyn OnlineDetector>> {
    let (lo, hi) = file
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let season = detect_season(warm, warm.len() / 2).unwrap_or(1);
    let lp = LikelihoodParams {
        learning: warm.len() / 2,
        ..LikelihoodParams::default()
    };
    let seas_lik = || -> Box<dyn OnlineDetector> {
        Box::new(Likelihood::new(
            Box::new(SeasonalMad::new(season, 256)),
            lp,
            "seasonal-likelihood",
        ))
    };
    vec![
        Box::new(ForecastMad::new(0.3, 256)),
        Box::new(SeasonalMad::new(season, 256)),
        Box::new(IsolationDetector::new()),
        Box::new(WindowedGaussian::new()),
        Box::new(Likelihood::new(
            Box::new(ForecastMad::new(0.3, 256)),
            lp,
            "mad-likelihood",
        )),
        seas_lik(),
        Box::new(Likelihood::new(
            Box::new(IsolationDetector::new()),
            lp,
            "isolation-likelihood",
        )),
        Box::new(Cad::for_warm(warm)),
        Box::new(Ensemble::max(
            vec![seas_lik(), Box::new(Cad::for_warm(warm))],
            "max(seas-lik,cad)",
        )),
        // an ensemble of one: CAD under its own row name
        Box::new(Ensemble::max(vec![cad_in(lo, hi, warm)], "cad[file-range]")),
        Box::new(Ensemble::max(
            vec![seas_lik(), cad_in(lo, hi, warm)],
            "max(seas-lik,cad[file-range])",
        )),
    ]
}

fn run_series(path: &Path, json: Option<&Path>, plot: Option<&Path>) -> anyhow::Result<()> {
    let s = read_csv(path)?;
    let y = &s.values;
    if y.len() < 16 {
        return Err(ExitError::data(format!(
            "{}: {} points is too short for anomaly detection (need 16)",
            s.name,
            y.len()
        )));
    }
    let warm = probation_len(y.len()).max(8);
    let mut found = Vec::new();
    let mut mad = prewarm_models::anomaly::MadDetector::new(256, 5.0);
    let mut level: Option<f64> = None;
    for (i, &v) in y.iter().enumerate() {
        let f = level.unwrap_or(v);
        if let Some(a) = mad.observe(v, f) {
            if i >= warm {
                found.push(Found {
                    detector: "mad-residual".into(),
                    timestamp: s.labels[i].clone(),
                    index: i,
                    value: v,
                    expected: Some(a.expected),
                    score: a.score,
                    reason: a.reason,
                });
            }
        }
        level = Some(f + 0.3 * (v - f));
    }
    let season = detect_season(y, y.len() / 2).unwrap_or(1);
    for a in seasonal_esd(y, season, 0.02, 0.05) {
        found.push(Found {
            detector: "seasonal-esd".into(),
            timestamp: s.labels[a.index].clone(),
            index: a.index,
            value: a.value,
            expected: Some(a.expected),
            score: a.score,
            reason: a.reason,
        });
    }
    // the isolation forest and the seasonal MAD behind the anomaly likelihood (the latter
    // the best single NAB detector): a point is reported when it is "red" (tail probability
    // of the recent surprise <= 1e-5, i.e. score >= 0.5) or outside the range seen so far.
    // The raw isolation score is not listed: on a seasonal series every peak and trough is
    // isolated by few cuts (610 of 10,320 points of NAB's nyc_taxi above 0.75).
    for (name, what) in [
        ("isolation-likelihood", "isolation scores"),
        ("seasonal-likelihood", "seasonal residuals"),
    ] {
        let mut det = detectors(&y[..warm.min(y.len())], y)
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| anyhow::anyhow!("{name} detector missing"))?;
        let scores = score_series(det.as_mut(), y);
        for (i, &sc) in scores.iter().enumerate().skip(warm) {
            if sc >= 0.5 {
                let reason = if sc >= 1.0 {
                    "outside the range of values seen so far by more than 5 % of it".to_string()
                } else {
                    format!(
                        "recent {what} have tail probability {:.1e} (anomaly likelihood)",
                        10f64.powf(-10.0 * sc)
                    )
                };
                found.push(Found {
                    detector: name.into(),
                    timestamp: s.labels[i].clone(),
                    index: i,
                    value: y[i],
                    expected: None,
                    score: sc,
                    reason,
                });
            }
        }
    }
    found.sort_by_key(|f| f.index);
    outln!(
        "{}: {} points, season {season}, {} anomalies",
        s.name,
        y.len(),
        found.len()
    );
    for f in &found {
        outln!(
            "{:<22} {:<20} value {:>12.3} score {:.3}  {}",
            f.timestamp,
            f.detector,
            f.value,
            f.score,
            f.reason
        );
    }
    if let Some(p) = plot {
        let marks: Vec<(usize, &str)> = found
            .iter()
            .map(|f| (f.index, f.detector.as_str()))
            .collect();
        crate::cmd::plots::anomalies(&s.name, y, &marks, p)?;
    }
    if let Some(p) = json {
        #[derive(Serialize)]
        struct Out<'a> {
            series: &'a str,
            points: usize,
            season: usize,
            anomalies: &'a [Found],
        }
        let text = serde_json::to_string_pretty(&Out {
            series: &s.name,
            points: y.len(),
            season,
            anomalies: &found,
        })?;
        std::fs::write(p, text)
            .map_err(|e| ExitError::config(format!("--json {}: cannot write: {e}", p.display())))?;
    }
    Ok(())
}

/// Loads the NAB corpus: (file key, values, windows as index ranges).
fn load_nab(dir: &Path) -> anyhow::Result<Vec<(String, Vec<f64>, LabelledSeries)>> {
    let labels_path = dir.join("labels").join("combined_windows.json");
    let lp = labels_path.display().to_string();
    let text = std::fs::read_to_string(&labels_path)
        .map_err(|e| ExitError::data(format!("{lp}: cannot read: {e}")))?;
    let windows: BTreeMap<String, Vec<Vec<String>>> = serde_json::from_str(&text)
        .map_err(|e| ExitError::data(format!("{lp}:{}: {e}", e.line())))?;
    let mut out = Vec::new();
    for (key, wins) in windows {
        let path = dir.join("data").join(&key);
        let s = read_csv_with(&path, true)?;
        let ts: Vec<Option<i64>> = s.labels.iter().map(|l| parse_timestamp(l)).collect();
        let find = |w: &str| -> anyhow::Result<usize> {
            let t = parse_timestamp(w).ok_or_else(|| {
                ExitError::data(format!("{lp}: bad window timestamp {w:?} for {key}"))
            })?;
            ts.iter().position(|x| *x == Some(t)).ok_or_else(|| {
                ExitError::data(format!(
                    "{lp}: window bound {w:?} is not a timestamp of {key}"
                ))
            })
        };
        let mut idx = Vec::new();
        for w in &wins {
            if w.len() != 2 {
                return Err(ExitError::data(format!(
                    "{lp}: window of {key} is not [start, end]"
                )));
            }
            idx.push((find(&w[0])?, find(&w[1])?));
        }
        let len = s.values.len();
        out.push((key, s.values, LabelledSeries { len, windows: idx }));
    }
    Ok(out)
}

fn run_nab(dir: &Path, json: Option<&Path>) -> anyhow::Result<()> {
    let cancel = crate::cmd::cancel_flag();
    let corpus = load_nab(dir)?;
    let files: Vec<LabelledSeries> = corpus.iter().map(|c| c.2.clone()).collect();
    let names: Vec<&'static str> = detectors(&[0.0; 4], &[0.0; 4])
        .iter()
        .map(|d| d.name())
        .collect();
    let total_points: usize = corpus.iter().map(|c| c.1.len()).sum();
    let bar = crate::cmd::progress_bar((names.len() * corpus.len()) as u64, "detector-files");
    let mut rows = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let mut scores = Vec::new();
        let t0 = Instant::now();
        for (_, y, _) in &corpus {
            if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                return Err(ExitError::interrupted());
            }
            let warm = &y[..probation_len(y.len()).max(4).min(y.len())];
            let mut dets = detectors(warm, y);
            let det = &mut dets[k];
            scores.push(score_series(det.as_mut(), y));
            if let Some(b) = &bar {
                b.set_message(*name);
                b.inc(1);
            }
        }
        let us = t0.elapsed().as_secs_f64() * 1e6 / total_points.max(1) as f64;
        let r = score_corpus(&files, &scores, &Profile::STANDARD);
        rows.push(NabRow {
            detector: name.to_string(),
            score: r.normalized,
            threshold: r.threshold,
            tp: r.tp,
            fp: r.fp,
            windows: r.windows,
            us_per_point: us,
        });
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    outln!(
        "NAB standard profile over {} files ({} points, {} windows)",
        corpus.len(),
        total_points,
        rows.first().map_or(0, |r| r.windows)
    );
    outln!(
        "{:<30} {:>8} {:>10} {:>5} {:>6} {:>10}",
        "detector",
        "score",
        "threshold",
        "tp",
        "fp",
        "us/point"
    );
    for r in &rows {
        outln!(
            "{:<30} {:>8.2} {:>10.4} {:>5} {:>6} {:>10.3}",
            r.detector,
            r.score,
            r.threshold,
            r.tp,
            r.fp,
            r.us_per_point
        );
    }
    if let Some(p) = json {
        #[derive(Serialize)]
        struct Out<'a> {
            profile: &'a str,
            files: usize,
            points: usize,
            detectors: &'a [NabRow],
        }
        let text = serde_json::to_string_pretty(&Out {
            profile: "standard",
            files: corpus.len(),
            points: total_points,
            detectors: &rows,
        })?;
        std::fs::write(p, text)
            .map_err(|e| ExitError::config(format!("--json {}: cannot write: {e}", p.display())))?;
    }
    Ok(())
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    match (&args.series, &args.nab) {
        (Some(s), None) => run_series(s, args.json.as_deref(), args.plot.as_deref()),
        (None, Some(d)) => run_nab(d, args.json.as_deref()),
        _ => Err(ExitError::config(
            "give exactly one of --series FILE or --nab DIR",
        )),
    }
}
