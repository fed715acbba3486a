//! End-to-end: a real Prometheus server (Debian package `prometheus`) scrapes the admin port's
//! `/metrics` and can query `prewarm_*` series. Skips loudly when the binary is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use pb::telemetry_client::TelemetryClient;
use prewarm_scaler::service::proto::prewarm::v1 as pb;
use service_support::*;
use std::process::{Command, Stdio};

async fn get(addr: String, path: String) -> (u16, String) {
    tokio::task::spawn_blocking(move || http_get(&addr, &path).unwrap_or((0, String::new())))
        .await
        .unwrap_or((0, String::new()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_admin_port() {
    let Some(bin) = find_program("prometheus") else {
        eprintln!(
            "\n!!!!!!!! SKIPPED: the `prometheus` binary is not installed \
             (apt-get install prometheus) !!!!!!!!\n"
        );
        return;
    };
    let h = start("clock = \"event\"\n").await;
    let mut tel = TelemetryClient::new(channel(&h).await);
    let samples = (0..3)
        .map(|i| sample("scraped", T0 + i * 10_000, 100.0, 2.0))
        .collect();
    tel.ingest(pb::IngestRequest { samples }).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: prewarm\n    static_configs:\n      - targets: ['{}']\n",
            h.admin_addr
        ),
    )
    .unwrap();
    let web = format!("127.0.0.1:{}", free_port());
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Guard(child);
    // Bounded wait for the first scrapes (Prometheus needs a few seconds to start).
    let query = "/api/v1/query?query=prewarm_samples_ingested_total".to_string();
    let mut last = String::new();
    let mut found = false;
    for _ in 0..240 {
        let (status, body) = get(web.clone(), query.clone()).await;
        if status == 200 && body.contains("\"job\":\"prewarm\"") {
            last = body;
            found = true;
            break;
        }
        last = body;
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(found, "Prometheus never returned the series: {last}");
    assert!(last.contains("\"3\"]"), "3 samples ingested: {last}");
    let (_, targets) = get(web.clone(), "/api/v1/targets".into()).await;
    assert!(targets.contains("\"health\":\"up\""), "{targets}");
    let (_, desired) = get(
        web.clone(),
        "/api/v1/query?query=prewarm_function_desired_replicas".into(),
    )
    .await;
    assert!(desired.contains("\"function\":\"scraped\""), "{desired}");
    h.shutdown().await.unwrap();
}
