//! End-to-end: a KEDA-role client against the real server (event clock) sees replicas rise
//! with each burst of a periodic workload and fall back to zero between bursts; StreamIsActive
//! pushes `true` when the burst starts; unknown functions get the documented default answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use pb::decisions_client::DecisionsClient;
use pb::telemetry_client::TelemetryClient;
use prewarm_scaler::service::grpc::METRIC_NAME;
use prewarm_scaler::service::proto::externalscaler::external_scaler_client::ExternalScalerClient;
use prewarm_scaler::service::proto::prewarm::v1 as pb;
use service_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keda_client_sees_replicas_follow_a_periodic_burst() {
    let h = start("clock = \"event\"\n[[function]]\nid = \"default/api\"\n").await;
    let ch = channel(&h).await;
    let mut keda = ExternalScalerClient::new(ch.clone());
    let mut tel = TelemetryClient::new(ch.clone());
    let r = keda_ref("default/api");

    // KEDA first asks for the metric spec: one stable metric, AverageValue target 1.
    let spec = keda.get_metric_spec(r.clone()).await.unwrap().into_inner();
    assert_eq!(spec.metric_specs.len(), 1);
    let ms = &spec.metric_specs[0];
    assert_eq!(ms.metric_name, METRIC_NAME);
    assert_eq!(ms.target_size_float, 1.0);
    #[allow(deprecated)]
    let ts = ms.target_size;
    assert_eq!(ts, 1);

    // A configured function with no data yet: min (0), inactive.
    assert_eq!(keda_poll(&mut keda, &r, METRIC_NAME).await, (0.0, 0, false));

    let mut push = keda.stream_is_active(r.clone()).await.unwrap().into_inner();
    assert!(
        !push.message().await.unwrap().unwrap().result,
        "initial state"
    );

    // Three periods of 5 min quiet then a 1 min burst (concurrency 14 -> 20 replicas).
    let mut t = T0;
    let mut peaks = Vec::new();
    for _period in 0..3 {
        let mut quiet_values = Vec::new();
        for _ in 0..30 {
            tel.ingest(pb::IngestRequest {
                samples: vec![sample("default/api", t, 0.0, 0.0)],
            })
            .await
            .unwrap();
            t += 10_000;
            quiet_values.push(keda_poll(&mut keda, &r, METRIC_NAME).await);
        }
        // The end of each quiet phase is back to zero and inactive.
        assert_eq!(*quiet_values.last().unwrap(), (0.0, 0, false));
        let mut peak = 0.0f64;
        for _ in 0..6 {
            tel.ingest(pb::IngestRequest {
                samples: vec![sample("default/api", t, 700.0, 14.0)],
            })
            .await
            .unwrap();
            t += 10_000;
            let (f, i, active) = keda_poll(&mut keda, &r, METRIC_NAME).await;
            assert_eq!(f as i64, i, "float and int64 fields agree");
            if f > 0.0 {
                assert!(active);
            }
            peak = peak.max(f);
        }
        peaks.push(peak);
        // The push stream said `true` when the burst began (after the `false` that ended the
        // previous burst, if any).
        let mut msg = push.message().await.unwrap().unwrap();
        if !msg.result && peaks.len() > 1 {
            msg = push.message().await.unwrap().unwrap();
        }
        assert!(msg.result, "StreamIsActive pushes true on the burst");
    }
    for p in &peaks {
        assert!(
            *p >= 20.0,
            "replicas rise to cover concurrency 14 at 70 %: {peaks:?}"
        );
    }

    // Sidecar view of the same decision.
    let mut dec = DecisionsClient::new(ch.clone());
    let d = dec
        .get_decision(pb::GetDecisionRequest {
            function_id: "default/api".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.policy, "reactive");
    assert_eq!(d.desired_replicas, d.desired_instances);

    // Unknown function (namespace/name form): 0 and inactive, never an error.
    let unknown = prewarm_scaler::service::proto::externalscaler::ScaledObjectRef {
        name: "nothing".into(),
        namespace: "here".into(),
        scaler_metadata: Default::default(),
    };
    assert_eq!(
        keda_poll(&mut keda, &unknown, METRIC_NAME).await,
        (0.0, 0, false)
    );
    drop(push);
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_name_is_the_default_function_id_and_watch_streams_changes() {
    let h = start("clock = \"event\"\n").await;
    let ch = channel(&h).await;
    let mut keda = ExternalScalerClient::new(ch.clone());
    let mut tel = TelemetryClient::new(ch.clone());
    let mut dec = DecisionsClient::new(ch.clone());
    let mut watch = dec
        .watch_decisions(pb::WatchDecisionsRequest {
            function_ids: vec!["shop/checkout".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let samples = (0..3)
        .map(|i| sample("shop/checkout", T0 + i * 10_000, 300.0, 3.5))
        .collect();
    tel.ingest(pb::IngestRequest { samples }).await.unwrap();
    let r = prewarm_scaler::service::proto::externalscaler::ScaledObjectRef {
        name: "checkout".into(),
        namespace: "shop".into(),
        scaler_metadata: Default::default(),
    };
    let (f, _, active) = keda_poll(&mut keda, &r, METRIC_NAME).await;
    assert!(f >= 5.0 && active, "{f}");
    // The watch saw the function appear (no data) and then scale up.
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.reason, "no-data");
    let mut last = first;
    while last.desired_replicas == 0 {
        last = watch.message().await.unwrap().unwrap();
    }
    assert!(last.desired_replicas >= 5);
    h.shutdown().await.unwrap();
}
