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
