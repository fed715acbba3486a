//! Shared helpers of the `service_*` integration tests: start the real server in-process,
//! connect generated clients, make telemetry, and find / start real external programs.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use prewarm_scaler::service::proto::externalscaler::external_scaler_client::ExternalScalerClient;
use prewarm_scaler::service::proto::externalscaler::{GetMetricsRequest, ScaledObjectRef};
use prewarm_scaler::service::proto::prewarm::v1 as pb;
use prewarm_scaler::service::{spawn, RawConfig, ServiceConfig, ServiceHandle};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use tonic::transport::Channel;

/// 2023-11-14T22:13:20Z, a round start time for event-clock tests.
pub const T0: i64 = 1_700_000_000_000;

/// A validated config from TOML with both ports on 127.0.0.1:0.
pub fn config(extra: &str) -> ServiceConfig {
    let text = format!("grpc_addr = \"127.0.0.1:0\"\nadmin_addr = \"127.0.0.1:0\"\n{extra}");
    RawConfig::from_toml(&text)
        .and_then(|r| r.validate())
        .expect("test config is valid")
}

/// Starts the real server.
pub async fn start(extra: &str) -> ServiceHandle {
    spawn(config(extra)).await.expect("server starts")
}

/// A channel to the server's gRPC port.
pub async fn channel(h: &ServiceHandle) -> Channel {
    Channel::from_shared(format!("http://{}", h.grpc_addr))
        .expect("uri")
        .connect()
        .await
        .expect("connects")
}

/// One 10 s sample with a measured concurrency.
pub fn sample(id: &str, start: i64, invocations: f64, concurrency: f64) -> pb::Sample {
    pb::Sample {
        function_id: id.into(),
        bin_start_ms: start,
        bin_width_ms: 10_000,
        invocations,
        concurrency: Some(concurrency),
        mean_duration_ms: None,
        cold_starts: None,
    }
}

/// The KEDA reference for a function given in `scalerMetadata["function"]`.
pub fn keda_ref(function: &str) -> ScaledObjectRef {
    ScaledObjectRef {
        name: "app".into(),
        namespace: "default".into(),
        scaler_metadata: HashMap::from([("function".to_string(), function.to_string())]),
    }
}

/// What KEDA sees on one poll: GetMetrics then IsActive.
pub async fn keda_poll(
    k: &mut ExternalScalerClient<Channel>,
    r: &ScaledObjectRef,
    metric: &str,
) -> (f64, i64, bool) {
    let m = k
        .get_metrics(GetMetricsRequest {
            scaled_object_ref: Some(r.clone()),
            metric_name: metric.into(),
        })
        .await
        .expect("GetMetrics")
        .into_inner();
    assert_eq!(m.metric_values.len(), 1);
    let v = &m.metric_values[0];
    assert_eq!(v.metric_name, metric, "metric name stays the same");
    let active = k.is_active(r.clone()).await.expect("IsActive").into_inner();
    #[allow(deprecated)]
    let int = v.metric_value;
    (v.metric_value_float, int, active.result)
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The path of `name` on PATH (or in /usr/sbin, /usr/bin), if installed.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            "/usr/sbin".into(),
            "/usr/bin".into(),
            "/usr/local/bin".into(),
        ])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A child process killed on drop.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Redis to test against: `PREWARM_TEST_REDIS_URL` or `REDIS_URL` if set (CI), else a private `redis-server` on a free
/// loopback port. `None` (with a loud message) only when neither is available.
pub fn redis() -> Option<(String, Option<Guard>)> {
    for var in ["PREWARM_TEST_REDIS_URL", "REDIS_URL"] {
        if let Ok(url) = std::env::var(var) {
            if !url.is_empty() {
                return Some((url, None));
            }
        }
    }
    let Some(bin) = find_program("redis-server") else {
        eprintln!(
            "\n!!!!!!!! SKIPPED: redis-server is not installed and neither PREWARM_TEST_REDIS_URL \
             nor REDIS_URL is set \
             (apt-get install redis-server) !!!!!!!!\n"
        );
        return None;
    };
    let port = free_port();
    let guard = spawn_redis(&bin, port, &[]);
    Some((format!("redis://127.0.0.1:{port}/0"), Some(guard)))
}

/// Starts `redis-server` (`bin`) on loopback `port` without snapshots, plus `extra` arguments
/// (e.g. an append-only file in a directory), and waits until it answers PING.
pub fn spawn_redis(bin: &std::path::Path, port: u16, extra: &[&str]) -> Guard {
    let child = Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--protected-mode", "yes"])
        .args(if extra.contains(&"--appendonly") {
            &[][..]
        } else {
            &["--appendonly", "no"][..]
        })
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let guard = Guard(child);
    // Readiness: bounded wait until the port answers PING.
    for _ in 0..200 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            if s.write_all(b"PING\r\n").is_ok() {
                let mut buf = [0u8; 7];
                if s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                    return guard;
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("redis-server did not answer PING on port {port}");
}

/// A plain HTTP/1.0 GET on loopback; returns (status, body).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Reads the first stdout line of a `prewarm serve` child started with piped stdout
/// ("prewarm serving grpc=ADDR admin=ADDR") and returns `http://ADDR` of the gRPC port.
pub async fn serving_addr(child: &mut Child) -> String {
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout is piped"));
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        out.read_line(&mut line).expect("reads the serving line");
        line
    })
    .await
    .expect("reader task");
    let grpc = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("grpc="))
        .unwrap_or_else(|| panic!("the serving line names the gRPC address: {line:?}"));
    format!("http://{grpc}")
}

/// Points the AWS SDK's standard chain at a Lambda fake: its static test keys and region,
/// `AWS_ENDPOINT_URL_LAMBDA`, no instance metadata, no profile. (Edition 2021: setting the
/// environment is safe; a test binary that calls this owns its environment.)
pub fn aws_env_for(lambda: &prewarm_scaler::actuate::fakes::lambda::FakeLambda) {
    use prewarm_scaler::actuate::fakes::lambda as fl;
    std::env::set_var("AWS_ACCESS_KEY_ID", fl::ACCESS_KEY_ID);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", fl::SECRET_ACCESS_KEY);
    std::env::set_var("AWS_REGION", fl::REGION);
    std::env::set_var("AWS_ENDPOINT_URL_LAMBDA", lambda.endpoint_url());
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::remove_var("AWS_PROFILE");
}
