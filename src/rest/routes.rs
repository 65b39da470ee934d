//! The route table of `/api/v1`: the one list the router matches, the OpenAPI document
//! describes, and the tests compare, so the three cannot drift apart.
//!
//! Matching works on the raw (still percent-encoded) path. A `{key}` parameter is greedy
//! (secret names contain `/`), so `…/secrets/{key}/versions` is tried before
//! `…/secrets/{key}`: a GET whose raw path ends in `/versions` lists versions. A secret
//! whose own name ends in `/versions` is read by encoding its last `/` as `%2F`
//! (`encodeURIComponent` does that for the whole name).

use crate::auth::Permission;
use percent_encoding::percent_decode_str;

/// Which route a request matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum RouteId {
    Login,
    OpenApi,
    WorkspacesCreate,
    WorkspacesList,
    WorkspacesGet,
    WorkspacesDelete,
    MembersList,
    MembersAdd,
    MembersRemove,
    AccessKeysList,
    AccessKeysCreate,
    AccessKeysRevoke,
    SecretsCreate,
    SecretsList,
    SecretsVersions,
    SecretsGet,
    SecretsUpdate,
    SecretsDelete,
    AuditQuery,
    MigrateAwsStart,
    MigrateAwsStatus,
}

/// What a caller needs before a route's handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Anyone (login, the OpenAPI document).
    Public,
    /// Any valid bearer token.
    User,
    /// A token of a member of the path's workspace holding this permission (`None`: any
    /// member).
    Member(Option<Permission>),
}

/// One query parameter, for the OpenAPI document.
#[derive(Debug, Clone, Copy)]
pub struct QueryParam {
    /// Name.
    pub name: &'static str,
    /// OpenAPI type: `string`, `integer` or `boolean`.
    pub kind: &'static str,
    /// What it does.
    pub description: &'static str,
}

/// One route of the REST API.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// Which handler.
    pub id: RouteId,
    /// HTTP method.
    pub method: &'static str,
    /// Path template in OpenAPI syntax, including `/api/v1`.
    pub path: &'static str,
    /// Route name: the audit action and the OpenAPI operationId.
    pub name: &'static str,
    /// Who may call it.
    pub guard: Guard,
    /// Audit resource type.
    pub resource_type: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Request body schema (a component name).
    pub request: Option<&'static str>,
    /// Success status.
    pub status: u16,
    /// Success body schema (a component name).
    pub response: &'static str,
    /// Query parameters.
    pub query: &'static [QueryParam],
    /// Error statuses the route can answer with.
    pub errors: &'static [u16],
}

const fn q(name: &'static str, kind: &'static str, description: &'static str) -> QueryParam {
    QueryParam {
        name,
        kind,
        description,
    }
}

const REGION: QueryParam = q(
    "region",
    "string",
    "Region of the secret (default us-east-1), as in the AWS credential scope.",
);

/// Every route, in matching order.
pub const ROUTES: &[Route] = &[
    Route {
        id: RouteId::Login,
        method: "POST",
        path: "/api/v1/auth/login",
        name: "auth.login",
        guard: Guard::Public,
        resource_type: "user",
        summary: "Log in with email and password; returns a short-lived JWT.",
        request: Some("LoginRequest"),
        status: 200,
        response: "LoginResponse",
        query: &[],
        errors: &[400, 401, 423, 429],
    },
    Route {
        id: RouteId::OpenApi,
        method: "GET",
        path: "/api/v1/openapi.json",
        name: "openapi",
        guard: Guard::Public,
        resource_type: "api",
        summary: "This OpenAPI 3.0 document.",
        request: None,
        status: 200,
        response: "OpenApiDocument",
        query: &[],
        errors: &[],
    },
    Route {
        id: RouteId::WorkspacesCreate,
        method: "POST",
        path: "/api/v1/workspaces",
        name: "workspaces.create",
        guard: Guard::User,
        resource_type: "workspace",
        summary: "Create a workspace; the caller (an admin of some workspace) becomes its admin.",
        request: Some("CreateWorkspaceRequest"),
        status: 201,
        response: "WorkspaceCreated",
        query: &[],
        errors: &[400, 401, 403, 409],
    },
    Route {
        id: RouteId::WorkspacesList,
        method: "GET",
        path: "/api/v1/workspaces",
        name: "workspaces.list",
        guard: Guard::User,
        resource_type: "workspace",
        summary: "Workspaces the token grants.",
        request: None,
        status: 200,
        response: "WorkspaceList",
        query: &[],
        errors: &[401],
    },
    Route {
        id: RouteId::WorkspacesGet,
        method: "GET",
        path: "/api/v1/workspaces/{id}",
        name: "workspaces.get",
        guard: Guard::Member(None),
        resource_type: "workspace",
        summary: "One workspace and the caller's role in it.",
        request: None,
        status: 200,
        response: "Workspace",
        query: &[],
        errors: &[401, 404],
    },
    Route {
        id: RouteId::WorkspacesDelete,
        method: "DELETE",
        path: "/api/v1/workspaces/{id}",
        name: "workspaces.delete",
        guard: Guard::Member(Some(Permission::WorkspaceAdmin)),
        resource_type: "workspace",
        summary: "Delete a workspace with all its secrets, members and access keys.",
        request: None,
        status: 200,
        response: "WorkspaceDeleted",
        query: &[],
        errors: &[401, 403, 404],
    },
    Route {
        id: RouteId::MembersList,
        method: "GET",
        path: "/api/v1/workspaces/{id}/members",
        name: "members.list",
        guard: Guard::Member(Some(Permission::WorkspaceAdmin)),
        resource_type: "member",
        summary: "Members of a workspace.",
        request: None,
        status: 200,
        response: "MemberList",
        query: &[],
        errors: &[401, 403, 404],
    },
    Route {
        id: RouteId::MembersAdd,
        method: "POST",
        path: "/api/v1/workspaces/{id}/members",
        name: "members.add",
        guard: Guard::Member(Some(Permission::WorkspaceAdmin)),
        resource_type: "member",
        summary: "Add a member (creating the user when a password is given) or change a member's role.",
        request: Some("AddMemberRequest"),
        status: 201,
        response: "Member",
        query: &[],
        errors: &[400, 401, 403, 404, 409],
    },
    Route {
        id: RouteId::MembersRemove,
        method: "DELETE",
        path: "/api/v1/workspaces/{id}/members/{userId}",
        name: "members.remove",
        guard: Guard::Member(Some(Permission::WorkspaceAdmin)),
        resource_type: "member",
        summary: "Remove a member (the last admin cannot be removed).",
        request: None,
        status: 200,
        response: "MemberRemoved",
        query: &[],
        errors: &[401, 403, 404, 409],
    },
    Route {
        id: RouteId::AccessKeysList,
        method: "GET",
        path: "/api/v1/workspaces/{id}/access-keys",
        name: "access_keys.list",
        guard: Guard::Member(Some(Permission::WorkspaceAdmin)),
        resource_type: "access_key",
        summary: "Access keys of a workspace, without their secrets.",
        request: None,
        status: 200,
        response: "AccessKeyList",
        query: &[],
        errors: &[401, 403, 404],
    },
    Route {
        id: RouteId::AccessKeysCreate,
        method: "POST",
        path: "/api/v1/workspaces/{id}/access-keys",
        name: "access_keys.create",
        guard: Guard::Member(Some(Permission::WorkspaceAdmin)),
        resource_type: "access_key",
        summary: "Mint an AWS-style access key; the secret is returned only here.",
        request: Some("CreateAccessKeyRequest"),
        status: 201,
        response: "AccessKeyCreated",
        query: &[],
        errors: &[400, 401, 403, 404],
    },
    Route {
        id: RouteId::AccessKeysRevoke,
        method: "DELETE",
        path: "/api/v1/workspaces/{id}/access-keys/{accessKeyId}",
        name: "access_keys.revoke",
        guard: Guard::Member(Some(Permission::WorkspaceAdmin)),
        resource_type: "access_key",
        summary: "Revoke an access key; it stops working at once.",
        request: None,
        status: 200,
        response: "AccessKeyRevoked",
        query: &[],
        errors: &[401, 403, 404],
    },
    Route {
        id: RouteId::SecretsCreate,
        method: "POST",
        path: "/api/v1/workspaces/{id}/secrets",
        name: "secrets.create",
        guard: Guard::Member(Some(Permission::SecretCreate)),
        resource_type: "secret",
        summary: "Create a secret (the same secret the AWS API serves).",
        request: Some("CreateSecretRequest"),
        status: 201,
        response: "SecretWritten",
        query: &[REGION],
        errors: &[400, 401, 403, 404, 409],
    },
    Route {
        id: RouteId::SecretsList,
        method: "GET",
        path: "/api/v1/workspaces/{id}/secrets",
        name: "secrets.list",
        guard: Guard::Member(Some(Permission::SecretList)),
        resource_type: "secret",
        summary: "List secrets (metadata only), optionally by name prefix.",
        request: None,
        status: 200,
        response: "SecretList",
        query: &[
            q("prefix", "string", "Only names starting with this prefix."),
            q("limit", "integer", "Page size, 1-100 (default 100)."),
            q("cursor", "string", "Opaque cursor from the previous page."),
            REGION,
        ],
        errors: &[400, 401, 403, 404],
    },
    Route {
        id: RouteId::SecretsVersions,
        method: "GET",
        path: "/api/v1/workspaces/{id}/secrets/{key}/versions",
        name: "secrets.versions",
        guard: Guard::Member(Some(Permission::SecretRead)),
        resource_type: "secret",
        summary: "All versions of a secret, newest first (no values).",
        request: None,
        status: 200,
        response: "SecretVersions",
        query: &[REGION],
        errors: &[401, 403, 404],
    },
    Route {
        id: RouteId::SecretsGet,
        method: "GET",
        path: "/api/v1/workspaces/{id}/secrets/{key}",
        name: "secrets.get",
        guard: Guard::Member(Some(Permission::SecretRead)),
        resource_type: "secret",
        summary: "Read a secret's value and metadata (current version unless one is named).",
        request: None,
        status: 200,
        response: "SecretResponse",
        query: &[
            q("versionId", "string", "A version id."),
            q(
                "version",
                "integer",
                "A version number (1 = the first version).",
            ),
            q("stage", "string", "A staging label such as AWSPREVIOUS."),
            REGION,
        ],
        errors: &[400, 401, 403, 404, 409],
    },
    Route {
        id: RouteId::SecretsUpdate,
        method: "PUT",
        path: "/api/v1/workspaces/{id}/secrets/{key}",
        name: "secrets.update",
        guard: Guard::Member(Some(Permission::SecretUpdate)),
        resource_type: "secret",
        summary: "Write a new current version, and optionally type, description and tags.",
        request: Some("UpdateSecretRequest"),
        status: 200,
        response: "SecretWritten",
        query: &[REGION],
        errors: &[400, 401, 403, 404, 409],
    },
    Route {
        id: RouteId::SecretsDelete,
        method: "DELETE",
        path: "/api/v1/workspaces/{id}/secrets/{key}",
        name: "secrets.delete",
        guard: Guard::Member(Some(Permission::SecretDelete)),
        resource_type: "secret",
        summary: "Schedule deletion after a recovery window (default 30 days), or delete at once.",
        request: None,
        status: 200,
        response: "SecretDeleted",
        query: &[
            q(
                "force",
                "boolean",
                "Delete at once, without a recovery window.",
            ),
            q(
                "recoveryWindowDays",
                "integer",
                "Recovery window, 7-30 days (default 30).",
            ),
            REGION,
        ],
        errors: &[400, 401, 403, 404, 409],
    },
    Route {
        id: RouteId::AuditQuery,
        method: "GET",
        path: "/api/v1/workspaces/{id}/audit",
        name: "audit.query",
        guard: Guard::Member(Some(Permission::AuditRead)),
        resource_type: "audit",
        summary: "The workspace's audit log, newest first, filtered and paged with a cursor.",
        request: None,
        status: 200,
        response: "AuditPage",
        query: &[
            q(
                "from",
                "string",
                "Earliest time, inclusive (RFC 3339 or epoch milliseconds).",
            ),
            q(
                "to",
                "string",
                "Latest time, exclusive (RFC 3339 or epoch milliseconds).",
            ),
            q(
                "action",
                "string",
                "Exact action, e.g. secrets.get or GetSecretValue.",
            ),
            q(
                "principal",
                "string",
                "Exact principal, e.g. user:<id> or key:<access key id>.",
            ),
            q(
                "resource",
                "string",
                "Exact resource id, e.g. a secret name.",
            ),
            q("outcome", "string", "success, or an error code."),
            q("limit", "integer", "Page size, 1-1000 (default 100)."),
            q("cursor", "string", "Opaque cursor from the previous page."),
        ],
        errors: &[400, 401, 403, 404],
    },
    Route {
        id: RouteId::MigrateAwsStart,
        method: "POST",
        path: "/api/v1/workspaces/{id}/migrate/aws",
        name: "migrate.aws.start",
        guard: Guard::Member(Some(Permission::WorkspaceAdmin)),
        resource_type: "migration",
        summary: "Start importing every secret of an AWS account and region (or any Secrets Manager-compatible endpoint) into this workspace; returns a job to poll.",
        request: Some("MigrateAwsRequest"),
        status: 202,
        response: "MigrationJob",
        query: &[],
        errors: &[400, 401, 403, 404],
    },
    Route {
        id: RouteId::MigrateAwsStatus,
        method: "GET",
        path: "/api/v1/workspaces/{id}/migrate/aws/{jobId}",
        name: "migrate.aws.status",
        guard: Guard::Member(Some(Permission::WorkspaceAdmin)),
        resource_type: "migration",
        summary: "Progress of an import job and, once finished, its validation report (SHA-256 per version, never values).",
        request: None,
        status: 200,
        response: "MigrationJob",
        query: &[],
        errors: &[401, 403, 404],
    },
];

/// Decoded path parameters of a matched route.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PathParams {
    /// `{id}`: the workspace.
    pub workspace_id: Option<String>,
    /// `{key}`: the secret name.
    pub key: Option<String>,
    /// `{userId}`.
    pub user_id: Option<String>,
    /// `{accessKeyId}`.
    pub access_key_id: Option<String>,
    /// `{jobId}`.
    pub job_id: Option<String>,
}

/// The outcome of routing one request.
#[derive(Debug)]
pub enum Matched {
    /// A route and its parameters.
    Route(&'static Route, PathParams),
    /// The path exists with other methods (answer 405 with `Allow`).
    WrongMethod(Vec<&'static str>),
    /// No route has this path.
    NotFound,
}

fn decode(raw: &str) -> Option<String> {
    percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Match `raw_path` (still percent-encoded) against one template.
fn match_template(template: &str, raw_path: &str) -> Option<PathParams> {
    let tpl: Vec<&str> = template.split('/').collect();
    let segs: Vec<&str> = raw_path.split('/').collect();
    let mut params = PathParams::default();
    let mut i = 0;
    for (t_idx, t) in tpl.iter().enumerate() {
        let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) else {
            if segs.get(i) != Some(t) {
                return None;
            }
            i += 1;
            continue;
        };
        let value = if name == "key" {
            // Greedy: everything up to the template's remaining literal segments.
            let rest = tpl.len() - t_idx - 1;
            if segs.len() < i + 1 + rest {
                return None;
            }
            let end = segs.len() - rest;
            let joined = segs[i..end].join("/");
            i = end;
            joined
        } else {
            let s = segs.get(i)?.to_string();
            i += 1;
            s
        };
        if value.is_empty() {
            return None;
        }
        let value = decode(&value)?;
        match name {
            "id" => params.workspace_id = Some(value),
            "key" => params.key = Some(value),
            "userId" => params.user_id = Some(value),
            "accessKeyId" => params.access_key_id = Some(value),
            "jobId" => params.job_id = Some(value),
            _ => return None,
        }
    }
    (i == segs.len()).then_some(params)
}

/// Route a request by method and raw path.
pub fn route(method: &str, raw_path: &str) -> Matched {
    let mut allowed = Vec::new();
    for r in ROUTES {
        if let Some(params) = match_template(r.path, raw_path) {
            if r.method == method {
                return Matched::Route(r, params);
            }
            if !allowed.contains(&r.method) {
                allowed.push(r.method);
            }
        }
    }
    if allowed.is_empty() {
        Matched::NotFound
    } else {
        Matched::WrongMethod(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(method: &str, path: &str) -> (&'static str, PathParams) {
        match route(method, path) {
            Matched::Route(r, p) => (r.name, p),
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    #[test]
    fn secret_keys_with_slashes_and_versions_suffix() {
        let (name, p) = hit("GET", "/api/v1/workspaces/w1/secrets/app/db/password");
        assert_eq!(name, "secrets.get");
        assert_eq!(p.key.as_deref(), Some("app/db/password"));
        assert_eq!(p.workspace_id.as_deref(), Some("w1"));
        let (name, p) = hit("GET", "/api/v1/workspaces/w1/secrets/app/db/versions");
        assert_eq!(name, "secrets.versions");
        assert_eq!(p.key.as_deref(), Some("app/db"));
        // An encoded last slash reads a secret whose name ends in /versions.
        let (name, p) = hit("GET", "/api/v1/workspaces/w1/secrets/app%2Fversions");
        assert_eq!(name, "secrets.get");
        assert_eq!(p.key.as_deref(), Some("app/versions"));
        let (name, p) = hit("PUT", "/api/v1/workspaces/w1/secrets/a/versions");
        assert_eq!(name, "secrets.update");
        assert_eq!(p.key.as_deref(), Some("a/versions"));
        let (name, p) = hit("DELETE", "/api/v1/workspaces/w1/secrets/a%20b");
        assert_eq!(name, "secrets.delete");
        assert_eq!(p.key.as_deref(), Some("a b"));
    }

    #[test]
    fn methods_and_unknown_paths() {
        assert!(matches!(
            route("PATCH", "/api/v1/workspaces"),
            Matched::WrongMethod(m) if m == vec!["POST", "GET"]
        ));
        assert!(matches!(route("GET", "/api/v1/nope"), Matched::NotFound));
        assert!(matches!(
            route("GET", "/api/v1/workspaces/w1/secrets/"),
            Matched::NotFound
        ));
        let (name, p) = hit("DELETE", "/api/v1/workspaces/w1/access-keys/AKIA1");
        assert_eq!(name, "access_keys.revoke");
        assert_eq!(p.access_key_id.as_deref(), Some("AKIA1"));
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert_ne!(a.name, b.name);
                assert!(a.method != b.method || a.path != b.path);
            }
        }
    }
}
