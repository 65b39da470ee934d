//! Workspace and access-key administration, shared by first start, the admin CLI and
//! (later) the REST API.

use crate::auth::{ACCESS_KEY_PURPOSE, Role};
use crate::crypto::{MasterKey, WorkspaceKey};
use crate::store::{AccessKeyRow, Db, StoreError, WorkspaceRow};
use serde::Serialize;
use zeroize::Zeroizing;

/// Errors of administrative actions.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Bad input from the operator.
    #[error("{0}")]
    Invalid(String),
    /// The name is taken.
    #[error("{0} already exists")]
    Exists(String),
    /// Not found.
    #[error("{0} not found")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A newly minted access key; the secret is shown once.
#[derive(Serialize)]
pub struct NewAccessKey {
    /// Workspace name.
    pub workspace: String,
    /// Workspace account id.
    pub account_id: String,
    /// The AKID.
    pub access_key_id: String,
    /// The secret access key (only ever returned here).
    #[serde(serialize_with = "crate::engine::types::sensitive")]
    pub secret_access_key: Zeroizing<String>,
    /// Role.
    pub role: String,
    /// Name-prefix scopes.
    pub scopes: Vec<String>,
}

/// A random string over `alphabet`, without modulo bias.
fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut out = String::with_capacity(len);
    let limit = 256 - (256 % alphabet.len());
    while out.len() < len {
        let bytes: [u8; 32] = crate::crypto::random_bytes();
        for b in bytes {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// A fresh AKID in AWS's shape (`AKIA` + 16 base32 characters).
pub fn generate_access_key_id() -> String {
    format!(
        "AKIA{}",
        random_string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
    )
}

/// A fresh 40-character secret access key.
pub fn generate_secret_access_key() -> Zeroizing<String> {
    Zeroizing::new(random_string(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        40,
    ))
}

/// A random 12-digit account id that does not start with 0.
pub fn generate_account_id() -> String {
    let first = random_string(b"123456789", 1);
    format!("{first}{}", random_string(b"0123456789", 11))
}

/// Check a workspace name: 1–64 of `[A-Za-z0-9_.-]`.
fn check_workspace_name(name: &str) -> Result<(), AdminError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(AdminError::Invalid(
            "workspace name must be 1-64 characters of A-Z a-z 0-9 - _ .".into(),
        ));
    }
    Ok(())
}

/// Create a workspace with a fresh wrapped key.
pub async fn create_workspace(
    db: &Db,
    master: &MasterKey,
    name: &str,
    account_id: Option<&str>,
    now_ms: i64,
) -> Result<WorkspaceRow, AdminError> {
    check_workspace_name(name)?;
    let account_id = match account_id {
        Some(a) if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) => a.to_string(),
        Some(_) => {
            return Err(AdminError::Invalid(
                "account id must be exactly 12 digits".into(),
            ));
        }
        None => generate_account_id(),
    };
    let id = uuid::Uuid::new_v4().to_string();
    let key = WorkspaceKey::generate();
    let row = WorkspaceRow {
        wrapped_key: master.wrap_workspace_key(&id, &key),
        id,
        name: name.to_string(),
        account_id,
        created_at: now_ms,
    };
    match db.insert_workspace(&row).await {
        Ok(()) => Ok(row),
        Err(StoreError::Conflict) => Err(AdminError::Exists(format!(
            "workspace '{name}' or its account id"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Mint an access key for a workspace; `given` lets first start use operator-chosen keys.
pub async fn create_access_key(
    db: &Db,
    master: &MasterKey,
    workspace: &WorkspaceRow,
    role: Role,
    scopes: Vec<String>,
    given: Option<(String, Zeroizing<String>)>,
    now_ms: i64,
) -> Result<NewAccessKey, AdminError> {
    let (akid, secret) = match given {
        Some((id, secret)) => {
            if id.len() < 16 || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(AdminError::Invalid(
                    "access key id must be 16-128 alphanumeric characters".into(),
                ));
            }
            if secret.len() < 16 {
                return Err(AdminError::Invalid(
                    "secret access key must be at least 16 characters".into(),
                ));
            }
            (id, secret)
        }
        None => (generate_access_key_id(), generate_secret_access_key()),
    };
    let row = AccessKeyRow {
        sealed_secret: master.seal_value(ACCESS_KEY_PURPOSE, &akid, secret.as_bytes()),
        access_key_id: akid.clone(),
        workspace_id: workspace.id.clone(),
        role: role.as_str().to_string(),
        scopes: serde_json::to_string(&scopes).unwrap_or_else(|_| "[]".into()),
        created_at: now_ms,
        revoked_at: None,
    };
    match db.insert_access_key(&row).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(AdminError::Exists(format!("access key {akid}"))),
        Err(e) => return Err(e.into()),
    }
    Ok(NewAccessKey {
        workspace: workspace.name.clone(),
        account_id: workspace.account_id.clone(),
        access_key_id: akid,
        secret_access_key: secret,
        role: role.as_str().to_string(),
        scopes,
    })
}
