//! End-to-end checks of `prewarm simulate`: the JSON contract, plots, and exit codes on bad
//! input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_prewarm"))
}

fn shared_day() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/azure2019-day");
    p.is_dir().then_some(p)
}

/// Runs `cmd`, asserts it succeeded (showing stderr if not) and returns its stdout.
fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads a JSON file the CLI wrote.
fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn simulate_writes_the_json_contract_and_a_plot() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let svg = dir.path().join("p.svg");
    run_ok(
        bin()
            .args([
                "simulate",
                "--policy",
                "fixed,fixed:20m,none,hybrid-histogram,reactive",
            ])
            .arg("--json")
            .arg(&json)
            .arg("--plot")
            .arg(&svg),
    );
    let v = read_json(&json);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    let labels: Vec<&str> = results
        .iter()
        .map(|r| r["policy"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        ["fixed", "fixed:20m", "none", "hybrid-histogram", "reactive"]
    );
    let inv = v["trace"]["invocations"].as_u64().unwrap();
    assert!(inv > 0);
    for r in results {
        assert_eq!(r["invocations"].as_u64(), Some(inv));
        for k in ["cold_starts", "prewarms", "evictions", "events"] {
            assert!(r[k].is_u64(), "{k}");
        }
        for k in ["p50", "p75", "p90", "mean"] {
            let x = r["function_cold_start_pct"][k].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&x));
        }
        for k in ["p50", "p99", "p999"] {
            assert!(r["latency_ms"][k].as_f64().unwrap() >= 1.0);
        }
        assert!(r["wall_seconds"].as_f64().unwrap() >= 0.0);
    }
    // A longer keep-alive never has more cold starts and never wastes less on the same arrivals.
    let (f10, f20, none) = (&results[0], &results[1], &results[2]);
    assert!(f20["cold_starts"].as_u64() <= f10["cold_starts"].as_u64());
    assert!(f20["wasted_memory_gb_s"].as_f64() >= f10["wasted_memory_gb_s"].as_f64());
    assert_eq!(f10["wasted_memory_vs_fixed10"].as_f64(), Some(1.0));
    assert_eq!(none["cold_starts"].as_u64(), Some(inv));
    assert_eq!(v["config"]["seed"].as_u64(), Some(1));
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("hybrid-histogram"));
}

#[test]
fn simulate_full_shared_day_end_to_end() {
    let Some(day) = shared_day() else {
        eprintln!("SKIPPED: ../shared/data/azure2019-day not present");
        return;
    };
    let table = run_ok(
        bin()
            .args(["simulate", "--policy", "fixed"])
            .arg("--trace")
            .arg(&day),
    );
    assert!(
        table.contains("675 functions, 451082 invocations, 1440 minutes"),
        "{table}"
    );
}

#[test]
fn timeline_plot_for_one_function() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("t.svg");
    let json = dir.path().join("r.json");
    // Find a function id from the bundled sample.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/azure2019-sample");
    let inv = std::fs::read_to_string(sample.join("invocations_per_function.csv")).unwrap();
    let id = inv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let stdout = run_ok(
        bin()
            .args([
                "simulate",
                "--policy",
                "fixed,reactive,predictive",
                "--timeline",
                &id,
            ])
            .arg("--plot")
            .arg(&svg)
            .arg("--json")
            .arg(&json),
    );
    let s = std::fs::read_to_string(&svg).unwrap();
    assert!(s.contains(&id[..12]) && s.contains("reactive"));
    // Explained decisions: on stdout and in the JSON, with the idle window's inputs.
    assert!(
        stdout.contains(&format!("decisions for {id} under predictive")),
        "{stdout}"
    );
    let v = read_json(&json);
    assert_eq!(v["timeline"]["function"].as_str(), Some(id.as_str()));
    let pols = v["timeline"]["policies"].as_array().unwrap();
    assert_eq!(pols.len(), 3);
    assert_eq!(pols[2]["policy"].as_str(), Some("predictive"));
    let decisions = pols[2]["decisions"].as_array().unwrap();
    let idle: Vec<&serde_json::Value> =
        decisions.iter().filter(|d| d["idle"].is_object()).collect();
    assert!(!idle.is_empty(), "predictive explains its idle windows");
    for d in idle {
        let w = &d["idle"];
        let (from, until) = (
            w["from_ms"].as_u64().unwrap(),
            w["until_ms"].as_u64().unwrap(),
        );
        assert!(from <= until, "{w}");
        let p = w["p_cold"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p), "{w}");
        assert!(d["target"].is_null());
    }
    // fixed plans no windows: its decisions carry no idle explanation.
    assert!(pols[0]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["idle"].is_null()));
    let out = bin()
        .args(["simulate", "--timeline", "no-such-function"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn bad_policy_and_bad_trace_exit_with_their_codes() {
    let out = bin()
        .args(["simulate", "--policy", "lru"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown policy `lru`"));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("invocations_per_function.csv"),
        "HashFunction,HashOwner,HashApp,minute_1,minute_2\nf,o,a,1,x\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("function_durations.csv"),
        "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,percentile_Average_99,percentile_Average_100\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("app_memory.csv"),
        "HashOwner,HashApp,SampleCount,AverageAllocatedMb,AverageAllocatedMb_pct1,AverageAllocatedMb_pct5,AverageAllocatedMb_pct25,AverageAllocatedMb_pct50,AverageAllocatedMb_pct75,AverageAllocatedMb_pct95,AverageAllocatedMb_pct99,AverageAllocatedMb_pct100\n",
    )
    .unwrap();
    let out = bin()
        .args(["simulate", "--trace"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invocations_per_function.csv:2"), "{err}");
}

#[test]
fn shadow_policy_is_reported_beside_each_applied_one() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let table = run_ok(
        bin()
            .args([
                "simulate",
                "--policy",
                "fixed,none",
                "--shadow",
                "predictive:cost=400",
            ])
            .arg("--json")
            .arg(&json),
    );
    assert!(
        table.contains("shadow predictive:cost=400 beside fixed:"),
        "{table}"
    );
    assert!(
        table.contains("shadow predictive:cost=400 beside none:"),
        "{table}"
    );
    let v = read_json(&json);
    let none = &v["results"][1];
    assert_eq!(none["policy"], "none");
    // The applied row is the applied policy's: `none` still cold-starts every call.
    assert_eq!(none["cold_starts"], none["invocations"]);
    let sh = &none["shadow"];
    assert_eq!(sh["policy"], "predictive:cost=400");
    assert_eq!(sh["applied_ready_hits"], 0);
    assert!(sh["shadow_ready_hits"].as_u64().unwrap() > 0);

    let out = bin()
        .args(["simulate", "--shadow", "lru"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--shadow") && err.contains("unknown policy `lru`"),
        "{err}"
    );
}
