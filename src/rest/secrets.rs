//! The secret routes: the seed RFC's `CreateSecretRequest`/`SecretResponse` over the same
//! engine (and so the same secrets) as the AWS API.
//!
//! Mapping decisions:
//! - **type** is stored in the secret's AWS `Type` member (`string`, `json` or `binary`), so
//!   it round-trips without using up a tag. On read the current value decides first: a
//!   binary value is `binary`; a string value is `json` when `Type` says so and it parses,
//!   else `string`. A secret created by an AWS client (no `Type`) is `string` or `binary`.
//! - **value**: `string` takes a JSON string; `binary` takes base64 text (stored as
//!   SecretBinary); `json` takes any JSON value (stored compactly as SecretString) or a
//!   string holding valid JSON text. Without `type`, a string value is `string` and
//!   anything else is `json`. A `json` secret's value is returned as JSON, not as text.
//! - **tags** are strings: `key=value` becomes the AWS tag `{Key: key, Value: value}` (split
//!   at the first `=`), and a bare `key` becomes `{Key: key, Value: ""}`. Reading maps them
//!   back, so `env=prod` and `pci` round-trip; `key=` reads back as `key`.
//! - **version** is the 1-based position of a version among all of the secret's versions
//!   by creation time; `versionId` is the AWS VersionId (a UUID the REST API generates).

use super::{Call, Member, Reply, RestError, parse_body, parse_limit, rfc3339};
use crate::engine::types::{
    CreateSecretInput, DeleteSecretInput, DescribeSecretOutput, Filter, GetSecretValueInput,
    ListSecretVersionIdsInput, ListSecretsInput, SecretIdInput, Tag, UpdateSecretInput,
};
use crate::engine::{Scope, labels::AWSCURRENT};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The seed RFC's secret types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretKind {
    /// UTF-8 text.
    String,
    /// A JSON document.
    Json,
    /// Bytes, base64 on the wire.
    Binary,
}

impl SecretKind {
    fn as_str(self) -> &'static str {
        match self {
            SecretKind::String => "string",
            SecretKind::Json => "json",
            SecretKind::Binary => "binary",
        }
    }

    fn parse(s: &str) -> Option<SecretKind> {
        match s {
            "string" => Some(SecretKind::String),
            "json" => Some(SecretKind::Json),
            "binary" => Some(SecretKind::Binary),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    key: String,
    value: serde_json::Value,
    #[serde(rename = "type")]
    kind: Option<SecretKind>,
    description: Option<String>,
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    value: serde_json::Value,
    #[serde(rename = "type")]
    kind: Option<SecretKind>,
    description: Option<String>,
    tags: Option<Vec<String>>,
}

/// A value ready for the engine: exactly one of SecretString / SecretBinary.
struct EngineValue {
    string: Option<String>,
    binary: Option<String>,
}

impl Drop for EngineValue {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        if let Some(s) = &mut self.string {
            s.zeroize();
        }
        if let Some(s) = &mut self.binary {
            s.zeroize();
        }
    }
}

/// The kind a value gets when the request names none.
fn default_kind(value: &serde_json::Value) -> SecretKind {
    if value.is_string() {
        SecretKind::String
    } else {
        SecretKind::Json
    }
}

fn encode_value(kind: SecretKind, value: serde_json::Value) -> Result<EngineValue, RestError> {
    match (kind, value) {
        (SecretKind::String, serde_json::Value::String(s)) => Ok(EngineValue {
            string: Some(s),
            binary: None,
        }),
        (SecretKind::String, _) => Err(RestError::bad_request(
            "value must be a JSON string for type string.",
        )),
        (SecretKind::Binary, serde_json::Value::String(s)) => Ok(EngineValue {
            string: None,
            binary: Some(s),
        }),
        (SecretKind::Binary, _) => Err(RestError::bad_request(
            "value must be base64 text for type binary.",
        )),
        (SecretKind::Json, serde_json::Value::String(s)) => {
            let s = Zeroizing::new(s);
            if serde_json::from_str::<serde::de::IgnoredAny>(&s).is_err() {
                return Err(RestError::bad_request(
                    "value must be valid JSON for type json.",
                ));
            }
            Ok(EngineValue {
                string: Some(s.to_string()),
                binary: None,
            })
        }
        (SecretKind::Json, v) => Ok(EngineValue {
            string: Some(serde_json::to_string(&v).map_err(|_| RestError::internal())?),
            binary: None,
        }),
    }
}

/// `key=value` / `key` strings to AWS tags.
fn to_aws_tags(tags: &[String]) -> Vec<Tag> {
    tags.iter()
        .map(|t| match t.split_once('=') {
            Some((k, v)) => Tag {
                key: k.to_string(),
                value: v.to_string(),
            },
            None => Tag {
                key: t.clone(),
                value: String::new(),
            },
        })
        .collect()
}

/// AWS tags back to strings.
fn from_aws_tags(tags: &[Tag]) -> Vec<String> {
    tags.iter()
        .map(|t| {
            if t.value.is_empty() {
                t.key.clone()
            } else {
                format!("{}={}", t.key, t.value)
            }
        })
        .collect()
}

fn stored_kind(desc: &DescribeSecretOutput) -> Option<SecretKind> {
    desc.secret_type.as_deref().and_then(SecretKind::parse)
}

/// The secret name of a secret route, checked against the caller's scopes before any
/// lookup so an out-of-scope name is denied whether or not it exists.
fn key_in_scope(call: &Call, member: &Member) -> Result<String, RestError> {
    let key = call.params.key.clone().unwrap_or_default();
    member
        .access
        .check_name(&key)
        .map_err(|e| RestError::forbidden(e.to_string()))?;
    Ok(key)
}

/// One version as the REST API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionView {
    version: usize,
    version_id: String,
    stages: Vec<String>,
    created_at: String,
}

/// Every version of a secret, oldest first (the engine pages newest first).
async fn all_versions(
    rest: &super::Rest,
    scope: &Scope,
    key: &str,
    now: i64,
) -> Result<Vec<VersionView>, RestError> {
    let mut newest_first = Vec::new();
    let mut next_token = None;
    loop {
        let page = rest
            .engine
            .list_secret_version_ids(
                scope,
                &ListSecretVersionIdsInput {
                    secret_id: Some(key.to_string()),
                    max_results: Some(100),
                    next_token: next_token.take(),
                    include_deprecated: Some(true),
                },
                now,
            )
            .await?;
        newest_first.extend(page.versions);
        match page.next_token {
            Some(t) => next_token = Some(t),
            None => break,
        }
    }
    Ok(newest_first
        .into_iter()
        .rev()
        .enumerate()
        .map(|(i, v)| VersionView {
            version: i + 1,
            version_id: v.version_id,
            stages: v.version_stages,
            created_at: rfc3339(v.created_date.0),
        })
        .collect())
}

fn written_reply(
    status: StatusCode,
    arn: &str,
    name: &str,
    kind: SecretKind,
    version_id: Option<&str>,
    version: Option<usize>,
    now: i64,
) -> Result<Reply, RestError> {
    Reply::json(
        status,
        &serde_json::json!({
            "id": arn,
            "key": name,
            "type": kind.as_str(),
            "versionId": version_id,
            "version": version,
            "updatedAt": rfc3339(now),
        }),
    )
}

/// The metadata part of a SecretResponse (everything but `value`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretMeta<'a> {
    id: &'a str,
    key: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    version: Option<usize>,
    version_id: &'a str,
    stages: &'a [String],
    version_created_at: String,
    created_at: String,
    updated_at: String,
    metadata: Metadata<'a>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    description: Option<&'a str>,
    tags: Vec<String>,
}

impl super::Rest {
    pub(super) async fn create_secret(
        &self,
        call: &mut Call,
        member: &Member,
        body: &[u8],
    ) -> Result<Reply, RestError> {
        let req: CreateBody = parse_body(body)?;
        call.row.resource_id =
            Some(crate::engine::validate::char_prefix(&req.key, 2048).to_string());
        member
            .access
            .check_name(&req.key)
            .map_err(|e| RestError::forbidden(e.to_string()))?;
        let kind = req.kind.unwrap_or_else(|| default_kind(&req.value));
        let value = encode_value(kind, req.value)?;
        let version_id = uuid::Uuid::new_v4().to_string();
        let now = call.now_ms();
        let scope = call.scope(member, call.region()?);
        let result = self
            .engine
            .create_secret(
                &scope,
                CreateSecretInput {
                    name: Some(req.key.clone()),
                    client_request_token: Some(version_id.clone()),
                    description: req.description,
                    secret_string: value.string.clone(),
                    secret_binary: value.binary.clone(),
                    tags: req.tags.as_deref().map(to_aws_tags),
                    secret_type: Some(kind.as_str().to_string()),
                    ..Default::default()
                },
                now,
            )
            .await;
        call.settle(&scope);
        let out = result?;
        written_reply(
            StatusCode::CREATED,
            &out.arn,
            &out.name,
            kind,
            out.version_id.as_deref(),
            Some(1),
            now,
        )
    }

    pub(super) async fn update_secret(
        &self,
        call: &mut Call,
        member: &Member,
        body: &[u8],
    ) -> Result<Reply, RestError> {
        let key = key_in_scope(call, member)?;
        let req: UpdateBody = parse_body(body)?;
        let now = call.now_ms();
        let scope = call.scope(member, call.region()?);
        // Without a type, keep the stored one (a json secret stays json).
        let kind = match req.kind {
            Some(k) => k,
            None => {
                let desc = self
                    .engine
                    .describe_secret(
                        &scope,
                        &SecretIdInput {
                            secret_id: Some(key.clone()),
                        },
                        now,
                    )
                    .await?;
                match stored_kind(&desc) {
                    Some(SecretKind::Binary) if !req.value.is_string() => SecretKind::Json,
                    Some(SecretKind::String) if !req.value.is_string() => SecretKind::Json,
                    Some(k) => k,
                    None => default_kind(&req.value),
                }
            }
        };
        let value = encode_value(kind, req.value)?;
        let version_id = uuid::Uuid::new_v4().to_string();
        let result = self
            .engine
            .update_secret(
                &scope,
                UpdateSecretInput {
                    secret_id: Some(key.clone()),
                    client_request_token: Some(version_id.clone()),
                    description: req.description,
                    secret_string: value.string.clone(),
                    secret_binary: value.binary.clone(),
                    secret_type: Some(kind.as_str().to_string()),
                    replace_tags: req.tags.as_deref().map(to_aws_tags),
                    ..Default::default()
                },
                now,
            )
            .await;
        call.settle(&scope);
        let out = result?;
        written_reply(
            StatusCode::OK,
            &out.arn,
            &out.name,
            kind,
            out.version_id.as_deref(),
            None,
            now,
        )
    }

    pub(super) async fn get_secret(
        &self,
        call: &mut Call,
        member: &Member,
    ) -> Result<Reply, RestError> {
        let key = key_in_scope(call, member)?;
        let now = call.now_ms();
        let scope = call.scope(member, call.region()?);
        let desc = self
            .engine
            .describe_secret(
                &scope,
                &SecretIdInput {
                    secret_id: Some(key.clone()),
                },
                now,
            )
            .await?;
        let versions = all_versions(self, &scope, &key, now).await?;
        let mut version_id = call.query("versionId").map(str::to_string);
        if let Some(n) = call.query("version") {
            let n: usize = n
                .parse()
                .map_err(|_| RestError::bad_request("version must be a positive integer."))?;
            let v = n
                .checked_sub(1)
                .and_then(|i| versions.get(i))
                .ok_or_else(|| RestError::not_found(format!("The secret has no version {n}.")))?;
            if version_id.as_ref().is_some_and(|id| *id != v.version_id) {
                return Err(RestError::bad_request(
                    "version and versionId name different versions.",
                ));
            }
            version_id = Some(v.version_id.clone());
        }
        let value = self
            .engine
            .get_secret_value(
                &scope,
                &GetSecretValueInput {
                    secret_id: Some(key.clone()),
                    version_id,
                    version_stage: call.query("stage").map(str::to_string),
                },
                now,
            )
            .await?;
        let position = versions
            .iter()
            .position(|v| v.version_id == value.version_id)
            .map(|i| i + 1);
        // The value is spliced into the body as JSON text so a json secret is returned
        // as JSON without building (and leaving behind) an unzeroized tree.
        let mut raw = Zeroizing::new(Vec::new());
        let kind = match (&value.secret_binary, &value.secret_string) {
            (Some(b), _) => {
                serde_json::to_writer(&mut *raw, b.as_str()).map_err(|_| RestError::internal())?;
                SecretKind::Binary
            }
            (None, Some(s))
                if stored_kind(&desc) == Some(SecretKind::Json)
                    && serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok() =>
            {
                raw.extend_from_slice(s.trim().as_bytes());
                SecretKind::Json
            }
            (None, s) => {
                let s = s.as_deref().map(|s| s.as_str()).unwrap_or("");
                serde_json::to_writer(&mut *raw, s).map_err(|_| RestError::internal())?;
                SecretKind::String
            }
        };
        let tags = from_aws_tags(&desc.tags);
        let meta = SecretMeta {
            id: &value.arn,
            key: &value.name,
            kind: kind.as_str(),
            version: position,
            version_id: &value.version_id,
            stages: &value.version_stages,
            version_created_at: rfc3339(value.created_date.0),
            created_at: rfc3339(desc.created_date.0),
            updated_at: rfc3339(desc.last_changed_date.0),
            metadata: Metadata {
                description: desc.description.as_deref(),
                tags,
            },
        };
        let meta = serde_json::to_vec(&meta).map_err(|_| RestError::internal())?;
        // `meta` is a non-empty object: `{"id":…}` → `{"value":<raw>,"id":…}`.
        let mut body = Vec::with_capacity(meta.len() + raw.len() + 16);
        body.extend_from_slice(b"{\"value\":");
        body.extend_from_slice(&raw);
        body.push(b',');
        body.extend_from_slice(&meta[1..]);
        Ok(Reply {
            status: StatusCode::OK,
            body,
        })
    }

    pub(super) async fn secret_versions(
        &self,
        call: &mut Call,
        member: &Member,
    ) -> Result<Reply, RestError> {
        let key = key_in_scope(call, member)?;
        let now = call.now_ms();
        let scope = call.scope(member, call.region()?);
        let desc = self
            .engine
            .describe_secret(
                &scope,
                &SecretIdInput {
                    secret_id: Some(key.clone()),
                },
                now,
            )
            .await?;
        let mut versions = all_versions(self, &scope, &key, now).await?;
        versions.reverse();
        Reply::json(
            StatusCode::OK,
            &serde_json::json!({"id": desc.arn, "key": desc.name, "versions": versions}),
        )
    }

    pub(super) async fn delete_secret(
        &self,
        call: &mut Call,
        member: &Member,
    ) -> Result<Reply, RestError> {
        let key = key_in_scope(call, member)?;
        let force = match call.query("force") {
            None | Some("false") => false,
            Some("true") | Some("") => true,
            Some(_) => return Err(RestError::bad_request("force must be true or false.")),
        };
        let window = call
            .query("recoveryWindowDays")
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    RestError::bad_request("recoveryWindowDays must be an integer from 7 to 30.")
                })
            })
            .transpose()?;
        let now = call.now_ms();
        let scope = call.scope(member, call.region()?);
        // AWS answers a forced delete of a missing secret with success; REST says 404.
        self.engine
            .describe_secret(
                &scope,
                &SecretIdInput {
                    secret_id: Some(key.clone()),
                },
                now,
            )
            .await?;
        let result = self
            .engine
            .delete_secret(
                &scope,
                &DeleteSecretInput {
                    secret_id: Some(key.clone()),
                    recovery_window_in_days: window,
                    force_delete_without_recovery: force.then_some(true),
                },
                now,
            )
            .await;
        call.settle(&scope);
        let out = result?;
        Reply::json(
            StatusCode::OK,
            &serde_json::json!({
                "id": out.arn,
                "key": out.name,
                "deletionDate": rfc3339(out.deletion_date.0),
                "recoverable": !force,
            }),
        )
    }

    pub(super) async fn list_secrets(
        &self,
        call: &mut Call,
        member: &Member,
    ) -> Result<Reply, RestError> {
        let prefix = call
            .query("prefix")
            .filter(|p| !p.is_empty())
            .map(str::to_string);
        if prefix.as_ref().is_some_and(|p| p.starts_with('!')) {
            return Err(RestError::bad_request("prefix cannot start with '!'."));
        }
        if let Some(p) = &prefix {
            call.row.resource_id = Some(crate::engine::validate::char_prefix(p, 512).to_string());
        }
        let limit = parse_limit(call, 100, 100)?;
        let now = call.now_ms();
        let scope = call.scope(member, call.region()?);
        let out = self
            .engine
            .list_secrets(
                &scope,
                &ListSecretsInput {
                    max_results: Some(limit),
                    next_token: call.query("cursor").map(str::to_string),
                    filters: prefix.map(|p| {
                        vec![Filter {
                            key: Some("name".into()),
                            values: vec![p],
                        }]
                    }),
                    sort_by: Some("name".into()),
                    sort_order: Some("asc".into()),
                    ..Default::default()
                },
                now,
            )
            .await?;
        let secrets: Vec<serde_json::Value> = out
            .secret_list
            .iter()
            .map(|s| {
                let current = s.secret_versions_to_stages.as_ref().and_then(|m| {
                    m.iter()
                        .find(|(_, stages)| stages.iter().any(|st| st == AWSCURRENT))
                        .map(|(id, _)| id.clone())
                });
                serde_json::json!({
                    "id": s.arn,
                    "key": s.name,
                    "type": stored_kind(s).map(SecretKind::as_str),
                    "versionId": current,
                    "createdAt": rfc3339(s.created_date.0),
                    "updatedAt": rfc3339(s.last_changed_date.0),
                    "metadata": {
                        "description": s.description,
                        "tags": from_aws_tags(&s.tags),
                    },
                })
            })
            .collect();
        Reply::json(
            StatusCode::OK,
            &serde_json::json!({"secrets": secrets, "nextCursor": out.next_token}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        let tags = vec![
            "env=prod".to_string(),
            "pci".to_string(),
            "a=b=c".to_string(),
        ];
        let aws = to_aws_tags(&tags);
        assert_eq!(aws[0].key, "env");
        assert_eq!(aws[0].value, "prod");
        assert_eq!(aws[1].value, "");
        assert_eq!(aws[2].value, "b=c");
        assert_eq!(from_aws_tags(&aws), tags);
    }

    #[test]
    fn values_by_kind() {
        let v = encode_value(SecretKind::Json, serde_json::json!({"a": 1})).unwrap();
        assert_eq!(v.string.as_deref(), Some(r#"{"a":1}"#));
        let v = encode_value(SecretKind::Json, serde_json::json!("[1,2]")).unwrap();
        assert_eq!(v.string.as_deref(), Some("[1,2]"));
        assert!(encode_value(SecretKind::Json, serde_json::json!("{nope")).is_err());
        assert!(encode_value(SecretKind::String, serde_json::json!(5)).is_err());
        let v = encode_value(SecretKind::Binary, serde_json::json!("AAEC")).unwrap();
        assert_eq!(v.binary.as_deref(), Some("AAEC"));
        assert_eq!(
            default_kind(&serde_json::json!({"x": true})),
            SecretKind::Json
        );
        assert_eq!(default_kind(&serde_json::json!("x")), SecretKind::String);
    }
}
