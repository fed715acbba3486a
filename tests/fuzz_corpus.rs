//! Replays the checked-in fuzz corpora (`fuzz/corpus/<target>/`) on stable, through the very
//! harnesses the cargo-fuzz targets call (`fuzz/src/lib.rs`, included here as a module): no
//! input may panic, `seed-ok-*` inputs must be accepted, `seed-err-*` inputs must be rejected
//! with a message, and `regress-*` inputs (crashes found by fuzzing, since fixed) must simply not
//! panic. Nightly fuzzing itself runs from `scripts/fuzz-ci.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::fmt::Debug;
use std::path::Path;

/// The files of one target's corpus, sorted by name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Runs every input of `target` through `f`; returns the accepted inputs' results by name.
fn replay<T: Debug>(target: &str, f: fn(&[u8]) -> Result<T, String>) -> Vec<(String, T)> {
    let files = corpus(target);
    assert!(files.len() >= 3, "{target}: too few seeds");
    let mut ok = Vec::new();
    for (name, data) in files {
        // Only seeds and regression inputs are checked in, never a grown corpus.
        assert!(
            name.starts_with("seed-ok-")
                || name.starts_with("seed-err-")
                || name.starts_with("regress-"),
            "{target}/{name}: corpus files are seed-ok-*, seed-err-* or regress-*"
        );
        assert!(data.len() <= 32 * 1024, "{target}/{name}: keep seeds small");
        let r = std::panic::catch_unwind(|| f(&data))
            .unwrap_or_else(|_| panic!("{target}/{name} panicked (see above)"));
        match r {
            Ok(v) => {
                assert!(
                    !name.starts_with("seed-err-"),
                    "{target}/{name}: accepted, expected an error: {v:?}"
                );
                ok.push((name, v));
            }
            Err(msg) => {
                assert!(
                    !name.starts_with("seed-ok-"),
                    "{target}/{name}: rejected: {msg}"
                );
                assert!(!msg.trim().is_empty(), "{target}/{name}: empty error");
            }
        }
    }
    ok
}

fn get<'a, T>(ok: &'a [(String, T)], name: &str) -> &'a T {
    &ok.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn trace_azure_corpus() {
    let ok = replay("trace_azure", harness::trace_azure);
    let s = get(&ok, "seed-ok-sample-head");
    assert_eq!((s.days, s.functions), (1, 2));
    let s = get(&ok, "seed-ok-three-days");
    assert_eq!((s.days, s.functions, s.invocations), (3, 4, 15));
    let s = get(&ok, "seed-ok-one-day");
    assert_eq!((s.days, s.functions, s.invocations), (1, 4, 15));
}

#[test]
fn config_toml_corpus() {
    let ok = replay("config_toml", harness::config_toml);
    assert_eq!(get(&ok, "seed-ok-deploy-prewarm.toml").functions.len(), 1);
    assert_eq!(get(&ok, "seed-ok-actuators.toml").functions.len(), 5);
    assert!(get(&ok, "seed-ok-empty.toml").functions.is_empty());
}

#[test]
fn telemetry_corpus() {
    let ok = replay("telemetry", harness::telemetry);
    let s = get(&ok, "seed-ok-batch");
    assert_eq!((s.samples, s.accepted, s.functions), (66, 66, 3));
    let s = get(&ok, "seed-ok-rejections");
    assert_eq!((s.samples, s.accepted, s.functions), (12, 1, 1));
    assert_eq!(get(&ok, "seed-ok-empty").samples, 0);
}

#[test]
fn trace_input_splits_into_days_of_three_files() {
    let days = harness::split_trace_input(b"a\x1eb\x1ec\x1ed");
    assert_eq!(days.len(), 2);
    assert_eq!(
        (days[0].invocations.as_slice(), days[0].memory.as_slice()),
        (&b"a"[..], &b"c"[..])
    );
    assert_eq!(days[1].invocations, b"d");
    assert!(days[1].durations.is_empty() && days[1].memory.is_empty());
    let many = vec![harness::FILE_SEPARATOR; 3 * harness::MAX_DAYS + 5];
    assert_eq!(harness::split_trace_input(&many).len(), harness::MAX_DAYS);
}
