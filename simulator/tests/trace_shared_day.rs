//! Reads the full shared Azure day (when present) and checks its published totals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use prewarm_simulator::trace::azure::{AzureLayout, AzureTrace};
use prewarm_simulator::trace::{count_trace, TraceSource};
use std::path::Path;

fn shared_day() -> Option<&'static Path> {
    let p = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/azure2019-day"
    ));
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: {} not present", p.display());
        None
    }
}

#[test]
fn shared_day_has_published_totals() {
    let Some(dir) = shared_day() else { return };
    let t0 = std::time::Instant::now();
    let mut t = AzureTrace::open(dir, None).unwrap();
    assert_eq!(t.layout(), AzureLayout::OneDay);
    let c = count_trace(&mut t).unwrap();
    eprintln!("shared day read in {:?}", t0.elapsed());
    assert_eq!(c.functions, 675);
    assert_eq!(c.invocations, 451_082);
    assert_eq!(c.minutes, 1440);
    assert_eq!(c.days, 1);
}

#[test]
fn shared_day_metadata_matches_files() {
    let Some(dir) = shared_day() else { return };
    let mut t = AzureTrace::open(dir, None).unwrap();
    let day = t.next_day().unwrap().unwrap();
    assert!(t.next_day().unwrap().is_none());
    // First data row of each file (rows aligned; each function is its own app, so the memory
    // split divides by 1): durations 224 ms constant, app memory 188 MB.
    let f0 = &day.new_functions[0];
    assert_eq!(
        f0.id,
        "1779fd3337dd353e424d808d9190aff8f09e46a8cbbe6469079b2d7f0e246e37"
    );
    assert_eq!(f0.trigger, None);
    assert_eq!(f0.memory_mb, 188.0);
    assert_eq!(f0.durations.pct, [224.0; 7]);
    let f1 = &day.new_functions[1];
    assert_eq!(f1.memory_mb, 133.0);
    assert_eq!(
        f1.durations.pct,
        [142356.0, 142356.0, 149919.0, 152465.0, 156001.0, 179611.0, 179611.0]
    );
    for f in &day.new_functions {
        assert!(f.durations.pct.windows(2).all(|w| w[0] <= w[1]));
    }
    for r in &day.rows {
        assert!(r.bins.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(r.bins.iter().all(|&(m, n)| m < 1440 && n > 0));
    }
    assert!(day.rows.windows(2).all(|w| w[0].function < w[1].function));
}

#[test]
fn shipped_sample_reads() {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/azure2019-sample"
    ));
    let mut t = AzureTrace::open(dir, None).unwrap();
    assert_eq!(t.layout(), AzureLayout::OneDay);
    let c = count_trace(&mut t).unwrap();
    // Hand-counted with awk over the 200 data rows (see data/azure2019-sample/README.md).
    assert_eq!(c.functions, 200);
    assert_eq!(c.invoked_functions, 200);
    assert_eq!(c.invocations, 149_836);
    assert_eq!(c.minutes, 1440);
}
