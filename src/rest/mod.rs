//! The native admin REST API under `/api/v1`: JSON in and out, bearer JWTs, one audit row
//! per request.
//!
//! A request flows `route → read body → authenticate → resolve workspace → permission →
//! handler → audit`. The route table in [`routes`] is the single list of endpoints; the
//! OpenAPI document ([`openapi`]) is generated from it.
//!
//! Decisions:
//! - **Who may act in a workspace.** The token's `aud` must list the workspace *and* the
//!   user must still be a member in the database; the role and scopes come from the
//!   database. Removing a member or downgrading a role therefore applies to the next
//!   request, not at token expiry. A caller who is not a member gets the same `404
//!   NotFound` whether or not the workspace exists; inside a workspace a missing
//!   permission is `403 Forbidden`. Secret routes check the caller's scopes on the name
//!   before looking the secret up, so an out-of-scope name is `403` whether or not it
//!   exists.
//! - **Creating workspaces.** Any user who is an admin of at least one workspace may
//!   create one and becomes its admin; the response carries a fresh token that includes
//!   it. Users only exist because an admin added them, so there is no self-service path
//!   to unlimited workspaces.
//! - **Delegation.** A scoped admin can only grant scopes inside its own (no unscoped
//!   keys or members), and only an unscoped admin may delete the workspace.
//! - **Audit.** Every request, unknown routes and failed logins included, writes exactly
//!   one row (`api = rest`, action = the route name). A secret mutation commits its row in
//!   its own transaction; everything else goes through the group-commit writer before the
//!   response leaves. If the row cannot be written the answer is a 500 with no secret in
//!   it. Rows of a workspace route are filed under that workspace when it exists, so its
//!   admins see attempts by outsiders too.

pub mod jwt;
pub mod login;
pub mod migrate;
pub mod openapi;
pub mod routes;
mod secrets;

use crate::admin::{self, AdminError};
use crate::audit::{AuditContext, AuditWriter};
use crate::auth::{Access, Keyring, Role};
use crate::crypto::MasterKey;
use crate::engine::{Engine, EngineError, Scope, Tenant};
use crate::store::{AuditFilter, AuditRow, Db, MembershipRow, StoreError, UserRow};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Limited};
use jwt::{Claims, JwtKeys, TokenError, WorkspaceGrant};
use routes::{Guard, Matched, PathParams, Route, RouteId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use zeroize::Zeroizing;

/// Path prefix of every REST route.
pub const PREFIX: &str = "/api/v1";
/// Login attempts one source IP may make at once.
pub const LOGIN_BURST: u32 = 20;
/// Login attempts per second one source IP regains.
pub const LOGIN_REFILL_PER_SECOND: f64 = 0.5;
/// Region used when a secret route names none.
pub const DEFAULT_REGION: &str = "us-east-1";

/// REST settings from the environment.
#[derive(Debug, Clone)]
pub struct RestConfig {
    /// Token lifetime (`RAGNOS_JWT_TTL_SECONDS`, default 900).
    pub jwt_ttl_seconds: u64,
}

impl RestConfig {
    /// Read `RAGNOS_JWT_TTL_SECONDS`.
    pub fn from_env() -> RestConfig {
        let jwt_ttl_seconds = std::env::var("RAGNOS_JWT_TTL_SECONDS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(jwt::DEFAULT_TTL_SECONDS);
        RestConfig { jwt_ttl_seconds }
    }
}

/// An error answered as `{"error": {"code", "message"}}`.
#[derive(Debug, Clone)]
pub struct RestError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (also the audit outcome).
    pub code: &'static str,
    /// Human message; never holds a secret value.
    pub message: String,
    /// `Allow` header for 405.
    pub allow: Option<String>,
    /// `Retry-After` seconds for 423 and 429.
    pub retry_after: Option<u64>,
}

impl RestError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> RestError {
        RestError {
            status,
            code,
            message: message.into(),
            allow: None,
            retry_after: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> RestError {
        Self::new(StatusCode::BAD_REQUEST, "ValidationError", message)
    }

    fn forbidden(message: impl Into<String>) -> RestError {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }

    fn not_found(message: impl Into<String>) -> RestError {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    fn conflict(message: impl Into<String>) -> RestError {
        Self::new(StatusCode::CONFLICT, "Conflict", message)
    }

    fn workspace_not_found() -> RestError {
        Self::not_found("The workspace was not found.")
    }

    /// A 500; details go to the log, never to the client.
    pub fn internal() -> RestError {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "An error occurred on the server side.",
        )
    }

    fn body(&self) -> Bytes {
        Bytes::from(
            serde_json::to_vec(
                &serde_json::json!({"error": {"code": self.code, "message": self.message}}),
            )
            .unwrap_or_default(),
        )
    }
}

impl From<StoreError> for RestError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        RestError::internal()
    }
}

impl From<EngineError> for RestError {
    fn from(e: EngineError) -> Self {
        let (status, code) = match &e {
            EngineError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            EngineError::Exists(_) => (StatusCode::CONFLICT, "Conflict"),
            EngineError::InvalidRequest(_) => (StatusCode::CONFLICT, "InvalidState"),
            EngineError::InvalidNextToken(_) => (StatusCode::BAD_REQUEST, "InvalidCursor"),
            EngineError::InvalidParameter(_)
            | EngineError::Validation(_)
            | EngineError::MalformedPolicy(_)
            | EngineError::PublicPolicy(_) => (StatusCode::BAD_REQUEST, "ValidationError"),
            EngineError::LimitExceeded(_) => (StatusCode::BAD_REQUEST, "LimitExceeded"),
            EngineError::AccessDenied(_) => (StatusCode::FORBIDDEN, "Forbidden"),
            EngineError::Decryption => {
                tracing::error!("stored value failed to decrypt");
                return RestError::internal();
            }
            EngineError::Store(inner) => {
                tracing::error!(error = %inner, "store failure");
                return RestError::internal();
            }
        };
        RestError::new(status, code, e.to_string())
    }
}

impl From<AdminError> for RestError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(m) => RestError::bad_request(m),
            AdminError::Exists(m) => RestError::conflict(format!("{m} already exists.")),
            AdminError::NotFound(m) => RestError::not_found(format!("{m} not found.")),
            AdminError::Store(s) => s.into(),
        }
    }
}

/// A successful answer.
pub(crate) struct Reply {
    status: StatusCode,
    body: Vec<u8>,
}

impl Reply {
    fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Reply, RestError> {
        let body = serde_json::to_vec(value).map_err(|_| RestError::internal())?;
        Ok(Reply { status, body })
    }
}

/// What one REST request produced, ready for the HTTP layer.
pub struct RestResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body.
    pub body: Bytes,
    /// Route name (for logs), `unknown` when nothing matched.
    pub route: &'static str,
    /// Error code for errors.
    pub error_code: Option<&'static str>,
    /// Extra headers (`Allow`, `Retry-After`, `WWW-Authenticate`).
    pub headers: Vec<(&'static str, String)>,
}

/// The authenticated user of one request.
struct User {
    id: String,
    claims: Claims,
}

/// The caller's membership in the path's workspace.
struct Member {
    tenant: Arc<Tenant>,
    access: Access,
}

/// The state of one request while it is served.
struct Call {
    route: Option<&'static Route>,
    params: PathParams,
    query: Vec<(String, String)>,
    /// The audit row, filled in as the request is understood.
    row: AuditRow,
    /// A mutation already committed the row.
    written: bool,
    now: SystemTime,
    peer: Option<SocketAddr>,
    headers: HeaderMap,
}

impl Call {
    fn now_ms(&self) -> i64 {
        crate::protocol::now_ms(self.now)
    }

    fn now_secs(&self) -> u64 {
        self.now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn workspace_id(&self) -> Result<&str, RestError> {
        self.params
            .workspace_id
            .as_deref()
            .ok_or_else(RestError::workspace_not_found)
    }

    /// The region a secret route works in.
    fn region(&self) -> Result<String, RestError> {
        let region = self.query("region").unwrap_or(DEFAULT_REGION);
        if region.is_empty()
            || region.len() > 32
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(RestError::bad_request(
                "region must be 1-32 characters of a-z 0-9 -, e.g. us-east-1.",
            ));
        }
        Ok(region.to_string())
    }

    /// A scope for engine calls; a mutation commits this request's audit row with it.
    fn scope(&self, member: &Member, region: String) -> Scope {
        let mut row = self.row.clone();
        row.status = self.route.map(|r| i32::from(r.status)).unwrap_or(200);
        Scope {
            tenant: member.tenant.clone(),
            region,
            access: member.access.clone(),
            audit: Some(AuditContext::new(row)),
        }
    }

    /// Note whether an engine mutation committed the audit row.
    fn settle(&mut self, scope: &Scope) {
        if scope.audit.as_ref().is_some_and(|a| a.is_written()) {
            self.written = true;
        }
    }
}

/// Split and percent-decode a query string (`+` is a space, as in forms).
fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

/// Parse a JSON body into `T`. serde's messages for type errors can quote the offending
/// value (which may be a secret), so only missing/unknown-member messages are passed on.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, RestError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(RestError::new(
            StatusCode::BAD_REQUEST,
            "InvalidJson",
            "This request needs a JSON body.",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            return RestError::new(
                StatusCode::BAD_REQUEST,
                "InvalidJson",
                "The request body is not valid JSON.",
            );
        }
        let msg = e.to_string();
        let msg = msg.split(" at line").next().unwrap_or("");
        if msg.starts_with("missing field") || msg.starts_with("unknown field") {
            RestError::bad_request(format!("Invalid request body: {msg}."))
        } else {
            RestError::bad_request(
                "Invalid request body: a member has the wrong type or an invalid value.",
            )
        }
    })
}

/// RFC 3339 UTC text of epoch milliseconds, always with three fractional digits so the
/// strings sort like the times they name.
pub fn rfc3339(ms: i64) -> String {
    use aws_sdk_secretsmanager::primitives::{DateTime, DateTimeFormat};
    let whole = DateTime::from_secs(ms.div_euclid(1000))
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_default();
    format!(
        "{}.{:03}Z",
        whole.trim_end_matches('Z'),
        ms.rem_euclid(1000)
    )
}

/// Parse a time as epoch milliseconds (all digits) or RFC 3339 (offsets allowed).
fn parse_time(name: &str, text: &str) -> Result<i64, RestError> {
    use aws_sdk_secretsmanager::primitives::{DateTime, DateTimeFormat};
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .map_err(|_| RestError::bad_request(format!("{name} is out of range.")));
    }
    DateTime::from_str(text, DateTimeFormat::DateTimeWithOffset)
        .ok()
        .and_then(|d| d.to_millis().ok())
        .ok_or_else(|| {
            RestError::bad_request(format!(
                "{name} must be RFC 3339 (2026-01-31T12:00:00Z) or epoch milliseconds."
            ))
        })
}

fn parse_limit(call: &Call, default: i64, max: i64) -> Result<i64, RestError> {
    match call.query("limit") {
        None => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(RestError::bad_request(format!(
                "limit must be an integer from 1 to {max}."
            ))),
        },
    }
}

fn parse_role(role: &str) -> Result<Role, RestError> {
    Role::parse(role)
        .ok_or_else(|| RestError::bad_request("role must be one of admin, write, read."))
}

fn check_scopes(scopes: &[String]) -> Result<(), RestError> {
    if scopes.len() > 20 || scopes.iter().any(|s| s.is_empty() || s.len() > 512) {
        return Err(RestError::bad_request(
            "scopes must be at most 20 non-empty secret-name prefixes of at most 512 characters.",
        ));
    }
    Ok(())
}

fn scopes_of(row: &MembershipRow) -> Vec<String> {
    serde_json::from_str(&row.scopes).unwrap_or_default()
}

fn normalize_email(email: &str) -> Result<String, RestError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid {
        return Err(RestError::bad_request(
            "email must be an address like name@example.com.",
        ));
    }
    Ok(email)
}

fn check_new_password(password: &str) -> Result<(), RestError> {
    let n = password.chars().count();
    if n < login::MIN_PASSWORD_LEN || password.len() > login::MAX_PASSWORD_LEN {
        return Err(RestError::bad_request(format!(
            "password must be {} to {} characters.",
            login::MIN_PASSWORD_LEN,
            login::MAX_PASSWORD_LEN
        )));
    }
    Ok(())
}

/// The native REST API.
pub struct Rest {
    engine: Engine,
    keyring: Arc<Keyring>,
    audit: AuditWriter,
    master: Arc<MasterKey>,
    jwt: JwtKeys,
    limiter: login::IpLimiter,
    dummy_hash: String,
    openapi: Bytes,
    jobs: migrate::Jobs,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateWorkspaceBody {
    name: String,
    account_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddMemberBody {
    email: String,
    password: Option<String>,
    role: String,
    #[serde(default)]
    scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKeyBody {
    role: String,
    #[serde(default)]
    scopes: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccessKeyCreated<'a> {
    access_key_id: &'a str,
    #[serde(serialize_with = "crate::engine::types::sensitive")]
    secret_access_key: &'a Zeroizing<String>,
    workspace_id: &'a str,
    account_id: &'a str,
    role: &'a str,
    scopes: &'a [String],
    created_at: String,
}

impl Rest {
    /// The REST API over the same engine, keyring and audit writer as the AWS endpoint.
    pub fn new(
        engine: Engine,
        keyring: Arc<Keyring>,
        audit: AuditWriter,
        master: Arc<MasterKey>,
        config: &RestConfig,
    ) -> Result<Rest, String> {
        let jwt = JwtKeys::from_master(&master, config.jwt_ttl_seconds)?;
        let openapi = Bytes::from(
            serde_json::to_vec_pretty(&openapi::document()).map_err(|e| e.to_string())?,
        );
        Ok(Rest {
            engine,
            keyring,
            audit,
            master,
            jwt,
            limiter: login::IpLimiter::new(LOGIN_BURST, LOGIN_REFILL_PER_SECOND),
            dummy_hash: login::dummy_hash(),
            openapi,
            jobs: migrate::Jobs::default(),
        })
    }

    fn db(&self) -> &Db {
        self.engine.db()
    }

    /// Serve one request under `/api/v1`, audited, fail-closed.
    pub async fn handle<B>(
        &self,
        parts: &http::request::Parts,
        body: B,
        request_id: &str,
        peer: Option<SocketAddr>,
        now: SystemTime,
    ) -> RestResponse
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let user_agent = parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| crate::engine::validate::char_prefix(s, 512).to_string());
        let row = crate::audit::template(
            "rest",
            "unknown",
            "api",
            Some(crate::engine::validate::char_prefix(parts.uri.path(), 1024).to_string()),
            request_id,
            peer.map(|p| p.ip().to_string()),
            user_agent,
            crate::protocol::now_ms(now),
        );
        let mut call = Call {
            route: None,
            params: PathParams::default(),
            query: parse_query(parts.uri.query()),
            row,
            written: false,
            now,
            peer,
            headers: parts.headers.clone(),
        };
        let result = self
            .serve(&mut call, parts.method.as_str(), parts.uri.path(), body)
            .await;
        let route = call.route.map(|r| r.name).unwrap_or("unknown");
        let error_response = |e: RestError| {
            let mut headers = Vec::new();
            if let Some(allow) = &e.allow {
                headers.push(("allow", allow.clone()));
            }
            if let Some(secs) = e.retry_after {
                headers.push(("retry-after", secs.to_string()));
            }
            if e.status == StatusCode::UNAUTHORIZED {
                headers.push(("www-authenticate", "Bearer".to_string()));
            }
            RestResponse {
                status: e.status,
                body: e.body(),
                route,
                error_code: Some(e.code),
                headers,
            }
        };
        if !call.written {
            let mut row = call.row.clone();
            match &result {
                Ok(reply) => {
                    row.outcome = "success".into();
                    row.status = i32::from(reply.status.as_u16());
                }
                Err(e) => {
                    row.outcome = e.code.to_string();
                    row.status = i32::from(e.status.as_u16());
                }
            }
            if let Err(e) = self.audit.write(row).await {
                // Fail closed: no audit row, no answer (and no secret).
                tracing::error!(error = %e, "audit write failed");
                return error_response(RestError::internal());
            }
        }
        match result {
            Ok(reply) => RestResponse {
                status: reply.status,
                body: Bytes::from(reply.body),
                route,
                error_code: None,
                headers: Vec::new(),
            },
            Err(e) => error_response(e),
        }
    }

    async fn serve<B>(
        &self,
        call: &mut Call,
        method: &str,
        path: &str,
        body: B,
    ) -> Result<Reply, RestError>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (route, params) = match routes::route(method, path) {
            Matched::Route(r, p) => (r, p),
            Matched::WrongMethod(allowed) => {
                let mut e = RestError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    format!("Use {} on this path.", allowed.join(", ")),
                );
                e.allow = Some(allowed.join(", "));
                return Err(e);
            }
            Matched::NotFound => {
                return Err(RestError::new(
                    StatusCode::NOT_FOUND,
                    "UnknownRoute",
                    "No such endpoint; see /api/v1/openapi.json.",
                ));
            }
        };
        call.route = Some(route);
        call.row.action = route.name.to_string();
        call.row.resource_type = route.resource_type.to_string();
        call.row.resource_id = params
            .key
            .clone()
            .or_else(|| params.user_id.clone())
            .or_else(|| params.access_key_id.clone())
            .or_else(|| params.workspace_id.clone())
            .map(|s| crate::engine::validate::char_prefix(&s, 2048).to_string());
        call.params = params;

        let body = match Limited::new(body, crate::server::MAX_BODY_BYTES)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return Err(RestError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PayloadTooLarge",
                    format!(
                        "Request body exceeds {} bytes.",
                        crate::server::MAX_BODY_BYTES
                    ),
                ));
            }
        };

        if route.guard == Guard::Public {
            return match route.id {
                RouteId::Login => self.login(call, &body).await,
                _ => Ok(Reply {
                    status: StatusCode::OK,
                    body: self.openapi.to_vec(),
                }),
            };
        }

        // File the row under the path's workspace when it exists, before authenticating,
        // so a workspace's admins see outsiders' attempts too.
        if let Some(ws) = call.params.workspace_id.clone()
            && self.db().workspace(&ws).await?.is_some()
        {
            call.row.workspace_id = ws;
        }
        let user = self.authenticate(call)?;
        call.row.principal = format!("user:{}", user.id);

        let Guard::Member(permission) = route.guard else {
            return match route.id {
                RouteId::WorkspacesCreate => self.create_workspace(call, &user, &body).await,
                _ => self.list_workspaces(&user).await,
            };
        };
        let member = self.member(call, &user).await?;
        if let Some(p) = permission {
            member
                .access
                .check(p)
                .map_err(|e| RestError::forbidden(e.to_string()))?;
        }
        match route.id {
            RouteId::WorkspacesGet => self.get_workspace(&member).await,
            RouteId::WorkspacesDelete => self.delete_workspace(call, &member).await,
            RouteId::MembersList => self.list_members(&member).await,
            RouteId::MembersAdd => self.add_member(call, &member, &body).await,
            RouteId::MembersRemove => self.remove_member(call, &member).await,
            RouteId::AccessKeysList => self.list_access_keys(&member).await,
            RouteId::AccessKeysCreate => self.create_access_key(call, &member, &body).await,
            RouteId::AccessKeysRevoke => self.revoke_access_key(call, &member).await,
            RouteId::SecretsCreate => self.create_secret(call, &member, &body).await,
            RouteId::SecretsList => self.list_secrets(call, &member).await,
            RouteId::SecretsVersions => self.secret_versions(call, &member).await,
            RouteId::SecretsGet => self.get_secret(call, &member).await,
            RouteId::SecretsUpdate => self.update_secret(call, &member, &body).await,
            RouteId::SecretsDelete => self.delete_secret(call, &member).await,
            RouteId::AuditQuery => self.query_audit(call, &member).await,
            RouteId::MigrateAwsStart => self.start_migration(call, &member, &body).await,
            RouteId::MigrateAwsStatus => self.migration_status(call, &member),
            RouteId::Login
            | RouteId::OpenApi
            | RouteId::WorkspacesCreate
            | RouteId::WorkspacesList => Err(RestError::internal()),
        }
    }

    /// Verify the bearer token.
    fn authenticate(&self, call: &Call) -> Result<User, RestError> {
        let header = call
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                RestError::new(
                    StatusCode::UNAUTHORIZED,
                    "MissingToken",
                    "This request needs an Authorization: Bearer <token> header (POST /api/v1/auth/login).",
                )
            })?;
        match self.jwt.verify(token, call.now_secs()) {
            Ok(claims) => Ok(User {
                id: claims.sub.clone(),
                claims,
            }),
            Err(TokenError::Expired) => Err(RestError::new(
                StatusCode::UNAUTHORIZED,
                "ExpiredToken",
                "The bearer token has expired; log in again.",
            )),
            Err(TokenError::Invalid) => Err(RestError::new(
                StatusCode::UNAUTHORIZED,
                "InvalidToken",
                "The bearer token is invalid.",
            )),
        }
    }

    /// The caller's membership in the path's workspace: listed in the token's `aud` and
    /// still present in the database. Anything else is the same 404.
    async fn member(&self, call: &Call, user: &User) -> Result<Member, RestError> {
        let ws = call.workspace_id()?;
        if !user.claims.aud.iter().any(|a| a == ws) {
            return Err(RestError::workspace_not_found());
        }
        let membership = self
            .db()
            .memberships_of_user(&user.id)
            .await?
            .into_iter()
            .find(|m| m.workspace_id == ws)
            .ok_or_else(RestError::workspace_not_found)?;
        let tenant = match self.keyring.tenant(ws).await {
            Ok(t) => t,
            Err(crate::auth::KeyringError::NoWorkspace) => {
                return Err(RestError::workspace_not_found());
            }
            Err(e) => {
                tracing::error!(error = %e, "workspace key unavailable");
                return Err(RestError::internal());
            }
        };
        Ok(Member {
            tenant,
            access: Access {
                role: Role::parse(&membership.role).unwrap_or(Role::Read),
                scopes: scopes_of(&membership),
            },
        })
    }

    /// The user's current memberships as token grants.
    async fn grants_of(
        &self,
        user_id: &str,
    ) -> Result<BTreeMap<String, WorkspaceGrant>, RestError> {
        Ok(self
            .db()
            .memberships_of_user(user_id)
            .await?
            .into_iter()
            .map(|m| {
                let scopes = scopes_of(&m);
                (
                    m.workspace_id,
                    WorkspaceGrant {
                        role: m.role,
                        scopes,
                    },
                )
            })
            .collect())
    }

    fn token_reply(
        &self,
        user_id: &str,
        grants: BTreeMap<String, WorkspaceGrant>,
        now: u64,
    ) -> Result<serde_json::Value, RestError> {
        let (token, claims) = self.jwt.issue(user_id, grants, now).map_err(|e| {
            tracing::error!(error = %e, "signing a token failed");
            RestError::internal()
        })?;
        Ok(serde_json::json!({
            "token": token,
            "tokenType": "Bearer",
            "expiresIn": self.jwt.ttl_seconds,
            "expiresAt": rfc3339((claims.exp as i64).saturating_mul(1000)),
            "userId": user_id,
            "workspaces": claims.workspaces,
        }))
    }

    // ------------------------------------------------------------------ login

    async fn login(&self, call: &mut Call, body: &[u8]) -> Result<Reply, RestError> {
        if let Some(peer) = call.peer
            && let Err(wait) = self.limiter.take(peer.ip(), Instant::now())
        {
            let secs = wait.as_secs() + 1;
            let mut e = RestError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                format!("Too many login attempts from this address; retry in {secs} seconds."),
            );
            e.retry_after = Some(secs);
            return Err(e);
        }
        let req: LoginBody = parse_body(body)?;
        let password = Zeroizing::new(req.password);
        let email = req.email.trim().to_lowercase();
        call.row.resource_id = Some(crate::engine::validate::char_prefix(&email, 254).to_string());
        let now_ms = call.now_ms();
        let user: Option<UserRow> = if email.is_empty() {
            None
        } else {
            self.db().user_by_email(&email).await?
        };
        if let Some(u) = &user {
            call.row.principal = format!("user:{}", u.id);
            if let Some(until) = u.locked_until
                && until > now_ms
            {
                return Err(locked(until, now_ms));
            }
        }
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash.clone());
        let verified = login::verify_password(password, hash).await;
        let invalid = || {
            RestError::new(
                StatusCode::UNAUTHORIZED,
                "InvalidCredentials",
                "The email or password is incorrect.",
            )
        };
        let Some(user) = user else {
            return Err(invalid());
        };
        if !verified {
            let failed = user.failed_logins.saturating_add(1);
            let lock = login::lock_after_failure(failed, now_ms);
            self.db().record_login(&user.id, failed, lock).await?;
            return Err(match lock {
                Some(until) => locked(until, now_ms),
                None => invalid(),
            });
        }
        if user.failed_logins != 0 || user.locked_until.is_some() {
            self.db().record_login(&user.id, 0, None).await?;
        }
        let grants = self.grants_of(&user.id).await?;
        let out = self.token_reply(&user.id, grants, call.now_secs())?;
        Reply::json(StatusCode::OK, &out)
    }

    // ------------------------------------------------------------------ workspaces

    async fn create_workspace(
        &self,
        call: &mut Call,
        user: &User,
        body: &[u8],
    ) -> Result<Reply, RestError> {
        let req: CreateWorkspaceBody = parse_body(body)?;
        call.row.resource_id =
            Some(crate::engine::validate::char_prefix(&req.name, 64).to_string());
        let memberships = self.db().memberships_of_user(&user.id).await?;
        if !memberships.iter().any(|m| m.role == Role::Admin.as_str()) {
            return Err(RestError::forbidden(
                "Only an admin of some workspace may create workspaces (requires workspace:admin).",
            ));
        }
        let now = call.now_ms();
        let ws = admin::create_workspace(
            self.db(),
            &self.master,
            &req.name,
            req.account_id.as_deref(),
            now,
        )
        .await?;
        call.row.workspace_id = ws.id.clone();
        call.row.resource_id = Some(ws.id.clone());
        let membership = MembershipRow {
            workspace_id: ws.id.clone(),
            user_id: user.id.clone(),
            role: Role::Admin.as_str().into(),
            scopes: "[]".into(),
            created_at: now,
        };
        if let Err(e) = self.db().upsert_membership(&membership).await {
            // A workspace nobody administers is useless; take it back.
            let _ = self.db().delete_workspace(&ws.id).await;
            return Err(e.into());
        }
        let grants = self.grants_of(&user.id).await?;
        let token = self.token_reply(&user.id, grants, call.now_secs())?;
        Reply::json(
            StatusCode::CREATED,
            &serde_json::json!({
                "id": ws.id,
                "name": ws.name,
                "accountId": ws.account_id,
                "createdAt": rfc3339(ws.created_at),
                "role": "admin",
                "scopes": [],
                "token": token,
            }),
        )
    }

    async fn list_workspaces(&self, user: &User) -> Result<Reply, RestError> {
        let mut out = Vec::new();
        for m in self.db().memberships_of_user(&user.id).await? {
            if !user.claims.aud.contains(&m.workspace_id) {
                continue;
            }
            if let Some(ws) = self.db().workspace(&m.workspace_id).await? {
                out.push(serde_json::json!({
                    "id": ws.id,
                    "name": ws.name,
                    "accountId": ws.account_id,
                    "createdAt": rfc3339(ws.created_at),
                    "role": m.role,
                    "scopes": scopes_of(&m),
                }));
            }
        }
        Reply::json(StatusCode::OK, &serde_json::json!({ "workspaces": out }))
    }

    async fn get_workspace(&self, member: &Member) -> Result<Reply, RestError> {
        let ws = self
            .db()
            .workspace(&member.tenant.id)
            .await?
            .ok_or_else(RestError::workspace_not_found)?;
        Reply::json(
            StatusCode::OK,
            &serde_json::json!({
                "id": ws.id,
                "name": ws.name,
                "accountId": ws.account_id,
                "createdAt": rfc3339(ws.created_at),
                "role": member.access.role.as_str(),
                "scopes": member.access.scopes,
            }),
        )
    }

    async fn delete_workspace(&self, call: &mut Call, member: &Member) -> Result<Reply, RestError> {
        if !member.access.scopes.is_empty() {
            return Err(RestError::forbidden(
                "Deleting a workspace needs an admin without secret-name scopes.",
            ));
        }
        let ws = &member.tenant.id;
        if !self.db().delete_workspace(ws).await? {
            return Err(RestError::workspace_not_found());
        }
        self.keyring.forget_workspace(ws).await;
        Reply::json(
            StatusCode::OK,
            &serde_json::json!({"id": ws, "deleted": true, "deletedAt": rfc3339(call.now_ms())}),
        )
    }

    // ------------------------------------------------------------------ members

    async fn list_members(&self, member: &Member) -> Result<Reply, RestError> {
        let members: Vec<serde_json::Value> = self
            .db()
            .members_of(&member.tenant.id)
            .await?
            .into_iter()
            .map(|(m, email)| {
                serde_json::json!({
                    "userId": m.user_id,
                    "email": email,
                    "role": m.role,
                    "scopes": scopes_of(&m),
                    "createdAt": rfc3339(m.created_at),
                })
            })
            .collect();
        Reply::json(StatusCode::OK, &serde_json::json!({ "members": members }))
    }

    async fn add_member(
        &self,
        call: &mut Call,
        member: &Member,
        body: &[u8],
    ) -> Result<Reply, RestError> {
        let req: AddMemberBody = parse_body(body)?;
        let password = req.password.map(Zeroizing::new);
        let email = normalize_email(&req.email)?;
        let role = parse_role(&req.role)?;
        check_scopes(&req.scopes)?;
        if !member.access.covers(&req.scopes) {
            return Err(RestError::forbidden(
                "You can only grant scopes within your own scopes.",
            ));
        }
        let now = call.now_ms();
        let ws = &member.tenant.id;
        let (user, user_created) = match self.db().user_by_email(&email).await? {
            Some(u) => (u, false),
            None => {
                let Some(password) = password else {
                    return Err(RestError::bad_request(
                        "No user has this email; give a password to create one.",
                    ));
                };
                check_new_password(&password)?;
                let hash = login::hash_password(password).await.map_err(|e| {
                    tracing::error!(error = %e, "hashing a password failed");
                    RestError::internal()
                })?;
                let row = UserRow {
                    id: uuid::Uuid::new_v4().to_string(),
                    email: email.clone(),
                    password_hash: hash,
                    created_at: now,
                    failed_logins: 0,
                    locked_until: None,
                };
                match self.db().insert_user(&row).await {
                    Ok(()) => (row, true),
                    // Created concurrently: use that user.
                    Err(StoreError::Conflict) => (
                        self.db()
                            .user_by_email(&email)
                            .await?
                            .ok_or_else(RestError::internal)?,
                        false,
                    ),
                    Err(e) => return Err(e.into()),
                }
            }
        };
        call.row.resource_id = Some(user.id.clone());
        let members = self.db().members_of(ws).await?;
        let existing = members.iter().find(|(m, _)| m.user_id == user.id);
        if let Some((m, _)) = existing {
            let admins = members
                .iter()
                .filter(|(m, _)| m.role == Role::Admin.as_str())
                .count();
            if m.role == Role::Admin.as_str() && role != Role::Admin && admins <= 1 {
                return Err(RestError::conflict(
                    "A workspace must keep at least one admin.",
                ));
            }
        }
        let row = MembershipRow {
            workspace_id: ws.clone(),
            user_id: user.id.clone(),
            role: role.as_str().into(),
            scopes: serde_json::to_string(&req.scopes).unwrap_or_else(|_| "[]".into()),
            created_at: existing.map(|(m, _)| m.created_at).unwrap_or(now),
        };
        self.db().upsert_membership(&row).await?;
        let status = if existing.is_some() {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Reply::json(
            status,
            &serde_json::json!({
                "userId": user.id,
                "email": user.email,
                "role": row.role,
                "scopes": req.scopes,
                "createdAt": rfc3339(row.created_at),
                "userCreated": user_created,
            }),
        )
    }

    async fn remove_member(&self, call: &mut Call, member: &Member) -> Result<Reply, RestError> {
        let user_id = call.params.user_id.clone().unwrap_or_default();
        let ws = &member.tenant.id;
        let members = self.db().members_of(ws).await?;
        let Some((target, _)) = members.iter().find(|(m, _)| m.user_id == user_id) else {
            return Err(RestError::not_found("The member was not found."));
        };
        let admins = members
            .iter()
            .filter(|(m, _)| m.role == Role::Admin.as_str())
            .count();
        if target.role == Role::Admin.as_str() && admins <= 1 {
            return Err(RestError::conflict(
                "A workspace must keep at least one admin.",
            ));
        }
        if !member.access.covers(&scopes_of(target)) {
            return Err(RestError::forbidden(
                "You can only remove members whose scopes lie within your own.",
            ));
        }
        if !self.db().delete_membership(ws, &user_id).await? {
            return Err(RestError::not_found("The member was not found."));
        }
        Reply::json(
            StatusCode::OK,
            &serde_json::json!({"userId": user_id, "removed": true}),
        )
    }

    // ------------------------------------------------------------------ access keys

    async fn list_access_keys(&self, member: &Member) -> Result<Reply, RestError> {
        let keys: Vec<serde_json::Value> = self
            .db()
            .access_keys_of(&member.tenant.id)
            .await?
            .into_iter()
            .map(|k| {
                let scopes: Vec<String> = serde_json::from_str(&k.scopes).unwrap_or_default();
                serde_json::json!({
                    "accessKeyId": k.access_key_id,
                    "role": k.role,
                    "scopes": scopes,
                    "createdAt": rfc3339(k.created_at),
                    "revokedAt": k.revoked_at.map(rfc3339),
                    "active": k.revoked_at.is_none(),
                })
            })
            .collect();
        Reply::json(StatusCode::OK, &serde_json::json!({ "accessKeys": keys }))
    }

    async fn create_access_key(
        &self,
        call: &mut Call,
        member: &Member,
        body: &[u8],
    ) -> Result<Reply, RestError> {
        let req: CreateKeyBody = parse_body(body)?;
        let role = parse_role(&req.role)?;
        check_scopes(&req.scopes)?;
        if !member.access.covers(&req.scopes) {
            return Err(RestError::forbidden(
                "You can only grant scopes within your own scopes.",
            ));
        }
        let ws = self
            .db()
            .workspace(&member.tenant.id)
            .await?
            .ok_or_else(RestError::workspace_not_found)?;
        let now = call.now_ms();
        let key = admin::create_access_key(
            self.db(),
            &self.master,
            &ws,
            role,
            req.scopes.clone(),
            None,
            now,
        )
        .await?;
        call.row.resource_id = Some(key.access_key_id.clone());
        // The secret leaves only after the audit row is durable; if that write fails the
        // key is revoked so nobody holds a usable, unaudited key.
        let mut probe = call.row.clone();
        probe.outcome = "success".into();
        probe.status = 201;
        if let Err(e) = self.audit.write(probe).await {
            tracing::error!(error = %e, "audit write failed; revoking the new key");
            let _ = self
                .db()
                .revoke_access_key(&ws.id, &key.access_key_id, now)
                .await;
            return Err(RestError::internal());
        }
        call.written = true;
        Reply::json(
            StatusCode::CREATED,
            &AccessKeyCreated {
                access_key_id: &key.access_key_id,
                secret_access_key: &key.secret_access_key,
                workspace_id: &ws.id,
                account_id: &ws.account_id,
                role: &key.role,
                scopes: &key.scopes,
                created_at: rfc3339(now),
            },
        )
    }

    async fn revoke_access_key(
        &self,
        call: &mut Call,
        member: &Member,
    ) -> Result<Reply, RestError> {
        let akid = call.params.access_key_id.clone().unwrap_or_default();
        let now = call.now_ms();
        if let Some(key) = self
            .db()
            .access_keys_of(&member.tenant.id)
            .await?
            .into_iter()
            .find(|k| k.access_key_id == akid)
        {
            let scopes: Vec<String> = serde_json::from_str(&key.scopes).unwrap_or_default();
            if !member.access.covers(&scopes) {
                return Err(RestError::forbidden(
                    "You can only revoke keys whose scopes lie within your own.",
                ));
            }
        }
        if !self
            .db()
            .revoke_access_key(&member.tenant.id, &akid, now)
            .await?
        {
            return Err(RestError::not_found(
                "The access key was not found (or is already revoked).",
            ));
        }
        self.keyring.forget(&akid).await;
        Reply::json(
            StatusCode::OK,
            &serde_json::json!({"accessKeyId": akid, "revokedAt": rfc3339(now)}),
        )
    }

    // ------------------------------------------------------------------ audit

    async fn start_migration(
        &self,
        call: &mut Call,
        member: &Member,
        body: &[u8],
    ) -> Result<Reply, RestError> {
        let parsed: migrate::MigrateAwsBody = parse_body(body)?;
        call.row.resource_id = Some(parsed.from_endpoint_url.clone().unwrap_or_else(|| {
            format!(
                "aws:{}",
                parsed.from_region.as_deref().unwrap_or("us-east-1")
            )
        }));
        let view = self.jobs.start(
            self.db().clone(),
            self.master.clone(),
            self.engine.cache(),
            &member.tenant.id,
            parsed,
            call.now_ms(),
        );
        Reply::json(StatusCode::ACCEPTED, &view)
    }

    fn migration_status(&self, call: &mut Call, member: &Member) -> Result<Reply, RestError> {
        let id = call.params.job_id.clone().unwrap_or_default();
        call.row.resource_id = Some(id.clone());
        match self.jobs.get(&member.tenant.id, &id) {
            Some(view) => Reply::json(StatusCode::OK, &view),
            None => Err(RestError::not_found(
                "No such migration job on this node.".to_string(),
            )),
        }
    }

    async fn query_audit(&self, call: &mut Call, member: &Member) -> Result<Reply, RestError> {
        let filter = AuditFilter {
            from: call
                .query("from")
                .map(|v| parse_time("from", v))
                .transpose()?,
            to: call.query("to").map(|v| parse_time("to", v)).transpose()?,
            action: call.query("action").map(str::to_string),
            principal: call.query("principal").map(str::to_string),
            resource: call.query("resource").map(str::to_string),
            outcome: call.query("outcome").map(str::to_string),
        };
        let limit = parse_limit(call, 100, 1000)?;
        let before = call.query("cursor").map(decode_cursor).transpose()?;
        // Rows acknowledged before this query may still be on their way into the log.
        if let Err(e) = self.audit.flush().await {
            tracing::error!(error = %e, "audit journal flush failed");
            return Err(RestError::internal());
        }
        let mut rows = self
            .db()
            .audit_page(&member.tenant.id, &filter, before, limit + 1)
            .await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next = if more {
            rows.last().map(|r| encode_cursor(r.at, &r.id))
        } else {
            None
        };
        let events: Vec<serde_json::Value> = rows
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id,
                    "at": rfc3339(r.at),
                    "api": r.api,
                    "action": r.action,
                    "resourceType": r.resource_type,
                    "resourceId": r.resource_id,
                    "principal": r.principal,
                    "accessKeyId": r.access_key_id,
                    "outcome": r.outcome,
                    "status": r.status,
                    "sourceIp": r.source_ip,
                    "userAgent": r.user_agent,
                    "requestId": r.request_id,
                })
            })
            .collect();
        Reply::json(
            StatusCode::OK,
            &serde_json::json!({"events": events, "nextCursor": next}),
        )
    }
}

fn locked(until: i64, now_ms: i64) -> RestError {
    let mut e = RestError::new(
        StatusCode::LOCKED,
        "AccountLocked",
        format!(
            "Too many failed logins: this account is locked until {}.",
            rfc3339(until)
        ),
    );
    e.retry_after = Some(((until - now_ms).max(0) as u64).div_ceil(1000));
    e
}

fn encode_cursor(at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{at}|{id}"))
}

fn decode_cursor(cursor: &str) -> Result<(i64, String), RestError> {
    let bad = || {
        RestError::new(
            StatusCode::BAD_REQUEST,
            "InvalidCursor",
            "The cursor is invalid.",
        )
    };
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (at, id) = text.split_once('|').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_garbage() {
        let c = encode_cursor(1_700_000_000_123, "abc-def");
        assert_eq!(
            decode_cursor(&c).unwrap(),
            (1_700_000_000_123, "abc-def".to_string())
        );
        assert!(decode_cursor("!!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("x|y")).is_err());
    }

    #[test]
    fn times_and_queries() {
        assert_eq!(parse_time("from", "1000").unwrap(), 1000);
        assert_eq!(parse_time("from", "1970-01-01T00:00:01Z").unwrap(), 1000);
        assert_eq!(
            parse_time("from", "1970-01-01T01:00:01+01:00").unwrap(),
            1000
        );
        assert!(parse_time("from", "yesterday").is_err());
        assert_eq!(rfc3339(1000), "1970-01-01T00:00:01.000Z");
        assert_eq!(rfc3339(1_570), "1970-01-01T00:00:01.570Z");
        let q = parse_query(Some("prefix=app%2Fdb&x=a+b&flag"));
        assert_eq!(
            q,
            vec![
                ("prefix".into(), "app/db".into()),
                ("x".into(), "a b".into()),
                ("flag".into(), String::new())
            ]
        );
    }
}
