//! OpenTelemetry export (cargo feature `otel`): the service's tracing spans — ingest batches,
//! decision ticks, Redis flushes, actuations — sent over OTLP/gRPC to a collector named by the
//! standard `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

/// Environment variables that turn the export on (the OpenTelemetry specification's names).
pub const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// The exporter's `service.name` unless `OTEL_SERVICE_NAME` says otherwise.
pub const SERVICE_NAME: &str = "prewarm";

/// The tracing layer that turns spans into OpenTelemetry spans.
pub type OtelLayer<S> =
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>;

/// Keeps the tracer provider alive; flushes and shuts it down when dropped.
#[derive(Debug)]
pub struct OtelGuard(SdkTracerProvider);

impl Drop for OtelGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.shutdown() {
            eprintln!("warning: OpenTelemetry export did not shut down cleanly: {e}");
        }
    }
}

/// The collector endpoint from the environment, if export is configured.
pub fn endpoint() -> Option<String> {
    ENDPOINT_VARS
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
}

/// A tracing layer exporting spans to the configured collector (batched, in the background),
/// and the guard that flushes it; `None` when no endpoint is configured. Must run inside a
/// tokio runtime (the gRPC channel lives there).
pub fn layer<S>() -> Result<Option<(OtelLayer<S>, OtelGuard)>, String>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let Some(endpoint) = endpoint() else {
        return Ok(None);
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .build()
        .map_err(|e| format!("OTLP exporter for {endpoint}: {e}"))?;
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| SERVICE_NAME.to_string());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(name).build())
        .build();
    let tracer = provider.tracer("prewarm");
    Ok(Some((
        tracing_opentelemetry::layer().with_tracer(tracer),
        OtelGuard(provider),
    )))
}
