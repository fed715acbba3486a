//! The bad-input table (docs/reliability.md): every kind of bad input tried against the real
//! server, one test per row, each checking the answer (gRPC code, reason, message) and that the
//! good part of the same request was kept and the server carries on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use pb::decisions_client::DecisionsClient;
use pb::functions_client::FunctionsClient;
use pb::telemetry_client::TelemetryClient;
use prewarm_scaler::service::proto::externalscaler::external_scaler_client::ExternalScalerClient;
use prewarm_scaler::service::proto::externalscaler::{GetMetricsRequest, ScaledObjectRef};
use prewarm_scaler::service::proto::prewarm::v1 as pb;
use prewarm_scaler::service::ServiceHandle;
use service_support::*;
use std::io::{Read, Write};
use tonic::Code;

/// A start time the event clock accepts (the good sample sets the clock).
const T: i64 = T0 + 3_600_000;

fn good() -> pb::Sample {
    sample("good", T, 5.0, 1.0)
}

async fn server(extra: &str) -> ServiceHandle {
    start(&format!("clock = \"event\"\n{extra}")).await
}

async fn stored(h: &ServiceHandle, id: &str) -> Option<u64> {
    let mut fns = FunctionsClient::new(channel(h).await);
    fns.get_model_state(pb::GetModelStateRequest { id: id.into() })
        .await
        .ok()
        .map(|m| m.into_inner().samples)
}

/// Sends `[good, bad]` and checks the answer: `code`, the rejection `reason` in the details, a
/// message naming sample 1 and containing `says`; the good sample stored, the bad one not.
async fn rejects_sample(extra: &str, bad: pb::Sample, code: Code, reason: &str, says: &str) {
    let h = server(extra).await;
    let mut tel = TelemetryClient::new(channel(&h).await);
    let bad_id = bad.function_id.clone();
    let err = tel
        .ingest(pb::IngestRequest {
            samples: vec![good(), bad],
        })
        .await
        .expect_err("a batch with a bad sample is answered with an error");
    assert_eq!(err.code(), code, "{}", err.message());
    let msg = err.message();
    assert!(msg.contains("1 of 2 samples rejected (1 accepted"), "{msg}");
    assert!(msg.contains("sample 1: ") && msg.contains(says), "{msg}");
    let details: pb::IngestResponse = prost::Message::decode(err.details()).unwrap();
    assert_eq!((details.accepted, details.rejected), (1, 1));
    assert_eq!(details.rejections[0].reason, reason);
    assert_eq!(details.rejections[0].index, 1);
    assert_eq!(stored(&h, "good").await, Some(1), "the good sample is kept");
    if bad_id != "good" {
        assert_eq!(stored(&h, &bad_id).await, None, "the bad sample is not");
    }
    h.shutdown().await.unwrap();
}

/// One row per bad sample: name, config, the edit applied to a good sample, code, reason,
/// and what the message says.
macro_rules! sample_rows {
    ($($name:ident: $extra:expr, |$s:ident| $edit:expr, $code:ident, $reason:expr, $says:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let mut $s = sample("bad", T, 5.0, 1.0);
            $edit;
            rejects_sample($extra, $s, Code::$code, $reason, $says).await;
        }
    )*};
}

sample_rows! {
    nan_invocations: "", |s| s.invocations = f64::NAN,
        InvalidArgument, "bad_count", "invocations NaN is not a finite count";
    infinite_invocations: "", |s| s.invocations = f64::INFINITY,
        InvalidArgument, "bad_count", "invocations inf is not a finite count";
    negative_invocations: "", |s| s.invocations = -3.0,
        InvalidArgument, "bad_count", "invocations -3 is not a finite count";
    absurd_invocations: "", |s| s.invocations = 1e13,
        InvalidArgument, "bad_count", "invocations 10000000000000 is not a finite count";
    negative_cold_starts: "", |s| s.cold_starts = Some(-1.0),
        InvalidArgument, "bad_count", "cold_starts -1 is not a finite count";
    cold_starts_above_invocations: "", |s| s.cold_starts = Some(6.0),
        InvalidArgument, "bad_count", "cold_starts 6 exceeds invocations 5";
    nan_concurrency: "", |s| s.concurrency = Some(f64::NAN),
        InvalidArgument, "bad_concurrency", "concurrency NaN is not a finite value";
    negative_concurrency: "", |s| s.concurrency = Some(-0.5),
        InvalidArgument, "bad_concurrency", "concurrency -0.5 is not a finite value";
    negative_mean_duration: "", |s| s.mean_duration_ms = Some(-1.0),
        InvalidArgument, "bad_duration", "mean_duration_ms -1 is not within";
    mean_duration_over_a_day: "", |s| s.mean_duration_ms = Some(9e7),
        InvalidArgument, "bad_duration", "mean_duration_ms 90000000 is not within";
    zero_bin_width: "", |s| s.bin_width_ms = 0,
        InvalidArgument, "bad_width", "bin_width_ms 0 is outside 1..=3600000";
    negative_bin_width: "", |s| s.bin_width_ms = -10_000,
        InvalidArgument, "bad_width", "bin_width_ms -10000 is outside";
    bin_width_over_an_hour: "", |s| s.bin_width_ms = 7_200_000,
        InvalidArgument, "bad_width", "bin_width_ms 7200000 is outside";
    bin_before_2000: "", |s| s.bin_start_ms = 0,
        InvalidArgument, "too_old", "bin_start_ms 0 is before 2000-01-01";
    bin_after_2100: "", |s| s.bin_start_ms = i64::MAX - 1,
        InvalidArgument, "too_new", "is after 2100-01-01";
    bin_far_ahead_of_the_clock: "", |s| s.bin_start_ms = T + 2 * 86_400_000,
        InvalidArgument, "too_new", "more than 86400000 ms after the clock";
    bin_older_than_the_history: "", |s| s.bin_start_ms = T - 29 * 86_400_000,
        InvalidArgument, "too_old", "older than the 28 d history";
    empty_function_id: "", |s| s.function_id = String::new(),
        InvalidArgument, "bad_function_id", "function id is empty";
    function_id_too_long: "", |s| s.function_id = "f".repeat(254),
        InvalidArgument, "bad_function_id", "function id is 254 bytes long (max 253)";
    function_id_with_a_space: "", |s| s.function_id = "my fn".into(),
        InvalidArgument, "bad_function_id", "contains ' '";
    function_id_not_ascii: "", |s| s.function_id = "café".into(),
        InvalidArgument, "bad_function_id", "contains 'é'";
    function_id_with_a_nul: "", |s| s.function_id = "a\0b".into(),
        InvalidArgument, "bad_function_id", "contains '\\0'";
    unknown_function_without_auto_register:
        "auto_register = false\n[[function]]\nid = \"good\"\n", |s| s.function_id = "stranger".into(),
        InvalidArgument, "unknown_function", "function `stranger` is not registered";
    one_function_too_many: "max_functions = 1\n", |s| s.function_id = "second".into(),
        ResourceExhausted, "too_many_functions", "function cap reached: 1";
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_over_max_batch() {
    let h = server("max_batch = 10\n").await;
    let mut tel = TelemetryClient::new(channel(&h).await);
    let samples = (0..11)
        .map(|i| sample("f", T + i * 10_000, 1.0, 0.1))
        .collect();
    let err = tel.ingest(pb::IngestRequest { samples }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .contains("batch of 11 samples exceeds max_batch 10: split it (nothing was stored)"),
        "{}",
        err.message()
    );
    assert_eq!(stored(&h, "f").await, None);
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_over_the_size_limit() {
    // max_batch 10 → the 4 MiB floor; one 5 MiB message is refused before decoding.
    let h = server("max_batch = 10\n").await;
    let mut tel = TelemetryClient::new(channel(&h).await);
    let mut s = good();
    s.function_id = "x".repeat(5 << 20);
    let err = tel
        .ingest(pb::IngestRequest { samples: vec![s] })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
    assert!(
        err.message().contains("message length too large"),
        "{}",
        err.message()
    );
    // The connection's server carries on.
    tel.ingest(pb::IngestRequest {
        samples: vec![good()],
    })
    .await
    .unwrap();
    assert_eq!(stored(&h, "good").await, Some(1));
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_bins_are_added() {
    // Several reporters (one per pod or node) each send their count for the same bin: the
    // counts add up. Documented: a client that retries a batch after a lost answer counts twice.
    let h = server("").await;
    let mut tel = TelemetryClient::new(channel(&h).await);
    let r = tel
        .ingest(pb::IngestRequest {
            samples: vec![good(), good()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.accepted, r.rejected), (2, 0));
    let mut fns = FunctionsClient::new(channel(&h).await);
    let m = fns
        .get_model_state(pb::GetModelStateRequest { id: "good".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.samples, 2);
    assert_eq!(m.tier_totals[0], 10.0, "5 + 5 invocations in one bin");
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_bins_land_in_their_bin() {
    let h = server("").await;
    let mut tel = TelemetryClient::new(channel(&h).await);
    let late = sample("good", T - 60_000, 3.0, 1.0);
    let r = tel
        .ingest(pb::IngestRequest {
            samples: vec![good(), late],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.accepted, r.rejected), (2, 0));
    let mut fns = FunctionsClient::new(channel(&h).await);
    let m = fns
        .get_model_state(pb::GetModelStateRequest { id: "good".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.tier_totals[0], 8.0);
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_batch() {
    let h = server("").await;
    let mut tel = TelemetryClient::new(channel(&h).await);
    let r = tel
        .ingest(pb::IngestRequest { samples: vec![] })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.accepted, r.rejected), (0, 0));
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sample_in_a_stream() {
    // Client streaming: the bad sample is counted with its index across messages; the stream
    // and its good samples go on.
    let h = server("").await;
    let mut tel = TelemetryClient::new(channel(&h).await);
    let mut bad = sample("bad", T, -1.0, 0.0);
    bad.bin_start_ms = T;
    let msgs = vec![
        pb::IngestRequest {
            samples: vec![good()],
        },
        pb::IngestRequest {
            samples: vec![sample("good", T + 10_000, 1.0, 0.1), bad],
        },
    ];
    let r = tel
        .ingest_stream(tokio_stream::iter(msgs))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.accepted, r.rejected), (2, 1));
    assert_eq!(r.rejections[0].index, 2);
    assert_eq!(r.rejections[0].reason, "bad_count");
    assert_eq!(stored(&h, "good").await, Some(2));
    h.shutdown().await.unwrap();
}

fn config_pb(id: &str) -> pb::FunctionConfig {
    pb::FunctionConfig {
        id: id.into(),
        policy: "reactive".into(),
        min: 0,
        max: 4,
        ..Default::default()
    }
}

/// Registers `c` and expects `code` with a message containing `says`; the function list is
/// unchanged.
async fn refuses_registration(c: Option<pb::FunctionConfig>, code: Code, says: &str) {
    let h = server("[[function]]\nid = \"kept\"\n").await;
    let mut fns = FunctionsClient::new(channel(&h).await);
    let err = fns
        .register_function(pb::RegisterFunctionRequest { config: c })
        .await
        .unwrap_err();
    assert_eq!(err.code(), code, "{}", err.message());
    assert!(err.message().contains(says), "{}", err.message());
    let ids: Vec<String> = fns
        .list_functions(pb::ListFunctionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .functions
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(ids, ["kept"]);
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_without_config() {
    refuses_registration(None, Code::InvalidArgument, "`config` is required").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_unknown_policy() {
    let c = pb::FunctionConfig {
        policy: "lru".into(),
        ..config_pb("f")
    };
    refuses_registration(Some(c), Code::InvalidArgument, "unknown policy `lru`").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_min_above_max() {
    let c = pb::FunctionConfig {
        min: 5,
        max: 2,
        ..config_pb("f")
    };
    refuses_registration(Some(c), Code::InvalidArgument, "min 5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_lambda_latest() {
    let c = pb::FunctionConfig {
        target: Some(pb::Target {
            kind: "lambda".into(),
            function: "f".into(),
            qualifier: "$LATEST".into(),
            ..Default::default()
        }),
        ..config_pb("f")
    };
    refuses_registration(Some(c), Code::InvalidArgument, "$LATEST").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_unknown_target_kind() {
    let c = pb::FunctionConfig {
        target: Some(pb::Target {
            kind: "openwhisk".into(),
            ..Default::default()
        }),
        ..config_pb("f")
    };
    refuses_registration(Some(c), Code::InvalidArgument, "target.kind `openwhisk`").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_bad_function_id() {
    refuses_registration(
        Some(config_pb("a/b c")),
        Code::InvalidArgument,
        "function id `a/b c` contains ' '",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_existing_function() {
    refuses_registration(Some(config_pb("kept")), Code::AlreadyExists, "kept").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_of_an_unknown_function() {
    let h = server("").await;
    let mut dec = DecisionsClient::new(channel(&h).await);
    let err = dec
        .get_decision(pb::GetDecisionRequest {
            function_id: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("function `nobody` is not known"));
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keda_request_without_scaled_object_ref() {
    let h = server("").await;
    let mut k = ExternalScalerClient::new(channel(&h).await);
    let err = k
        .get_metrics(GetMetricsRequest {
            scaled_object_ref: None,
            metric_name: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("`scaledObjectRef` is required"));
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keda_request_for_a_function_without_data() {
    // Documented: KEDA keeps working (no error that would pause the ScaledObject); the answer
    // is 0 replicas, inactive, until telemetry arrives.
    let h = server("").await;
    let mut k = ExternalScalerClient::new(channel(&h).await);
    let r = ScaledObjectRef {
        name: "unseen".into(),
        namespace: "default".into(),
        ..Default::default()
    };
    let (value, int, active) =
        keda_poll(&mut k, &r, prewarm_scaler::service::grpc::METRIC_NAME).await;
    assert_eq!((value, int, active), (0.0, 0, false));
    h.shutdown().await.unwrap();
}

/// Writes `junk` to `addr`, reads whatever comes back until the server closes or 2 s pass.
fn send_junk(addr: &std::net::SocketAddr, junk: &[u8]) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let _ = s.write_all(junk);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_bytes_on_the_grpc_port() {
    let h = server("").await;
    let addr = h.grpc_addr;
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = tokio::task::spawn_blocking(move || {
        send_junk(&addr, &junk);
        send_junk(&addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        send_junk(
            &addr,
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        );
    })
    .await;
    // Still serving.
    let mut tel = TelemetryClient::new(channel(&h).await);
    tel.ingest(pb::IngestRequest {
        samples: vec![good()],
    })
    .await
    .unwrap();
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_bytes_on_the_admin_port() {
    let h = server("").await;
    let addr = h.admin_addr;
    let reply = tokio::task::spawn_blocking(move || {
        send_junk(
            &addr,
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage",
        );
        send_junk(
            &addr,
            b"GET /metrics HTTP/1.1\r\nHost: \xff\xfe\r\nContent-Length: -5\r\n\r\n",
        )
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    let (code, _) = http_get(&h.admin_addr.to_string(), "/ready").unwrap();
    assert_eq!(code, 200);
    h.shutdown().await.unwrap();
}
