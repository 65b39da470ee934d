//! The OpenAPI 3.0 document served at `/api/v1/openapi.json`.
//!
//! Paths, methods, parameters, request bodies and responses are generated from
//! [`ROUTES`], the table the router matches, so the document lists exactly the routes
//! that exist. Only the schemas are written by hand, below.

use super::routes::{Guard, ROUTES, Route};
use serde_json::{Map, Value, json};

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "Bad JSON or an invalid member (ValidationError, InvalidJson, InvalidCursor).",
        401 => {
            "Missing, invalid or expired bearer token (MissingToken, InvalidToken, ExpiredToken) or wrong credentials (InvalidCredentials)."
        }
        403 => "The caller's role or scopes do not allow this (Forbidden).",
        404 => {
            "Unknown workspace, or one the caller is not a member of, or an unknown resource in it (NotFound)."
        }
        409 => "Already exists, or the resource's state forbids it (Conflict, InvalidState).",
        423 => {
            "The account is locked after repeated failed logins (AccountLocked); see Retry-After."
        }
        429 => "Too many login attempts from this address (TooManyRequests); see Retry-After.",
        _ => "Error.",
    }
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn path_params(route: &Route) -> Vec<Value> {
    route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let description = match name {
                "id" => "Workspace id.",
                "key" => "Secret name, percent-encoded (`/` may stay literal; encode a final `/versions` as `%2Fversions`).",
                "userId" => "User id.",
                "accessKeyId" => "Access key id.",
                _ => "",
            };
            json!({
                "name": name,
                "in": "path",
                "required": true,
                "description": description,
                "schema": {"type": "string"},
            })
        })
        .collect()
}

fn operation(route: &Route) -> Value {
    let mut parameters = path_params(route);
    for q in route.query {
        parameters.push(json!({
            "name": q.name,
            "in": "query",
            "required": false,
            "description": q.description,
            "schema": {"type": q.kind},
        }));
    }
    let mut responses = Map::new();
    responses.insert(
        route.status.to_string(),
        json!({
            "description": "Success.",
            "content": {"application/json": {"schema": schema_ref(route.response)}},
        }),
    );
    for status in route.errors {
        responses.insert(
            status.to_string(),
            json!({
                "description": error_description(*status),
                "content": {"application/json": {"schema": schema_ref("Error")}},
            }),
        );
    }
    responses.insert(
        "500".into(),
        json!({
            "description": "Server error, including an audit row that could not be written (no secret is returned).",
            "content": {"application/json": {"schema": schema_ref("Error")}},
        }),
    );
    let mut op = json!({
        "operationId": route.name,
        "summary": route.summary,
        "tags": [route.name.split('.').next().unwrap_or(route.name)],
        "parameters": parameters,
        "responses": responses,
    });
    op["security"] = match route.guard {
        Guard::Public => json!([]),
        _ => json!([{"bearerAuth": []}]),
    };
    if let Some(req) = route.request {
        op["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": schema_ref(req)}},
        });
    }
    op
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        entry[route.method.to_ascii_lowercase()] = operation(route);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "RAGnos Vault admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Workspaces, members, access keys, secrets and the audit log. The same secrets are served over the AWS Secrets Manager protocol at POST /.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
            "schemas": schemas(),
        },
    })
}

fn string_list() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

fn date_time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn role() -> Value {
    json!({"type": "string", "enum": ["admin", "write", "read"]})
}

fn schemas() -> Value {
    let mut m = Map::new();
    m.insert(
        "Error".into(),
        json!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }},
        }),
    );
    m.insert(
        "OpenApiDocument".into(),
        json!({"type": "object", "description": "This document."}),
    );
    m.insert("LoginRequest".into(), json!({
        "type": "object",
        "required": ["email", "password"],
        "properties": {"email": {"type": "string"}, "password": {"type": "string", "format": "password"}},
    }));
    m.insert("LoginResponse".into(), json!({
        "type": "object",
        "required": ["token", "tokenType", "expiresIn", "expiresAt", "userId", "workspaces"],
        "properties": {
            "token": {"type": "string", "description": "HS256 JWT: sub, iss=ragnos-vault, aud (workspace ids), workspaces {id: {role, scopes}}, exp, iat."},
            "tokenType": {"type": "string", "enum": ["Bearer"]},
            "expiresIn": {"type": "integer"},
            "expiresAt": date_time(),
            "userId": {"type": "string"},
            "workspaces": {"type": "object", "additionalProperties": schema_ref("Grant")},
        },
    }));
    m.insert(
        "Grant".into(),
        json!({
        "type": "object",
        "required": ["role", "scopes"],
        "properties": {"role": role(), "scopes": string_list()},
        }),
    );
    m.insert("CreateWorkspaceRequest".into(), json!({
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
            "accountId": {"type": "string", "pattern": "^[0-9]{12}$", "description": "AWS-style account id for ARNs; random if omitted."},
        },
    }));
    m.insert(
        "Workspace".into(),
        json!({
        "type": "object",
        "required": ["id", "name", "accountId", "createdAt", "role", "scopes"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "accountId": {"type": "string"},
            "createdAt": date_time(),
            "role": role(),
            "scopes": string_list(),
        },
        }),
    );
    m.insert("WorkspaceCreated".into(), json!({
        "allOf": [
            schema_ref("Workspace"),
            {"type": "object", "required": ["token"], "properties": {"token": schema_ref("LoginResponse")}},
        ],
    }));
    m.insert(
        "WorkspaceList".into(),
        json!({
        "type": "object",
        "required": ["workspaces"],
        "properties": {"workspaces": {"type": "array", "items": schema_ref("Workspace")}},
        }),
    );
    m.insert("WorkspaceDeleted".into(), json!({
        "type": "object",
        "properties": {"id": {"type": "string"}, "deleted": {"type": "boolean"}, "deletedAt": date_time()},
    }));
    m.insert("AddMemberRequest".into(), json!({
        "type": "object",
        "required": ["email", "role"],
        "properties": {
            "email": {"type": "string"},
            "password": {"type": "string", "format": "password", "description": "Creates the user when no user has this email (8-1024 characters); ignored otherwise."},
            "role": role(),
            "scopes": string_list(),
        },
    }));
    m.insert(
        "Member".into(),
        json!({
        "type": "object",
        "required": ["userId", "email", "role", "scopes"],
        "properties": {
            "userId": {"type": "string"},
            "email": {"type": "string"},
            "role": role(),
            "scopes": string_list(),
            "createdAt": date_time(),
            "userCreated": {"type": "boolean"},
        },
        }),
    );
    m.insert(
        "MemberList".into(),
        json!({
        "type": "object",
        "required": ["members"],
        "properties": {"members": {"type": "array", "items": schema_ref("Member")}},
        }),
    );
    m.insert(
        "MemberRemoved".into(),
        json!({
        "type": "object",
        "properties": {"userId": {"type": "string"}, "removed": {"type": "boolean"}},
        }),
    );
    m.insert(
        "CreateAccessKeyRequest".into(),
        json!({
        "type": "object",
        "required": ["role"],
        "properties": {"role": role(), "scopes": string_list()},
        }),
    );
    m.insert(
        "AccessKey".into(),
        json!({
        "type": "object",
        "required": ["accessKeyId", "role", "scopes", "createdAt", "active"],
        "properties": {
            "accessKeyId": {"type": "string"},
            "role": role(),
            "scopes": string_list(),
            "createdAt": date_time(),
            "revokedAt": {"type": "string", "format": "date-time", "nullable": true},
            "active": {"type": "boolean"},
        },
        }),
    );
    m.insert("AccessKeyCreated".into(), json!({
        "type": "object",
        "required": ["accessKeyId", "secretAccessKey", "workspaceId", "accountId", "role", "scopes", "createdAt"],
        "properties": {
            "accessKeyId": {"type": "string"},
            "secretAccessKey": {"type": "string", "description": "Shown only in this response."},
            "workspaceId": {"type": "string"},
            "accountId": {"type": "string"},
            "role": role(),
            "scopes": string_list(),
            "createdAt": date_time(),
        },
    }));
    m.insert(
        "AccessKeyList".into(),
        json!({
        "type": "object",
        "required": ["accessKeys"],
        "properties": {"accessKeys": {"type": "array", "items": schema_ref("AccessKey")}},
        }),
    );
    m.insert(
        "AccessKeyRevoked".into(),
        json!({
        "type": "object",
        "properties": {"accessKeyId": {"type": "string"}, "revokedAt": date_time()},
        }),
    );
    m.insert(
        "SecretType".into(),
        json!({"type": "string", "enum": ["string", "json", "binary"]}),
    );
    m.insert("CreateSecretRequest".into(), json!({
        "type": "object",
        "required": ["key", "value"],
        "properties": {
            "key": {"type": "string", "description": "Secret name (1-512 of A-Z a-z 0-9 /_+=.@-)."},
            "value": {"description": "string: a JSON string; json: any JSON value (or a string of JSON text); binary: base64 text."},
            "type": schema_ref("SecretType"),
            "description": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "key=value or key; stored as AWS tags."},
        },
    }));
    m.insert("UpdateSecretRequest".into(), json!({
        "type": "object",
        "required": ["value"],
        "properties": {
            "value": {"description": "As in CreateSecretRequest."},
            "type": schema_ref("SecretType"),
            "description": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "Replaces all tags when given."},
        },
    }));
    m.insert(
        "SecretWritten".into(),
        json!({
        "type": "object",
        "required": ["id", "key", "type", "versionId"],
        "properties": {
            "id": {"type": "string", "description": "The secret's ARN."},
            "key": {"type": "string"},
            "type": schema_ref("SecretType"),
            "versionId": {"type": "string"},
            "version": {"type": "integer", "nullable": true},
            "updatedAt": date_time(),
        },
        }),
    );
    m.insert("SecretMetadata".into(), json!({
        "type": "object",
        "properties": {"description": {"type": "string", "nullable": true}, "tags": string_list()},
    }));
    m.insert("SecretResponse".into(), json!({
        "type": "object",
        "required": ["id", "key", "value", "type", "version", "versionId", "createdAt", "updatedAt", "metadata"],
        "properties": {
            "id": {"type": "string", "description": "The secret's ARN."},
            "key": {"type": "string"},
            "value": {"description": "A string, a JSON value (type json) or base64 text (type binary)."},
            "type": schema_ref("SecretType"),
            "version": {"type": "integer", "description": "1-based number of this version by creation."},
            "versionId": {"type": "string"},
            "stages": string_list(),
            "versionCreatedAt": date_time(),
            "createdAt": date_time(),
            "updatedAt": date_time(),
            "metadata": schema_ref("SecretMetadata"),
        },
    }));
    m.insert("SecretSummary".into(), json!({
        "type": "object",
        "required": ["id", "key", "createdAt", "updatedAt", "metadata"],
        "properties": {
            "id": {"type": "string"},
            "key": {"type": "string"},
            "type": {"type": "string", "nullable": true, "description": "Set for secrets written through this API."},
            "versionId": {"type": "string", "nullable": true},
            "createdAt": date_time(),
            "updatedAt": date_time(),
            "metadata": schema_ref("SecretMetadata"),
        },
    }));
    m.insert(
        "SecretList".into(),
        json!({
        "type": "object",
        "required": ["secrets"],
        "properties": {
            "secrets": {"type": "array", "items": schema_ref("SecretSummary")},
            "nextCursor": {"type": "string", "nullable": true},
        },
        }),
    );
    m.insert(
        "SecretVersion".into(),
        json!({
        "type": "object",
        "required": ["version", "versionId", "stages", "createdAt"],
        "properties": {
            "version": {"type": "integer"},
            "versionId": {"type": "string"},
            "stages": string_list(),
            "createdAt": date_time(),
        },
        }),
    );
    m.insert(
        "SecretVersions".into(),
        json!({
        "type": "object",
        "required": ["id", "key", "versions"],
        "properties": {
            "id": {"type": "string"},
            "key": {"type": "string"},
            "versions": {"type": "array", "items": schema_ref("SecretVersion")},
        },
        }),
    );
    m.insert(
        "SecretDeleted".into(),
        json!({
        "type": "object",
        "required": ["id", "key", "deletionDate", "recoverable"],
        "properties": {
            "id": {"type": "string"},
            "key": {"type": "string"},
            "deletionDate": date_time(),
            "recoverable": {"type": "boolean"},
        },
        }),
    );
    m.insert("AuditEvent".into(), json!({
        "type": "object",
        "required": ["id", "at", "api", "action", "resourceType", "principal", "outcome", "status", "requestId"],
        "properties": {
            "id": {"type": "string"},
            "at": date_time(),
            "api": {"type": "string", "enum": ["aws", "rest"]},
            "action": {"type": "string"},
            "resourceType": {"type": "string"},
            "resourceId": {"type": "string", "nullable": true},
            "principal": {"type": "string"},
            "accessKeyId": {"type": "string", "nullable": true},
            "outcome": {"type": "string"},
            "status": {"type": "integer"},
            "sourceIp": {"type": "string", "nullable": true},
            "userAgent": {"type": "string", "nullable": true},
            "requestId": {"type": "string"},
        },
    }));
    m.insert("MigrateAwsRequest".into(), json!({
        "type": "object",
        "required": ["accessKeyId", "secretAccessKey"],
        "properties": {
            "fromRegion": {"type": "string", "description": "Source region (default us-east-1)."},
            "fromEndpointUrl": {"type": "string", "description": "Source endpoint override."},
            "accessKeyId": {"type": "string"},
            "secretAccessKey": {"type": "string", "format": "password", "writeOnly": true},
            "sessionToken": {"type": "string", "format": "password", "writeOnly": true},
            "targetRegion": {"type": "string", "description": "Region here (default: the source region)."},
            "dryRun": {"type": "boolean", "default": false},
        },
    }));
    m.insert("MigrationJob".into(), json!({
        "type": "object",
        "required": ["id", "workspaceId", "status", "done", "startedAt"],
        "properties": {
            "id": {"type": "string"},
            "workspaceId": {"type": "string"},
            "status": {"type": "string", "enum": ["running", "succeeded", "completed_with_differences", "failed"]},
            "total": {"type": "integer", "nullable": true},
            "done": {"type": "integer"},
            "startedAt": {"type": "string", "format": "date-time"},
            "finishedAt": {"type": "string", "format": "date-time", "nullable": true},
            "report": {"type": "object", "nullable": true, "description": "The importer's validation report (per secret and version: SHA-256 at source and target)."},
            "error": {"type": "string", "nullable": true},
        },
    }));
    m.insert(
        "AuditPage".into(),
        json!({
        "type": "object",
        "required": ["events"],
        "properties": {
            "events": {"type": "array", "items": schema_ref("AuditEvent")},
            "nextCursor": {"type": "string", "nullable": true},
        },
        }),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_ref_resolves() {
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let name = r.trim_start_matches("#/components/schemas/");
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "unresolved {r}"
            );
        }
    }
}
