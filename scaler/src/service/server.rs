//! Starting and stopping the service: binds the gRPC and admin ports, loads Redis state, runs
//! the wall-clock tick and the Redis flush loops, and shuts down in order (health NOT_SERVING,
//! drain in-flight RPCs and end streams, final flush to Redis).

use super::actuator::{self, Actuators};
use super::admin::{self, AdminState};
use super::auth::{TokenCheck, TokenStore};
use super::config::{ClockMode, LogFormat, ServiceConfig};
use super::engine::Engine;
use super::grpc::{self, Shared};
use super::metrics::Metrics;
use super::persist;
use super::proto::externalscaler::external_scaler_server::ExternalScalerServer;
use super::proto::prewarm::v1::{
    decisions_server::DecisionsServer, functions_server::FunctionsServer,
    telemetry_server::TelemetryServer,
};
use super::reload;
use super::tls::{self, TlsState};
use super::ServiceError;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

/// Time after a decision-interval boundary at which the wall-clock tick runs, so that the bins
/// ending at the boundary have arrived.
pub const WALL_TICK_LAG_MS: u64 = 2_000;

/// HTTP/2 stream window of the gRPC server (and of the bundled clients), bytes.
pub const GRPC_STREAM_WINDOW: u32 = 4 << 20;

/// Upper bound on the encoded size of one valid sample (a 253-byte id and every field set),
/// bytes: an ingestion message may be up to `max_batch` times this (at least 4 MiB).
pub const MAX_SAMPLE_BYTES: usize = 320;

/// The largest ingestion message accepted for a `max_batch`, bytes.
pub fn max_message_bytes(max_batch: usize) -> usize {
    max_batch.saturating_mul(MAX_SAMPLE_BYTES).max(4 << 20)
}

/// A message over the size limit is RESOURCE_EXHAUSTED in gRPC (grpc-go and grpc-java answer
/// so); tonic's decoder says OUT_OF_RANGE, so that one answer is rewritten.
fn oversized_is_resource_exhausted<B>(
    mut r: tonic::codegen::http::Response<B>,
) -> tonic::codegen::http::Response<B> {
    let h = r.headers();
    let oversized = h.get("grpc-status").is_some_and(|v| v == "11")
        && h.get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| m.contains("length%20too%20large") || m.contains("length too large"));
    if oversized {
        let code = tonic::codegen::http::HeaderValue::from_static("8");
        r.headers_mut().insert("grpc-status", code);
    }
    r
}

/// gRPC service names reported by grpc.health.v1 (plus "" for the whole server).
pub const SERVICE_NAMES: [&str; 4] = super::config::GUARDED_SERVICES;

/// A running service.
#[derive(Debug)]
pub struct ServiceHandle {
    /// Bound gRPC address.
    pub grpc_addr: SocketAddr,
    /// Bound admin HTTP address.
    pub admin_addr: SocketAddr,
    engine: Arc<Engine>,
    actuators: Arc<Actuators>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), ServiceError>>,
}

impl ServiceHandle {
    /// The engine (for in-process inspection, benches and tests).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The status of the actuated (Knative, Lambda) targets.
    pub fn actuators(&self) -> &Arc<Actuators> {
        &self.actuators
    }

    /// Shuts down in order and waits for it: health NOT_SERVING, drain, final Redis flush.
    pub async fn shutdown(self) -> Result<(), ServiceError> {
        let _ = self.stop.send(true);
        self.wait().await
    }

    /// Waits until the service stops (after [`ServiceHandle::shutdown`] or a fatal error).
    pub async fn wait(self) -> Result<(), ServiceError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(ServiceError::Io {
                context: "service task".into(),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }
}

/// Sets up tracing logs (`RUST_LOG` filters, default `info`). Safe to call twice.
///
/// With the `otel` feature and `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) set,
/// spans are also exported over OTLP/gRPC (call this inside a tokio runtime then); an endpoint
/// that cannot be used is an error naming the variable. Keep the guard until exit: dropping it
/// flushes the spans not yet sent.
pub fn init_logging(format: LogFormat) -> Result<LoggingGuard, String> {
    use tracing_subscriber::{prelude::*, EnvFilter};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(fmt);
    #[cfg(feature = "otel")]
    if let Some((layer, guard)) = super::otel::layer().map_err(|e| {
        format!(
            "config key `{}`: {e}",
            super::otel::ENDPOINT_VARS.join("` / `")
        )
    })? {
        let _ = registry.with(layer).try_init();
        return Ok(LoggingGuard { _otel: Some(guard) });
    }
    let _ = registry.try_init();
    Ok(LoggingGuard::default())
}

/// Keeps log and trace export running; dropping it flushes exported spans (feature `otel`).
#[derive(Debug, Default)]
pub struct LoggingGuard {
    #[cfg(feature = "otel")]
    _otel: Option<super::otel::OtelGuard>,
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, ServiceError> {
    TcpListener::bind(addr).await.map_err(|e| ServiceError::Io {
        context: format!("cannot bind the {what} address {addr}"),
        source: e,
    })
}

/// Starts the service: loads Redis state (if configured), binds both ports, and serves until
/// [`ServiceHandle::shutdown`]. Returns once the ports are bound.
pub async fn spawn(cfg: ServiceConfig) -> Result<ServiceHandle, ServiceError> {
    let metrics = Arc::new(
        Metrics::new(cfg.metrics_function_labels)
            .map_err(|e| ServiceError::InvalidArgument(format!("metrics: {e}")))?,
    );
    // One rustls crypto provider (aws-lc-rs) for the whole process, TLS on or off: the
    // actuators' clients (kube, AWS SDK) build rustls configs too.
    tls::install_crypto_provider();
    // Credentials first: a missing or bad file fails the start, naming the file.
    let tls_state = cfg.tls.clone().map(TlsState::load).transpose()?;
    let tokens = cfg.auth.clone().map(TokenStore::load).transpose()?;
    let engine = Arc::new(Engine::new(cfg.clone(), metrics.clone())?);
    let (store, persist_status) =
        persist::start(cfg.redis_url.as_deref(), &cfg.redis_prefix, &engine).await?;
    let persist_status = Arc::new(persist_status);
    let grpc_l = bind(cfg.grpc_addr, "gRPC").await?;
    let admin_l = bind(cfg.admin_addr, "admin").await?;
    let local = |l: &TcpListener| {
        l.local_addr().map_err(|e| ServiceError::Io {
            context: "local address".into(),
            source: e,
        })
    };
    let grpc_addr = local(&grpc_l)?;
    let admin_addr = local(&admin_l)?;

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let (drain_tx, drain_rx) = watch::channel(false);
    let actuators = Arc::new(Actuators::default());
    let shared = Shared {
        engine: engine.clone(),
        draining: drain_rx.clone(),
        ingest_permits: Arc::new(tokio::sync::Semaphore::new(grpc::ingest_parallelism())),
        actuators: actuators.clone(),
    };
    let (health, health_svc) = tonic_health::server::health_reporter();
    for name in SERVICE_NAMES.iter().chain([""].iter()) {
        health
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(super::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServiceError::InvalidArgument(format!("reflection: {e}")))?;
    // Wide HTTP/2 windows: ingestion messages are large (10k samples ≈ 400 KB); the 64 KiB
    // default costs a flow-control round trip per 64 KiB.
    // Bearer tokens guard the prewarm.v1 and KEDA services (not health, not reflection).
    let check = |service: &str| match (&tokens, &cfg.auth) {
        (Some(store), Some(a)) if !a.exempt.iter().any(|e| e == service) => {
            TokenCheck::new(store.clone(), metrics.clone())
        }
        _ => TokenCheck::open(),
    };
    let router = tonic::transport::Server::builder()
        .initial_stream_window_size(Some(GRPC_STREAM_WINDOW))
        .initial_connection_window_size(Some(2 * GRPC_STREAM_WINDOW))
        .layer(tower::util::MapResponseLayer::new(
            oversized_is_resource_exhausted::<tonic::body::Body>,
        ))
        .add_service(health_svc)
        .add_service(reflection)
        .add_service(tonic::service::interceptor::InterceptedService::new(
            TelemetryServer::new(grpc::TelemetryService(shared.clone()))
                .max_decoding_message_size(max_message_bytes(cfg.max_batch)),
            check(SERVICE_NAMES[0]),
        ))
        .add_service(DecisionsServer::with_interceptor(
            grpc::DecisionsService(shared.clone()),
            check(SERVICE_NAMES[1]),
        ))
        .add_service(FunctionsServer::with_interceptor(
            grpc::FunctionsService(shared.clone()),
            check(SERVICE_NAMES[2]),
        ))
        .add_service(ExternalScalerServer::with_interceptor(
            grpc::KedaService(shared.clone()),
            check(SERVICE_NAMES[3]),
        ));
    let mut d = drain_rx.clone();
    let grpc_task = match &tls_state {
        None => tokio::spawn(async move {
            // TCP_NODELAY on every accepted connection (as the TLS path does): without it,
            // Nagle holds a reply's trailers behind the client's delayed ACK, ~40 ms per call
            // for a few percent of calls (measured with `prewarm loadgen`: Ingest p99 47 ms).
            let incoming = TcpIncoming::from(grpc_l).with_nodelay(Some(true));
            router
                .serve_with_incoming_shutdown(incoming, async move { grpc::drained(&mut d).await })
                .await
        }),
        Some(state) => {
            let incoming = tls::incoming(grpc_l, state.clone(), metrics.clone(), drain_rx.clone());
            tokio::spawn(async move {
                router
                    .serve_with_incoming_shutdown(
                        incoming,
                        async move { grpc::drained(&mut d).await },
                    )
                    .await
            })
        }
    };
    let mut reload_tasks = Vec::new();
    if let Some(state) = &tls_state {
        let every = state.settings().reload_interval_ms;
        reload_tasks.push(reload::spawn_poller(
            state.clone(),
            every,
            metrics.clone(),
            drain_rx.clone(),
        ));
    }
    if let (Some(store), Some(a)) = (&tokens, &cfg.auth) {
        if a.token_file.is_some() {
            reload_tasks.push(reload::spawn_poller(
                store.clone(),
                a.reload_interval_ms,
                metrics.clone(),
                drain_rx.clone(),
            ));
        }
    }
    let ready = Arc::new(AtomicBool::new(false));
    let app = admin::router(AdminState {
        metrics: metrics.clone(),
        ready: ready.clone(),
        persistence: persist_status.clone(),
    });
    let mut d = drain_rx.clone();
    let admin_task = tokio::spawn(async move {
        axum::serve(admin_l, app)
            .with_graceful_shutdown(async move { grpc::drained(&mut d).await })
            .await
    });
    let tick_task = (cfg.clock == ClockMode::Wall).then(|| {
        let engine = engine.clone();
        let mut d = drain_rx.clone();
        let iv = cfg.decision_interval_ms;
        tokio::spawn(async move {
            loop {
                let now = grpc::wall_now();
                let boundary = now.saturating_sub(WALL_TICK_LAG_MS) / iv * iv + iv;
                let wait = (boundary + WALL_TICK_LAG_MS).saturating_sub(now);
                tokio::select! {
                    _ = grpc::drained(&mut d) => return,
                    _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                }
                let e = engine.clone();
                let _ = tokio::task::spawn_blocking(move || e.tick(boundary)).await;
            }
        })
    });
    let flush_task = cfg.redis_url.clone().map(|url| {
        tokio::spawn(persist::run(
            engine.clone(),
            persist_status.clone(),
            url,
            cfg.redis_prefix.clone(),
            store,
            Duration::from_millis(cfg.flush_interval_ms),
            drain_rx.clone(),
        ))
    });
    let actuator_task = actuator::spawn(
        engine.clone(),
        actuators.clone(),
        cfg.actuator.clone(),
        cfg.clock,
        drain_rx.clone(),
    );
    ready.store(true, Ordering::Release);
    tracing::info!(
        %grpc_addr,
        %admin_addr,
        clock = ?cfg.clock,
        persistence = %persist_status.get().describe(),
        tls = tls_state.is_some(),
        mtls = cfg.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        tokens = tokens.as_ref().map_or(0, |t| t.len()),
        "prewarm serving"
    );

    let drain_timeout_ms = cfg.drain_timeout_ms;
    let engine_for_task = engine.clone();
    let task = tokio::spawn(async move {
        let engine = engine_for_task;
        let _ = stop_rx.wait_for(|s| *s).await;
        tracing::info!("shutting down: NOT_SERVING, draining");
        ready.store(false, Ordering::Release);
        for name in SERVICE_NAMES.iter().chain([""].iter()) {
            health
                .set_service_status(*name, ServingStatus::NotServing)
                .await;
        }
        let _ = drain_tx.send(true);
        // Our own streams end on the drain signal; others (e.g. grpc.health.v1 Watch) would
        // hold the server open, so the drain is bounded.
        let drain = Duration::from_millis(drain_timeout_ms);
        let mut grpc_task = grpc_task;
        let grpc_res = match tokio::time::timeout(drain, &mut grpc_task).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(
                    timeout_ms = drain_timeout_ms,
                    "drain timeout: closing the remaining gRPC streams"
                );
                grpc_task.abort();
                let _ = grpc_task.await;
                Ok(Ok(()))
            }
        };
        let mut admin_task = admin_task;
        if tokio::time::timeout(drain, &mut admin_task).await.is_err() {
            admin_task.abort();
        }
        if let Some(t) = tick_task {
            let _ = t.await;
        }
        let _ = actuator_task.await;
        for t in reload_tasks {
            let _ = t.await;
        }
        if let Some(t) = flush_task {
            match t.await {
                Ok(Some(store)) => {
                    let mut run_id = None;
                    match persist::flush(&engine, &store, &mut run_id).await {
                        Ok(()) => tracing::info!("final flush to redis done"),
                        Err(e) => tracing::error!(error = %e, "final flush to redis failed"),
                    }
                }
                Ok(None) => tracing::error!(
                    "redis unreachable at shutdown: state since start not persisted"
                ),
                Err(e) => tracing::error!(error = %e, "persistence task failed"),
            }
        }
        match grpc_res {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServiceError::Io {
                context: "gRPC server".into(),
                source: std::io::Error::other(e.to_string()),
            }),
            Err(e) => Err(ServiceError::Io {
                context: "gRPC server task".into(),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    });
    Ok(ServiceHandle {
        grpc_addr,
        admin_addr,
        engine,
        actuators,
        stop: stop_tx,
        task,
    })
}
