//! End-to-end: state kept in a real redis-server survives a restart of prewarm — history,
//! configuration and the published decision — and the restarted server carries on ticking.
//! Uses `PREWARM_TEST_REDIS_URL` or `REDIS_URL` when set (CI), else starts `redis-server` on a
//! free loopback port; skips loudly only when neither is available.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use pb::decisions_client::DecisionsClient;
use pb::functions_client::FunctionsClient;
use pb::telemetry_client::TelemetryClient;
use prewarm_scaler::service::grpc::METRIC_NAME;
use prewarm_scaler::service::proto::externalscaler::external_scaler_client::ExternalScalerClient;
use prewarm_scaler::service::proto::prewarm::v1 as pb;
use service_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_restart() {
    let Some((url, _guard)) = redis() else { return };
    // A unique prefix keeps runs against a shared REDIS_URL apart.
    let prefix = format!("prewarm-test-{}-{}:", std::process::id(), free_port());
    let extra = format!(
        "clock = \"event\"\ndefault_policy = \"reactive\"\nredis_url = \"{url}\"\nredis_prefix = \"{prefix}\"\n\
         [[function]]\nid = \"configured\"\nmin = 1\nmax = 50\n"
    );
    let h = start(&extra).await;
    let ch = channel(&h).await;
    let mut tel = TelemetryClient::new(ch.clone());
    let mut fns = FunctionsClient::new(ch.clone());
    fns.register_function(pb::RegisterFunctionRequest {
        config: Some(pb::FunctionConfig {
            id: "registered".into(),
            policy: "reactive:target=2".into(),
            min: 0,
            max: 9,
            target: None,
            cold_start_ms: 20_000,
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    // 2 min of steady load on `hot` (concurrency 7 -> 10 replicas), 1 sample per bin.
    let samples: Vec<pb::Sample> = (0..12)
        .flat_map(|i| {
            [
                sample("hot", T0 + i * 10_000, 350.0, 7.0),
                sample("configured", T0 + i * 10_000, 1.0, 0.1),
            ]
        })
        .collect();
    tel.ingest(pb::IngestRequest { samples }).await.unwrap();
    let mut dec = DecisionsClient::new(ch.clone());
    let before = dec
        .list_decisions(pb::ListDecisionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .decisions;
    let hot_before = fns
        .get_model_state(pb::GetModelStateRequest { id: "hot".into() })
        .await
        .unwrap()
        .into_inner();
    let hot = before.iter().find(|d| d.function_id == "hot").unwrap();
    assert_eq!(hot.desired_replicas, 10);
    h.shutdown().await.unwrap(); // final flush

    // Restart with the same Redis: same decisions and history without any new telemetry.
    let h = start(&extra).await;
    let ch = channel(&h).await;
    let mut dec = DecisionsClient::new(ch.clone());
    let mut fns = FunctionsClient::new(ch.clone());
    let after = dec
        .list_decisions(pb::ListDecisionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .decisions;
    let key = |d: &pb::FunctionDecision| {
        (
            d.function_id.clone(),
            d.desired_replicas,
            d.reason.clone(),
            d.policy.clone(),
        )
    };
    assert_eq!(
        before.iter().map(key).collect::<Vec<_>>(),
        after.iter().map(key).collect::<Vec<_>>()
    );
    let hot_after = fns
        .get_model_state(pb::GetModelStateRequest { id: "hot".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hot_after.samples, hot_before.samples);
    assert_eq!(hot_after.tier_totals, hot_before.tier_totals);
    assert_eq!(hot_after.last_tick_ms, hot_before.last_tick_ms);
    let reg = fns
        .list_functions(pb::ListFunctionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .functions;
    let r = reg
        .iter()
        .find(|f| f.id == "registered")
        .expect("registered function restored");
    assert_eq!((r.policy.as_str(), r.max), ("reactive:target=2", 9));
    let mut keda = ExternalScalerClient::new(ch.clone());
    assert_eq!(
        keda_poll(&mut keda, &keda_ref("hot"), METRIC_NAME).await,
        (10.0, 10, true)
    );

    // It carries on: the warm-replayed policy keeps the load's level, then scales to zero.
    let mut tel = TelemetryClient::new(ch.clone());
    let t1 = T0 + 12 * 10_000;
    tel.ingest(pb::IngestRequest {
        samples: vec![sample("hot", t1, 350.0, 7.0)],
    })
    .await
    .unwrap();
    assert_eq!(
        keda_poll(&mut keda, &keda_ref("hot"), METRIC_NAME).await.0,
        10.0
    );
    let quiet = (1..30)
        .map(|i| sample("hot", t1 + i * 10_000, 0.0, 0.0))
        .collect();
    tel.ingest(pb::IngestRequest { samples: quiet })
        .await
        .unwrap();
    assert_eq!(
        keda_poll(&mut keda, &keda_ref("hot"), METRIC_NAME).await,
        (0.0, 0, false)
    );

    // Deleting a function removes it from Redis too.
    fns.delete_function(pb::DeleteFunctionRequest {
        id: "registered".into(),
    })
    .await
    .unwrap();
    h.shutdown().await.unwrap();
    let h = start(&extra).await;
    let mut fns = FunctionsClient::new(channel(&h).await);
    let ids: Vec<String> = fns
        .list_functions(pb::ListFunctionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .functions
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(ids, ["configured", "hot"]);
    h.shutdown().await.unwrap();
}
