//! The AWS JSON 1.1 protocol: `X-Amz-Target` → [`Operation`], SigV4, body → typed input,
//! engine result → JSON body or AWS error shape.
//!
//! Everything AWS-specific about the wire lives here; the engine never sees HTTP.

use crate::audit::{AuditContext, AuditWriter};
use crate::auth::{Keyring, Permission};
use crate::engine::types::*;
use crate::engine::{self, Engine, EngineError, Scope};
use crate::sigv4;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::SystemTime;

/// Every Secrets Manager operation of the current service model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Operation {
    AssociateCrossAccountReplica,
    BatchGetSecretValue,
    CancelRotateSecret,
    CreateSecret,
    DeleteResourcePolicy,
    DeleteSecret,
    DescribeSecret,
    DisassociateCrossAccountReplica,
    GetRandomPassword,
    GetResourcePolicy,
    GetSecretValue,
    ListResourcePolicies,
    ListSecretVersionIds,
    ListSecrets,
    PutResourcePolicy,
    PutSecretValue,
    RemoveRegionsFromReplication,
    ReplicateSecretToRegions,
    RestoreSecret,
    RotateSecret,
    StopReplicationToReplica,
    TagResource,
    UntagResource,
    UpdateSecret,
    UpdateSecretVersionStage,
    ValidateResourcePolicy,
}

impl Operation {
    /// All operations, for tests and metrics.
    pub const ALL: [Operation; 26] = [
        Operation::AssociateCrossAccountReplica,
        Operation::BatchGetSecretValue,
        Operation::CancelRotateSecret,
        Operation::CreateSecret,
        Operation::DeleteResourcePolicy,
        Operation::DeleteSecret,
        Operation::DescribeSecret,
        Operation::DisassociateCrossAccountReplica,
        Operation::GetRandomPassword,
        Operation::GetResourcePolicy,
        Operation::GetSecretValue,
        Operation::ListResourcePolicies,
        Operation::ListSecretVersionIds,
        Operation::ListSecrets,
        Operation::PutResourcePolicy,
        Operation::PutSecretValue,
        Operation::RemoveRegionsFromReplication,
        Operation::ReplicateSecretToRegions,
        Operation::RestoreSecret,
        Operation::RotateSecret,
        Operation::StopReplicationToReplica,
        Operation::TagResource,
        Operation::UntagResource,
        Operation::UpdateSecret,
        Operation::UpdateSecretVersionStage,
        Operation::ValidateResourcePolicy,
    ];

    /// The operation's name as in `X-Amz-Target: secretsmanager.<Name>`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::AssociateCrossAccountReplica => "AssociateCrossAccountReplica",
            Operation::BatchGetSecretValue => "BatchGetSecretValue",
            Operation::CancelRotateSecret => "CancelRotateSecret",
            Operation::CreateSecret => "CreateSecret",
            Operation::DeleteResourcePolicy => "DeleteResourcePolicy",
            Operation::DeleteSecret => "DeleteSecret",
            Operation::DescribeSecret => "DescribeSecret",
            Operation::DisassociateCrossAccountReplica => "DisassociateCrossAccountReplica",
            Operation::GetRandomPassword => "GetRandomPassword",
            Operation::GetResourcePolicy => "GetResourcePolicy",
            Operation::GetSecretValue => "GetSecretValue",
            Operation::ListResourcePolicies => "ListResourcePolicies",
            Operation::ListSecretVersionIds => "ListSecretVersionIds",
            Operation::ListSecrets => "ListSecrets",
            Operation::PutResourcePolicy => "PutResourcePolicy",
            Operation::PutSecretValue => "PutSecretValue",
            Operation::RemoveRegionsFromReplication => "RemoveRegionsFromReplication",
            Operation::ReplicateSecretToRegions => "ReplicateSecretToRegions",
            Operation::RestoreSecret => "RestoreSecret",
            Operation::RotateSecret => "RotateSecret",
            Operation::StopReplicationToReplica => "StopReplicationToReplica",
            Operation::TagResource => "TagResource",
            Operation::UntagResource => "UntagResource",
            Operation::UpdateSecret => "UpdateSecret",
            Operation::UpdateSecretVersionStage => "UpdateSecretVersionStage",
            Operation::ValidateResourcePolicy => "ValidateResourcePolicy",
        }
    }

    /// Parse an `X-Amz-Target` header value.
    pub fn from_target(target: &str) -> Option<Operation> {
        let name = target.strip_prefix("secretsmanager.")?;
        Operation::ALL.iter().copied().find(|op| op.name() == name)
    }

    /// The permission this operation needs.
    pub fn permission(self) -> Permission {
        use Operation::*;
        match self {
            CreateSecret => Permission::SecretCreate,
            GetSecretValue
            | BatchGetSecretValue
            | DescribeSecret
            | ListSecretVersionIds
            | GetResourcePolicy
            | ListResourcePolicies
            | GetRandomPassword
            | ValidateResourcePolicy => Permission::SecretRead,
            ListSecrets => Permission::SecretList,
            DeleteSecret => Permission::SecretDelete,
            PutSecretValue
            | UpdateSecret
            | UpdateSecretVersionStage
            | TagResource
            | UntagResource
            | RestoreSecret
            | RotateSecret
            | CancelRotateSecret
            | PutResourcePolicy
            | DeleteResourcePolicy
            | ReplicateSecretToRegions
            | RemoveRegionsFromReplication
            | StopReplicationToReplica
            | AssociateCrossAccountReplica
            | DisassociateCrossAccountReplica => Permission::SecretUpdate,
        }
    }
}

/// An error in AWS's shape: `{"__type": code, "message": …}` with an HTTP status.
#[derive(Debug, Clone)]
pub struct AwsError {
    /// The `__type` code.
    pub code: &'static str,
    /// HTTP status (400 for every client error, as AWS sends).
    pub status: StatusCode,
    /// Human message; never contains a secret value.
    pub message: String,
}

impl AwsError {
    /// A 400 client error.
    pub fn client(code: &'static str, message: impl Into<String>) -> AwsError {
        AwsError {
            code,
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// A 500 server error; details go to the log, not the client.
    pub fn internal() -> AwsError {
        AwsError {
            code: "InternalServiceError",
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "An error occurred on the server side.".into(),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"__type": self.code, "message": self.message}))
            .unwrap_or_default()
    }
}

/// The AWS error code for an engine error.
pub fn error_code(e: &EngineError) -> &'static str {
    match e {
        EngineError::NotFound(_) => "ResourceNotFoundException",
        EngineError::Exists(_) => "ResourceExistsException",
        EngineError::InvalidRequest(_) => "InvalidRequestException",
        EngineError::InvalidParameter(_) => "InvalidParameterException",
        EngineError::Validation(_) => "ValidationException",
        EngineError::InvalidNextToken(_) => "InvalidNextTokenException",
        EngineError::MalformedPolicy(_) => "MalformedPolicyDocumentException",
        EngineError::PublicPolicy(_) => "PublicPolicyException",
        EngineError::LimitExceeded(_) => "LimitExceededException",
        EngineError::AccessDenied(_) => "AccessDeniedException",
        EngineError::Decryption => "DecryptionFailure",
        EngineError::Store(_) => "InternalServiceError",
    }
}

impl From<EngineError> for AwsError {
    fn from(e: EngineError) -> Self {
        match &e {
            EngineError::Store(inner) => {
                tracing::error!(error = %inner, "store failure");
                AwsError::internal()
            }
            _ => AwsError::client(error_code(&e), e.to_string()),
        }
    }
}

impl From<sigv4::SigV4Error> for AwsError {
    fn from(e: sigv4::SigV4Error) -> Self {
        AwsError::client(e.aws_code(), e.message())
    }
}

/// What the protocol layer needs from the server.
pub struct Protocol {
    /// The secrets engine.
    pub engine: Engine,
    /// Access keys and workspace keys.
    pub keyring: Arc<Keyring>,
    /// Group-commit audit writer.
    pub audit: AuditWriter,
}

/// A failed authentication, with the access key id the caller claimed (for the audit).
pub struct AuthFailure {
    /// The AWS error to answer with.
    pub error: AwsError,
    /// The AKID from the Authorization header, if it parsed.
    pub access_key_id: Option<String>,
}

impl From<AwsError> for AuthFailure {
    fn from(error: AwsError) -> Self {
        AuthFailure {
            error,
            access_key_id: None,
        }
    }
}

/// The request members that name the resource, for the audit row. Nothing else of the
/// body is kept, so no value can reach the audit log.
#[derive(serde::Deserialize, Default)]
struct ResourceNames {
    #[serde(rename = "SecretId")]
    secret_id: Option<String>,
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "SecretIdList")]
    secret_id_list: Option<Vec<String>>,
}

/// The resource a request body names (SecretId, Name or SecretIdList), bounded in size.
pub fn resource_of(body: &[u8]) -> Option<String> {
    let names: ResourceNames = serde_json::from_slice(body).ok()?;
    let mut id = names
        .secret_id
        .or(names.name)
        .or_else(|| names.secret_id_list.map(|l| l.join(",")))?;
    id.truncate(crate::engine::validate::char_prefix(&id, 2048).len());
    Some(id)
}

/// What one AWS request produced, ready for the HTTP layer.
pub struct AwsResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body.
    pub body: Bytes,
    /// `__type` code for errors (also sent as `x-amzn-ErrorType`).
    pub error_code: Option<&'static str>,
    /// Operation name for logs and metrics.
    pub operation: &'static str,
    /// Workspace name when authenticated, for logs.
    pub workspace: Option<String>,
}

/// The authenticated caller of one request.
pub struct Caller {
    /// The access key used.
    pub access_key_id: String,
    /// The workspace, region and rights.
    pub scope: Scope,
}

/// Milliseconds since the epoch.
pub fn now_ms(now: SystemTime) -> i64 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn parse<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, AwsError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        // serde's message names the member and the expected type, never the value.
        let msg = if e.is_syntax() || e.is_eof() {
            "The request body is not valid JSON.".to_string()
        } else {
            format!(
                "Unable to parse the request: {}",
                e.to_string().split(" at line").next().unwrap_or("")
            )
        };
        AwsError::client("SerializationException", msg)
    })
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, AwsError> {
    serde_json::to_vec(v).map_err(|_| AwsError::internal())
}

impl Protocol {
    /// Verify SigV4 and resolve the caller.
    pub async fn authenticate(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Caller, AuthFailure> {
        let auth = sigv4::parse(headers, "secretsmanager", now).map_err(AwsError::from)?;
        let claimed = Some(auth.access_key_id.clone());
        let fail = |error: AwsError| AuthFailure {
            error,
            access_key_id: claimed.clone(),
        };
        // We issue no temporary credentials, so no session token can be one of ours. AWS
        // refuses a token it did not issue (even with a valid signature), and so do we: a
        // client with stray STS credentials in its environment learns at once.
        if headers.contains_key("x-amz-security-token") {
            return Err(fail(AwsError::client(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )));
        }
        let key = self
            .keyring
            .access_key(&auth.access_key_id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "access key lookup failed");
                AwsError::internal()
            })
            .map_err(&fail)?
            .ok_or_else(|| {
                fail(AwsError::client(
                    "UnrecognizedClientException",
                    "The security token included in the request is invalid.",
                ))
            })?;
        let signing_key = key.signing_key(&auth.date, &auth.region);
        sigv4::verify(&auth, method, uri, headers, body, &signing_key)
            .map_err(|e| fail(e.into()))?;
        let tenant = self.keyring.tenant(&key.workspace_id).await.map_err(|e| {
            tracing::error!(error = %e, "workspace key unavailable");
            fail(AwsError::internal())
        })?;
        Ok(Caller {
            access_key_id: key.access_key_id.clone(),
            scope: Scope {
                tenant,
                region: auth.region.clone(),
                access: key.access.clone(),
                audit: None,
            },
        })
    }

    /// Serve one AWS JSON 1.1 request end to end: authenticate, dispatch, audit.
    ///
    /// The audit row is durable before this returns; if it cannot be written the answer
    /// is an `InternalServiceError` and carries no secret.
    pub async fn handle(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        request_id: &str,
        peer: Option<std::net::SocketAddr>,
        now: SystemTime,
    ) -> AwsResponse {
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let op = Operation::from_target(target);
        let operation = op.map(Operation::name).unwrap_or("Unknown");
        let user_agent = parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| crate::engine::validate::char_prefix(s, 512).to_string());
        let mut row = crate::audit::template(
            "aws",
            operation,
            "secret",
            resource_of(body),
            request_id,
            peer.map(|p| p.ip().to_string()),
            user_agent,
            now_ms(now),
        );
        let error_response = |e: AwsError, workspace: Option<String>| AwsResponse {
            status: e.status,
            body: Bytes::from(e.body()),
            error_code: Some(e.code),
            operation,
            workspace,
        };
        let mut caller = match self
            .authenticate(&parts.method, &parts.uri, &parts.headers, body, now)
            .await
        {
            Ok(c) => c,
            Err(failure) => {
                row.access_key_id = failure.access_key_id;
                row.outcome = failure.error.code.to_string();
                row.status = i32::from(failure.error.status.as_u16());
                if let Err(e) = self.audit.write(row).await {
                    tracing::error!(error = %e, "audit write failed");
                    return error_response(AwsError::internal(), None);
                }
                return error_response(failure.error, None);
            }
        };
        row.workspace_id = caller.scope.tenant.id.clone();
        row.principal = format!("key:{}", caller.access_key_id);
        row.access_key_id = Some(caller.access_key_id.clone());
        caller.scope.audit = Some(AuditContext::new(row));
        let workspace = Some(caller.scope.tenant.name.clone());
        let result = match op {
            Some(op) => self.dispatch(op, &caller, body, now).await,
            None => Err(AwsError::client("UnknownOperationException", "")),
        };
        let Some(ctx) = caller.scope.audit.take() else {
            return error_response(AwsError::internal(), workspace);
        };
        if !ctx.is_written() {
            let final_row = match &result {
                Ok(_) => ctx.finish("success", 200),
                Err(e) => ctx.finish(e.code, e.status.as_u16()),
            };
            if let Err(e) = self.audit.write(final_row).await {
                // Fail closed: no audit row, no answer (and no secret).
                tracing::error!(error = %e, "audit write failed");
                return error_response(AwsError::internal(), workspace);
            }
        }
        match result {
            Ok(body) => AwsResponse {
                status: StatusCode::OK,
                body,
                error_code: None,
                operation,
                workspace,
            },
            Err(e) => error_response(e, workspace),
        }
    }

    /// Run one operation for an authenticated caller; returns the JSON body.
    pub async fn dispatch(
        &self,
        op: Operation,
        caller: &Caller,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Bytes, AwsError> {
        caller.scope.access.check(op.permission())?;
        let s = &caller.scope;
        let t = now_ms(now);
        let e = &self.engine;
        let out = match op {
            Operation::CreateSecret => to_json(&e.create_secret(s, parse(body)?, t).await?)?,
            Operation::GetSecretValue => to_json(&e.get_secret_value(s, &parse(body)?, t).await?)?,
            Operation::PutSecretValue => to_json(&e.put_secret_value(s, parse(body)?, t).await?)?,
            Operation::UpdateSecret => to_json(&e.update_secret(s, parse(body)?, t).await?)?,
            Operation::DescribeSecret => to_json(&e.describe_secret(s, &parse(body)?, t).await?)?,
            Operation::ListSecrets => {
                let page = e.list_secrets(s, &parse(body)?, t).await?;
                if let Some(json) = page.rendered.get() {
                    return Ok(json.clone());
                }
                let json = Bytes::from(to_json(&*page)?);
                let _ = page.rendered.set(json.clone());
                return Ok(json);
            }
            Operation::ListSecretVersionIds => {
                to_json(&e.list_secret_version_ids(s, &parse(body)?, t).await?)?
            }
            Operation::UpdateSecretVersionStage => {
                to_json(&e.update_secret_version_stage(s, &parse(body)?, t).await?)?
            }
            Operation::DeleteSecret => to_json(&e.delete_secret(s, &parse(body)?, t).await?)?,
            Operation::RestoreSecret => to_json(&e.restore_secret(s, &parse(body)?, t).await?)?,
            Operation::TagResource => to_json(&e.tag_resource(s, &parse(body)?, t).await?)?,
            Operation::UntagResource => to_json(&e.untag_resource(s, &parse(body)?, t).await?)?,
            Operation::BatchGetSecretValue => {
                to_json(&e.batch_get_secret_value(s, &parse(body)?, t).await?)?
            }
            Operation::GetRandomPassword => to_json(&random_password(&parse(body)?)?)?,
            Operation::GetResourcePolicy => {
                to_json(&e.get_resource_policy(s, &parse(body)?, t).await?)?
            }
            Operation::PutResourcePolicy => {
                to_json(&e.put_resource_policy(s, &parse(body)?, t).await?)?
            }
            Operation::DeleteResourcePolicy => {
                to_json(&e.delete_resource_policy(s, &parse(body)?, t).await?)?
            }
            Operation::ListResourcePolicies => {
                to_json(&e.list_resource_policies(s, &parse(body)?, t).await?)?
            }
            Operation::ValidateResourcePolicy => {
                to_json(&e.validate_resource_policy(s, &parse(body)?, t).await?)?
            }
            Operation::RotateSecret => to_json(&e.rotate_secret(s, &parse(body)?, t).await?)?,
            Operation::CancelRotateSecret => {
                to_json(&e.cancel_rotate_secret(s, &parse(body)?, t).await?)?
            }
            Operation::ReplicateSecretToRegions => {
                to_json(&e.replicate_secret_to_regions(s, &parse(body)?, t).await?)?
            }
            Operation::RemoveRegionsFromReplication => to_json(
                &e.remove_regions_from_replication(s, &parse(body)?, t)
                    .await?,
            )?,
            Operation::StopReplicationToReplica => {
                to_json(&e.stop_replication_to_replica(s, &parse(body)?, t).await?)?
            }
            Operation::AssociateCrossAccountReplica => to_json(
                &e.associate_cross_account_replica(s, &parse(body)?, t)
                    .await?,
            )?,
            Operation::DisassociateCrossAccountReplica => to_json(
                &e.disassociate_cross_account_replica(s, &parse(body)?, t)
                    .await?,
            )?,
        };
        Ok(Bytes::from(out))
    }
}

fn random_password(input: &GetRandomPasswordInput) -> Result<RandomPasswordOutput, AwsError> {
    use engine::password::{PasswordSpec, generate_password};
    let defaults = PasswordSpec::default();
    let length = match input.password_length {
        Some(n) => {
            engine::validate::range("passwordLength", n, 1, 4096)?;
            n as u32
        }
        None => defaults.length,
    };
    if let Some(x) = &input.exclude_characters {
        engine::validate::length("excludeCharacters", x, 0, 4096, false)?;
    }
    let spec = PasswordSpec {
        length,
        exclude_characters: input.exclude_characters.clone().unwrap_or_default(),
        exclude_numbers: input.exclude_numbers.unwrap_or(defaults.exclude_numbers),
        exclude_punctuation: input
            .exclude_punctuation
            .unwrap_or(defaults.exclude_punctuation),
        exclude_uppercase: input
            .exclude_uppercase
            .unwrap_or(defaults.exclude_uppercase),
        exclude_lowercase: input
            .exclude_lowercase
            .unwrap_or(defaults.exclude_lowercase),
        include_space: input.include_space.unwrap_or(defaults.include_space),
        require_each_included_type: input
            .require_each_included_type
            .unwrap_or(defaults.require_each_included_type),
    };
    let random_password = generate_password(&spec)
        .map_err(|e| AwsError::client("InvalidParameterException", password_error_message(e)))?;
    Ok(RandomPasswordOutput { random_password })
}

fn password_error_message(e: engine::password::PasswordError) -> String {
    match e {
        engine::password::PasswordError::InvalidParameter(m) => m,
    }
}
