//! Every malformed, unsigned or hostile request gets the exact AWS error, and writes nothing.

use crate::harness::{Backend, ROOT_AKID, ROOT_SECRET, TestServer, unique};
use crate::raw::{Raw, send};
use bytes::Bytes;
use http_body_util::Full;
use serde_json::json;
use std::time::{Duration, SystemTime};

fn root(server: &TestServer) -> Raw {
    Raw::new(&server.endpoint, ROOT_AKID, ROOT_SECRET)
}

/// How many secrets the root workspace can see (including ones planned for deletion).
async fn count_secrets(server: &TestServer) -> usize {
    let r = root(server)
        .call_json(
            "ListSecrets",
            json!({"IncludePlannedDeletion": true, "MaxResults": 100}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.raw));
    r.json["SecretList"].as_array().map(Vec::len).unwrap_or(0)
}

fn assert_error(r: &crate::raw::Reply, status: u16, code: &str) {
    assert_eq!(
        r.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&r.raw)
    );
    assert_eq!(r.code(), code, "body: {}", String::from_utf8_lossy(&r.raw));
    assert!(r.headers.get("x-amzn-requestid").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_failures() {
    let server = TestServer::start(Backend::Sqlite).expect("server");
    let before = count_secrets(&server).await;
    let body = json!({"Name": unique("never"), "SecretString": "x", "ClientRequestToken": "0123456789abcdef0123456789abcdef"}).to_string();
    let signer = root(&server);

    // No Authorization at all.
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("{}/", server.endpoint))
        .header("x-amz-target", "secretsmanager.CreateSecret")
        .header("content-type", "application/x-amz-json-1.1")
        .body(Full::new(Bytes::from(body.clone())))
        .unwrap();
    assert_error(&send(req).await, 400, "MissingAuthenticationTokenException");

    // Malformed Authorization.
    let mut req = signer.signed_at("CreateSecret", body.as_bytes(), SystemTime::now(), &[]);
    req.headers_mut().insert(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=garbage".parse().unwrap(),
    );
    assert_error(&send(req).await, 400, "IncompleteSignatureException");

    // Unknown access key.
    let stranger = Raw::new(
        &server.endpoint,
        "AKIAUNKNOWNUNKNOWN00",
        "whatever-secret-whatever",
    );
    assert_error(
        &stranger.call("CreateSecret", &body).await,
        400,
        "UnrecognizedClientException",
    );

    // Wrong secret.
    let wrong = Raw::new(&server.endpoint, ROOT_AKID, "not-the-right-secret-at-all");
    assert_error(
        &wrong.call("CreateSecret", &body).await,
        400,
        "InvalidSignatureException",
    );

    // Body changed after signing.
    let mut req = signer.signed_at("CreateSecret", body.as_bytes(), SystemTime::now(), &[]);
    *req.body_mut() = Full::new(Bytes::from(body.replace("\"x\"", "\"y\"")));
    assert_error(&send(req).await, 400, "InvalidSignatureException");

    // Signed header changed after signing (the operation itself).
    let mut req = signer.signed_at("GetSecretValue", body.as_bytes(), SystemTime::now(), &[]);
    req.headers_mut().insert(
        "x-amz-target",
        "secretsmanager.CreateSecret".parse().unwrap(),
    );
    assert_error(&send(req).await, 400, "InvalidSignatureException");

    // Outside the ±5 minute window, both ways.
    for skew in [-400i64, 400] {
        let t = if skew < 0 {
            SystemTime::now() - Duration::from_secs(400)
        } else {
            SystemTime::now() + Duration::from_secs(400)
        };
        let req = signer.signed_at("CreateSecret", body.as_bytes(), t, &[]);
        let r = send(req).await;
        assert_error(&r, 400, "InvalidSignatureException");
    }
    // Inside the window is fine (read-only call, so the count below stays valid).
    let req = signer.signed_at(
        "ListSecrets",
        b"{}",
        SystemTime::now() - Duration::from_secs(200),
        &[],
    );
    assert_eq!(send(req).await.status, 200);

    // A session token (signed, as the SDKs sign it): we issue none, so none is valid.
    let req = signer.signed_at(
        "CreateSecret",
        body.as_bytes(),
        SystemTime::now(),
        &[("x-amz-security-token", "FwoGZXIvYXdzEXAMPLETOKEN")],
    );
    let r = send(req).await;
    assert_error(&r, 400, "UnrecognizedClientException");
    assert_eq!(
        r.message(),
        "The security token included in the request is invalid."
    );

    // Wrong service in the credential scope.
    let mut req = signer.signed_at("CreateSecret", body.as_bytes(), SystemTime::now(), &[]);
    let auth = req.headers()["authorization"]
        .to_str()
        .unwrap()
        .replace("/secretsmanager/", "/s3/");
    req.headers_mut()
        .insert("authorization", auth.parse().unwrap());
    assert_error(&send(req).await, 400, "InvalidSignatureException");

    assert_eq!(
        count_secrets(&server).await,
        before,
        "a rejected request wrote something"
    );
    let logs = server.logs();
    assert!(
        !logs.contains(ROOT_SECRET),
        "the secret key reached the logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests() {
    let server = TestServer::start(Backend::Sqlite).expect("server");
    let before = count_secrets(&server).await;
    let r = root(&server);
    let token = "0123456789abcdef0123456789abcdef";

    assert_error(
        &r.call("NoSuchOperation", "{}").await,
        400,
        "UnknownOperationException",
    );
    assert_error(
        &r.call("CreateSecret", "{not json").await,
        400,
        "SerializationException",
    );
    assert_error(
        &r.call("CreateSecret", r#"{"Name": 42}"#).await,
        400,
        "SerializationException",
    );
    assert_error(
        &r.call("CreateSecret", "[]").await,
        400,
        "SerializationException",
    );
    assert_error(
        &r.call_json("CreateSecret", json!({})).await,
        400,
        "ValidationException",
    );
    assert_error(
        &r.call_json("GetSecretValue", json!({})).await,
        400,
        "ValidationException",
    );
    assert_error(&r.call_json("CreateSecret", json!({"Name": "bad name with spaces", "SecretString": "x", "ClientRequestToken": token})).await, 400, "ValidationException");
    assert_error(
        &r.call_json("CreateSecret", json!({"Name": "a".repeat(513)}))
            .await,
        400,
        "ValidationException",
    );
    // Oversized value: one byte over the limit.
    let big = "x".repeat(65537);
    let resp = r
        .call_json(
            "CreateSecret",
            json!({"Name": unique("big"), "SecretString": big, "ClientRequestToken": token}),
        )
        .await;
    assert_error(&resp, 400, "ValidationException");
    assert!(!resp.message().contains("xxxxxxxx"), "the value was echoed");
    // Exactly at the limit is accepted (checked below by count + 1).
    let ok_name = unique("limit");
    let at_limit = "y".repeat(65536);
    let ok = r
        .call_json(
            "CreateSecret",
            json!({"Name": ok_name, "SecretString": at_limit, "ClientRequestToken": token}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.raw));
    // Both value kinds, token too short, missing token on a raw request.
    assert_error(&r.call_json("CreateSecret", json!({"Name": unique("both"), "SecretString": "x", "SecretBinary": "eA==", "ClientRequestToken": token})).await, 400, "InvalidParameterException");
    assert_error(
        &r.call_json(
            "CreateSecret",
            json!({"Name": unique("short"), "SecretString": "x", "ClientRequestToken": "short"}),
        )
        .await,
        400,
        "ValidationException",
    );
    assert_error(
        &r.call_json(
            "CreateSecret",
            json!({"Name": unique("notoken"), "SecretString": "x"}),
        )
        .await,
        400,
        "InvalidRequestException",
    );
    assert_error(&r.call_json("CreateSecret", json!({"Name": unique("b64"), "SecretBinary": "!!!not base64", "ClientRequestToken": token})).await, 400, "InvalidParameterException");
    // Bad ranges.
    assert_error(
        &r.call_json("ListSecrets", json!({"MaxResults": 0})).await,
        400,
        "ValidationException",
    );
    assert_error(
        &r.call_json("ListSecrets", json!({"MaxResults": 101})).await,
        400,
        "ValidationException",
    );
    assert_error(
        &r.call_json(
            "ListSecrets",
            json!({"Filters": [{"Key": "bogus", "Values": ["x"]}]}),
        )
        .await,
        400,
        "ValidationException",
    );
    assert_error(
        &r.call_json("GetRandomPassword", json!({"PasswordLength": 5000}))
            .await,
        400,
        "ValidationException",
    );
    assert_error(
        &r.call_json(
            "DeleteSecret",
            json!({"SecretId": ok_name, "RecoveryWindowInDays": 31}),
        )
        .await,
        400,
        "InvalidParameterException",
    );
    assert_error(&r.call_json("DeleteSecret", json!({"SecretId": ok_name, "RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": true})).await, 400, "InvalidParameterException");
    assert_error(
        &r.call_json("BatchGetSecretValue", json!({})).await,
        400,
        "InvalidParameterException",
    );
    // Body larger than the server accepts at all.
    let huge = format!(r#"{{"Name":"{}"}}"#, "z".repeat(400 * 1024));
    let resp = r.call("CreateSecret", &huge).await;
    assert_eq!(resp.status, 413);
    // Not the AWS endpoint.
    let req = http::Request::builder()
        .method("GET")
        .uri(format!("{}/nope", server.endpoint))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(send(req).await.status, 404);

    assert_eq!(
        count_secrets(&server).await,
        before + 1,
        "only the at-limit secret may exist"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_request_ids() {
    let server = TestServer::start(Backend::Sqlite).expect("server");
    for path in ["/healthz", "/readyz"] {
        let req = http::Request::builder()
            .method("GET")
            .uri(format!("{}{path}", server.endpoint))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let r = send(req).await;
        assert_eq!(r.status, 200, "{path}");
    }
    let a = root(&server).call_json("ListSecrets", json!({})).await;
    let b = root(&server).call_json("ListSecrets", json!({})).await;
    assert_eq!(a.headers["content-type"], "application/x-amz-json-1.1");
    assert_ne!(a.headers["x-amzn-requestid"], b.headers["x-amzn-requestid"]);
}

/// A tiny deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random JSON value of bounded depth, mixing the shapes a hostile client might send.
fn random_value(rng: &mut Rng, depth: u32) -> serde_json::Value {
    match rng.below(if depth == 0 { 6 } else { 8 }) {
        0 => serde_json::Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(rng.next() as i64),
        3 => json!(-(rng.below(1 << 40) as f64) / 7.0),
        4 => json!("x".repeat(rng.below(300) as usize)),
        5 => json!("\u{0}\u{1f}\"\\\u{7f}é漢🙂"),
        6 => serde_json::Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "SecretId",
                "Name",
                "SecretString",
                "SecretBinary",
                "VersionStages",
                "Filters",
                "Tags",
                "MaxResults",
                "NextToken",
                "ClientRequestToken",
                "VersionId",
                "VersionStage",
                "RecoveryWindowInDays",
                "ResourcePolicy",
                "SecretIdList",
            ];
            let mut map = serde_json::Map::new();
            for _ in 0..rng.below(5) {
                map.insert(
                    keys[rng.below(keys.len() as u64) as usize].to_string(),
                    random_value(rng, depth - 1),
                );
            }
            serde_json::Value::Object(map)
        }
    }
}

/// Hostile bodies for every operation: no 5xx, no crash, an AWS-shaped error or a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_never_cause_server_errors() {
    let server = TestServer::start(Backend::Sqlite).expect("server");
    let r = root(&server);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let fixed: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"\xff\xfe\x00garbage".to_vec(),
        nested.into_bytes(),
        br#"{"SecretId": {"$ne": null}}"#.to_vec(),
        br#"{"Name": "a", "Name": "b"}"#.to_vec(),
        br#"{"MaxResults": 1e400}"#.to_vec(),
        br#"{"SecretBinary": "====", "Name": "x", "ClientRequestToken": "0123456789abcdef0123456789abcdef"}"#.to_vec(),
    ];
    for op in ragnos_vault::protocol::Operation::ALL {
        let mut bodies = fixed.clone();
        for _ in 0..25 {
            bodies.push(random_value(&mut rng, 3).to_string().into_bytes());
        }
        for body in bodies {
            let req = r.signed_at(op.name(), &body, SystemTime::now(), &[]);
            let reply = send(req).await;
            assert!(
                reply.status == 200 || (400..500).contains(&reply.status),
                "{} answered {} to a hostile body: {}",
                op.name(),
                reply.status,
                String::from_utf8_lossy(&reply.raw)
            );
            if reply.status != 200 {
                assert!(
                    !reply.code().is_empty(),
                    "{}: error without __type",
                    op.name()
                );
            }
        }
    }
    // Still serving.
    let ok = r.call_json("ListSecrets", json!({})).await;
    assert_eq!(ok.status, 200);
}

/// SIGTERM drains and exits cleanly; a request in flight still gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_on_sigterm() {
    let mut server = TestServer::start(Backend::Sqlite).expect("server");
    let r = root(&server).call_json("ListSecrets", json!({})).await;
    assert_eq!(r.status, 200);
    let status = tokio::task::block_in_place(|| server.terminate());
    assert!(status.success(), "exit status {status:?}");
    assert!(server.logs().contains("shut down cleanly"));
}
