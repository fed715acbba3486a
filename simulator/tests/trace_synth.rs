//! Synthetic traces: written in the 14-day Azure layout, read back by the Azure reader,

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! deterministic per seed, with the promised shapes.

use prewarm_simulator::synth::{write_synth_trace, SynthConfig, SynthError};
use prewarm_simulator::trace::azure::{AzureLayout, AzureTrace};
use prewarm_simulator::trace::{count_trace, TraceSource};
use std::collections::HashMap;
use std::path::Path;

fn synth(
    dir: &Path,
    functions: u32,
    days: u32,
    seed: u64,
) -> prewarm_simulator::synth::SynthSummary {
    let cfg = SynthConfig {
        functions,
        days,
        seed,
        ..SynthConfig::default()
    };
    write_synth_trace(&cfg, dir, &mut |_| {}).unwrap()
}

#[test]
fn reads_back_with_the_azure_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let s = synth(tmp.path(), 80, 2, 3);
    assert_eq!(s.files.len(), 6);
    for name in [
        "invocations_per_function_md.anon.d01.csv",
        "function_durations_percentiles.anon.d02.csv",
        "app_memory_percentiles.anon.d02.csv",
    ] {
        assert!(tmp.path().join(name).is_file(), "{name}");
    }
    let on_disk: u64 = s
        .files
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(on_disk, s.bytes);
    let mut t = AzureTrace::open(tmp.path(), None).unwrap();
    assert_eq!(t.layout(), AzureLayout::MultiDay);
    assert_eq!(t.file_days(), vec![1, 2]);
    let c = count_trace(&mut t).unwrap();
    assert_eq!(c.invocations, s.invocations);
    assert_eq!(c.functions, u64::from(s.invoked_functions));
    assert_eq!(c.minutes, 2 * 1440);
    assert!(s.invocations > 0);
}

#[test]
fn header_has_the_original_column_order() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path(), 5, 1, 1);
    let text = std::fs::read_to_string(tmp.path().join("invocations_per_function_md.anon.d01.csv"))
        .unwrap();
    let header = text.lines().next().unwrap();
    assert!(header.starts_with("HashOwner,HashApp,HashFunction,Trigger,1,2,3,"));
    assert!(header.ends_with(",1439,1440"));
    for line in text.lines().skip(1) {
        assert_eq!(line.split(',').count(), 4 + 1440);
    }
}

#[test]
fn deterministic_per_seed() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    synth(a.path(), 40, 1, 9);
    synth(b.path(), 40, 1, 9);
    synth(c.path(), 40, 1, 10);
    for name in [
        "invocations_per_function_md.anon.d01.csv",
        "function_durations_percentiles.anon.d01.csv",
        "app_memory_percentiles.anon.d01.csv",
    ] {
        let x = std::fs::read(a.path().join(name)).unwrap();
        assert_eq!(x, std::fs::read(b.path().join(name)).unwrap(), "{name}");
        assert_ne!(x, std::fs::read(c.path().join(name)).unwrap(), "{name}");
    }
}

#[test]
fn target_invocations_is_met_roughly() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        functions: 150,
        days: 1,
        seed: 5,
        target_invocations: Some(300_000),
        ..SynthConfig::default()
    };
    let s = write_synth_trace(&cfg, tmp.path(), &mut |_| {}).unwrap();
    let ratio = s.invocations as f64 / 300_000.0;
    assert!((0.85..1.15).contains(&ratio), "{}", s.invocations);
}

#[test]
fn shapes_are_heavy_tailed_diurnal_and_periodic() {
    let tmp = tempfile::tempdir().unwrap();
    let s = synth(tmp.path(), 400, 1, 11);
    let mut t = AzureTrace::open(tmp.path(), None).unwrap();
    let day = t.next_day().unwrap().unwrap();
    let mut totals: Vec<u64> = Vec::new();
    let mut peak = 0u32;
    let mut by_hour = [0u64; 24];
    for r in &day.rows {
        totals.push(r.bins.iter().map(|&(_, n)| u64::from(n)).sum());
        for &(m, n) in &r.bins {
            peak = peak.max(n);
            by_hour[(m / 60) as usize] += u64::from(n);
        }
    }
    // Most functions run less than once a minute on average; a few run thousands a minute.
    let sparse = totals.iter().filter(|&&n| n < 1440).count();
    assert!(
        sparse * 10 >= totals.len() * 6,
        "{sparse} of {}",
        totals.len()
    );
    assert!(peak >= 1000, "peak {peak}");
    // The most popular function carries a large share of the day.
    let max = *totals.iter().max().unwrap();
    assert!(max * 5 >= s.invocations, "{max} of {}", s.invocations);
    // Daily cycle: the afternoon is busier than the night.
    let afternoon: u64 = by_hour[12..17].iter().sum();
    let night: u64 = by_hour[0..5].iter().sum();
    assert!(afternoon > night * 3 / 2, "{afternoon} vs {night}");
    // Timer functions: some exact ones fire on a fixed period all day.
    let periodic = day
        .rows
        .iter()
        .filter(|r| {
            let f = &day.new_functions[r.function as usize];
            if f.trigger.as_deref() != Some("timer") || r.bins.len() < 20 {
                return false;
            }
            let gaps: Vec<u32> = r.bins.windows(2).map(|w| w[1].0 - w[0].0).collect();
            gaps.iter().all(|&g| g == gaps[0]) && [5, 10, 15, 30, 60].contains(&gaps[0])
        })
        .count();
    assert!(periodic >= 3, "{periodic}");
}

#[test]
fn app_memory_is_split_across_the_apps_functions() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path(), 200, 1, 2);
    let mem =
        std::fs::read_to_string(tmp.path().join("app_memory_percentiles.anon.d01.csv")).unwrap();
    let mut app_mb: HashMap<(String, String), f64> = HashMap::new();
    for line in mem.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        app_mb.insert((f[0].into(), f[1].into()), f[3].parse().unwrap());
    }
    let mut t = AzureTrace::open(tmp.path(), None).unwrap();
    let day = t.next_day().unwrap().unwrap();
    let mut sum: HashMap<(String, String), (f64, u32)> = HashMap::new();
    for f in &day.new_functions {
        let e = sum.entry((f.owner.clone(), f.app.clone())).or_default();
        e.0 += f.memory_mb;
        e.1 += 1;
    }
    assert!(sum.values().any(|&(_, n)| n > 1), "no multi-function app");
    for (k, (mb, _)) in &sum {
        assert!((mb - app_mb[k]).abs() < 1e-6, "{k:?}");
    }
}

#[test]
fn bad_configs_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    for cfg in [
        SynthConfig {
            functions: 0,
            ..SynthConfig::default()
        },
        SynthConfig {
            days: 0,
            ..SynthConfig::default()
        },
        SynthConfig {
            peak_rate: -1.0,
            ..SynthConfig::default()
        },
    ] {
        assert!(matches!(
            write_synth_trace(&cfg, tmp.path(), &mut |_| {}),
            Err(SynthError::Config(_))
        ));
    }
}
