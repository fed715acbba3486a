//! End-to-end: `prewarm replay` streams the bundled Azure sample (function id = HashFunction)
//! into a real server (event clock), and `prewarm decisions` prints what the server decided.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use prewarm_scaler::service::proto::prewarm::v1 as pb;
use service_support::*;
use std::process::Command;

fn prewarm(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_prewarm"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_an_azure_trace_then_print_decisions() {
    let h = start("clock = \"event\"\n").await;
    let addr = format!("http://{}", h.grpc_addr);
    let dir = env!("CARGO_MANIFEST_DIR");
    let trace = format!("{dir}/data/azure2019-sample/invocations_per_function.csv");
    let durations = format!("{dir}/data/azure2019-sample/function_durations.csv");
    let t0 = T0.to_string();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        prewarm(&[
            "replay",
            "--trace",
            &trace,
            "--durations",
            &durations,
            "--addr",
            &addr,
            "--speedup",
            "max",
            "--start-ms",
            &t0,
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(" rejected"), "{out}");
    let sent: u64 = out
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("sent count");
    assert!(
        out.contains(&format!("{sent} accepted, 0 rejected")),
        "{out}"
    );
    assert!(sent > 0);

    let mut fns = pb::functions_client::FunctionsClient::new(channel(&h).await);
    let listed = fns
        .list_functions(pb::ListFunctionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .functions;
    assert!(listed.len() > 10, "{}", listed.len());
    // Every stored sample is accounted for.
    let mut stored = 0;
    for f in &listed {
        stored += fns
            .get_model_state(pb::GetModelStateRequest { id: f.id.clone() })
            .await
            .unwrap()
            .into_inner()
            .samples;
    }
    assert_eq!(stored, sent);

    let addr = format!("http://{}", h.grpc_addr);
    let one = listed[0].id.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        let all = prewarm(&["decisions", "--addr", &addr]);
        let json = prewarm(&["decisions", "--addr", &addr, "--function", &one, "--json"]);
        (
            all.0 + json.0,
            format!("{}\n---\n{}", all.1, json.1),
            all.2 + &json.2,
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let (table, json) = out.split_once("\n---\n").unwrap();
    assert!(table.starts_with("FUNCTION"), "{table}");
    assert_eq!(table.lines().count(), listed.len() + 1);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["function"], listed[0].id.as_str());
    assert_eq!(v["policy"], "predictive");
    h.shutdown().await.unwrap();
}

#[test]
fn replay_rejects_a_bad_speedup_with_64() {
    let (code, _, err) = prewarm(&["replay", "--trace", "/nonexistent.csv", "--speedup", "fast"]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("--speedup"), "{err}");
}
