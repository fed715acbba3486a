//! Connection options shared by the commands that talk to a running server (`replay`,
//! `decisions`): TLS with a private CA, a client certificate for mutual TLS, and a bearer
//! token sent with every RPC.

use crate::cmd::ExitError;
use anyhow::Context;
use std::path::{Path, PathBuf};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

/// Environment variable read when `--token` is not given.
pub const TOKEN_ENV: &str = "PREWARM_TOKEN";

/// TLS and token options of a client command.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClientArgs {
    /// CA certificate (PEM) that signed the server's certificate; turns TLS on (an
    /// `http://` address is then dialled as `https://`).
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for a server that requires mutual TLS (needs --client-key).
    #[arg(long, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Private key (PEM) of --client-cert.
    #[arg(long, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Name to verify in the server certificate [default: the host of the address].
    #[arg(long)]
    pub tls_server_name: Option<String>,
    /// Bearer token sent with every call [default: $PREWARM_TOKEN].
    #[arg(long)]
    pub token: Option<String>,
}

/// Adds `authorization: Bearer <token>` to every call (nothing when there is no token).
#[derive(Clone)]
pub struct BearerToken(Option<MetadataValue<tonic::metadata::Ascii>>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "BearerToken(<redacted>)"
        } else {
            "BearerToken(None)"
        })
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

fn read(path: &Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        ExitError::config(format!(
            "config key `{flag}`: cannot read {}: {e}",
            path.display()
        ))
    })
}

impl ClientArgs {
    /// The bearer token interceptor (`--token`, else `$PREWARM_TOKEN`).
    pub fn bearer(&self) -> anyhow::Result<BearerToken> {
        let token = self
            .token
            .clone()
            .or_else(|| std::env::var(TOKEN_ENV).ok())
            .filter(|t| !t.is_empty());
        let Some(t) = token else {
            return Ok(BearerToken(None));
        };
        let v = format!("Bearer {t}").parse().map_err(|_| {
            ExitError::config("config key `--token`: a token is visible ASCII without spaces")
        })?;
        Ok(BearerToken(Some(v)))
    }

    /// An endpoint for `addr` with TLS configured when any TLS option is given.
    pub fn endpoint(&self, addr: &str) -> anyhow::Result<Endpoint> {
        let tls = self.ca_cert.is_some() || self.client_cert.is_some();
        let addr = match addr.strip_prefix("http://") {
            Some(rest) if tls => format!("https://{rest}"),
            _ => addr.to_string(),
        };
        let ep = Endpoint::from_shared(addr.clone())
            .map_err(|e| ExitError::config(format!("config key `--addr`: {e}")))?;
        if !tls {
            if addr.starts_with("https://") {
                return Err(ExitError::config(
                    "config key `--ca-cert`: an https:// address needs the CA that signed the \
                     server certificate",
                ));
            }
            return Ok(ep);
        }
        let mut cfg = ClientTlsConfig::new();
        if let Some(ca) = &self.ca_cert {
            cfg = cfg.ca_certificate(Certificate::from_pem(read(ca, "--ca-cert")?));
        }
        if let (Some(c), Some(k)) = (&self.client_cert, &self.client_key) {
            cfg = cfg.identity(Identity::from_pem(
                read(c, "--client-cert")?,
                read(k, "--client-key")?,
            ));
        }
        if let Some(name) = &self.tls_server_name {
            cfg = cfg.domain_name(name.clone());
        }
        ep.tls_config(cfg)
            .map_err(|e| ExitError::config(format!("config key `--ca-cert`: TLS setup: {e}")))
    }

    /// Connects to `addr` (TLS as configured); `tune` adjusts the endpoint first.
    pub async fn connect(
        &self,
        addr: &str,
        tune: impl FnOnce(Endpoint) -> Endpoint,
    ) -> anyhow::Result<Channel> {
        tune(self.endpoint(addr)?)
            .connect()
            .await
            .with_context(|| format!("cannot connect to {addr}"))
    }
}
