//! The gRPC services: prewarm.v1 Telemetry, Decisions and Functions, and the KEDA
//! `externalscaler.ExternalScaler`. Every read is answered from the published snapshot; only
//! ingestion (which may run the event-clock tick) does work, on a blocking thread.

use super::actuator::TargetRecord;
use super::config::FunctionConfig;
use super::engine::{DecisionRecord, Engine, IngestOutcome};
use super::proto::externalscaler as ks;
use super::proto::prewarm::v1 as pb;
use crate::actuate::{KnativeMode, KnativeTarget, LambdaTarget, TargetSpec};
use crate::policy::Millis;
use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

/// The one metric name used in GetMetricSpec and GetMetrics.
pub const METRIC_NAME: &str = "prewarm-desired-replicas";

/// Wall-clock time in ms since the epoch (read by the driver, never by a policy).
pub fn wall_now() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// What every service shares.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Becomes true when the server drains: streams end.
    pub draining: watch::Receiver<bool>,
    /// Ingestion batches processed at once (cores - 1, at least 1), so that reads (KEDA,
    /// decisions) always find a core.
    pub ingest_permits: Arc<tokio::sync::Semaphore>,
    /// Status of the actuated (Knative, Lambda) targets.
    pub actuators: Arc<super::actuator::Actuators>,
}

/// The number of ingestion batches processed at once: one less than the cores, at least 1.
pub fn ingest_parallelism() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .max(1)
}

impl Shared {
    fn now(&self) -> Millis {
        self.engine.now()
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn to_pb(d: &DecisionRecord) -> pb::FunctionDecision {
    pb::FunctionDecision {
        function_id: d.function_id.clone(),
        desired_instances: d.desired,
        desired_replicas: d.desired,
        active: d.active,
        forecast: d.forecast,
        quantiles: if d.quantile > 0.0 {
            vec![pb::Quantile {
                q: d.quantile,
                value: d.forecast,
            }]
        } else {
            Vec::new()
        },
        reason: d.reason.clone(),
        model: d.model.clone(),
        policy: d.policy.clone(),
        decided_at_ms: d.decided_at_ms as i64,
        version: d.version,
    }
}

fn config_to_pb(c: &FunctionConfig) -> pb::FunctionConfig {
    pb::FunctionConfig {
        id: c.id.clone(),
        policy: c.policy.clone(),
        min: c.min,
        max: c.max,
        target: Some(target_to_pb(&c.target)),
        memory_mb: c.memory_mb,
        cold_start_ms: c.cold_start_ms,
        concurrency: c.concurrency,
    }
}

fn target_to_pb(t: &TargetSpec) -> pb::Target {
    let mut p = pb::Target {
        kind: t.kind().to_string(),
        ..pb::Target::default()
    };
    match t {
        TargetSpec::Keda => {}
        TargetSpec::Knative(k) => {
            p.namespace = k.namespace.clone();
            p.service = k.service.clone().unwrap_or_default();
            p.revision = k.revision.clone().unwrap_or_default();
            p.mode = match k.mode {
                KnativeMode::Revision => "revision",
                KnativeMode::Podautoscaler => "podautoscaler",
            }
            .to_string();
        }
        TargetSpec::Lambda(l) => {
            p.function = l.function.clone();
            p.qualifier = l.qualifier.clone();
            p.region = l.region.clone().unwrap_or_default();
            p.max_concurrency = l.max_concurrency.unwrap_or(0);
            p.max_gbs_per_hour = l.max_gbs_per_hour.unwrap_or(0.0);
        }
    }
    p
}

fn target_from_pb(t: Option<pb::Target>) -> Result<TargetSpec, Status> {
    let Some(t) = t else {
        return Ok(TargetSpec::Keda);
    };
    let some = |s: String| (!s.is_empty()).then_some(s);
    let spec = match t.kind.as_str() {
        "" | "keda" => TargetSpec::Keda,
        "knative" => TargetSpec::Knative(KnativeTarget {
            namespace: t.namespace,
            service: some(t.service),
            revision: some(t.revision),
            mode: match t.mode.as_str() {
                "" | "revision" => KnativeMode::Revision,
                "podautoscaler" => KnativeMode::Podautoscaler,
                m => {
                    return Err(Status::invalid_argument(format!(
                        "target.mode `{m}`: use revision or podautoscaler"
                    )))
                }
            },
        }),
        "lambda" => TargetSpec::Lambda(LambdaTarget {
            function: t.function,
            qualifier: t.qualifier,
            region: some(t.region),
            max_concurrency: (t.max_concurrency > 0).then_some(t.max_concurrency),
            max_gbs_per_hour: (t.max_gbs_per_hour != 0.0).then_some(t.max_gbs_per_hour),
        }),
        k => {
            return Err(Status::invalid_argument(format!(
                "target.kind `{k}`: use keda, knative or lambda"
            )))
        }
    };
    Ok(spec)
}

fn target_status_to_pb(r: &TargetRecord) -> pb::TargetStatus {
    let s = &r.status;
    let o = s.observed.clone().unwrap_or_default();
    pb::TargetStatus {
        function_id: r.function_id.clone(),
        kind: r.kind.to_string(),
        description: r.description.clone(),
        shadow: s.shadow,
        desired: s.desired,
        target: s.target,
        guardrail: s.guardrail.clone().unwrap_or_default(),
        observed_requested: o.requested,
        observed_ready: o.ready,
        observed_in_progress: o.in_progress,
        observed_detail: o.detail,
        last_applied: s.last_applied.unwrap_or(0),
        last_applied_ms: s.last_applied_at_ms.unwrap_or(0) as i64,
        last_error: s.last_error.clone().unwrap_or_default(),
        last_error_ms: s.last_error_at_ms.unwrap_or(0) as i64,
        next_attempt_ms: s.next_attempt_ms as i64,
        consecutive_failures: s.consecutive_failures,
        applies: s.applies,
        errors: s.errors,
    }
}

fn config_from_pb(c: Option<pb::FunctionConfig>) -> Result<FunctionConfig, Status> {
    let c = c.ok_or_else(|| Status::invalid_argument("`config` is required"))?;
    Ok(FunctionConfig {
        id: c.id,
        policy: c.policy,
        min: c.min,
        max: c.max,
        target: target_from_pb(c.target)?,
        memory_mb: c.memory_mb,
        cold_start_ms: c.cold_start_ms,
        concurrency: c.concurrency,
    })
}

fn outcome_to_pb(o: &IngestOutcome, offset: u64) -> pb::IngestResponse {
    pb::IngestResponse {
        accepted: o.accepted,
        rejected: o.rejected,
        rejections: o
            .rejections
            .iter()
            .map(|r| pb::Rejection {
                index: r.index as u64 + offset,
                function_id: r.function_id.clone(),
                reason: r.reason.as_str().to_string(),
                message: r.message.clone(),
            })
            .collect(),
    }
}

async fn ingest_batch(shared: &Shared, samples: Vec<pb::Sample>) -> Result<IngestOutcome, Status> {
    let max = shared.engine.config().max_batch;
    if samples.len() > max {
        return Err(Status::invalid_argument(format!(
            "batch of {} samples exceeds max_batch {max}: split it (nothing was stored)",
            samples.len()
        )));
    }
    let _permit = shared
        .ingest_permits
        .acquire()
        .await
        .map_err(|_| Status::unavailable("shutting down"))?;
    let engine = shared.engine.clone();
    let now = shared.now();
    let span = tracing::debug_span!(
        "ingest",
        samples = samples.len(),
        accepted = tracing::field::Empty,
        rejected = tracing::field::Empty
    );
    tokio::task::spawn_blocking(move || {
        let _span = span.enter();
        let out = engine.ingest(&samples, now);
        span.record("accepted", out.accepted);
        span.record("rejected", out.rejected);
        out
    })
    .await
    .map_err(|e| Status::internal(format!("ingestion task failed: {e}")))
}

/// prewarm.v1.Telemetry.
#[derive(Debug, Clone)]
pub struct TelemetryService(pub Shared);

#[tonic::async_trait]
impl pb::telemetry_server::Telemetry for TelemetryService {
    async fn ingest(
        &self,
        req: Request<pb::IngestRequest>,
    ) -> Result<Response<pb::IngestResponse>, Status> {
        let samples = req.into_inner().samples;
        let n = samples.len();
        let out = ingest_batch(&self.0, samples).await?;
        let resp = outcome_to_pb(&out, 0);
        if out.rejected == 0 {
            return Ok(Response::new(resp));
        }
        let shown: Vec<&str> = out
            .rejections
            .iter()
            .take(5)
            .map(|r| r.message.as_str())
            .collect();
        let msg = format!(
            "{} of {n} samples rejected ({} accepted and stored): {}{}",
            out.rejected,
            out.accepted,
            shown.join("; "),
            if out.rejected > 5 { "; ..." } else { "" }
        );
        let mut md = tonic::metadata::MetadataMap::new();
        md.insert("prewarm-accepted", out.accepted.into());
        md.insert("prewarm-rejected", out.rejected.into());
        let code = if out.only_cap_rejections() {
            tonic::Code::ResourceExhausted
        } else {
            tonic::Code::InvalidArgument
        };
        let details = prost::Message::encode_to_vec(&resp);
        Err(Status::with_details_and_metadata(
            code,
            msg,
            details.into(),
            md,
        ))
    }

    async fn ingest_stream(
        &self,
        req: Request<Streaming<pb::IngestRequest>>,
    ) -> Result<Response<pb::IngestResponse>, Status> {
        let mut stream = req.into_inner();
        let mut total = pb::IngestResponse::default();
        let mut offset = 0u64;
        while let Some(msg) = stream.message().await? {
            let n = msg.samples.len() as u64;
            let out = ingest_batch(&self.0, msg.samples).await?;
            let r = outcome_to_pb(&out, offset);
            total.accepted += r.accepted;
            total.rejected += r.rejected;
            let room = super::engine::MAX_REJECTION_DETAILS.saturating_sub(total.rejections.len());
            total.rejections.extend(r.rejections.into_iter().take(room));
            offset += n;
        }
        Ok(Response::new(total))
    }
}

/// prewarm.v1.Decisions.
#[derive(Debug, Clone)]
pub struct DecisionsService(pub Shared);

/// Resolves once the server drains (or the sender is gone).
pub async fn drained(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|d| *d).await;
}

/// Forwards decision changes that pass `keep` to a channel until the client leaves or the
/// server drains; on lag, resends the current snapshot.
fn spawn_watch<T, F>(shared: &Shared, initial: Vec<T>, map: F) -> BoxStream<T>
where
    T: Send + 'static,
    F: Fn(&DecisionRecord) -> Option<T> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Result<T, Status>>(64);
    let mut changes = shared.engine.subscribe();
    let mut draining = shared.draining.clone();
    let engine = shared.engine.clone();
    tokio::spawn(async move {
        for item in initial {
            if tx.send(Ok(item)).await.is_err() {
                return;
            }
        }
        loop {
            tokio::select! {
                _ = drained(&mut draining) => return,
                _ = tx.closed() => return,
                r = changes.recv() => match r {
                    Ok(d) => {
                        if let Some(item) = map(&d) {
                            if tx.send(Ok(item)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let snap = engine.snapshot();
                        for d in snap.decisions.values() {
                            if let Some(item) = map(d) {
                                if tx.send(Ok(item)).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

#[tonic::async_trait]
impl pb::decisions_server::Decisions for DecisionsService {
    async fn get_decision(
        &self,
        req: Request<pb::GetDecisionRequest>,
    ) -> Result<Response<pb::FunctionDecision>, Status> {
        let id = req.into_inner().function_id;
        self.0
            .engine
            .decision(&id)
            .map(|d| Response::new(to_pb(&d)))
            .ok_or_else(|| Status::not_found(format!("function `{id}` is not known")))
    }

    async fn list_decisions(
        &self,
        _req: Request<pb::ListDecisionsRequest>,
    ) -> Result<Response<pb::ListDecisionsResponse>, Status> {
        let snap = self.0.engine.snapshot();
        let mut decisions: Vec<pb::FunctionDecision> =
            snap.decisions.values().map(|d| to_pb(d)).collect();
        decisions.sort_by(|a, b| a.function_id.cmp(&b.function_id));
        Ok(Response::new(pb::ListDecisionsResponse { decisions }))
    }

    type WatchDecisionsStream = BoxStream<pb::FunctionDecision>;

    async fn watch_decisions(
        &self,
        req: Request<pb::WatchDecisionsRequest>,
    ) -> Result<Response<Self::WatchDecisionsStream>, Status> {
        let ids: HashSet<String> = req.into_inner().function_ids.into_iter().collect();
        let keep = move |d: &DecisionRecord| ids.is_empty() || ids.contains(&d.function_id);
        let snap = self.0.engine.snapshot();
        let mut initial: Vec<pb::FunctionDecision> = snap
            .decisions
            .values()
            .filter(|d| keep(d))
            .map(|d| to_pb(d))
            .collect();
        initial.sort_by(|a, b| a.function_id.cmp(&b.function_id));
        let stream = spawn_watch(&self.0, initial, move |d| keep(d).then(|| to_pb(d)));
        Ok(Response::new(stream))
    }
}

/// prewarm.v1.Functions.
#[derive(Debug, Clone)]
pub struct FunctionsService(pub Shared);

#[tonic::async_trait]
impl pb::functions_server::Functions for FunctionsService {
    async fn register_function(
        &self,
        req: Request<pb::RegisterFunctionRequest>,
    ) -> Result<Response<pb::FunctionConfig>, Status> {
        let c = config_from_pb(req.into_inner().config)?;
        let c = self.0.engine.register(c, self.0.now())?;
        Ok(Response::new(config_to_pb(&c)))
    }

    async fn update_function(
        &self,
        req: Request<pb::UpdateFunctionRequest>,
    ) -> Result<Response<pb::FunctionConfig>, Status> {
        let c = config_from_pb(req.into_inner().config)?;
        let c = self.0.engine.update(c, self.0.now())?;
        Ok(Response::new(config_to_pb(&c)))
    }

    async fn list_functions(
        &self,
        _req: Request<pb::ListFunctionsRequest>,
    ) -> Result<Response<pb::ListFunctionsResponse>, Status> {
        let functions = self.0.engine.list().iter().map(config_to_pb).collect();
        Ok(Response::new(pb::ListFunctionsResponse { functions }))
    }

    async fn delete_function(
        &self,
        req: Request<pb::DeleteFunctionRequest>,
    ) -> Result<Response<pb::DeleteFunctionResponse>, Status> {
        let deleted = self.0.engine.delete(&req.into_inner().id);
        Ok(Response::new(pb::DeleteFunctionResponse { deleted }))
    }

    async fn get_model_state(
        &self,
        req: Request<pb::GetModelStateRequest>,
    ) -> Result<Response<pb::ModelState>, Status> {
        let id = req.into_inner().id;
        let m = self
            .0
            .engine
            .model_state(&id)
            .ok_or_else(|| Status::not_found(format!("function `{id}` is not known")))?;
        Ok(Response::new(pb::ModelState {
            function_id: id,
            policy: m.policy,
            samples: m.samples,
            last_sample_ms: m.last_sample_ms as i64,
            last_tick_ms: m.last_tick_ms as i64,
            backtest_mase: f64::NAN,
            tier_totals: m.tier_totals,
        }))
    }

    async fn get_target_status(
        &self,
        req: Request<pb::GetTargetStatusRequest>,
    ) -> Result<Response<pb::TargetStatus>, Status> {
        let id = req.into_inner().id;
        let r = self.0.actuators.get(&id).ok_or_else(|| {
            Status::not_found(format!(
                "function `{id}` has no actuated (knative / lambda) target"
            ))
        })?;
        Ok(Response::new(target_status_to_pb(&r)))
    }

    async fn list_target_status(
        &self,
        _req: Request<pb::ListTargetStatusRequest>,
    ) -> Result<Response<pb::ListTargetStatusResponse>, Status> {
        let targets = self
            .0
            .actuators
            .list()
            .iter()
            .map(target_status_to_pb)
            .collect();
        Ok(Response::new(pb::ListTargetStatusResponse { targets }))
    }
}

/// The KEDA external scaler.
///
/// The function is `scalerMetadata["function"]` when set, else `namespace/name`. Unknown
/// functions and functions without data answer `desired = min` (0 when unconfigured) and
/// `IsActive = false`, which keeps KEDA polling and the HPA at its minimum.
#[derive(Debug, Clone)]
pub struct KedaService(pub Shared);

/// The function a ScaledObject refers to.
pub fn keda_function_id(r: &ks::ScaledObjectRef) -> String {
    match r.scaler_metadata.get("function") {
        Some(f) if !f.trim().is_empty() => f.trim().to_string(),
        _ => format!("{}/{}", r.namespace, r.name),
    }
}

impl KedaService {
    fn desired(&self, id: &str) -> (u32, bool) {
        self.0
            .engine
            .decision(id)
            .map_or((0, false), |d| (d.desired, d.active))
    }

    fn count(&self, method: &str) {
        self.0
            .engine
            .metrics()
            .keda_calls
            .with_label_values(&[method])
            .inc();
    }
}

#[tonic::async_trait]
impl ks::external_scaler_server::ExternalScaler for KedaService {
    async fn is_active(
        &self,
        req: Request<ks::ScaledObjectRef>,
    ) -> Result<Response<ks::IsActiveResponse>, Status> {
        self.count("IsActive");
        let id = keda_function_id(req.get_ref());
        Ok(Response::new(ks::IsActiveResponse {
            result: self.desired(&id).1,
        }))
    }

    type StreamIsActiveStream = BoxStream<ks::IsActiveResponse>;

    async fn stream_is_active(
        &self,
        req: Request<ks::ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        self.count("StreamIsActive");
        let id = keda_function_id(req.get_ref());
        let (_, active) = self.desired(&id);
        let last = std::sync::Mutex::new(active);
        let stream = spawn_watch(
            &self.0,
            vec![ks::IsActiveResponse { result: active }],
            move |d| {
                if d.function_id != id {
                    return None;
                }
                let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
                (std::mem::replace(&mut *last, d.active) != d.active)
                    .then_some(ks::IsActiveResponse { result: d.active })
            },
        );
        Ok(Response::new(stream))
    }

    async fn get_metric_spec(
        &self,
        _req: Request<ks::ScaledObjectRef>,
    ) -> Result<Response<ks::GetMetricSpecResponse>, Status> {
        self.count("GetMetricSpec");
        #[allow(deprecated)]
        let spec = ks::MetricSpec {
            metric_name: METRIC_NAME.to_string(),
            target_size: 1,
            target_size_float: 1.0,
        };
        Ok(Response::new(ks::GetMetricSpecResponse {
            metric_specs: vec![spec],
        }))
    }

    async fn get_metrics(
        &self,
        req: Request<ks::GetMetricsRequest>,
    ) -> Result<Response<ks::GetMetricsResponse>, Status> {
        self.count("GetMetrics");
        let r = req.into_inner();
        let id = r
            .scaled_object_ref
            .as_ref()
            .map(keda_function_id)
            .ok_or_else(|| Status::invalid_argument("`scaledObjectRef` is required"))?;
        let (desired, _) = self.desired(&id);
        #[allow(deprecated)]
        let value = ks::MetricValue {
            metric_name: METRIC_NAME.to_string(),
            metric_value: i64::from(desired),
            metric_value_float: f64::from(desired),
        };
        Ok(Response::new(ks::GetMetricsResponse {
            metric_values: vec![value],
        }))
    }
}
