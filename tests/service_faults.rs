//! Faults with a real redis-server: Redis killed and restarted (empty) mid-ingestion, Redis down
//! when prewarm starts and back later with its stored state, and `prewarm serve` killed with -9
//! and restarted. No panic, no acknowledged sample lost beyond the documented flush window,
//! decisions resume from the learned state. Skips loudly only without `redis-server`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use pb::decisions_client::DecisionsClient;
use pb::functions_client::FunctionsClient;
use pb::telemetry_client::TelemetryClient;
use prewarm_scaler::service::proto::prewarm::v1 as pb;
use prewarm_scaler::service::ServiceHandle;
use service_support::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Generous bound on waiting for something that must happen (never a speed assertion).
const PATIENCE: Duration = Duration::from_secs(120);

fn redis_bin() -> Option<PathBuf> {
    let bin = find_program("redis-server");
    if bin.is_none() {
        eprintln!("\n!!!!!!!! SKIPPED: redis-server is not installed (apt-get install redis-server) !!!!!!!!\n");
    }
    bin
}

fn prefix() -> String {
    format!("prewarm-fault-{}-{}:", std::process::id(), free_port())
}

/// Polls `f` every 50 ms until it is true; panics naming `what` after [`PATIENCE`].
async fn wait_until<F: FnMut() -> bool>(what: &str, mut f: F) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Samples of `id` as stored in Redis (its `meta` field), read directly; 0 if absent or
/// Redis is unreachable.
fn stored_samples(url: &str, prefix: &str, id: &str) -> u64 {
    let read = || -> redis::RedisResult<Option<String>> {
        let mut c = redis::Client::open(url)?.get_connection()?;
        redis::cmd("HGET")
            .arg(format!("{prefix}fn:{id}"))
            .arg("meta")
            .query(&mut c)
    };
    read()
        .ok()
        .flatten()
        .and_then(|m| serde_json::from_str::<serde_json::Value>(&m).ok())
        .and_then(|v| v["samples"].as_u64())
        .unwrap_or(0)
}

/// The persistence line of `/ready` (and its HTTP status).
fn readiness(admin: &str) -> (u16, String) {
    let (code, body) = http_get(admin, "/ready").unwrap_or((0, String::new()));
    let line = body
        .lines()
        .find_map(|l| l.strip_prefix("persistence: "))
        .unwrap_or("")
        .to_string();
    (code, line)
}

fn batch(id: &str, from: i64, n: i64) -> pb::IngestRequest {
    pb::IngestRequest {
        samples: (from..from + n)
            .map(|i| sample(id, T0 + i * 10_000, 200.0, 4.0))
            .collect(),
    }
}

async fn ingest(h: &ServiceHandle, req: pb::IngestRequest) {
    let n = req.samples.len() as u64;
    let mut tel = TelemetryClient::new(channel(h).await);
    let r = tel.ingest(req).await.expect("acknowledged").into_inner();
    assert_eq!((r.accepted, r.rejected), (n, 0));
}

async fn model_samples(h: &ServiceHandle, id: &str) -> u64 {
    let mut fns = FunctionsClient::new(channel(h).await);
    fns.get_model_state(pb::GetModelStateRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .samples
}

fn config(url: &str, prefix: &str) -> String {
    format!(
        "clock = \"event\"\ndefault_policy = \"reactive\"\nredis_url = \"{url}\"\n\
         redis_prefix = \"{prefix}\"\nflush_interval = \"1s\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_empty_mid_ingestion_loses_nothing() {
    let Some(bin) = redis_bin() else { return };
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let prefix = prefix();
    let redis = spawn_redis(&bin, port, &[]);
    let h = start(&config(&url, &prefix)).await;
    let admin = h.admin_addr.to_string();
    ingest(&h, batch("f", 0, 12)).await;
    ingest(&h, batch("g", 0, 12)).await;
    wait_until("the first flush", || {
        stored_samples(&url, &prefix, "f") == 12 && stored_samples(&url, &prefix, "g") == 12
    })
    .await;
    assert_eq!(readiness(&admin), (200, "ok".into()));

    drop(redis); // SIGKILL: Redis and everything it held are gone
    ingest(&h, batch("f", 12, 12)).await; // still acknowledged: served from memory
    wait_until("readiness to report degraded persistence", || {
        readiness(&admin).1.starts_with("degraded")
    })
    .await;
    assert_eq!(readiness(&admin).0, 200, "a degraded Redis keeps serving");
    assert_eq!(h.engine().metrics().redis_up.get(), 0);

    // Redis comes back empty: everything is written again, `g` (untouched since) included.
    let _redis = spawn_redis(&bin, port, &[]);
    ingest(&h, batch("f", 24, 6)).await;
    wait_until("a full rewrite to the new Redis", || {
        stored_samples(&url, &prefix, "f") == 30 && stored_samples(&url, &prefix, "g") == 12
    })
    .await;
    wait_until("readiness ok again", || readiness(&admin).1 == "ok").await;
    assert_eq!(h.engine().metrics().redis_up.get(), 1);
    let mut dec = DecisionsClient::new(channel(&h).await);
    let before = dec
        .get_decision(pb::GetDecisionRequest {
            function_id: "f".into(),
        })
        .await
        .unwrap()
        .into_inner();
    h.shutdown().await.unwrap();

    // A new process over the restarted Redis has all 30 + 12 samples and the same decision.
    let h = start(&config(&url, &prefix)).await;
    assert_eq!(model_samples(&h, "f").await, 30);
    assert_eq!(model_samples(&h, "g").await, 12);
    let mut dec = DecisionsClient::new(channel(&h).await);
    let after = dec
        .get_decision(pb::GetDecisionRequest {
            function_id: "f".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.desired_replicas, before.desired_replicas);
    assert!(after.desired_replicas > 0);
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start_serves_from_memory_then_merges_stored_state() {
    let Some(bin) = redis_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().to_str().unwrap().to_string();
    let aof = [
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        dir_s.as_str(),
    ];
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let prefix = prefix();

    // Learned state in a durable Redis, then Redis goes away.
    let redis = spawn_redis(&bin, port, &aof);
    let h = start(&config(&url, &prefix)).await;
    ingest(&h, batch("f", 0, 12)).await;
    h.shutdown().await.unwrap();
    assert_eq!(stored_samples(&url, &prefix, "f"), 12);
    drop(redis);

    // prewarm starts anyway, ready, says persistence is degraded, and takes telemetry.
    let h = start(&config(&url, &prefix)).await;
    let admin = h.admin_addr.to_string();
    let (code, line) = readiness(&admin);
    assert_eq!(code, 200);
    assert!(line.starts_with("degraded"), "{line}");
    ingest(&h, batch("f", 12, 6)).await;
    assert_eq!(model_samples(&h, "f").await, 6);

    // Redis returns with its file: the stored 12 samples and the 6 received meanwhile merge.
    let _redis = spawn_redis(&bin, port, &aof);
    wait_until("reconnection", || readiness(&admin).1 == "ok").await;
    assert_eq!(model_samples(&h, "f").await, 18);
    wait_until("the merged state written back", || {
        stored_samples(&url, &prefix, "f") == 18
    })
    .await;
    h.shutdown().await.unwrap();
}

/// Starts `prewarm serve` with `config` and returns it with its gRPC address.
async fn serve_child(config: &std::path::Path) -> (Guard, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_prewarm"))
        .args(["serve", "--config"])
        .arg(config)
        .env_remove("PREWARM_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let grpc = serving_addr(&mut child).await;
    (Guard(child), grpc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_keeps_everything_flushed_and_the_decisions() {
    let Some((url, _redis)) = redis() else { return };
    let prefix = prefix();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prewarm.toml");
    std::fs::write(
        &cfg,
        format!(
            "grpc_addr = \"127.0.0.1:0\"\nadmin_addr = \"127.0.0.1:0\"\n{}",
            config(&url, &prefix)
        ),
    )
    .unwrap();
    let (child, addr) = serve_child(&cfg).await;
    let mut tel = TelemetryClient::connect(addr.clone()).await.unwrap();
    for k in 0..3 {
        let r = tel
            .ingest(batch("f", k * 12, 12))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.accepted, 12);
    }
    let mut dec = DecisionsClient::connect(addr.clone()).await.unwrap();
    let before = dec
        .get_decision(pb::GetDecisionRequest {
            function_id: "f".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(before.desired_replicas > 0, "{before:?}");
    // Everything acknowledged so far reaches Redis within the flush interval ...
    wait_until("the flush", || stored_samples(&url, &prefix, "f") == 36).await;
    // ... and one more batch is acknowledged just before the kill: it may be lost (it is
    // inside the flush window), nothing older may.
    let r = tel.ingest(batch("f", 36, 6)).await.unwrap().into_inner();
    assert_eq!(r.accepted, 6);
    let mut child = child;
    let kill = Command::new("kill")
        .args(["-KILL", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), None, "killed by a signal");

    let (_child, addr) = serve_child(&cfg).await;
    let mut fns = FunctionsClient::connect(addr.clone()).await.unwrap();
    let st = fns
        .get_model_state(pb::GetModelStateRequest { id: "f".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(
        st.samples == 36 || st.samples == 42,
        "restored {} samples: 36 flushed (+6 possibly)",
        st.samples
    );
    let mut dec = DecisionsClient::connect(addr.clone()).await.unwrap();
    let after = dec
        .get_decision(pb::GetDecisionRequest {
            function_id: "f".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.desired_replicas, before.desired_replicas);
    assert_eq!(after.reason, before.reason);
    // And it carries on learning from there.
    let mut tel = TelemetryClient::connect(addr).await.unwrap();
    let r = tel.ingest(batch("f", 42, 6)).await.unwrap().into_inner();
    assert_eq!(r.accepted, 6);
}
