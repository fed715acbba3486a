//! TLS and mutual TLS on the gRPC port: PEM files into a rustls `ServerConfig` (aws-lc-rs
//! provider, ALPN `h2`, client certificates verified against `client_ca` when set), the accept
//! loop that hands finished handshakes to tonic (a failed handshake drops only that
//! connection), and reloading of changed certificate files.

use super::config::TlsConfig;
use super::metrics::Metrics;
use super::reload::{read_files, Reload, Reloadable, SharedTracker};
use super::ServiceError;
use arc_swap::ArcSwap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

/// Longest time a client may take to finish the TLS handshake before it is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most TLS handshakes in progress at once; a connection beyond it is closed at once (so
/// clients that open connections and never finish the handshake cannot exhaust memory or
/// file descriptors; they hold a slot for at most [`HANDSHAKE_TIMEOUT`]).
pub const MAX_PENDING_HANDSHAKES: usize = 1024;

/// The crypto provider of every TLS config prewarm builds (aws-lc-rs, the one kube and the AWS
/// SDK use too).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Installs aws-lc-rs as the process-wide default rustls provider, so that libraries building
/// configs with `ClientConfig::builder()` never panic for want of one. Idempotent.
pub fn install_crypto_provider() {
    if CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: one provider is installed either way.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// Parses a PEM certificate bundle (at least one `CERTIFICATE` block); errors name `file`.
pub fn parse_certs(file: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ServiceError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServiceError::credentials(file, format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(ServiceError::credentials(
            file,
            "no CERTIFICATE block in the PEM file",
        ));
    }
    Ok(certs)
}

/// Parses a PEM private key (PKCS#8, PKCS#1 or SEC1); errors name `file`.
pub fn parse_key(file: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, ServiceError> {
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| ServiceError::credentials(file, format!("no usable private key: {e}")))
}

/// Reads a CA bundle into a root store; errors name `file`.
pub fn parse_roots(file: &Path, pem: &[u8]) -> Result<RootCertStore, ServiceError> {
    let mut roots = RootCertStore::empty();
    for c in parse_certs(file, pem)? {
        roots.add(c).map_err(|e| {
            ServiceError::credentials(file, format!("unusable CA certificate: {e}"))
        })?;
    }
    Ok(roots)
}

/// Builds the server config from file contents (`files` = cert, key, then client CA if set).
pub fn build_server_config(
    cfg: &TlsConfig,
    files: &[Vec<u8>],
) -> Result<ServerConfig, ServiceError> {
    let (cert_pem, key_pem) = match files {
        [c, k, ..] => (c, k),
        _ => return Err(ServiceError::credentials(&cfg.cert, "not read")),
    };
    let certs = parse_certs(&cfg.cert, cert_pem)?;
    let key = parse_key(&cfg.key, key_pem)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServiceError::credentials(&cfg.cert, format!("TLS versions: {e}")))?;
    let builder = match (&cfg.client_ca, files.get(2)) {
        (Some(ca), Some(ca_pem)) => {
            let roots = parse_roots(ca, ca_pem)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| ServiceError::credentials(ca, format!("client CA: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        ServiceError::credentials(
            &cfg.key,
            format!("does not fit the certificate {}: {e}", cfg.cert.display()),
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The TLS config in use, swapped atomically when the files change.
#[derive(Debug)]
pub struct TlsState {
    settings: TlsConfig,
    current: ArcSwap<ServerConfig>,
    tracker: SharedTracker,
}

impl TlsState {
    /// Reads and checks the files (errors name the file).
    pub fn load(settings: TlsConfig) -> Result<Arc<Self>, ServiceError> {
        install_crypto_provider();
        let files = read_files(&Self::paths(&settings))?;
        let config = build_server_config(&settings, &files)?;
        Ok(Arc::new(TlsState {
            tracker: SharedTracker::new(super::reload::fingerprint(&files)),
            current: ArcSwap::from_pointee(config),
            settings,
        }))
    }

    fn paths(s: &TlsConfig) -> Vec<&Path> {
        let mut p = vec![s.cert.as_path(), s.key.as_path()];
        if let Some(ca) = &s.client_ca {
            p.push(ca.as_path());
        }
        p
    }

    /// The config new connections get.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// The settings (paths, reload interval).
    pub fn settings(&self) -> &TlsConfig {
        &self.settings
    }
}

impl Reloadable for TlsState {
    fn what(&self) -> &'static str {
        "tls"
    }

    fn reload(&self) -> Reload {
        self.tracker.poll(
            || read_files(&Self::paths(&self.settings)),
            |files| {
                let c = build_server_config(&self.settings, &files)?;
                self.current.store(Arc::new(c));
                Ok(())
            },
        )
    }
}

/// Accepts TCP connections on `listener` and runs each TLS handshake in its own task (bounded
/// by [`HANDSHAKE_TIMEOUT`]) with the config current at accept time; finished streams come
/// out of the returned stream for tonic. A failed handshake is logged at debug level and
/// counted; only that connection is dropped. At most [`MAX_PENDING_HANDSHAKES`] run at once.
/// Stops accepting when `drain` turns true.
pub fn incoming(
    listener: TcpListener,
    state: Arc<TlsState>,
    metrics: Arc<Metrics>,
    mut drain: watch::Receiver<bool>,
) -> ReceiverStream<io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = mpsc::channel(64);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = drain.wait_for(|d| *d) => return,
                r = listener.accept() => r,
            };
            let (tcp, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // E.g. out of file descriptors: back off briefly, keep the listener.
                    tracing::warn!(error = %e, "gRPC accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                metrics.tls_handshake_failures.inc();
                tracing::debug!(%peer, "too many TLS handshakes in progress: connection closed");
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = TlsAcceptor::from(state.current());
            let tx = tx.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                drop(slot);
                match handshake {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => {
                        metrics.tls_handshake_failures.inc();
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    }
                    Err(_) => {
                        metrics.tls_handshake_failures.inc();
                        tracing::debug!(%peer, "TLS handshake timed out");
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
