//! Loopback fake of the Kubernetes API for the Knative resources the actuator uses.
//!
//! [`FakeKube`] is a real HTTP/1.1 server on `127.0.0.1:0` (axum) serving
//! `serving.knative.dev/v1` Services and Revisions and
//! `autoscaling.internal.knative.dev/v1alpha1` PodAutoscalers, so the tests run the real
//! kube-rs client ([`FakeKube::client`]) over a socket. It checks what kube-apiserver checks for
//! these custom resources and answers the way it answers:
//!
//! - paths `/apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}]`; anything else is a 404
//!   `Status` ("the server could not find the requested resource");
//! - `GET` (object or list) and `PATCH` only; any other verb is a 405 `MethodNotAllowed`
//!   `Status` (the real server also serves PUT/POST/DELETE: the actuator must never need them);
//! - PATCH content types: `application/merge-patch+json` (RFC 7386, `null` deletes),
//!   `application/json-patch+json` (RFC 6902), `application/apply-patch+yaml` (needs
//!   `fieldManager`; only the JSON subset of YAML is read, and it is merged like a merge patch:
//!   field ownership is not modelled). `application/strategic-merge-patch+json` is refused with
//!   415 `UnsupportedMediaType`, as the real server does for custom resources, and so is any
//!   other type;
//! - preconditions: a patched `metadata.resourceVersion` (or `metadata.uid`) that differs from
//!   the stored one is a 409 `Conflict`; `name`, `namespace`, `apiVersion` and `kind` cannot
//!   change (400); annotation and label values must be strings (400, as the real server's
//!   decoder answers);
//! - the `status` subresource: patches to the main resource leave `status` unchanged;
//! - every write that changes the object takes the next value of one global resourceVersion
//!   counter (like etcd's revision); a patch that changes nothing is not a write (no bump, as on
//!   the real server); `metadata.generation` grows when anything outside `metadata` and
//!   `status` changes;
//! - `?dryRun=All` runs every check and stores nothing.
//!
//! Tests seed objects ([`FakeKube::put_service`], [`FakeKube::put_revision`],
//! [`FakeKube::put_podautoscaler`]), read them back ([`FakeKube::annotation`],
//! [`FakeKube::object`]), inject faults ([`FakeKube::throttle_next`], [`FakeKube::fail_next`],
//! [`FakeKube::bump_resource_version`], [`FakeKube::set_annotation`]) and inspect the request
//! log ([`FakeKube::requests`]).

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

/// The Knative resource kinds the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KnativeKind {
    /// `serving.knative.dev/v1` Service (`services`).
    Service,
    /// `serving.knative.dev/v1` Revision (`revisions`).
    Revision,
    /// `autoscaling.internal.knative.dev/v1alpha1` PodAutoscaler (`podautoscalers`).
    PodAutoscaler,
}

impl KnativeKind {
    const ALL: [KnativeKind; 3] = [
        KnativeKind::Service,
        KnativeKind::Revision,
        KnativeKind::PodAutoscaler,
    ];

    /// API group.
    pub fn group(self) -> &'static str {
        match self {
            KnativeKind::Service | KnativeKind::Revision => "serving.knative.dev",
            KnativeKind::PodAutoscaler => "autoscaling.internal.knative.dev",
        }
    }

    /// API version (within the group).
    pub fn version(self) -> &'static str {
        match self {
            KnativeKind::Service | KnativeKind::Revision => "v1",
            KnativeKind::PodAutoscaler => "v1alpha1",
        }
    }

    /// `apiVersion` field value (`group/version`).
    pub fn api_version(self) -> String {
        format!("{}/{}", self.group(), self.version())
    }

    /// `kind` field value.
    pub fn kind(self) -> &'static str {
        match self {
            KnativeKind::Service => "Service",
            KnativeKind::Revision => "Revision",
            KnativeKind::PodAutoscaler => "PodAutoscaler",
        }
    }

    /// Resource (plural) name used in paths.
    pub fn plural(self) -> &'static str {
        match self {
            KnativeKind::Service => "services",
            KnativeKind::Revision => "revisions",
            KnativeKind::PodAutoscaler => "podautoscalers",
        }
    }

    /// The object's API path.
    pub fn path(self, ns: &str, name: &str) -> String {
        format!(
            "/apis/{}/{}/namespaces/{ns}/{}/{name}",
            self.group(),
            self.version(),
            self.plural()
        )
    }

    fn from_path(group: &str, version: &str, plural: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.group() == group && k.version() == version && k.plural() == plural)
    }
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// HTTP method (`GET`, `PATCH`, ...).
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// Query string, when any.
    pub query: Option<String>,
    /// `Content-Type` header, when any.
    pub content_type: Option<String>,
    /// Body (lossy UTF-8).
    pub body: String,
    /// The status code the fake answered.
    pub status: u16,
}

impl LoggedRequest {
    /// True for a method that can change state (anything but GET / HEAD / OPTIONS).
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }
}

type Key = (KnativeKind, String, String);

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<Key, Value>,
    /// Last resourceVersion handed out (global, like etcd's revision).
    rv: u64,
    /// Objects ever created (for uids).
    created: u64,
    /// Next N requests get 429 with this Retry-After (s).
    throttle: Option<(u32, u64)>,
    /// Next N requests get this 5xx.
    fail: Option<(u32, u16)>,
    log: Vec<LoggedRequest>,
}

impl State {
    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    fn insert_new(&mut self, kind: KnativeKind, ns: &str, name: &str, mut obj: Value) {
        self.created += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.created);
        let rv = self.next_rv();
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("uid".into(), Value::from(uid));
            meta.insert("resourceVersion".into(), Value::from(rv));
        }
        self.objects
            .insert((kind, ns.to_string(), name.to_string()), obj);
    }

    /// Changes an object outside the API (another writer); bumps its resourceVersion.
    fn mutate(&mut self, key: &Key, f: impl FnOnce(&mut Map<String, Value>)) -> bool {
        let rv = self.rv + 1;
        let Some(meta) = self
            .objects
            .get_mut(key)
            .and_then(|o| o.get_mut("metadata"))
            .and_then(Value::as_object_mut)
        else {
            return false;
        };
        f(meta);
        meta.insert("resourceVersion".into(), Value::from(rv.to_string()));
        self.rv = rv;
        true
    }
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The loopback Kubernetes API fake (see the module docs). Stops serving when dropped.
#[derive(Debug)]
pub struct FakeKube {
    addr: SocketAddr,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeKube {
    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime.
    pub async fn start() -> Result<FakeKube, std::io::Error> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state: Shared = Arc::new(Mutex::new(State::default()));
        let app = Router::new().fallback(handle).with_state(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "fake kube server stopped");
            }
        });
        Ok(FakeKube { addr, state, task })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube-rs config for the fake: plain http, no auth, namespace `default`, and kube-rs'
    /// retry layer off (as [`crate::actuate::knative::KnativePlatform::from_env`] builds it).
    /// `kube::Client::try_from(fake.config())` runs kube-rs' whole hyper stack, which builds a
    /// rustls config even for plain http and so needs a process-level rustls `CryptoProvider`
    /// (see [`FakeKube::client`]).
    pub fn config(&self) -> kube::Config {
        let mut config = kube::Config::new(
            axum::http::Uri::builder()
                .scheme("http")
                .authority(self.addr.to_string())
                .path_and_query("/")
                .build()
                .unwrap_or_default(),
        );
        config.default_retry = false;
        config
    }

    /// A kube-rs client for the fake: kube-rs' request building, patch serialisation and error
    /// decoding ([`kube::Client::new`]) over a minimal plain-HTTP/1.1 transport (one connection
    /// per request). It never touches TLS, so it works whatever rustls crypto providers the
    /// build enables (with both `ring` and `aws-lc-rs` on and none installed, kube-rs' default
    /// stack panics while building its rustls config, even for an http URL).
    pub fn client(&self) -> kube::Client {
        kube::Client::new(LoopbackTransport { addr: self.addr }, "default")
    }

    /// Creates or replaces a ready Service whose `status.latestReadyRevisionName` is
    /// `latest_ready_revision` (`None`: no revision is ready yet).
    pub fn put_service(&self, ns: &str, name: &str, latest_ready_revision: Option<&str>) {
        let mut status = json!({
            "observedGeneration": 1,
            "url": format!("http://{name}.{ns}.example.com"),
        });
        if let Some(rev) = latest_ready_revision {
            status["latestReadyRevisionName"] = json!(rev);
            status["latestCreatedRevisionName"] = json!(rev);
            status["conditions"] = json!([{"type": "Ready", "status": "True"}]);
        } else {
            status["conditions"] = json!([{"type": "Ready", "status": "Unknown"}]);
        }
        let obj = json!({
            "apiVersion": KnativeKind::Service.api_version(),
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": ns,
                "generation": 1,
                "creationTimestamp": "2025-01-01T00:00:00Z",
                "annotations": {"serving.knative.dev/creator": "admin"},
            },
            "spec": {"template": {"spec": {"containers": [{"image": "example.com/hello"}]}}},
            "status": status,
        });
        lock(&self.state).insert_new(KnativeKind::Service, ns, name, obj);
    }

    /// Creates or replaces a Revision of `service` (no min-scale annotation).
    pub fn put_revision(&self, ns: &str, name: &str, service: &str) {
        let obj = json!({
            "apiVersion": KnativeKind::Revision.api_version(),
            "kind": "Revision",
            "metadata": {
                "name": name,
                "namespace": ns,
                "generation": 1,
                "creationTimestamp": "2025-01-01T00:00:00Z",
                "labels": {
                    "serving.knative.dev/service": service,
                    "serving.knative.dev/configuration": service,
                },
                "annotations": {"serving.knative.dev/creator": "admin"},
            },
            "spec": {"containers": [{"image": "example.com/hello"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        });
        lock(&self.state).insert_new(KnativeKind::Revision, ns, name, obj);
    }

    /// Creates or replaces a PodAutoscaler (no min-scale annotation).
    pub fn put_podautoscaler(&self, ns: &str, name: &str) {
        let obj = json!({
            "apiVersion": KnativeKind::PodAutoscaler.api_version(),
            "kind": "PodAutoscaler",
            "metadata": {
                "name": name,
                "namespace": ns,
                "generation": 1,
                "creationTimestamp": "2025-01-01T00:00:00Z",
                "annotations": {"autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev"},
            },
            "spec": {
                "protocolType": "http1",
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": format!("{name}-deployment"),
                },
            },
            "status": {"desiredScale": 0, "actualScale": 0},
        });
        lock(&self.state).insert_new(KnativeKind::PodAutoscaler, ns, name, obj);
    }

    /// The stored object, when it exists.
    pub fn object(&self, kind: KnativeKind, ns: &str, name: &str) -> Option<Value> {
        lock(&self.state)
            .objects
            .get(&(kind, ns.to_string(), name.to_string()))
            .cloned()
    }

    /// `metadata.annotations[key]` of the stored object (`None` when the object or the
    /// annotation is absent, or the value is not a string).
    pub fn annotation(&self, kind: KnativeKind, ns: &str, name: &str, key: &str) -> Option<String> {
        self.object(kind, ns, name)?
            .get("metadata")?
            .get("annotations")?
            .get(key)?
            .as_str()
            .map(str::to_string)
    }

    /// `metadata.resourceVersion` of the stored object.
    pub fn resource_version(&self, kind: KnativeKind, ns: &str, name: &str) -> Option<String> {
        self.object(kind, ns, name)?
            .get("metadata")?
            .get("resourceVersion")?
            .as_str()
            .map(str::to_string)
    }

    /// Simulates a concurrent writer: the object's resourceVersion moves on, so a patch carrying
    /// the old one gets 409. Returns false when the object does not exist.
    pub fn bump_resource_version(&self, kind: KnativeKind, ns: &str, name: &str) -> bool {
        let key = (kind, ns.to_string(), name.to_string());
        lock(&self.state).mutate(&key, |_| {})
    }

    /// Simulates a concurrent writer setting an annotation (`None` removes it); bumps the
    /// resourceVersion. Returns false when the object does not exist.
    pub fn set_annotation(
        &self,
        kind: KnativeKind,
        ns: &str,
        name: &str,
        key: &str,
        value: Option<&str>,
    ) -> bool {
        let obj_key = (kind, ns.to_string(), name.to_string());
        lock(&self.state).mutate(&obj_key, |meta| {
            let ann = meta
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()));
            if !ann.is_object() {
                *ann = Value::Object(Map::new());
            }
            if let Some(ann) = ann.as_object_mut() {
                match value {
                    Some(v) => {
                        ann.insert(key.to_string(), Value::from(v));
                    }
                    None => {
                        ann.remove(key);
                    }
                }
            }
        })
    }

    /// Points a Service's `status.latestReadyRevisionName` at `revision` (a new revision became
    /// ready); bumps the resourceVersion. Returns false when the Service does not exist.
    pub fn set_latest_ready_revision(&self, ns: &str, name: &str, revision: &str) -> bool {
        let key = (KnativeKind::Service, ns.to_string(), name.to_string());
        let mut st = lock(&self.state);
        let Some(obj) = st.objects.get_mut(&key) else {
            return false;
        };
        obj["status"]["latestReadyRevisionName"] = json!(revision);
        obj["status"]["latestCreatedRevisionName"] = json!(revision);
        st.mutate(&key, |_| {})
    }

    /// The next `n` requests (of any kind) get 429 `TooManyRequests` with
    /// `Retry-After: retry_after_secs` and `details.retryAfterSeconds`, as the API server's
    /// priority-and-fairness filter sends them.
    pub fn throttle_next(&self, n: u32, retry_after_secs: u64) {
        lock(&self.state).throttle = (n > 0).then_some((n, retry_after_secs));
    }

    /// The next `n` requests get `code` (a 5xx: 500 `InternalError`, 503 `ServiceUnavailable`,
    /// 504 `Timeout`).
    pub fn fail_next(&self, n: u32, code: u16) {
        lock(&self.state).fail = (n > 0).then_some((n, code));
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.state).log.clone()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        lock(&self.state).log.clear();
    }
}

// ---------------------------------------------------------------------------------------------
// Client side: a minimal HTTP/1.1 transport for kube::Client
// ---------------------------------------------------------------------------------------------

type TransportFuture = Pin<
    Box<
        dyn Future<Output = Result<axum::http::Response<kube::client::Body>, std::io::Error>>
            + Send,
    >,
>;

/// Plain HTTP/1.1 to the fake, one `Connection: close` request per connection.
#[derive(Debug, Clone, Copy)]
struct LoopbackTransport {
    addr: SocketAddr,
}

impl tonic::codegen::Service<axum::http::Request<kube::client::Body>> for LoopbackTransport {
    type Response = axum::http::Response<kube::client::Body>;
    type Error = std::io::Error;
    type Future = TransportFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::http::Request<kube::client::Body>) -> Self::Future {
        Box::pin(send_http1(self.addr, req))
    }
}

async fn send_http1(
    addr: SocketAddr,
    req: axum::http::Request<kube::client::Body>,
) -> Result<axum::http::Response<kube::client::Body>, std::io::Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(Body::new(body), usize::MAX)
        .await
        .map_err(std::io::Error::other)?;
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", axum::http::uri::PathAndQuery::as_str);
    let mut out = format!("{} {target} HTTP/1.1\r\nhost: {addr}\r\n", parts.method).into_bytes();
    for (k, v) in &parts.headers {
        if matches!(
            k.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            continue;
        }
        out.extend_from_slice(k.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);

    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(&out).await?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await?;
    parse_http1_response(&buf)
}

fn parse_http1_response(
    buf: &[u8],
) -> Result<axum::http::Response<kube::client::Body>, std::io::Error> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of HTTP headers"))?;
    let head = std::str::from_utf8(&buf[..split]).map_err(|_| bad("non-UTF-8 HTTP head"))?;
    let mut body = buf[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let code: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("bad HTTP status line"))?;
    let mut builder = axum::http::Response::builder().status(code);
    let mut chunked = false;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
            continue;
        }
        builder = builder.header(k, v);
    }
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    builder
        .body(kube::client::Body::from(body))
        .map_err(std::io::Error::other)
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP handling
// ---------------------------------------------------------------------------------------------

/// A response: status code, extra headers, JSON body.
struct Reply {
    code: u16,
    headers: Vec<(&'static str, String)>,
    body: Value,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Reply {
            code: 200,
            headers: Vec::new(),
            body,
        }
    }

    /// A `metav1.Status` failure.
    fn status(code: u16, reason: &str, message: impl Into<String>, details: Value) -> Self {
        Reply {
            code,
            headers: Vec::new(),
            body: json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": message.into(),
                "reason": reason,
                "details": details,
                "code": code,
            }),
        }
    }

    fn not_found_resource() -> Self {
        Reply::status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            json!({}),
        )
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Reply::status(400, "BadRequest", message, json!({}))
    }

    fn into_response(self) -> Response {
        let mut builder = Response::builder()
            .status(StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header(header::CONTENT_TYPE, "application/json");
        for (k, v) in self.headers {
            builder = builder.header(k, v);
        }
        let body = Body::from(self.body.to_string());
        builder
            .body(body)
            .unwrap_or_else(|_| Response::new(Body::empty()))
    }
}

fn details(kind: KnativeKind, name: &str) -> Value {
    json!({"name": name, "group": kind.group(), "kind": kind.plural()})
}

fn qualified(kind: KnativeKind) -> String {
    format!("{}.{}", kind.plural(), kind.group())
}

async fn handle(
    axum::extract::State(state): axum::extract::State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut st = lock(&state);
    let reply = route(&mut st, &method, &uri, content_type.as_deref(), &body);
    st.log.push(LoggedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
        status: reply.code,
    });
    drop(st);
    reply.into_response()
}

fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn route(
    st: &mut State,
    method: &Method,
    uri: &Uri,
    content_type: Option<&str>,
    body: &[u8],
) -> Reply {
    // Faults first: the API server's filters answer before any handler runs.
    if let Some((n, secs)) = st.throttle {
        st.throttle = (n > 1).then_some((n - 1, secs));
        let mut r = Reply::status(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
            json!({"retryAfterSeconds": secs}),
        );
        r.headers.push(("Retry-After", secs.to_string()));
        return r;
    }
    if let Some((n, code)) = st.fail {
        st.fail = (n > 1).then_some((n - 1, code));
        let (reason, msg) = match code {
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            504 => (
                "Timeout",
                "the server was unable to return a response in the time allotted",
            ),
            _ => (
                "InternalError",
                "an error on the server has prevented the request from succeeding",
            ),
        };
        return Reply::status(code, reason, msg, json!({}));
    }

    let segs: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let (kind, ns, name) = match segs.as_slice() {
        ["apis", group, version, "namespaces", ns, plural] if !ns.is_empty() => {
            match KnativeKind::from_path(group, version, plural) {
                Some(k) => (k, *ns, None),
                None => return Reply::not_found_resource(),
            }
        }
        ["apis", group, version, "namespaces", ns, plural, name]
            if !ns.is_empty() && !name.is_empty() =>
        {
            match KnativeKind::from_path(group, version, plural) {
                Some(k) => (k, *ns, Some(*name)),
                None => return Reply::not_found_resource(),
            }
        }
        _ => return Reply::not_found_resource(),
    };

    let not_allowed = || {
        Reply::status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            json!({}),
        )
    };
    match (name, method.as_str()) {
        (None, "GET") => list(st, kind, ns),
        (Some(name), "GET") => match st.objects.get(&(kind, ns.to_string(), name.to_string())) {
            Some(obj) => Reply::ok(obj.clone()),
            None => not_found(kind, name),
        },
        (Some(name), "PATCH") => {
            let dry_run = query_param(uri.query(), "dryRun") == Some("All");
            let field_manager = query_param(uri.query(), "fieldManager").filter(|v| !v.is_empty());
            patch(
                st,
                kind,
                ns,
                name,
                content_type,
                body,
                dry_run,
                field_manager,
            )
        }
        _ => not_allowed(),
    }
}

fn not_found(kind: KnativeKind, name: &str) -> Reply {
    Reply::status(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", qualified(kind)),
        details(kind, name),
    )
}

fn list(st: &State, kind: KnativeKind, ns: &str) -> Reply {
    let items: Vec<Value> = st
        .objects
        .iter()
        .filter(|((k, n, _), _)| *k == kind && n == ns)
        .map(|(_, v)| v.clone())
        .collect();
    Reply::ok(json!({
        "apiVersion": kind.api_version(),
        "kind": format!("{}List", kind.kind()),
        "metadata": {"resourceVersion": st.rv.to_string()},
        "items": items,
    }))
}

/// The PATCH flavours the real server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatchType {
    Merge,
    Json,
    Apply,
}

#[allow(clippy::too_many_arguments)]
fn patch(
    st: &mut State,
    kind: KnativeKind,
    ns: &str,
    name: &str,
    content_type: Option<&str>,
    body: &[u8],
    dry_run: bool,
    field_manager: Option<&str>,
) -> Reply {
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let ptype = match media.as_str() {
        "application/merge-patch+json" => PatchType::Merge,
        "application/json-patch+json" => PatchType::Json,
        "application/apply-patch+yaml" => PatchType::Apply,
        // Strategic merge needs Go struct tags: custom resources refuse it.
        _ => {
            return Reply::status(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types \
                     include: application/json-patch+json, application/merge-patch+json, \
                     application/apply-patch+yaml (got {:?})",
                    content_type.unwrap_or("")
                ),
                json!({}),
            )
        }
    };
    if ptype == PatchType::Apply && field_manager.is_none() {
        return Reply::status(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is \
             required for apply patch",
            json!({}),
        );
    }
    let key = (kind, ns.to_string(), name.to_string());
    let Some(current) = st.objects.get(&key).cloned() else {
        return not_found(kind, name);
    };
    let patch_doc: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            let what = if ptype == PatchType::Apply {
                "error decoding YAML (the fake reads only its JSON subset)"
            } else {
                "error decoding patch"
            };
            return Reply::bad_request(format!("{what}: {e}"));
        }
    };

    let mut patched = current.clone();
    match ptype {
        PatchType::Merge => {
            if !patch_doc.is_object() {
                return Reply::bad_request(
                    "json: cannot unmarshal a non-object merge patch into an object",
                );
            }
            merge_patch(&mut patched, &patch_doc);
        }
        PatchType::Apply => {
            if patch_doc
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_none()
                || patch_doc.get("kind").and_then(Value::as_str).is_none()
            {
                return Reply::bad_request("apply patches must carry apiVersion and kind");
            }
            merge_patch(&mut patched, &patch_doc);
        }
        PatchType::Json => {
            if let Err(e) = json_patch(&mut patched, &patch_doc) {
                return Reply::status(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                    json!({}),
                );
            }
        }
    }

    if let Err(r) = validate(kind, name, ns, &current, &patched) {
        return r;
    }

    // Status is a subresource: writes to the main resource do not change it.
    match current.get("status") {
        Some(s) => patched["status"] = s.clone(),
        None => {
            if let Some(o) = patched.as_object_mut() {
                o.remove("status");
            }
        }
    }
    if patched == current {
        return Reply::ok(current);
    }
    let spec_changed = {
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("metadata");
                o.remove("status");
            }
            v
        };
        strip(&patched) != strip(&current)
    };
    let rv = if dry_run {
        (st.rv + 1).to_string()
    } else {
        st.next_rv()
    };
    if let Some(meta) = patched.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::from(rv));
        if spec_changed {
            let g = meta.get("generation").and_then(Value::as_i64).unwrap_or(0);
            meta.insert("generation".into(), Value::from(g + 1));
        }
        // An empty annotations map reads back as absent, as on the real server.
        if meta
            .get("annotations")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
        {
            meta.remove("annotations");
        }
    }
    if !dry_run {
        st.objects.insert(key, patched.clone());
    }
    Reply::ok(patched)
}

/// The checks the real server makes on a patched object, in its order.
fn validate(
    kind: KnativeKind,
    name: &str,
    ns: &str,
    current: &Value,
    patched: &Value,
) -> Result<(), Reply> {
    let Some(obj) = patched.as_object() else {
        return Err(Reply::bad_request(
            "the patched object is not a JSON object",
        ));
    };
    let meta_str = |v: &Value, key: &str| -> Option<String> {
        v.get("metadata")?.get(key)?.as_str().map(str::to_string)
    };
    // Preconditions (409), checked against what is stored.
    let stored_rv = meta_str(current, "resourceVersion");
    if meta_str(patched, "resourceVersion") != stored_rv {
        return Err(Reply::status(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                qualified(kind)
            ),
            details(kind, name),
        ));
    }
    let stored_uid = meta_str(current, "uid");
    let new_uid = meta_str(patched, "uid");
    if new_uid != stored_uid {
        return Err(Reply::status(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in \
                 precondition: {}, UID in object meta: {}",
                qualified(kind),
                new_uid.unwrap_or_default(),
                stored_uid.unwrap_or_default()
            ),
            details(kind, name),
        ));
    }
    if obj.get("apiVersion").and_then(Value::as_str) != Some(kind.api_version().as_str())
        || obj.get("kind").and_then(Value::as_str) != Some(kind.kind())
    {
        return Err(Reply::bad_request(format!(
            "the API version or kind in the data ({}, {}) does not match the expected {}, {}",
            obj.get("apiVersion").unwrap_or(&Value::Null),
            obj.get("kind").unwrap_or(&Value::Null),
            kind.api_version(),
            kind.kind()
        )));
    }
    let Some(meta) = obj.get("metadata").and_then(Value::as_object) else {
        return Err(Reply::bad_request(
            "json: cannot unmarshal into Go struct field .metadata of type v1.ObjectMeta",
        ));
    };
    if meta.get("name").and_then(Value::as_str) != Some(name) {
        return Err(Reply::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            meta.get("name").unwrap_or(&Value::Null)
        )));
    }
    if meta.get("namespace").and_then(Value::as_str) != Some(ns) {
        return Err(Reply::bad_request(
            "the namespace of the provided object does not match the namespace sent on the \
             request",
        ));
    }
    for field in ["annotations", "labels"] {
        match meta.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                if let Some((k, v)) = m.iter().find(|(_, v)| !v.is_string()) {
                    return Err(Reply::bad_request(format!(
                        "json: cannot unmarshal {} into Go struct field \
                         ObjectMeta.metadata.{field} of type string (key {k:?})",
                        json_type(v)
                    )));
                }
            }
            Some(v) => {
                return Err(Reply::bad_request(format!(
                    "json: cannot unmarshal {} into Go struct field ObjectMeta.metadata.{field} \
                     of type map[string]string",
                    json_type(v)
                )))
            }
        }
    }
    Ok(())
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, anything else
/// (arrays included) replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Splits an RFC 6901 JSON pointer into unescaped tokens.
fn pointer_tokens(ptr: &str) -> Result<Vec<String>, String> {
    if ptr.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = ptr.strip_prefix('/') else {
        return Err(format!("invalid JSON pointer {ptr:?}"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn parent_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for t in tokens {
        cur = match cur {
            Value::Object(m) => m.get_mut(t).ok_or_else(|| format!("missing path {t:?}"))?,
            Value::Array(a) => {
                let i: usize = t.parse().map_err(|_| format!("bad array index {t:?}"))?;
                a.get_mut(i)
                    .ok_or_else(|| format!("array index {i} out of range"))?
            }
            _ => return Err(format!("cannot descend into a scalar at {t:?}")),
        };
    }
    Ok(cur)
}

fn pointer_get(doc: &Value, ptr: &str) -> Result<Value, String> {
    doc.pointer(ptr)
        .cloned()
        .ok_or_else(|| format!("path {ptr:?} does not exist"))
}

fn pointer_add(doc: &mut Value, ptr: &str, value: Value) -> Result<(), String> {
    let tokens = pointer_tokens(ptr)?;
    let Some((last, parents)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, parents)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = last
                .parse()
                .map_err(|_| format!("bad array index {last:?}"))?;
            if i > a.len() {
                return Err(format!("array index {i} out of range"));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("cannot add under a scalar at {ptr:?}")),
    }
}

fn pointer_remove(doc: &mut Value, ptr: &str) -> Result<Value, String> {
    let tokens = pointer_tokens(ptr)?;
    let Some((last, parents)) = tokens.split_last() else {
        return Err("cannot remove the whole document".into());
    };
    match parent_mut(doc, parents)? {
        Value::Object(m) => m
            .remove(last)
            .ok_or_else(|| format!("path {ptr:?} does not exist")),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("bad array index {last:?}"))?;
            if i >= a.len() {
                return Err(format!("array index {i} out of range"));
            }
            Ok(a.remove(i))
        }
        _ => Err(format!("path {ptr:?} does not exist")),
    }
}

/// RFC 6902 JSON patch (`add`, `remove`, `replace`, `move`, `copy`, `test`), all or nothing.
pub fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), String> {
    let Value::Array(ops) = patch else {
        return Err("a JSON patch must be an array of operations".into());
    };
    let mut work = doc.clone();
    for op in ops {
        let name = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("operation {op} has no path"))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| format!("operation {op} has no value"))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("operation {op} has no from"))
        };
        match name {
            "add" => pointer_add(&mut work, path, value()?)?,
            "remove" => {
                pointer_remove(&mut work, path)?;
            }
            "replace" => {
                pointer_remove(&mut work, path)?;
                pointer_add(&mut work, path, value()?)?;
            }
            "move" => {
                let v = pointer_remove(&mut work, from()?)?;
                pointer_add(&mut work, path, v)?;
            }
            "copy" => {
                let v = pointer_get(&work, from()?)?;
                pointer_add(&mut work, path, v)?;
            }
            "test" => {
                if pointer_get(&work, path)? != value()? {
                    return Err(format!("test operation at {path:?} failed"));
                }
            }
            other => return Err(format!("unknown JSON patch operation {other:?}")),
        }
    }
    *doc = work;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn merge_patch_follows_rfc7386_examples() {
        // The RFC's appendix A cases that matter for metadata.
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, want) in cases {
            let mut t = target.clone();
            merge_patch(&mut t, &patch);
            assert_eq!(t, want, "{target} + {patch}");
        }
    }

    #[test]
    fn json_patch_ops_and_atomicity() {
        let mut doc = json!({"metadata": {"annotations": {"a/b": "1"}}, "l": [1, 2]});
        json_patch(
            &mut doc,
            &json!([
                {"op": "test", "path": "/metadata/annotations/a~1b", "value": "1"},
                {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "2"},
                {"op": "add", "path": "/l/-", "value": 3},
                {"op": "copy", "from": "/l/0", "path": "/first"},
                {"op": "remove", "path": "/l/1"},
            ]),
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"metadata": {"annotations": {"a/b": "2"}}, "l": [1, 3], "first": 1})
        );
        let before = doc.clone();
        let err = json_patch(
            &mut doc,
            &json!([
                {"op": "add", "path": "/x", "value": 1},
                {"op": "test", "path": "/first", "value": 2},
            ]),
        );
        assert!(err.is_err());
        assert_eq!(doc, before, "a failed patch changes nothing");
    }

    #[test]
    fn dechunk_decodes_chunked_bodies() {
        assert_eq!(
            dechunk(b"4\r\nWiki\r\n6;x=y\r\npedia \r\n0\r\n\r\n").unwrap(),
            b"Wikipedia ".to_vec()
        );
        assert!(dechunk(b"zz\r\n").is_none());
    }

    #[test]
    fn query_params() {
        assert_eq!(query_param(Some("dryRun=All&x=1"), "dryRun"), Some("All"));
        assert_eq!(query_param(Some("force"), "force"), Some(""));
        assert_eq!(query_param(None, "dryRun"), None);
    }

    fn patch_req(st: &mut State, ct: &str, body: Value) -> Reply {
        let uri: Uri = KnativeKind::Revision.path("ns", "r1").parse().unwrap();
        route(
            st,
            &Method::PATCH,
            &uri,
            Some(ct),
            body.to_string().as_bytes(),
        )
    }

    #[test]
    fn patch_checks_and_write_semantics() {
        let mut st = State::default();
        st.insert_new(
            KnativeKind::Revision,
            "ns",
            "r1",
            json!({"apiVersion": "serving.knative.dev/v1", "kind": "Revision",
                   "metadata": {"name": "r1", "namespace": "ns", "generation": 1},
                   "spec": {"x": 1}, "status": {"s": 1}}),
        );
        let rv0 = st.rv;
        // No-op: no bump.
        let r = patch_req(
            &mut st,
            "application/merge-patch+json",
            json!({"metadata": {}}),
        );
        assert_eq!(r.code, 200);
        assert_eq!(st.rv, rv0);
        // Status is a subresource.
        let r = patch_req(
            &mut st,
            "application/merge-patch+json",
            json!({"status": {"s": 2}}),
        );
        assert_eq!((r.code, st.rv), (200, rv0));
        // Annotation write bumps rv, not generation.
        let r = patch_req(
            &mut st,
            "application/merge-patch+json; charset=utf-8",
            json!({"metadata": {"annotations": {"k": "v"}}}),
        );
        assert_eq!(r.code, 200);
        assert_eq!(
            r.body["metadata"]["resourceVersion"],
            json!((rv0 + 1).to_string())
        );
        assert_eq!(r.body["metadata"]["generation"], json!(1));
        // Spec write bumps generation.
        let r = patch_req(
            &mut st,
            "application/merge-patch+json",
            json!({"spec": {"x": 2}}),
        );
        assert_eq!(r.body["metadata"]["generation"], json!(2));
        // Non-string annotation, renamed object, wrong kind.
        for bad in [
            json!({"metadata": {"annotations": {"k": 3}}}),
            json!({"metadata": {"name": "other"}}),
            json!({"kind": "Service"}),
        ] {
            let r = patch_req(&mut st, "application/merge-patch+json", bad);
            assert_eq!(r.code, 400, "{}", r.body);
        }
        // Stale resourceVersion.
        let r = patch_req(
            &mut st,
            "application/merge-patch+json",
            json!({"metadata": {"resourceVersion": "1", "annotations": {"k": "w"}}}),
        );
        assert_eq!(r.code, 409);
        assert_eq!(r.body["reason"], json!("Conflict"));
        // Media types.
        let r = patch_req(&mut st, "application/strategic-merge-patch+json", json!({}));
        assert_eq!(
            (r.code, r.body["reason"].clone()),
            (415, json!("UnsupportedMediaType"))
        );
        let r = patch_req(&mut st, "application/json", json!({}));
        assert_eq!(r.code, 415);
        // Apply needs a field manager.
        let r = patch_req(&mut st, "application/apply-patch+yaml", json!({}));
        assert_eq!(r.code, 422);
        // JSON patch deleting the annotation.
        let r = patch_req(
            &mut st,
            "application/json-patch+json",
            json!([{"op": "remove", "path": "/metadata/annotations/k"}]),
        );
        assert_eq!(r.code, 200);
        assert!(r.body["metadata"].get("annotations").is_none());
    }
}
