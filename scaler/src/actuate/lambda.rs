//! AWS Lambda actuator: provisioned concurrency through aws-sdk-lambda.
//!
//! [`LambdaPlatform`] implements [`Platform`] for one [`LambdaTarget`] (a function and an alias
//! or published version):
//!
//! - `observe` calls `GetProvisionedConcurrencyConfig`: `requested` is
//!   `RequestedProvisionedConcurrentExecutions`, `ready` is
//!   `AllocatedProvisionedConcurrentExecutions`, `in_progress` is status `IN_PROGRESS`; a
//!   `ProvisionedConcurrencyConfigNotFoundException` reads as 0 / 0 (no config is not an
//!   error); status `FAILED` sets [`Observed::failed`] with Lambda's `StatusReason` in
//!   [`Observed::detail`], and the next apply writes the value again.
//! - `apply(desired, observed)` does nothing when `observed.requested == desired`; sends one
//!   `PutProvisionedConcurrencyConfig` when `desired > 0`, one
//!   `DeleteProvisionedConcurrencyConfig` when `desired == 0` (Lambda's delete is idempotent; a
//!   `ResourceNotFoundException` on delete also counts as done: nothing is provisioned).
//! - Limits: before a put that **raises** the value, the actuator reads the function's reserved
//!   concurrency (`GetFunctionConcurrency`) and refuses with [`ActuateError::Rejected`] naming
//!   it when `desired` exceeds it; for a function without reserved concurrency it reads the
//!   account's `UnreservedConcurrentExecutions` (`GetAccountSettings`) and refuses a `desired`
//!   above it. Both reads are cached for [`LIMITS_TTL`] (so a steady ramp costs at most two
//!   extra calls a minute) and the cache is dropped whenever Lambda itself refuses a put. When
//!   the reads themselves are refused (e.g. the IAM policy lacks `lambda:GetFunctionConcurrency`
//!   or `lambda:GetAccountSettings`) the check is skipped with a warning and Lambda's own check
//!   decides; throttling or transient failures of the reads are returned as such. The pre-check
//!   is conservative: Lambda also counts the function's other aliases / versions against the
//!   reservation and keeps a minimum (usually 100) unreserved, and its
//!   `InvalidParameterValueException` for those is mapped to [`ActuateError::Rejected`] with
//!   Lambda's message.
//!
//! Error mapping (from the SDK's typed error code and the HTTP status):
//!
//! | Lambda | [`ActuateError`] |
//! |---|---|
//! | `TooManyRequestsException`, HTTP 429 | `Throttled` (`Retry-After` header or `retryAfterSeconds` → `retry_after_ms`) |
//! | `ResourceConflictException`, HTTP 409 | `Conflict` |
//! | `ServiceException`, other 5xx; timeouts, dispatch and response failures | `Transient` |
//! | `ResourceNotFoundException`, `InvalidParameterValueException`, `AccessDeniedException` / 403, other 4xx, requests that cannot be built | `Rejected` |
//!
//! Client: [`LambdaPlatform::from_env`] loads `aws_config::defaults(BehaviorVersion::latest())`:
//! the standard credential chain (environment, profile, SSO, web identity, ECS, IMDS) and region
//! chain, the target's `region` overriding the latter. The endpoint can be overridden through
//! aws-config with `AWS_ENDPOINT_URL_LAMBDA` (or `AWS_ENDPOINT_URL` for every service, or
//! `endpoint_url` in the profile; `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` turns that off):
//! `aws-sdk-lambda` resolves it from the loaded config under the service id `Lambda` (checked
//! by the `from_env_honours_aws_endpoint_url_lambda` test against the loopback fake). The SDK's
//! own retries are turned off (one attempt per call, connect timeout 3 s, attempt timeout 10 s):
//! retry, backoff and Retry-After are the reconcile loop's job, so a throttle must reach it as
//! [`ActuateError::Throttled`]. A client passed to [`LambdaPlatform::new`] is used as given.

use super::{ActuateError, BoxFuture, LambdaTarget, Observed, Platform};
use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::types::ProvisionedConcurrencyStatusEnum;
use aws_sdk_lambda::Client;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long the reserved / unreserved concurrency read before a raise is reused.
pub const LIMITS_TTL: Duration = Duration::from_secs(60);

/// The limits read before a raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    /// The function's reserved concurrency (`None`: none set, draws from the unreserved pool).
    reserved: Option<u32>,
    /// The account's `UnreservedConcurrentExecutions` (only read when `reserved` is `None`;
    /// `None` when not read or not readable).
    unreserved: Option<u32>,
}

/// Provisioned concurrency on one Lambda alias or version.
pub struct LambdaPlatform {
    client: Client,
    target: LambdaTarget,
    /// The last limit read and when; `Some((_, None))`: not readable (no permission).
    limits: Mutex<Option<(Instant, Option<Limits>)>>,
}

impl std::fmt::Debug for LambdaPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaPlatform")
            .field("target", &self.target)
            .finish()
    }
}

impl LambdaPlatform {
    /// Wraps an existing client (its region, credentials, endpoint and retry settings are used
    /// as they are; turn SDK retries off to let the reconcile loop see throttles).
    pub fn new(client: Client, target: LambdaTarget) -> Self {
        LambdaPlatform {
            client,
            target,
            limits: Mutex::new(None),
        }
    }

    /// Builds the client from the standard AWS configuration chain (see the module docs), with
    /// the target's region when set and SDK retries off. Fails with
    /// [`ActuateError::Rejected`] when no region can be found.
    pub async fn from_env(target: LambdaTarget) -> Result<Self, ActuateError> {
        use aws_config::retry::RetryConfig;
        use aws_config::timeout::TimeoutConfig;
        use aws_config::{BehaviorVersion, Region};
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(10))
                    .build(),
            );
        if let Some(region) = &target.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let conf = loader.load().await;
        if conf.region().is_none() {
            return Err(ActuateError::Rejected(format!(
                "lambda {}:{}: no AWS region: set the target's `region`, AWS_REGION or a \
                 profile region",
                target.function, target.qualifier
            )));
        }
        Ok(Self::new(Client::new(&conf), target))
    }

    /// The target this platform acts on.
    pub fn target(&self) -> &LambdaTarget {
        &self.target
    }

    fn context(&self, op: &str) -> String {
        format!("{op} {}:{}", self.target.function, self.target.qualifier)
    }

    async fn observe_inner(&self) -> Result<Observed, ActuateError> {
        let out = self
            .client
            .get_provisioned_concurrency_config()
            .function_name(&self.target.function)
            .qualifier(&self.target.qualifier)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(err) => {
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_provisioned_concurrency_config_not_found_exception())
                {
                    return Ok(Observed {
                        requested: 0,
                        ready: 0,
                        in_progress: false,
                        failed: false,
                        detail: "no provisioned concurrency config".to_string(),
                    });
                }
                return Err(map_sdk_error(
                    &self.context("GetProvisionedConcurrencyConfig"),
                    err,
                ));
            }
        };
        let count = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
        let requested = count(out.requested_provisioned_concurrent_executions());
        let ready = count(out.allocated_provisioned_concurrent_executions());
        let status = out.status();
        let in_progress = status == Some(&ProvisionedConcurrencyStatusEnum::InProgress);
        let status_name = status.map(|s| s.as_str()).unwrap_or("UNKNOWN");
        let detail = match (status, out.status_reason()) {
            (Some(ProvisionedConcurrencyStatusEnum::Failed), reason) => {
                format!("FAILED: {}", reason.unwrap_or("no reason given"))
            }
            (_, Some(reason)) if !reason.is_empty() => format!("{status_name}: {reason}"),
            _ => format!(
                "{status_name} (allocated {ready} of {requested}, available {})",
                count(out.available_provisioned_concurrent_executions())
            ),
        };
        Ok(Observed {
            requested,
            ready,
            in_progress,
            failed: status == Some(&ProvisionedConcurrencyStatusEnum::Failed),
            detail,
        })
    }

    async fn apply_inner(&self, desired: u32, observed: &Observed) -> Result<(), ActuateError> {
        // A FAILED allocation is retried by writing the same value again.
        if desired == observed.requested && !observed.failed {
            return Ok(());
        }
        if desired == 0 {
            return self.delete().await;
        }
        let n = i32::try_from(desired).map_err(|_| {
            ActuateError::Rejected(format!(
                "{}: {desired} is above Lambda's largest value",
                self.context("PutProvisionedConcurrencyConfig")
            ))
        })?;
        if desired > observed.requested {
            self.check_limits(desired).await?;
        }
        let out = self
            .client
            .put_provisioned_concurrency_config()
            .function_name(&self.target.function)
            .qualifier(&self.target.qualifier)
            .provisioned_concurrent_executions(n)
            .send()
            .await;
        match out {
            Ok(out) => {
                tracing::debug!(
                    target = %self.describe(),
                    desired,
                    status = ?out.status(),
                    "provisioned concurrency put"
                );
                Ok(())
            }
            Err(err) => {
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_invalid_parameter_value_exception())
                {
                    // Limits changed under us (or the pre-check could not see them): re-read next
                    // time.
                    self.forget_limits();
                }
                Err(map_sdk_error(
                    &self.context("PutProvisionedConcurrencyConfig"),
                    err,
                ))
            }
        }
    }

    async fn delete(&self) -> Result<(), ActuateError> {
        let out = self
            .client
            .delete_provisioned_concurrency_config()
            .function_name(&self.target.function)
            .qualifier(&self.target.qualifier)
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                tracing::debug!(
                    target = %self.describe(),
                    "function or qualifier not found on delete: nothing is provisioned"
                );
                Ok(())
            }
            Err(err) => Err(map_sdk_error(
                &self.context("DeleteProvisionedConcurrencyConfig"),
                err,
            )),
        }
    }

    fn forget_limits(&self) {
        *self.limits.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn cached_limits(&self) -> Option<Option<Limits>> {
        let guard = self.limits.lock().unwrap_or_else(PoisonError::into_inner);
        match *guard {
            Some((at, limits)) if at.elapsed() < LIMITS_TTL => Some(limits),
            _ => None,
        }
    }

    fn remember_limits(&self, limits: Option<Limits>) {
        *self.limits.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), limits));
    }

    /// Reads (or reuses) the limits; `Ok(None)` when they cannot be read (refused: no
    /// permission, function not found), which is remembered for [`LIMITS_TTL`] too.
    async fn limits(&self) -> Result<Option<Limits>, ActuateError> {
        if let Some(l) = self.cached_limits() {
            return Ok(l);
        }
        let reserved = match self
            .client
            .get_function_concurrency()
            .function_name(&self.target.function)
            .send()
            .await
        {
            Ok(out) => out
                .reserved_concurrent_executions()
                .map(|r| u32::try_from(r).unwrap_or(0)),
            Err(err) => {
                return match map_sdk_error(&self.context("GetFunctionConcurrency"), err) {
                    ActuateError::Rejected(m) => {
                        tracing::warn!(
                            target = %self.describe(),
                            error = %m,
                            "cannot read reserved concurrency; leaving the limit check to Lambda"
                        );
                        self.remember_limits(None);
                        Ok(None)
                    }
                    other => Err(other),
                };
            }
        };
        let unreserved = if reserved.is_none() {
            match self.client.get_account_settings().send().await {
                Ok(out) => out
                    .account_limit()
                    .and_then(|l| l.unreserved_concurrent_executions())
                    .and_then(|u| u32::try_from(u).ok()),
                Err(err) => match map_sdk_error(&self.context("GetAccountSettings"), err) {
                    ActuateError::Rejected(m) => {
                        tracing::warn!(
                            target = %self.describe(),
                            error = %m,
                            "cannot read account settings; leaving the account check to Lambda"
                        );
                        None
                    }
                    other => return Err(other),
                },
            }
        } else {
            None
        };
        let limits = Limits {
            reserved,
            unreserved,
        };
        self.remember_limits(Some(limits));
        Ok(Some(limits))
    }

    async fn check_limits(&self, desired: u32) -> Result<(), ActuateError> {
        let Some(limits) = self.limits().await? else {
            return Ok(());
        };
        if let Some(reserved) = limits.reserved {
            if desired > reserved {
                return Err(ActuateError::Rejected(format!(
                    "{}: provisioned concurrency {desired} exceeds the function's reserved \
                     concurrency {reserved} (raise it with PutFunctionConcurrency or lower \
                     max_concurrency)",
                    self.context("PutProvisionedConcurrencyConfig")
                )));
            }
        } else if let Some(unreserved) = limits.unreserved {
            if desired > unreserved {
                return Err(ActuateError::Rejected(format!(
                    "{}: provisioned concurrency {desired} exceeds the account's unreserved \
                     concurrency {unreserved}",
                    self.context("PutProvisionedConcurrencyConfig")
                )));
            }
        }
        Ok(())
    }
}

impl Platform for LambdaPlatform {
    fn describe(&self) -> String {
        format!("lambda {}:{}", self.target.function, self.target.qualifier)
    }

    fn observe(&self) -> BoxFuture<'_, Result<Observed, ActuateError>> {
        Box::pin(self.observe_inner())
    }

    fn apply<'a>(
        &'a self,
        desired: u32,
        observed: &'a Observed,
    ) -> BoxFuture<'a, Result<(), ActuateError>> {
        Box::pin(self.apply_inner(desired, observed))
    }
}

/// Parses a `Retry-After` / `retryAfterSeconds` value in seconds (integer or decimal) into ms.
fn retry_after_ms(value: &str) -> Option<u64> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).round() as u64)
}

/// Maps an SDK error onto the reconcile loop's error kinds; `context` names the call and target.
pub fn map_sdk_error<E>(context: &str, err: SdkError<E, HttpResponse>) -> ActuateError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let raw = ctx.raw();
            let status = raw.status().as_u16();
            let e = ctx.err();
            let code = e.code().unwrap_or("").to_string();
            let message = e
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {status}"));
            let full = if code.is_empty() {
                format!("{context}: HTTP {status}: {message}")
            } else {
                format!("{context}: {code}: {message}")
            };
            if code == "TooManyRequestsException" || status == 429 {
                let from_header = raw.headers().get("retry-after").and_then(retry_after_ms);
                let from_body = || {
                    let body = raw.body().bytes()?;
                    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
                    match v.get("retryAfterSeconds")? {
                        serde_json::Value::String(s) => retry_after_ms(s),
                        serde_json::Value::Number(n) => retry_after_ms(&n.to_string()),
                        _ => None,
                    }
                };
                ActuateError::Throttled {
                    message: full,
                    retry_after_ms: from_header.or_else(from_body),
                }
            } else if code == "ResourceConflictException" || status == 409 {
                ActuateError::Conflict(full)
            } else if status >= 500 || code == "ServiceException" {
                ActuateError::Transient(full)
            } else {
                ActuateError::Rejected(full)
            }
        }
        SdkError::ConstructionFailure(_) => ActuateError::Rejected(format!(
            "{context}: request could not be built: {}",
            aws_sdk_lambda::error::DisplayErrorContext(&err)
        )),
        SdkError::TimeoutError(_) => ActuateError::Transient(format!("{context}: timed out")),
        other => ActuateError::Transient(format!(
            "{context}: {}",
            aws_sdk_lambda::error::DisplayErrorContext(&other)
        )),
    }
}
