//! End-to-end actuation: telemetry with recurring bursts replayed into the real server
//! (`--clock event`) with one Knative and one Lambda target, against the loopback fakes of the
//! Kubernetes API and the Lambda API (no cluster or AWS account is reachable from CI). The
//! clients find the fakes through the standard chains: `KUBECONFIG`, and the AWS environment
//! (`AWS_ENDPOINT_URL_LAMBDA`, static keys). One test process, so the environment is ours.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use prewarm_scaler::actuate::fakes::kube::{FakeKube, KnativeKind};
use prewarm_scaler::actuate::fakes::lambda::FakeLambda;
use prewarm_scaler::service::proto::prewarm::v1 as pb;
use prewarm_scaler::service::proto::prewarm::v1::functions_client::FunctionsClient;
use prewarm_scaler::service::proto::prewarm::v1::telemetry_client::TelemetryClient;
use service_support::*;
use std::time::Duration;

const MIN_SCALE: &str = "autoscaling.knative.dev/min-scale";
const MIN_INTERVAL_MS: i64 = 120_000;
/// Bursts: 10 minutes at 40 invocations per 10 s bin every hour, idle otherwise.
const PERIOD_BINS: i64 = 360;
const BURST_BINS: i64 = 60;
const HOURS: i64 = 6;
/// The policy learns idle gaps after two of them (`min_samples`): bursts from the third on
/// are predicted.
const FIRST_PREDICTED: i64 = 3;

struct Fakes {
    kube: FakeKube,
    lambda: FakeLambda,
    _dir: tempfile::TempDir,
}

async fn fakes() -> Fakes {
    let kube = FakeKube::start().await.unwrap();
    kube.put_service("default", "hello", Some("hello-00001"));
    kube.put_revision("default", "hello-00001", "hello");
    let lambda = FakeLambda::start().await.unwrap();
    lambda.put_function("checkout", 512, Some(100), &["1"], &[("live", "1")]);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
             current-context: fake\nusers:\n- name: fake\n  user: {{}}\n",
            kube.base_url()
        ),
    )
    .unwrap();
    // Edition 2021: setting the environment is safe; this test binary is ours alone.
    std::env::set_var("KUBECONFIG", &kubeconfig);
    aws_env_for(&lambda);
    Fakes {
        kube,
        lambda,
        _dir: dir,
    }
}

/// The Lambda function prices a cold start at 150 GB·s: with a 3-minute allocation lead a
/// 512 MB instance is held several minutes per pre-warm, which the default knob (125) only
/// just declines for these hourly bursts; the test is about actuation ahead of a prediction,
/// not about where the default sits.
fn server_config(shadow: bool) -> String {
    format!(
        "clock = \"event\"\n\
         [actuator]\nshadow = {shadow}\nmin_interval = \"{MIN_INTERVAL_MS}ms\"\npoll = \"10s\"\nresync = \"1m\"\n\
         [[function]]\nid = \"kn\"\nmax = 50\ncold_start = \"30s\"\n\
         target = {{ kind = \"knative\", namespace = \"default\", service = \"hello\" }}\n\
         [[function]]\nid = \"lam\"\nmax = 50\nmemory_mb = 512\npolicy = \"predictive:cost=150\"\n\
         target = {{ kind = \"lambda\", function = \"checkout\", qualifier = \"live\", max_concurrency = 20 }}\n"
    )
}

/// What the test saw after each bin: (event time, min-scale, provisioned requested).
type Seen = Vec<(i64, u32, u32)>;

/// Replays the bursts bin by bin; after each bin records the platform state and every new
/// write the server reports (status `last_applied_ms`, exact in event time).
async fn replay(
    h: &prewarm_scaler::service::ServiceHandle,
    f: &Fakes,
) -> (Seen, Vec<(String, i64, u32)>) {
    let ch = channel(h).await;
    let mut tel = TelemetryClient::new(ch.clone());
    let mut fns = FunctionsClient::new(ch);
    let mut seen = Vec::new();
    let mut writes: Vec<(String, i64, u32)> = Vec::new();
    for b in 0..HOURS * PERIOD_BINS {
        let start = T0 + b * 10_000;
        let burst = b % PERIOD_BINS < BURST_BINS;
        let n = if burst { 40.0 } else { 0.0 };
        let c = if burst { 4.0 } else { 0.0 };
        let samples = vec![sample("kn", start, n, c), sample("lam", start, n, c)];
        let r = tel
            .ingest(pb::IngestRequest { samples })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.rejected, 0);
        // Give the actuator tasks (20 ms event-clock poll) time to act.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let ms = f
            .kube
            .annotation(KnativeKind::Revision, "default", "hello-00001", MIN_SCALE)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let pc = f
            .lambda
            .provisioned("checkout", "live")
            .map(|(req, _, _)| req)
            .unwrap_or(0);
        seen.push((start + 10_000, ms, pc));
        let list = fns
            .list_target_status(pb::ListTargetStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        for t in list.targets {
            let known = writes
                .iter()
                .any(|(id, at, _)| *id == t.function_id && *at == t.last_applied_ms);
            if t.applies > 0 && !known {
                writes.push((t.function_id.clone(), t.last_applied_ms, t.last_applied));
            }
        }
    }
    (seen, writes)
}

fn during_and_after(seen: &Seen, col: usize) -> (u32, u32) {
    // Highest value during the last burst, and the value at the end (long after it).
    let last_burst_start = (HOURS - 1) * PERIOD_BINS;
    let v = |i: usize| if col == 1 { seen[i].1 } else { seen[i].2 };
    let peak = (last_burst_start as usize..(last_burst_start + BURST_BINS) as usize)
        .map(v)
        .max()
        .unwrap();
    (peak, v(seen.len() - 1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actuators_follow_bursts_at_the_configured_rate_and_shadow_writes_nothing() {
    let f = fakes().await;

    // Applied mode.
    let h = start(&server_config(false)).await;
    let (seen, writes) = replay(&h, &f).await;
    let (kn_peak, kn_end) = during_and_after(&seen, 1);
    let (pc_peak, pc_end) = during_and_after(&seen, 2);
    assert!(kn_peak >= 2, "min-scale raised during bursts: {kn_peak}");
    assert!(
        pc_peak >= 2,
        "provisioned concurrency raised during bursts: {pc_peak}"
    );
    assert!(pc_peak <= 20, "max_concurrency guardrail holds: {pc_peak}");
    assert!(
        kn_end < kn_peak,
        "min-scale lowered after the burst: {kn_end} vs {kn_peak}"
    );
    assert!(
        pc_end < pc_peak,
        "provisioned lowered after the burst: {pc_end} vs {pc_peak}"
    );
    // Never faster than the configured change rate (exact write times from the status).
    for id in ["kn", "lam"] {
        let times: Vec<i64> = writes.iter().filter(|w| w.0 == id).map(|w| w.1).collect();
        assert!(times.len() >= 4, "{id}: {writes:?}");
        for w in times.windows(2) {
            assert!(
                w[1] - w[0] >= MIN_INTERVAL_MS,
                "{id} wrote too fast: {times:?}"
            );
        }
    }
    // Ahead of bursts: once two idle gaps were seen, both platforms have capacity raised
    // before each burst begins (the pre-warm lands a cold start + actuation lead early).
    for k in FIRST_PREDICTED..HOURS {
        let i = (k * PERIOD_BINS) as usize;
        let (t, ms, pc) = seen[i - 1];
        assert!(
            ms > 0 && pc > 0,
            "burst {k}: at {t} (burst at {}) min-scale {ms}, provisioned {pc}; around it: {:?}",
            seen[i].0 - 10_000,
            &seen[i - 12..i + 2]
        );
    }
    // The Knative Service itself is never written (that would create a revision).
    let kube_log = f.kube.requests();
    assert!(kube_log.iter().any(|r| r.is_write()));
    assert!(
        !kube_log
            .iter()
            .any(|r| r.is_write() && r.path.contains("/services/")),
        "a Service was written"
    );
    h.shutdown().await.unwrap();

    // Shadow mode on fresh platform state: the same decisions are computed and reported, the
    // fakes see reads only.
    f.kube.set_annotation(
        KnativeKind::Revision,
        "default",
        "hello-00001",
        MIN_SCALE,
        None,
    );
    f.lambda
        .put_function("checkout", 512, Some(100), &["1"], &[("live", "1")]);
    f.kube.clear_requests();
    f.lambda.clear_requests();
    let h = start(&server_config(true)).await;
    let (seen, shadow_writes) = replay(&h, &f).await;
    assert!(
        seen.iter().all(|s| s.1 == 0 && s.2 == 0),
        "shadow mode changed a platform"
    );
    assert!(!f.kube.requests().iter().any(|r| r.is_write()));
    assert!(!f.lambda.requests().iter().any(|r| r.method != "GET"));
    assert!(!f.kube.requests().is_empty() && !f.lambda.requests().is_empty());
    for id in ["kn", "lam"] {
        let applied: Vec<u32> = writes.iter().filter(|w| w.0 == id).map(|w| w.2).collect();
        let shadow: Vec<u32> = shadow_writes
            .iter()
            .filter(|w| w.0 == id)
            .map(|w| w.2)
            .collect();
        assert!(shadow.len() >= 4, "{id} shadow: {shadow_writes:?}");
        assert_eq!(
            applied.iter().max(),
            shadow.iter().max(),
            "{id}: applied {applied:?} vs shadow {shadow:?}"
        );
    }
    h.shutdown().await.unwrap();
}
