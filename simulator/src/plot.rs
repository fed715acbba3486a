//! SVG plots of simulation results: policies on cold-start ratio vs wasted memory (with Pareto
//! sweep curves), and one function's timeline under each policy.

use crate::engine::Timeline;
use crate::report::{PolicyResult, Report};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// A plot could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("plot {path}: {message}")]
pub struct PlotError {
    /// Output file.
    pub path: String,
    /// What failed.
    pub message: String,
}

fn err(path: &Path, e: impl std::fmt::Display) -> PlotError {
    PlotError {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The plots' palette (matplotlib's first eight), shared with the CLI's series plots.
pub const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// The family of a policy label (`fixed:20m` -> `fixed`).
fn family(label: &str) -> &str {
    label.split(':').next().unwrap_or(label)
}

/// Draws every policy as a point on (wasted memory GB·s, cold-start %), and each sweep family
/// as a line through its points.
pub fn pareto(report: &Report, path: &Path) -> Result<(), PlotError> {
    let all: Vec<&PolicyResult> = report.results.iter().chain(&report.sweep).collect();
    if all.is_empty() {
        return Err(err(path, "no results to plot"));
    }
    let max_x = all
        .iter()
        .map(|r| r.wasted_memory_gb_s)
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.08;
    let max_y = all
        .iter()
        .map(|r| 100.0 * r.cold_start_ratio)
        .fold(0.0f64, f64::max)
        .max(0.1)
        * 1.1;
    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "cold starts vs wasted memory ({} functions, {} invocations)",
                report.trace.functions, report.trace.invocations
            ),
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..max_x, 0.0..max_y)
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("wasted memory (GB·s)")
        .y_desc("cold starts (% of invocations)")
        .draw()
        .map_err(|e| err(path, e))?;

    let mut families: BTreeMap<&str, Vec<&PolicyResult>> = BTreeMap::new();
    for r in &report.sweep {
        families.entry(family(&r.policy)).or_default().push(r);
    }
    let mut color_of: BTreeMap<&str, RGBColor> = BTreeMap::new();
    for r in &all {
        let n = color_of.len();
        color_of
            .entry(family(&r.policy))
            .or_insert(COLORS[n % COLORS.len()]);
    }
    for (fam, mut rows) in families {
        let c = color_of.get(fam).copied().unwrap_or(BLACK);
        rows.sort_by(|a, b| a.wasted_memory_gb_s.total_cmp(&b.wasted_memory_gb_s));
        chart
            .draw_series(LineSeries::new(
                rows.iter()
                    .map(|r| (r.wasted_memory_gb_s, 100.0 * r.cold_start_ratio)),
                c.stroke_width(2),
            ))
            .map_err(|e| err(path, e))?
            .label(format!("{fam} sweep"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
        chart
            .draw_series(rows.iter().map(|r| {
                Circle::new(
                    (r.wasted_memory_gb_s, 100.0 * r.cold_start_ratio),
                    3,
                    c.filled(),
                )
            }))
            .map_err(|e| err(path, e))?;
    }
    for r in &report.results {
        let c = color_of.get(family(&r.policy)).copied().unwrap_or(BLACK);
        let p = (r.wasted_memory_gb_s, 100.0 * r.cold_start_ratio);
        chart
            .draw_series(std::iter::once(
                EmptyElement::at(p)
                    + Cross::new((0, 0), 7, c.stroke_width(3))
                    + Text::new(r.policy.clone(), (8, -14), ("sans-serif", 14)),
            ))
            .map_err(|e| err(path, e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))?;
    Ok(())
}

/// Draws one function's timeline under each policy: arrivals per minute, instances loaded and
/// cold starts, one panel per policy.
pub fn timeline(
    function: &str,
    timelines: &[(String, Timeline)],
    path: &Path,
) -> Result<(), PlotError> {
    if timelines.is_empty() {
        return Err(err(path, "no timeline recorded"));
    }
    let height = 260 * timelines.len() as u32 + 40;
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let root = root
        .titled(&format!("function {function}"), ("sans-serif", 18))
        .map_err(|e| err(path, e))?;
    let panels = root.split_evenly((timelines.len(), 1));
    let max_minute = timelines
        .iter()
        .flat_map(|(_, t)| t.minutes.iter().map(|m| m.minute))
        .max()
        .unwrap_or(0)
        + 1;
    for ((label, tl), area) in timelines.iter().zip(panels.iter()) {
        let max_y = tl
            .minutes
            .iter()
            .map(|m| m.arrivals.max(m.max_loaded))
            .max()
            .unwrap_or(1)
            .max(1) as f64
            * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(label, ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(0u32..max_minute, 0.0..max_y)
            .map_err(|e| err(path, e))?;
        chart
            .configure_mesh()
            .x_desc("minute")
            .disable_x_mesh()
            .draw()
            .map_err(|e| err(path, e))?;
        chart
            .draw_series(tl.minutes.iter().filter(|m| m.arrivals > 0).map(|m| {
                Rectangle::new(
                    [(m.minute, 0.0), (m.minute + 1, m.arrivals as f64)],
                    COLORS[0].mix(0.5).filled(),
                )
            }))
            .map_err(|e| err(path, e))?
            .label("arrivals / min")
            .legend(|(x, y)| Rectangle::new([(x, y - 4), (x + 12, y + 4)], COLORS[0].filled()));
        chart
            .draw_series(LineSeries::new(
                tl.minutes.iter().map(|m| (m.minute, m.max_loaded as f64)),
                COLORS[2].stroke_width(2),
            ))
            .map_err(|e| err(path, e))?
            .label("max instances loaded")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], COLORS[2]));
        chart
            .draw_series(
                tl.minutes
                    .iter()
                    .filter(|m| m.cold_starts > 0)
                    .map(|m| Cross::new((m.minute, m.cold_starts as f64), 4, COLORS[3])),
            )
            .map_err(|e| err(path, e))?
            .label("cold starts / min")
            .legend(|(x, y)| Cross::new((x + 6, y), 4, COLORS[3]));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(path, e))?;
    }
    root.present().map_err(|e| err(path, e))?;
    Ok(())
}
