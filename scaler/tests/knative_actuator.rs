#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Knative actuator against the loopback Kubernetes API fake, through the real kube-rs
//! client over a socket; plus the fake's own API-server checks, driven by a raw HTTP client.
//!
//! Run with `cargo test -p prewarm-scaler --features fakes --test knative_actuator`.

use prewarm_scaler::actuate::fakes::kube::{FakeKube, KnativeKind, LoggedRequest};
use prewarm_scaler::actuate::knative::{KnativePlatform, MIN_SCALE_ANNOTATION};
use prewarm_scaler::actuate::{ActuateError, KnativeMode, KnativeTarget, Observed, Platform};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NS: &str = "default";

fn service_target(name: &str, mode: KnativeMode) -> KnativeTarget {
    KnativeTarget {
        namespace: NS.into(),
        service: Some(name.into()),
        revision: None,
        mode,
    }
}

fn revision_target(name: &str, mode: KnativeMode) -> KnativeTarget {
    KnativeTarget {
        namespace: NS.into(),
        service: None,
        revision: Some(name.into()),
        mode,
    }
}

/// A fake with Service `hello` → Revision `hello-00001` (and its PodAutoscaler).
async fn hello() -> FakeKube {
    let fake = FakeKube::start().await.unwrap();
    fake.put_service(NS, "hello", Some("hello-00001"));
    fake.put_revision(NS, "hello-00001", "hello");
    fake.put_podautoscaler(NS, "hello-00001");
    fake
}

fn platform(fake: &FakeKube, target: KnativeTarget) -> KnativePlatform {
    KnativePlatform::new(fake.client(), target)
}

fn min_scale(fake: &FakeKube, kind: KnativeKind, name: &str) -> Option<String> {
    fake.annotation(kind, NS, name, MIN_SCALE_ANNOTATION)
}

fn service_writes(log: &[LoggedRequest]) -> Vec<LoggedRequest> {
    log.iter()
        .filter(|r| r.is_write() && r.path.contains("/services"))
        .cloned()
        .collect()
}

fn patches(log: &[LoggedRequest]) -> Vec<LoggedRequest> {
    log.iter()
        .filter(|r| r.method == "PATCH")
        .cloned()
        .collect()
}

async fn observe_apply(p: &KnativePlatform, desired: u32) -> Observed {
    let o = p.observe().await.unwrap();
    p.apply(desired, &o).await.unwrap();
    o
}

#[tokio::test]
async fn service_resolves_to_revision_and_min_scale_goes_0_3_1() {
    let fake = hello().await;
    let p = platform(&fake, service_target("hello", KnativeMode::Revision));
    assert_eq!(p.describe(), "knative service default/hello");

    let o = p.observe().await.unwrap();
    assert_eq!(
        o,
        Observed {
            requested: 0,
            ready: 0,
            in_progress: false,
            failed: false,
            detail: "revision hello-00001 (service hello)".into(),
        }
    );
    let rv_before = fake
        .resource_version(KnativeKind::Revision, NS, "hello-00001")
        .unwrap();
    p.apply(3, &o).await.unwrap();
    assert_eq!(
        min_scale(&fake, KnativeKind::Revision, "hello-00001").as_deref(),
        Some("3")
    );
    let rv_after = fake
        .resource_version(KnativeKind::Revision, NS, "hello-00001")
        .unwrap();
    assert!(rv_after.parse::<u64>().unwrap() > rv_before.parse::<u64>().unwrap());

    let o = observe_apply(&p, 1).await;
    assert_eq!((o.requested, o.ready), (3, 3));
    assert_eq!(
        min_scale(&fake, KnativeKind::Revision, "hello-00001").as_deref(),
        Some("1")
    );
    let o = p.observe().await.unwrap();
    assert_eq!(o.requested, 1);

    // The patches: merge patches on the revision carrying only the annotation and the
    // resourceVersion just read; other annotations untouched.
    let log = fake.requests();
    let ps = patches(&log);
    assert_eq!(ps.len(), 2, "{ps:#?}");
    for p in &ps {
        assert_eq!(
            p.path,
            "/apis/serving.knative.dev/v1/namespaces/default/revisions/hello-00001"
        );
        assert_eq!(
            p.content_type.as_deref(),
            Some("application/merge-patch+json")
        );
        assert_eq!(p.status, 200);
    }
    let first: Value = serde_json::from_str(&ps[0].body).unwrap();
    assert_eq!(
        first,
        json!({"metadata": {
            "annotations": {MIN_SCALE_ANNOTATION: "3"},
            "resourceVersion": rv_before,
        }})
    );
    assert_eq!(
        fake.annotation(
            KnativeKind::Revision,
            NS,
            "hello-00001",
            "serving.knative.dev/creator"
        )
        .as_deref(),
        Some("admin")
    );
    assert!(service_writes(&log).is_empty());
    // The service was read on every observe (a new revision may have become ready).
    let service_gets = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/services/hello"))
        .count();
    assert_eq!(service_gets, 3);
}

#[tokio::test]
async fn apply_skips_the_call_when_already_at_desired() {
    let fake = hello().await;
    let p = platform(&fake, service_target("hello", KnativeMode::Revision));
    // Missing annotation reads as 0: applying 0 writes nothing.
    observe_apply(&p, 0).await;
    observe_apply(&p, 2).await;
    observe_apply(&p, 2).await;
    // A second apply after one observe uses the resourceVersion of its own write.
    let o = p.observe().await.unwrap();
    p.apply(4, &o).await.unwrap();
    p.apply(5, &o).await.unwrap();
    p.apply(5, &o).await.unwrap();
    let ps = patches(&fake.requests());
    assert_eq!(ps.len(), 3, "{ps:#?}");
    assert_eq!(
        min_scale(&fake, KnativeKind::Revision, "hello-00001").as_deref(),
        Some("5")
    );
}

#[tokio::test]
async fn a_new_ready_revision_is_followed() {
    let fake = hello().await;
    let p = platform(&fake, service_target("hello", KnativeMode::Revision));
    observe_apply(&p, 3).await;
    fake.put_revision(NS, "hello-00002", "hello");
    assert!(fake.set_latest_ready_revision(NS, "hello", "hello-00002"));
    let o = observe_apply(&p, 3).await;
    assert_eq!(o.requested, 0);
    assert_eq!(o.detail, "revision hello-00002 (service hello)");
    assert_eq!(
        min_scale(&fake, KnativeKind::Revision, "hello-00002").as_deref(),
        Some("3")
    );
    assert!(service_writes(&fake.requests()).is_empty());
}

#[tokio::test]
async fn podautoscaler_mode_patches_the_pa_and_not_the_revision() {
    let fake = hello().await;
    let p = platform(&fake, service_target("hello", KnativeMode::Podautoscaler));
    let o = observe_apply(&p, 2).await;
    assert_eq!(o.detail, "podautoscaler hello-00001 (service hello)");
    assert_eq!(
        min_scale(&fake, KnativeKind::PodAutoscaler, "hello-00001").as_deref(),
        Some("2")
    );
    assert_eq!(min_scale(&fake, KnativeKind::Revision, "hello-00001"), None);
    let o = p.observe().await.unwrap();
    assert_eq!(o.requested, 2);

    let log = fake.requests();
    let ps = patches(&log);
    assert_eq!(ps.len(), 1);
    assert_eq!(
        ps[0].path,
        "/apis/autoscaling.internal.knative.dev/v1alpha1/namespaces/default/podautoscalers/hello-00001"
    );
    assert!(log
        .iter()
        .all(|r| !r.is_write() || r.path.contains("/podautoscalers/")));
    assert!(service_writes(&log).is_empty());

    // A revision target in podautoscaler mode reads the PA of the same name.
    let p = platform(
        &fake,
        revision_target("hello-00001", KnativeMode::Podautoscaler),
    );
    assert_eq!(p.describe(), "knative revision default/hello-00001");
    let o = p.observe().await.unwrap();
    assert_eq!(
        (o.requested, o.detail.as_str()),
        (2, "podautoscaler hello-00001")
    );
}

#[tokio::test]
async fn revision_target_is_used_as_is() {
    let fake = hello().await;
    fake.put_revision(NS, "pinned-00007", "pinned");
    let p = platform(
        &fake,
        revision_target("pinned-00007", KnativeMode::Revision),
    );
    let o = observe_apply(&p, 6).await;
    assert_eq!(o.detail, "revision pinned-00007");
    assert_eq!(
        min_scale(&fake, KnativeKind::Revision, "pinned-00007").as_deref(),
        Some("6")
    );
    assert!(fake
        .requests()
        .iter()
        .all(|r| !r.path.contains("/services")));
}

#[tokio::test]
async fn the_service_is_never_written() {
    let fake = hello().await;
    for mode in [KnativeMode::Revision, KnativeMode::Podautoscaler] {
        let p = platform(&fake, service_target("hello", mode));
        for desired in [0, 5, 1, 0, 10] {
            let o = p.observe().await.unwrap();
            p.apply(desired, &o).await.unwrap();
        }
        // Conflicts and throttling on the way do not change that.
        let o = p.observe().await.unwrap();
        fake.bump_resource_version(KnativeKind::Revision, NS, "hello-00001");
        fake.bump_resource_version(KnativeKind::PodAutoscaler, NS, "hello-00001");
        let _ = p.apply(7, &o).await;
        fake.throttle_next(1, 1);
        let _ = p.observe().await;
        observe_apply(&p, 7).await;
    }
    let log = fake.requests();
    assert!(log.len() > 20);
    assert!(
        service_writes(&log).is_empty(),
        "{:#?}",
        service_writes(&log)
    );
    assert!(log
        .iter()
        .filter(|r| r.path.contains("/services"))
        .all(|r| r.method == "GET"));
}

#[tokio::test]
async fn a_conflict_between_observe_and_apply_surfaces_and_a_reobserve_fixes_it() {
    let fake = hello().await;
    let p = platform(&fake, service_target("hello", KnativeMode::Revision));
    let o = p.observe().await.unwrap();
    // Someone else writes the revision in between.
    assert!(fake.set_annotation(
        KnativeKind::Revision,
        NS,
        "hello-00001",
        "example.com/other",
        Some("x"),
    ));
    let err = p.apply(4, &o).await.unwrap_err();
    assert!(
        matches!(&err, ActuateError::Conflict(m) if m.contains("hello-00001") && m.contains("modified")),
        "{err:?}"
    );
    assert_eq!(min_scale(&fake, KnativeKind::Revision, "hello-00001"), None);
    assert_eq!(patches(&fake.requests()).last().unwrap().status, 409);

    let o = p.observe().await.unwrap();
    p.apply(4, &o).await.unwrap();
    assert_eq!(
        min_scale(&fake, KnativeKind::Revision, "hello-00001").as_deref(),
        Some("4")
    );
    // The other writer's annotation survived.
    assert_eq!(
        fake.annotation(
            KnativeKind::Revision,
            NS,
            "hello-00001",
            "example.com/other"
        )
        .as_deref(),
        Some("x")
    );

    // A bare resourceVersion bump (e.g. a status-only controller write) conflicts too.
    let o = p.observe().await.unwrap();
    assert!(fake.bump_resource_version(KnativeKind::Revision, NS, "hello-00001"));
    assert!(matches!(
        p.apply(5, &o).await,
        Err(ActuateError::Conflict(_))
    ));
    // Apply after a failed apply re-reads by itself.
    p.apply(5, &o).await.unwrap();
    assert_eq!(
        min_scale(&fake, KnativeKind::Revision, "hello-00001").as_deref(),
        Some("5")
    );
}

#[tokio::test]
async fn throttling_maps_to_throttled_with_retry_after() {
    let fake = hello().await;
    let p = platform(&fake, service_target("hello", KnativeMode::Revision));
    fake.throttle_next(1, 7);
    let err = p.observe().await.unwrap_err();
    match err {
        ActuateError::Throttled {
            message,
            retry_after_ms,
        } => {
            assert_eq!(retry_after_ms, Some(7000));
            assert!(message.contains("hello"), "{message}");
        }
        other => panic!("expected Throttled, got {other:?}"),
    }
    // The client did not retry by itself: exactly one request went out.
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(fake.requests()[0].status, 429);

    // Throttled on the patch itself.
    let o = p.observe().await.unwrap();
    fake.throttle_next(1, 2);
    assert!(matches!(
        p.apply(3, &o).await,
        Err(ActuateError::Throttled {
            retry_after_ms: Some(2000),
            ..
        })
    ));
    observe_apply(&p, 3).await;
    assert_eq!(
        min_scale(&fake, KnativeKind::Revision, "hello-00001").as_deref(),
        Some("3")
    );
}

#[tokio::test]
async fn server_and_connection_errors_are_transient() {
    let fake = hello().await;
    let p = platform(&fake, service_target("hello", KnativeMode::Revision));
    for code in [500, 503, 504] {
        fake.fail_next(1, code);
        let err = p.observe().await.unwrap_err();
        assert!(matches!(err, ActuateError::Transient(_)), "{code}: {err:?}");
    }
    let o = p.observe().await.unwrap();
    fake.fail_next(1, 500);
    assert!(matches!(
        p.apply(2, &o).await,
        Err(ActuateError::Transient(_))
    ));
    // Nothing listening any more: a connection error.
    drop(fake);
    tokio::task::yield_now().await;
    let err = p.observe().await.unwrap_err();
    assert!(matches!(err, ActuateError::Transient(_)), "{err:?}");
}

#[tokio::test]
async fn missing_objects_are_rejected_with_their_names() {
    let fake = hello().await;
    let err = platform(&fake, service_target("nope", KnativeMode::Revision))
        .observe()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ActuateError::Rejected(m) if m.contains("service default/nope") && m.contains("not found")),
        "{err:?}"
    );

    let err = platform(&fake, revision_target("ghost-00001", KnativeMode::Revision))
        .observe()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ActuateError::Rejected(m) if m.contains("revision default/ghost-00001")),
        "{err:?}"
    );

    // Service pointing at a revision that is gone.
    fake.put_service(NS, "dangling", Some("dangling-00001"));
    let err = platform(&fake, service_target("dangling", KnativeMode::Revision))
        .observe()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ActuateError::Rejected(m) if m.contains("default/dangling-00001")),
        "{err:?}"
    );

    // Podautoscaler mode on a revision without a PA.
    fake.put_revision(NS, "nopa-00001", "nopa");
    let err = platform(
        &fake,
        revision_target("nopa-00001", KnativeMode::Podautoscaler),
    )
    .observe()
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ActuateError::Rejected(m) if m.contains("podautoscaler default/nopa-00001")),
        "{err:?}"
    );

    // Service without a ready revision.
    fake.put_service(NS, "fresh", None);
    let err = platform(&fake, service_target("fresh", KnativeMode::Revision))
        .observe()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ActuateError::Rejected(m) if m.contains("default/fresh") && m.contains("no ready revision yet")),
        "{err:?}"
    );

    // Other namespace: not found either.
    let mut t = service_target("hello", KnativeMode::Revision);
    t.namespace = "elsewhere".into();
    assert!(matches!(
        platform(&fake, t).observe().await,
        Err(ActuateError::Rejected(_))
    ));
    assert!(patches(&fake.requests()).is_empty());
}

#[tokio::test]
async fn an_unparseable_annotation_reads_as_zero_and_is_reported() {
    let fake = hello().await;
    fake.set_annotation(
        KnativeKind::Revision,
        NS,
        "hello-00001",
        MIN_SCALE_ANNOTATION,
        Some("lots"),
    );
    let p = platform(&fake, service_target("hello", KnativeMode::Revision));
    let o = p.observe().await.unwrap();
    assert_eq!(o.requested, 0);
    assert!(
        o.detail.starts_with("revision hello-00001 (service hello)")
            && o.detail.contains("\"lots\""),
        "{}",
        o.detail
    );
    // Applying 0 fixes it (it is not "already 0").
    p.apply(0, &o).await.unwrap();
    assert_eq!(
        min_scale(&fake, KnativeKind::Revision, "hello-00001").as_deref(),
        Some("0")
    );
    let o = p.observe().await.unwrap();
    assert_eq!(
        (o.requested, o.detail.as_str()),
        (0, "revision hello-00001 (service hello)")
    );
}

/// kube-rs' own hyper stack (what `from_env` builds) builds a rustls config even for http; with
/// both rustls providers compiled in (kube `ring`, aws-smithy `aws-lc-rs`) and none installed it
/// panics. Run with `--include-ignored` once kube's feature is `aws-lc-rs` (see the report).
#[tokio::test]
async fn from_env_reads_kubeconfig_and_leaves_retries_to_the_caller() {
    let fake = hello().await;
    let dir = std::env::temp_dir().join(format!("prewarm-kubeconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    \
             namespace: default\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\n",
            fake.base_url()
        ),
    )
    .unwrap();
    // Only this test touches KUBECONFIG.
    std::env::set_var("KUBECONFIG", &path);
    let p = KnativePlatform::from_env(service_target("hello", KnativeMode::Revision))
        .await
        .unwrap();
    observe_apply(&p, 2).await;
    assert_eq!(
        min_scale(&fake, KnativeKind::Revision, "hello-00001").as_deref(),
        Some("2")
    );
    fake.clear_requests();
    fake.throttle_next(3, 1);
    let started = std::time::Instant::now();
    assert!(matches!(
        p.observe().await,
        Err(ActuateError::Throttled { .. })
    ));
    assert_eq!(
        fake.requests().len(),
        1,
        "kube-rs must not retry the 429 itself"
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(900));
    std::fs::remove_dir_all(&dir).ok();
}

/// The same flow through kube-rs' default client stack (hyper, base-URI layer, timeouts).
#[tokio::test]
async fn kube_default_stack_reaches_the_fake() {
    let fake = hello().await;
    let client = kube::Client::try_from(fake.config()).unwrap();
    let p = KnativePlatform::new(client, service_target("hello", KnativeMode::Revision));
    observe_apply(&p, 3).await;
    let o = p.observe().await.unwrap();
    fake.bump_resource_version(KnativeKind::Revision, NS, "hello-00001");
    assert!(matches!(
        p.apply(1, &o).await,
        Err(ActuateError::Conflict(_))
    ));
    fake.throttle_next(1, 4);
    assert!(matches!(
        p.observe().await,
        Err(ActuateError::Throttled {
            retry_after_ms: Some(4000),
            ..
        })
    ));
    assert_eq!(
        min_scale(&fake, KnativeKind::Revision, "hello-00001").as_deref(),
        Some("3")
    );
}

// ---------------------------------------------------------------------------------------------
// The fake itself, with a raw HTTP/1.1 client (no kube-rs in the way).
// ---------------------------------------------------------------------------------------------

struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

async fn raw(
    fake: &FakeKube,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> RawResponse {
    let addr = fake.base_url().trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(ct) = content_type {
        req.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    RawResponse {
        status,
        headers,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

const REV_PATH: &str = "/apis/serving.knative.dev/v1/namespaces/default/revisions/hello-00001";
const MERGE: &str = "application/merge-patch+json";

fn assert_status(r: &RawResponse, code: u16, reason: &str) {
    assert_eq!(r.status, code, "{}", r.body);
    assert_eq!(r.body["kind"], json!("Status"));
    assert_eq!(r.body["apiVersion"], json!("v1"));
    assert_eq!(r.body["status"], json!("Failure"));
    assert_eq!(r.body["code"], json!(code));
    assert_eq!(r.body["reason"], json!(reason), "{}", r.body);
}

#[tokio::test]
async fn fake_serves_full_objects() {
    let fake = hello().await;
    let r = raw(
        &fake,
        "GET",
        "/apis/serving.knative.dev/v1/namespaces/default/services/hello",
        None,
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["apiVersion"], json!("serving.knative.dev/v1"));
    assert_eq!(r.body["kind"], json!("Service"));
    assert_eq!(r.body["metadata"]["name"], json!("hello"));
    assert_eq!(r.body["metadata"]["namespace"], json!("default"));
    assert!(r.body["metadata"]["uid"].is_string());
    assert!(r.body["metadata"]["resourceVersion"].is_string());
    assert!(r.body["metadata"]["annotations"].is_object());
    assert_eq!(
        r.body["status"]["latestReadyRevisionName"],
        json!("hello-00001")
    );
    let r = raw(&fake, "GET", REV_PATH, None, "").await;
    assert_eq!(r.body["kind"], json!("Revision"));
    let r = raw(
        &fake,
        "GET",
        "/apis/autoscaling.internal.knative.dev/v1alpha1/namespaces/default/podautoscalers/hello-00001",
        None,
        "",
    )
    .await;
    assert_eq!(r.body["kind"], json!("PodAutoscaler"));
    assert_eq!(
        r.body["apiVersion"],
        json!("autoscaling.internal.knative.dev/v1alpha1")
    );
    let r = raw(
        &fake,
        "GET",
        "/apis/serving.knative.dev/v1/namespaces/default/revisions",
        None,
        "",
    )
    .await;
    assert_eq!(r.body["kind"], json!("RevisionList"));
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn fake_answers_404_for_unknown_objects_and_paths() {
    let fake = hello().await;
    let r = raw(
        &fake,
        "GET",
        "/apis/serving.knative.dev/v1/namespaces/default/services/nope",
        None,
        "",
    )
    .await;
    assert_status(&r, 404, "NotFound");
    assert_eq!(
        r.body["message"],
        json!("services.serving.knative.dev \"nope\" not found")
    );
    assert_eq!(r.body["details"]["name"], json!("nope"));
    for path in [
        // Wrong version, wrong group, wrong plural, cluster-scoped form, core API.
        "/apis/serving.knative.dev/v1beta1/namespaces/default/services/hello",
        "/apis/autoscaling.knative.dev/v1alpha1/namespaces/default/podautoscalers/hello-00001",
        "/apis/serving.knative.dev/v1/namespaces/default/service/hello",
        "/apis/serving.knative.dev/v1/services/hello",
        "/api/v1/namespaces/default/pods/hello",
    ] {
        let r = raw(&fake, "GET", path, None, "").await;
        assert_status(&r, 404, "NotFound");
    }
    // PATCH on an unknown object.
    let r = raw(
        &fake,
        "PATCH",
        "/apis/serving.knative.dev/v1/namespaces/default/revisions/nope",
        Some(MERGE),
        "{}",
    )
    .await;
    assert_status(&r, 404, "NotFound");
}

#[tokio::test]
async fn fake_allows_only_get_and_patch() {
    let fake = hello().await;
    for method in ["PUT", "POST", "DELETE"] {
        let r = raw(
            &fake,
            method,
            "/apis/serving.knative.dev/v1/namespaces/default/services/hello",
            Some("application/json"),
            "{}",
        )
        .await;
        assert_status(&r, 405, "MethodNotAllowed");
    }
    let r = raw(
        &fake,
        "PATCH",
        "/apis/serving.knative.dev/v1/namespaces/default/revisions",
        Some(MERGE),
        "{}",
    )
    .await;
    assert_status(&r, 405, "MethodNotAllowed");
    // The log records them, so a test can prove they never happen.
    assert_eq!(service_writes(&fake.requests()).len(), 3);
}

#[tokio::test]
async fn fake_rejects_strategic_merge_on_the_crd_and_unknown_content_types() {
    let fake = hello().await;
    let body = json!({"metadata": {"annotations": {MIN_SCALE_ANNOTATION: "3"}}}).to_string();
    for ct in [
        Some("application/strategic-merge-patch+json"),
        Some("application/json"),
        Some("text/plain"),
        None,
    ] {
        let r = raw(&fake, "PATCH", REV_PATH, ct, &body).await;
        assert_status(&r, 415, "UnsupportedMediaType");
    }
    assert_eq!(min_scale(&fake, KnativeKind::Revision, "hello-00001"), None);
    // The accepted ones.
    let r = raw(&fake, "PATCH", REV_PATH, Some(MERGE), &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = raw(
        &fake,
        "PATCH",
        REV_PATH,
        Some("application/json-patch+json"),
        &json!([{"op": "replace", "path": "/metadata/annotations/autoscaling.knative.dev~1min-scale", "value": "4"}])
            .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        min_scale(&fake, KnativeKind::Revision, "hello-00001").as_deref(),
        Some("4")
    );
    let apply = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Revision",
        "metadata": {"name": "hello-00001", "annotations": {MIN_SCALE_ANNOTATION: "5"}}})
    .to_string();
    let r = raw(
        &fake,
        "PATCH",
        REV_PATH,
        Some("application/apply-patch+yaml"),
        &apply,
    )
    .await;
    assert_status(&r, 422, "Invalid");
    let r = raw(
        &fake,
        "PATCH",
        &format!("{REV_PATH}?fieldManager=prewarm"),
        Some("application/apply-patch+yaml"),
        &apply,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        min_scale(&fake, KnativeKind::Revision, "hello-00001").as_deref(),
        Some("5")
    );
}

#[tokio::test]
async fn fake_enforces_resource_version_preconditions_and_bumps_on_write() {
    let fake = hello().await;
    let rv = fake
        .resource_version(KnativeKind::Revision, NS, "hello-00001")
        .unwrap();
    let stale = (rv.parse::<u64>().unwrap() - 1).to_string();
    let r = raw(
        &fake,
        "PATCH",
        REV_PATH,
        Some(MERGE),
        &json!({"metadata": {"resourceVersion": stale, "annotations": {MIN_SCALE_ANNOTATION: "3"}}})
            .to_string(),
    )
    .await;
    assert_status(&r, 409, "Conflict");
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("the object has been modified"));
    assert_eq!(min_scale(&fake, KnativeKind::Revision, "hello-00001"), None);

    // The current one is accepted and the version moves on.
    let r = raw(
        &fake,
        "PATCH",
        REV_PATH,
        Some(MERGE),
        &json!({"metadata": {"resourceVersion": rv, "annotations": {MIN_SCALE_ANNOTATION: "3"}}})
            .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rv2 = r.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(rv2.parse::<u64>().unwrap() > rv.parse::<u64>().unwrap());
    assert_eq!(
        fake.resource_version(KnativeKind::Revision, NS, "hello-00001"),
        Some(rv2.clone())
    );
    // Reusing the old one now conflicts.
    let r = raw(
        &fake,
        "PATCH",
        REV_PATH,
        Some(MERGE),
        &json!({"metadata": {"resourceVersion": rv, "annotations": {MIN_SCALE_ANNOTATION: "4"}}})
            .to_string(),
    )
    .await;
    assert_status(&r, 409, "Conflict");

    // bump_resource_version moves it without any change.
    assert!(fake.bump_resource_version(KnativeKind::Revision, NS, "hello-00001"));
    let rv3 = fake
        .resource_version(KnativeKind::Revision, NS, "hello-00001")
        .unwrap();
    assert_ne!(rv3, rv2);
}

#[tokio::test]
async fn fake_merge_patch_semantics_and_value_types() {
    let fake = hello().await;
    // null deletes a key, other annotations stay.
    let r = raw(
        &fake,
        "PATCH",
        REV_PATH,
        Some(MERGE),
        &json!({"metadata": {"annotations": {MIN_SCALE_ANNOTATION: "3", "serving.knative.dev/creator": null}}}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["metadata"]["annotations"],
        json!({MIN_SCALE_ANNOTATION: "3"})
    );
    // Annotation values must be strings.
    for bad in [json!(3), json!(true), json!({"x": "y"})] {
        let r = raw(
            &fake,
            "PATCH",
            REV_PATH,
            Some(MERGE),
            &json!({"metadata": {"annotations": {MIN_SCALE_ANNOTATION: bad}}}).to_string(),
        )
        .await;
        assert_status(&r, 400, "BadRequest");
    }
    assert_eq!(
        min_scale(&fake, KnativeKind::Revision, "hello-00001").as_deref(),
        Some("3")
    );
    // Malformed JSON.
    let r = raw(&fake, "PATCH", REV_PATH, Some(MERGE), "{not json").await;
    assert_status(&r, 400, "BadRequest");
    // Status is a subresource: a patch to it through the main resource is ignored.
    let r = raw(
        &fake,
        "PATCH",
        "/apis/serving.knative.dev/v1/namespaces/default/services/hello",
        Some(MERGE),
        &json!({"status": {"latestReadyRevisionName": "evil"}}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["status"]["latestReadyRevisionName"],
        json!("hello-00001")
    );
}

#[tokio::test]
async fn fake_throttles_with_retry_after() {
    let fake = hello().await;
    fake.throttle_next(2, 9);
    for _ in 0..2 {
        let r = raw(&fake, "GET", REV_PATH, None, "").await;
        assert_status(&r, 429, "TooManyRequests");
        assert_eq!(r.body["details"]["retryAfterSeconds"], json!(9));
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| k == "retry-after" && v == "9"));
    }
    let r = raw(&fake, "GET", REV_PATH, None, "").await;
    assert_eq!(r.status, 200);
}
