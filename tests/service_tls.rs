//! Transport security end to end against real loopback servers, with certificates made at test
//! time (rcgen): CA A signs the server certificate (localhost, 127.0.0.1) and a good client
//! certificate; CA B signs a client certificate the server must refuse. Covers TLS, mutual
//! TLS, bearer tokens (missing / wrong / right, health open, KEDA exemption, token-file
//! reload), certificate reload (new certificate served to new connections, a corrupt
//! replacement keeps the old one) and junk on the TLS port.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use prewarm_scaler::service::proto::externalscaler::external_scaler_client::ExternalScalerClient;
use prewarm_scaler::service::proto::prewarm::v1 as pb;
use prewarm_scaler::service::ServiceHandle;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use service_support::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Request, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(p, key),
    }
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

/// A leaf certificate signed by `ca`; `key` reused when given (to change only the cert).
fn leaf(ca: &Ca, cn: &str, serial: u8, server: bool, key: Option<&KeyPair>) -> (Leaf, KeyPair) {
    let sans: Vec<String> = if server {
        vec!["localhost".into(), "127.0.0.1".into()]
    } else {
        vec![]
    };
    let mut p = CertificateParams::new(sans).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.serial_number = Some(SerialNumber::from_slice(&[serial]));
    p.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let key = match key {
        Some(k) => KeyPair::from_pem(&k.serialize_pem()).unwrap(),
        None => KeyPair::generate().unwrap(),
    };
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    (
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        },
        key,
    )
}

/// Writes `text` to `path` atomically (temp file + rename), as a secret volume update would.
fn put(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct Pki {
    dir: tempfile::TempDir,
    a: Ca,
    server: Leaf,
    server_key: KeyPair,
    client_a: Leaf,
    client_b: Leaf,
}

impl Pki {
    fn new() -> Self {
        let a = ca("prewarm test CA A");
        let b = ca("prewarm test CA B");
        let (server, server_key) = leaf(&a, "prewarm server 1", 1, true, None);
        let (client_a, _) = leaf(&a, "client signed by A", 2, false, None);
        let (client_b, _) = leaf(&b, "client signed by B", 3, false, None);
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki {
            dir,
            a,
            server,
            server_key,
            client_a,
            client_b,
        };
        put(&pki.path("server.pem"), &pki.server.cert_pem);
        put(&pki.path("server.key"), &pki.server.key_pem);
        put(&pki.path("ca.pem"), &pki.a.pem);
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `[tls]` table; `mtls` adds `client_ca`.
    fn tls_toml(&self, mtls: bool) -> String {
        let mut t = format!(
            "[tls]\ncert = {:?}\nkey = {:?}\nreload_interval = \"1s\"\n",
            self.path("server.pem").display().to_string(),
            self.path("server.key").display().to_string(),
        );
        if mtls {
            t += &format!(
                "client_ca = {:?}\n",
                self.path("ca.pem").display().to_string()
            );
        }
        t
    }
}

/// A TLS channel trusting CA A, with an optional client identity.
async fn tls_channel(
    h: &ServiceHandle,
    ca_pem: &str,
    identity: Option<&Leaf>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some(l) = identity {
        tls = tls.identity(Identity::from_pem(&l.cert_pem, &l.key_pem));
    }
    Channel::from_shared(format!("https://{}", h.grpc_addr))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

/// Connects (TLS as given) and asks grpc.health.v1 about the whole server.
async fn health(ch: Result<Channel, tonic::transport::Error>) -> Result<(), String> {
    let ch = ch.map_err(|e| format!("connect: {e:?}"))?;
    HealthClient::new(ch)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| ())
        .map_err(|s| format!("health: {s:?}"))
}

/// Connects with a raw rustls client trusting `ca_pem` and returns the server's leaf
/// certificate (DER) after checking that ALPN chose h2.
async fn peer_cert(h: &ServiceHandle, ca_pem: &str) -> Vec<u8> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(h.grpc_addr).await.unwrap();
    let s = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let conn = s.get_ref().1;
    assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]), "ALPN negotiates h2");
    conn.peer_certificates().unwrap()[0].to_vec()
}

/// The value of a counter line of `/metrics` that contains every one of `parts`.
async fn metric(h: &ServiceHandle, parts: &[&str]) -> f64 {
    let addr = h.admin_addr.to_string();
    let (_, body) = tokio::task::spawn_blocking(move || http_get(&addr, "/metrics"))
        .await
        .unwrap()
        .unwrap();
    body.lines()
        .filter(|l| !l.starts_with('#') && parts.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `cond` until it holds (bounded at 60 s; no assertion on how long it took).
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 60 s");
}

fn bearer(token: &'static str) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |mut r: Request<()>| {
        if !token.is_empty() {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        Ok(r)
    }
}

async fn list_decisions(ch: &Channel, token: &'static str) -> Result<(), Status> {
    pb::decisions_client::DecisionsClient::with_interceptor(ch.clone(), bearer(token))
        .list_decisions(pb::ListDecisionsRequest {})
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_rpcs_with_alpn_h2_and_refuses_plaintext() {
    let pki = Pki::new();
    let h = start(&pki.tls_toml(false)).await;
    health(tls_channel(&h, &pki.a.pem, None).await)
        .await
        .expect("TLS client trusting CA A is served");
    let ch = tls_channel(&h, &pki.a.pem, None).await.unwrap();
    list_decisions(&ch, "").await.expect("no tokens configured");
    assert_eq!(peer_cert(&h, &pki.a.pem).await, pki.server.der);
    // A plaintext HTTP/2 client gets nowhere (and the server keeps going).
    assert!(health(channel_plain(&h).await).await.is_err());
    // A client trusting only CA B refuses the server.
    let b = ca("other CA");
    assert!(health(tls_channel(&h, &b.pem, None).await).await.is_err());
    health(tls_channel(&h, &pki.a.pem, None).await)
        .await
        .expect("still serving");
    h.shutdown().await.unwrap();
}

async fn channel_plain(h: &ServiceHandle) -> Result<Channel, tonic::transport::Error> {
    Channel::from_shared(format!("http://{}", h.grpc_addr))
        .unwrap()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_refuses_no_client_cert_and_a_cert_from_another_ca() {
    let pki = Pki::new();
    let h = start(&pki.tls_toml(true)).await;
    let none = health(tls_channel(&h, &pki.a.pem, None).await).await;
    assert!(none.is_err(), "no client certificate must be refused");
    let wrong = health(tls_channel(&h, &pki.a.pem, Some(&pki.client_b)).await).await;
    assert!(
        wrong.is_err(),
        "a client certificate from CA B must be refused"
    );
    health(tls_channel(&h, &pki.a.pem, Some(&pki.client_a)).await)
        .await
        .expect("the client certificate from CA A is served");
    let ch = tls_channel(&h, &pki.a.pem, Some(&pki.client_a))
        .await
        .unwrap();
    list_decisions(&ch, "").await.unwrap();
    eventually("handshake failures counted", || async {
        metric(&h, &["prewarm_tls_handshake_failures_total"]).await >= 2.0
    })
    .await;
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_missing_and_wrong_are_unauthenticated_health_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    put(&file, "# operators\nalpha-token\n\nbeta-token\n");
    let h = start(&format!(
        "[auth]\ntoken_file = {:?}\nreload_interval = \"1s\"\n",
        file.display().to_string()
    ))
    .await;
    let ch = channel(&h).await;
    let missing = list_decisions(&ch, "").await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated, "{missing:?}");
    let wrong = list_decisions(&ch, "gamma-token").await.unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");
    assert!(
        !wrong.message().contains("gamma"),
        "the token is not echoed"
    );
    list_decisions(&ch, "alpha-token").await.unwrap();
    list_decisions(&ch, "beta-token").await.unwrap();
    // The KEDA service is guarded too (no exemption configured).
    let mut k = ExternalScalerClient::new(ch.clone());
    let st = k.is_active(keda_ref("f")).await.unwrap_err();
    assert_eq!(st.code(), Code::Unauthenticated);
    // Health needs no token.
    health(Ok(ch.clone())).await.expect("health is open");
    assert!(metric(&h, &["prewarm_auth_failures_total", "missing"]).await >= 2.0);
    assert!(metric(&h, &["prewarm_auth_failures_total", "invalid"]).await >= 1.0);

    // Token file reload: beta is revoked, gamma added.
    put(&file, "alpha-token\ngamma-token\n");
    eventually("token file reloaded", || async {
        list_decisions(&ch, "gamma-token").await.is_ok()
    })
    .await;
    assert_eq!(
        list_decisions(&ch, "beta-token").await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // An empty replacement would lock everyone out: rejected, the old tokens stay.
    let errors = metric(&h, &["prewarm_credential_reloads_total", "tokens", "error"]).await;
    put(&file, "# nothing here\n");
    eventually("empty token file rejected", || async {
        metric(&h, &["prewarm_credential_reloads_total", "tokens", "error"]).await > errors
    })
    .await;
    list_decisions(&ch, "gamma-token").await.unwrap();
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keda_exemption_with_mtls_and_tokens_for_other_clients() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    put(&file, "sidecar-token\n");
    let h = start(&format!(
        "{}[auth]\ntoken_file = {:?}\nexempt = [\"externalscaler.ExternalScaler\"]\n",
        pki.tls_toml(true),
        file.display().to_string()
    ))
    .await;
    // KEDA: client certificate, no token.
    let ch = tls_channel(&h, &pki.a.pem, Some(&pki.client_a))
        .await
        .unwrap();
    let mut k = ExternalScalerClient::new(ch.clone());
    assert!(
        !k.is_active(keda_ref("f"))
            .await
            .unwrap()
            .into_inner()
            .result
    );
    // Everything else still needs the token.
    assert_eq!(
        list_decisions(&ch, "").await.unwrap_err().code(),
        Code::Unauthenticated
    );
    list_decisions(&ch, "sidecar-token").await.unwrap();
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_cert_is_served_to_new_connections_and_a_corrupt_one_is_ignored() {
    let pki = Pki::new();
    let h = start(&pki.tls_toml(false)).await;
    assert_eq!(peer_cert(&h, &pki.a.pem).await, pki.server.der);
    let old = tls_channel(&h, &pki.a.pem, None).await.unwrap();

    // Same key, new certificate (serial 9, another CN).
    let (second, _) = leaf(&pki.a, "prewarm server 2", 9, true, Some(&pki.server_key));
    assert_ne!(second.der, pki.server.der);
    put(&pki.path("server.pem"), &second.cert_pem);
    eventually("new certificate served", || async {
        peer_cert(&h, &pki.a.pem).await == second.der
    })
    .await;
    // The connection made before the swap keeps working.
    health(Ok(old)).await.unwrap();

    // A corrupt replacement is rejected; the second certificate stays in use.
    let errors = metric(&h, &["prewarm_credential_reloads_total", "tls", "error"]).await;
    put(
        &pki.path("server.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n",
    );
    eventually("corrupt certificate rejected", || async {
        metric(&h, &["prewarm_credential_reloads_total", "tls", "error"]).await > errors
    })
    .await;
    assert_eq!(peer_cert(&h, &pki.a.pem).await, second.der);
    assert_eq!(
        metric(&h, &["prewarm_credential_reload_failing", "tls"]).await,
        1.0
    );
    health(tls_channel(&h, &pki.a.pem, None).await)
        .await
        .expect("still serving with the previous certificate");
    // A key that does not fit the certificate is rejected as well.
    let (third, _) = leaf(&pki.a, "prewarm server 3", 10, true, None);
    put(&pki.path("server.pem"), &third.cert_pem);
    let errors = metric(&h, &["prewarm_credential_reloads_total", "tls", "error"]).await;
    eventually("mismatched key rejected", || async {
        metric(&h, &["prewarm_credential_reloads_total", "tls", "error"]).await > errors
    })
    .await;
    assert_eq!(peer_cert(&h, &pki.a.pem).await, second.der);
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_on_the_tls_port_drops_only_that_connection() {
    let pki = Pki::new();
    let h = start(&pki.tls_toml(true)).await;
    for junk in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..],
        &[0x16, 0x03, 0x01, 0xff, 0xff, 0, 0, 0][..],
        &[0u8; 4096][..],
    ] {
        let mut s = tokio::net::TcpStream::connect(h.grpc_addr).await.unwrap();
        let _ = s.write_all(junk).await;
        let mut buf = Vec::new();
        // The server closes the connection (possibly after a TLS alert).
        let _ = s.read_to_end(&mut buf).await;
    }
    // A connection that connects and says nothing, held open, does not block others.
    let _idle = tokio::net::TcpStream::connect(h.grpc_addr).await.unwrap();
    health(tls_channel(&h, &pki.a.pem, Some(&pki.client_a)).await)
        .await
        .expect("the listener survived");
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_credential_files_fail_the_start_naming_the_file() {
    let pki = Pki::new();
    put(&pki.path("bad.pem"), "hello\n");
    let base = "grpc_addr = \"127.0.0.1:0\"\nadmin_addr = \"127.0.0.1:0\"\n";
    let start_err = |toml: String| async move {
        let cfg = prewarm_scaler::service::RawConfig::from_toml(&format!("{base}{toml}"))
            .unwrap()
            .validate()
            .unwrap();
        prewarm_scaler::service::spawn(cfg)
            .await
            .unwrap_err()
            .to_string()
    };
    let s = |p: PathBuf| format!("{:?}", p.display().to_string());
    let e = start_err(format!(
        "[tls]\ncert = {}\nkey = {}\n",
        s(pki.path("bad.pem")),
        s(pki.path("server.key"))
    ))
    .await;
    assert!(e.contains("bad.pem") && e.contains("CERTIFICATE"), "{e}");
    let e = start_err(format!(
        "[tls]\ncert = {}\nkey = {}\n",
        s(pki.path("server.pem")),
        s(pki.path("missing.key"))
    ))
    .await;
    assert!(
        e.contains("missing.key") && e.contains("cannot read"),
        "{e}"
    );
    let e = start_err(format!(
        "[tls]\ncert = {}\nkey = {}\nclient_ca = {}\n",
        s(pki.path("server.pem")),
        s(pki.path("server.key")),
        s(pki.path("bad.pem"))
    ))
    .await;
    assert!(e.contains("bad.pem"), "{e}");
    let e = start_err(format!("[auth]\ntoken_file = {}\n", s(pki.path("nope")))).await;
    assert!(e.contains("nope"), "{e}");
}

/// Runs the `prewarm` binary; returns (exit code, stdout, stderr).
async fn prewarm(args: Vec<String>, token_env: Option<&'static str>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_prewarm"));
        c.args(&args).env_remove("PREWARM_TOKEN");
        if let Some(t) = token_env {
            c.env("PREWARM_TOKEN", t);
        }
        let out = c.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_clients_work_against_a_secured_server() {
    let pki = Pki::new();
    put(&pki.path("client.pem"), &pki.client_a.cert_pem);
    put(&pki.path("client.key"), &pki.client_a.key_pem);
    let tokens = pki.path("tokens");
    put(&tokens, "cli-token\n");
    let h = start(&format!(
        "clock = \"event\"\n{}[auth]\ntoken_file = {:?}\n",
        pki.tls_toml(true),
        tokens.display().to_string()
    ))
    .await;
    let p = |n: &str| pki.path(n).display().to_string();
    let tls_args = [
        "--addr".to_string(),
        format!("http://localhost:{}", h.grpc_addr.port()),
        "--ca-cert".into(),
        p("ca.pem"),
        "--client-cert".into(),
        p("client.pem"),
        "--client-key".into(),
        p("client.key"),
    ];
    let with = |head: &[&str], extra: &[&str]| {
        let mut v: Vec<String> = head.iter().map(|s| s.to_string()).collect();
        v.extend(tls_args.iter().cloned());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let (code, out, err) = prewarm(
        with(&["decisions", "--json"], &["--token", "cli-token"]),
        None,
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, _, err) = prewarm(with(&["decisions"], &[]), Some("cli-token")).await;
    assert_eq!(code, 0, "PREWARM_TOKEN is used: {err}");
    let (code, _, err) = prewarm(with(&["decisions"], &[]), None).await;
    assert_ne!(code, 0);
    assert!(err.contains("missing bearer token"), "{err}");

    let trace = pki.path("series.csv");
    std::fs::write(
        &trace,
        format!("function,bin_start_ms,bin_width_ms,invocations\nf,{T0},10000,3\n"),
    )
    .unwrap();
    let (code, out, err) = prewarm(
        with(&["replay", "--trace", &trace.display().to_string()], &[]),
        Some("cli-token"),
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("1 accepted"), "{out}");
    h.shutdown().await.unwrap();

    // `prewarm serve` with an unreadable key: exit 64 naming the file.
    let (code, _, err) = prewarm(
        vec![
            "serve".into(),
            "--grpc-addr".into(),
            "127.0.0.1:0".into(),
            "--admin-addr".into(),
            "127.0.0.1:0".into(),
            "--tls-cert".into(),
            p("server.pem"),
            "--tls-key".into(),
            p("absent.key"),
        ],
        None,
    )
    .await;
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("absent.key"), "{err}");
    let (code, _, err) = prewarm(
        vec!["serve".into(), "--tls-key".into(), p("server.key")],
        None,
    )
    .await;
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("tls.cert"), "{err}");
}
