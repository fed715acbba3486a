//! `prewarm serve`: the prediction service (telemetry in, decisions out, KEDA external scaler).
//! Configuration layers: `--config` TOML < `PREWARM_*` environment < flags; validated before
//! any port binds (exit 64 naming the key). SIGTERM / SIGINT shut down in order and exit 0.

use crate::cmd::ExitError;
use anyhow::Context;
use prewarm_scaler::service::{self, RawConfig, ServiceError};
use std::path::PathBuf;

/// Arguments of `prewarm serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// TOML configuration file (also `PREWARM_CONFIG`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:9090].
    #[arg(long)]
    pub grpc_addr: Option<String>,
    /// Admin HTTP listen address (/metrics, /live, /ready) [default: 127.0.0.1:9091].
    #[arg(long)]
    pub admin_addr: Option<String>,
    /// Keep state in Redis (e.g. redis://127.0.0.1:6379/0); in memory only when absent.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Clock: `wall` (production) or `event` (time = telemetry timestamps, for replays).
    #[arg(long)]
    pub clock: Option<String>,
    /// Log format: `text` or `json`.
    #[arg(long)]
    pub log_format: Option<String>,
    /// Decision interval, e.g. `10s`.
    #[arg(long)]
    pub decision_interval: Option<String>,
    /// Policy spec for functions that do not name one, e.g. `reactive`.
    #[arg(long)]
    pub default_policy: Option<String>,
    /// Serve gRPC over TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long)]
    pub tls_cert: Option<String>,
    /// PEM private key of --tls-cert.
    #[arg(long)]
    pub tls_key: Option<String>,
    /// Require client certificates signed by this PEM CA bundle (mutual TLS).
    #[arg(long)]
    pub tls_client_ca: Option<String>,
    /// Bearer-token file: one accepted token per line, `#` comments; reloaded on change.
    /// (Tokens can also come from PREWARM_AUTH_TOKENS, comma separated.)
    #[arg(long)]
    pub auth_token_file: Option<String>,
}

fn config_error(e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::Config { .. } | ServiceError::Credentials { .. } => {
            ExitError::config(e.to_string())
        }
        other => anyhow::Error::new(other),
    }
}

/// Builds the validated configuration from the file, the environment and the flags.
pub fn load_config(args: &Args) -> anyhow::Result<service::ServiceConfig> {
    let path = args
        .config
        .clone()
        .or_else(|| std::env::var_os("PREWARM_CONFIG").map(PathBuf::from));
    let file = match &path {
        None => RawConfig::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                ExitError::config(format!(
                    "config key `--config`: cannot read {}: {e}",
                    p.display()
                ))
            })?;
            RawConfig::from_toml(&text)
                .map_err(|e| ExitError::config(format!("{}: {e}", p.display())))?
        }
    };
    let env = RawConfig::from_env(std::env::vars()).map_err(config_error)?;
    let flags = RawConfig {
        grpc_addr: args.grpc_addr.clone(),
        admin_addr: args.admin_addr.clone(),
        redis_url: args.redis_url.clone(),
        clock: args.clock.clone(),
        log_format: args.log_format.clone(),
        decision_interval: args.decision_interval.clone(),
        default_policy: args.default_policy.clone(),
        tls: (args.tls_cert.is_some() || args.tls_key.is_some() || args.tls_client_ca.is_some())
            .then(|| service::config::TlsFile {
                cert: args.tls_cert.clone(),
                key: args.tls_key.clone(),
                client_ca: args.tls_client_ca.clone(),
                reload_interval: None,
            }),
        auth: args
            .auth_token_file
            .clone()
            .map(|f| service::config::AuthFile {
                token_file: Some(f),
                ..Default::default()
            }),
        ..RawConfig::default()
    };
    file.merge(env)
        .merge(flags)
        .validate()
        .map_err(config_error)
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called (before the
/// service announces itself), so a signal sent right after start-up is never lost.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Runs `prewarm serve` until SIGTERM / SIGINT.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = load_config(&args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Inside the runtime: the OpenTelemetry exporter (feature `otel`) needs it.
    let _logging = {
        let _rt = rt.enter();
        service::init_logging(cfg.log_format).map_err(ExitError::config)?
    };
    rt.block_on(async move {
        let signal = shutdown_signal()?;
        let handle = service::spawn(cfg).await.map_err(config_error)?;
        // Printed on stdout so scripts can find the ports (useful with port 0).
        outln!(
            "prewarm serving grpc={} admin={}",
            handle.grpc_addr,
            handle.admin_addr
        );
        signal.await;
        handle.shutdown().await?;
        Ok::<(), anyhow::Error>(())
    })
}
