//! `prewarm trace synth` and `prewarm trace stats` end to end: files, summary, exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn prewarm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prewarm"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The number just before `word` in `text` (e.g. "123 invocations").
fn number_before(text: &str, word: &str) -> u64 {
    let words: Vec<&str> = text.split_whitespace().collect();
    let i = words
        .iter()
        .position(|w| w.trim_end_matches(',') == word)
        .unwrap();
    words[i - 1].trim_start_matches('(').parse().unwrap()
}

#[test]
fn synth_writes_a_trace_that_stats_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("t");
    let out_s = out.to_str().unwrap();
    let o = prewarm(&[
        "trace",
        "synth",
        "--functions",
        "30",
        "--days",
        "2",
        "--seed",
        "4",
        "--out",
        out_s,
    ]);
    assert!(o.status.success(), "{o:?}");
    let summary = stdout(&o);
    assert!(summary.starts_with("wrote 30 functions"), "{summary}");
    assert!(summary.contains(" 2 days,"), "{summary}");
    assert!(summary.contains(" in 6 files "), "{summary}");
    let invocations = number_before(&summary, "invocations");
    let bytes = number_before(&summary, "bytes");
    let on_disk: u64 = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(bytes, on_disk);
    for d in ["d01", "d02"] {
        assert!(out
            .join(format!("invocations_per_function_md.anon.{d}.csv"))
            .is_file());
    }
    let o = prewarm(&["trace", "stats", "--trace", out_s]);
    assert!(o.status.success(), "{o:?}");
    let s = stdout(&o);
    assert_eq!(number_before(&s, "invocations"), invocations, "{s}");
    assert_eq!(number_before(&s, "minutes"), 2880, "{s}");
    let o = prewarm(&["trace", "stats", "--trace", out_s, "--days", "2"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(number_before(&stdout(&o), "minutes"), 1440);
}

#[test]
fn synth_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        let out = tmp.path().join(name);
        let o = prewarm(&[
            "trace",
            "synth",
            "--functions",
            "12",
            "--days",
            "1",
            "--seed",
            "8",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{o:?}");
    }
    let name = "invocations_per_function_md.anon.d01.csv";
    assert_eq!(
        std::fs::read(tmp.path().join("a").join(name)).unwrap(),
        std::fs::read(tmp.path().join("b").join(name)).unwrap()
    );
}

#[test]
fn bad_synth_flags_exit_64() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_str().unwrap();
    for bad in [
        vec!["--functions", "0", "--days", "1"],
        vec!["--functions", "5", "--days", "0"],
        vec!["--functions", "5", "--days", "1", "--peak-rate", "-3"],
        vec![
            "--functions",
            "5",
            "--days",
            "1",
            "--target-invocations",
            "0",
        ],
    ] {
        let mut args = vec!["trace", "synth", "--out", out];
        args.extend(bad.iter());
        let o = prewarm(&args);
        assert_eq!(o.status.code(), Some(64), "{bad:?}: {o:?}");
    }
}

#[test]
fn stats_reads_the_shipped_sample() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/azure2019-sample");
    let o = prewarm(&["trace", "stats", "--trace", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let s = stdout(&o);
    assert_eq!(number_before(&s, "functions"), 200, "{s}");
    assert_eq!(number_before(&s, "invocations"), 149_836, "{s}");
}

#[test]
fn malformed_trace_exits_2_naming_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/azure2019-sample");
    for f in ["function_durations.csv", "app_memory.csv"] {
        std::fs::copy(sample.join(f), tmp.path().join(f)).unwrap();
    }
    std::fs::write(
        tmp.path().join("invocations_per_function.csv"),
        "HashFunction,HashOwner,HashApp,minute_1,minute_2\nf,o,a,1,2\ng,o,a,3,x\n",
    )
    .unwrap();
    let o = prewarm(&["trace", "stats", "--trace", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("invocations_per_function.csv:3:5:"), "{err}");
    std::fs::remove_file(tmp.path().join("app_memory.csv")).unwrap();
    let o = prewarm(&["trace", "stats", "--trace", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("app_memory.csv"));
}
