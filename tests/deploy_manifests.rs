//! The deploy artefacts agree with each other and with the config: every YAML document under
//! deploy/ parses; the ConfigMap's prewarm.toml is a valid config whose ports are the
//! Deployment's container ports and the Service's targets; KEDA scalers point at that Service
//! and port; the RBAC grants what the Knative actuator needs (and no Service writes) to the
//! Deployment's ServiceAccount; every Knative target in the config names an example Service.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use prewarm_scaler::actuate::TargetSpec;
use prewarm_scaler::service::RawConfig;
use serde::Deserialize;
use serde_yaml::Value;
use std::path::Path;

fn docs() -> Vec<(String, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for d in serde_yaml::Deserializer::from_str(&text) {
            let v = Value::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            if !v.is_null() {
                out.push((f.display().to_string(), v));
            }
        }
    }
    out
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for k in path {
        cur = &cur[*k];
    }
    cur.as_str().unwrap_or("")
}

fn find<'a>(all: &'a [(String, Value)], kind: &str) -> Vec<&'a Value> {
    all.iter()
        .filter(|(_, v)| s(v, &["kind"]) == kind)
        .map(|(_, v)| v)
        .collect()
}

fn port_of(addr: &str) -> u64 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn manifests_agree_with_each_other_and_the_config() {
    let all = docs();
    assert!(all.len() >= 8, "{} documents", all.len());
    for (file, v) in &all {
        assert!(!s(v, &["apiVersion"]).is_empty(), "{file}: apiVersion");
        assert!(
            !s(v, &["metadata", "name"]).is_empty(),
            "{file}: metadata.name"
        );
    }

    // The config in the ConfigMap is valid.
    let cm = find(&all, "ConfigMap")
        .into_iter()
        .find(|c| s(c, &["metadata", "name"]) == "prewarm-config")
        .expect("ConfigMap prewarm-config");
    let cfg = RawConfig::from_toml(s(cm, &["data", "prewarm.toml"]))
        .and_then(|r| r.validate())
        .expect("the ConfigMap's prewarm.toml validates");
    let (grpc, admin) = (cfg.grpc_addr.port() as u64, cfg.admin_addr.port() as u64);
    assert!(
        cfg.grpc_addr.ip().is_unspecified(),
        "listen on all interfaces in a pod"
    );

    // The Deployment mounts it and exposes the config's ports under the names the Service uses.
    let dep = find(&all, "Deployment")[0];
    let ns = s(dep, &["metadata", "namespace"]);
    let pod = &dep["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let ports: Vec<(String, u64)> = c["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| {
            (
                s(p, &["name"]).to_string(),
                p["containerPort"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(ports.contains(&("grpc".into(), grpc)), "{ports:?}");
    assert!(ports.contains(&("admin".into(), admin)), "{ports:?}");
    let args: Vec<&str> = c["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let conf_path = args[args.iter().position(|a| *a == "--config").unwrap() + 1];
    let mount = c["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert_eq!(conf_path, format!("{mount}/prewarm.toml"));
    assert_eq!(
        s(&pod["volumes"][0], &["configMap", "name"]),
        "prewarm-config"
    );
    assert_eq!(s(c, &["readinessProbe", "httpGet", "path"]), "/ready");
    assert_eq!(s(c, &["livenessProbe", "httpGet", "port"]), "admin");
    let labels = &dep["spec"]["selector"]["matchLabels"];
    assert_eq!(&dep["spec"]["template"]["metadata"]["labels"], labels);

    // The Service selects the pods and forwards to the named ports.
    let svc = find(&all, "Service")
        .into_iter()
        .find(|v| s(v, &["apiVersion"]) == "v1")
        .expect("the prewarm Service");
    assert_eq!(&svc["spec"]["selector"], labels);
    let svc_name = s(svc, &["metadata", "name"]);
    let mut svc_grpc = 0;
    for p in svc["spec"]["ports"].as_sequence().unwrap() {
        let target = s(p, &["targetPort"]);
        assert!(
            ports.iter().any(|(n, _)| n == target),
            "targetPort {target}"
        );
        if target == "grpc" {
            svc_grpc = p["port"].as_u64().unwrap();
        }
    }
    assert_eq!(svc_grpc, grpc);

    // KEDA scalers point at that Service and port.
    let scaled = find(&all, "ScaledObject");
    assert!(!scaled.is_empty());
    for so in scaled {
        for t in so["spec"]["triggers"].as_sequence().unwrap() {
            if s(t, &["type"]) == "external" || s(t, &["type"]) == "external-push" {
                let addr = s(t, &["metadata", "scalerAddress"]);
                assert!(
                    addr.starts_with(&format!("{svc_name}.{ns}.svc")),
                    "scalerAddress {addr}"
                );
                assert_eq!(port_of(addr), grpc, "scalerAddress {addr}");
            }
        }
    }

    // RBAC: the Deployment's account gets what the actuator calls, and no Service writes.
    let sa = s(pod, &["serviceAccountName"]);
    let binding = find(&all, "ClusterRoleBinding")[0];
    let subject = &binding["subjects"][0];
    assert_eq!(
        (s(subject, &["name"]), s(subject, &["namespace"])),
        (sa, ns)
    );
    let role = find(&all, "ClusterRole")
        .into_iter()
        .find(|r| s(r, &["metadata", "name"]) == s(binding, &["roleRef", "name"]))
        .expect("the bound ClusterRole");
    let allows = |res: &str, verb: &str| {
        role["rules"].as_sequence().unwrap().iter().any(|r| {
            let has = |k: &str, x: &str| {
                r[k].as_sequence()
                    .unwrap()
                    .iter()
                    .any(|v| v.as_str() == Some(x))
            };
            has("resources", res) && has("verbs", verb)
        })
    };
    for (res, verb) in [
        ("services", "get"),
        ("revisions", "get"),
        ("revisions", "patch"),
        ("podautoscalers", "get"),
        ("podautoscalers", "patch"),
    ] {
        assert!(allows(res, verb), "RBAC lacks {verb} {res}");
    }
    for verb in ["patch", "update", "create", "delete"] {
        assert!(!allows("services", verb), "RBAC must not {verb} services");
    }

    // Every Knative target in the config names an example Knative Service.
    let kn_services: Vec<(String, String)> = find(&all, "Service")
        .into_iter()
        .filter(|v| s(v, &["apiVersion"]).starts_with("serving.knative.dev"))
        .map(|v| {
            (
                s(v, &["metadata", "namespace"]).to_string(),
                s(v, &["metadata", "name"]).to_string(),
            )
        })
        .collect();
    let mut knative_targets = 0;
    for f in &cfg.functions {
        if let TargetSpec::Knative(k) = &f.target {
            knative_targets += 1;
            let name = k.service.clone().unwrap();
            assert!(
                kn_services.contains(&(k.namespace.clone(), name.clone())),
                "knative target {}/{name} has no example Service in deploy/knative",
                k.namespace
            );
        }
    }
    assert!(knative_targets >= 1);
}
