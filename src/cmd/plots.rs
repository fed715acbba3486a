//! SVG plots of one series for `prewarm backtest` (the selected model's forecasts and
//! intervals at every origin against the actuals) and `prewarm detect` (the anomalies found).

use crate::cmd::ExitError;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use prewarm_models::select::OriginForecast;
// the simulator's palette: the series first, the forecast second, then one per detector
use prewarm_simulator::plot::COLORS;
use std::path::Path;

/// The `--plot` error for `path`.
fn plot_err(path: &Path, e: impl std::fmt::Display) -> anyhow::Error {
    ExitError::config(format!("--plot {}: cannot draw: {e}", path.display()))
}

/// `[lo, hi]` of the finite values, widened by 5 % (and made non-empty).
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-9 * hi.abs().max(1.0));
    (lo - pad, hi + pad)
}

/// The frame of a series plot: title, axis ranges and names.
struct Axes {
    caption: String,
    x: (f64, f64),
    y: (f64, f64),
    x_desc: &'static str,
    y_desc: &'static str,
}

/// The chart the series plots draw on.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws an SVG at `path`: the frame of `axes`, whatever `draw` adds, and the legend of the
/// labelled series in the upper left.
fn draw_chart(
    path: &Path,
    axes: Axes,
    draw: impl FnOnce(&mut Chart<'_, '_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(axes.caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(axes.x.0..axes.x.1, axes.y.0..axes.y.1)
        .map_err(|e| plot_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc(axes.x_desc)
        .y_desc(axes.y_desc)
        .disable_x_mesh()
        .light_line_style(WHITE)
        .draw()
        .map_err(|e| plot_err(path, e))?;
    draw(&mut chart)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_err(path, e))?;
    root.present().map_err(|e| plot_err(path, e))?;
    Ok(())
}

/// The band between `lo` and `hi` over the bins from `origin`, as a closed polygon.
fn band(origin: usize, lo: &[f64], hi: &[f64]) -> Vec<(f64, f64)> {
    let x = |i: usize| (origin + i) as f64;
    let upper = hi.iter().enumerate().map(|(i, &v)| (x(i), v));
    let lower = lo.iter().enumerate().rev().map(|(i, &v)| (x(i), v));
    upper.chain(lower).collect()
}

/// Draws the actuals of `y` from a little before the first origin, and at every origin of
/// `forecasts` the point forecasts of `model` that MASE scores (the medians) with their 80 % and
/// 95 % bands (one polygon each per origin), with the training end marked.
pub fn backtest(
    name: &str,
    model: &str,
    y: &[f64],
    forecasts: &[OriginForecast],
    path: &Path,
) -> anyhow::Result<()> {
    let train_end = forecasts.first().map_or(y.len(), |f| f.origin);
    let start = train_end.saturating_sub((y.len() - train_end).max(1) / 2);
    let (lo, hi) = padded_range(
        y[start..].iter().copied().chain(
            forecasts
                .iter()
                .flat_map(|f| f.lo95.iter().chain(&f.hi95).copied()),
        ),
    );
    let axes = Axes {
        caption: format!("{name}: {model}, rolling-origin forecasts"),
        x: (start as f64, y.len() as f64),
        y: (lo, hi),
        x_desc: "bin",
        y_desc: "events per bin",
    };
    draw_chart(path, axes, |chart| {
        let fc = COLORS[1];
        type Bounds = fn(&OriginForecast) -> (&[f64], &[f64]);
        let bands: [(&str, f64, Bounds); 2] = [
            ("95 % interval", 0.15, |f| (&f.lo95, &f.hi95)),
            ("80 % interval", 0.3, |f| (&f.lo80, &f.hi80)),
        ];
        for (label, opacity, bounds) in bands {
            let style = fc.mix(opacity).filled();
            chart
                .draw_series(forecasts.iter().map(|f| {
                    let (lo, hi) = bounds(f);
                    Polygon::new(band(f.origin, lo, hi), style)
                }))
                .map_err(|e| plot_err(path, e))?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], style));
        }
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(train_end as f64, lo), (train_end as f64, hi)],
                BLACK.mix(0.4),
            )))
            .map_err(|e| plot_err(path, e))?
            .label("training end (first origin)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BLACK.mix(0.4)));
        chart
            .draw_series(LineSeries::new(
                y.iter()
                    .enumerate()
                    .skip(start)
                    .map(|(i, &v)| (i as f64, v)),
                COLORS[0].stroke_width(1),
            ))
            .map_err(|e| plot_err(path, e))?
            .label("actual")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], COLORS[0]));
        chart
            .draw_series(forecasts.iter().map(|f| {
                PathElement::new(
                    f.median
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| ((f.origin + i) as f64, v))
                        .collect::<Vec<_>>(),
                    fc.stroke_width(2),
                )
            }))
            .map_err(|e| plot_err(path, e))?
            .label(format!("{model} forecast (median)"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], fc.stroke_width(2)));
        Ok(())
    })
}

/// Draws `y` with every anomaly of `found` (index, detector) as a circle in its detector's
/// colour, one legend entry per detector.
pub fn anomalies(
    name: &str,
    y: &[f64],
    found: &[(usize, &str)],
    path: &Path,
) -> anyhow::Result<()> {
    let (lo, hi) = padded_range(y.iter().copied());
    let axes = Axes {
        caption: format!("{name}: anomalies"),
        x: (0.0, y.len().max(1) as f64),
        y: (lo, hi),
        x_desc: "point",
        y_desc: "value",
    };
    draw_chart(path, axes, |chart| {
        chart
            .draw_series(LineSeries::new(
                y.iter().enumerate().map(|(i, &v)| (i as f64, v)),
                COLORS[0].stroke_width(1),
            ))
            .map_err(|e| plot_err(path, e))?
            .label("series")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], COLORS[0]));
        let mut detectors: Vec<&str> = found.iter().map(|f| f.1).collect();
        detectors.sort_unstable();
        detectors.dedup();
        for (k, det) in detectors.iter().enumerate() {
            let c = COLORS[1 + k % (COLORS.len() - 1)];
            chart
                .draw_series(
                    found
                        .iter()
                        .filter(|f| f.1 == *det && f.0 < y.len())
                        .map(|f| Circle::new((f.0 as f64, y[f.0]), 4, c.stroke_width(2))),
                )
                .map_err(|e| plot_err(path, e))?
                .label(*det)
                .legend(move |(x, y)| Circle::new((x + 7, y), 4, c.stroke_width(2)));
        }
        Ok(())
    })
}
