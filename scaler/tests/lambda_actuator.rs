#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Lambda actuator against the loopback Lambda fake, through the real aws-sdk-lambda client
//! (SigV4 signing, REST-JSON serialisation and error parsing all real). Run with
//! `--features fakes`.

use prewarm_scaler::actuate::fakes::lambda::{
    hmac_sha256_hex, sha256_hex, sign_raw, FakeLambda, Fault, PcStatus, ACCESS_KEY_ID, REGION,
    SECRET_ACCESS_KEY,
};
use prewarm_scaler::actuate::lambda::LambdaPlatform;
use prewarm_scaler::actuate::{ActuateError, LambdaTarget, Observed, Platform};
use std::collections::HashMap;
use std::io::{Read, Write};

fn target(function: &str, qualifier: &str) -> LambdaTarget {
    LambdaTarget {
        function: function.to_string(),
        qualifier: qualifier.to_string(),
        region: Some(REGION.to_string()),
        max_concurrency: None,
        max_gbs_per_hour: None,
    }
}

/// A fake with function `f` (1024 MB, versions 1 and 2, alias `live` → 1) and reserved
/// concurrency `reserved`.
async fn setup(reserved: Option<u32>) -> (FakeLambda, LambdaPlatform) {
    let fake = FakeLambda::start().await.unwrap();
    fake.put_function("f", 1024, reserved, &["1", "2"], &[("live", "1")]);
    let platform = LambdaPlatform::new(fake.client(), target("f", "live"));
    (fake, platform)
}

fn count(fake: &FakeLambda, operation: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.operation == operation)
        .count()
}

fn rejected(r: Result<impl std::fmt::Debug, ActuateError>) -> String {
    match r {
        Err(ActuateError::Rejected(m)) => m,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

/// One HTTP/1.1 request over a plain TCP socket: (status, lowercase headers, body).
async fn raw_http(
    fake: &FakeLambda,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, HashMap<String, String>, String) {
    let host = fake
        .endpoint_url()
        .trim_start_matches("http://")
        .to_string();
    let mut req = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let text = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&host).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn fake_sha256_and_hmac_match_published_vectors() {
    // FIPS 180-2 appendix B.
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        sha256_hex(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
    // RFC 4231 test cases 1, 2 and 6 (key longer than the block).
    assert_eq!(
        hmac_sha256_hex(&[0x0b; 20], b"Hi There"),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    );
    assert_eq!(
        hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        hmac_sha256_hex(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        ),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[tokio::test]
async fn describe_names_function_and_qualifier() {
    let (_fake, platform) = setup(None).await;
    assert_eq!(platform.describe(), "lambda f:live");
}

#[tokio::test]
async fn observe_without_config_reads_zero() {
    let (fake, platform) = setup(None).await;
    let o = platform.observe().await.unwrap();
    assert_eq!((o.requested, o.ready, o.in_progress), (0, 0, false));
    let log = fake.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].method, "GET");
    assert_eq!(
        log[0].path,
        "/2019-09-30/functions/f/provisioned-concurrency"
    );
    assert_eq!(log[0].query, "Qualifier=live");
    assert!(log[0].signed, "the SDK's SigV4 signature verifies");
    assert_eq!(
        log[0].error.as_deref(),
        Some("ProvisionedConcurrencyConfigNotFoundException")
    );
}

#[tokio::test]
async fn apply_five_goes_in_progress_then_ready_after_the_configured_polls() {
    let (fake, platform) = setup(None).await;
    fake.set_ready_after_gets(3);
    let o = platform.observe().await.unwrap();
    platform.apply(5, &o).await.unwrap();
    assert_eq!(
        fake.provisioned("f", "live"),
        Some((5, 0, PcStatus::InProgress))
    );
    let put = fake
        .requests()
        .into_iter()
        .find(|r| r.operation == "PutProvisionedConcurrencyConfig")
        .unwrap();
    assert_eq!(put.method, "PUT");
    assert_eq!(put.query, "Qualifier=live");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&put.body).unwrap(),
        serde_json::json!({"ProvisionedConcurrentExecutions": 5})
    );
    assert_eq!(put.status, 202);
    assert!(put.signed);

    for _ in 0..2 {
        let o = platform.observe().await.unwrap();
        assert_eq!((o.requested, o.ready, o.in_progress), (5, 0, true), "{o:?}");
    }
    let o = platform.observe().await.unwrap();
    assert_eq!(
        (o.requested, o.ready, o.in_progress),
        (5, 5, false),
        "{o:?}"
    );
    assert!(o.detail.starts_with("READY"), "{}", o.detail);
    assert_eq!(fake.provisioned("f", "live"), Some((5, 5, PcStatus::Ready)));
}

#[tokio::test]
async fn lower_to_two_without_reading_limits() {
    let (fake, platform) = setup(Some(10)).await;
    platform.apply(5, &Observed::default()).await.unwrap();
    let o = platform.observe().await.unwrap();
    assert_eq!((o.requested, o.ready), (5, 5));
    fake.clear_requests();

    platform.apply(2, &o).await.unwrap();
    assert_eq!(
        fake.provisioned("f", "live"),
        Some((2, 2, PcStatus::InProgress))
    );
    assert_eq!(
        count(&fake, "GetFunctionConcurrency"),
        0,
        "a lowering needs no limit read"
    );
    let o = platform.observe().await.unwrap();
    assert_eq!((o.requested, o.ready, o.in_progress), (2, 2, false));
}

#[tokio::test]
async fn apply_zero_deletes_and_skips_when_nothing_is_set() {
    let (fake, platform) = setup(None).await;
    platform.apply(3, &Observed::default()).await.unwrap();
    let o = platform.observe().await.unwrap();
    assert_eq!(o.requested, 3);

    platform.apply(0, &o).await.unwrap();
    assert_eq!(fake.provisioned("f", "live"), None);
    let del = fake
        .requests()
        .into_iter()
        .find(|r| r.operation == "DeleteProvisionedConcurrencyConfig")
        .unwrap();
    assert_eq!((del.method.as_str(), del.status), ("DELETE", 204));
    let o = platform.observe().await.unwrap();
    assert_eq!((o.requested, o.ready), (0, 0));

    fake.clear_requests();
    platform.apply(0, &o).await.unwrap();
    assert!(fake.requests().is_empty(), "no config: no delete");
}

#[tokio::test]
async fn apply_of_the_observed_value_sends_nothing() {
    let (fake, platform) = setup(None).await;
    platform.apply(4, &Observed::default()).await.unwrap();
    let o = platform.observe().await.unwrap();
    fake.clear_requests();
    platform.apply(4, &o).await.unwrap();
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn desired_above_reserved_is_rejected_naming_the_reserved_concurrency() {
    let (fake, platform) = setup(Some(3)).await;
    let m = rejected(platform.apply(5, &Observed::default()).await);
    assert!(m.contains("reserved concurrency 3"), "{m}");
    assert_eq!(count(&fake, "PutProvisionedConcurrencyConfig"), 0);
    assert_eq!(fake.provisioned("f", "live"), None);
    // Up to the reservation is fine.
    platform.apply(3, &Observed::default()).await.unwrap();
    assert_eq!(fake.provisioned("f", "live").map(|(r, _, _)| r), Some(3));
}

#[tokio::test]
async fn lambdas_own_reserved_check_is_rejected_with_its_message() {
    // Version 2 already holds 3 of the 5 reserved: Lambda refuses 4 more on `live`, which the
    // pre-check (4 <= 5) cannot see.
    let (fake, platform) = setup(Some(5)).await;
    fake.client()
        .put_provisioned_concurrency_config()
        .function_name("f")
        .qualifier("2")
        .provisioned_concurrent_executions(3)
        .send()
        .await
        .unwrap();
    let m = rejected(platform.apply(4, &Observed::default()).await);
    assert!(m.contains("InvalidParameterValueException"), "{m}");
    assert!(
        m.contains("should not be greater than the reservedConcurrentExecution"),
        "{m}"
    );
    assert_eq!(fake.provisioned("f", "live"), None);
}

#[tokio::test]
async fn account_unreserved_pool_is_checked() {
    let (fake, platform) = setup(None).await;
    fake.set_account_limits(150, 100);
    // Above the whole unreserved pool: refused before any put.
    let m = rejected(platform.apply(200, &Observed::default()).await);
    assert!(m.contains("unreserved concurrency 150"), "{m}");
    assert_eq!(count(&fake, "PutProvisionedConcurrencyConfig"), 0);
    assert_eq!(count(&fake, "GetAccountSettings"), 1);
    // Within the pool but below Lambda's unreserved minimum: Lambda's message.
    let m = rejected(platform.apply(60, &Observed::default()).await);
    assert!(
        m.contains(
            "decreases account's UnreservedConcurrentExecution below its minimum value of [100]"
        ),
        "{m}"
    );
    platform.apply(50, &Observed::default()).await.unwrap();
    assert_eq!(fake.provisioned("f", "live").map(|(r, _, _)| r), Some(50));
}

#[tokio::test]
async fn limit_reads_are_cached_between_raises() {
    let (fake, platform) = setup(Some(20)).await;
    let mut o = Observed::default();
    for n in [2, 4, 8] {
        platform.apply(n, &o).await.unwrap();
        o = platform.observe().await.unwrap();
        assert_eq!(o.requested, n);
    }
    assert_eq!(count(&fake, "GetFunctionConcurrency"), 1);
    assert_eq!(
        count(&fake, "GetAccountSettings"),
        0,
        "reserved set: no account read"
    );
    assert_eq!(count(&fake, "PutProvisionedConcurrencyConfig"), 3);
}

#[tokio::test]
async fn unreadable_limits_leave_the_check_to_lambda() {
    // No lambda:GetFunctionConcurrency permission: the put still goes out, Lambda decides, and
    // the refused read is not repeated on every raise.
    let (fake, platform) = setup(Some(4)).await;
    fake.fail_next(
        1,
        Fault::Error {
            status: 403,
            code: "AccessDeniedException".to_string(),
            message: "not authorized to perform: lambda:GetFunctionConcurrency".to_string(),
        },
    );
    platform.apply(3, &Observed::default()).await.unwrap();
    assert_eq!(fake.provisioned("f", "live").map(|(r, _, _)| r), Some(3));
    let o = platform.observe().await.unwrap();
    let m = rejected(platform.apply(6, &o).await);
    assert!(
        m.contains("reservedConcurrentExecution"),
        "Lambda's own refusal: {m}"
    );
    assert_eq!(count(&fake, "GetFunctionConcurrency"), 1);
    // Lambda refused a put: the next raise reads the limits again and names the reservation.
    let m = rejected(platform.apply(6, &o).await);
    assert!(m.contains("reserved concurrency 4"), "{m}");
    assert_eq!(count(&fake, "GetFunctionConcurrency"), 2);
}

#[tokio::test]
async fn throttling_maps_to_throttled_with_retry_after() {
    let (fake, platform) = setup(None).await;
    fake.throttle_next(1, Some(7));
    match platform.observe().await {
        Err(ActuateError::Throttled {
            message,
            retry_after_ms,
        }) => {
            assert_eq!(retry_after_ms, Some(7000));
            assert!(message.contains("TooManyRequestsException"), "{message}");
        }
        other => panic!("expected Throttled, got {other:?}"),
    }
    fake.throttle_next(1, None);
    assert_eq!(
        platform.apply(2, &Observed::default()).await,
        Err(ActuateError::Throttled {
            message: "GetFunctionConcurrency f:live: TooManyRequestsException: Rate exceeded"
                .to_string(),
            retry_after_ms: None,
        })
    );
    let log = fake.requests();
    assert_eq!(log.iter().filter(|r| r.status == 429).count(), 2);
    assert_eq!(
        log.len(),
        2,
        "SDK retries are off: the loop sees every throttle"
    );
    // The throttle is gone: the same call now goes through.
    platform.apply(2, &Observed::default()).await.unwrap();
}

#[tokio::test]
async fn conflict_server_error_and_forbidden_map_to_their_kinds() {
    let (fake, platform) = setup(Some(10)).await;
    let fault = |status: u16, code: &str| Fault::Error {
        status,
        code: code.to_string(),
        message: format!("injected {code}"),
    };
    fake.fail_next(1, fault(409, "ResourceConflictException"));
    assert!(matches!(
        platform.observe().await,
        Err(ActuateError::Conflict(m)) if m.contains("injected ResourceConflictException")
    ));
    fake.fail_next(1, fault(500, "ServiceException"));
    assert!(matches!(
        platform.observe().await,
        Err(ActuateError::Transient(_))
    ));
    fake.fail_next(1, fault(503, "SomethingNew"));
    assert!(matches!(
        platform.observe().await,
        Err(ActuateError::Transient(_))
    ));
    fake.fail_next(1, fault(403, "AccessDeniedException"));
    let m = rejected(platform.observe().await);
    assert!(m.contains("AccessDeniedException"), "{m}");
}

#[tokio::test]
async fn nothing_listening_is_transient() {
    let fake = FakeLambda::start().await.unwrap();
    let client = fake.client();
    drop(fake);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let platform = LambdaPlatform::new(client, target("f", "live"));
    assert!(
        matches!(platform.observe().await, Err(ActuateError::Transient(_))),
        "connection refused is transient"
    );
}

#[tokio::test]
async fn unknown_function_or_qualifier_is_rejected() {
    let (fake, _) = setup(None).await;
    let missing = LambdaPlatform::new(fake.client(), target("nope", "live"));
    let m = rejected(missing.observe().await);
    assert!(m.contains("ResourceNotFoundException"), "{m}");
    assert!(
        m.contains("arn:aws:lambda:us-east-1:123456789012:function:nope"),
        "{m}"
    );
    let m = rejected(missing.apply(2, &Observed::default()).await);
    assert!(m.contains("ResourceNotFoundException"), "{m}");

    let bad_alias = LambdaPlatform::new(fake.client(), target("f", "canary"));
    let m = rejected(bad_alias.observe().await);
    assert!(m.contains("function:f:canary"), "{m}");
    // Nothing provisioned on something that does not exist: delete is done.
    bad_alias
        .apply(
            0,
            &Observed {
                requested: 1,
                ..Observed::default()
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn failed_allocation_reports_its_reason() {
    let (fake, platform) = setup(None).await;
    fake.set_ready_after_gets(u32::MAX);
    platform.apply(6, &Observed::default()).await.unwrap();
    assert!(fake.fail_allocation("f", "live", "Function failed on initialization"));
    let o = platform.observe().await.unwrap();
    assert_eq!(
        (o.requested, o.ready, o.in_progress, o.failed),
        (6, 0, false, true)
    );
    assert_eq!(o.detail, "FAILED: Function failed on initialization");
    // Applying the same value again asks Lambda to allocate again.
    platform.apply(6, &o).await.unwrap();
    let o = platform.observe().await.unwrap();
    assert_eq!((o.requested, o.in_progress, o.failed), (6, true, false));
}

#[tokio::test]
async fn alias_on_a_provisioned_version_is_a_conflict() {
    let (fake, platform) = setup(None).await;
    fake.client()
        .put_provisioned_concurrency_config()
        .function_name("f")
        .qualifier("1")
        .provisioned_concurrent_executions(2)
        .send()
        .await
        .unwrap();
    match platform.apply(3, &Observed::default()).await {
        Err(ActuateError::Conflict(m)) => assert!(m.contains("already Provisioned version"), "{m}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn function_arn_and_version_targets_work() {
    let (fake, _) = setup(Some(10)).await;
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:f";
    let platform = LambdaPlatform::new(fake.client(), target(arn, "2"));
    platform.apply(4, &Observed::default()).await.unwrap();
    assert_eq!(fake.provisioned("f", "2").map(|(r, _, _)| r), Some(4));
    let put = fake
        .requests()
        .into_iter()
        .find(|r| r.operation == "PutProvisionedConcurrencyConfig")
        .unwrap();
    // The SDK percent-encodes the ARN's colons in the path; the signature still verifies.
    assert!(put.path.contains("arn%3Aaws%3Alambda"), "{}", put.path);
    assert!(put.signed);
    assert_eq!(platform.observe().await.unwrap().requested, 4);
}

#[tokio::test]
async fn latest_qualifier_is_refused() {
    let (fake, _) = setup(None).await;
    let latest = LambdaPlatform::new(fake.client(), target("f", "$LATEST"));
    let m = rejected(latest.apply(2, &Observed::default()).await);
    assert!(m.contains("InvalidParameterValueException"), "{m}");
    assert!(m.contains("unpublished function versions"), "{m}");
    let m = rejected(latest.observe().await);
    assert!(m.contains("alias or a published version"), "{m}");

    // The same over a hand-made, correctly signed request.
    let host = fake
        .endpoint_url()
        .trim_start_matches("http://")
        .to_string();
    let path = "/2019-09-30/functions/f/provisioned-concurrency";
    let body = r#"{"ProvisionedConcurrentExecutions":2}"#;
    let (date, auth) = sign_raw(
        "PUT",
        path,
        "Qualifier=%24LATEST",
        &host,
        body.as_bytes(),
        REGION,
        now_secs(),
    );
    let (status, headers, text) = raw_http(
        &fake,
        "PUT",
        &format!("{path}?Qualifier=%24LATEST"),
        &[("X-Amz-Date", date), ("Authorization", auth)],
        body,
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(
        headers.get("x-amzn-errortype").map(String::as_str),
        Some("InvalidParameterValueException")
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["Type"], "User");
    assert!(v["message"].as_str().unwrap().contains("unpublished"));
    assert_eq!(fake.provisioned("f", "$LATEST"), None);
}

#[tokio::test]
async fn raw_requests_are_checked_like_lambda_does() {
    let (fake, _) = setup(None).await;
    let host = fake
        .endpoint_url()
        .trim_start_matches("http://")
        .to_string();
    let path = "/2019-09-30/functions/f/provisioned-concurrency";

    // No Authorization header.
    let (status, headers, _) =
        raw_http(&fake, "GET", &format!("{path}?Qualifier=live"), &[], "").await;
    assert_eq!(status, 403);
    assert_eq!(
        headers.get("x-amzn-errortype").map(String::as_str),
        Some("MissingAuthenticationTokenException")
    );

    // Malformed Authorization header.
    let (status, headers, _) = raw_http(
        &fake,
        "GET",
        &format!("{path}?Qualifier=live"),
        &[(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=oops".to_string(),
        )],
        "",
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        headers.get("x-amzn-errortype").map(String::as_str),
        Some("IncompleteSignatureException")
    );

    // Well-formed, but the signature is wrong (signed for another query).
    let (date, auth) = sign_raw(
        "GET",
        path,
        "Qualifier=other",
        &host,
        b"",
        REGION,
        now_secs(),
    );
    let (status, headers, text) = raw_http(
        &fake,
        "GET",
        &format!("{path}?Qualifier=live"),
        &[("X-Amz-Date", date), ("Authorization", auth)],
        "",
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        headers.get("x-amzn-errortype").map(String::as_str),
        Some("InvalidSignatureException")
    );
    assert!(text.contains("does not match"), "{text}");

    // Signed 20 minutes ago: expired.
    let (date, auth) = sign_raw(
        "GET",
        path,
        "Qualifier=live",
        &host,
        b"",
        REGION,
        now_secs() - 1200,
    );
    let (status, _, text) = raw_http(
        &fake,
        "GET",
        &format!("{path}?Qualifier=live"),
        &[("X-Amz-Date", date), ("Authorization", auth)],
        "",
    )
    .await;
    assert_eq!(status, 403);
    assert!(text.contains("Signature expired"), "{text}");

    // Correctly signed: reaches the API (no config yet).
    let (date, auth) = sign_raw(
        "GET",
        path,
        "Qualifier=live",
        &host,
        b"",
        REGION,
        now_secs(),
    );
    let (status, headers, _) = raw_http(
        &fake,
        "GET",
        &format!("{path}?Qualifier=live"),
        &[("X-Amz-Date", date), ("Authorization", auth)],
        "",
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        headers.get("x-amzn-errortype").map(String::as_str),
        Some("ProvisionedConcurrencyConfigNotFoundException")
    );

    // Correctly signed but no Qualifier: a validation error.
    let (date, auth) = sign_raw("GET", path, "", &host, b"", REGION, now_secs());
    let (status, headers, text) = raw_http(
        &fake,
        "GET",
        path,
        &[("X-Amz-Date", date), ("Authorization", auth)],
        "",
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(
        headers.get("x-amzn-errortype").map(String::as_str),
        Some("ValidationException")
    );

    // Correctly signed, count below 1.
    let body = r#"{"ProvisionedConcurrentExecutions":0}"#;
    let (date, auth) = sign_raw(
        "PUT",
        path,
        "Qualifier=live",
        &host,
        body.as_bytes(),
        REGION,
        now_secs(),
    );
    let (status, _, text) = raw_http(
        &fake,
        "PUT",
        &format!("{path}?Qualifier=live"),
        &[("X-Amz-Date", date), ("Authorization", auth)],
        body,
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("greater than or equal to 1"), "{text}");

    let log = fake.requests();
    assert_eq!(log.iter().filter(|r| r.signed).count(), 3);
    assert_eq!(fake.provisioned("f", "live"), None);
}

#[tokio::test]
async fn wrong_credentials_or_region_are_refused() {
    let (fake, _) = setup(None).await;
    let cases = [
        (
            ACCESS_KEY_ID,
            "not-the-secret",
            REGION,
            "InvalidSignatureException",
        ),
        (
            "AKIAUNKNOWN000000000",
            SECRET_ACCESS_KEY,
            REGION,
            "UnrecognizedClientException",
        ),
        (
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            "eu-west-1",
            "scoped to a valid region",
        ),
    ];
    for (akid, secret, region, expect) in cases {
        let platform =
            LambdaPlatform::new(fake.client_with(akid, secret, region), target("f", "live"));
        let m = rejected(platform.observe().await);
        assert!(m.contains(expect), "{expect}: {m}");
    }
    assert!(fake.requests().iter().all(|r| !r.signed && r.status == 403));
}

/// Runs in a child process (see the next test) so the environment it reads is its own.
#[tokio::test]
#[ignore = "run by from_env_honours_aws_endpoint_url_lambda in a child process"]
async fn child_from_env() {
    if std::env::var("PREWARM_LAMBDA_CHILD").is_err() {
        return;
    }
    let platform = LambdaPlatform::from_env(target("f", "live")).await.unwrap();
    let o = platform.observe().await.unwrap();
    assert_eq!(o.requested, 0);
    platform.apply(4, &o).await.unwrap();
    assert_eq!(platform.observe().await.unwrap().requested, 4);
}

#[tokio::test]
async fn from_env_honours_aws_endpoint_url_lambda() {
    let (fake, _) = setup(None).await;
    let exe = std::env::current_exe().unwrap();
    let url = fake.endpoint_url();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args(["--exact", "child_from_env", "--ignored", "--nocapture"])
            .env("PREWARM_LAMBDA_CHILD", "1")
            .env("AWS_ENDPOINT_URL_LAMBDA", url)
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9") // the service-specific one wins
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
            .env("AWS_CONFIG_FILE", "/nonexistent/prewarm/config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/prewarm/credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_REGION")
            .env_remove("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert_eq!(fake.provisioned("f", "live").map(|(r, _, _)| r), Some(4));
    assert!(fake.requests().iter().all(|r| r.signed));
}
