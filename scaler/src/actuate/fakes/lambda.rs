//! Loopback fake of the AWS Lambda provisioned-concurrency API.
//!
//! [`FakeLambda`] is a real HTTP/1.1 server (axum on `127.0.0.1:0`) that speaks Lambda's
//! REST-JSON wire format, so the tests drive the real `aws-sdk-lambda` client (signing,
//! serialisation, error parsing) over loopback. It serves the operations the Lambda actuator
//! calls, on the SDK's routes:
//!
//! | operation | route |
//! |---|---|
//! | `PutProvisionedConcurrencyConfig` | `PUT /2019-09-30/functions/{FunctionName}/provisioned-concurrency?Qualifier=Q` → 202 |
//! | `GetProvisionedConcurrencyConfig` | `GET` same path → 200, or 404 `ProvisionedConcurrencyConfigNotFoundException` |
//! | `ListProvisionedConcurrencyConfigs` | `GET` same path with `?List=ALL` → 200 |
//! | `DeleteProvisionedConcurrencyConfig` | `DELETE` same path → 204 (idempotent, like Lambda) |
//! | `GetFunctionConcurrency` | `GET /2019-09-30/functions/{FunctionName}/concurrency` → 200 |
//! | `GetAccountSettings` | `GET /2016-08-19/account-settings` → 200 |
//!
//! What it checks, in the order the real service does:
//!
//! 1. **SigV4** (every request): a missing `Authorization` header is refused with 403
//!    `MissingAuthenticationTokenException`; a malformed one (not `AWS4-HMAC-SHA256
//!    Credential=…, SignedHeaders=…, Signature=<64 lowercase hex>`) with 403
//!    `IncompleteSignatureException`; an unknown access key with 403
//!    `UnrecognizedClientException`; a credential scope for another region or service, an
//!    `x-amz-date` missing, not matching the scope date or more than 15 minutes off, a
//!    `SignedHeaders` list without `host`, or a signature that does not match with 403
//!    `InvalidSignatureException`. The signature is **verified**: the fake rebuilds the canonical
//!    request (method, double-encoded path, sorted re-encoded query, the signed headers, the
//!    SHA-256 of the body), the string to sign and the HMAC-SHA256 key chain from
//!    [`SECRET_ACCESS_KEY`] (SHA-256 and HMAC are implemented here, checked against the
//!    FIPS 180-2 / RFC 4231 vectors by the tests, because no crypto crate is a dependency).
//! 2. Routing: anything else is 404 `UnknownOperationException`.
//! 3. Input validation (400 `ValidationException`, Lambda's "1 validation error detected"
//!    wording): `Qualifier` missing or not matching `[a-zA-Z0-9$_-]{1,128}`, a function name
//!    that is not a name / ARN, `ProvisionedConcurrentExecutions` missing or below 1.
//! 4. `$LATEST` as qualifier: 400 `InvalidParameterValueException` (Lambda refuses provisioned
//!    concurrency on unpublished versions).
//! 5. Existence: unknown function, version or alias: 404 `ResourceNotFoundException`
//!    (`Function not found: arn:aws:lambda:…`).
//! 6. Limits on put: the sum of the function's provisioned configs above its reserved
//!    concurrency → 400 `InvalidParameterValueException` ("Requested Provisioned Concurrency
//!    should not be greater than the reservedConcurrentExecution for function"); for a function
//!    without reserved concurrency, a put that would leave the account's unreserved pool below
//!    its minimum (100 by default) → 400 `InvalidParameterValueException` ("Specified
//!    ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below
//!    its minimum value of [100].").
//! 7. Alias / version overlap: 409 `ResourceConflictException`, as Lambda does.
//!
//! Errors carry the `x-amzn-ErrorType` header and a `{"Type": "User", "message": …}` body (a 429
//! also `Retry-After` and `Reason`), so the SDK parses them into its typed exceptions.
//!
//! Allocation: a put leaves the config `IN_PROGRESS` (allocated stays at the smaller of the old
//! allocation and the new request); the k-th `GetProvisionedConcurrencyConfig` after it reports
//! `READY` with allocated = requested ([`FakeLambda::set_ready_after_gets`], default 1).
//! [`FakeLambda::fail_allocation`] turns a config `FAILED` with a reason. Faults
//! ([`FakeLambda::fail_next`], [`FakeLambda::throttle_next`]) answer the next authenticated,
//! routed requests with an error instead. Every request is logged ([`FakeLambda::requests`]).

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The access key id the fake accepts (use with [`SECRET_ACCESS_KEY`]).
pub const ACCESS_KEY_ID: &str = "AKIAPREWARMFAKE00001";
/// The secret the fake verifies signatures with.
pub const SECRET_ACCESS_KEY: &str = "prewarmFakeSecretKey/00000000000000000000";
/// The region the fake serves (the credential scope must name it).
pub const REGION: &str = "us-east-1";
/// The account id in the ARNs the fake reports.
pub const ACCOUNT_ID: &str = "123456789012";

/// The largest request body the fake reads.
const MAX_BODY: usize = 1 << 20;
/// Largest accepted clock skew between `x-amz-date` and now (Lambda: 15 minutes).
const MAX_SKEW_SECS: i64 = 15 * 60;

/// A provisioned-concurrency config's status, as Lambda reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcStatus {
    /// `IN_PROGRESS`: allocation is under way.
    InProgress,
    /// `READY`: allocated equals requested.
    Ready,
    /// `FAILED`: allocation failed (see the status reason).
    Failed,
}

impl PcStatus {
    /// The wire value (`IN_PROGRESS`, `READY`, `FAILED`).
    pub fn as_str(self) -> &'static str {
        match self {
            PcStatus::InProgress => "IN_PROGRESS",
            PcStatus::Ready => "READY",
            PcStatus::Failed => "FAILED",
        }
    }
}

/// A fault the fake answers the next authenticated, routed requests with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 `TooManyRequestsException` (`Reason: CallerRateLimitExceeded`), with a `Retry-After`
    /// header (seconds) when given.
    Throttle {
        /// Seconds for the `Retry-After` header.
        retry_after_secs: Option<u64>,
    },
    /// Any error: HTTP status, `x-amzn-ErrorType` code and message.
    Error {
        /// HTTP status code.
        status: u16,
        /// Error code (`ResourceConflictException`, `ServiceException`, …).
        code: String,
        /// Error message.
        message: String,
    },
}

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// HTTP method.
    pub method: String,
    /// Raw (percent-encoded) path.
    pub path: String,
    /// Raw query string (empty when none).
    pub query: String,
    /// Body as UTF-8 (lossy).
    pub body: String,
    /// The request carried a SigV4 signature the fake verified.
    pub signed: bool,
    /// The operation the route maps to (`PutProvisionedConcurrencyConfig`, …; `Unknown`).
    pub operation: String,
    /// The HTTP status the fake answered.
    pub status: u16,
    /// The error code answered (`x-amzn-ErrorType`), if any.
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
struct Function {
    memory_mb: u32,
    reserved: Option<u32>,
    versions: BTreeSet<String>,
    aliases: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct PcConfig {
    requested: u32,
    allocated: u32,
    status: PcStatus,
    reason: Option<String>,
    gets_until_ready: u32,
    last_modified: String,
}

#[derive(Debug)]
struct FakeState {
    region: String,
    functions: BTreeMap<String, Function>,
    configs: BTreeMap<(String, String), PcConfig>,
    account_limit: u32,
    min_unreserved: u32,
    ready_after_gets: u32,
    faults: VecDeque<Fault>,
    log: Vec<LoggedRequest>,
    next_request_id: u64,
}

/// An error answer: status, `x-amzn-ErrorType`, message.
#[derive(Debug)]
struct ApiError {
    status: u16,
    code: String,
    message: String,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            retry_after_secs: None,
        }
    }
}

/// What a handler answers: status and JSON body (`None`: empty body).
type Answer = Result<(u16, Option<Value>), ApiError>;

/// The loopback Lambda fake; the server stops when this is dropped.
pub struct FakeLambda {
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLambda {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for FakeLambda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeLambda")
            .field("addr", &self.addr)
            .finish()
    }
}

fn lock(state: &Mutex<FakeState>) -> MutexGuard<'_, FakeState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeLambda {
    /// Binds `127.0.0.1:0` and serves until dropped (needs a tokio runtime).
    pub async fn start() -> std::io::Result<FakeLambda> {
        let state = Arc::new(Mutex::new(FakeState {
            region: REGION.to_string(),
            functions: BTreeMap::new(),
            configs: BTreeMap::new(),
            account_limit: 1000,
            min_unreserved: 100,
            ready_after_gets: 1,
            faults: VecDeque::new(),
            log: Vec::new(),
            next_request_id: 1,
        }));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = Router::new().fallback(handle).with_state(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "fake lambda server stopped");
            }
        });
        Ok(FakeLambda { addr, state, task })
    }

    /// The base URL, e.g. `http://127.0.0.1:40123` (for `endpoint_url` /
    /// `AWS_ENDPOINT_URL_LAMBDA`).
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A real SDK client pointed at the fake, signing with [`ACCESS_KEY_ID`] /
    /// [`SECRET_ACCESS_KEY`] for [`REGION`], SDK retries off (the reconcile loop retries).
    pub fn client(&self) -> aws_sdk_lambda::Client {
        self.client_with(ACCESS_KEY_ID, SECRET_ACCESS_KEY, REGION)
    }

    /// A client with other credentials or region (to test what the fake refuses).
    pub fn client_with(
        &self,
        access_key_id: &str,
        secret_access_key: &str,
        region: &str,
    ) -> aws_sdk_lambda::Client {
        use aws_sdk_lambda::config::{
            retry::RetryConfig, timeout::TimeoutConfig, BehaviorVersion, Credentials, Region,
        };
        let conf = aws_sdk_lambda::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .credentials_provider(Credentials::new(
                access_key_id,
                secret_access_key,
                None,
                None,
                "prewarm-fake-lambda",
            ))
            .endpoint_url(self.endpoint_url())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_timeout(Duration::from_secs(10))
                    .build(),
            )
            .build();
        aws_sdk_lambda::Client::from_conf(conf)
    }

    /// Creates or replaces a function with its published versions (`"1"`, `"2"`, …), its
    /// aliases (`(name, version)`), its memory and its reserved concurrency (`None`: draws from
    /// the account's unreserved pool). Drops the function's provisioned configs.
    pub fn put_function(
        &self,
        name: &str,
        memory_mb: u32,
        reserved: Option<u32>,
        versions: &[&str],
        aliases: &[(&str, &str)],
    ) {
        let mut st = lock(&self.state);
        st.configs.retain(|(f, _), _| f != name);
        st.functions.insert(
            name.to_string(),
            Function {
                memory_mb,
                reserved,
                versions: versions.iter().map(|v| v.to_string()).collect(),
                aliases: aliases
                    .iter()
                    .map(|(a, v)| (a.to_string(), v.to_string()))
                    .collect(),
            },
        );
    }

    /// Sets (or clears) a function's reserved concurrency, as `PutFunctionConcurrency` would.
    pub fn set_reserved(&self, function: &str, reserved: Option<u32>) {
        if let Some(f) = lock(&self.state).functions.get_mut(function) {
            f.reserved = reserved;
        }
    }

    /// A function's memory size, MB.
    pub fn memory_mb(&self, function: &str) -> Option<u32> {
        lock(&self.state)
            .functions
            .get(function)
            .map(|f| f.memory_mb)
    }

    /// Sets the account's concurrency limit (default 1000) and the unreserved minimum Lambda
    /// keeps (default 100).
    pub fn set_account_limits(&self, concurrent_executions: u32, min_unreserved: u32) {
        let mut st = lock(&self.state);
        st.account_limit = concurrent_executions;
        st.min_unreserved = min_unreserved;
    }

    /// Sets the region the fake serves (default [`REGION`]).
    pub fn set_region(&self, region: &str) {
        lock(&self.state).region = region.to_string();
    }

    /// After a put, the `k`-th `GetProvisionedConcurrencyConfig` on that config reports `READY`
    /// (earlier ones `IN_PROGRESS`); `k` is at least 1. `u32::MAX`: never on its own.
    pub fn set_ready_after_gets(&self, k: u32) {
        lock(&self.state).ready_after_gets = k.max(1);
    }

    /// Finishes every allocation in progress (`READY`, allocated = requested).
    pub fn complete_allocations(&self) {
        for c in lock(&self.state).configs.values_mut() {
            if c.status == PcStatus::InProgress {
                c.status = PcStatus::Ready;
                c.allocated = c.requested;
                c.gets_until_ready = 0;
            }
        }
    }

    /// Marks a config `FAILED` with `reason` (allocated drops to 0). False when there is none.
    pub fn fail_allocation(&self, function: &str, qualifier: &str, reason: &str) -> bool {
        let mut st = lock(&self.state);
        match st
            .configs
            .get_mut(&(function.to_string(), qualifier.to_string()))
        {
            Some(c) => {
                c.status = PcStatus::Failed;
                c.allocated = 0;
                c.reason = Some(reason.to_string());
                true
            }
            None => false,
        }
    }

    /// The config on `function:qualifier` (qualifier as it was put): `(requested, allocated,
    /// status)`.
    pub fn provisioned(&self, function: &str, qualifier: &str) -> Option<(u32, u32, PcStatus)> {
        lock(&self.state)
            .configs
            .get(&(function.to_string(), qualifier.to_string()))
            .map(|c| (c.requested, c.allocated, c.status))
    }

    /// Answers the next `n` authenticated, routed requests with `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut st = lock(&self.state);
        for _ in 0..n {
            st.faults.push_back(fault.clone());
        }
    }

    /// Answers the next `n` requests with 429 `TooManyRequestsException`.
    pub fn throttle_next(&self, n: usize, retry_after_secs: Option<u64>) {
        self.fail_next(n, Fault::Throttle { retry_after_secs });
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.state).log.clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        lock(&self.state).log.clear();
    }
}

async fn handle(State(state): State<Arc<Mutex<FakeState>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let mut st = lock(&state);
    let request_id = format!("fake-{:08}", st.next_request_id);
    st.next_request_id += 1;

    let auth = verify_sigv4(
        &parts.method,
        &path,
        &query,
        &parts.headers,
        &body,
        &st.region,
    );
    let operation = operation_for(&parts.method, &path, &query);
    let signed = auth.is_ok();
    let answer: Answer = match auth {
        Err(e) => Err(e),
        Ok(()) => match operation {
            None => Err(ApiError::new(
                404,
                "UnknownOperationException",
                "Unknown operation",
            )),
            Some(op) => match st.faults.pop_front() {
                Some(fault) => Err(fault_error(fault)),
                None => st.dispatch(op, &path, &query, &body),
            },
        },
    };
    let (status, error, response) = render(answer, &request_id);
    st.log.push(LoggedRequest {
        method: parts.method.to_string(),
        path,
        query,
        body: String::from_utf8_lossy(&body).into_owned(),
        signed,
        operation: operation.unwrap_or("Unknown").to_string(),
        status,
        error,
    });
    response
}

fn fault_error(fault: Fault) -> ApiError {
    match fault {
        Fault::Throttle { retry_after_secs } => ApiError {
            status: 429,
            code: "TooManyRequestsException".to_string(),
            message: "Rate exceeded".to_string(),
            retry_after_secs,
        },
        Fault::Error {
            status,
            code,
            message,
        } => ApiError {
            status,
            code,
            message,
            retry_after_secs: None,
        },
    }
}

fn render(answer: Answer, request_id: &str) -> (u16, Option<String>, Response) {
    let (status, error, body, retry_after, code) = match answer {
        Ok((status, body)) => (status, None, body, None, None),
        Err(e) => {
            let mut body = json!({"Type": "User", "message": e.message});
            if e.status == 429 {
                body["Reason"] = json!("CallerRateLimitExceeded");
                if let Some(s) = e.retry_after_secs {
                    body["retryAfterSeconds"] = json!(s.to_string());
                }
            }
            if e.status >= 500 {
                body["Type"] = json!("Service");
            }
            (
                e.status,
                Some(e.code.clone()),
                Some(body),
                e.retry_after_secs,
                Some(e.code),
            )
        }
    };
    let code_status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match body {
        Some(v) => (code_status, v.to_string()).into_response(),
        None => (code_status, Body::empty()).into_response(),
    };
    let headers = response.headers_mut();
    if status != 204 {
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static("x-amzn-requestid"), v);
    }
    if let Some(v) = code.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(HeaderName::from_static("x-amzn-errortype"), v);
    }
    if let Some(secs) = retry_after {
        headers.insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    (status, error, response)
}

const PC_PREFIX: &str = "/2019-09-30/functions/";

/// The operation a request maps to (`None`: unknown route).
fn operation_for(method: &Method, path: &str, query: &str) -> Option<&'static str> {
    if path == "/2016-08-19/account-settings" || path == "/2016-08-19/account-settings/" {
        return (method == Method::GET).then_some("GetAccountSettings");
    }
    let rest = path.strip_prefix(PC_PREFIX)?;
    let (name, tail) = rest.split_once('/')?;
    if name.is_empty() {
        return None;
    }
    match (tail, method) {
        ("provisioned-concurrency", m) if m == Method::GET => {
            if query_param(query, "List").as_deref() == Some("ALL") {
                Some("ListProvisionedConcurrencyConfigs")
            } else {
                Some("GetProvisionedConcurrencyConfig")
            }
        }
        ("provisioned-concurrency", m) if m == Method::PUT => {
            Some("PutProvisionedConcurrencyConfig")
        }
        ("provisioned-concurrency", m) if m == Method::DELETE => {
            Some("DeleteProvisionedConcurrencyConfig")
        }
        ("concurrency", m) if m == Method::GET => Some("GetFunctionConcurrency"),
        _ => None,
    }
}

fn validation(value: &str, member: &str, constraint: &str) -> ApiError {
    ApiError::new(
        400,
        "ValidationException",
        format!(
            "1 validation error detected: Value {value} at '{member}' failed to satisfy \
             constraint: {constraint}"
        ),
    )
}

const QUALIFIER_PATTERN: &str =
    "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)";
const FUNCTION_PATTERN: &str = "Member must satisfy regular expression pattern: \
     (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?\
     ([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?";

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn qualifier_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'$')
}

/// A function reference from the path: name, optional region / account (from an ARN) and an
/// optional qualifier suffix.
struct FnRef {
    name: String,
    region: Option<String>,
    account: Option<String>,
    qualifier: Option<String>,
}

fn parse_function_ref(raw: &str) -> Option<FnRef> {
    if raw.is_empty() || raw.len() > 140 {
        return None;
    }
    let parts: Vec<&str> = raw.split(':').collect();
    let (region, account, rest): (Option<&str>, Option<&str>, &[&str]) =
        if parts.first() == Some(&"arn") {
            // arn:aws:lambda:region:account:function:name[:qualifier]
            if parts.len() < 7
                || !parts[1].starts_with("aws")
                || parts[2] != "lambda"
                || parts[5] != "function"
            {
                return None;
            }
            (Some(parts[3]), Some(parts[4]), &parts[6..])
        } else if parts.len() >= 3 && parts[1] == "function" {
            (None, Some(parts[0]), &parts[2..])
        } else {
            (None, None, &parts[..])
        };
    if let Some(a) = account {
        if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    let (name, qualifier) = match rest {
        [n] => (*n, None),
        [n, q] => (*n, Some(*q)),
        _ => return None,
    };
    if !name_ok(name) {
        return None;
    }
    if let Some(q) = qualifier {
        if !(q == "$LATEST" || name_ok(q)) {
            return None;
        }
    }
    Some(FnRef {
        name: name.to_string(),
        region: region.map(str::to_string),
        account: account.map(str::to_string),
        qualifier: qualifier.map(str::to_string),
    })
}

impl FakeState {
    fn function_arn(&self, name: &str, qualifier: Option<&str>) -> String {
        let base = format!(
            "arn:aws:lambda:{}:{ACCOUNT_ID}:function:{name}",
            self.region
        );
        match qualifier {
            Some(q) => format!("{base}:{q}"),
            None => base,
        }
    }

    fn dispatch(&mut self, op: &'static str, path: &str, query: &str, body: &[u8]) -> Answer {
        if op == "GetAccountSettings" {
            return Ok((200, Some(self.account_settings())));
        }
        let raw_name = path
            .strip_prefix(PC_PREFIX)
            .and_then(|r| r.split_once('/'))
            .map(|(n, _)| percent_decode(n))
            .unwrap_or_default();
        let fref = parse_function_ref(&raw_name).ok_or_else(|| {
            validation(&format!("'{raw_name}'"), "functionName", FUNCTION_PATTERN)
        })?;
        let not_found = |st: &FakeState, q: Option<&str>| {
            ApiError::new(
                404,
                "ResourceNotFoundException",
                format!("Function not found: {}", st.function_arn(&fref.name, q)),
            )
        };
        let foreign = fref.region.as_deref().is_some_and(|r| r != self.region)
            || fref.account.as_deref().is_some_and(|a| a != ACCOUNT_ID);

        if op == "GetFunctionConcurrency" {
            if fref.qualifier.is_some() {
                return Err(ApiError::new(
                    400,
                    "InvalidParameterValueException",
                    "This operation does not support qualified function names.",
                ));
            }
            if foreign {
                return Err(not_found(self, None));
            }
            let f = self
                .functions
                .get(&fref.name)
                .ok_or_else(|| not_found(self, None))?;
            let body = match f.reserved {
                Some(r) => json!({"ReservedConcurrentExecutions": r}),
                None => json!({}),
            };
            return Ok((200, Some(body)));
        }
        if op == "ListProvisionedConcurrencyConfigs" {
            if foreign || !self.functions.contains_key(&fref.name) {
                return Err(not_found(self, None));
            }
            let items: Vec<Value> = self
                .configs
                .iter()
                .filter(|((f, _), _)| *f == fref.name)
                .map(|((f, q), c)| {
                    let mut v = config_json(c);
                    v["FunctionArn"] = json!(self.function_arn(f, Some(q)));
                    v
                })
                .collect();
            return Ok((200, Some(json!({"ProvisionedConcurrencyConfigs": items}))));
        }

        // Get / Put / Delete ProvisionedConcurrencyConfig: schema validation first.
        let qualifier = match query_param(query, "Qualifier") {
            None => return Err(validation("null", "qualifier", "Member must not be null")),
            Some(q) if !qualifier_ok(&q) => {
                return Err(validation(
                    &format!("'{q}'"),
                    "qualifier",
                    QUALIFIER_PATTERN,
                ))
            }
            Some(q) => q,
        };
        let requested = if op == "PutProvisionedConcurrencyConfig" {
            let v: Value = serde_json::from_slice(if body.is_empty() { b"{}" } else { body })
                .map_err(|e| {
                    ApiError::new(
                        400,
                        "SerializationException",
                        format!("Malformed JSON: {e}"),
                    )
                })?;
            match v.get("ProvisionedConcurrentExecutions") {
                None | Some(Value::Null) => {
                    return Err(validation(
                        "null",
                        "provisionedConcurrentExecutions",
                        "Member must not be null",
                    ))
                }
                Some(n) => match n.as_i64() {
                    Some(n) if n >= 1 && n <= i64::from(i32::MAX) => {
                        u32::try_from(n).unwrap_or(u32::MAX)
                    }
                    Some(n) => {
                        return Err(validation(
                            &format!("'{n}'"),
                            "provisionedConcurrentExecutions",
                            "Member must have value greater than or equal to 1",
                        ))
                    }
                    None => {
                        return Err(ApiError::new(
                            400,
                            "SerializationException",
                            "ProvisionedConcurrentExecutions must be an integer",
                        ))
                    }
                },
            }
        } else {
            0
        };
        if let Some(q) = &fref.qualifier {
            if *q != qualifier {
                return Err(ApiError::new(
                    400,
                    "InvalidParameterValueException",
                    "The derived qualifier from the function name does not match the specified \
                     qualifier.",
                ));
            }
        }
        if qualifier == "$LATEST" {
            let message = if op == "PutProvisionedConcurrencyConfig" {
                "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
            } else {
                "The function resource provided must be an alias or a published version."
            };
            return Err(ApiError::new(
                400,
                "InvalidParameterValueException",
                message,
            ));
        }
        if foreign {
            return Err(not_found(self, Some(&qualifier)));
        }
        let function = self
            .functions
            .get(&fref.name)
            .ok_or_else(|| not_found(self, None))?
            .clone();
        if !function.versions.contains(&qualifier) && !function.aliases.contains_key(&qualifier) {
            return Err(not_found(self, Some(&qualifier)));
        }
        let key = (fref.name.clone(), qualifier.clone());

        match op {
            "GetProvisionedConcurrencyConfig" => {
                let c = self.configs.get_mut(&key).ok_or_else(|| {
                    ApiError::new(
                        404,
                        "ProvisionedConcurrencyConfigNotFoundException",
                        "No Provisioned Concurrency Config found for this function",
                    )
                })?;
                if c.status == PcStatus::InProgress {
                    c.gets_until_ready = c.gets_until_ready.saturating_sub(1);
                    if c.gets_until_ready == 0 {
                        c.status = PcStatus::Ready;
                        c.allocated = c.requested;
                    }
                }
                Ok((200, Some(config_json(c))))
            }
            "DeleteProvisionedConcurrencyConfig" => {
                self.configs.remove(&key);
                Ok((204, None))
            }
            _ => self.put(&fref.name, &qualifier, &function, requested),
        }
    }

    fn put(&mut self, name: &str, qualifier: &str, function: &Function, n: u32) -> Answer {
        let others: u64 = self
            .configs
            .iter()
            .filter(|((f, q), _)| f == name && q != qualifier)
            .map(|(_, c)| u64::from(c.requested))
            .sum();
        match function.reserved {
            Some(r) => {
                if others + u64::from(n) > u64::from(r) {
                    return Err(ApiError::new(
                        400,
                        "InvalidParameterValueException",
                        "Requested Provisioned Concurrency should not be greater than the \
                         reservedConcurrentExecution for function",
                    ));
                }
            }
            None => {
                // Provisioned concurrency of functions without a reservation comes out of the
                // account's unreserved pool, which must keep its minimum.
                let reserved: u64 = self
                    .functions
                    .values()
                    .filter_map(|f| f.reserved)
                    .map(u64::from)
                    .sum();
                let provisioned_unreserved: u64 = self
                    .configs
                    .iter()
                    .filter(|((f, q), _)| {
                        !(f == name && q == qualifier)
                            && self.functions.get(f).is_some_and(|f| f.reserved.is_none())
                    })
                    .map(|(_, c)| u64::from(c.requested))
                    .sum();
                let pool = u64::from(self.account_limit)
                    .saturating_sub(reserved)
                    .saturating_sub(provisioned_unreserved);
                if pool < u64::from(n) + u64::from(self.min_unreserved) {
                    return Err(ApiError::new(
                        400,
                        "InvalidParameterValueException",
                        format!(
                            "Specified ConcurrentExecutions for function decreases account's \
                             UnreservedConcurrentExecution below its minimum value of [{}].",
                            self.min_unreserved
                        ),
                    ));
                }
            }
        }
        if let Some(version) = function.aliases.get(qualifier) {
            if self
                .configs
                .contains_key(&(name.to_string(), version.clone()))
            {
                return Err(ApiError::new(
                    409,
                    "ResourceConflictException",
                    "Alias can't be used for Provisioned Concurrency configuration on an already \
                     Provisioned version",
                ));
            }
        } else if function.aliases.iter().any(|(alias, v)| {
            v == qualifier
                && self
                    .configs
                    .contains_key(&(name.to_string(), alias.clone()))
        }) {
            return Err(ApiError::new(
                409,
                "ResourceConflictException",
                "Version is pointed by a Provisioned Concurrency alias",
            ));
        }
        let key = (name.to_string(), qualifier.to_string());
        let previous = self.configs.get(&key).map(|c| c.allocated).unwrap_or(0);
        let config = PcConfig {
            requested: n,
            allocated: previous.min(n),
            status: PcStatus::InProgress,
            reason: None,
            gets_until_ready: self.ready_after_gets,
            last_modified: lambda_date(SystemTime::now()),
        };
        let body = config_json(&config);
        self.configs.insert(key, config);
        Ok((202, Some(body)))
    }

    fn account_settings(&self) -> Value {
        let reserved: u64 = self
            .functions
            .values()
            .filter_map(|f| f.reserved)
            .map(u64::from)
            .sum();
        json!({
            "AccountLimit": {
                "TotalCodeSize": 80_530_636_800_u64,
                "CodeSizeUnzipped": 262_144_000_u64,
                "CodeSizeZipped": 52_428_800_u64,
                "ConcurrentExecutions": self.account_limit,
                "UnreservedConcurrentExecutions": u64::from(self.account_limit).saturating_sub(reserved),
            },
            "AccountUsage": {
                "TotalCodeSize": 0,
                "FunctionCount": self.functions.len(),
            }
        })
    }
}

fn config_json(c: &PcConfig) -> Value {
    let mut v = json!({
        "RequestedProvisionedConcurrentExecutions": c.requested,
        "AvailableProvisionedConcurrentExecutions": c.allocated,
        "AllocatedProvisionedConcurrentExecutions": c.allocated,
        "Status": c.status.as_str(),
        "LastModified": c.last_modified,
    });
    if let Some(r) = &c.reason {
        v["StatusReason"] = json!(r);
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Query strings and percent-encoding.

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes (invalid escapes are kept as is).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Form-style decoding (`+` is a space), as the signer parses the query.
fn form_decode(s: &str) -> String {
    percent_decode(&s.replace('+', " "))
}

/// The decoded query pairs.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (form_decode(k), form_decode(v)),
            None => (form_decode(p), String::new()),
        })
        .collect()
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query_pairs(query)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// SigV4 URI encoding: everything but the unreserved characters (and `/` when `keep_slash`).
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// SigV4 verification.

fn incomplete(message: impl Into<String>) -> ApiError {
    ApiError::new(403, "IncompleteSignatureException", message)
}

fn invalid_signature(message: impl Into<String>) -> ApiError {
    ApiError::new(403, "InvalidSignatureException", message)
}

fn verify_sigv4(
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    region: &str,
) -> Result<(), ApiError> {
    let Some(auth) = headers.get("authorization") else {
        return Err(ApiError::new(
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let auth = auth
        .to_str()
        .map_err(|_| incomplete("Authorization header is not valid ASCII"))?;
    let Some(params) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(incomplete(format!(
            "Authorization header requires 'Credential' parameter. Authorization header requires \
             'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
             Authorization={auth}"
        )));
    };
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in params.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {
                return Err(incomplete(format!(
                    "Authorization header has an invalid element '{}'",
                    part.trim()
                )))
            }
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(incomplete(format!(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' \
             parameters. Authorization={auth}"
        )));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [akid, date, scope_region, service, terminator] = scope[..] else {
        return Err(incomplete(format!(
            "Credential should have 5 '/'-separated parts: \
             <AKID>/<yyyymmdd>/<region>/<service>/aws4_request, got '{credential}'"
        )));
    };
    if terminator != "aws4_request" {
        return Err(incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not \
             '{terminator}'."
        )));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(incomplete(format!(
            "Credential has an invalid date '{date}'."
        )));
    }
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(incomplete(
            "Signature must be 64 lowercase hexadecimal characters.",
        ));
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    if names
        .iter()
        .any(|n| n.is_empty() || n.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(incomplete(
            "SignedHeaders must be lowercase header names separated by ';'.",
        ));
    }
    if akid != ACCESS_KEY_ID {
        return Err(ApiError::new(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    if service != "lambda" {
        return Err(invalid_signature(format!(
            "Credential should be scoped to correct service: 'lambda'. Got '{service}'."
        )));
    }
    if scope_region != region {
        return Err(invalid_signature(format!(
            "Credential should be scoped to a valid region, not '{scope_region}'. "
        )));
    }
    let Some(amz_date) = headers.get("x-amz-date").and_then(|v| v.to_str().ok()) else {
        return Err(incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ));
    };
    let Some(signed_at) = parse_amz_date(amz_date) else {
        return Err(incomplete(format!(
            "X-Amz-Date must be in the ISO-8601 basic format yyyyMMdd'T'HHmmss'Z', got '{amz_date}'."
        )));
    };
    if !amz_date.starts_with(date) {
        return Err(invalid_signature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
             HTTP: '{date}' != '{}', from '{amz_date}'.",
            &amz_date[..8]
        )));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if (now - signed_at).abs() > MAX_SKEW_SECS {
        return Err(invalid_signature(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            amz_basic(now - MAX_SKEW_SECS),
            amz_basic(now)
        )));
    }
    if !names.contains(&"host") || !names.contains(&"x-amz-date") {
        return Err(invalid_signature(
            "'Host' and 'X-Amz-Date' must be signed headers.",
        ));
    }
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted != names {
        return Err(invalid_signature(
            "SignedHeaders must be sorted and unique.",
        ));
    }

    // Canonical request.
    let mut canonical_headers = String::new();
    for name in &names {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| trim_all(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        if values.is_empty() {
            return Err(invalid_signature(format!(
                "The request signature we calculated does not match the signature you provided: \
                 signed header '{name}' is missing from the request."
            )));
        }
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    let canonical_query = canonical_query(query);
    let canonical_path = if path.is_empty() {
        "/".to_string()
    } else {
        uri_encode(path, true)
    };
    let canonical_request = format!(
        "{method}\n{canonical_path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{}",
        sha256_hex(body)
    );
    let expected = sigv4_signature(amz_date, date, scope_region, service, &canonical_request);
    if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(invalid_signature(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details.",
        ));
    }
    Ok(())
}

/// Trims spaces and collapses runs of spaces (SigV4 header value normalisation).
fn trim_all(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_space = false;
    for c in s.trim_matches(' ').chars() {
        if c == ' ' {
            if !last_space {
                out.push(c);
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------------------------------------
// Dates (proleptic Gregorian, UTC).

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses `yyyymmddThhmmssZ` into Unix seconds.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

fn split_secs(secs: i64) -> ((i64, i64, i64), (i64, i64, i64)) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    (
        civil_from_days(days),
        (rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

/// Unix seconds as `yyyymmddThhmmssZ`.
fn amz_basic(secs: i64) -> String {
    let ((y, mo, d), (h, mi, s)) = split_secs(secs);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// Lambda's `LastModified` format, e.g. `2024-05-01T12:00:00.000+0000`.
fn lambda_date(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let ((y, mo, day), (h, mi, s)) = split_secs(d.as_secs() as i64);
    format!(
        "{y:04}-{mo:02}-{day:02}T{h:02}:{mi:02}:{s:02}.{:03}+0000",
        d.subsec_millis()
    )
}

// ---------------------------------------------------------------------------------------------
// SHA-256 and HMAC-SHA256 (RustCrypto's sha2 / hmac), and the SigV4 steps shared by the
// verifier and `sign_raw`.

/// SHA-256 of `data`.
fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// HMAC-SHA256 of `msg` under `key`.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use hmac::{KeyInit, Mac};
    // HMAC takes keys of any length, so `new_from_slice` cannot fail.
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// The canonical query string of SigV4: each name and value URI-encoded, pairs sorted.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .into_iter()
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The SigV4 signature (lowercase hex) of `canonical_request` with [`SECRET_ACCESS_KEY`], for
/// the scope `date/region/service/aws4_request`.
fn sigv4_signature(
    amz_date: &str,
    date: &str,
    region: &str,
    service: &str,
    canonical_request: &str,
) -> String {
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac_sha256(
        format!("AWS4{SECRET_ACCESS_KEY}").as_bytes(),
        date.as_bytes(),
    );
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"aws4_request");
    hex(&hmac_sha256(&k_signing, string_to_sign.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lowercase hex SHA-256 of `data` (public so tests can check it against the published vectors).
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&sha256(data))
}

/// Lowercase hex HMAC-SHA256 of `msg` under `key` (public for the RFC 4231 vector tests).
pub fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    hex(&hmac_sha256(key, msg))
}

/// Signs a raw request the way SigV4 does, with [`ACCESS_KEY_ID`] / [`SECRET_ACCESS_KEY`] for
/// `region` at Unix time `now_secs`: returns the `x-amz-date` value and the `Authorization`
/// header for a request whose signed headers are exactly `host` and `x-amz-date`. For tests that
/// send hand-made requests (e.g. a `$LATEST` qualifier) past the signature check.
pub fn sign_raw(
    method: &str,
    path: &str,
    query: &str,
    host: &str,
    body: &[u8],
    region: &str,
    now_secs: i64,
) -> (String, String) {
    let amz_date = amz_basic(now_secs);
    let date = &amz_date[..8];
    let canonical_query = canonical_query(query);
    let canonical_request = format!(
        "{method}\n{}\n{canonical_query}\nhost:{host}\nx-amz-date:{amz_date}\n\nhost;x-amz-date\n{}",
        uri_encode(path, true),
        sha256_hex(body)
    );
    let signature = sigv4_signature(&amz_date, date, region, "lambda", &canonical_request);
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/{date}/{region}/lambda/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature={signature}"
    );
    (amz_date, authorization)
}
