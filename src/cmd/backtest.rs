//! `prewarm backtest`: rolling-origin backtest of every forecaster on one series (MASE, RMSE,
//! interval coverage, fit time) and the model the selector would choose.

use crate::cmd::series_io::{read_azure, read_csv, Series};
use crate::cmd::ExitError;
use prewarm_models::select::{
    candidates, mase_scale, origin_forecasts, replay_point_forecasts, resolve_season,
    rolling_origin, select_from,
};
use prewarm_models::ModelError;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `prewarm backtest`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Series file: CSV (`timestamp,value` or `index,value`) or, with `--format azure`, the
    /// Azure `invocations_per_function.csv` (or its directory).
    #[arg(long)]
    pub series: PathBuf,
    /// Input format: `csv` or `azure`.
    #[arg(long, default_value = "csv")]
    pub format: String,
    /// Azure HashFunction to read, or `aggregate` for the sum of all functions.
    #[arg(long)]
    pub function: Option<String>,
    /// Forecast horizon H (points per origin; origins are H points apart).
    #[arg(long, default_value_t = 10)]
    pub horizon: usize,
    /// Season the models use: `auto` (detected) or a number of points.
    #[arg(long, default_value = "auto")]
    pub season: String,
    /// Season M of the MASE scale (mean |y[t] - y[t-M]| over the first 80 %).
    #[arg(long, default_value_t = 1)]
    pub mase_season: usize,
    /// Also write the results as JSON to this path.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also draw the selected model's forecasts and 80 % / 95 % intervals at every origin
    /// against the actuals, as SVG, to this path.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// One model's row of the report.
#[derive(Debug, Serialize)]
pub struct Row {
    /// Model name.
    pub model: String,
    /// Mean absolute scaled error of the median forecasts (the point forecasts under
    /// absolute error).
    pub mase: f64,
    /// Mean absolute scaled error of the mean forecasts (what tools that score their mean
    /// forecasts report).
    pub mase_mean: f64,
    /// Root mean squared error of the mean forecasts.
    pub rmse: f64,
    /// Coverage of the central 80 % interval.
    pub coverage80: f64,
    /// Coverage of the central 95 % interval.
    pub coverage95: f64,
    /// Share strictly inside the central 80 % interval (ends excluded): on integer counts a
    /// calibrated interval has 0.8 between this and `coverage80`.
    pub coverage80_open: f64,
    /// Share strictly inside the central 95 % interval (ends excluded).
    pub coverage95_open: f64,
    /// Where the intervals came from: `conformal` (not counts), `count` (Poisson / negative
    /// binomial where over-dispersed) or `count-rejected` (counts whose count distribution
    /// failed on the training residuals, so conformal).
    pub intervals: String,
    /// Wall time per origin of the point-only fit, the point forecasts and the updates, µs:
    /// the interval calibration and the intervals are left out, as point-forecast tools
    /// compute none (the fastest of up to 200 repeats within 20 ms).
    pub fit_us_per_origin: f64,
    /// Wall time per origin of the whole scored replay, µs: the full fit with its interval
    /// calibration, the point forecasts, the 80 % and 95 % intervals and the updates (timed
    /// as `fit_us_per_origin`).
    pub interval_us_per_origin: f64,
}

/// The JSON report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Series name.
    pub series: String,
    /// Points in the series.
    pub points: usize,
    /// Horizon.
    pub horizon: usize,
    /// Season the models used.
    pub season: usize,
    /// One row per model.
    pub models: Vec<Row>,
    /// Model the selector picks on the training part.
    pub selected: String,
}

fn load(args: &Args) -> anyhow::Result<Series> {
    match args.format.as_str() {
        "csv" => {
            if args.function.is_some() {
                return Err(ExitError::config(
                    "--function only applies to --format azure",
                ));
            }
            read_csv(&args.series)
        }
        "azure" => {
            let f = args.function.as_deref().ok_or_else(|| {
                ExitError::config(
                    "--format azure needs --function ID (a HashFunction, or `aggregate`)",
                )
            })?;
            read_azure(&args.series, f)
        }
        other => Err(ExitError::config(format!(
            "--format {other:?}: expected `csv` or `azure`"
        ))),
    }
}

/// Parses `--season`.
fn parse_season(s: &str) -> anyhow::Result<Option<usize>> {
    if s == "auto" {
        return Ok(None);
    }
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(Some(n)),
        _ => Err(ExitError::config(format!(
            "--season {s:?}: expected `auto` or a positive number of points"
        ))),
    }
}

/// Runs the backtest and builds the report.
pub fn backtest(args: &Args) -> anyhow::Result<Report> {
    if args.horizon == 0 {
        return Err(ExitError::config("--horizon must be at least 1"));
    }
    if args.mase_season == 0 {
        return Err(ExitError::config("--mase-season must be at least 1"));
    }
    let season = parse_season(&args.season)?;
    let s = load(args)?;
    let y = &s.values;
    let n = y.len();
    let train_end = n - n / 5;
    let last_line = s.lines.last().copied().unwrap_or(0);
    let where_ = if last_line > 0 {
        format!("{} (lines {}..{})", s.name, s.lines[0], last_line)
    } else {
        s.name.clone()
    };
    let m = resolve_season(&y[..train_end], season);
    let need = (2 * m).max(m + 20).max(30);
    if train_end < need || n / 5 == 0 {
        return Err(ExitError::data(format!(
            "{where_}: {n} points is too short for season {m}: the first 80 % ({train_end} points) must hold at least {need}"
        )));
    }
    let scale = mase_scale(&y[..train_end], args.mase_season).ok_or_else(|| {
        ExitError::data(format!(
            "{where_}: the first 80 % is constant at lag {}: MASE is undefined",
            args.mase_season
        ))
    })?;
    let mut rows = Vec::new();
    for spec in candidates(m, true) {
        let started = Instant::now();
        match rolling_origin(y, &spec, train_end, args.horizon, scale) {
            Ok(r) => {
                let origins = r.origins.max(1) as f64;
                // the scored run is the first of the timed ones
                let first = started.elapsed().as_secs_f64() * 1e6;
                let interval_us = fastest_us(first, || {
                    rolling_origin(y, &spec, train_end, args.horizon, scale)
                        .ok()
                        .map(|r| r.mase)
                }) / origins;
                let us = fastest_us(f64::INFINITY, || {
                    replay_point_forecasts(y, &spec, train_end, args.horizon).ok()
                }) / origins;
                rows.push(Row {
                    model: r.model,
                    mase: r.mase,
                    mase_mean: r.mase_mean,
                    rmse: r.rmse,
                    coverage80: r.coverage80,
                    coverage95: r.coverage95,
                    coverage80_open: r.coverage80_open,
                    coverage95_open: r.coverage95_open,
                    intervals: r.intervals.map_or("none", |f| f.name()).to_string(),
                    fit_us_per_origin: us,
                    interval_us_per_origin: interval_us,
                });
            }
            Err(ModelError::TooShort { got, need }) => {
                return Err(ExitError::data(format!(
                    "{where_}: {got} training points is too short for {} with season {m} (needs {need})",
                    spec.name()
                )))
            }
            Err(e) => eprintln!("warning: {} failed on {}: {e}", spec.name(), s.name),
        }
    }
    let specs = candidates(m, true);
    let (chosen, _) = select_from(&y[..train_end], &specs, args.horizon)
        .map_err(|e| ExitError::data(format!("{where_}: no model could be selected: {e}")))?;
    use prewarm_models::forecast::FittedForecaster;
    if let Some(path) = &args.plot {
        let spec = specs
            .iter()
            .find(|s| s.name() == chosen.name())
            .ok_or_else(|| anyhow::anyhow!("selected {} is not a candidate", chosen.name()))?;
        let forecasts = origin_forecasts(y, spec, train_end, args.horizon)
            .map_err(|e| ExitError::data(format!("{where_}: {}: {e}", spec.name())))?;
        crate::cmd::plots::backtest(&s.name, spec.name(), y, &forecasts, path)?;
    }
    Ok(Report {
        series: s.name.clone(),
        points: n,
        horizon: args.horizon,
        season: m,
        models: rows,
        selected: chosen.name().to_string(),
    })
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let report = backtest(&args)?;
    outln!(
        "{}: {} points, horizon {}, season {}, MASE season {}",
        report.series,
        report.points,
        report.horizon,
        report.season,
        args.mase_season
    );
    outln!(
        "{:<16} {:>9} {:>10} {:>12} {:>13} {:>13} {:>14} {:>14}  intervals",
        "model",
        "MASE",
        "(of mean)",
        "RMSE",
        "cov80 (open)",
        "cov95 (open)",
        "us/origin",
        "+intervals"
    );
    for r in &report.models {
        outln!(
            "{:<16} {:>9.4} {:>10.4} {:>12.4} {:>5.3} ({:.3}) {:>5.3} ({:.3}) {:>14.1} {:>14.1}  {}",
            r.model,
            r.mase,
            r.mase_mean,
            r.rmse,
            r.coverage80,
            r.coverage80_open,
            r.coverage95,
            r.coverage95_open,
            r.fit_us_per_origin,
            r.interval_us_per_origin,
            r.intervals
        );
    }
    outln!("selected: {}", report.selected);
    if let Some(p) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(p, text)
            .map_err(|e| ExitError::config(format!("--json {}: cannot write: {e}", p.display())))?;
    }
    Ok(())
}

/// Wall time in µs of `run`: the fastest of `first` (a timing already taken, or infinity) and
/// up to 200 repeats within about 20 ms, as `timeit` reports, since one replay of a cheap model
/// takes tens of µs and a single timing is mostly scheduler noise (20 repeats of a 13 µs
/// replay were measured to leave it at twice its warm time). A run that already took over
/// 20 ms is not repeated.
fn fastest_us<T>(first: f64, mut run: impl FnMut() -> T) -> f64 {
    let mut best = first;
    let mut spent = if first.is_finite() { first } else { 0.0 };
    for _ in 0..200 {
        if spent > 20_000.0 {
            break;
        }
        let t0 = Instant::now();
        std::hint::black_box(run());
        let us = t0.elapsed().as_secs_f64() * 1e6;
        best = best.min(us);
        spent += us;
    }
    best
}
