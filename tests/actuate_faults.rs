//! An actuator API failing: the Lambda fake answers the first calls with HTTP 500
//! `ServiceException` while telemetry keeps arriving. KEDA keeps getting decisions, the target's
//! status reports the errors with a growing backoff between attempts, and once Lambda answers
//! again the provisioned concurrency is written. (Loopback fake: no AWS account is reachable.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use prewarm_scaler::actuate::fakes::lambda::{FakeLambda, Fault};
use prewarm_scaler::service::proto::externalscaler::external_scaler_client::ExternalScalerClient;
use prewarm_scaler::service::proto::prewarm::v1 as pb;
use prewarm_scaler::service::proto::prewarm::v1::functions_client::FunctionsClient;
use prewarm_scaler::service::proto::prewarm::v1::telemetry_client::TelemetryClient;
use service_support::*;
use std::time::Duration;

const FAILURES: usize = 4;

async fn status(fns: &mut FunctionsClient<tonic::transport::Channel>) -> Option<pb::TargetStatus> {
    fns.list_target_status(pb::ListTargetStatusRequest {})
        .await
        .unwrap()
        .into_inner()
        .targets
        .into_iter()
        .find(|t| t.function_id == "lam")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_keep_flowing_to_keda_while_lambda_fails_and_the_write_lands_after() {
    let lambda = FakeLambda::start().await.unwrap();
    lambda.put_function("checkout", 512, Some(100), &["1"], &[("live", "1")]);
    // Edition 2021: setting the environment is safe; this test binary is ours alone.
    aws_env_for(&lambda);
    lambda.fail_next(
        FAILURES,
        Fault::Error {
            status: 500,
            code: "ServiceException".into(),
            message: "injected outage".into(),
        },
    );

    let h = start(
        "clock = \"event\"\n\
         [actuator]\nmin_interval = \"10s\"\npoll = \"10s\"\nresync = \"1m\"\n\
         backoff_base = \"10s\"\nbackoff_max = \"2m\"\n\
         [[function]]\nid = \"lam\"\nmax = 50\nmemory_mb = 512\n\
         target = { kind = \"lambda\", function = \"checkout\", qualifier = \"live\" }\n",
    )
    .await;
    let ch = channel(&h).await;
    let mut tel = TelemetryClient::new(ch.clone());
    let mut fns = FunctionsClient::new(ch.clone());
    let mut keda = ExternalScalerClient::new(ch);
    let r = keda_ref("lam");
    let metric = keda
        .get_metric_spec(r.clone())
        .await
        .unwrap()
        .into_inner()
        .metric_specs[0]
        .metric_name
        .clone();

    // Steady demand: 40 invocations per 10 s bin at concurrency 4, for 30 minutes.
    let mut replicas_while_failing = Vec::new();
    let mut failing_at = Vec::new();
    for b in 0..180 {
        let start = T0 + b * 10_000;
        tel.ingest(pb::IngestRequest {
            samples: vec![sample("lam", start, 40.0, 4.0)],
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        // The status exists once the actuator task has started.
        let Some(st) = status(&mut fns).await else {
            continue;
        };
        if st.consecutive_failures > 0 {
            let (value, _, _) = keda_poll(&mut keda, &r, &metric).await;
            replicas_while_failing.push(value);
            if failing_at.last() != Some(&st.last_error_ms) {
                failing_at.push(st.last_error_ms);
            }
        }
    }
    let st = status(&mut fns).await.expect("the target has a status");

    // Every injected failure was seen and counted, and KEDA was answered meanwhile with the
    // policy's replicas.
    assert_eq!(st.errors, FAILURES as u64, "{st:?}");
    assert!(
        !replicas_while_failing.is_empty() && replicas_while_failing.iter().all(|&v| v >= 1.0),
        "KEDA while Lambda failed: {replicas_while_failing:?}"
    );
    // Backoff: the gaps between failed attempts grow (equal jitter on 10 s doubling).
    assert_eq!(failing_at.len(), FAILURES, "{failing_at:?}");
    let gaps: Vec<i64> = failing_at.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|&g| g >= 5_000), "gaps {gaps:?}");
    assert!(gaps[gaps.len() - 1] > gaps[0], "backoff grows: {gaps:?}");
    // Recovered: the error is cleared and the value is on Lambda.
    assert_eq!(st.consecutive_failures, 0, "{st:?}");
    assert!(st.last_error.is_empty(), "{st:?}");
    assert!(st.applies >= 1, "{st:?}");
    let (requested, _, _) = lambda.provisioned("checkout", "live").expect("a config");
    assert!(requested >= 1, "provisioned {requested}");
    let failed = lambda.requests().iter().filter(|q| q.status == 500).count();
    assert_eq!(failed, FAILURES);
    h.shutdown().await.unwrap();
}
