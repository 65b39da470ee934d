//! Start-up: resolve the master key, open and migrate the database, and provision the
//! `default` workspace on first start.

use crate::admin::{self, AdminError};
use crate::auth::Role;
use crate::config::StorageArgs;
use crate::crypto::MasterKey;
use crate::store::{Db, MembershipRow, StoreError, UserRow, WorkspaceRow};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Start-up failures, each with an operator-facing message.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The master key could not be read or created.
    #[error("master key: {0}")]
    MasterKey(String),
    /// The key does not match the database.
    #[error(
        "the master key does not match this database (fingerprint {found}, expected {expected})"
    )]
    WrongMasterKey {
        /// Fingerprint of the key given.
        found: String,
        /// Fingerprint stored in the database.
        expected: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Provisioning failed.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// Filesystem trouble.
    #[error("{0}")]
    Io(String),
    /// Bad start-up configuration (the message names the setting).
    #[error("{0}")]
    Config(String),
}

/// Current time in epoch milliseconds.
pub fn now_ms() -> i64 {
    crate::protocol::now_ms(std::time::SystemTime::now())
}

/// Resolve the master key: `VAULT_MASTER_KEY` (base64), else the key file, else a
/// generated development key in the data directory (with a loud warning).
pub fn master_key(args: &StorageArgs) -> Result<Arc<MasterKey>, BootError> {
    if let Ok(b64) = std::env::var("VAULT_MASTER_KEY")
        && !b64.trim().is_empty()
    {
        return MasterKey::from_base64(&b64)
            .map(Arc::new)
            .map_err(|e| BootError::MasterKey(e.to_string()));
    }
    if let Some(path) = &args.master_key_file {
        let (key, _) = MasterKey::load_or_create_file(path, false)
            .map_err(|e| BootError::MasterKey(e.to_string()))?;
        return Ok(Arc::new(key));
    }
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| BootError::Io(format!("creating {}: {e}", args.data_dir.display())))?;
    let path = args.data_dir.join("master.key");
    let (key, created) = MasterKey::load_or_create_file(&path, true)
        .map_err(|e| BootError::MasterKey(e.to_string()))?;
    let verb = if created { "generated" } else { "using" };
    eprintln!(
        "WARNING: {verb} a development master key at {} (mode 0600). Anyone who can read this file \
         can decrypt every secret. In production set VAULT_MASTER_KEY or --master-key-file.",
        path.display()
    );
    Ok(Arc::new(key))
}

/// Open the database (migrating it) and check the master key against it.
pub async fn open(args: &StorageArgs) -> Result<(Db, Arc<MasterKey>), BootError> {
    let master = master_key(args)?;
    let url = args.database_url();
    if let Some(path) = url.strip_prefix("sqlite://")
        && let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| BootError::Io(format!("creating {}: {e}", dir.display())))?;
    }
    let db = Db::connect(&url, args.db_pool).await?;
    let fingerprint = master.fingerprint();
    let stored = db
        .meta_insert_if_absent("master_key_fingerprint", &fingerprint)
        .await?;
    if stored != fingerprint {
        return Err(BootError::WrongMasterKey {
            found: fingerprint,
            expected: stored,
        });
    }
    Ok((db, master))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// First start: create workspace `default` and its admin access key unless it exists,
/// then the root admin user from `RAGNOS_ROOT_EMAIL` / `RAGNOS_ROOT_PASSWORD` unless a
/// user with that email exists (also on a later start, so the user can be added to an
/// existing deployment). Returns the new key when one was generated, so the caller can
/// print it once.
pub async fn provision_default(
    db: &Db,
    master: &MasterKey,
) -> Result<Option<admin::NewAccessKey>, BootError> {
    let (ws, key) = match db.workspace_by_name("default").await? {
        Some(ws) => (ws, None),
        None => {
            let account = env("RAGNOS_ROOT_ACCOUNT_ID");
            match admin::create_workspace(db, master, "default", account.as_deref(), now_ms()).await
            {
                Ok(ws) => {
                    let given = match (
                        env("RAGNOS_ROOT_ACCESS_KEY_ID"),
                        env("RAGNOS_ROOT_SECRET_ACCESS_KEY"),
                    ) {
                        (Some(id), Some(secret)) => Some((id, Zeroizing::new(secret))),
                        _ => None,
                    };
                    let key = admin::create_access_key(
                        db,
                        master,
                        &ws,
                        Role::Admin,
                        Vec::new(),
                        given,
                        now_ms(),
                    )
                    .await?;
                    (ws, Some(key))
                }
                // Another node provisioned it first.
                Err(AdminError::Exists(_)) => match db.workspace_by_name("default").await? {
                    Some(ws) => (ws, None),
                    None => return Ok(None),
                },
                Err(e) => return Err(e.into()),
            }
        }
    };
    provision_root_user(db, &ws).await?;
    Ok(key)
}

/// Create the `RAGNOS_ROOT_EMAIL` user (argon2id hash of `RAGNOS_ROOT_PASSWORD`) as an
/// admin of `ws`, unless a user with that email already exists. Returns whether it did.
pub async fn provision_root_user(db: &Db, ws: &WorkspaceRow) -> Result<bool, BootError> {
    let (Some(email), Some(password)) = (env("RAGNOS_ROOT_EMAIL"), env("RAGNOS_ROOT_PASSWORD"))
    else {
        return Ok(false);
    };
    let password = Zeroizing::new(password);
    let email = email.trim().to_lowercase();
    if !email.contains('@') {
        return Err(BootError::Config(
            "RAGNOS_ROOT_EMAIL must be an email address".into(),
        ));
    }
    if password.chars().count() < crate::rest::login::MIN_PASSWORD_LEN {
        return Err(BootError::Config(format!(
            "RAGNOS_ROOT_PASSWORD must be at least {} characters",
            crate::rest::login::MIN_PASSWORD_LEN
        )));
    }
    if db.user_by_email(&email).await?.is_some() {
        return Ok(false);
    }
    let hash = crate::rest::login::hash_password(password)
        .await
        .map_err(BootError::Config)?;
    let now = now_ms();
    let user = UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.clone(),
        password_hash: hash,
        created_at: now,
        failed_logins: 0,
        locked_until: None,
    };
    match db.insert_user(&user).await {
        Ok(()) => {}
        // Another node created it first.
        Err(StoreError::Conflict) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    db.upsert_membership(&MembershipRow {
        workspace_id: ws.id.clone(),
        user_id: user.id.clone(),
        role: Role::Admin.as_str().into(),
        scopes: "[]".into(),
        created_at: now,
    })
    .await?;
    tracing::info!(email = %email, workspace = %ws.name, "created the root admin user");
    Ok(true)
}
