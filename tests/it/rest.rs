//! The native REST API `/api/v1`: every route and its errors, on both databases, plus the
//! shared secrets with the AWS API, the OpenAPI document against the route table, and the
//! new-user walkthrough.

use crate::both_backends;
use crate::harness::{ROOT_EMAIL, ROOT_PASSWORD, TestServer, sdk_client};
use crate::raw::{Reply, send};
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::Full;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

/// Characters a path segment keeps literal; `/` stays so names with slashes read naturally.
const PATH_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

fn enc(key: &str) -> String {
    utf8_percent_encode(key, PATH_KEEP).to_string()
}

/// A REST client with an optional bearer token.
#[derive(Clone)]
pub(crate) struct Api {
    endpoint: String,
    token: Option<String>,
}

impl Api {
    fn anonymous(server: &TestServer) -> Api {
        Api {
            endpoint: server.endpoint.clone(),
            token: None,
        }
    }

    fn with_token(&self, token: &str) -> Api {
        Api {
            endpoint: self.endpoint.clone(),
            token: Some(token.to_string()),
        }
    }

    async fn raw(&self, method: &str, path: &str, body: &str) -> Reply {
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.endpoint, path))
            .header("content-type", "application/json")
            .header("user-agent", "rest-it/1.0");
        if let Some(t) = &self.token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        send(
            b.body(Full::new(Bytes::from(body.to_string())))
                .expect("request"),
        )
        .await
    }

    async fn get(&self, path: &str) -> Reply {
        self.raw("GET", path, "").await
    }

    pub(crate) async fn delete(&self, path: &str) -> Reply {
        self.raw("DELETE", path, "").await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Reply {
        self.raw("POST", path, &body.to_string()).await
    }

    async fn put(&self, path: &str, body: Value) -> Reply {
        self.raw("PUT", path, &body.to_string()).await
    }
}

fn err(r: &Reply) -> &str {
    r.json["error"]["code"].as_str().unwrap_or("")
}

#[track_caller]
pub(crate) fn expect(r: &Reply, status: u16) {
    assert_eq!(
        r.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&r.raw)
    );
}

#[track_caller]
fn expect_err(r: &Reply, status: u16, code: &str) {
    expect(r, status);
    assert_eq!(err(r), code, "body: {}", String::from_utf8_lossy(&r.raw));
    assert!(
        r.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

/// Log in; returns the client with its token and the login body.
async fn login(server: &TestServer, email: &str, password: &str) -> (Api, Value) {
    let anon = Api::anonymous(server);
    let r = anon
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await;
    expect(&r, 200);
    let token = r.json["token"].as_str().expect("token").to_string();
    (anon.with_token(&token), r.json)
}

pub(crate) async fn root(server: &TestServer) -> Api {
    login(server, ROOT_EMAIL, ROOT_PASSWORD).await.0
}

/// The claims of a JWT, decoded without verification (the server verifies).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

/// Create a workspace as `api`; returns (workspace id, an admin client for it).
pub(crate) async fn new_workspace(api: &Api, name: &str) -> (String, Api) {
    let r = api.post("/api/v1/workspaces", json!({"name": name})).await;
    expect(&r, 201);
    let id = r.json["id"].as_str().expect("id").to_string();
    let token = r.json["token"]["token"].as_str().expect("token");
    (id, api.with_token(token))
}

pub(crate) fn sdk_code<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: &aws_sdk_secretsmanager::error::SdkError<E, R>,
) -> String {
    match e.as_service_error() {
        Some(s) => s.code().unwrap_or("").to_string(),
        None => format!("not a service error: {e:?}"),
    }
}

fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

// ---------------------------------------------------------------------------- login

async fn login_tokens_and_lockout(server: &TestServer) {
    let anon = Api::anonymous(server);
    let (api, body) = login(server, ROOT_EMAIL, ROOT_PASSWORD).await;
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 900);
    let token = api.token.clone().expect("token");
    let c = claims(&token);
    assert_eq!(c["iss"], "ragnos-vault");
    assert_eq!(c["sub"], body["userId"]);
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 900);
    let default_id = c["aud"][0]
        .as_str()
        .expect("aud is an array of workspace ids");
    assert_eq!(c["aud"].as_array().unwrap().len(), 1);
    assert_eq!(c["workspaces"][default_id]["role"], "admin");
    assert_eq!(c["workspaces"][default_id]["scopes"], json!([]));
    // The header pins HS256.
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");
    // Email is case-insensitive.
    login(server, &ROOT_EMAIL.to_uppercase(), ROOT_PASSWORD).await;

    // Wrong password and unknown email: same status, same body.
    let wrong = anon
        .post(
            "/api/v1/auth/login",
            json!({"email": ROOT_EMAIL, "password": "nope-nope"}),
        )
        .await;
    expect_err(&wrong, 401, "InvalidCredentials");
    let unknown = anon
        .post(
            "/api/v1/auth/login",
            json!({"email": "nobody@example.com", "password": "nope-nope"}),
        )
        .await;
    expect_err(&unknown, 401, "InvalidCredentials");
    assert_eq!(wrong.json, unknown.json);
    // Bad bodies.
    expect_err(
        &anon.raw("POST", "/api/v1/auth/login", "{not json").await,
        400,
        "InvalidJson",
    );
    expect_err(
        &anon.raw("POST", "/api/v1/auth/login", "").await,
        400,
        "InvalidJson",
    );
    expect_err(
        &anon
            .post("/api/v1/auth/login", json!({"email": ROOT_EMAIL}))
            .await,
        400,
        "ValidationError",
    );
    // Tokens: missing, garbage, signed by someone else.
    let ws_path = format!("/api/v1/workspaces/{default_id}");
    let r = anon.get(&ws_path).await;
    expect_err(&r, 401, "MissingToken");
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    expect_err(
        &anon.with_token("garbage").get(&ws_path).await,
        401,
        "InvalidToken",
    );
    let parts: Vec<&str> = token.split('.').collect();
    let forged_claims = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&json!({
            "sub": "someone", "iss": "ragnos-vault", "aud": [default_id],
            "workspaces": {}, "exp": 4_000_000_000u64, "iat": 1
        }))
        .unwrap(),
    );
    let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
    expect_err(
        &anon.with_token(&forged).get(&ws_path).await,
        401,
        "InvalidToken",
    );
    expect(&api.get(&ws_path).await, 200);
    // Unknown routes and wrong methods.
    expect_err(&api.get("/api/v1/nothing-here").await, 404, "UnknownRoute");
    let r = api.raw("PATCH", "/api/v1/workspaces", "{}").await;
    expect_err(&r, 405, "MethodNotAllowed");
    assert!(r.headers["allow"].to_str().unwrap().contains("POST"));

    // Lockout: a user of the default workspace fails five times.
    let r = api
        .post(
            &format!("{ws_path}/members"),
            json!({"email": "bob@example.com", "password": "bob-password-1", "role": "read"}),
        )
        .await;
    expect(&r, 201);
    for _ in 0..4 {
        let r = anon
            .post(
                "/api/v1/auth/login",
                json!({"email": "bob@example.com", "password": "guess"}),
            )
            .await;
        expect_err(&r, 401, "InvalidCredentials");
    }
    let r = anon
        .post(
            "/api/v1/auth/login",
            json!({"email": "bob@example.com", "password": "guess"}),
        )
        .await;
    expect_err(&r, 423, "AccountLocked");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("locked until"),
        "{}",
        r.json
    );
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((800..=900).contains(&retry), "{retry}");
    // Even the right password is refused while locked.
    let r = anon
        .post(
            "/api/v1/auth/login",
            json!({"email": "bob@example.com", "password": "bob-password-1"}),
        )
        .await;
    expect_err(&r, 423, "AccountLocked");
    // Other accounts are unaffected.
    login(server, ROOT_EMAIL, ROOT_PASSWORD).await;

    // The per-address bucket: attempts from one IP are capped (unknown emails never lock).
    let mut limited = None;
    for i in 0..40 {
        let r = anon
            .post(
                "/api/v1/auth/login",
                json!({"email": format!("ghost{i}@example.com"), "password": "x"}),
            )
            .await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        expect_err(&r, 401, "InvalidCredentials");
    }
    let r = limited.expect("the login rate limit never triggered");
    expect_err(&r, 429, "TooManyRequests");
    assert!(r.headers.contains_key("retry-after"));
}
both_backends!(login_tokens_and_lockout);

async fn expired_token(server: &TestServer) {
    let (api, body) = login(server, ROOT_EMAIL, ROOT_PASSWORD).await;
    assert_eq!(body["expiresIn"], 2);
    let c = claims(api.token.as_deref().unwrap());
    let ws = c["aud"][0].as_str().unwrap().to_string();
    expect(&api.get(&format!("/api/v1/workspaces/{ws}")).await, 200);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let r = api.get(&format!("/api/v1/workspaces/{ws}")).await;
    expect_err(&r, 401, "ExpiredToken");
    let r = api.get("/api/v1/workspaces").await;
    expect_err(&r, 401, "ExpiredToken");
    // The refusal is audited like any other request.
    let (fresh, _) = login(server, ROOT_EMAIL, ROOT_PASSWORD).await;
    let r = fresh
        .get(&format!(
            "/api/v1/workspaces/{ws}/audit?action=workspaces.get&outcome=ExpiredToken"
        ))
        .await;
    expect(&r, 200);
    assert_eq!(r.json["events"].as_array().unwrap().len(), 1, "{}", r.json);
}
both_backends!(expired_token, env = [("RAGNOS_JWT_TTL_SECONDS", "2")]);

// ---------------------------------------------------------------------------- workspaces

async fn workspaces_members_and_keys(server: &TestServer) {
    let root = root(server).await;
    let root_claims = claims(root.token.as_deref().unwrap());
    let default_id = root_claims["aud"][0].as_str().unwrap().to_string();
    let root_id = root_claims["sub"].as_str().unwrap().to_string();

    // Create, with validation and duplicates.
    let name = unique_name("acme-");
    let r = root
        .post(
            "/api/v1/workspaces",
            json!({"name": name, "accountId": "123456789012"}),
        )
        .await;
    expect(&r, 201);
    assert_eq!(r.json["accountId"], "123456789012");
    assert_eq!(r.json["role"], "admin");
    let ws = r.json["id"].as_str().unwrap().to_string();
    let admin = root.with_token(r.json["token"]["token"].as_str().unwrap());
    assert!(
        claims(admin.token.as_deref().unwrap())["aud"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == &json!(ws))
    );
    expect_err(
        &root.post("/api/v1/workspaces", json!({"name": name})).await,
        409,
        "Conflict",
    );
    expect_err(
        &root
            .post("/api/v1/workspaces", json!({"name": "bad name!"}))
            .await,
        400,
        "ValidationError",
    );
    expect_err(
        &root
            .post(
                "/api/v1/workspaces",
                json!({"name": unique_name("x"), "accountId": "12"}),
            )
            .await,
        400,
        "ValidationError",
    );
    expect_err(
        &root.raw("POST", "/api/v1/workspaces", "{\"name\":").await,
        400,
        "InvalidJson",
    );

    // List and get: the new token sees both, the old one only what it was issued for.
    let r = admin.get("/api/v1/workspaces").await;
    expect(&r, 200);
    let ids: BTreeSet<String> = r.json["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&ws) && ids.contains(&default_id), "{ids:?}");
    let r = root.get("/api/v1/workspaces").await;
    assert_eq!(r.json["workspaces"].as_array().unwrap().len(), 1);
    let r = admin.get(&format!("/api/v1/workspaces/{ws}")).await;
    expect(&r, 200);
    assert_eq!(r.json["name"], json!(name));
    // The old token does not carry the new workspace: 404, like any stranger.
    expect_err(
        &root.get(&format!("/api/v1/workspaces/{ws}")).await,
        404,
        "NotFound",
    );
    let missing = uuid::Uuid::new_v4();
    expect_err(
        &admin.get(&format!("/api/v1/workspaces/{missing}")).await,
        404,
        "NotFound",
    );

    // Members.
    let members = format!("/api/v1/workspaces/{ws}/members");
    let r = admin
        .post(
            &members,
            json!({"email": "Carol@Example.com", "password": "carol-password", "role": "read"}),
        )
        .await;
    expect(&r, 201);
    assert_eq!(r.json["userCreated"], true);
    assert_eq!(r.json["email"], "carol@example.com");
    let carol_id = r.json["userId"].as_str().unwrap().to_string();
    let r = admin
        .post(
            &members,
            json!({"email": "carol@example.com", "role": "write", "scopes": ["team/"]}),
        )
        .await;
    expect(&r, 200);
    assert_eq!(r.json["userCreated"], false);
    assert_eq!(r.json["role"], "write");
    expect_err(
        &admin
            .post(
                &members,
                json!({"email": "dave@example.com", "role": "read"}),
            )
            .await,
        400,
        "ValidationError",
    );
    expect_err(
        &admin
            .post(
                &members,
                json!({"email": "dave@example.com", "password": "dave-password", "role": "owner"}),
            )
            .await,
        400,
        "ValidationError",
    );
    expect_err(
        &admin
            .post(
                &members,
                json!({"email": "dave@example.com", "password": "short", "role": "read"}),
            )
            .await,
        400,
        "ValidationError",
    );
    expect_err(
        &admin.raw("POST", &members, "{\"email\":").await,
        400,
        "InvalidJson",
    );
    let r = admin.get(&members).await;
    expect(&r, 200);
    let listed: HashMap<String, String> = r.json["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_string(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(listed.get(ROOT_EMAIL).map(String::as_str), Some("admin"));
    assert_eq!(
        listed.get("carol@example.com").map(String::as_str),
        Some("write")
    );
    // Carol logs in and sees the workspace with her role; she may not administer it or
    // create workspaces (she is no admin anywhere).
    let (carol, body) = login(server, "carol@example.com", "carol-password").await;
    assert_eq!(body["workspaces"][&ws]["role"], "write");
    assert_eq!(body["workspaces"][&ws]["scopes"], json!(["team/"]));
    expect(&carol.get(&format!("/api/v1/workspaces/{ws}")).await, 200);
    expect_err(&carol.get(&members).await, 403, "Forbidden");
    expect_err(
        &carol
            .post("/api/v1/workspaces", json!({"name": unique_name("c-")}))
            .await,
        403,
        "Forbidden",
    );
    // The last admin stays.
    expect_err(
        &admin.delete(&format!("{members}/{root_id}")).await,
        409,
        "Conflict",
    );
    expect_err(
        &admin
            .post(&members, json!({"email": ROOT_EMAIL, "role": "read"}))
            .await,
        409,
        "Conflict",
    );
    // Removing Carol applies to her very next request, token or not.
    expect(&admin.delete(&format!("{members}/{carol_id}")).await, 200);
    expect_err(
        &admin.delete(&format!("{members}/{carol_id}")).await,
        404,
        "NotFound",
    );
    expect_err(
        &carol.get(&format!("/api/v1/workspaces/{ws}")).await,
        404,
        "NotFound",
    );

    // Access keys.
    let keys = format!("/api/v1/workspaces/{ws}/access-keys");
    let r = admin.post(&keys, json!({"role": "write"})).await;
    expect(&r, 201);
    let akid = r.json["accessKeyId"].as_str().unwrap().to_string();
    let secret = r.json["secretAccessKey"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 40);
    assert_eq!(r.json["accountId"], "123456789012");
    let r2 = admin
        .post(&keys, json!({"role": "read", "scopes": ["x/"]}))
        .await;
    expect(&r2, 201);
    let akid2 = r2.json["accessKeyId"].as_str().unwrap().to_string();
    let secret2 = r2.json["secretAccessKey"].as_str().unwrap().to_string();
    expect_err(
        &admin.post(&keys, json!({"role": "root"})).await,
        400,
        "ValidationError",
    );
    expect_err(
        &admin
            .post(&keys, json!({"role": "read", "scopes": [""]}))
            .await,
        400,
        "ValidationError",
    );
    let r = admin.get(&keys).await;
    expect(&r, 200);
    let text = String::from_utf8_lossy(&r.raw);
    assert!(text.contains(&akid) && text.contains(&akid2));
    assert!(!text.contains(&secret) && !text.contains(&secret2));
    assert!(!text.contains("secretAccessKey"));
    let sdk = sdk_client(&server.endpoint, &akid, &secret, "us-east-1");
    sdk.create_secret()
        .name("via-sdk")
        .secret_string("v")
        .send()
        .await
        .expect("sdk with a REST-minted key");
    // Revocation applies to the very next call.
    let r = admin.delete(&format!("{keys}/{akid}")).await;
    expect(&r, 200);
    assert_eq!(r.json["accessKeyId"], json!(akid));
    let e = sdk.list_secrets().send().await.unwrap_err();
    assert_eq!(sdk_code(&e), "UnrecognizedClientException");
    expect_err(
        &admin.delete(&format!("{keys}/{akid}")).await,
        404,
        "NotFound",
    );
    expect_err(
        &admin.delete(&format!("{keys}/AKIANOSUCHKEY0000000")).await,
        404,
        "NotFound",
    );
    let r = admin.get(&keys).await;
    let listed = r.json["accessKeys"].as_array().unwrap();
    let revoked = listed
        .iter()
        .find(|k| k["accessKeyId"] == json!(akid))
        .unwrap();
    assert_eq!(revoked["active"], false);
    assert!(revoked["revokedAt"].is_string());
    // A key of another workspace cannot be revoked through this one.
    let r = root
        .post(
            &format!("/api/v1/workspaces/{default_id}/access-keys"),
            json!({"role": "read"}),
        )
        .await;
    expect(&r, 201);
    let other_akid = r.json["accessKeyId"].as_str().unwrap().to_string();
    expect_err(
        &admin.delete(&format!("{keys}/{other_akid}")).await,
        404,
        "NotFound",
    );

    // Delete the workspace: gone for its admin, and its keys stop working at once.
    let sdk2 = sdk_client(&server.endpoint, &akid2, &secret2, "us-east-1");
    sdk2.list_secrets().send().await.expect("key works before");
    let r = admin.delete(&format!("/api/v1/workspaces/{ws}")).await;
    expect(&r, 200);
    expect_err(
        &admin.get(&format!("/api/v1/workspaces/{ws}")).await,
        404,
        "NotFound",
    );
    expect_err(
        &admin.delete(&format!("/api/v1/workspaces/{ws}")).await,
        404,
        "NotFound",
    );
    let e = sdk2.list_secrets().send().await.unwrap_err();
    assert_eq!(sdk_code(&e), "UnrecognizedClientException");
}
both_backends!(workspaces_members_and_keys);

// ---------------------------------------------------------------------------- secrets

async fn secrets_crud(server: &TestServer) {
    let root = root(server).await;
    let (ws, api) = new_workspace(&root, &unique_name("sec-")).await;
    let base = format!("/api/v1/workspaces/{ws}/secrets");

    // Create: string with description and tags.
    let r = api
        .post(
            &base,
            json!({"key": "app/db/password", "value": "s3cr3t-v1", "type": "string",
                   "description": "the db", "tags": ["env=prod", "pci"]}),
        )
        .await;
    expect(&r, 201);
    assert_eq!(r.json["version"], 1);
    assert_eq!(r.json["type"], "string");
    assert_eq!(r.json["key"], "app/db/password");
    let v1 = r.json["versionId"].as_str().unwrap().to_string();
    assert!(
        r.json["id"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:secretsmanager:us-east-1:")
    );
    let r = api.get(&format!("{base}/app/db/password")).await;
    expect(&r, 200);
    assert_eq!(r.json["value"], "s3cr3t-v1");
    assert_eq!(r.json["type"], "string");
    assert_eq!(r.json["version"], 1);
    assert_eq!(r.json["versionId"], json!(v1));
    assert_eq!(r.json["metadata"]["description"], "the db");
    assert_eq!(r.json["metadata"]["tags"], json!(["env=prod", "pci"]));
    assert!(r.json["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(r.json["updatedAt"].is_string());
    // Duplicate key.
    expect_err(
        &api.post(&base, json!({"key": "app/db/password", "value": "x"}))
            .await,
        409,
        "Conflict",
    );

    // json: any JSON value, or a string of JSON text; type defaults from the value.
    let doc = json!({"user": "app", "port": 5432, "tls": [true, null]});
    let r = api
        .post(&base, json!({"key": "app/config", "value": doc}))
        .await;
    expect(&r, 201);
    assert_eq!(r.json["type"], "json");
    let r = api.get(&format!("{base}/app/config")).await;
    assert_eq!(r.json["value"], doc);
    assert_eq!(r.json["type"], "json");
    let r = api
        .post(
            &base,
            json!({"key": "app/text-json", "type": "json", "value": "[1,2,3]"}),
        )
        .await;
    expect(&r, 201);
    assert_eq!(
        api.get(&format!("{base}/app/text-json")).await.json["value"],
        json!([1, 2, 3])
    );
    expect_err(
        &api.post(
            &base,
            json!({"key": "bad-json", "type": "json", "value": "{nope"}),
        )
        .await,
        400,
        "ValidationError",
    );
    expect_err(
        &api.post(
            &base,
            json!({"key": "bad-string", "type": "string", "value": 5}),
        )
        .await,
        400,
        "ValidationError",
    );
    // binary: base64 in and out.
    let blob = STANDARD.encode([0u8, 1, 2, 254, 255]);
    let r = api
        .post(
            &base,
            json!({"key": "app/blob", "type": "binary", "value": blob}),
        )
        .await;
    expect(&r, 201);
    let r = api.get(&format!("{base}/app/blob")).await;
    assert_eq!(r.json["type"], "binary");
    assert_eq!(r.json["value"], json!(blob));
    expect_err(
        &api.post(
            &base,
            json!({"key": "bad-blob", "type": "binary", "value": "***"}),
        )
        .await,
        400,
        "ValidationError",
    );
    // Bad bodies and names.
    expect_err(&api.raw("POST", &base, "{oops").await, 400, "InvalidJson");
    expect_err(
        &api.post(&base, json!({"value": "no key"})).await,
        400,
        "ValidationError",
    );
    expect_err(
        &api.post(&base, json!({"key": "k", "value": "v", "colour": "red"}))
            .await,
        400,
        "ValidationError",
    );
    expect_err(
        &api.post(&base, json!({"key": "bad name!", "value": "v"}))
            .await,
        400,
        "ValidationError",
    );
    expect_err(
        &api.post(&base, json!({"key": "k", "value": "v", "type": "xml"}))
            .await,
        400,
        "ValidationError",
    );

    // Update: a new version; older ones stay readable by number, id and stage.
    let r = api
        .put(
            &format!("{base}/app/db/password"),
            json!({"value": "s3cr3t-v2"}),
        )
        .await;
    expect(&r, 200);
    let v2 = r.json["versionId"].as_str().unwrap().to_string();
    assert_ne!(v1, v2);
    let r = api.get(&format!("{base}/app/db/password")).await;
    assert_eq!(r.json["value"], "s3cr3t-v2");
    assert_eq!(r.json["version"], 2);
    assert_eq!(r.json["stages"], json!(["AWSCURRENT"]));
    // PUT without tags keeps them.
    assert_eq!(r.json["metadata"]["tags"], json!(["env=prod", "pci"]));
    let r = api.get(&format!("{base}/app/db/password?version=1")).await;
    assert_eq!(r.json["value"], "s3cr3t-v1");
    assert_eq!(r.json["versionId"], json!(v1));
    let r = api
        .get(&format!("{base}/app/db/password?versionId={v1}"))
        .await;
    assert_eq!(r.json["version"], 1);
    let r = api
        .get(&format!("{base}/app/db/password?stage=AWSPREVIOUS"))
        .await;
    assert_eq!(r.json["value"], "s3cr3t-v1");
    expect_err(
        &api.get(&format!("{base}/app/db/password?version=9")).await,
        404,
        "NotFound",
    );
    expect_err(
        &api.get(&format!("{base}/app/db/password?version=zero"))
            .await,
        400,
        "ValidationError",
    );
    let r = api.get(&format!("{base}/app/db/password/versions")).await;
    expect(&r, 200);
    let versions = r.json["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 2);
    assert_eq!(versions[0]["versionId"], json!(v2));
    assert_eq!(versions[0]["stages"], json!(["AWSCURRENT"]));
    assert_eq!(versions[1]["version"], 1);
    assert_eq!(versions[1]["stages"], json!(["AWSPREVIOUS"]));
    // PUT can replace tags and description and switch the type.
    let r = api
        .put(
            &format!("{base}/app/db/password"),
            json!({"value": {"pw": "v3"}, "type": "json", "description": "now json",
                   "tags": ["owner=ops"]}),
        )
        .await;
    expect(&r, 200);
    assert_eq!(r.json["type"], "json");
    let r = api.get(&format!("{base}/app/db/password")).await;
    assert_eq!(r.json["value"], json!({"pw": "v3"}));
    assert_eq!(r.json["version"], 3);
    assert_eq!(r.json["metadata"]["description"], "now json");
    assert_eq!(r.json["metadata"]["tags"], json!(["owner=ops"]));
    // A json secret stays json on PUT without a type; non-JSON text is refused.
    expect_err(
        &api.put(
            &format!("{base}/app/db/password"),
            json!({"value": "plain"}),
        )
        .await,
        400,
        "ValidationError",
    );
    expect_err(
        &api.put(&format!("{base}/missing"), json!({"value": "v"}))
            .await,
        404,
        "NotFound",
    );
    expect_err(
        &api.raw("PUT", &format!("{base}/app/blob"), "nope").await,
        400,
        "InvalidJson",
    );

    // Names with slashes, and one ending in /versions (its last slash encoded).
    let r = api
        .post(&base, json!({"key": "svc/versions", "value": "tricky"}))
        .await;
    expect(&r, 201);
    let r = api.get(&format!("{base}/svc%2Fversions")).await;
    expect(&r, 200);
    assert_eq!(r.json["value"], "tricky");
    let r = api.get(&format!("{base}/svc/versions/versions")).await;
    expect(&r, 200);
    assert_eq!(r.json["key"], "svc/versions");
    expect_err(
        &api.get(&format!("{base}/svc/versions")).await,
        404,
        "NotFound",
    );
    let r = api
        .post(&base, json!({"key": "with space+plus@x", "value": "odd"}))
        .await;
    expect_err(&r, 400, "ValidationError");
    let r = api
        .post(&base, json!({"key": "plus+eq=at@dot.", "value": "odd"}))
        .await;
    expect(&r, 201);
    let r = api.get(&format!("{base}/{}", enc("plus+eq=at@dot."))).await;
    assert_eq!(r.json["value"], "odd");

    // Listing: by prefix, paged, no values.
    let r = api.get(&format!("{base}?prefix=app/")).await;
    expect(&r, 200);
    let keys: Vec<&str> = r.json["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        vec!["app/blob", "app/config", "app/db/password", "app/text-json"]
    );
    assert!(!String::from_utf8_lossy(&r.raw).contains("s3cr3t"));
    let first = &r.json["secrets"][0];
    assert_eq!(first["type"], "binary");
    assert!(first["versionId"].is_string());
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}?prefix=app%2F&limit=3&cursor={}", enc(c)),
            None => format!("{base}?prefix=app%2F&limit=3"),
        };
        let r = api.get(&url).await;
        expect(&r, 200);
        for s in r.json["secrets"].as_array().unwrap() {
            paged.push(s["key"].as_str().unwrap().to_string());
        }
        match r.json["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, keys);
    expect_err(
        &api.get(&format!("{base}?limit=0")).await,
        400,
        "ValidationError",
    );
    expect_err(
        &api.get(&format!("{base}?cursor=garbage")).await,
        400,
        "InvalidCursor",
    );

    // Regions are part of a secret's identity, as in AWS.
    let r = api
        .post(
            &format!("{base}?region=eu-west-1"),
            json!({"key": "regional", "value": "eu"}),
        )
        .await;
    expect(&r, 201);
    assert!(r.json["id"].as_str().unwrap().contains(":eu-west-1:"));
    expect_err(&api.get(&format!("{base}/regional")).await, 404, "NotFound");
    let r = api.get(&format!("{base}/regional?region=eu-west-1")).await;
    assert_eq!(r.json["value"], "eu");
    expect_err(
        &api.get(&format!("{base}/regional?region=EU!")).await,
        400,
        "ValidationError",
    );

    // Delete: a 30-day recovery window by default, or at once.
    let r = api.delete(&format!("{base}/app/config")).await;
    expect(&r, 200);
    assert_eq!(r.json["recoverable"], true);
    expect_err(
        &api.get(&format!("{base}/app/config")).await,
        409,
        "InvalidState",
    );
    expect_err(
        &api.post(&base, json!({"key": "app/config", "value": "again"}))
            .await,
        409,
        "InvalidState",
    );
    expect_err(
        &api.delete(&format!("{base}/app/blob?recoveryWindowDays=3"))
            .await,
        400,
        "ValidationError",
    );
    expect(
        &api.delete(&format!("{base}/app/text-json?recoveryWindowDays=7"))
            .await,
        200,
    );
    let r = api.delete(&format!("{base}/app/blob?force=true")).await;
    expect(&r, 200);
    assert_eq!(r.json["recoverable"], false);
    expect_err(&api.get(&format!("{base}/app/blob")).await, 404, "NotFound");
    expect_err(
        &api.delete(&format!("{base}/app/blob?force=true")).await,
        404,
        "NotFound",
    );
    expect_err(&api.get(&format!("{base}/never")).await, 404, "NotFound");
    expect_err(
        &api.get(&format!("{base}/never/versions")).await,
        404,
        "NotFound",
    );

    // Unknown workspace: the same 404 as a workspace the caller is not in.
    let stranger = format!(
        "/api/v1/workspaces/{}/secrets/app/db/password",
        uuid::Uuid::new_v4()
    );
    let a = api.get(&stranger).await;
    expect_err(&a, 404, "NotFound");
    // An outsider: a member of default only.
    let default_id = claims(root.token.as_deref().unwrap())["aud"][0]
        .as_str()
        .unwrap()
        .to_string();
    let r = root
        .post(
            &format!("/api/v1/workspaces/{default_id}/members"),
            json!({"email": "outsider@example.com", "password": "outsider-pw", "role": "admin"}),
        )
        .await;
    expect(&r, 201);
    let (outsider, _) = login(server, "outsider@example.com", "outsider-pw").await;
    let b = outsider.get(&format!("{base}/app/db/password")).await;
    expect_err(&b, 404, "NotFound");
    assert_eq!(a.json, b.json);
}
both_backends!(secrets_crud);

async fn shared_with_aws_api(server: &TestServer) {
    let root = root(server).await;
    let (ws, api) = new_workspace(&root, &unique_name("aws-")).await;
    let base = format!("/api/v1/workspaces/{ws}/secrets");
    let r = api
        .post(
            &format!("/api/v1/workspaces/{ws}/access-keys"),
            json!({"role": "admin"}),
        )
        .await;
    expect(&r, 201);
    let sdk = sdk_client(
        &server.endpoint,
        r.json["accessKeyId"].as_str().unwrap(),
        r.json["secretAccessKey"].as_str().unwrap(),
        "us-east-1",
    );
    // REST → AWS.
    expect(
        &api.post(
            &base,
            json!({"key": "shared/rest", "value": {"a": 1}, "description": "from rest",
                   "tags": ["team=core", "flag"]}),
        )
        .await,
        201,
    );
    let got = sdk
        .get_secret_value()
        .secret_id("shared/rest")
        .send()
        .await
        .expect("sdk reads a REST secret");
    assert_eq!(got.secret_string(), Some(r#"{"a":1}"#));
    let desc = sdk
        .describe_secret()
        .secret_id("shared/rest")
        .send()
        .await
        .unwrap();
    assert_eq!(desc.description(), Some("from rest"));
    let tags: Vec<(String, String)> = desc
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap().to_string(),
                t.value().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        tags,
        vec![
            ("team".into(), "core".into()),
            ("flag".into(), String::new())
        ]
    );
    // AWS → REST: a string, then a new version, then a binary.
    sdk.create_secret()
        .name("shared/aws")
        .secret_string("from-aws-1")
        .send()
        .await
        .unwrap();
    let r = api.get(&format!("{base}/shared/aws")).await;
    expect(&r, 200);
    assert_eq!(r.json["value"], "from-aws-1");
    assert_eq!(r.json["type"], "string");
    sdk.put_secret_value()
        .secret_id("shared/aws")
        .secret_string("from-aws-2")
        .send()
        .await
        .unwrap();
    let r = api.get(&format!("{base}/shared/aws")).await;
    assert_eq!(r.json["value"], "from-aws-2");
    assert_eq!(r.json["version"], 2);
    sdk.create_secret()
        .name("shared/bin")
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(vec![
            9u8, 8, 7,
        ]))
        .send()
        .await
        .unwrap();
    let r = api.get(&format!("{base}/shared/bin")).await;
    assert_eq!(r.json["type"], "binary");
    assert_eq!(r.json["value"], json!(STANDARD.encode([9u8, 8, 7])));
    // A REST update is the AWS current version, and the old one is AWSPREVIOUS.
    expect(
        &api.put(
            &format!("{base}/shared/aws"),
            json!({"value": "from-rest-3"}),
        )
        .await,
        200,
    );
    let got = sdk
        .get_secret_value()
        .secret_id("shared/aws")
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string(), Some("from-rest-3"));
    let prev = sdk
        .get_secret_value()
        .secret_id("shared/aws")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(prev.secret_string(), Some("from-aws-2"));
    // A REST delete is an AWS scheduled deletion.
    expect(&api.delete(&format!("{base}/shared/rest")).await, 200);
    let e = sdk
        .get_secret_value()
        .secret_id("shared/rest")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&e), "InvalidRequestException");
}
both_backends!(shared_with_aws_api);

// ---------------------------------------------------------------------------- permissions

async fn roles_scopes_and_isolation(server: &TestServer) {
    let root = root(server).await;
    let (ws, admin) = new_workspace(&root, &unique_name("perm-")).await;
    let base = format!("/api/v1/workspaces/{ws}/secrets");
    let members = format!("/api/v1/workspaces/{ws}/members");
    for (email, role, scopes) in [
        ("reader@example.com", "read", json!([])),
        ("writer@example.com", "write", json!(["team/"])),
        ("sadmin@example.com", "admin", json!(["team/"])),
    ] {
        let r = admin
            .post(
                &members,
                json!({"email": email, "password": "member-password", "role": role, "scopes": scopes}),
            )
            .await;
        expect(&r, 201);
    }
    expect(
        &admin
            .post(&base, json!({"key": "other/exists", "value": "hidden"}))
            .await,
        201,
    );
    expect(
        &admin
            .post(&base, json!({"key": "team/one", "value": "t1"}))
            .await,
        201,
    );

    // read: read and list only.
    let (reader, _) = login(server, "reader@example.com", "member-password").await;
    expect(&reader.get(&format!("{base}/team/one")).await, 200);
    expect(&reader.get(&base).await, 200);
    expect(&reader.get(&format!("{base}/team/one/versions")).await, 200);
    expect(&reader.get(&format!("/api/v1/workspaces/{ws}")).await, 200);
    for r in [
        reader
            .post(&base, json!({"key": "team/x", "value": "v"}))
            .await,
        reader
            .put(&format!("{base}/team/one"), json!({"value": "v"}))
            .await,
        reader.delete(&format!("{base}/team/one")).await,
        reader.get(&format!("/api/v1/workspaces/{ws}/audit")).await,
        reader.get(&members).await,
        reader
            .post(
                &format!("/api/v1/workspaces/{ws}/access-keys"),
                json!({"role": "read"}),
            )
            .await,
        reader
            .get(&format!("/api/v1/workspaces/{ws}/access-keys"))
            .await,
        reader.delete(&format!("/api/v1/workspaces/{ws}")).await,
    ] {
        expect_err(&r, 403, "Forbidden");
    }
    // A denied write changed nothing.
    assert_eq!(
        admin.get(&format!("{base}/team/one")).await.json["value"],
        "t1"
    );

    // write, scoped to team/: create/read/update inside, nothing outside, no delete.
    let (writer, _) = login(server, "writer@example.com", "member-password").await;
    expect(
        &writer
            .post(&base, json!({"key": "team/two", "value": "t2"}))
            .await,
        201,
    );
    expect(
        &writer
            .put(&format!("{base}/team/two"), json!({"value": "t2b"}))
            .await,
        200,
    );
    expect_err(
        &writer
            .post(&base, json!({"key": "other/new", "value": "v"}))
            .await,
        403,
        "Forbidden",
    );
    // Out of scope is the same 403 whether or not the secret exists.
    let exists = writer.get(&format!("{base}/other/exists")).await;
    let missing = writer.get(&format!("{base}/other/missing")).await;
    expect_err(&exists, 403, "Forbidden");
    assert_eq!(exists.json, missing.json);
    assert!(!String::from_utf8_lossy(&exists.raw).contains("hidden"));
    expect_err(
        &writer.get(&format!("{base}/other/exists/versions")).await,
        403,
        "Forbidden",
    );
    expect_err(
        &writer.delete(&format!("{base}/team/two")).await,
        403,
        "Forbidden",
    );
    let r = writer.get(&base).await;
    let keys: Vec<&str> = r.json["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["team/one", "team/two"]);

    // A scoped admin delegates only inside its scopes and cannot delete the workspace.
    let (sadmin, _) = login(server, "sadmin@example.com", "member-password").await;
    let keys_path = format!("/api/v1/workspaces/{ws}/access-keys");
    expect_err(
        &sadmin.post(&keys_path, json!({"role": "read"})).await,
        403,
        "Forbidden",
    );
    expect_err(
        &sadmin
            .post(&keys_path, json!({"role": "read", "scopes": ["other/"]}))
            .await,
        403,
        "Forbidden",
    );
    expect(
        &sadmin
            .post(&keys_path, json!({"role": "read", "scopes": ["team/a/"]}))
            .await,
        201,
    );
    expect_err(
        &sadmin
            .post(
                &members,
                json!({"email": "reader@example.com", "role": "admin"}),
            )
            .await,
        403,
        "Forbidden",
    );
    expect_err(
        &sadmin.delete(&format!("/api/v1/workspaces/{ws}")).await,
        403,
        "Forbidden",
    );
    expect(
        &sadmin.get(&format!("/api/v1/workspaces/{ws}/audit")).await,
        200,
    );

    // A stranger (admin of another workspace only) learns nothing: every route of this
    // workspace is the same 404 as for a workspace that does not exist.
    let default_id = claims(root.token.as_deref().unwrap())["aud"][0]
        .as_str()
        .unwrap()
        .to_string();
    let r = root
        .post(
            &format!("/api/v1/workspaces/{default_id}/members"),
            json!({"email": "stranger@example.com", "password": "stranger-password", "role": "admin"}),
        )
        .await;
    expect(&r, 201);
    let (stranger, _) = login(server, "stranger@example.com", "stranger-password").await;
    let nowhere = uuid::Uuid::new_v4().to_string();
    for (method, suffix) in [
        ("GET", ""),
        ("DELETE", ""),
        ("GET", "/members"),
        ("GET", "/access-keys"),
        ("GET", "/audit"),
        ("GET", "/secrets"),
        ("GET", "/secrets/other/exists"),
        ("GET", "/secrets/other/exists/versions"),
        ("DELETE", "/secrets/other/exists"),
    ] {
        let real = stranger
            .raw(method, &format!("/api/v1/workspaces/{ws}{suffix}"), "")
            .await;
        let fake = stranger
            .raw(method, &format!("/api/v1/workspaces/{nowhere}{suffix}"), "")
            .await;
        expect_err(&real, 404, "NotFound");
        assert_eq!(real.json, fake.json, "{method} {suffix}");
    }
    let real = stranger
        .post(&base, json!({"key": "other/exists", "value": "x"}))
        .await;
    expect_err(&real, 404, "NotFound");
    assert_eq!(
        admin.get(&format!("{base}/other/exists")).await.json["value"],
        "hidden"
    );
}
both_backends!(roles_scopes_and_isolation);

// ---------------------------------------------------------------------------- audit

async fn audit_rows_and_paging(server: &TestServer) {
    let root = root(server).await;
    let (ws, api) = new_workspace(&root, &unique_name("aud-")).await;
    let anon = Api::anonymous(server);
    let base = format!("/api/v1/workspaces/{ws}/secrets");
    let audit = format!("/api/v1/workspaces/{ws}/audit");
    // A scripted session; every response's request id must appear exactly once.
    let mut session: Vec<(String, &str, &str)> = Vec::new();
    let mut record = |r: &Reply, action: &'static str, outcome: &'static str| {
        session.push((
            r.headers["x-amzn-requestid"].to_str().unwrap().to_string(),
            action,
            outcome,
        ));
    };
    let r = api
        .post(
            &base,
            json!({"key": "audited", "value": "value-never-in-audit"}),
        )
        .await;
    record(&r, "secrets.create", "success");
    let r = api.get(&format!("{base}/audited")).await;
    record(&r, "secrets.get", "success");
    let r = api
        .put(
            &format!("{base}/audited"),
            json!({"value": "value-never-in-audit-2"}),
        )
        .await;
    record(&r, "secrets.update", "success");
    let r = api
        .post(&base, json!({"key": "audited", "value": "dup"}))
        .await;
    record(&r, "secrets.create", "Conflict");
    let r = api.raw("POST", &base, "{bad").await;
    record(&r, "secrets.create", "InvalidJson");
    let r = api.get(&format!("{base}/nope")).await;
    record(&r, "secrets.get", "NotFound");
    let r = anon.get(&base).await;
    record(&r, "secrets.list", "MissingToken");
    let r = anon
        .with_token("bogus")
        .get(&format!("{base}/audited"))
        .await;
    record(&r, "secrets.get", "InvalidToken");
    let r = api.delete(&format!("{base}/audited?force=true")).await;
    record(&r, "secrets.delete", "success");
    // Right before the query: on SQLite this row is durable in the audit journal, and the
    // query waits for the copy into the log.
    let r = api.get(&format!("{base}/never-created")).await;
    record(&r, "secrets.get", "NotFound");

    let r = api.get(&format!("{audit}?limit=1000")).await;
    expect(&r, 200);
    let events = r.json["events"].as_array().unwrap().clone();
    let text = String::from_utf8_lossy(&r.raw).to_string();
    assert!(
        !text.contains("value-never-in-audit"),
        "a value reached the audit log"
    );
    for (request_id, action, outcome) in &session {
        let hits: Vec<&Value> = events
            .iter()
            .filter(|e| e["requestId"] == json!(request_id))
            .collect();
        assert_eq!(hits.len(), 1, "{action} {outcome}: {hits:?}");
        assert_eq!(hits[0]["action"], json!(action));
        assert_eq!(hits[0]["outcome"], json!(outcome));
        assert_eq!(hits[0]["api"], "rest");
        assert_eq!(hits[0]["userAgent"], "rest-it/1.0");
        assert!(hits[0]["sourceIp"].is_string());
    }
    let create = events
        .iter()
        .find(|e| e["action"] == "secrets.create" && e["outcome"] == "success")
        .unwrap();
    assert_eq!(create["status"], 201);
    assert_eq!(create["resourceType"], "secret");
    assert_eq!(create["resourceId"], "audited");
    let user = claims(api.token.as_deref().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(create["principal"], json!(format!("user:{user}")));
    let anonymous = events
        .iter()
        .find(|e| e["outcome"] == "MissingToken")
        .unwrap();
    assert_eq!(anonymous["principal"], "anonymous");
    // Newest first.
    let times: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);

    // Filters.
    let r = api
        .get(&format!("{audit}?action=secrets.create&outcome=Conflict"))
        .await;
    assert_eq!(r.json["events"].as_array().unwrap().len(), 1);
    let r = api
        .get(&format!(
            "{audit}?principal=user:{user}&resource=audited&action=secrets.get"
        ))
        .await;
    assert_eq!(r.json["events"].as_array().unwrap().len(), 1);
    let r = api.get(&format!("{audit}?from=2999-01-01T00:00:00Z")).await;
    expect(&r, 200);
    assert!(r.json["events"].as_array().unwrap().is_empty());
    let r = api.get(&format!("{audit}?to=1000")).await;
    assert!(r.json["events"].as_array().unwrap().is_empty());
    let r = api
        .get(&format!(
            "{audit}?from=2000-01-01T00:00:00%2B02:00&limit=1000"
        ))
        .await;
    expect(&r, 200);
    assert!(r.json["events"].as_array().unwrap().len() >= session.len());
    expect_err(
        &api.get(&format!("{audit}?from=yesterday")).await,
        400,
        "ValidationError",
    );
    expect_err(
        &api.get(&format!("{audit}?cursor=zzz")).await,
        400,
        "InvalidCursor",
    );
    expect_err(
        &api.get(&format!("{audit}?limit=5000")).await,
        400,
        "ValidationError",
    );

    // Paging with a cursor: every row once, in order.
    let all = api.get(&format!("{audit}?limit=1000")).await.json["events"]
        .as_array()
        .unwrap()
        .clone();
    let mut paged: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{audit}?limit=4&cursor={c}"),
            None => format!("{audit}?limit=4"),
        };
        let r = api.get(&url).await;
        expect(&r, 200);
        paged.extend(r.json["events"].as_array().unwrap().iter().cloned());
        match r.json["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    // Each page's own request lands in the log too, after `all` was read. It can share the
    // millisecond of `all`'s newest row and then sort among `all`'s rows (ids break the
    // tie), so the rows newer than `all` are left out before comparing.
    let ids = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    let all_ids = ids(&all);
    let paged_ids: Vec<String> = ids(&paged)
        .into_iter()
        .filter(|id| all_ids.contains(id))
        .collect();
    assert_eq!(paged_ids, all_ids);
}
both_backends!(audit_rows_and_paging);

// ---------------------------------------------------------------------------- OpenAPI

async fn openapi_matches_routes(server: &TestServer) {
    use ragnos_vault::rest::routes::{Guard, ROUTES};
    let anon = Api::anonymous(server);
    let r = anon.get("/api/v1/openapi.json").await;
    expect(&r, 200);
    let doc: Value = serde_json::from_slice(&r.raw).expect("the document is JSON");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            documented.insert((method.to_uppercase(), path.clone()));
            assert!(op["operationId"].is_string());
            assert!(op["responses"].as_object().unwrap().len() >= 2);
        }
    }
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(documented, routed);
    for needed in [
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/workspaces"),
        ("GET", "/api/v1/workspaces"),
        ("GET", "/api/v1/workspaces/{id}"),
        ("DELETE", "/api/v1/workspaces/{id}"),
        ("GET", "/api/v1/workspaces/{id}/members"),
        ("POST", "/api/v1/workspaces/{id}/members"),
        ("DELETE", "/api/v1/workspaces/{id}/members/{userId}"),
        ("GET", "/api/v1/workspaces/{id}/access-keys"),
        ("POST", "/api/v1/workspaces/{id}/access-keys"),
        (
            "DELETE",
            "/api/v1/workspaces/{id}/access-keys/{accessKeyId}",
        ),
        ("POST", "/api/v1/workspaces/{id}/secrets"),
        ("GET", "/api/v1/workspaces/{id}/secrets"),
        ("GET", "/api/v1/workspaces/{id}/secrets/{key}"),
        ("PUT", "/api/v1/workspaces/{id}/secrets/{key}"),
        ("DELETE", "/api/v1/workspaces/{id}/secrets/{key}"),
        ("GET", "/api/v1/workspaces/{id}/secrets/{key}/versions"),
        ("GET", "/api/v1/workspaces/{id}/audit"),
        ("GET", "/api/v1/openapi.json"),
    ] {
        assert!(
            documented.contains(&(needed.0.to_string(), needed.1.to_string())),
            "{needed:?} missing"
        );
    }
    // The router serves every documented route: without a token each protected route is a
    // 401 (not UnknownRoute or 405), and the public ones answer.
    for route in ROUTES {
        let path = route
            .path
            .replace("{id}", &uuid::Uuid::new_v4().to_string())
            .replace("{key}", "some/key")
            .replace("{userId}", "u-1")
            .replace("{accessKeyId}", "AKIAEXAMPLE000000000");
        let r = anon.raw(route.method, &path, "").await;
        match route.guard {
            Guard::Public if route.method == "GET" => expect(&r, 200),
            Guard::Public => expect_err(&r, 400, "InvalidJson"),
            _ => expect_err(&r, 401, "MissingToken"),
        }
    }
}
both_backends!(openapi_matches_routes);

// ---------------------------------------------------------------------------- walkthrough

/// The README walkthrough: log in, create a workspace, add a member, mint a read-only
/// scoped key, and watch an AWS SDK call with it succeed and fail in the audit log.
async fn new_user_walkthrough(server: &TestServer) {
    let (root, _) = login(server, ROOT_EMAIL, ROOT_PASSWORD).await;
    let (ws, admin) = new_workspace(&root, &unique_name("team-")).await;
    let r = admin
        .post(
            &format!("/api/v1/workspaces/{ws}/members"),
            json!({"email": "alice@example.com", "password": "alice-password", "role": "write"}),
        )
        .await;
    expect(&r, 201);
    let alice_id = r.json["userId"].as_str().unwrap().to_string();
    let (alice, _) = login(server, "alice@example.com", "alice-password").await;
    let base = format!("/api/v1/workspaces/{ws}/secrets");
    expect(
        &alice
            .post(
                &base,
                json!({"key": "app/db", "value": {"password": "pa55-in-scope"}}),
            )
            .await,
        201,
    );
    expect(
        &alice
            .post(
                &base,
                json!({"key": "billing/stripe", "value": "sk-out-of-scope"}),
            )
            .await,
        201,
    );
    let r = admin
        .post(
            &format!("/api/v1/workspaces/{ws}/access-keys"),
            json!({"role": "read", "scopes": ["app/"]}),
        )
        .await;
    expect(&r, 201);
    let akid = r.json["accessKeyId"].as_str().unwrap().to_string();
    let sdk = sdk_client(
        &server.endpoint,
        &akid,
        r.json["secretAccessKey"].as_str().unwrap(),
        "us-east-1",
    );
    let ok = sdk
        .get_secret_value()
        .secret_id("app/db")
        .send()
        .await
        .expect("in scope");
    assert_eq!(ok.secret_string(), Some(r#"{"password":"pa55-in-scope"}"#));
    let denied = sdk
        .get_secret_value()
        .secret_id("billing/stripe")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&denied), "AccessDeniedException");
    let denied_write = sdk
        .put_secret_value()
        .secret_id("app/db")
        .secret_string("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&denied_write), "AccessDeniedException");

    let r = admin
        .get(&format!(
            "/api/v1/workspaces/{ws}/audit?principal=key:{akid}&action=GetSecretValue"
        ))
        .await;
    expect(&r, 200);
    let events = r.json["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{}", r.json);
    // Newest first: the denial, then the success.
    assert_eq!(events[0]["outcome"], "AccessDeniedException");
    assert_eq!(events[0]["resourceId"], "billing/stripe");
    assert_eq!(events[0]["api"], "aws");
    assert_eq!(events[0]["accessKeyId"], json!(akid));
    assert_eq!(events[1]["outcome"], "success");
    assert_eq!(events[1]["resourceId"], "app/db");
    let text = String::from_utf8_lossy(&r.raw);
    assert!(!text.contains("pa55-in-scope") && !text.contains("sk-out-of-scope"));
    // Alice's REST writes are in the same log under her user.
    let r = admin
        .get(&format!(
            "/api/v1/workspaces/{ws}/audit?principal=user:{alice_id}&action=secrets.create"
        ))
        .await;
    assert_eq!(r.json["events"].as_array().unwrap().len(), 2);
    // A write member may not read the audit log.
    expect_err(
        &alice.get(&format!("/api/v1/workspaces/{ws}/audit")).await,
        403,
        "Forbidden",
    );
}
both_backends!(new_user_walkthrough);

// ---------------------------------------------------------------------------- first start

/// `RAGNOS_ROOT_EMAIL`/`RAGNOS_ROOT_PASSWORD` also add the root user to a deployment
/// whose `default` workspace already exists, and never reset an existing user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_user_joins_an_existing_deployment() {
    use crate::harness::Backend;
    let server =
        TestServer::start_with_env(Backend::Sqlite, &[("RAGNOS_ROOT_EMAIL", "")]).expect("server");
    let anon = Api::anonymous(&server);
    let r = anon
        .post(
            "/api/v1/auth/login",
            json!({"email": ROOT_EMAIL, "password": ROOT_PASSWORD}),
        )
        .await;
    expect_err(&r, 401, "InvalidCredentials");
    let server = server.restart_with_env(&[]);
    let (_, body) = login(&server, ROOT_EMAIL, ROOT_PASSWORD).await;
    let grants = body["workspaces"].as_object().unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants.values().next().unwrap()["role"], "admin");
    // A later start with another password leaves the existing user alone.
    let server = server.restart_with_env(&[("RAGNOS_ROOT_PASSWORD", "another-password")]);
    login(&server, ROOT_EMAIL, ROOT_PASSWORD).await;
}

/// With the audit table unwritable, REST reads answer 500 without the value, writes are
/// not applied, and a freshly minted access key is revoked rather than handed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_audit_fails_closed() {
    use crate::harness::Backend;
    let Some(server) = TestServer::start(Backend::Postgres) else {
        return;
    };
    let root = root(&server).await;
    let ws = claims(root.token.as_deref().unwrap())["aud"][0]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("/api/v1/workspaces/{ws}/secrets");
    let value = format!("REST-FAIL-CLOSED-{}", uuid::Uuid::new_v4().simple());
    expect(
        &root
            .post(&base, json!({"key": "closed", "value": value}))
            .await,
        201,
    );
    let grant = |sql: &str| {
        let ok = std::process::Command::new("psql")
            .args([
                server.database_url.as_str(),
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                sql,
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "{sql}");
    };
    grant("REVOKE INSERT ON audit_log FROM ragnos_app");
    let r = root.get(&format!("{base}/closed")).await;
    expect_err(&r, 500, "InternalError");
    assert!(!String::from_utf8_lossy(&r.raw).contains(&value));
    let r = root
        .put(&format!("{base}/closed"), json!({"value": "not-applied"}))
        .await;
    expect_err(&r, 500, "InternalError");
    let r = root
        .post(
            &format!("/api/v1/workspaces/{ws}/access-keys"),
            json!({"role": "admin"}),
        )
        .await;
    expect_err(&r, 500, "InternalError");
    assert!(!String::from_utf8_lossy(&r.raw).contains("secretAccessKey"));
    grant("GRANT INSERT ON audit_log TO ragnos_app");
    let r = root.get(&format!("{base}/closed")).await;
    expect(&r, 200);
    assert_eq!(r.json["value"], json!(value));
    assert_eq!(
        r.json["version"], 1,
        "the failed PUT must not have been applied"
    );
    let r = root
        .get(&format!("/api/v1/workspaces/{ws}/access-keys"))
        .await;
    let active: Vec<&Value> = r.json["accessKeys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["active"] == true)
        .collect();
    assert_eq!(active.len(), 1, "only the root key is active: {}", r.json);
}
