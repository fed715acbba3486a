//! OpenTelemetry export (feature `otel`): the `prewarm serve` binary, pointed at a collector by
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, sends its ingest and tick spans over OTLP/gRPC. The collector
//! here is a loopback server of the real OTLP `TraceService` contract (opentelemetry-proto's
//! generated service; no collector binary is available on the CI machine), which records what
//! it receives. A bad endpoint fails the start with exit 64 naming the variable.

#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prewarm_scaler::service::proto::prewarm::v1 as pb;
use service_support::*;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use tonic::{Request, Response, Status};

#[derive(Default, Clone)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        req: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.0.lock().unwrap().push(req.into_inner());
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// (resource service.name, span name, attributes as text) of one received span.
type Span = (String, String, Vec<(String, String)>);

/// Every span received.
fn spans(c: &Collector) -> Vec<Span> {
    let text = |v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match v
        .as_ref()
        .and_then(|a| a.value.clone())
    {
        Some(Value::StringValue(s)) => s,
        Some(Value::IntValue(i)) => i.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    };
    let mut out = Vec::new();
    for req in c.0.lock().unwrap().iter() {
        for rs in &req.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .map(|a| text(&a.value))
                .unwrap_or_default();
            for ss in &rs.scope_spans {
                for s in &ss.spans {
                    let attrs = s
                        .attributes
                        .iter()
                        .map(|a| (a.key.clone(), text(&a.value)))
                        .collect();
                    out.push((service.clone(), s.name.clone(), attrs));
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exports_ingest_and_tick_spans_over_otlp() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let c = collector.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(c))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });

    let mut child = Command::new(env!("CARGO_BIN_EXE_prewarm"))
        .args(["serve", "--grpc-addr", "127.0.0.1:0", "--clock", "event"])
        .args(["--admin-addr", &format!("127.0.0.1:{}", free_port())])
        .env_remove("PREWARM_CONFIG")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("RUST_LOG", "info,prewarm_scaler=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let grpc = serving_addr(&mut child).await;
    let mut tel = pb::telemetry_client::TelemetryClient::connect(grpc)
        .await
        .unwrap();
    // Six 10 s bins: the event clock crosses decision ticks.
    let samples = (0..6)
        .map(|i| sample("traced", T0 + i * 10_000, 10.0, 1.0))
        .collect();
    let r = tel.ingest(pb::IngestRequest { samples }).await.unwrap();
    assert_eq!(r.get_ref().accepted, 6);

    // SIGTERM: the exit path flushes the spans not yet sent.
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let got = spans(&collector);
    let ingest = got
        .iter()
        .find(|s| s.1 == "ingest")
        .unwrap_or_else(|| panic!("no ingest span in {got:?}"));
    assert_eq!(ingest.0, "prewarm", "service.name");
    let attr = |s: &Span, k: &str| s.2.iter().find(|a| a.0 == k).map(|a| a.1.clone());
    assert_eq!(attr(ingest, "samples").as_deref(), Some("6"));
    assert_eq!(attr(ingest, "accepted").as_deref(), Some("6"));
    assert_eq!(attr(ingest, "rejected").as_deref(), Some("0"));
    let tick = got
        .iter()
        .find(|s| s.1 == "tick")
        .unwrap_or_else(|| panic!("no tick span in {got:?}"));
    assert_eq!(attr(tick, "functions").as_deref(), Some("1"));
    assert!(attr(tick, "at_ms").is_some());
}

#[test]
fn a_bad_endpoint_fails_the_start_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_prewarm"))
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .env_remove("PREWARM_CONFIG")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{stderr}");
}
