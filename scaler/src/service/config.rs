//! Service configuration: the TOML file layout, environment (`PREWARM_*`) and flag overrides,
//! and validation into a [`ServiceConfig`]. Every error names the offending key.

use super::ServiceError;
use crate::actuate::reconcile::ReconcileConfig;
use crate::actuate::TargetSpec;
use crate::policy::{parse_duration_ms, Millis, PolicySpec};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// How the service tells time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockMode {
    /// The system clock (production).
    #[default]
    Wall,
    /// The latest telemetry bin end (replays and tests): ticks run when telemetry moves time.
    Event,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A function's configuration (validated).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FunctionConfig {
    /// Function id.
    pub id: String,
    /// Policy spec (empty = the server default).
    pub policy: String,
    /// Lowest desired count.
    pub min: u32,
    /// Highest desired count.
    pub max: u32,
    /// Where decisions go (KEDA pull, Knative min-scale, Lambda provisioned concurrency).
    #[serde(deserialize_with = "target_compat")]
    pub target: TargetSpec,
    /// Memory of one instance, MB (prices idle time in the predictive policy).
    #[serde(default = "default_memory_mb")]
    pub memory_mb: f64,
    /// Time from a decision to a ready replica (pod start plus KEDA's reaction), ms: the lead
    /// a pre-warm is planned with.
    #[serde(default = "default_cold_start_ms")]
    pub cold_start_ms: Millis,
    /// Invocations one replica serves at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
}

/// Reads a target as a table, or as the bare kind name `"keda"` that earlier versions stored.
fn target_compat<'de, D: serde::Deserializer<'de>>(d: D) -> Result<TargetSpec, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Compat {
        Kind(String),
        Spec(TargetSpec),
    }
    match Compat::deserialize(d)? {
        Compat::Spec(t) => Ok(t),
        Compat::Kind(k) if k.is_empty() || k == "keda" => Ok(TargetSpec::Keda),
        Compat::Kind(k) => Err(serde::de::Error::custom(format!(
            "target `{k}` needs its table (kind, and the platform's fields)"
        ))),
    }
}

/// Validates a target; the error names `key.<field>`.
pub fn check_target(key: &str, t: &TargetSpec) -> Result<(), ServiceError> {
    t.validate()
        .map_err(|(field, msg)| ServiceError::config(&format!("{key}.{field}"), msg))
}

/// Default memory of one instance, MB.
pub const DEFAULT_MEMORY_MB: f64 = 256.0;
/// Default time from a decision to a ready replica, ms.
pub const DEFAULT_COLD_START_MS: Millis = 30_000;
/// Default lead for Lambda targets, ms: provisioned concurrency takes minutes to allocate, so
/// their decisions look further ahead.
pub const DEFAULT_LAMBDA_LEAD_MS: Millis = 180_000;

/// The default decision-to-ready lead for a target.
pub fn default_lead_ms(t: &TargetSpec) -> Millis {
    match t {
        TargetSpec::Lambda(_) => DEFAULT_LAMBDA_LEAD_MS,
        _ => DEFAULT_COLD_START_MS,
    }
}

fn default_memory_mb() -> f64 {
    DEFAULT_MEMORY_MB
}
fn default_cold_start_ms() -> Millis {
    DEFAULT_COLD_START_MS
}
fn default_concurrency() -> u32 {
    1
}

/// The `[actuator]` table: how prewarm changes Knative and Lambda targets.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ActuatorFile {
    /// Compute, log and export what would be written, write nothing.
    pub shadow: Option<bool>,
    /// Fewest time between two writes to one target, e.g. `30s`.
    pub min_interval: Option<String>,
    /// First retry delay after an error, e.g. `1s`.
    pub backoff_base: Option<String>,
    /// Longest retry delay, e.g. `5m`.
    pub backoff_max: Option<String>,
    /// Re-read each target at least this often, e.g. `60s`.
    pub resync: Option<String>,
    /// Re-read interval while a platform change is in progress, e.g. `5s`.
    pub poll: Option<String>,
}

/// The `[tls]` table: TLS (and, with `client_ca`, mutual TLS) on the gRPC port.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// PEM certificate chain of the server (leaf first).
    pub cert: Option<String>,
    /// PEM private key of the server (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<String>,
    /// PEM CA certificate(s) that client certificates must chain to; set = mutual TLS.
    pub client_ca: Option<String>,
    /// How often the files are checked for changes, e.g. `10s` (1 s ..= 1 h).
    pub reload_interval: Option<String>,
}

/// Bearer tokens as written (file contents never pass through here; environment tokens do).
/// `Debug` shows only how many there are, never the values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tokens(pub Vec<String>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens(<{} redacted>)", self.0.len())
    }
}

/// The `[auth]` table: per-RPC bearer tokens on the prewarm.v1 and KEDA services.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    /// File of accepted tokens: one per line, `#` starts a comment line; reloaded on change.
    pub token_file: Option<String>,
    /// How often the token file is checked for changes, e.g. `10s` (1 s ..= 1 h).
    pub reload_interval: Option<String>,
    /// gRPC services that need no token, e.g. `["externalscaler.ExternalScaler"]` (KEDA sends
    /// no token; secure that service with mutual TLS instead).
    pub exempt: Option<Vec<String>>,
    /// Tokens from `PREWARM_AUTH_TOKENS` (comma separated). Not settable in the file: a
    /// `tokens` key there is rejected, secrets belong in a token file or the environment.
    #[serde(skip)]
    pub tokens: Option<Tokens>,
}

/// Validated TLS settings of the gRPC port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// CA bundle for client certificates (PEM); `Some` = mutual TLS, a client certificate is
    /// required.
    pub client_ca: Option<PathBuf>,
    /// Interval of the file-change check, ms.
    pub reload_interval_ms: Millis,
}

/// Validated bearer-token settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Token file, if any (reloaded on change).
    pub token_file: Option<PathBuf>,
    /// Tokens from the environment (fixed for the life of the process).
    pub tokens: Tokens,
    /// Interval of the token-file change check, ms.
    pub reload_interval_ms: Millis,
    /// gRPC service names that need no token.
    pub exempt: Vec<String>,
}

/// Default interval of the certificate and token file checks, ms.
pub const DEFAULT_RELOAD_INTERVAL_MS: Millis = 10_000;

/// The gRPC services a token guards (grpc.health.v1 and reflection stay open).
pub const GUARDED_SERVICES: [&str; 4] = [
    "prewarm.v1.Telemetry",
    "prewarm.v1.Decisions",
    "prewarm.v1.Functions",
    "externalscaler.ExternalScaler",
];

/// A `[[function]]` table.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FunctionFile {
    /// Function id.
    pub id: String,
    /// Policy spec.
    pub policy: Option<String>,
    /// Lowest desired count.
    pub min: Option<u32>,
    /// Highest desired count.
    pub max: Option<u32>,
    /// Target: `{ kind = "keda" }` (default), `{ kind = "knative", namespace, service |
    /// revision, mode }` or `{ kind = "lambda", function, qualifier, region, ... }`.
    /// (Kept as a TOML value so that errors name `function[i].target.<field>`.)
    pub target: Option<toml::Value>,
    /// Memory of one instance, MB (default 256).
    pub memory_mb: Option<f64>,
    /// Time from a decision to a ready replica, e.g. `30s` (default).
    pub cold_start: Option<String>,
    /// Invocations one replica serves at once (default 1).
    pub concurrency: Option<u32>,
}

/// The configuration as written: every field optional. Layers merge file < env < flags.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// gRPC listen address.
    pub grpc_addr: Option<String>,
    /// Admin HTTP listen address.
    pub admin_addr: Option<String>,
    /// Redis URL; none keeps state in memory only.
    pub redis_url: Option<String>,
    /// Redis key prefix.
    pub redis_prefix: Option<String>,
    /// `wall` or `event`.
    pub clock: Option<String>,
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// Decision interval, e.g. `10s`.
    pub decision_interval: Option<String>,
    /// Redis flush interval, e.g. `5s` (1 s ..= 60 s).
    pub flush_interval: Option<String>,
    /// Longest wait for in-flight RPCs and open streams at shutdown, e.g. `10s` (0 ..= 5 min).
    pub drain_timeout: Option<String>,
    /// Policy for functions that do not name one.
    pub default_policy: Option<String>,
    /// Default maximum desired count.
    pub default_max: Option<u32>,
    /// Cap on functions held.
    pub max_functions: Option<usize>,
    /// Cap on samples per ingestion message.
    pub max_batch: Option<usize>,
    /// Cap on functions with their own metric labels.
    pub metrics_function_labels: Option<usize>,
    /// Mean duration assumed when a sample has neither concurrency nor duration, e.g. `1s`.
    pub default_duration: Option<String>,
    /// History replayed through a fresh policy after a restart, e.g. `1h`.
    pub warm_replay: Option<String>,
    /// Accept telemetry for unconfigured functions (registering them with the defaults).
    pub auto_register: Option<bool>,
    /// `[actuator]` table.
    pub actuator: Option<ActuatorFile>,
    /// `[tls]` table.
    pub tls: Option<TlsFile>,
    /// `[auth]` table.
    pub auth: Option<AuthFile>,
    /// `[[function]]` tables.
    #[serde(default, rename = "function")]
    pub functions: Vec<FunctionFile>,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// Admin HTTP listen address.
    pub admin_addr: SocketAddr,
    /// Redis URL, if persistence is on.
    pub redis_url: Option<String>,
    /// Redis key prefix.
    pub redis_prefix: String,
    /// Clock.
    pub clock: ClockMode,
    /// Log format.
    pub log_format: LogFormat,
    /// Decision interval, ms.
    pub decision_interval_ms: Millis,
    /// Redis flush interval, ms.
    pub flush_interval_ms: Millis,
    /// Longest drain at shutdown, ms.
    pub drain_timeout_ms: Millis,
    /// Default policy spec.
    pub default_policy: String,
    /// Default maximum desired count.
    pub default_max: u32,
    /// Cap on functions.
    pub max_functions: usize,
    /// Cap on samples per message.
    pub max_batch: usize,
    /// Cap on functions with per-function metric labels.
    pub metrics_function_labels: usize,
    /// Assumed mean duration, ms.
    pub default_duration_ms: f64,
    /// Warm replay window, ms.
    pub warm_replay_ms: Millis,
    /// Accept telemetry for unconfigured functions.
    pub auto_register: bool,
    /// Configured functions.
    pub functions: Vec<FunctionConfig>,
    /// Actuator reconcile settings.
    pub actuator: ReconcileConfig,
    /// TLS on the gRPC port; `None` = plaintext.
    pub tls: Option<TlsConfig>,
    /// Bearer tokens; `None` = no token check.
    pub auth: Option<AuthConfig>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        match RawConfig::default().validate() {
            Ok(c) => c,
            Err(_) => unreachable!("the defaults are valid"),
        }
    }
}

macro_rules! merge_fields {
    ($self:ident, $o:ident, $($f:ident),*) => { $( if $o.$f.is_some() { $self.$f = $o.$f; } )* };
}

impl RawConfig {
    /// Parses a TOML document.
    pub fn from_toml(text: &str) -> Result<Self, ServiceError> {
        toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            let key = key_from_toml_error(&msg);
            ServiceError::config(&key, format!("{msg} (at byte {:?})", e.span()))
        })
    }

    /// Reads `PREWARM_<KEY>` variables from `vars` (e.g. `PREWARM_GRPC_ADDR`).
    pub fn from_env<I: IntoIterator<Item = (String, String)>>(
        vars: I,
    ) -> Result<Self, ServiceError> {
        let mut r = RawConfig::default();
        for (k, v) in vars {
            let Some(name) = k.strip_prefix("PREWARM_") else {
                continue;
            };
            let key = name.to_ascii_lowercase();
            let num = |v: &str| -> Result<usize, ServiceError> {
                v.parse()
                    .map_err(|_| ServiceError::config(&k, format!("`{v}` is not a number")))
            };
            match key.as_str() {
                "grpc_addr" => r.grpc_addr = Some(v),
                "admin_addr" => r.admin_addr = Some(v),
                "redis_url" => r.redis_url = Some(v),
                "redis_prefix" => r.redis_prefix = Some(v),
                "clock" => r.clock = Some(v),
                "log_format" => r.log_format = Some(v),
                "decision_interval" => r.decision_interval = Some(v),
                "flush_interval" => r.flush_interval = Some(v),
                "drain_timeout" => r.drain_timeout = Some(v),
                "default_policy" => r.default_policy = Some(v),
                "default_duration" => r.default_duration = Some(v),
                "warm_replay" => r.warm_replay = Some(v),
                "default_max" => r.default_max = Some(num(&v)? as u32),
                "max_functions" => r.max_functions = Some(num(&v)?),
                "max_batch" => r.max_batch = Some(num(&v)?),
                "metrics_function_labels" => r.metrics_function_labels = Some(num(&v)?),
                "auto_register" => r.auto_register = Some(boolean(&k, &v)?),
                "actuator_shadow" => {
                    r.actuator.get_or_insert_with(ActuatorFile::default).shadow =
                        Some(boolean(&k, &v)?)
                }
                "tls_cert" => r.tls.get_or_insert_with(TlsFile::default).cert = Some(v),
                "tls_key" => r.tls.get_or_insert_with(TlsFile::default).key = Some(v),
                "tls_client_ca" => r.tls.get_or_insert_with(TlsFile::default).client_ca = Some(v),
                "tls_reload_interval" => {
                    r.tls.get_or_insert_with(TlsFile::default).reload_interval = Some(v)
                }
                "auth_token_file" => {
                    r.auth.get_or_insert_with(AuthFile::default).token_file = Some(v)
                }
                "auth_reload_interval" => {
                    r.auth.get_or_insert_with(AuthFile::default).reload_interval = Some(v)
                }
                "auth_exempt" => {
                    r.auth.get_or_insert_with(AuthFile::default).exempt = Some(
                        v.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect(),
                    )
                }
                "auth_tokens" => {
                    r.auth.get_or_insert_with(AuthFile::default).tokens = Some(Tokens(
                        v.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect(),
                    ))
                }
                // Other PREWARM_* variables (e.g. PREWARM_CONFIG) belong to the CLI.
                _ => {}
            }
        }
        Ok(r)
    }

    /// Overlays `other` on `self`: every field set in `other` wins; functions are appended.
    pub fn merge(mut self, other: RawConfig) -> Self {
        merge_fields!(
            self,
            other,
            grpc_addr,
            admin_addr,
            redis_url,
            redis_prefix,
            clock,
            log_format,
            decision_interval,
            flush_interval,
            drain_timeout,
            default_policy,
            default_max,
            max_functions,
            max_batch,
            metrics_function_labels,
            default_duration,
            warm_replay,
            auto_register
        );
        self.functions.extend(other.functions);
        if let Some(o) = other.actuator {
            let a = self.actuator.get_or_insert_with(ActuatorFile::default);
            merge_fields!(
                a,
                o,
                shadow,
                min_interval,
                backoff_base,
                backoff_max,
                resync,
                poll
            );
        }
        if let Some(o) = other.tls {
            let t = self.tls.get_or_insert_with(TlsFile::default);
            merge_fields!(t, o, cert, key, client_ca, reload_interval);
        }
        if let Some(o) = other.auth {
            let a = self.auth.get_or_insert_with(AuthFile::default);
            merge_fields!(a, o, token_file, reload_interval, exempt, tokens);
        }
        self
    }

    /// Validates every field; the error names the first bad key.
    pub fn validate(self) -> Result<ServiceConfig, ServiceError> {
        let addr = |key: &str, v: Option<String>, d: &str| -> Result<SocketAddr, ServiceError> {
            let s = v.unwrap_or_else(|| d.to_string());
            s.parse()
                .map_err(|_| ServiceError::config(key, format!("`{s}` is not a host:port address")))
        };
        let dur = |key: &str, v: Option<String>, d: Millis| -> Result<Millis, ServiceError> {
            match v {
                None => Ok(d),
                Some(s) => parse_duration_ms(&s).map_err(|e| ServiceError::config(key, e)),
            }
        };
        let grpc_addr = addr("grpc_addr", self.grpc_addr, "127.0.0.1:9090")?;
        let admin_addr = addr("admin_addr", self.admin_addr, "127.0.0.1:9091")?;
        if grpc_addr == admin_addr && grpc_addr.port() != 0 {
            return Err(ServiceError::config(
                "admin_addr",
                "must differ from grpc_addr",
            ));
        }
        let clock = match self.clock.as_deref().unwrap_or("wall") {
            "wall" => ClockMode::Wall,
            "event" => ClockMode::Event,
            s => {
                return Err(ServiceError::config(
                    "clock",
                    format!("`{s}`: use wall or event"),
                ))
            }
        };
        let log_format = match self.log_format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            s => {
                return Err(ServiceError::config(
                    "log_format",
                    format!("`{s}`: use text or json"),
                ))
            }
        };
        let decision_interval_ms = dur("decision_interval", self.decision_interval, 10_000)?;
        if !(10_000..=600_000).contains(&decision_interval_ms) || decision_interval_ms % 10_000 != 0
        {
            return Err(ServiceError::config(
                "decision_interval",
                "must be a multiple of 10s (the finest history bin) within 10s..=10m",
            ));
        }
        let flush_interval_ms = dur("flush_interval", self.flush_interval, 5_000)?;
        if !(1_000..=60_000).contains(&flush_interval_ms) {
            return Err(ServiceError::config(
                "flush_interval",
                "must be within 1s..=60s",
            ));
        }
        let drain_timeout_ms = dur("drain_timeout", self.drain_timeout, 10_000)?;
        if drain_timeout_ms > 300_000 {
            return Err(ServiceError::config("drain_timeout", "must be at most 5m"));
        }
        let default_duration_ms = dur("default_duration", self.default_duration, 1_000)? as f64;
        let warm_replay_ms = dur("warm_replay", self.warm_replay, 3_600_000)?;
        if warm_replay_ms > 6 * 3_600_000 {
            return Err(ServiceError::config(
                "warm_replay",
                "must be at most 6h (the 10 s tier)",
            ));
        }
        let default_policy = self.default_policy.unwrap_or_else(|| "predictive".into());
        check_policy("default_policy", &default_policy)?;
        let default_max = self.default_max.unwrap_or(1_000);
        if default_max == 0 {
            return Err(ServiceError::config("default_max", "must be at least 1"));
        }
        let max_functions = self.max_functions.unwrap_or(50_000);
        if max_functions == 0 {
            return Err(ServiceError::config("max_functions", "must be at least 1"));
        }
        let max_batch = self.max_batch.unwrap_or(100_000);
        if max_batch == 0 {
            return Err(ServiceError::config("max_batch", "must be at least 1"));
        }
        if let Some(u) = &self.redis_url {
            if !(u.starts_with("redis://")
                || u.starts_with("rediss://")
                || u.starts_with("unix://"))
            {
                return Err(ServiceError::config(
                    "redis_url",
                    format!("`{u}` is not a redis://, rediss:// or unix:// URL"),
                ));
            }
        }
        let mut functions: Vec<FunctionConfig> = Vec::new();
        for (i, f) in self.functions.into_iter().enumerate() {
            let key = |k: &str| format!("function[{i}].{k}");
            super::validate::check_function_id(&f.id)
                .map_err(|m| ServiceError::config(&key("id"), m))?;
            if functions.iter().any(|g| g.id == f.id) {
                return Err(ServiceError::config(
                    &key("id"),
                    format!("`{}` is configured twice", f.id),
                ));
            }
            let policy = f.policy.unwrap_or_default();
            if !policy.is_empty() {
                check_policy(&key("policy"), &policy)?;
            }
            let min = f.min.unwrap_or(0);
            let max = f.max.unwrap_or(default_max);
            if max == 0 || min > max {
                return Err(ServiceError::config(
                    &key("max"),
                    format!("need 1 <= max and min <= max (min {min}, max {max})"),
                ));
            }
            let target = match f.target {
                None => TargetSpec::Keda,
                Some(v) => v.try_into::<TargetSpec>().map_err(|e| {
                    let msg = e.message().to_string();
                    let field = if msg.contains("unknown variant") {
                        "kind".to_string()
                    } else {
                        key_from_toml_error(&msg)
                    };
                    let field = if field == "config file" {
                        String::new()
                    } else {
                        format!(".{field}")
                    };
                    ServiceError::config(&key(&format!("target{field}")), msg)
                })?,
            };
            check_target(&key("target"), &target)?;
            let memory_mb = f.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
            check_memory(&key("memory_mb"), memory_mb)?;
            let cold_start_ms = match f.cold_start {
                None => default_lead_ms(&target),
                Some(s) => parse_duration_ms(&s)
                    .map_err(|e| ServiceError::config(&key("cold_start"), e))?,
            };
            check_cold_start(&key("cold_start"), cold_start_ms)?;
            let concurrency = f.concurrency.unwrap_or(1);
            if concurrency == 0 {
                return Err(ServiceError::config(
                    &key("concurrency"),
                    "must be at least 1",
                ));
            }
            functions.push(FunctionConfig {
                id: f.id,
                policy,
                min,
                max,
                target,
                memory_mb,
                cold_start_ms,
                concurrency,
            });
        }
        if functions.len() > max_functions {
            return Err(ServiceError::config(
                "function",
                format!(
                    "{} functions exceed max_functions {max_functions}",
                    functions.len()
                ),
            ));
        }
        let actuator = validate_actuator(self.actuator.unwrap_or_default())?;
        let tls = self.tls.map(validate_tls).transpose()?.flatten();
        let auth = self.auth.map(validate_auth).transpose()?.flatten();
        Ok(ServiceConfig {
            actuator,
            tls,
            auth,
            grpc_addr,
            admin_addr,
            redis_url: self.redis_url,
            redis_prefix: self.redis_prefix.unwrap_or_else(|| "prewarm:".into()),
            clock,
            log_format,
            decision_interval_ms,
            flush_interval_ms,
            drain_timeout_ms,
            default_policy,
            default_max,
            max_functions,
            max_batch,
            metrics_function_labels: self.metrics_function_labels.unwrap_or(100),
            default_duration_ms,
            warm_replay_ms,
            auto_register: self.auto_register.unwrap_or(true),
            functions,
        })
    }
}

fn boolean(key: &str, v: &str) -> Result<bool, ServiceError> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ServiceError::config(key, "expected true or false")),
    }
}

fn validate_actuator(a: ActuatorFile) -> Result<ReconcileConfig, ServiceError> {
    let d = ReconcileConfig::default();
    let dur = |key: &str, v: Option<String>, d: Millis| -> Result<Millis, ServiceError> {
        let ms = match v {
            None => d,
            Some(s) => parse_duration_ms(&s)
                .map_err(|e| ServiceError::config(&format!("actuator.{key}"), e))?,
        };
        if ms == 0 || ms > 3_600_000 {
            return Err(ServiceError::config(
                &format!("actuator.{key}"),
                "must be within 1ms..=1h",
            ));
        }
        Ok(ms)
    };
    let c = ReconcileConfig {
        shadow: a.shadow.unwrap_or(false),
        min_interval_ms: dur("min_interval", a.min_interval, d.min_interval_ms)?,
        backoff_base_ms: dur("backoff_base", a.backoff_base, d.backoff_base_ms)?,
        backoff_max_ms: dur("backoff_max", a.backoff_max, d.backoff_max_ms)?,
        resync_ms: dur("resync", a.resync, d.resync_ms)?,
        poll_ms: dur("poll", a.poll, d.poll_ms)?,
    };
    if c.backoff_max_ms < c.backoff_base_ms {
        return Err(ServiceError::config(
            "actuator.backoff_max",
            "must be at least actuator.backoff_base",
        ));
    }
    Ok(c)
}

fn reload_interval(key: &str, v: Option<String>) -> Result<Millis, ServiceError> {
    let ms = match v {
        None => DEFAULT_RELOAD_INTERVAL_MS,
        Some(s) => parse_duration_ms(&s).map_err(|e| ServiceError::config(key, e))?,
    };
    if !(1_000..=3_600_000).contains(&ms) {
        return Err(ServiceError::config(key, "must be within 1s..=1h"));
    }
    Ok(ms)
}

fn path(key: &str, v: Option<String>) -> Result<Option<PathBuf>, ServiceError> {
    match v {
        Some(s) if s.trim().is_empty() => Err(ServiceError::config(key, "empty path")),
        other => Ok(other.map(PathBuf::from)),
    }
}

/// `[tls]`: cert and key go together; client_ca needs them. An empty table = plaintext.
fn validate_tls(t: TlsFile) -> Result<Option<TlsConfig>, ServiceError> {
    let reload_interval_ms = reload_interval("tls.reload_interval", t.reload_interval)?;
    let cert = path("tls.cert", t.cert)?;
    let key = path("tls.key", t.key)?;
    let client_ca = path("tls.client_ca", t.client_ca)?;
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsConfig {
            cert,
            key,
            client_ca,
            reload_interval_ms,
        })),
        (Some(_), None) => Err(ServiceError::config(
            "tls.key",
            "tls.cert is set: the private key is needed too",
        )),
        (None, Some(_)) => Err(ServiceError::config(
            "tls.cert",
            "tls.key is set: the certificate is needed too",
        )),
        (None, None) if client_ca.is_some() => Err(ServiceError::config(
            "tls.cert",
            "tls.client_ca (mutual TLS) needs tls.cert and tls.key",
        )),
        (None, None) => Ok(None),
    }
}

/// `[auth]`: a token file and/or environment tokens; exempt names known services.
fn validate_auth(a: AuthFile) -> Result<Option<AuthConfig>, ServiceError> {
    let reload_interval_ms = reload_interval("auth.reload_interval", a.reload_interval)?;
    let token_file = path("auth.token_file", a.token_file)?;
    let exempt = a.exempt.unwrap_or_default();
    for s in &exempt {
        if !GUARDED_SERVICES.contains(&s.as_str()) {
            return Err(ServiceError::config(
                "auth.exempt",
                format!("`{s}` is not one of {}", GUARDED_SERVICES.join(", ")),
            ));
        }
    }
    let tokens = a.tokens.unwrap_or_default();
    if let Some(bad) = tokens.0.iter().position(|t| !valid_token(t)) {
        return Err(ServiceError::config(
            "PREWARM_AUTH_TOKENS",
            format!("token {} has characters outside visible ASCII", bad + 1),
        ));
    }
    if token_file.is_none() && tokens.0.is_empty() {
        if exempt.is_empty() {
            return Ok(None);
        }
        return Err(ServiceError::config(
            "auth.token_file",
            "auth.exempt is set but no tokens are: set auth.token_file or PREWARM_AUTH_TOKENS",
        ));
    }
    Ok(Some(AuthConfig {
        token_file,
        tokens,
        reload_interval_ms,
        exempt,
    }))
}

/// A token can travel in an HTTP header: visible ASCII, no spaces.
pub fn valid_token(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic())
}

/// Checks an instance memory size (1 MB ..= 1 TB); the error names `key`.
pub fn check_memory(key: &str, mb: f64) -> Result<(), ServiceError> {
    if mb.is_finite() && (1.0..=1_048_576.0).contains(&mb) {
        Ok(())
    } else {
        Err(ServiceError::config(
            key,
            format!("{mb} MB is outside 1..=1048576"),
        ))
    }
}

/// Checks a cold-start (decision-to-ready) time: at most 1 h; the error names `key`.
pub fn check_cold_start(key: &str, ms: Millis) -> Result<(), ServiceError> {
    if ms <= 3_600_000 {
        Ok(())
    } else {
        Err(ServiceError::config(key, "must be at most 1h"))
    }
}

/// Parses and builds a policy spec; the error names `key`.
pub fn check_policy(key: &str, spec: &str) -> Result<(), ServiceError> {
    PolicySpec::parse(spec)
        .and_then(|s| s.build())
        .map(|_| ())
        .map_err(|e| ServiceError::config(key, e.to_string()))
}

fn key_from_toml_error(msg: &str) -> String {
    // toml names unknown fields as "unknown field `x`"; otherwise point at the file.
    if let Some(rest) = msg.split("unknown field `").nth(1) {
        if let Some(k) = rest.split('`').next() {
            return k.to_string();
        }
    }
    if let Some(rest) = msg.split("missing field `").nth(1) {
        if let Some(k) = rest.split('`').next() {
            return k.to_string();
        }
    }
    "config file".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_key(r: Result<ServiceConfig, ServiceError>) -> String {
        match r {
            Err(ServiceError::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        let c = ServiceConfig::default();
        assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:9090");
        assert_eq!(c.decision_interval_ms, 10_000);
        assert_eq!(c.default_policy, "predictive");
    }

    #[test]
    fn file_env_flags_layer_and_errors_name_keys() {
        let f = RawConfig::from_toml(
            r#"
            grpc_addr = "127.0.0.1:7000"
            [[function]]
            id = "ns/fn-a"
            policy = "reactive:target=2"
            min = 1
            max = 5
            target = { kind = "keda" }
            "#,
        )
        .unwrap();
        let env =
            RawConfig::from_env([("PREWARM_GRPC_ADDR".into(), "127.0.0.1:7001".into())]).unwrap();
        let c = f.merge(env).validate().unwrap();
        assert_eq!(c.grpc_addr.port(), 7001);
        assert_eq!(c.functions[0].max, 5);

        let bad = RawConfig::from_toml("[[function]]\nid = \"a\"\npolicy = \"lru\"\n").unwrap();
        assert_eq!(err_key(bad.validate()), "function[0].policy");
        let bad = RawConfig::from_toml("clock = \"sundial\"").unwrap();
        assert_eq!(err_key(bad.validate()), "clock");
        match RawConfig::from_toml("grpc_adr = \"x\"") {
            Err(ServiceError::Config { key, .. }) => assert_eq!(key, "grpc_adr"),
            other => panic!("{other:?}"),
        }
        let bad = RawConfig::from_toml("[[function]]\nid = \"a b\"\n").unwrap();
        assert_eq!(err_key(bad.validate()), "function[0].id");
        let bad = RawConfig::from_toml("[[function]]\nid = \"a\"\ncold_start = \"2h\"\n").unwrap();
        assert_eq!(err_key(bad.validate()), "function[0].cold_start");
        let bad = RawConfig::from_toml("[[function]]\nid = \"a\"\nmemory_mb = -1.0\n").unwrap();
        assert_eq!(err_key(bad.validate()), "function[0].memory_mb");
        let bad = RawConfig::from_toml("decision_interval = \"15s\"").unwrap();
        assert_eq!(err_key(bad.validate()), "decision_interval");
    }

    #[test]
    fn actuated_targets_validate_and_lambda_looks_further_ahead() {
        let c = RawConfig::from_toml(
            r#"
            [actuator]
            shadow = true
            min_interval = "1m"
            [[function]]
            id = "kn"
            target = { kind = "knative", namespace = "default", service = "hello" }
            [[function]]
            id = "lam"
            target = { kind = "lambda", function = "checkout", qualifier = "live", max_concurrency = 50 }
            "#,
        )
        .unwrap()
        .validate()
        .unwrap();
        assert!(c.actuator.shadow);
        assert_eq!(c.actuator.min_interval_ms, 60_000);
        assert_eq!(c.functions[0].target.kind(), "knative");
        assert_eq!(c.functions[0].cold_start_ms, DEFAULT_COLD_START_MS);
        assert_eq!(c.functions[1].cold_start_ms, DEFAULT_LAMBDA_LEAD_MS);

        let bad = |t: &str| {
            let text = format!("[[function]]\nid = \"f\"\ntarget = {t}\n");
            err_key(RawConfig::from_toml(&text).unwrap().validate())
        };
        assert_eq!(
            bad(r#"{ kind = "lambda", function = "f", qualifier = "$LATEST" }"#),
            "function[0].target.qualifier"
        );
        assert_eq!(
            bad(r#"{ kind = "knative", namespace = "Default", service = "s" }"#),
            "function[0].target.namespace"
        );
        assert_eq!(
            bad(r#"{ kind = "knative", namespace = "d" }"#),
            "function[0].target.service"
        );
        let bad =
            RawConfig::from_toml("[actuator]\nbackoff_base = \"10s\"\nbackoff_max = \"1s\"\n")
                .unwrap();
        assert_eq!(err_key(bad.validate()), "actuator.backoff_max");
        let env = RawConfig::from_env([("PREWARM_ACTUATOR_SHADOW".into(), "1".into())]).unwrap();
        assert!(
            RawConfig::default()
                .merge(env)
                .validate()
                .unwrap()
                .actuator
                .shadow
        );
    }

    #[test]
    fn tls_and_auth_tables_validate_and_errors_name_keys() {
        let c = RawConfig::from_toml(
            "[tls]\ncert = \"s.pem\"\nkey = \"s.key\"\nclient_ca = \"ca.pem\"\n\
             [auth]\ntoken_file = \"t\"\nexempt = [\"externalscaler.ExternalScaler\"]\n",
        )
        .unwrap()
        .validate()
        .unwrap();
        let t = c.tls.unwrap();
        assert_eq!(t.client_ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(t.reload_interval_ms, DEFAULT_RELOAD_INTERVAL_MS);
        assert_eq!(
            c.auth.unwrap().exempt,
            vec!["externalscaler.ExternalScaler"]
        );
        assert!(ServiceConfig::default().tls.is_none() && ServiceConfig::default().auth.is_none());

        let bad = |text: &str| err_key(RawConfig::from_toml(text).unwrap().validate());
        assert_eq!(bad("[tls]\nkey = \"k\""), "tls.cert");
        assert_eq!(bad("[tls]\ncert = \"c\""), "tls.key");
        assert_eq!(bad("[tls]\nclient_ca = \"ca\""), "tls.cert");
        assert_eq!(
            bad("[tls]\ncert = \"c\"\nkey = \"k\"\nreload_interval = \"10ms\""),
            "tls.reload_interval"
        );
        assert_eq!(
            bad("[auth]\nexempt = [\"grpc.health.v1.Health\"]\ntoken_file = \"t\""),
            "auth.exempt"
        );
        assert_eq!(
            bad("[auth]\nexempt = [\"prewarm.v1.Decisions\"]"),
            "auth.token_file"
        );
        // Tokens are not accepted in the file (secrets go in a token file or the environment).
        match RawConfig::from_toml("[auth]\ntokens = [\"x\"]") {
            Err(ServiceError::Config { key, .. }) => assert_eq!(key, "tokens"),
            other => panic!("{other:?}"),
        }

        // Environment: tokens (comma separated) and paths; flags/env layer over the file.
        let env = RawConfig::from_env([
            ("PREWARM_AUTH_TOKENS".into(), " tok-one, tok-two ,,".into()),
            ("PREWARM_TLS_CERT".into(), "env.pem".into()),
            ("PREWARM_TLS_KEY".into(), "env.key".into()),
        ])
        .unwrap();
        assert!(
            !format!("{env:?}").contains("tok-one"),
            "tokens are redacted in Debug"
        );
        let c = RawConfig::from_toml(
            "[tls]\ncert = \"file.pem\"\nkey = \"file.key\"\nreload_interval = \"30s\"",
        )
        .unwrap()
        .merge(env)
        .validate()
        .unwrap();
        let t = c.tls.unwrap();
        assert_eq!(
            (t.cert, t.reload_interval_ms),
            (PathBuf::from("env.pem"), 30_000)
        );
        assert_eq!(
            c.auth.unwrap().tokens,
            Tokens(vec!["tok-one".into(), "tok-two".into()])
        );
        let env = RawConfig::from_env([("PREWARM_AUTH_TOKENS".into(), "a b".into())]).unwrap();
        assert_eq!(err_key(env.validate()), "PREWARM_AUTH_TOKENS");
    }

    #[test]
    fn the_shipped_example_config_is_valid() {
        let text = include_str!("../../../deploy/prewarm.toml");
        let c = RawConfig::from_toml(text).unwrap().validate().unwrap();
        assert_eq!(c.default_policy, "predictive");
        let f = &c.functions[0];
        assert_eq!(
            (f.cold_start_ms, f.concurrency, f.memory_mb),
            (45_000, 10, 512.0)
        );
    }
}
