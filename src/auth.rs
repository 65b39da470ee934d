//! Who is calling and what they may do: roles, permissions, and the keyring that maps an
//! AWS access key id to its workspace.
//!
//! The keyring caches access keys, unwrapped workspace keys and derived SigV4 signing
//! keys, so the GetSecretValue path does no key derivation and no extra database reads.

use crate::crypto::{CryptoError, MasterKey};
use crate::engine::cache::SecretCache;
use crate::engine::{EngineError, Tenant};
use crate::sigv4::SigningKey;
use crate::store::{Db, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// How long a cached access key is trusted before it is read again (revocations apply
/// within this window).
const KEY_TTL: Duration = Duration::from_secs(30);

/// A role, as the brief and seed RFC define them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, including workspace administration.
    Admin,
    /// Create, read, update and list secrets.
    Write,
    /// Read and list secrets.
    Read,
}

impl Role {
    /// Parse `admin` | `write` | `read`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "write" => Some(Role::Write),
            "read" => Some(Role::Read),
            _ => None,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Write => "write",
            Role::Read => "read",
        }
    }

    /// Does this role carry `p`?
    pub fn grants(self, p: Permission) -> bool {
        match self {
            Role::Admin => true,
            Role::Write => matches!(
                p,
                Permission::SecretCreate
                    | Permission::SecretRead
                    | Permission::SecretUpdate
                    | Permission::SecretList
            ),
            Role::Read => matches!(p, Permission::SecretRead | Permission::SecretList),
        }
    }
}

/// The seed RFC's permission set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// `secret:create`
    SecretCreate,
    /// `secret:read`
    SecretRead,
    /// `secret:update`
    SecretUpdate,
    /// `secret:delete`
    SecretDelete,
    /// `secret:list`
    SecretList,
    /// `audit:read`
    AuditRead,
    /// `workspace:admin`
    WorkspaceAdmin,
}

impl Permission {
    /// The permission's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::SecretCreate => "secret:create",
            Permission::SecretRead => "secret:read",
            Permission::SecretUpdate => "secret:update",
            Permission::SecretDelete => "secret:delete",
            Permission::SecretList => "secret:list",
            Permission::AuditRead => "audit:read",
            Permission::WorkspaceAdmin => "workspace:admin",
        }
    }
}

/// A caller's rights inside its workspace: a role and optional secret-name prefixes.
#[derive(Debug, Clone)]
pub struct Access {
    /// The role.
    pub role: Role,
    /// Secret-name prefixes the caller is limited to; empty means every name.
    pub scopes: Vec<String>,
}

impl Access {
    /// Full access, for the server's own maintenance work.
    pub fn admin() -> Access {
        Access {
            role: Role::Admin,
            scopes: Vec::new(),
        }
    }

    /// Deny unless the role carries `p`.
    pub fn check(&self, p: Permission) -> Result<(), EngineError> {
        if self.role.grants(p) {
            Ok(())
        } else {
            Err(EngineError::AccessDenied(format!(
                "The caller is not authorized to perform this operation (requires {}).",
                p.as_str()
            )))
        }
    }

    /// May the caller see a secret of this name?
    pub fn can_see(&self, name: &str) -> bool {
        self.scopes.is_empty() || self.scopes.iter().any(|p| name.starts_with(p.as_str()))
    }

    /// Are all of `scopes` within the caller's own prefixes? A caller may only hand out
    /// rights it holds: an unscoped caller covers anything, a scoped one only narrower,
    /// non-empty scope lists.
    pub fn covers(&self, scopes: &[String]) -> bool {
        self.scopes.is_empty()
            || (!scopes.is_empty()
                && scopes
                    .iter()
                    .all(|s| self.scopes.iter().any(|own| s.starts_with(own.as_str()))))
    }

    /// Deny a name outside the caller's prefixes. For an ARN the part after `:secret:` is
    /// checked, which starts with the name.
    pub fn check_name(&self, secret_id: &str) -> Result<(), EngineError> {
        let name = crate::engine::parse_arn(secret_id)
            .map(|a| a.tail)
            .unwrap_or(secret_id);
        if self.can_see(name) {
            Ok(())
        } else {
            Err(EngineError::AccessDenied(
                "The caller is not authorized to access this secret (outside the access key's scopes).".into(),
            ))
        }
    }
}

/// A cached, usable access key.
pub struct KeyEntry {
    /// The AKID.
    pub access_key_id: String,
    /// Owning workspace.
    pub workspace_id: String,
    /// Rights.
    pub access: Access,
    secret: Zeroizing<Vec<u8>>,
    loaded: Instant,
    /// Signing keys derived from `secret`, by date and region (at most [`SIGNING_KEPT`]): a
    /// key's requests nearly always share both, and a hit here allocates nothing.
    signing: Mutex<Vec<(String, String, SigningKey)>>,
}

impl KeyEntry {
    /// This key's SigV4 signing key for one day and region, derived once and kept.
    pub fn signing_key(&self, date: &str, region: &str) -> SigningKey {
        if let Ok(kept) = self.signing.lock()
            && let Some((_, _, k)) = kept.iter().find(|(d, r, _)| d == date && r == region)
        {
            return k.clone();
        }
        let derived = SigningKey::derive(&self.secret, date, region, "secretsmanager");
        if let Ok(mut kept) = self.signing.lock() {
            if kept.len() >= SIGNING_KEPT {
                kept.remove(0);
            }
            kept.push((date.to_owned(), region.to_owned(), derived.clone()));
        }
        derived
    }
}

/// Signing keys kept per access key: today's and yesterday's around midnight, in a couple
/// of Regions.
const SIGNING_KEPT: usize = 4;

/// Errors finding a caller's key.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored key did not decrypt: wrong master key or tampering.
    #[error("stored key material failed to decrypt")]
    Crypto(#[from] CryptoError),
    /// A referenced workspace is gone.
    #[error("workspace missing")]
    NoWorkspace,
}

/// Purpose string binding sealed access-key secrets.
pub const ACCESS_KEY_PURPOSE: &str = "access-key";

/// Caches access keys, workspace keys and SigV4 signing keys.
pub struct Keyring {
    db: Db,
    master: Arc<MasterKey>,
    keys: Mutex<HashMap<String, Arc<KeyEntry>>>,
    tenants: Mutex<HashMap<String, Arc<Tenant>>>,
    /// The other nodes, reached through the cache's Redis link, if there are any.
    peers: std::sync::OnceLock<Arc<SecretCache>>,
}

impl Keyring {
    /// A keyring over the store, unwrapping with `master`.
    pub fn new(db: Db, master: Arc<MasterKey>) -> Keyring {
        Keyring {
            db,
            master,
            keys: Mutex::new(HashMap::new()),
            tenants: Mutex::new(HashMap::new()),
            peers: std::sync::OnceLock::new(),
        }
    }

    /// Share revocations with the nodes behind `cache`'s Redis: each node announces the
    /// keys it revokes and drops those the others announce, so a revoked key fails at once
    /// on every node. While a node cannot be sure to hear announcements it reads every key
    /// from the database.
    pub fn share_revocations(self: &Arc<Self>, cache: Arc<SecretCache>) {
        let keyring = Arc::downgrade(self);
        cache.on_revocation(Box::new(move |what| {
            let Some(keyring) = keyring.upgrade() else {
                return;
            };
            match what.map(|w| w.split_once(':')) {
                Some(Some(("key", akid))) => keyring.drop_key(akid),
                Some(Some(("workspace", id))) => keyring.drop_workspace(id),
                // Unknown wording is treated like a lost announcement: forget everything.
                _ => keyring.drop_all(),
            }
        }));
        let _ = self.peers.set(cache);
    }

    /// The active key for `akid`, or `None` if unknown or revoked.
    pub async fn access_key(&self, akid: &str) -> Result<Option<Arc<KeyEntry>>, KeyringError> {
        let trusted = self.peers.get().is_none_or(|p| p.hears_revocations());
        if trusted
            && let Ok(keys) = self.keys.lock()
            && let Some(k) = keys.get(akid)
            && k.loaded.elapsed() < KEY_TTL
        {
            return Ok(Some(k.clone()));
        }
        let Some(row) = self.db.access_key(akid).await? else {
            return Ok(None);
        };
        if row.revoked_at.is_some() {
            if let Ok(mut keys) = self.keys.lock() {
                keys.remove(akid);
            }
            return Ok(None);
        }
        let secret = self
            .master
            .open_value(ACCESS_KEY_PURPOSE, akid, &row.sealed_secret)?;
        let scopes: Vec<String> = serde_json::from_str(&row.scopes).unwrap_or_default();
        let role = Role::parse(&row.role).unwrap_or(Role::Read);
        let entry = Arc::new(KeyEntry {
            access_key_id: row.access_key_id,
            workspace_id: row.workspace_id,
            access: Access { role, scopes },
            secret,
            loaded: Instant::now(),
            signing: Mutex::new(Vec::new()),
        });
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(akid.to_string(), entry.clone());
        }
        Ok(Some(entry))
    }

    /// A key was revoked: drop it (and with it its signing keys) here, so the next request
    /// with it fails, and announce it, so other nodes drop it as the announcement arrives
    /// (one that cannot be sure to hear them reads keys from the database meanwhile; the
    /// rare one that missed it while subscribed re-reads the key within [`KEY_TTL`]).
    pub async fn forget(&self, akid: &str) {
        self.drop_key(akid);
        self.announce(&format!("key:{akid}")).await;
    }

    /// A workspace was deleted: drop its key and every access key of it, on every node.
    pub async fn forget_workspace(&self, workspace_id: &str) {
        self.drop_workspace(workspace_id);
        self.announce(&format!("workspace:{workspace_id}")).await;
    }

    async fn announce(&self, what: &str) {
        if let Some(peers) = self.peers.get() {
            peers.announce_revocation(what).await;
        }
    }

    fn drop_key(&self, akid: &str) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.remove(akid);
        }
    }

    fn drop_workspace(&self, workspace_id: &str) {
        if let Ok(mut tenants) = self.tenants.lock() {
            tenants.remove(workspace_id);
        }
        if let Ok(mut keys) = self.keys.lock() {
            keys.retain(|_, k| k.workspace_id != workspace_id);
        }
    }

    fn drop_all(&self) {
        if let Ok(mut tenants) = self.tenants.lock() {
            tenants.clear();
        }
        if let Ok(mut keys) = self.keys.lock() {
            keys.clear();
        }
    }

    /// The workspace with its key unwrapped, cached.
    pub async fn tenant(&self, workspace_id: &str) -> Result<Arc<Tenant>, KeyringError> {
        if let Ok(t) = self.tenants.lock()
            && let Some(t) = t.get(workspace_id)
        {
            return Ok(t.clone());
        }
        let row = self
            .db
            .workspace(workspace_id)
            .await?
            .ok_or(KeyringError::NoWorkspace)?;
        let key = self
            .master
            .unwrap_workspace_key(&row.id, &row.wrapped_key)?;
        let tenant = Arc::new(Tenant {
            id: row.id,
            name: row.name,
            account_id: row.account_id,
            key,
        });
        if let Ok(mut t) = self.tenants.lock() {
            t.insert(workspace_id.to_string(), tenant.clone());
        }
        Ok(tenant)
    }
}
