//! End-to-end: telemetry validation over gRPC (bad samples get INVALID_ARGUMENT naming the
//! problem while the good samples of the batch are kept), oversized batches, the function cap
//! (RESOURCE_EXHAUSTED), client-streaming ingestion, the Functions API, grpc.health.v1,
//! reflection and the admin port.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use pb::functions_client::FunctionsClient;
use pb::telemetry_client::TelemetryClient;
use prewarm_scaler::service::proto::prewarm::v1 as pb;
use service_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_samples_are_named_and_good_ones_kept() {
    let h = start("clock = \"event\"\nmax_batch = 50\n").await;
    let ch = channel(&h).await;
    let mut tel = TelemetryClient::new(ch.clone());
    let mut fns = FunctionsClient::new(ch.clone());

    let mut nan = sample("fn-a", T0 + 10_000, f64::NAN, 0.0);
    nan.invocations = f64::NAN;
    let negative = sample("fn-a", T0 + 20_000, -3.0, 0.0);
    let bad_id = sample("fn a!", T0, 1.0, 0.0);
    let future = sample("fn-a", T0 + 400 * 86_400_000, 1.0, 0.0);
    let batch = vec![
        sample("fn-a", T0, 5.0, 1.0),
        nan,
        negative,
        bad_id,
        sample("fn-b", T0, 2.0, 0.5),
        future,
    ];
    let err = tel
        .ingest(pb::IngestRequest { samples: batch })
        .await
        .expect_err("a batch with bad samples fails");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let msg = err.message();
    assert!(msg.contains("4 of 6 samples rejected (2 accepted"), "{msg}");
    assert!(msg.contains("sample 1: invocations NaN"), "{msg}");
    assert!(msg.contains("sample 2: invocations -3"), "{msg}");
    assert!(msg.contains("sample 3: function id `fn a!`"), "{msg}");
    assert!(msg.contains("sample 5: bin ends at"), "{msg}");
    assert_eq!(err.metadata().get("prewarm-accepted").unwrap(), "2");
    // The structured answer rides in the status details.
    let details: pb::IngestResponse = prost::Message::decode(err.details()).unwrap();
    let reasons: Vec<&str> = details
        .rejections
        .iter()
        .map(|r| r.reason.as_str())
        .collect();
    assert_eq!(
        reasons,
        ["bad_count", "bad_count", "bad_function_id", "too_new"]
    );
    assert_eq!(details.rejections[2].index, 3);

    // The good samples were stored.
    for id in ["fn-a", "fn-b"] {
        let m = fns
            .get_model_state(pb::GetModelStateRequest { id: id.into() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(m.samples, 1, "{id}");
    }

    // Oversized batch: refused whole, with the limit named.
    let big = (0..51)
        .map(|i| sample("fn-a", T0 + i * 10_000, 1.0, 0.1))
        .collect();
    let err = tel
        .ingest(pb::IngestRequest { samples: big })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("exceeds max_batch 50"),
        "{}",
        err.message()
    );

    // Client streaming never fails on bad samples: it counts them.
    let msgs = vec![
        pb::IngestRequest {
            samples: vec![sample("fn-a", T0 + 30_000, 1.0, 0.1)],
        },
        pb::IngestRequest {
            samples: vec![
                sample("", T0 + 30_000, 1.0, 0.1),
                sample("fn-b", T0 + 30_000, 1.0, 0.1),
            ],
        },
    ];
    let resp = tel
        .ingest_stream(tokio_stream::iter(msgs))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((resp.accepted, resp.rejected), (2, 1));
    assert_eq!(resp.rejections[0].index, 1);
    assert_eq!(resp.rejections[0].reason, "bad_function_id");

    // The rejections are counted by reason on /metrics.
    let (status, body) = http_get(&h.admin_addr.to_string(), "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains("prewarm_samples_rejected_total{reason=\"bad_count\"} 2"),
        "{body}"
    );
    assert!(body.contains("prewarm_samples_ingested_total 4"), "{body}");
    assert!(
        body.contains("prewarm_tick_duration_seconds_bucket"),
        "{body}"
    );
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_cap_functions_api_health_and_reflection() {
    let h = start("clock = \"event\"\nmax_functions = 2\n[[function]]\nid = \"one\"\n").await;
    let ch = channel(&h).await;
    let mut fns = FunctionsClient::new(ch.clone());
    let mut tel = TelemetryClient::new(ch.clone());
    let cfg = |id: &str, policy: &str| pb::FunctionConfig {
        id: id.into(),
        policy: policy.into(),
        min: 1,
        max: 4,
        target: Some(pb::Target {
            kind: "keda".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let bad = fns
        .register_function(pb::RegisterFunctionRequest {
            config: Some(cfg("two", "lru")),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(
        bad.message().contains("unknown policy `lru`"),
        "{}",
        bad.message()
    );
    fns.register_function(pb::RegisterFunctionRequest {
        config: Some(cfg("two", "reactive:target=2")),
    })
    .await
    .unwrap();
    let dup = fns
        .register_function(pb::RegisterFunctionRequest {
            config: Some(cfg("two", "")),
        })
        .await
        .unwrap_err();
    assert_eq!(dup.code(), tonic::Code::AlreadyExists);
    let full = fns
        .register_function(pb::RegisterFunctionRequest {
            config: Some(cfg("three", "")),
        })
        .await
        .unwrap_err();
    assert_eq!(full.code(), tonic::Code::ResourceExhausted);
    assert!(
        full.message().contains("function cap reached: 2"),
        "{}",
        full.message()
    );
    // Telemetry for a new function past the cap: RESOURCE_EXHAUSTED too.
    let err = tel
        .ingest(pb::IngestRequest {
            samples: vec![sample("four", T0, 1.0, 0.1)],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);

    let list = fns
        .list_functions(pb::ListFunctionsRequest {})
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = list.functions.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["one", "two"]);
    fns.update_function(pb::UpdateFunctionRequest {
        config: Some(cfg("two", "reactive:target=3")),
    })
    .await
    .unwrap();
    let m = fns
        .get_model_state(pb::GetModelStateRequest { id: "two".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.policy, "reactive:target=3");
    assert!(
        fns.delete_function(pb::DeleteFunctionRequest { id: "two".into() })
            .await
            .unwrap()
            .into_inner()
            .deleted
    );

    // grpc.health.v1
    let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    for svc in ["", "externalscaler.ExternalScaler", "prewarm.v1.Telemetry"] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: svc.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }

    // Server reflection lists our services.
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let mut refl = ServerReflectionClient::new(ch.clone());
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut resp = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let msg = resp.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "externalscaler.ExternalScaler",
        "prewarm.v1.Telemetry",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == want), "{names:?}");
    }

    // Admin port.
    let admin = h.admin_addr.to_string();
    assert_eq!(http_get(&admin, "/live").unwrap().0, 200);
    assert_eq!(http_get(&admin, "/ready").unwrap().0, 200);
    h.shutdown().await.unwrap();
}
