//! The isolation matrix: every AWS operation × every role (and a scoped key, and no
//! credentials) × a secret of its own workspace, one outside its scope, one of another
//! workspace, and one that does not exist. Another workspace's secret must be
//! indistinguishable from a missing one, whatever the role.

use crate::both_backends;
use crate::harness::{ROOT_AKID, ROOT_SECRET, TestServer, unique};
use crate::raw::{Raw, Reply, send};
use ragnos_vault::protocol::Operation;
use serde_json::{Value, json};

/// A request body for `op` naming `id`, valid apart from the secret's existence.
fn body(op: Operation, id: &str) -> Value {
    let token = uuid::Uuid::new_v4().to_string();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    match op {
        Operation::CreateSecret => {
            json!({"Name": id, "SecretString": "v", "ClientRequestToken": token})
        }
        Operation::PutSecretValue => {
            json!({"SecretId": id, "SecretString": "v2", "ClientRequestToken": token})
        }
        Operation::UpdateSecret => json!({"SecretId": id, "Description": "d"}),
        Operation::UpdateSecretVersionStage => {
            json!({"SecretId": id, "VersionStage": "CUSTOM", "MoveToVersionId": "00000000-0000-0000-0000-000000000001"})
        }
        Operation::DeleteSecret => json!({"SecretId": id, "RecoveryWindowInDays": 7}),
        Operation::TagResource => json!({"SecretId": id, "Tags": [{"Key": "k", "Value": "v"}]}),
        Operation::UntagResource => json!({"SecretId": id, "TagKeys": ["k"]}),
        Operation::BatchGetSecretValue => json!({"SecretIdList": [id]}),
        Operation::PutResourcePolicy => json!({"SecretId": id, "ResourcePolicy": policy}),
        Operation::ValidateResourcePolicy => json!({"SecretId": id, "ResourcePolicy": policy}),
        Operation::ListSecrets => json!({}),
        Operation::GetRandomPassword => json!({}),
        Operation::RotateSecret => json!({"SecretId": id, "ClientRequestToken": token}),
        Operation::ReplicateSecretToRegions => {
            json!({"SecretId": id, "AddReplicaRegions": [{"Region": "eu-west-1"}]})
        }
        Operation::RemoveRegionsFromReplication => {
            json!({"SecretId": id, "RemoveReplicaRegions": ["eu-west-1"]})
        }
        Operation::AssociateCrossAccountReplica | Operation::DisassociateCrossAccountReplica => {
            json!({"SecretId": id, "CrossAccountReplicaARN": "arn:aws:secretsmanager:us-east-1:444455556666:secret:x-abcdef"})
        }
        _ => json!({"SecretId": id}),
    }
}

/// Operations that must find the secret they name (and so answer ResourceNotFoundException
/// for another workspace's).
fn addresses_secret(op: Operation) -> bool {
    !matches!(
        op,
        Operation::CreateSecret | Operation::ListSecrets | Operation::GetRandomPassword
    )
}

/// AssociateCrossAccountReplica on one's own secret is refused by the replica account's trust
/// (no workspace can grant AcceptCrossAccountReplication yet), not by the caller's role.
fn refused_by_replica_account(op: Operation, r: &Reply) -> bool {
    op == Operation::AssociateCrossAccountReplica
        && r.code() == "AccessDeniedException"
        && r.message()
            .contains("secretsmanager:AcceptCrossAccountReplication")
}

fn role_allows(role: &str, op: Operation) -> bool {
    use ragnos_vault::auth::Role;
    Role::parse(role).expect("role").grants(op.permission())
}

/// Normalise a reply so two replies compare equal iff the caller learns the same thing.
/// Request ids differ by construction; BatchGetSecretValue echoes the id it was given.
fn observable(r: &Reply, id: &str) -> String {
    let text = String::from_utf8_lossy(&r.raw).replace(id, "<ID>");
    format!("{} {text}", r.status)
}

async fn isolation_matrix(server: &TestServer) {
    let root = Raw::new(&server.endpoint, ROOT_AKID, ROOT_SECRET);
    // Another workspace with a secret the matrix callers must never learn about.
    let (oakid, osecret, _) = server.new_workspace_key("admin", &[]);
    let other = Raw::new(&server.endpoint, &oakid, &osecret);
    let foreign = format!("team-a/{}", unique("foreign"));
    let r = other.call_json("CreateSecret", json!({"Name": foreign, "SecretString": "other-tenant", "ClientRequestToken": uuid::Uuid::new_v4().to_string()})).await;
    assert_eq!(r.status, 200);

    let mut callers: Vec<(String, Raw)> = Vec::new();
    for role in ["admin", "write", "read"] {
        let (a, s, _) = server.new_key("default", role, &[]);
        callers.push((role.to_string(), Raw::new(&server.endpoint, &a, &s)));
    }
    let (a, s, _) = server.new_key("default", "write", &["team-a/"]);
    callers.push((
        "scoped-write".to_string(),
        Raw::new(&server.endpoint, &a, &s),
    ));

    for op in Operation::ALL {
        for (who, caller) in &callers {
            let role = who.trim_start_matches("scoped-");
            let scoped = who.starts_with("scoped-");
            // Fresh secrets of our own workspace for this cell: one in scope, one outside.
            let inside = format!("team-a/{}", unique("own"));
            let outside = format!("team-b/{}", unique("own"));
            for name in [&inside, &outside] {
                let r = root.call_json("CreateSecret", json!({"Name": name, "SecretString": "own", "ClientRequestToken": uuid::Uuid::new_v4().to_string()})).await;
                assert_eq!(r.status, 200);
            }
            let missing = format!("team-a/{}", unique("missing"));

            if op == Operation::CreateSecret {
                // Creating a name another workspace uses creates our own secret.
                let r = caller
                    .call_json(op.name(), body(op, &format!("team-a/{}", unique("new"))))
                    .await;
                if role_allows(role, op) {
                    assert_eq!(
                        r.status,
                        200,
                        "CreateSecret as {who}: {}",
                        String::from_utf8_lossy(&r.raw)
                    );
                } else {
                    assert_eq!(r.code(), "AccessDeniedException", "CreateSecret as {who}");
                }
                continue;
            }
            // Another workspace's secret looks exactly like a missing one.
            let to_foreign = caller.call_json(op.name(), body(op, &foreign)).await;
            let to_missing = caller.call_json(op.name(), body(op, &missing)).await;
            // (GetRandomPassword names no secret and answers randomly; compare its status only.)
            let (f, m) = if op == Operation::GetRandomPassword {
                (to_foreign.status.to_string(), to_missing.status.to_string())
            } else {
                (
                    observable(&to_foreign, &foreign),
                    observable(&to_missing, &missing),
                )
            };
            assert_eq!(
                f,
                m,
                "{} as {who}: another workspace's secret is distinguishable from a missing one",
                op.name()
            );
            if op == Operation::BatchGetSecretValue && role_allows(role, op) {
                assert_eq!(to_foreign.json["SecretValues"], json!([]), "batch as {who}");
                assert_eq!(
                    to_foreign.json["Errors"][0]["ErrorCode"], "ResourceNotFoundException",
                    "batch as {who}"
                );
            } else if addresses_secret(op) {
                assert_ne!(
                    to_foreign.status,
                    200,
                    "{} as {who} succeeded on another workspace's secret",
                    op.name()
                );
            }
            assert!(!String::from_utf8_lossy(&to_foreign.raw).contains("other-tenant"));

            // Own secrets: permission and scope decide, never existence.
            let own = caller.call_json(op.name(), body(op, &inside)).await;
            if !role_allows(role, op) {
                assert_eq!(
                    own.code(),
                    "AccessDeniedException",
                    "{} as {who}",
                    op.name()
                );
                assert_eq!(
                    to_foreign.code(),
                    "AccessDeniedException",
                    "{} as {who}",
                    op.name()
                );
            } else {
                assert!(
                    own.code() != "AccessDeniedException" || refused_by_replica_account(op, &own),
                    "{} as {who}: {}",
                    op.name(),
                    String::from_utf8_lossy(&own.raw)
                );
                if op == Operation::AssociateCrossAccountReplica {
                    assert!(
                        refused_by_replica_account(op, &own),
                        "{} as {who}",
                        op.name()
                    );
                }
                assert_ne!(
                    own.code(),
                    "ResourceNotFoundException",
                    "{} as {who} lost its own secret",
                    op.name()
                );
                if addresses_secret(op)
                    && op != Operation::BatchGetSecretValue
                    && !matches!(op, Operation::ValidateResourcePolicy)
                {
                    assert_eq!(
                        to_foreign.code(),
                        "ResourceNotFoundException",
                        "{} as {who}",
                        op.name()
                    );
                }
            }
            if scoped
                && addresses_secret(op)
                && role_allows(role, op)
                && op != Operation::ValidateResourcePolicy
            {
                let out = caller.call_json(op.name(), body(op, &outside)).await;
                if op == Operation::BatchGetSecretValue {
                    assert_eq!(
                        out.json["Errors"][0]["ErrorCode"], "AccessDeniedException",
                        "batch outside scope"
                    );
                } else {
                    assert_eq!(
                        out.code(),
                        "AccessDeniedException",
                        "{} as {who} outside its scope",
                        op.name()
                    );
                }
            }
        }
        // No credentials at all.
        let mut req = root.signed_at(
            op.name(),
            body(op, &foreign).to_string().as_bytes(),
            std::time::SystemTime::now(),
            &[],
        );
        req.headers_mut().remove("authorization");
        let r = send(req).await;
        assert_eq!(
            r.code(),
            "MissingAuthenticationTokenException",
            "{} without credentials",
            op.name()
        );
    }
    // The other workspace's secret is untouched after all of that.
    let r = other
        .call_json("GetSecretValue", json!({"SecretId": foreign}))
        .await;
    assert_eq!(r.json["SecretString"], "other-tenant");
    let r = other
        .call_json("DescribeSecret", json!({"SecretId": foreign}))
        .await;
    assert!(
        r.json.get("Tags").is_none() && r.json.get("DeletedDate").is_none(),
        "{}",
        r.json
    );
}
both_backends!(isolation_matrix);
