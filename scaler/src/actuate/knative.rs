//! Knative actuator: min-scale on a Revision or PodAutoscaler through kube-rs.
//!
//! [`KnativePlatform`] implements [`Platform`] for one [`KnativeTarget`]:
//!
//! - a target naming a `service` is resolved to the Service's `status.latestReadyRevisionName`
//!   on **every** observe (a new revision may have become ready since the last one);
//! - `observe` reads `metadata.annotations["autoscaling.knative.dev/min-scale"]` from the
//!   Revision (mode `revision`) or from the PodAutoscaler of the same name (mode
//!   `podautoscaler`); a missing annotation reads as 0, an unparseable one as 0 with a note in
//!   [`Observed::detail`];
//! - `apply` sends one JSON merge patch (`application/merge-patch+json`) that sets only that
//!   annotation and carries the `metadata.resourceVersion` read by the last observe, so a write
//!   made by someone else in between fails with HTTP 409 ([`ActuateError::Conflict`]) instead of
//!   being overwritten. The Service is only ever read: writing its template would create a new
//!   Revision.
//!
//! The client built by [`KnativePlatform::from_env`] has kube-rs' built-in retry layer turned
//! off: retry, backoff and Retry-After are the reconcile loop's job, so a 429 must reach it as
//! [`ActuateError::Throttled`] instead of being retried (up to 15 times) inside the client. Its
//! read timeout is 30 s (kube-rs 5 sets none).
//!
//! Note: kube-rs builds a rustls config for every client, even for an `http://` URL; with both
//! rustls providers compiled in (`ring` via kube, `aws-lc-rs` via the AWS SDK) and none
//! installed for the process, that panics. kube's `aws-lc-rs` feature makes kube-rs install
//! one.

use super::{ActuateError, BoxFuture, KnativeMode, KnativeTarget, Observed, Platform};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client};
use std::sync::{Mutex, PoisonError};

/// The annotation Knative reads the lower scale bound from.
pub const MIN_SCALE_ANNOTATION: &str = "autoscaling.knative.dev/min-scale";

/// `serving.knative.dev/v1` Service.
pub fn service_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("serving.knative.dev", "v1", "Service"),
        "services",
    )
}

/// `serving.knative.dev/v1` Revision.
pub fn revision_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("serving.knative.dev", "v1", "Revision"),
        "revisions",
    )
}

/// `autoscaling.internal.knative.dev/v1alpha1` PodAutoscaler.
pub fn podautoscaler_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(
            "autoscaling.internal.knative.dev",
            "v1alpha1",
            "PodAutoscaler",
        ),
        "podautoscalers",
    )
}

/// What the last read of the annotated object saw; `apply` patches against it.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    /// Name of the Revision / PodAutoscaler read.
    object: String,
    /// Its `metadata.resourceVersion` (the patch precondition).
    resource_version: Option<String>,
    /// The raw annotation value (`None` when absent).
    raw: Option<String>,
}

/// The Knative actuator for one target (see the module docs).
pub struct KnativePlatform {
    client: Client,
    target: KnativeTarget,
    /// The last object read by `observe` (or by `apply` when it had to read).
    last: Mutex<Option<Snapshot>>,
}

impl std::fmt::Debug for KnativePlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnativePlatform")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl KnativePlatform {
    /// A platform using `client` for `target` (the target is assumed validated, see
    /// [`super::TargetSpec::validate`]).
    pub fn new(client: Client, target: KnativeTarget) -> Self {
        KnativePlatform {
            client,
            target,
            last: Mutex::new(None),
        }
    }

    /// A platform with a client configured the way kube-rs infers it (in-cluster service
    /// account, else `KUBECONFIG` / `~/.kube/config`), as [`kube::Client::try_default`] does but
    /// with kube-rs' default retry layer disabled and a 30 s read timeout (see the module docs,
    /// also for the rustls provider this needs).
    pub async fn from_env(target: KnativeTarget) -> Result<Self, ActuateError> {
        let mut config = kube::Config::infer().await.map_err(|e| {
            ActuateError::Rejected(format!("cannot load a Kubernetes client config: {e}"))
        })?;
        config.default_retry = false;
        // One GET or PATCH of a small object: do not let a hung connection hold the target's
        // reconcile forever (kube-rs 5 sets no read timeout by default).
        config.read_timeout = Some(std::time::Duration::from_secs(30));
        let client = Client::try_from(config).map_err(|e| {
            ActuateError::Rejected(format!("cannot build a Kubernetes client: {e}"))
        })?;
        Ok(Self::new(client, target))
    }

    /// The target this platform acts on.
    pub fn target(&self) -> &KnativeTarget {
        &self.target
    }

    fn api(&self, resource: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.target.namespace, resource)
    }

    /// The kind (lowercase, for messages) and the resource of the annotated object.
    fn annotated_kind(&self) -> (&'static str, ApiResource) {
        match self.target.mode {
            KnativeMode::Revision => ("revision", revision_resource()),
            KnativeMode::Podautoscaler => ("podautoscaler", podautoscaler_resource()),
        }
    }

    /// The Revision to act on: the configured one, or the Service's latest ready one.
    async fn resolve_revision(&self) -> Result<String, ActuateError> {
        let ns = &self.target.namespace;
        match (&self.target.revision, &self.target.service) {
            (Some(rev), _) => Ok(rev.clone()),
            (None, Some(svc)) => {
                let obj = self
                    .api(&service_resource())
                    .get(svc)
                    .await
                    .map_err(|e| map_kube_error(e, &format!("knative service {ns}/{svc}")))?;
                latest_ready_revision(&obj).ok_or_else(|| {
                    ActuateError::Rejected(format!(
                        "knative service {ns}/{svc} has no ready revision yet \
                         (status.latestReadyRevisionName is empty)"
                    ))
                })
            }
            (None, None) => Err(ActuateError::Rejected(format!(
                "knative target in namespace {ns} names neither a service nor a revision"
            ))),
        }
    }

    /// Resolves the target and reads the annotated object.
    async fn read(&self) -> Result<(Snapshot, String), ActuateError> {
        let revision = self.resolve_revision().await?;
        let (kind, resource) = self.annotated_kind();
        let ns = &self.target.namespace;
        let obj = self
            .api(&resource)
            .get(&revision)
            .await
            .map_err(|e| map_kube_error(e, &format!("knative {kind} {ns}/{revision}")))?;
        let raw = obj
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(MIN_SCALE_ANNOTATION))
            .cloned();
        let mut detail = format!("{kind} {revision}");
        if let Some(svc) = &self.target.service {
            detail.push_str(&format!(" (service {svc})"));
        }
        let snap = Snapshot {
            object: revision,
            resource_version: obj.metadata.resource_version.clone(),
            raw,
        };
        Ok((snap, detail))
    }

    fn store(&self, snap: Option<Snapshot>) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = snap;
    }

    fn last_snapshot(&self) -> Option<Snapshot> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// `status.latestReadyRevisionName` of a Service, when set and non-empty.
fn latest_ready_revision(service: &DynamicObject) -> Option<String> {
    service
        .data
        .get("status")?
        .get("latestReadyRevisionName")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Parses a min-scale annotation value: `Ok(n)` for a non-negative integer, `Err` otherwise.
pub fn parse_min_scale(raw: &str) -> Result<u32, String> {
    raw.trim().parse::<u32>().map_err(|_| {
        format!("{MIN_SCALE_ANNOTATION} \"{raw}\" is not a non-negative integer, read as 0")
    })
}

/// Maps a kube-rs error to the reconcile loop's error kinds; `what` names the object.
pub fn map_kube_error(err: kube::Error, what: &str) -> ActuateError {
    match err {
        kube::Error::Api(status) => {
            let api = if status.message.is_empty() {
                format!("HTTP {} {}", status.code, status.reason)
            } else {
                status.message.clone()
            };
            let message = format!("{what}: {api}");
            match status.code {
                409 => ActuateError::Conflict(message),
                429 => ActuateError::Throttled {
                    message,
                    retry_after_ms: status
                        .details
                        .as_ref()
                        .map(|d| d.retry_after_seconds)
                        .filter(|s| *s > 0)
                        .map(|s| u64::from(s) * 1000),
                },
                404 => ActuateError::Rejected(format!("{what} not found ({api})")),
                400..=499 => ActuateError::Rejected(message),
                _ => ActuateError::Transient(message),
            }
        }
        // Request construction failures are bugs or bad names: a retry will not fix them.
        kube::Error::BuildRequest(e) => ActuateError::Rejected(format!("{what}: {e}")),
        kube::Error::HttpError(e) => ActuateError::Rejected(format!("{what}: {e}")),
        // Connection, timeout, TLS, auth-refresh, body and decode errors.
        other => ActuateError::Transient(format!("{what}: {other}")),
    }
}

impl Platform for KnativePlatform {
    fn describe(&self) -> String {
        let ns = &self.target.namespace;
        match (&self.target.revision, &self.target.service) {
            (Some(rev), _) => format!("knative revision {ns}/{rev}"),
            (None, Some(svc)) => format!("knative service {ns}/{svc}"),
            (None, None) => format!("knative {ns}/?"),
        }
    }

    fn observe(&self) -> BoxFuture<'_, Result<Observed, ActuateError>> {
        Box::pin(async move {
            let (snap, mut detail) = match self.read().await {
                Ok(v) => v,
                Err(e) => {
                    self.store(None);
                    return Err(e);
                }
            };
            let requested = match snap.raw.as_deref().map(parse_min_scale) {
                None => 0,
                Some(Ok(n)) => n,
                Some(Err(note)) => {
                    detail.push_str("; ");
                    detail.push_str(&note);
                    0
                }
            };
            self.store(Some(snap));
            Ok(Observed {
                requested,
                ready: requested,
                in_progress: false,
                failed: false,
                detail,
            })
        })
    }

    /// Patches the object read by the last `observe` (or reads it first when there was none),
    /// with that read's resourceVersion as precondition. `observed` is not re-checked: the
    /// snapshot is the same read, with the raw annotation value.
    fn apply<'a>(
        &'a self,
        desired: u32,
        _observed: &'a Observed,
    ) -> BoxFuture<'a, Result<(), ActuateError>> {
        Box::pin(async move {
            let snap = match self.last_snapshot() {
                Some(s) => s,
                None => {
                    let (s, _) = self.read().await?;
                    self.store(Some(s.clone()));
                    s
                }
            };
            let value = desired.to_string();
            let already = match snap.raw.as_deref() {
                Some(raw) => raw == value,
                None => desired == 0,
            };
            if already {
                return Ok(());
            }
            let (kind, resource) = self.annotated_kind();
            let mut metadata = serde_json::Map::new();
            metadata.insert(
                "annotations".into(),
                serde_json::json!({ MIN_SCALE_ANNOTATION: value }),
            );
            if let Some(rv) = &snap.resource_version {
                metadata.insert(
                    "resourceVersion".into(),
                    serde_json::Value::from(rv.clone()),
                );
            }
            let body = serde_json::json!({ "metadata": metadata });
            let what = format!("knative {kind} {}/{}", self.target.namespace, snap.object);
            match self
                .api(&resource)
                .patch(&snap.object, &PatchParams::default(), &Patch::Merge(&body))
                .await
            {
                Ok(obj) => {
                    self.store(Some(Snapshot {
                        object: snap.object,
                        resource_version: obj.metadata.resource_version,
                        raw: Some(value),
                    }));
                    tracing::debug!(target = %what, min_scale = desired, "patched min-scale");
                    Ok(())
                }
                Err(e) => {
                    // Whatever happened, the snapshot may be stale: the next apply re-reads.
                    self.store(None);
                    Err(map_kube_error(e, &what))
                }
            }
        })
    }
}
