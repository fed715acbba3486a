//! End-to-end: a KEDA-role client against the real server (event clock, default `predictive`
//! policy) polls GetMetrics + IsActive every 30 s of replayed time, as KEDA does, while a
//! periodic workload is replayed: replicas rise AHEAD of each burst once the policy has seen
//! the period, and fall back between bursts; StreamIsActive pushes `true` before the burst's
//! first telemetry arrives. Unknown functions get the documented default answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use pb::decisions_client::DecisionsClient;
use pb::telemetry_client::TelemetryClient;
use prewarm_scaler::service::grpc::METRIC_NAME;
use prewarm_scaler::service::proto::externalscaler::external_scaler_client::ExternalScalerClient;
use prewarm_scaler::service::proto::prewarm::v1 as pb;
use service_support::*;
use std::time::Duration;
use tokio::sync::mpsc;

/// 20 min period: 120 bins of 10 s.
const PERIOD_BINS: i64 = 120;
/// The dense function's burst: 1 min at 20 invocations / 10 s, 4 in flight.
const BURST_BINS: i64 = 6;

/// Telemetry of bin `i` (absolute index from T0) for both functions.
fn bins(i: i64) -> Vec<pb::Sample> {
    let t = T0 + i * 10_000;
    let in_burst = i % PERIOD_BINS < BURST_BINS;
    let timer = i % PERIOD_BINS == 0;
    vec![
        if in_burst {
            sample("default/api", t, 20.0, 4.0)
        } else {
            sample("default/api", t, 0.0, 0.0)
        },
        // A timer-like function: 3 short invocations at the top of each period.
        if timer {
            sample("default/cron", t, 3.0, 0.3)
        } else {
            sample("default/cron", t, 0.0, 0.0)
        },
    ]
}

/// Waits (generously: this is not a timing assertion) for the push stream to report `want`.
async fn pushed(rx: &mut mpsc::UnboundedReceiver<bool>, last: &mut bool, want: bool) {
    while *last != want {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some(v)) => *last = v,
            other => panic!("StreamIsActive did not push {want}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keda_client_sees_replicas_rise_ahead_of_a_periodic_burst() {
    let h = start(
        "clock = \"event\"\n\
         [[function]]\nid = \"default/api\"\ncold_start = \"30s\"\n\
         [[function]]\nid = \"default/cron\"\n",
    )
    .await;
    let ch = channel(&h).await;
    let mut keda = ExternalScalerClient::new(ch.clone());
    let mut tel = TelemetryClient::new(ch.clone());
    let api = keda_ref("default/api");
    let cron = keda_ref("default/cron");

    // KEDA first asks for the metric spec: one stable metric, AverageValue target 1.
    let spec = keda
        .get_metric_spec(api.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(spec.metric_specs.len(), 1);
    let ms = &spec.metric_specs[0];
    assert_eq!(ms.metric_name, METRIC_NAME);
    assert_eq!(ms.target_size_float, 1.0);
    #[allow(deprecated)]
    let ts = ms.target_size;
    assert_eq!(ts, 1);

    // A configured function with no data yet: min (0), inactive.
    assert_eq!(
        keda_poll(&mut keda, &api, METRIC_NAME).await,
        (0.0, 0, false)
    );

    // external-push: KEDA keeps StreamIsActive open for the timer-like function.
    let mut push = keda
        .stream_is_active(cron.clone())
        .await
        .unwrap()
        .into_inner();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(m)) = push.message().await {
            if tx.send(m.result).is_err() {
                return;
            }
        }
    });
    let mut last = true;
    pushed(&mut rx, &mut last, false).await; // the initial state

    let mut ahead = Vec::new();
    let mut i = 0i64;
    for period in 0..6 {
        let mut polls = Vec::new(); // (bin index, api value, cron value, cron active)
        let mut api_mid_gap = f64::NAN;
        // The quiet part and the gap: 3 bins (30 s) per message, then one KEDA poll.
        while i < (period + 1) * PERIOD_BINS {
            let samples: Vec<pb::Sample> = (i..i + 3).flat_map(bins).collect();
            tel.ingest(pb::IngestRequest { samples }).await.unwrap();
            i += 3;
            let (a, ai, aa) = keda_poll(&mut keda, &api, METRIC_NAME).await;
            assert_eq!(a as i64, ai, "float and int64 fields agree");
            assert_eq!(aa, a > 0.0, "IsActive agrees with the metric");
            let (c, _, ca) = keda_poll(&mut keda, &cron, METRIC_NAME).await;
            polls.push((i, a, c, ca));
            // 5 min before the next burst: the timer-like function has been scaled to zero
            // and StreamIsActive said so.
            if period >= 3 && i == (period + 1) * PERIOD_BINS - 30 {
                assert_eq!((c, ca), (0.0, false), "cron mid-gap: {polls:?}");
                // The dense function is down from its burst (the policy may hold an instance
                // or two that finished loading after the burst ended, for its planned window).
                assert!(a <= 2.0, "api mid-gap: {polls:?}");
                api_mid_gap = a;
                pushed(&mut rx, &mut last, false).await;
            }
        }
        // `i` is now the first bin of the next burst, and no telemetry of it was sent yet:
        // this is what KEDA sees just before the burst.
        let &(_, a, c, ca) = polls.last().unwrap();
        ahead.push((a, c));
        if period >= 2 {
            assert!(
                a >= 4.0,
                "api pre-warmed ahead of burst {}: {polls:?}",
                period + 1
            );
            if period >= 3 {
                assert!(a > api_mid_gap, "replicas rose before the burst: {polls:?}");
            }
            assert!(
                c >= 1.0 && ca,
                "cron pre-warmed ahead of its run: {polls:?}"
            );
            // external-push: `true` was pushed before the burst's telemetry.
            pushed(&mut rx, &mut last, true).await;
        }
    }
    // Early periods had no history to plan from: the burst was cold.
    assert_eq!(ahead[0], (0.0, 0.0), "{ahead:?}");

    // Sidecar view of the same decision.
    let mut dec = DecisionsClient::new(ch.clone());
    let d = dec
        .get_decision(pb::GetDecisionRequest {
            function_id: "default/api".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.policy, "predictive");
    assert_eq!(d.desired_replicas, d.desired_instances);
    assert!(d.desired_replicas >= 4, "{d:?}");

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
    assert!(f >= 4.0 && active, "at least the 3.5 in flight: {f}");
    // The watch saw the function appear (no data) and then scale up.
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.reason, "no-data");
    let mut last = first;
    while last.desired_replicas == 0 {
        last = watch.message().await.unwrap().unwrap();
    }
    assert!(last.desired_replicas >= 4);
    h.shutdown().await.unwrap();
}
