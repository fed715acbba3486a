//! Graceful shutdown: health turns NOT_SERVING (seen by a client watching grpc.health.v1),
//! open streams end, in-flight RPCs drain, state is flushed to a real redis-server and read back
//! by the next process; and the `prewarm serve` binary does all of it on SIGTERM and exits 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use pb::decisions_client::DecisionsClient;
use pb::functions_client::FunctionsClient;
use pb::telemetry_client::TelemetryClient;
use prewarm_scaler::service::proto::prewarm::v1 as pb;
use service_support::*;
use std::process::{Command, Stdio};
use std::time::Duration;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// Generous bound on waiting for something that must happen (never a speed assertion).
const PATIENCE: Duration = Duration::from_secs(120);

fn prefix() -> String {
    format!("prewarm-test-{}-{}:", std::process::id(), free_port())
}

async fn samples_of(h: &prewarm_scaler::service::ServiceHandle, id: &str) -> Option<u64> {
    let mut fns = FunctionsClient::new(channel(h).await);
    fns.get_model_state(pb::GetModelStateRequest { id: id.into() })
        .await
        .ok()
        .map(|r| r.into_inner().samples)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reports_not_serving_ends_streams_and_flushes_to_redis() {
    let Some((url, _guard)) = redis() else { return };
    let extra = format!(
        "clock = \"event\"\nredis_url = \"{url}\"\nredis_prefix = \"{}\"\nflush_interval = \"60s\"\ndrain_timeout = \"2s\"\n",
        prefix()
    );
    let h = start(&extra).await;
    let ch = channel(&h).await;
    let mut tel = TelemetryClient::new(ch.clone());
    let samples = (0..6)
        .map(|i| sample("drained", T0 + i * 10_000, 50.0, 2.0))
        .collect();
    tel.ingest(pb::IngestRequest { samples }).await.unwrap();

    // A health watcher (as a load balancer or a gRPC probe would hold) and a decisions watcher.
    let mut health = HealthClient::new(ch.clone());
    let mut hw = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = hw.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    let mut dw = DecisionsClient::new(ch.clone())
        .watch_decisions(pb::WatchDecisionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        dw.message().await.unwrap().is_some(),
        "current decisions first"
    );

    // The flush interval (60 s) has not passed: only the shutdown flush can store the samples.
    let stopping = tokio::spawn(h.shutdown());
    let status = tokio::time::timeout(PATIENCE, hw.message())
        .await
        .expect("health watch answers");
    let status = status.expect("NOT_SERVING is sent before the stream ends");
    assert_eq!(
        status.map(|s| s.status),
        Some(ServingStatus::NotServing as i32)
    );
    // The decisions stream ends (cleanly or with the connection) instead of hanging.
    while let Ok(Some(_)) = tokio::time::timeout(PATIENCE, dw.message())
        .await
        .expect("the decisions stream ends")
    {}
    tokio::time::timeout(PATIENCE, stopping)
        .await
        .expect("shutdown finishes although clients hold streams")
        .unwrap()
        .unwrap();

    // The next process finds the state in Redis.
    let h = start(&extra).await;
    assert_eq!(samples_of(&h, "drained").await, Some(6));
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_to_redis_and_exits_0() {
    let Some((url, _guard)) = redis() else { return };
    let prefix = prefix();
    let admin = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_prewarm"))
        .args(["serve", "--grpc-addr", "127.0.0.1:0", "--clock", "event"])
        .args(["--admin-addr", &format!("127.0.0.1:{admin}")])
        .args(["--redis-url", &url, "--log-format", "json"])
        .env_remove("PREWARM_CONFIG")
        .env("PREWARM_REDIS_PREFIX", &prefix)
        .env("PREWARM_FLUSH_INTERVAL", "60s")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let grpc = serving_addr(&mut child).await;
    let mut tel = TelemetryClient::connect(grpc).await.unwrap();
    let samples = (0..4)
        .map(|i| sample("terminated", T0 + i * 10_000, 10.0, 1.0))
        .collect();
    tel.ingest(pb::IngestRequest { samples }).await.unwrap();

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    let order = [
        "shutting down: NOT_SERVING, draining",
        "final flush to redis done",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|m| logs.find(m).unwrap_or_else(|| panic!("`{m}` in {logs}")))
        .collect();
    assert!(at[0] < at[1], "{logs}");

    let h = start(&format!(
        "clock = \"event\"\nredis_url = \"{url}\"\nredis_prefix = \"{prefix}\"\n"
    ))
    .await;
    assert_eq!(samples_of(&h, "terminated").await, Some(4));
    h.shutdown().await.unwrap();
}
