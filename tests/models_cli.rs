//! End-to-end checks of `prewarm backtest` and `prewarm detect`: the JSON contract on real
//! data, and clear exit-2 / exit-64 errors naming the file and line on bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_prewarm"))
}

fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel);
    p.exists().then_some(p)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn backtest_writes_the_json_contract_on_nab_taxi() {
    let Some(series) = shared("nab/data/realKnownCause/nyc_taxi.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = bin()
        .args([
            "backtest",
            "--horizon",
            "12",
            "--season",
            "48",
            "--mase-season",
            "48",
            "--series",
        ])
        .arg(&series)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["points"], 10320);
    assert_eq!(v["horizon"], 12);
    assert_eq!(v["season"], 48);
    let models = v["models"].as_array().unwrap();
    let names: Vec<&str> = models
        .iter()
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"seasonal-naive") && names.contains(&"ets"),
        "{names:?}"
    );
    for m in models {
        for k in [
            "mase",
            "mase_mean",
            "rmse",
            "coverage80",
            "coverage95",
            "coverage80_open",
            "coverage95_open",
            "fit_us_per_origin",
            "interval_us_per_origin",
        ] {
            assert!(m[k].as_f64().unwrap().is_finite(), "{k} in {m}");
        }
        // nyc_taxi holds integer counts, so the intervals are a count distribution's, or the
        // conformal table's where that distribution failed on the training residuals
        assert!(
            ["count", "count-rejected"].contains(&m["intervals"].as_str().unwrap()),
            "{m}"
        );
        // the open share (ends excluded) can only be lower
        for lv in ["80", "95"] {
            let closed = m[format!("coverage{lv}")].as_f64().unwrap();
            let open = m[format!("coverage{lv}_open")].as_f64().unwrap();
            assert!(open <= closed, "{lv}: {open} > {closed} in {m}");
        }
    }
    // with MASE season = model season, seasonal naive scores about 1 on its own scale
    let sn = models
        .iter()
        .find(|m| m["model"] == "seasonal-naive")
        .unwrap();
    let sn_mase = sn["mase"].as_f64().unwrap();
    assert!((0.5..2.0).contains(&sn_mase), "{sn_mase}");
    // its forecasts are values the series took, their own medians: both MASEs agree
    assert_eq!(sn["mase_mean"].as_f64().unwrap(), sn_mase, "{sn}");
    let selected = v["selected"].as_str().unwrap();
    assert!(names.contains(&selected), "{selected}");
    // the selected model beats the seasonal naive baseline on this daily-cycle series
    let best = models
        .iter()
        .map(|m| m["mase"].as_f64().unwrap())
        .fold(f64::MAX, f64::min);
    assert!(best < sn_mase, "{best} vs {sn_mase}");
}

#[test]
fn backtest_reads_the_azure_aggregate() {
    let Some(dir) = shared("azure2019-day") else {
        return;
    };
    let out = bin()
        .args([
            "backtest",
            "--format",
            "azure",
            "--function",
            "aggregate",
            "--season",
            "60",
            "--series",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1440 points") && text.contains("selected:"),
        "{text}"
    );
    // unknown function: a flag error
    let out = bin()
        .args([
            "backtest",
            "--format",
            "azure",
            "--function",
            "nope",
            "--series",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
}

#[test]
fn bad_series_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        ("empty.csv", "timestamp,value\n", "no data rows"),
        (
            "text.csv",
            "index,value\n0,1\n1,abc\n",
            ":3: value \"abc\" is not a number",
        ),
        (
            "nan.csv",
            "index,value\n0,1\n1,NaN\n",
            ":3: value \"NaN\" is not finite",
        ),
        (
            "dup.csv",
            "timestamp,value\n2020-01-01 00:00:00,1\n2020-01-01 00:00:00,2\n",
            ":3: duplicate timestamp",
        ),
        (
            "unsorted.csv",
            "index,value\n0,1\n2,1\n1,1\n",
            ":4: timestamp \"1\" is earlier than line 3",
        ),
    ];
    for (name, text, want) in cases {
        let p = write(d, name, text);
        for cmd in ["backtest", "detect"] {
            let out = bin().args([cmd, "--series"]).arg(&p).output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{cmd} {name}: {}", stderr(&out));
            let e = stderr(&out);
            assert!(e.contains(name) && e.contains(want), "{cmd} {name}: {e}");
        }
    }
    // too short for the season
    let body: String = (0..50).map(|i| format!("{i},{}\n", i % 7)).collect();
    let p = write(d, "short.csv", &format!("index,value\n{body}"));
    let out = bin()
        .args(["backtest", "--season", "30", "--series"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("short.csv (lines 2..51)")
            && stderr(&out).contains("too short for season 30"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_flags_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..200).map(|i| format!("{i},{}\n", i % 7)).collect();
    let p = write(dir.path(), "ok.csv", &format!("index,value\n{body}"));
    for args in [
        vec!["backtest", "--horizon", "0"],
        vec!["backtest", "--season", "weekly"],
        vec!["backtest", "--format", "parquet"],
        vec!["backtest", "--format", "azure"],
    ] {
        let out = bin().args(&args).arg("--series").arg(&p).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
    }
    let out = bin().args(["detect"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
}

/// A 600-point noisy level of 10 that shifts to 50 at point 400, written to `dir`.
fn level_shift(dir: &Path) -> PathBuf {
    let body: String = (0..600)
        .map(|i| {
            let noise = ((i * 7919) % 11) as f64 * 0.1;
            let v = if i >= 400 { 50.0 } else { 10.0 } + noise;
            format!("{i},{v}\n")
        })
        .collect();
    write(dir, "shift.csv", &format!("index,value\n{body}"))
}

/// Runs `prewarm detect --series` on `series` (with `extra` arguments), checks it succeeds and
/// returns the anomalies of its JSON report.
fn detect_anomalies(series: &Path, extra: &[&std::ffi::OsStr]) -> Vec<serde_json::Value> {
    let json = series.with_extension("anomalies.json");
    let out = bin()
        .args(["detect", "--series"])
        .arg(series)
        .arg("--json")
        .arg(&json)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    v["anomalies"].as_array_mut().map(std::mem::take).unwrap()
}

#[test]
fn detect_lists_a_level_shift() {
    let dir = tempfile::tempdir().unwrap();
    let an = detect_anomalies(&level_shift(dir.path()), &[]);
    assert!(
        an.iter()
            .any(|a| a["index"] == 400 && a["detector"] == "mad-residual"),
        "{an:?}"
    );
    // the likelihood detector reports the shift once (a new maximum: beyond the range seen)
    let lik: Vec<&serde_json::Value> = an
        .iter()
        .filter(|a| a["detector"] == "seasonal-likelihood")
        .collect();
    assert_eq!(lik.len(), 1, "{lik:?}");
    assert_eq!(lik[0]["index"], 400, "{lik:?}");
}

#[test]
fn detect_scores_a_hand_made_nab_corpus() {
    // one file, a 600-point noisy level with a spike labelled by a window around it
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("data/demo")).unwrap();
    std::fs::create_dir_all(d.join("labels")).unwrap();
    let ts = |i: usize| format!("2020-01-01 {:02}:{:02}:00", i / 60, i % 60);
    let body: String = (0..600)
        .map(|i| {
            let v = if i == 450 {
                90.0
            } else {
                10.0 + ((i * 7919) % 11) as f64 * 0.2
            };
            format!("{},{v}\n", ts(i))
        })
        .collect();
    write(
        d,
        "data/demo/spike.csv",
        &format!("timestamp,value\n{body}"),
    );
    write(
        d,
        "labels/combined_windows.json",
        &format!(
            "{{\"demo/spike.csv\": [[\"{}.000000\", \"{}.000000\"]]}}",
            ts(440),
            ts(469)
        ),
    );
    let json = d.join("nab.json");
    let out = bin()
        .args(["detect", "--nab"])
        .arg(d)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["profile"], "standard");
    assert_eq!(v["points"], 600);
    let dets = v["detectors"].as_array().unwrap();
    let names: Vec<&str> = dets
        .iter()
        .map(|d| d["detector"].as_str().unwrap())
        .collect();
    for want in [
        "mad-residual",
        "seasonal-esd",
        "isolation-forest",
        "windowed-gaussian",
        "seasonal-likelihood",
        "cad",
        "max(seas-lik,cad)",
        "cad[file-range]",
        "max(seas-lik,cad[file-range])",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    for det in dets {
        assert_eq!(det["windows"], 1);
        let s = det["score"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&s), "{det}");
    }
    // a lone spike 40 robust sigmas out is found early in its window by the likelihood
    // detector: the first detection is at the spike (index 450, window 440..469)
    let lik = dets
        .iter()
        .find(|d| d["detector"] == "seasonal-likelihood")
        .unwrap();
    assert_eq!(lik["tp"], 1, "{lik}");
    assert!(lik["score"].as_f64().unwrap() > 50.0, "{lik}");
    // the max ensemble keeps what its seasonal-likelihood part finds
    let both = dets
        .iter()
        .find(|d| d["detector"] == "max(seas-lik,cad)")
        .unwrap();
    assert_eq!(both["tp"], 1, "{both}");
    // as does the one whose CAD is given the file's range (NAB's runner's protocol)
    let ranged = dets
        .iter()
        .find(|d| d["detector"] == "max(seas-lik,cad[file-range])")
        .unwrap();
    assert_eq!(ranged["tp"], 1, "{ranged}");
    // a bad label bound names the labels file
    write(
        d,
        "labels/combined_windows.json",
        "{\"demo/spike.csv\": [[\"2031-01-01 00:00:00\", \"2031-01-01 00:10:00\"]]}",
    );
    let out = bin().args(["detect", "--nab"]).arg(d).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("combined_windows.json"),
        "{}",
        stderr(&out)
    );
}

/// `<tag` elements in an SVG file.
fn svg_count(svg: &str, tag: &str) -> usize {
    svg.matches(&format!("<{tag}")).count()
}

#[test]
fn backtest_plots_the_selected_models_forecasts_at_every_origin() {
    let dir = tempfile::tempdir().unwrap();
    // 600 points of a daily-like cycle of 24: the last 120 are scored, 10 origins of 12
    let body: String = (0..600)
        .map(|i| {
            let v = 40.0 + 20.0 * (2.0 * std::f64::consts::PI * i as f64 / 24.0).sin();
            format!("{i},{}\n", v.round() + ((i * 7919) % 5) as f64)
        })
        .collect();
    let p = write(dir.path(), "cycle.csv", &format!("index,value\n{body}"));
    let (json, svg) = (dir.path().join("r.json"), dir.path().join("r.svg"));
    let out = bin()
        .args(["backtest", "--horizon", "12", "--season", "24", "--series"])
        .arg(&p)
        .arg("--json")
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let selected = v["selected"].as_str().unwrap();
    let plot = std::fs::read_to_string(&svg).unwrap();
    // an 80 % and a 95 % band per origin, the selected model named in the title and legend
    assert_eq!(svg_count(&plot, "polygon"), 2 * 10, "{plot:.400}");
    assert!(plot.contains(&format!("{selected} forecast")), "{selected}");
    assert!(
        plot.contains(&format!("cycle.csv: {selected}")),
        "{selected}"
    );
    // a plot that cannot be written is a configuration error naming the path
    let out = bin()
        .args(["backtest", "--horizon", "12", "--season", "24", "--series"])
        .arg(&p)
        .arg("--plot")
        .arg(dir.path().join("no/such/dir/r.svg"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no/such/dir/r.svg"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn detect_plots_every_anomaly_it_lists() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("a.svg");
    let an = detect_anomalies(&level_shift(dir.path()), &["--plot".as_ref(), svg.as_ref()]);
    let mut detectors: Vec<&str> = an.iter().map(|a| a["detector"].as_str().unwrap()).collect();
    detectors.sort_unstable();
    detectors.dedup();
    assert!(!an.is_empty());
    let plot = std::fs::read_to_string(&svg).unwrap();
    // one marker per anomaly, plus one legend marker per detector that found any
    assert_eq!(svg_count(&plot, "circle"), an.len() + detectors.len());
    for d in detectors {
        assert!(plot.contains(d), "{d}");
    }
}

#[test]
fn a_closed_stdout_ends_the_output_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..600).map(|i| format!("{i},{}\n", 10 + i % 7)).collect();
    let p = write(dir.path(), "s.csv", &format!("index,value\n{body}"));
    let mut child = bin()
        .args(["backtest", "--season", "7", "--series"])
        .arg(&p)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // the reader goes away before the command prints (as `prewarm … | head -0` would)
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn ctrl_c_stops_a_nab_run_without_writing_results() {
    let Some(nab) = shared("nab") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("nab.json");
    let child = bin()
        .args(["detect", "--nab"])
        .arg(&nab)
        .arg("--json")
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // the whole corpus takes seconds even in a release build; interrupt it early
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert!(!json.exists(), "an interrupted run wrote results");
}

#[test]
fn detect_lists_a_spike_on_a_seasonal_series_without_its_peaks() {
    // a strong daily-like cycle (season 48) with a little noise, and one spike at 900 far
    // beyond the range seen before it
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..1200)
        .map(|i| {
            let v = 1000.0
                + 800.0 * (2.0 * std::f64::consts::PI * i as f64 / 48.0).sin()
                + ((i * 7919) % 13) as f64 * 5.0;
            let v = if i == 900 { 4000.0 } else { v };
            format!("{i},{v:.0}\n")
        })
        .collect();
    let p = write(dir.path(), "cycle.csv", &format!("index,value\n{body}"));
    let an = detect_anomalies(&p, &[]);
    for det in ["isolation-likelihood", "seasonal-likelihood"] {
        let at: Vec<u64> = an
            .iter()
            .filter(|a| a["detector"] == det)
            .map(|a| a["index"].as_u64().unwrap())
            .collect();
        // the spike, and none of the ~20 peaks and troughs of the cycle after the warm-up
        assert!(at.contains(&900), "{det}: {at:?}");
        assert!(at.len() <= 2, "{det}: {at:?}");
    }
}
