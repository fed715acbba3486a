//! The `prewarm serve` binary: bad configuration exits 64 naming the key before any port is
//! bound; flags and `PREWARM_*` variables override the file; SIGTERM drains and exits 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use service_support::free_port;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn serve() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_prewarm"));
    c.arg("serve");
    c.env_remove("PREWARM_CONFIG")
        .env_remove("PREWARM_GRPC_ADDR");
    c
}

#[test]
fn bad_config_exits_64_naming_the_key_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    // Hold the gRPC port: if the server tried to bind before validating, it would fail with a
    // bind error (exit 1) instead of 64.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let cases = [
        (
            "[[function]]\nid = \"ok\"\n[[function]]\nid = \"f\"\npolicy = \"lru\"\n",
            "function[1].policy",
        ),
        ("clock = \"sundial\"\n", "clock"),
        ("decision_interval = \"10 parsecs\"\n", "decision_interval"),
        ("grpc_adress = \"127.0.0.1:1\"\n", "grpc_adress"),
        (
            "[[function]]\nid = \"f\"\nmin = 5\nmax = 2\n",
            "function[0].max",
        ),
        (
            "[[function]]\nid = \"f\"\ntarget = { kind = \"openwhisk\" }\n",
            "function[0].target.kind",
        ),
        (
            "[[function]]\nid = \"f\"\ntarget = { kind = \"lambda\", qualifier = \"live\" }\n",
            "function[0].target.function",
        ),
        (
            "[[function]]\nid = \"f\"\ntarget = { kind = \"lambda\", function = \"f\", qualifier = \"$LATEST\" }\n",
            "function[0].target.qualifier",
        ),
    ];
    for (text, key) in cases {
        let path = dir.path().join("prewarm.toml");
        std::fs::write(&path, format!("grpc_addr = \"127.0.0.1:{port}\"\n{text}")).unwrap();
        let out = serve().arg("--config").arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{text}: {err}");
        assert!(err.contains(&format!("`{key}`")), "{text}: {err}");
    }
    // Flags and environment are validated the same way.
    let out = serve().args(["--clock", "lunar"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = serve()
        .env("PREWARM_MAX_FUNCTIONS", "many")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PREWARM_MAX_FUNCTIONS"));
    drop(held);
}

#[test]
fn sigterm_drains_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prewarm.toml");
    // The file says one port; the environment overrides it with port 0 for grpc, and the
    // flag sets admin.
    std::fs::write(&path, "grpc_addr = \"127.0.0.1:1\"\nclock = \"event\"\n").unwrap();
    let admin = free_port();
    let mut child = serve()
        .arg("--config")
        .arg(&path)
        .args([
            "--admin-addr",
            &format!("127.0.0.1:{admin}"),
            "--log-format",
            "json",
        ])
        .env("PREWARM_GRPC_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("prewarm serving grpc=127.0.0.1:"),
        "{line}"
    );
    assert!(line.contains(&format!("admin=127.0.0.1:{admin}")), "{line}");
    let (status, _) = service_support::http_get(&format!("127.0.0.1:{admin}"), "/ready").unwrap();
    assert_eq!(status, 200);
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(
        logs.contains("\"message\":\"shutting down: NOT_SERVING, draining\""),
        "{logs}"
    );
}
