//! Actuators: the platforms prewarm changes itself (Knative min-scale, AWS Lambda provisioned
//! concurrency), the target configuration, the platform trait the clients implement, and the
//! pure reconcile state machine that decides when and what to apply.
//!
//! Layout:
//! - this module: [`TargetSpec`] (a function's `target` table), [`Platform`] (observe / apply on
//!   one target), [`Observed`], [`ActuateError`];
//! - [`reconcile`]: the time-injected reconcile state machine (rate limit, backoff with jitter,
//!   shadow mode, per-target status); no I/O, no clock;
//! - [`knative`] (feature `service`): the kube-rs client for Revision / PodAutoscaler min-scale;
//! - [`lambda`] (feature `service`): the aws-sdk-lambda client for provisioned concurrency;
//! - [`fakes`] (feature `fakes`): loopback HTTP fakes of the Kubernetes API and the Lambda API,
//!   used by the tests because no cluster or AWS account can be reached from CI.

pub mod reconcile;

#[cfg(feature = "fakes")]
pub mod fakes;
#[cfg(feature = "service")]
pub mod knative;
#[cfg(feature = "service")]
pub mod lambda;

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future (keeps [`Platform`] object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a function's decisions go: the `target` inline table of a `[[function]]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum TargetSpec {
    /// Pull only: KEDA asks the external scaler (the default).
    #[default]
    Keda,
    /// Knative: prewarm patches `autoscaling.knative.dev/min-scale`.
    Knative(KnativeTarget),
    /// AWS Lambda: prewarm sets provisioned concurrency on an alias or version.
    Lambda(LambdaTarget),
}

impl TargetSpec {
    /// The kind name used in config and the API (`keda`, `knative`, `lambda`).
    pub fn kind(&self) -> &'static str {
        match self {
            TargetSpec::Keda => "keda",
            TargetSpec::Knative(_) => "knative",
            TargetSpec::Lambda(_) => "lambda",
        }
    }

    /// True when prewarm changes the platform itself (not pull-only).
    pub fn is_actuated(&self) -> bool {
        !matches!(self, TargetSpec::Keda)
    }

    /// Checks the fields; the error message names the offending field (relative to the table).
    pub fn validate(&self) -> Result<(), (String, String)> {
        match self {
            TargetSpec::Keda => Ok(()),
            TargetSpec::Knative(k) => k.validate(),
            TargetSpec::Lambda(l) => l.validate(),
        }
    }
}

/// Which Knative object carries the min-scale annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KnativeMode {
    /// The Revision's metadata (Knative ≥ 1.21 propagates it to the PodAutoscaler).
    #[default]
    Revision,
    /// The PodAutoscaler (`autoscaling.internal.knative.dev/v1alpha1`, same name as the
    /// Revision), for older Knative.
    Podautoscaler,
}

/// A Knative target: a Service (resolved to its latest ready Revision) or a Revision.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnativeTarget {
    /// Namespace of the Service / Revision.
    pub namespace: String,
    /// Knative Service name (resolved to `status.latestReadyRevisionName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Revision name (used as is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Which object gets the annotation (default `revision`).
    #[serde(default)]
    pub mode: KnativeMode,
}

impl KnativeTarget {
    fn validate(&self) -> Result<(), (String, String)> {
        let dns = |field: &str, v: &str| -> Result<(), (String, String)> {
            let ok = !v.is_empty()
                && v.len() <= 253
                && v.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                })
                && v.as_bytes()[0].is_ascii_alphanumeric()
                && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric();
            if ok {
                Ok(())
            } else {
                Err((
                    field.to_string(),
                    format!("`{v}` is not a valid Kubernetes name (lowercase RFC 1123)"),
                ))
            }
        };
        dns("namespace", &self.namespace)?;
        match (&self.service, &self.revision) {
            (Some(s), None) => dns("service", s),
            (None, Some(r)) => dns("revision", r),
            (Some(_), Some(_)) => Err((
                "service".into(),
                "give either `service` or `revision`, not both".into(),
            )),
            (None, None) => Err((
                "service".into(),
                "a knative target needs `service` or `revision`".into(),
            )),
        }
    }
}

/// An AWS Lambda target: provisioned concurrency on an alias or a published version.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaTarget {
    /// Function name or ARN.
    pub function: String,
    /// Alias or version number (`$LATEST` is rejected: Lambda refuses it).
    pub qualifier: String,
    /// AWS region (default: the standard chain's region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Cost guardrail: most provisioned concurrency ever requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Cost guardrail: most provisioned GB·s per hour (concurrency × memory GB × 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gbs_per_hour: Option<f64>,
}

impl LambdaTarget {
    fn validate(&self) -> Result<(), (String, String)> {
        if self.function.is_empty() || self.function.len() > 140 {
            return Err((
                "function".into(),
                "a Lambda function name or ARN of 1–140 characters is required".into(),
            ));
        }
        let q = &self.qualifier;
        if q == "$LATEST" {
            return Err((
                "qualifier".into(),
                "`$LATEST` cannot have provisioned concurrency: use an alias or a version".into(),
            ));
        }
        let ok = !q.is_empty()
            && q.len() <= 128
            && q.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err((
                "qualifier".into(),
                format!("`{q}` is not an alias name or version number"),
            ));
        }
        if let Some(r) = &self.region {
            if r.is_empty()
                || !r
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(("region".into(), format!("`{r}` is not an AWS region")));
            }
        }
        if let Some(g) = self.max_gbs_per_hour {
            if !(g.is_finite() && g > 0.0) {
                return Err((
                    "max_gbs_per_hour".into(),
                    "must be a positive number".into(),
                ));
            }
        }
        Ok(())
    }
}

/// What a platform reports for a target.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Observed {
    /// The value currently requested on the platform (min-scale; requested provisioned
    /// concurrency; 0 when none is set).
    pub requested: u32,
    /// The value the platform has made ready (Lambda: allocated concurrency; Knative: same as
    /// `requested`).
    pub ready: u32,
    /// A change is still being applied (Lambda `IN_PROGRESS`).
    pub in_progress: bool,
    /// The platform gave up applying the last change (Lambda `FAILED`, reason in `detail`):
    /// the reconcile loop counts it as an error, backs off and writes the value again.
    #[serde(default)]
    pub failed: bool,
    /// Platform-specific detail for status and logs (e.g. the resolved revision name).
    pub detail: String,
}

/// Why an observe or apply failed; the reconcile loop picks its retry from the kind.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActuateError {
    /// HTTP 429 / `TooManyRequestsException`: back off (at least `retry_after_ms` when given).
    #[error("throttled: {message}")]
    Throttled {
        /// The platform's message.
        message: String,
        /// The platform's Retry-After, ms.
        retry_after_ms: Option<u64>,
    },
    /// HTTP 409 (resourceVersion conflict, `ResourceConflictException`): re-read and retry soon.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The platform refused the change for a reason a retry will not fix soon (limits exceeded,
    /// not found, forbidden); retried with the longest backoff.
    #[error("rejected: {0}")]
    Rejected(String),
    /// Network errors, timeouts, 5xx: retried with backoff.
    #[error("transient: {0}")]
    Transient(String),
}

/// One target on one platform. Implementations hold their client and the resolved target.
pub trait Platform: Send + Sync {
    /// A short description for logs and status, e.g. `knative revision ns/name`.
    fn describe(&self) -> String;
    /// Reads the target's current state.
    fn observe(&self) -> BoxFuture<'_, Result<Observed, ActuateError>>;
    /// Sets the target to `desired` (the smallest change: one patch / one put, or a delete of
    /// the config when `desired` is 0 and the platform has one). `observed` is the state just
    /// read, so the call can skip work or carry a resourceVersion.
    fn apply<'a>(
        &'a self,
        desired: u32,
        observed: &'a Observed,
    ) -> BoxFuture<'a, Result<(), ActuateError>>;
}
