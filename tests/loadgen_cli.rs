//! `prewarm loadgen` against the real server: every sample it sends is acknowledged and counted
//! by the server, the KEDA-role poller gets answers, resident memory is read from the admin
//! port, and the JSON report and plot are written; bad flags exit 64 and failed calls exit 1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use service_support::*;
use std::process::{Command, Output};

fn loadgen<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prewarm"))
        .arg("loadgen")
        .args(args)
        .output()
        .expect("runs prewarm loadgen")
}

fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_reports_what_the_server_acknowledged() {
    let h = start("max_functions = 1000\n").await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("load.json");
    let svg = dir.path().join("load.svg");
    let (grpc, admin) = (format!("http://{}", h.grpc_addr), h.admin_addr.to_string());
    let args: Vec<String> = [
        "--addr",
        grpc.as_str(),
        "--admin",
        admin.as_str(),
        "--functions",
        "300",
        "--rate",
        "3000",
        "--batch",
        "100",
        "--duration",
        "3s",
        "--warmup",
        "1s",
        "--interval",
        "500ms",
        "--poll-rate",
        "100",
        "--max-rss-growth",
        "1000",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = tokio::task::spawn_blocking(move || loadgen(&args))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // 3 s at 3000 samples/s, in batches due at 0, 1/30 s, ...: 90 batches of 100.
    assert_eq!(r["sent"], 9_000, "{r}");
    assert_eq!(r["accepted"], 9_000);
    assert_eq!(r["rejected"], 0);
    assert_eq!(r["errors"], 0);
    assert_eq!(r["ingest"]["calls"], 90);
    // The KEDA role alternated GetMetrics and IsActive at 100 calls/s.
    let polls =
        r["get_metrics"]["calls"].as_u64().unwrap() + r["is_active"]["calls"].as_u64().unwrap();
    assert!((250..=300).contains(&polls), "{polls} polls");
    assert!(
        r["get_metrics"]["p99_ms"].as_f64().unwrap()
            >= r["get_metrics"]["p50_ms"].as_f64().unwrap()
    );
    // Memory was read from the server's process_resident_memory_bytes.
    let rss = r["rss"]["after_warmup_bytes"].as_u64().unwrap();
    assert!(rss > 1 << 20, "{rss}");
    assert!(r["intervals"].as_array().unwrap().len() >= 4);
    assert!(stdout.contains("samples/s"), "{stdout}");
    // The server counted exactly what loadgen reports as accepted, under loadgen's function ids.
    let (_, body) = http_get(&admin, "/metrics").unwrap();
    assert_eq!(metric(&body, "prewarm_samples_ingested_total"), 9_000.0);
    assert_eq!(h.engine().function_count(), 300);
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.contains("<svg") && plot.contains("server RSS"), "plot");
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_fails_on_refused_calls_and_bad_flags() {
    // More functions than the server admits: the excess is refused and loadgen exits 1.
    let h = start("max_functions = 10\n").await;
    let grpc = format!("http://{}", h.grpc_addr);
    let out = tokio::task::spawn_blocking(move || {
        loadgen(&[
            "--addr",
            &grpc,
            "--functions",
            "20",
            "--rate",
            "200",
            "--duration",
            "1s",
            "--poll-rate",
            "0",
        ])
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("samples rejected"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("too_many_functions"));
    h.shutdown().await.unwrap();

    let out = loadgen(&["--functions", "0"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`--functions`"));
    let out = loadgen(&["--duration", "ten"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`--duration`"));
}
