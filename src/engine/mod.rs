//! The engine: secrets, versions and staging labels with AWS Secrets Manager semantics.
//!
//! Every operation takes a [`Scope`] (which workspace, which region, what the caller may
//! touch) and the time `now`, so lifecycles are testable without sleeping. A write loads
//! the secret, computes its new state in memory, and commits it with an optimistic
//! revision check; a lost race simply runs the operation again.

pub mod cache;
pub mod labels;
pub mod list;
pub mod password;
pub mod policy;
mod recheck;
pub mod replication;
pub mod rotation;
pub mod types;
pub mod validate;

use crate::audit::AuditWriter;
use crate::auth::Access;
use crate::crypto::{VersionAad, WorkspaceKey};
use crate::store::{
    Db, HeldRead, SecretLookup, SecretRow, SecretWrite, StageRow, StoreError, Touch,
    VersionMetaRow, VersionRow,
};
use base64::Engine as _;
use cache::{CachedState, CurrentVersion};
use labels::{AWSCURRENT, Labels};
use std::collections::BTreeMap;
use std::sync::Arc;
use types::*;
use zeroize::Zeroizing;

/// Largest SecretString or SecretBinary (bytes), from the service model.
pub const MAX_SECRET_BYTES: usize = 65536;
const DAY_MS: i64 = 86_400_000;
/// How often a write retries after losing an optimistic-concurrency race.
const MAX_RETRIES: usize = 16;

/// Domain errors; `protocol` maps each to its AWS `__type` and status.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// ResourceNotFoundException.
    #[error("{0}")]
    NotFound(String),
    /// ResourceExistsException.
    #[error("{0}")]
    Exists(String),
    /// InvalidRequestException.
    #[error("{0}")]
    InvalidRequest(String),
    /// InvalidParameterException.
    #[error("{0}")]
    InvalidParameter(String),
    /// ValidationException (a model constraint).
    #[error("{0}")]
    Validation(String),
    /// InvalidNextTokenException.
    #[error("{0}")]
    InvalidNextToken(String),
    /// MalformedPolicyDocumentException.
    #[error("{0}")]
    MalformedPolicy(String),
    /// PublicPolicyException.
    #[error("{0}")]
    PublicPolicy(String),
    /// LimitExceededException.
    #[error("{0}")]
    LimitExceeded(String),
    /// AccessDeniedException.
    #[error("{0}")]
    AccessDenied(String),
    /// DecryptionFailure: a stored value failed authentication.
    #[error("Secrets Manager can't decrypt the protected secret text using the provided KMS key.")]
    Decryption,
    /// The store failed (never shown to clients verbatim).
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Shorthand for engine results.
pub type EngineResult<T> = Result<T, EngineError>;

const NOT_FOUND: &str = "Secrets Manager can't find the specified secret.";
const MARKED_FOR_DELETION: &str =
    "You can't perform this operation on the secret because it was marked for deletion.";

fn not_found() -> EngineError {
    EngineError::NotFound(NOT_FOUND.into())
}

/// See [`SecretState::refuse_if_replica`].
fn refuse_if_replica(row: &SecretRow) -> EngineResult<()> {
    if row.primary_region.is_some() {
        return Err(EngineError::InvalidParameter(
            "Operation not permitted on a replica secret. Call must be made in primary secret's region."
                .into(),
        ));
    }
    Ok(())
}

/// A workspace as the engine needs it: ids and its unwrapped key.
pub struct Tenant {
    /// Internal workspace id.
    pub id: String,
    /// Workspace name.
    pub name: String,
    /// 12-digit account id used in ARNs.
    pub account_id: String,
    /// The workspace key, unwrapped.
    pub key: WorkspaceKey,
}

/// Who is asking, where: the workspace, the region of the credential scope, and the
/// caller's permissions.
pub struct Scope {
    /// The caller's workspace.
    pub tenant: Arc<Tenant>,
    /// Region from the SigV4 credential scope.
    pub region: String,
    /// What the caller may do.
    pub access: Access,
    /// The request's audit row, committed with any mutation it makes (`None` for the
    /// server's own maintenance work).
    pub audit: Option<crate::audit::AuditContext>,
}

/// A loaded secret: its row and its staging labels.
#[derive(Debug, Clone, PartialEq)]
struct SecretState {
    row: SecretRow,
    versions: Vec<VersionMetaRow>,
    labels: Labels,
}

impl SecretState {
    fn from_rows(row: SecretRow, versions: Vec<VersionMetaRow>, stages: Vec<StageRow>) -> Self {
        SecretState {
            row,
            versions,
            labels: stages
                .into_iter()
                .map(|s| (s.stage, s.version_id))
                .collect(),
        }
    }

    /// Does `self` equal `other` but for LastAccessedDate? Reads record that date without
    /// invalidating anything (see [`Engine::touch_read`]), so a recheck that finds only it
    /// changed can take the database's state instead of dropping the cached one.
    fn equal_but_accessed(&self, other: &SecretState) -> bool {
        let row = |s: &SecretState| SecretRow {
            last_accessed_at: None,
            ..s.row.clone()
        };
        self.labels == other.labels
            && self.versions.len() == other.versions.len()
            && self
                .versions
                .iter()
                .zip(&other.versions)
                .all(|(a, b)| (&a.version_id, a.created_at) == (&b.version_id, b.created_at))
            && row(self) == row(other)
    }

    fn has_version(&self, version_id: &str) -> bool {
        self.versions.iter().any(|v| v.version_id == version_id)
    }

    fn stage_rows(&self) -> Vec<StageRow> {
        self.labels
            .iter()
            .map(|(stage, version_id)| StageRow {
                secret_id: self.row.id.clone(),
                stage: stage.clone(),
                version_id: version_id.clone(),
                workspace_id: self.row.workspace_id.clone(),
            })
            .collect()
    }

    fn refuse_if_deleted(&self) -> EngineResult<()> {
        if self.row.deleted_at.is_some() {
            return Err(EngineError::InvalidRequest(MARKED_FOR_DELETION.into()));
        }
        Ok(())
    }

    /// Replicas are read-only: every write goes through the primary (AWS answers
    /// InvalidParameterException, as recorded against it).
    fn refuse_if_replica(&self) -> EngineResult<()> {
        refuse_if_replica(&self.row)
    }

    fn rotation(&self) -> Option<Rotation> {
        self.row
            .rotation
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
    }

    fn tags(&self) -> Vec<Tag> {
        serde_json::from_str(&self.row.tags).unwrap_or_default()
    }

    fn policies(&self) -> BTreeMap<String, String> {
        self.row
            .resource_policy
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default()
    }

    fn arn_name(&self) -> ArnName {
        ArnName {
            arn: self.row.arn.clone(),
            name: self.row.name.clone(),
        }
    }

    /// A copy to mutate, with the revision bumped.
    fn next_row(&self, now: i64) -> SecretRow {
        let mut row = self.row.clone();
        row.revision += 1;
        row.last_changed_at = now;
        row
    }
}

/// A secret value as the client sent it, decoded and checked.
struct NewValue {
    bytes: Zeroizing<Vec<u8>>,
    is_binary: bool,
}

/// A version's value in the clear, to be sealed for another secret (a replica).
struct PlainVersion {
    version_id: String,
    created_at: i64,
    is_binary: bool,
    bytes: Zeroizing<Vec<u8>>,
}

/// Decode SecretString / SecretBinary: exactly one, within the size limit.
fn new_value(string: &Option<String>, binary: &Option<String>) -> EngineResult<Option<NewValue>> {
    match (string, binary) {
        (Some(_), Some(_)) => Err(EngineError::InvalidParameter(
            "You can't specify both a binary secret value and a string secret value in the same secret.".into(),
        )),
        (Some(s), None) => {
            if s.is_empty() || s.len() > MAX_SECRET_BYTES {
                validate::length("secretString", s, 1, MAX_SECRET_BYTES, true)?;
                return Err(EngineError::Validation(
                    "1 validation error detected: Value at 'secretString' failed to satisfy constraint: Member must have length less than or equal to 65536".into(),
                ));
            }
            Ok(Some(NewValue { bytes: Zeroizing::new(s.as_bytes().to_vec()), is_binary: false }))
        }
        (None, Some(b)) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(b.as_bytes()).map_err(|_| {
                EngineError::InvalidParameter("SecretBinary must be valid base64.".into())
            })?;
            let bytes = Zeroizing::new(bytes);
            if bytes.is_empty() || bytes.len() > MAX_SECRET_BYTES {
                let why = if bytes.is_empty() {
                    "Member must have length greater than or equal to 1"
                } else {
                    "Member must have length less than or equal to 65536"
                };
                return Err(EngineError::Validation(format!(
                    "1 validation error detected: Value at 'secretBinary' failed to satisfy constraint: {why}"
                )));
            }
            Ok(Some(NewValue { bytes, is_binary: true }))
        }
        (None, None) => Ok(None),
    }
}

/// The token that names a new version; raw clients must send one, as with AWS.
fn require_token(token: &Option<String>) -> EngineResult<String> {
    let token = token.as_deref().ok_or_else(|| {
        EngineError::InvalidRequest(
            "You must provide a ClientRequestToken value. We recommend a UUID-type value.".into(),
        )
    })?;
    validate::version_token("clientRequestToken", token)?;
    Ok(token.to_string())
}

/// Has `row`'s recovery window ended by `now`? Such a secret is gone as far as AWS is
/// concerned, though not yet purged.
fn recovery_ended(row: &SecretRow, now: i64) -> bool {
    row.deletion_date.is_some_and(|d| d <= now)
}

/// Six random characters for the ARN suffix, as AWS appends.
pub(crate) fn arn_suffix() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let bytes: [u8; 6] = crate::crypto::random_bytes();
    // 256 is not a multiple of 62; the slight bias is harmless for a name suffix.
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The engine: its database handle and the hot-path cache.
#[derive(Clone)]
pub struct Engine {
    db: Db,
    cache: Arc<cache::SecretCache>,
    /// Where audited reads queue their LastAccessedDate, to commit with the audit rows.
    reads: Option<AuditWriter>,
    /// Where reads queue aging cached states for a background recheck.
    rechecks: Option<recheck::Rechecks>,
}

impl Engine {
    /// An engine over `db` with a node-local cache.
    pub fn new(db: Db) -> Self {
        Self::with_cache(db, Arc::new(cache::SecretCache::new()))
    }

    /// An engine over `db` with a given (e.g. Redis-coordinated) cache.
    pub fn with_cache(db: Db, cache: Arc<cache::SecretCache>) -> Self {
        Engine {
            rechecks: recheck::Rechecks::start(db.clone(), cache.clone()),
            db,
            cache,
            reads: None,
        }
    }

    /// Record audited reads' LastAccessedDate through `writer`'s group commit, in the
    /// audit batch the request waits on anyway, instead of one write transaction per read.
    pub fn recording_reads_with(mut self, writer: AuditWriter) -> Self {
        self.reads = Some(writer);
        self
    }

    /// The cache (shared with the importer, so its writes drop cached states).
    pub fn cache(&self) -> Arc<cache::SecretCache> {
        self.cache.clone()
    }

    /// The database handle.
    pub fn db(&self) -> &Db {
        &self.db
    }

    fn aad<'a>(scope: &'a Scope, secret_id: &'a str, version_id: &'a str) -> VersionAad<'a> {
        VersionAad {
            workspace_id: &scope.tenant.id,
            secret_id,
            version_id,
        }
    }

    fn seal(
        scope: &Scope,
        secret_id: &str,
        version_id: &str,
        value: &NewValue,
        now: i64,
    ) -> VersionRow {
        let sealed = scope
            .tenant
            .key
            .seal(&Self::aad(scope, secret_id, version_id), &value.bytes);
        VersionRow {
            secret_id: secret_id.to_string(),
            version_id: version_id.to_string(),
            workspace_id: scope.tenant.id.clone(),
            sealed_value: sealed,
            is_binary: value.is_binary,
            created_at: now,
            last_accessed_at: None,
        }
    }

    /// How `secret_id` (a name, full ARN or partial ARN) names a secret of the caller's
    /// workspace and region; `None` for an ARN of another region or account, which names
    /// nothing here.
    fn lookup_of<'a>(scope: &Scope, secret_id: &'a str) -> Option<SecretLookup<'a>> {
        match parse_arn(secret_id) {
            Some(arn) if arn.region != scope.region || arn.account != scope.tenant.account_id => {
                None
            }
            Some(arn) => Some(SecretLookup::Arn {
                arn: secret_id,
                tail: arn.tail,
            }),
            None => Some(SecretLookup::Name(secret_id)),
        }
    }

    /// Look a secret up by name, full ARN or partial ARN. Expired secrets are purged here.
    async fn find(
        &self,
        scope: &Scope,
        secret_id: &str,
        now: i64,
    ) -> EngineResult<Option<SecretRow>> {
        let Some(lookup) = Self::lookup_of(scope, secret_id) else {
            return Ok(None);
        };
        self.find_in(scope, &scope.region, &lookup, now).await
    }

    /// Purge `row` if its recovery window ended (reads purge lazily); true if it did.
    async fn purge_if_expired(
        &self,
        scope: &Scope,
        row: &SecretRow,
        now: i64,
    ) -> EngineResult<bool> {
        if !recovery_ended(row, now) {
            return Ok(false);
        }
        self.db
            .purge_secret(&scope.tenant.id, &row.id, None)
            .await?;
        self.cache
            .invalidate(&row.workspace_id, &row.region, &row.name)
            .await;
        Ok(true)
    }

    /// Look a secret up by name in any Region of the caller's workspace (replication).
    async fn find_named(
        &self,
        scope: &Scope,
        region: &str,
        name: &str,
        now: i64,
    ) -> EngineResult<Option<SecretRow>> {
        self.find_in(scope, region, &SecretLookup::Name(name), now)
            .await
    }

    async fn find_in(
        &self,
        scope: &Scope,
        region: &str,
        lookup: &SecretLookup<'_>,
        now: i64,
    ) -> EngineResult<Option<SecretRow>> {
        let row = self
            .db
            .find_secret(&scope.tenant.id, region, lookup)
            .await?;
        match row {
            Some(r) if self.purge_if_expired(scope, &r, now).await? => Ok(None),
            other => Ok(other),
        }
    }

    async fn load(&self, row: SecretRow) -> EngineResult<SecretState> {
        let (versions, stages) = self
            .db
            .versions_and_stages(&row.workspace_id, &row.id)
            .await?;
        let labels = stages
            .into_iter()
            .map(|s| (s.stage, s.version_id))
            .collect();
        Ok(SecretState {
            row,
            versions,
            labels,
        })
    }

    /// Find and load for a read, from the cache when it is current.
    async fn cached_state(
        &self,
        scope: &Scope,
        secret_id: &str,
        now: i64,
    ) -> EngineResult<Arc<SecretState>> {
        Ok(self.cached_entry(scope, secret_id, now).await?.0)
    }

    /// [`Engine::cached_state`], with the cache entry that holds it (none when the state
    /// could not be cached).
    async fn cached_entry(
        &self,
        scope: &Scope,
        secret_id: &str,
        now: i64,
    ) -> EngineResult<(Arc<SecretState>, Option<Arc<CachedState>>)> {
        scope.access.check_name(secret_id)?;
        if let Some(hit) = self
            .cache
            .state(&scope.tenant.id, &scope.region, secret_id)
            .await
            && hit.state.row.workspace_id == scope.tenant.id
            && !recovery_ended(&hit.state.row, now)
        {
            scope.access.check_name(&hit.state.row.name)?;
            if let Some(rechecks) = &self.rechecks
                && self.cache.claim_recheck(&hit)
            {
                rechecks.queue(&self.cache, scope, secret_id, &hit);
            }
            return Ok((hit.state.clone(), Some(hit)));
        }
        // Generations are read before the database, so a write racing this load leaves
        // the entry already outdated rather than wrongly current.
        let snapshots = self
            .cache
            .snapshots(&scope.tenant.id, &scope.region, secret_id)
            .await;
        // So is the change count, for the same reason.
        let changes = self.db.known_changes();
        let state = Arc::new(self.load_state(scope, secret_id, now, true).await?);
        let entry = self
            .cache
            .put_state(secret_id, &snapshots, changes, state.clone());
        Ok((state, entry))
    }

    /// One version row (with its sealed value), cached: versions never change.
    async fn version_row(
        &self,
        scope: &Scope,
        secret_id: &str,
        version_id: &str,
    ) -> EngineResult<Option<Arc<VersionRow>>> {
        if let Some(v) = self.cache.version(secret_id, version_id) {
            return Ok(Some(v));
        }
        let Some(v) = self
            .db
            .version(&scope.tenant.id, secret_id, version_id)
            .await?
        else {
            return Ok(None);
        };
        let v = Arc::new(v);
        self.cache.put_version(v.clone());
        Ok(Some(v))
    }

    /// Find and load from the database (writes, cache misses), checking the caller's scope.
    /// The row, its versions and labels come from one read transaction.
    async fn state(&self, scope: &Scope, secret_id: &str, now: i64) -> EngineResult<SecretState> {
        self.load_state(scope, secret_id, now, false).await
    }

    /// [`Engine::state`]; with `for_read`, the AWSCURRENT version's row (with its value)
    /// comes in the same transaction and goes into the version cache, where the read that
    /// missed will look for it next.
    async fn load_state(
        &self,
        scope: &Scope,
        secret_id: &str,
        now: i64,
        for_read: bool,
    ) -> EngineResult<SecretState> {
        Ok(self
            .load_state_held(scope, secret_id, now, for_read, false)
            .await?
            .0)
    }

    /// [`Engine::state`] for a write that follows, which passes the [`HeldRead`] to
    /// [`Engine::commit`]; see [`Db::find_secret_state_held`]. Drop the held read before any
    /// other database call.
    async fn state_for_write(
        &self,
        scope: &Scope,
        secret_id: &str,
        now: i64,
    ) -> EngineResult<(SecretState, HeldRead)> {
        self.load_state_held(scope, secret_id, now, false, true)
            .await
    }

    async fn load_state_held(
        &self,
        scope: &Scope,
        secret_id: &str,
        now: i64,
        for_read: bool,
        hold: bool,
    ) -> EngineResult<(SecretState, HeldRead)> {
        scope.access.check_name(secret_id)?;
        let lookup = Self::lookup_of(scope, secret_id).ok_or_else(not_found)?;
        let label = for_read.then_some(AWSCURRENT);
        let (found, held) = self
            .db
            .find_secret_state_held(&scope.tenant.id, &scope.region, &lookup, label, hold)
            .await?;
        let (row, (versions, stages, current)) = found.ok_or_else(not_found)?;
        if recovery_ended(&row, now) {
            // The purge needs a connection of its own.
            drop(held);
            self.purge_if_expired(scope, &row, now).await?;
            return Err(not_found());
        }
        scope.access.check_name(&row.name)?;
        if let Some(v) = current {
            self.cache.put_version(Arc::new(v));
        }
        Ok((SecretState::from_rows(row, versions, stages), held))
    }

    /// Run a read-modify-write operation, retrying when another writer won the race.
    async fn retrying<T, F, Fut>(&self, mut attempt: F) -> EngineResult<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = EngineResult<T>>,
    {
        let mut tries = 0;
        loop {
            match attempt().await {
                Err(EngineError::Store(StoreError::Conflict)) if tries < MAX_RETRIES => tries += 1,
                other => return other,
            }
        }
    }

    /// Decrypt one version and check it equals `value` (idempotent replays).
    async fn same_value(
        &self,
        scope: &Scope,
        state: &SecretState,
        version_id: &str,
        value: &NewValue,
    ) -> EngineResult<bool> {
        let Some(v) = self
            .db
            .version(&scope.tenant.id, &state.row.id, version_id)
            .await?
        else {
            return Ok(false);
        };
        let plain = scope
            .tenant
            .key
            .open(
                &Self::aad(scope, &state.row.id, version_id),
                &v.sealed_value,
            )
            .map_err(|_| EngineError::Decryption)?;
        Ok(v.is_binary == value.is_binary && crate::crypto::constant_time_eq(&plain, &value.bytes))
    }

    fn token_in_use(token: &str, arn: &str) -> EngineError {
        EngineError::Exists(format!(
            "You can't use ClientRequestToken {token} because that value is already in use for a version of secret {arn}."
        ))
    }

    // ------------------------------------------------------------------ CreateSecret

    /// CreateSecret.
    pub async fn create_secret(
        &self,
        scope: &Scope,
        input: CreateSecretInput,
        now: i64,
    ) -> EngineResult<VersionOutput> {
        let name = validate::required("name", &input.name)?.clone();
        validate::secret_name(&name)?;
        validate::opt_length("description", &input.description, 0, 2048)?;
        validate::opt_length("kmsKeyId", &input.kms_key_id, 0, 2048)?;
        let tags = input.tags.clone().unwrap_or_default();
        validate::tags(&tags)?;
        // An empty list asks for no replicas (the model's minimum of one is not enforced
        // here, as before replication was served).
        let replica_regions = replication::requested_regions(
            input.add_replica_regions.as_deref().unwrap_or(&[]),
            &scope.region,
        )?;
        let force_overwrite = input.force_overwrite_replica_secret.unwrap_or(false);
        scope.access.check_name(&name)?;
        let value = new_value(&input.secret_string, &input.secret_binary)?;
        let token = match &value {
            Some(_) => Some(require_token(&input.client_request_token)?),
            None => {
                if let Some(t) = &input.client_request_token {
                    validate::version_token("clientRequestToken", t)?;
                }
                None
            }
        };
        self.retrying(|| async {
            if let Some(existing) = self.find(scope, &name, now).await? {
                let state = self.load(existing).await?;
                if state.row.deleted_at.is_some() {
                    return Err(EngineError::InvalidRequest(
                        "You can't create this secret because a secret with this name is already scheduled for deletion.".into(),
                    ));
                }
                // A replay of the same create (same token, same value) succeeds unchanged.
                if let (Some(token), Some(value)) = (&token, &value)
                    && state.has_version(token) {
                        if self.same_value(scope, &state, token, value).await? {
                            return Ok(VersionOutput {
                                arn: state.row.arn.clone(),
                                name: state.row.name.clone(),
                                version_id: Some(token.clone()),
                                version_stages: None,
                                replication_status: None,
                            });
                        }
                        return Err(Self::token_in_use(token, &state.row.arn));
                    }
                return Err(EngineError::Exists(format!(
                    "The operation failed because the secret {name} already exists."
                )));
            }
            let id = uuid::Uuid::new_v4().to_string();
            let arn = format!(
                "arn:aws:secretsmanager:{}:{}:secret:{}-{}",
                scope.region,
                scope.tenant.account_id,
                name,
                arn_suffix()
            );
            let row = SecretRow {
                id: id.clone(),
                workspace_id: scope.tenant.id.clone(),
                region: scope.region.clone(),
                name: name.clone(),
                arn: arn.clone(),
                description: input.description.clone(),
                kms_key_id: input.kms_key_id.clone(),
                secret_type: input.secret_type.clone(),
                tags: serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into()),
                resource_policy: None,
                rotation: None,
                created_at: now,
                last_changed_at: now,
                last_accessed_at: None,
                deleted_at: None,
                deletion_date: None,
                revision: 0,
                primary_region: None,
                replication: None,
            };
            let version = match (&token, &value) {
                (Some(t), Some(v)) => Some(Self::seal(scope, &id, t, v, now)),
                _ => None,
            };
            let stages: Vec<StageRow> = version
                .iter()
                .map(|v| StageRow {
                    secret_id: id.clone(),
                    stage: AWSCURRENT.into(),
                    version_id: v.version_id.clone(),
                    workspace_id: scope.tenant.id.clone(),
                })
                .collect();
            if !replica_regions.is_empty() {
                // The primary and its replicas are created in one transaction.
                let plain: Vec<PlainVersion> = match (&token, &value) {
                    (Some(t), Some(v)) => vec![PlainVersion {
                        version_id: t.clone(),
                        created_at: now,
                        is_binary: v.is_binary,
                        bytes: v.bytes.clone(),
                    }],
                    _ => Vec::new(),
                };
                let labels: Labels = stages
                    .iter()
                    .map(|s| (s.stage.clone(), s.version_id.clone()))
                    .collect();
                let (links, replica_writes) = self
                    .plan_replicas(scope, &row, &plain, &labels, Vec::new(), &replica_regions, force_overwrite, now)
                    .await?;
                let mut row = row;
                row.replication = replication::links_json(&links);
                let mut writes = vec![SecretWrite::Insert {
                    secret: row,
                    versions: version.into_iter().collect(),
                    stages,
                }];
                writes.extend(replica_writes);
                self.write_all(scope, writes).await?;
                return Ok(VersionOutput {
                    arn,
                    name: name.clone(),
                    version_id: token.clone(),
                    version_stages: None,
                    replication_status: Some(links.iter().map(replication::ReplicaLink::status).collect()),
                });
            }
            let audit = scope.audit.as_ref().map(|a| a.row_for_commit());
            self.db.create_secret(&row, version.as_ref(), &stages, audit.as_ref()).await?;
            Self::mark_audited(scope);
            self.cache.invalidate(&row.workspace_id, &row.region, &row.name).await;
            Ok(VersionOutput { arn, name: name.clone(), version_id: token.clone(), version_stages: None, replication_status: None })
        })
        .await
    }

    // ------------------------------------------------------------------ reads

    /// GetSecretValue.
    pub async fn get_secret_value(
        &self,
        scope: &Scope,
        input: &GetSecretValueInput,
        now: i64,
    ) -> EngineResult<SecretValueOutput> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        if let Some(v) = &input.version_id {
            validate::version_token("versionId", v)?;
        }
        if let Some(s) = &input.version_stage {
            validate::length("versionStage", s, 1, 256, false)?;
        }
        let (state, entry) = self.cached_entry(scope, secret_id, now).await?;
        state.refuse_if_deleted()?;
        // The common read, of AWSCURRENT, finds its version, key and labels in the entry.
        let wants_current = input.version_id.is_none()
            && input
                .version_stage
                .as_deref()
                .is_none_or(|s| s == AWSCURRENT);
        let current = entry
            .as_ref()
            .and_then(|e| e.current())
            .filter(|_| wants_current);
        let version_id = match (current, &input.version_id, &input.version_stage) {
            (Some(c), _, _) => c.row.version_id.clone(),
            (None, Some(vid), stage) => {
                if !state.has_version(vid) {
                    return Err(EngineError::NotFound(format!(
                        "Secrets Manager can't find the specified secret value for VersionId: {vid}"
                    )));
                }
                if let Some(stage) = stage
                    && state.labels.get(stage) != Some(vid)
                {
                    return Err(EngineError::InvalidRequest(
                            "You provided a VersionStage that is not associated to the provided VersionId.".into(),
                        ));
                }
                vid.clone()
            }
            (None, None, stage) => {
                let stage = stage.as_deref().unwrap_or(AWSCURRENT);
                state.labels.get(stage).cloned().ok_or_else(|| {
                    EngineError::NotFound(format!(
                        "Secrets Manager can't find the specified secret value for staging label: {stage}"
                    ))
                })?
            }
        };
        let aad = Self::aad(scope, &state.row.id, &version_id);
        let (version, key, version_stages) = match current {
            Some(c) => (c.row.clone(), c.key.clone(), c.stages.clone()),
            None => {
                let version = self
                    .version_row(scope, &state.row.id, &version_id)
                    .await?
                    .ok_or_else(not_found)?;
                let key = self.cache.version_key(&state.row.id, &version_id, || {
                    scope.tenant.key.version_key(&aad)
                });
                let stages = labels::of_version(&state.labels, &version_id);
                if let Some(e) = &entry
                    && state.labels.get(AWSCURRENT) == Some(&version_id)
                    && version.sealed_value.len() <= cache::CURRENT_MAX_SEALED
                {
                    e.set_current(CurrentVersion::new(
                        version.clone(),
                        key.clone(),
                        stages.clone(),
                    ));
                }
                (version, key, stages)
            }
        };
        let plain = key
            .open(&aad, &version.sealed_value)
            .map_err(|_| EngineError::Decryption)?;
        // Once this node saw today's read of the current version recorded, nothing is asked.
        let today = now - now.rem_euclid(DAY_MS);
        let current = entry.as_ref().and_then(|e| e.current());
        let current = current.filter(|c| c.row.version_id == version_id);
        if current.is_none_or(|c| !c.touched_on(today)) {
            self.touch_read(scope, &state, &version, today).await?;
            if let Some(c) = current {
                c.mark_touched(today);
            }
        }
        let (secret_string, secret_binary) = if version.is_binary {
            (
                None,
                Some(Zeroizing::new(
                    base64::engine::general_purpose::STANDARD.encode(&*plain),
                )),
            )
        } else {
            let s = String::from_utf8(plain.to_vec()).map_err(|_| EngineError::Decryption)?;
            (Some(Zeroizing::new(s)), None)
        };
        Ok(SecretValueOutput {
            arn: state.row.arn.clone(),
            name: state.row.name.clone(),
            version_stages,
            version_id,
            secret_string,
            secret_binary,
            created_date: Timestamp(version.created_at),
        })
    }

    /// Record a read of `version` on `day` as LastAccessedDate, unless the rows or this
    /// node's memory show it done. AWS keeps the date to the day, so it is written at most
    /// once a day; the rows at hand are asked first, so once they show the day no cache
    /// lookup is needed.
    async fn touch_read(
        &self,
        scope: &Scope,
        state: &SecretState,
        version: &VersionRow,
        day: i64,
    ) -> EngineResult<()> {
        let (secret_id, version_id) = (&state.row.id, &version.version_id);
        if (version.last_accessed_at == Some(day) && state.row.last_accessed_at == Some(day))
            || self.cache.touched_today(secret_id, version_id, day)
        {
            return Ok(());
        }
        let touch = Touch {
            workspace_id: scope.tenant.id.clone(),
            secret_id: secret_id.clone(),
            version_id: version_id.clone(),
            day_ms: day,
        };
        match &self.reads {
            // The request's audit row, written after this, waits for the touch's batch.
            Some(writer) if scope.audit.is_some() => {
                writer
                    .touch(touch)
                    .await
                    .map_err(|e| EngineError::Store(StoreError::Database(e.to_string())))?;
            }
            _ => self.db.touch_accessed(&touch).await?,
        }
        self.cache.mark_touched(secret_id, version_id, day);
        // The cached version row, which nothing else changes, now shows the day too (the
        // state shows it once a recheck or reload reads the secret's row again).
        if version.last_accessed_at != Some(day) {
            self.cache.put_version(Arc::new(VersionRow {
                last_accessed_at: Some(day),
                ..version.clone()
            }));
        }
        Ok(())
    }

    fn describe(state: &SecretState) -> DescribeSecretOutput {
        let rotation = state.rotation();
        // AWS reports LastRotatedDate and NextRotationDate only while rotation is on; the
        // function and rules stay visible after CancelRotateSecret.
        let enabled = rotation.as_ref().filter(|r| r.enabled);
        let map = labels::by_version(&state.labels);
        let links = replication::links(&state.row);
        DescribeSecretOutput {
            arn: state.row.arn.clone(),
            name: state.row.name.clone(),
            secret_type: state.row.secret_type.clone(),
            description: state.row.description.clone(),
            kms_key_id: state.row.kms_key_id.clone(),
            rotation_enabled: rotation.as_ref().map(|r| r.enabled),
            rotation_lambda_arn: rotation.as_ref().and_then(|r| r.lambda_arn.clone()),
            rotation_rules: rotation.as_ref().and_then(|r| r.rules.clone()),
            external_secret_rotation_metadata: rotation
                .as_ref()
                .and_then(|r| r.external_metadata.clone()),
            external_secret_rotation_role_arn: rotation
                .as_ref()
                .and_then(|r| r.external_role_arn.clone()),
            last_rotated_date: enabled.and_then(|r| r.last_rotated).map(Timestamp),
            last_changed_date: Timestamp(state.row.last_changed_at),
            last_accessed_date: state.row.last_accessed_at.map(Timestamp),
            deleted_date: state.row.deleted_at.map(Timestamp),
            next_rotation_date: enabled.and_then(|r| r.next_rotation).map(Timestamp),
            tags: state.tags(),
            version_ids_to_stages: if map.is_empty() { None } else { Some(map) },
            secret_versions_to_stages: None,
            created_date: Timestamp(state.row.created_at),
            primary_region: replication::primary_region(&state.row),
            replication_status: (!links.is_empty())
                .then(|| links.iter().map(replication::ReplicaLink::status).collect()),
        }
    }

    /// DescribeSecret (works on a secret scheduled for deletion, reporting DeletedDate).
    pub async fn describe_secret(
        &self,
        scope: &Scope,
        input: &SecretIdInput,
        now: i64,
    ) -> EngineResult<DescribeSecretOutput> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        let state = self.cached_state(scope, secret_id, now).await?;
        let mut out = Self::describe(&state);
        if let Some(statuses) = &mut out.replication_status {
            self.fill_replica_access(scope, &state.row, statuses)
                .await?;
        }
        Ok(out)
    }

    /// ListSecretVersionIds (labelled versions, or all with IncludeDeprecated).
    pub async fn list_secret_version_ids(
        &self,
        scope: &Scope,
        input: &ListSecretVersionIdsInput,
        now: i64,
    ) -> EngineResult<ListVersionsOutput> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        let limit = validate::max_results(input.max_results, 100, 100)? as usize;
        let state = self.cached_state(scope, secret_id, now).await?;
        let include_deprecated = input.include_deprecated.unwrap_or(false);
        // Newest first.
        let mut all: Vec<VersionEntry> = state
            .versions
            .iter()
            .rev()
            .map(|v| VersionEntry {
                version_id: v.version_id.clone(),
                version_stages: labels::of_version(&state.labels, &v.version_id),
                last_accessed_date: v.last_accessed_at.map(Timestamp),
                created_date: Timestamp(v.created_at),
            })
            .filter(|e| include_deprecated || !e.version_stages.is_empty())
            .collect();
        let start = match &input.next_token {
            Some(t) => {
                let offset = list::decode_offset_token(t)?;
                offset.min(all.len())
            }
            None => 0,
        };
        let end = (start + limit).min(all.len());
        let next_token = (end < all.len()).then(|| list::encode_offset_token(end));
        let versions = all.drain(start..end).collect();
        Ok(ListVersionsOutput {
            versions,
            next_token,
            arn: state.row.arn.clone(),
            name: state.row.name.clone(),
        })
    }

    // ------------------------------------------------------------------ writes

    /// PutSecretValue.
    pub async fn put_secret_value(
        &self,
        scope: &Scope,
        input: PutSecretValueInput,
        now: i64,
    ) -> EngineResult<VersionOutput> {
        let secret_id = validate::secret_id(&input.secret_id)?.to_string();
        if let Some(stages) = &input.version_stages {
            validate::version_stages(stages)?;
        }
        if let Some(t) = &input.rotation_token {
            validate::length("rotationToken", t, 36, 256, false)?;
        }
        let value = new_value(&input.secret_string, &input.secret_binary)?.ok_or_else(|| {
            EngineError::InvalidRequest(
                "You must provide either SecretString or SecretBinary.".into(),
            )
        })?;
        let token = require_token(&input.client_request_token)?;
        self.retrying(|| async {
            let (state, held) = self.state_for_write(scope, &secret_id, now).await?;
            state.refuse_if_replica()?;
            state.refuse_if_deleted()?;
            if state.has_version(&token) {
                drop(held);
                if self.same_value(scope, &state, &token, &value).await? {
                    return Ok(VersionOutput {
                        arn: state.row.arn.clone(),
                        name: state.row.name.clone(),
                        version_stages: Some(labels::of_version(&state.labels, &token)),
                        version_id: Some(token.clone()),
                        replication_status: None,
                    });
                }
                return Err(Self::token_in_use(&token, &state.row.arn));
            }
            let mut labels = state.labels.clone();
            labels::attach_new_version(&mut labels, &token, input.version_stages.as_deref());
            let version = Self::seal(scope, &state.row.id, &token, &value, now);
            let next = SecretState {
                row: state.next_row(now),
                versions: state.versions.clone(),
                labels,
            };
            self.commit_after(
                held,
                scope,
                state.row.revision,
                &next.row,
                Some(&version),
                Some(&next.stage_rows()),
            )
            .await?;
            Ok(VersionOutput {
                arn: next.row.arn.clone(),
                name: next.row.name.clone(),
                version_stages: Some(labels::of_version(&next.labels, &token)),
                version_id: Some(token.clone()),
                replication_status: None,
            })
        })
        .await
    }

    /// UpdateSecret: metadata, and a new AWSCURRENT version when a value is given.
    pub async fn update_secret(
        &self,
        scope: &Scope,
        input: UpdateSecretInput,
        now: i64,
    ) -> EngineResult<VersionOutput> {
        let secret_id = validate::secret_id(&input.secret_id)?.to_string();
        validate::opt_length("description", &input.description, 0, 2048)?;
        validate::opt_length("kmsKeyId", &input.kms_key_id, 0, 2048)?;
        if let Some(tags) = &input.replace_tags {
            validate::tags(tags)?;
        }
        let value = new_value(&input.secret_string, &input.secret_binary)?;
        let token = match &value {
            Some(_) => Some(require_token(&input.client_request_token)?),
            None => None,
        };
        self.retrying(|| async {
            let (state, held) = self.state_for_write(scope, &secret_id, now).await?;
            state.refuse_if_replica()?;
            state.refuse_if_deleted()?;
            let mut next = SecretState {
                row: state.next_row(now),
                versions: state.versions.clone(),
                labels: state.labels.clone(),
            };
            if input.description.is_some() {
                next.row.description = input.description.clone();
            }
            if input.kms_key_id.is_some() {
                next.row.kms_key_id = input.kms_key_id.clone();
            }
            if input.secret_type.is_some() {
                next.row.secret_type = input.secret_type.clone();
            }
            if let Some(tags) = &input.replace_tags {
                next.row.tags = serde_json::to_string(tags).unwrap_or_else(|_| "[]".into());
            }
            let mut version = None;
            if let (Some(token), Some(value)) = (&token, &value) {
                if state.has_version(token) {
                    drop(held);
                    if self.same_value(scope, &state, token, value).await? {
                        return Ok(VersionOutput {
                            arn: state.row.arn.clone(),
                            name: state.row.name.clone(),
                            version_id: Some(token.clone()),
                            version_stages: None,
                            replication_status: None,
                        });
                    }
                    return Err(Self::token_in_use(token, &state.row.arn));
                }
                labels::attach_new_version(&mut next.labels, token, None);
                version = Some(Self::seal(scope, &state.row.id, token, value, now));
            }
            let stages = version.as_ref().map(|_| next.stage_rows());
            self.commit_after(
                held,
                scope,
                state.row.revision,
                &next.row,
                version.as_ref(),
                stages.as_deref(),
            )
            .await?;
            Ok(VersionOutput {
                arn: next.row.arn.clone(),
                name: next.row.name.clone(),
                version_id: token.clone(),
                version_stages: None,
                replication_status: None,
            })
        })
        .await
    }

    /// UpdateSecretVersionStage.
    pub async fn update_secret_version_stage(
        &self,
        scope: &Scope,
        input: &UpdateSecretVersionStageInput,
        now: i64,
    ) -> EngineResult<ArnName> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        let label = validate::required("versionStage", &input.version_stage)?;
        validate::length("versionStage", label, 1, 256, false)?;
        for (member, v) in [
            ("removeFromVersionId", &input.remove_from_version_id),
            ("moveToVersionId", &input.move_to_version_id),
        ] {
            if let Some(v) = v {
                validate::version_token(member, v)?;
            }
        }
        self.retrying(|| async {
            let (state, held) = self.state_for_write(scope, secret_id, now).await?;
            state.refuse_if_replica()?;
            state.refuse_if_deleted()?;
            if let Some(to) = &input.move_to_version_id
                && !state.has_version(to)
            {
                return Err(EngineError::InvalidParameter(format!(
                    "The version {to} doesn't exist for secret {}.",
                    state.row.arn
                )));
            }
            let mut labels = state.labels.clone();
            labels::update_stage(
                &mut labels,
                label,
                input.remove_from_version_id.as_deref(),
                input.move_to_version_id.as_deref(),
            )?;
            if labels != state.labels {
                let next = SecretState {
                    row: state.next_row(now),
                    versions: state.versions.clone(),
                    labels,
                };
                self.commit_after(
                    held,
                    scope,
                    state.row.revision,
                    &next.row,
                    None,
                    Some(&next.stage_rows()),
                )
                .await?;
            }
            Ok(state.arn_name())
        })
        .await
    }

    /// DeleteSecret: schedule with a recovery window, or delete at once.
    pub async fn delete_secret(
        &self,
        scope: &Scope,
        input: &DeleteSecretInput,
        now: i64,
    ) -> EngineResult<DeleteSecretOutput> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        let force = input.force_delete_without_recovery.unwrap_or(false);
        if force && input.recovery_window_in_days.is_some() {
            return Err(EngineError::InvalidParameter(
                "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.".into(),
            ));
        }
        let days = input.recovery_window_in_days.unwrap_or(30);
        if !(7..=30).contains(&days) {
            return Err(EngineError::InvalidParameter(
                "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).".into(),
            ));
        }
        self.retrying(|| async {
            let Some(row) = self.find(scope, secret_id, now).await? else {
                // AWS answers a forced delete of a missing secret with success.
                if force {
                    scope.access.check_name(secret_id)?;
                    let name = parse_arn(secret_id)
                        .map(|a| a.tail)
                        .unwrap_or(secret_id)
                        .to_string();
                    let arn = if parse_arn(secret_id).is_some() {
                        secret_id.to_string()
                    } else {
                        format!(
                            "arn:aws:secretsmanager:{}:{}:secret:{}",
                            scope.region, scope.tenant.account_id, secret_id
                        )
                    };
                    return Ok(DeleteSecretOutput {
                        arn,
                        name,
                        deletion_date: Timestamp(now),
                    });
                }
                return Err(not_found());
            };
            scope.access.check_name(&row.name)?;
            refuse_if_replica(&row)?;
            // A primary keeps its replicas' Regions until RemoveRegionsFromReplication (or
            // StopReplicationToReplica) drops them; AWS refuses the delete until then.
            let regions: Vec<String> = replication::links(&row)
                .into_iter()
                .map(|l| l.region)
                .collect();
            if !regions.is_empty() {
                return Err(EngineError::InvalidParameter(format!(
                    "You can't delete secret {} that still has replica regions [{}].",
                    row.arn,
                    regions.join(", ")
                )));
            }
            if force {
                let audit = scope.audit.as_ref().map(|a| a.row_for_commit());
                self.db
                    .purge_secret(&scope.tenant.id, &row.id, audit.as_ref())
                    .await?;
                Self::mark_audited(scope);
                self.cache
                    .invalidate(&row.workspace_id, &row.region, &row.name)
                    .await;
                return Ok(DeleteSecretOutput {
                    arn: row.arn,
                    name: row.name,
                    deletion_date: Timestamp(now),
                });
            }
            if row.deleted_at.is_some() {
                return Err(EngineError::InvalidRequest(MARKED_FOR_DELETION.into()));
            }
            let deletion = now + days * DAY_MS;
            let mut next = row.clone();
            next.revision += 1;
            next.deleted_at = Some(now);
            next.deletion_date = Some(deletion);
            self.commit(scope, row.revision, &next, None, None).await?;
            Ok(DeleteSecretOutput {
                arn: row.arn,
                name: row.name,
                deletion_date: Timestamp(deletion),
            })
        })
        .await
    }

    /// RestoreSecret: cancel a scheduled deletion.
    pub async fn restore_secret(
        &self,
        scope: &Scope,
        input: &SecretIdInput,
        now: i64,
    ) -> EngineResult<ArnName> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        self.retrying(|| async {
            let state = self.state(scope, secret_id, now).await?;
            state.refuse_if_replica()?;
            if state.row.deleted_at.is_some() {
                let mut next = state.row.clone();
                next.revision += 1;
                next.deleted_at = None;
                next.deletion_date = None;
                self.commit(scope, state.row.revision, &next, None, None)
                    .await?;
            }
            Ok(state.arn_name())
        })
        .await
    }

    /// TagResource: add or overwrite tags.
    pub async fn tag_resource(
        &self,
        scope: &Scope,
        input: &TagResourceInput,
        now: i64,
    ) -> EngineResult<Empty> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        let new_tags = validate::required("tags", &input.tags)?;
        validate::tags(new_tags)?;
        self.retrying(|| async {
            let state = self.state(scope, secret_id, now).await?;
            state.refuse_if_replica()?;
            state.refuse_if_deleted()?;
            let mut tags = state.tags();
            for t in new_tags {
                match tags.iter_mut().find(|e| e.key == t.key) {
                    Some(e) => e.value = t.value.clone(),
                    None => tags.push(t.clone()),
                }
            }
            if tags.len() > 50 {
                return Err(EngineError::LimitExceeded("The request failed because it would exceed the maximum of 50 tags on a secret.".into()));
            }
            let mut next = state.next_row(now);
            next.tags = serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into());
            self.commit(scope, state.row.revision, &next, None, None).await?;
            Ok(Empty {})
        })
        .await
    }

    /// UntagResource: remove tag keys; absent keys are fine.
    pub async fn untag_resource(
        &self,
        scope: &Scope,
        input: &UntagResourceInput,
        now: i64,
    ) -> EngineResult<Empty> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        let keys = validate::required("tagKeys", &input.tag_keys)?;
        for k in keys {
            validate::length("tagKeys.member", k, 1, 128, false)?;
        }
        self.retrying(|| async {
            let state = self.state(scope, secret_id, now).await?;
            state.refuse_if_replica()?;
            state.refuse_if_deleted()?;
            let mut tags = state.tags();
            tags.retain(|t| !keys.contains(&t.key));
            let mut next = state.next_row(now);
            next.tags = serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into());
            self.commit(scope, state.row.revision, &next, None, None)
                .await?;
            Ok(Empty {})
        })
        .await
    }

    // ------------------------------------------------------------------ listing

    /// ListSecrets with filters, sort and keyset pagination.
    pub async fn list_secrets(
        &self,
        scope: &Scope,
        input: &ListSecretsInput,
        now: i64,
    ) -> EngineResult<Arc<ListSecretsOutput>> {
        let (query, limit) = Self::list_query(input)?;
        let key = query.cache_key(scope, input.next_token.as_deref(), limit);
        let (ws, region) = (&scope.tenant.id, &scope.region);
        if let Some(hit) = self.cache.list(&key, ws, region, now).await {
            if hit.refresh {
                self.refresh_list(scope, input);
            }
            return Ok(hit.output);
        }
        self.load_list(scope, &query, input.next_token.as_deref(), limit, key, now)
            .await
    }

    /// The parsed query and page size of a ListSecrets input.
    fn list_query(input: &ListSecretsInput) -> EngineResult<(list::Query, usize)> {
        let filters = input.filters.clone().unwrap_or_default();
        validate::filters(&filters)?;
        let limit = validate::max_results(input.max_results, 100, 100)? as usize;
        let query = list::Query::new(
            &filters,
            input.sort_by.as_deref(),
            input.sort_order.as_deref(),
            input.include_planned_deletion.unwrap_or(false),
        )?;
        Ok((query, limit))
    }

    /// Read a cached page again in the background, before it expires, so that a page read
    /// all the time never makes its readers wait for the database. Without it, every
    /// reader that asked between the expiry and the first reload's answer read the page
    /// too: at 64 connections, 64 reads of a millisecond or more each, every 5 s. That is
    /// below 0.1% of the requests of the list-100k benchmark, so its p99 did not move
    /// (2026-12-01, three interleaved pairs); the readers it spares are its slowest. The
    /// read is the server's own work, like a recheck: it is not audited, and if it fails
    /// the page simply expires.
    fn refresh_list(&self, scope: &Scope, input: &ListSecretsInput) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let engine = self.clone();
        let scope = Scope {
            tenant: scope.tenant.clone(),
            region: scope.region.clone(),
            access: scope.access.clone(),
            audit: None,
        };
        let input = input.clone();
        runtime.spawn(async move {
            let now = crate::protocol::now_ms(std::time::SystemTime::now());
            let loaded = async {
                let (query, limit) = Self::list_query(&input)?;
                let key = query.cache_key(&scope, input.next_token.as_deref(), limit);
                engine
                    .load_list(&scope, &query, input.next_token.as_deref(), limit, key, now)
                    .await
            };
            if let Err(e) = loaded.await {
                tracing::warn!(error = %e, "reading a ListSecrets page ahead of expiry failed");
            }
        });
    }

    /// Read one ListSecrets page from the database and cache it under `key`.
    async fn load_list(
        &self,
        scope: &Scope,
        query: &list::Query,
        next_token: Option<&str>,
        limit: usize,
        key: String,
        now: i64,
    ) -> EngineResult<Arc<ListSecretsOutput>> {
        let (ws, region) = (&scope.tenant.id, &scope.region);
        // Taken before the read, so a write racing it leaves the page already outdated.
        let snapshot = self.cache.listing_snapshot(ws, region).await;
        let page = list::page(&self.db, scope, query, next_token, limit, now).await?;
        let ids: Vec<String> = page.rows.iter().map(|r| r.id.clone()).collect();
        let mut stages: BTreeMap<String, Labels> = BTreeMap::new();
        for s in self.db.stages_of(ws, &ids).await? {
            stages
                .entry(s.secret_id)
                .or_default()
                .insert(s.stage, s.version_id);
        }
        let secret_list = page
            .rows
            .into_iter()
            .map(|row| {
                let labels = stages.remove(&row.id).unwrap_or_default();
                let state = SecretState {
                    row,
                    versions: Vec::new(),
                    labels,
                };
                let mut entry = Self::describe(&state);
                entry.secret_versions_to_stages = entry.version_ids_to_stages.take();
                // SecretListEntry has PrimaryRegion but no ReplicationStatus.
                entry.replication_status = None;
                entry
            })
            .collect();
        let out = Arc::new(ListSecretsOutput {
            secret_list,
            next_token: page.next_token,
            rendered: Default::default(),
        });
        self.cache.put_list(key, &snapshot, out.clone(), page.until);
        Ok(out)
    }

    /// BatchGetSecretValue: by id list (≤20) or by filters, with per-secret errors.
    pub async fn batch_get_secret_value(
        &self,
        scope: &Scope,
        input: &BatchGetSecretValueInput,
        now: i64,
    ) -> EngineResult<BatchGetOutput> {
        // Which secrets to fetch (as given, or an ARN per matching secret), and the page token.
        let (ids, next_token): (Vec<String>, Option<String>) =
            match (&input.secret_id_list, &input.filters) {
                (Some(ids), None) => {
                    if input.max_results.is_some() {
                        return Err(EngineError::InvalidParameter(
                            "You can only use MaxResults with the Filters parameter.".into(),
                        ));
                    }
                    if ids.is_empty() || ids.len() > 20 {
                        validate::range("secretIdList", ids.len() as i64, 1, 20)?;
                    }
                    (ids.clone(), None)
                }
                (None, Some(filters)) => {
                    validate::filters(filters)?;
                    let limit = validate::max_results(input.max_results, 20, 20)? as usize;
                    let query = list::Query::new(filters, None, None, false)?;
                    let page = list::page(
                        &self.db,
                        scope,
                        &query,
                        input.next_token.as_deref(),
                        limit,
                        now,
                    )
                    .await?;
                    (
                        page.rows.into_iter().map(|r| r.arn).collect(),
                        page.next_token,
                    )
                }
                _ => {
                    return Err(EngineError::InvalidParameter(
                        "Either 'SecretIdList' or 'Filters' must be provided, but not both.".into(),
                    ));
                }
            };
        let mut secret_values = Vec::new();
        let mut errors = Vec::new();
        for id in ids {
            let one = GetSecretValueInput {
                secret_id: Some(id.clone()),
                ..Default::default()
            };
            match self.get_secret_value(scope, &one, now).await {
                Ok(v) => secret_values.push(v),
                // The service itself failing fails the whole call; per-secret client errors
                // are reported in Errors[] as AWS does.
                Err(e @ (EngineError::Store(_) | EngineError::Decryption)) => return Err(e),
                Err(e) => errors.push(BatchError {
                    secret_id: id,
                    error_code: crate::protocol::error_code(&e).to_string(),
                    message: e.to_string(),
                }),
            }
        }
        Ok(BatchGetOutput {
            secret_values,
            next_token,
            errors,
        })
    }

    // ------------------------------------------------------------------ resource policies

    fn policy_name(input: &PolicyInput) -> EngineResult<String> {
        let name = input
            .policy_name
            .clone()
            .unwrap_or_else(|| "default".into());
        validate::length("policyName", &name, 1, 64, false)?;
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(EngineError::Validation(format!(
                "1 validation error detected: Value '{name}' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9A-Za-z\\-\\_]+"
            )));
        }
        Ok(name)
    }

    /// GetResourcePolicy.
    pub async fn get_resource_policy(
        &self,
        scope: &Scope,
        input: &PolicyInput,
        now: i64,
    ) -> EngineResult<PolicyOutput> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        let name = Self::policy_name(input)?;
        let state = self.cached_state(scope, secret_id, now).await?;
        state.refuse_if_deleted()?;
        let policy = state.policies().remove(&name);
        Ok(PolicyOutput {
            arn: state.row.arn.clone(),
            name: state.row.name.clone(),
            policy_name: policy.as_ref().map(|_| name),
            resource_policy: policy,
        })
    }

    /// PutResourcePolicy: validate, honour BlockPublicPolicy, store.
    pub async fn put_resource_policy(
        &self,
        scope: &Scope,
        input: &PolicyInput,
        now: i64,
    ) -> EngineResult<PolicyOutput> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        let doc = validate::required("resourcePolicy", &input.resource_policy)?;
        validate::length("resourcePolicy", doc, 1, 20480, false)?;
        let name = Self::policy_name(input)?;
        let parsed = policy::validate_policy(doc).map_err(policy_error)?;
        if input.block_public_policy.unwrap_or(false) && policy::grants_public_access(&parsed) {
            return Err(EngineError::PublicPolicy(
                "You can't block public access to this secret because the resource policy grants public access."
                    .into(),
            ));
        }
        self.retrying(|| async {
            let state = self.state(scope, secret_id, now).await?;
            state.refuse_if_replica()?;
            state.refuse_if_deleted()?;
            let mut policies = state.policies();
            policies.insert(name.clone(), doc.clone());
            let mut next = state.next_row(now);
            next.resource_policy = serde_json::to_string(&policies).ok();
            self.commit(scope, state.row.revision, &next, None, None)
                .await?;
            Ok(PolicyOutput {
                arn: next.arn,
                name: next.name,
                resource_policy: None,
                policy_name: Some(name.clone()),
            })
        })
        .await
    }

    /// DeleteResourcePolicy (absent policy is fine).
    pub async fn delete_resource_policy(
        &self,
        scope: &Scope,
        input: &PolicyInput,
        now: i64,
    ) -> EngineResult<PolicyOutput> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        let name = Self::policy_name(input)?;
        self.retrying(|| async {
            let state = self.state(scope, secret_id, now).await?;
            state.refuse_if_replica()?;
            state.refuse_if_deleted()?;
            let mut policies = state.policies();
            if policies.remove(&name).is_some() {
                let mut next = state.next_row(now);
                next.resource_policy = if policies.is_empty() {
                    None
                } else {
                    serde_json::to_string(&policies).ok()
                };
                self.commit(scope, state.row.revision, &next, None, None)
                    .await?;
            }
            Ok(PolicyOutput {
                arn: state.row.arn.clone(),
                name: state.row.name.clone(),
                resource_policy: None,
                policy_name: input.policy_name.clone(),
            })
        })
        .await
    }

    /// ListResourcePolicies: `default` first, then alphabetical.
    pub async fn list_resource_policies(
        &self,
        scope: &Scope,
        input: &PolicyInput,
        now: i64,
    ) -> EngineResult<ListPoliciesOutput> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        let limit = validate::max_results(input.max_results, 100, 100)? as usize;
        let state = self.cached_state(scope, secret_id, now).await?;
        state.refuse_if_deleted()?;
        let mut names: Vec<String> = state.policies().into_keys().collect();
        names.sort_by_key(|n| (n != "default", n.clone()));
        let start = match &input.next_token {
            Some(t) => list::decode_offset_token(t)?.min(names.len()),
            None => 0,
        };
        let end = (start + limit).min(names.len());
        Ok(ListPoliciesOutput {
            next_token: (end < names.len()).then(|| list::encode_offset_token(end)),
            resource_policies: names[start..end]
                .iter()
                .map(|n| PolicySummary {
                    policy_name: n.clone(),
                })
                .collect(),
        })
    }

    /// ValidateResourcePolicy: syntax and the public-access check.
    pub async fn validate_resource_policy(
        &self,
        scope: &Scope,
        input: &PolicyInput,
        now: i64,
    ) -> EngineResult<ValidatePolicyOutput> {
        let doc = validate::required("resourcePolicy", &input.resource_policy)?;
        validate::length("resourcePolicy", doc, 1, 20480, false)?;
        if let Some(id) = &input.secret_id {
            validate::length("secretId", id, 1, 2048, false)?;
            self.state(scope, id, now).await?;
        }
        if let Err(e) = policy::validate_policy(doc) {
            return Err(policy_error(e));
        }
        let (passed, findings) = policy::validate_for_api(doc);
        Ok(ValidatePolicyOutput {
            policy_validation_passed: passed,
            validation_errors: findings
                .into_iter()
                .map(|(check_name, error_message)| ValidationErrorEntry {
                    check_name,
                    error_message,
                })
                .collect(),
        })
    }

    /// Purge secrets whose recovery window has ended, workspace by workspace (each under
    /// its own row-level-security context). Run periodically.
    pub async fn purge_expired(&self, now: i64) -> EngineResult<usize> {
        let mut purged = 0;
        for ws in self.db.workspaces().await? {
            for id in self.db.expired_secrets(&ws.id, now, 500).await? {
                self.db.purge_secret(&ws.id, &id, None).await?;
                purged += 1;
            }
        }
        Ok(purged)
    }

    /// Commit a changed secret with the request's audit row in the same transaction.
    ///
    /// A primary's replicas change in that same transaction (new version re-sealed for each
    /// replica, labels, metadata), so a read in a replica's Region never sees an older state
    /// once the write returned.
    async fn commit(
        &self,
        scope: &Scope,
        expected_revision: i64,
        row: &SecretRow,
        version: Option<&VersionRow>,
        stages: Option<&[StageRow]>,
    ) -> EngineResult<()> {
        self.commit_after(
            HeldRead::none(),
            scope,
            expected_revision,
            row,
            version,
            stages,
        )
        .await
    }

    /// [`Engine::commit`] in the transaction `held` kept open, when it kept one.
    async fn commit_after(
        &self,
        held: HeldRead,
        scope: &Scope,
        expected_revision: i64,
        row: &SecretRow,
        version: Option<&VersionRow>,
        stages: Option<&[StageRow]>,
    ) -> EngineResult<()> {
        if replication::has_live_replicas(row) {
            // Replica updates read on connections of their own.
            drop(held);
            let mut writes = vec![SecretWrite::Update {
                expected_revision,
                secret: row.clone(),
                versions: version.cloned().into_iter().collect(),
                stages: stages.map(<[StageRow]>::to_vec),
            }];
            writes.extend(self.replica_updates(scope, row, version, stages).await?);
            return self.write_all(scope, writes).await;
        }
        let audit = scope.audit.as_ref().map(|a| a.row_for_commit());
        self.db
            .commit_secret_after(
                held,
                expected_revision,
                row,
                version,
                stages,
                audit.as_ref(),
            )
            .await?;
        Self::mark_audited(scope);
        // The write is durable; drop every node's cached state before answering.
        self.cache
            .invalidate(&row.workspace_id, &row.region, &row.name)
            .await;
        Ok(())
    }

    /// Apply several secrets' changes in one transaction with the audit row, then drop every
    /// changed secret from every node's cache.
    async fn write_all(&self, scope: &Scope, writes: Vec<SecretWrite>) -> EngineResult<()> {
        let audit = scope.audit.as_ref().map(|a| a.row_for_commit());
        self.db
            .write_secrets(&scope.tenant.id, &writes, audit.as_ref())
            .await?;
        Self::mark_audited(scope);
        for w in &writes {
            match w {
                SecretWrite::Insert { secret, .. } | SecretWrite::Update { secret, .. } => {
                    self.cache
                        .invalidate(&secret.workspace_id, &secret.region, &secret.name)
                        .await;
                }
                SecretWrite::Purge { region, name, .. } => {
                    self.cache.invalidate(&scope.tenant.id, region, name).await;
                }
            }
        }
        Ok(())
    }

    fn mark_audited(scope: &Scope) {
        if let Some(a) = &scope.audit {
            a.mark_written();
        }
    }
}

fn policy_error(e: policy::PolicyError) -> EngineError {
    match e {
        policy::PolicyError::Malformed(m) => EngineError::MalformedPolicy(m),
        policy::PolicyError::Public(m) => EngineError::PublicPolicy(m),
    }
}

/// Rotation configuration as stored in `secrets.rotation`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rotation {
    /// RotationEnabled.
    pub enabled: bool,
    /// RotationLambdaARN.
    pub lambda_arn: Option<String>,
    /// RotationRules.
    pub rules: Option<RotationRules>,
    /// LastRotatedDate, epoch ms.
    pub last_rotated: Option<i64>,
    /// NextRotationDate, epoch ms: the latest time the next rotation is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation: Option<i64>,
    /// ExternalSecretRotationMetadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_metadata: Option<Vec<ExternalMetadataItem>>,
    /// ExternalSecretRotationRoleArn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_role_arn: Option<String>,
    /// The ClientRequestToken of a rotation RotateSecret started that no rotation function
    /// has run yet: the VersionId its new version will get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_version_id: Option<String>,
}

/// The parts of a Secrets Manager ARN we route on.
pub struct ParsedArn<'a> {
    /// Region field.
    pub region: &'a str,
    /// Account field.
    pub account: &'a str,
    /// Everything after `:secret:` (name, with or without the random suffix).
    pub tail: &'a str,
}

/// Split `arn:aws:secretsmanager:<region>:<account>:secret:<tail>`; `None` if not an ARN.
pub fn parse_arn(s: &str) -> Option<ParsedArn<'_>> {
    let rest = s.strip_prefix("arn:")?;
    let mut parts = rest.splitn(6, ':');
    let _partition = parts.next()?;
    let service = parts.next()?;
    let region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?;
    let tail = parts.next()?;
    if service != "secretsmanager" || resource != "secret" || tail.is_empty() {
        return None;
    }
    Some(ParsedArn {
        region,
        account,
        tail,
    })
}

#[cfg(test)]
impl SecretState {
    /// A secret `name` in workspace `ws` with one version, `v1`, labelled AWSCURRENT, last
    /// read on `accessed`.
    pub(crate) fn sample(ws: &str, name: &str, accessed: Option<i64>) -> SecretState {
        let row = SecretRow {
            id: format!("id-{name}"),
            workspace_id: ws.into(),
            region: "us-east-1".into(),
            name: name.into(),
            arn: format!("arn:aws:secretsmanager:us-east-1:000000000000:secret:{name}-AbCdEf"),
            description: None,
            kms_key_id: None,
            secret_type: None,
            tags: "[]".into(),
            resource_policy: None,
            rotation: None,
            created_at: 1_700_000_000_000,
            last_changed_at: 1_700_000_000_000,
            last_accessed_at: accessed,
            deleted_at: None,
            deletion_date: None,
            revision: 1,
            primary_region: None,
            replication: None,
        };
        let version = VersionMetaRow {
            version_id: "v1".into(),
            created_at: 1_700_000_000_000,
            last_accessed_at: accessed,
        };
        let stage = StageRow {
            secret_id: row.id.clone(),
            stage: AWSCURRENT.into(),
            version_id: "v1".into(),
            workspace_id: ws.into(),
        };
        SecretState::from_rows(row, vec![version], vec![stage])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only LastAccessedDate, of the secret or of a version, may differ; anything a write
    /// changes may not.
    #[test]
    fn equal_but_accessed_ignores_only_access_dates() {
        let cached = SecretState::sample("ws", "db", None);
        let day = Some(1_700_006_400_000);
        let read = SecretState::sample("ws", "db", day);
        assert!(read.equal_but_accessed(&cached) && cached.equal_but_accessed(&read));
        let mut version_only = cached.clone();
        version_only.versions[0].last_accessed_at = day;
        assert!(version_only.equal_but_accessed(&cached));

        let changes: [fn(&mut SecretState); 6] = [
            |s| s.row.revision += 1,
            |s| s.row.description = Some("changed".into()),
            |s| s.row.deleted_at = Some(1),
            |s| {
                s.labels.insert("AWSPREVIOUS".into(), "v1".into());
            },
            |s| s.versions[0].version_id = "v2".into(),
            |s| s.versions.push(s.versions[0].clone()),
        ];
        for change in changes {
            let mut other = read.clone();
            change(&mut other);
            assert!(!other.equal_but_accessed(&cached));
        }
        let other_workspace = SecretState::sample("ws2", "db", day);
        assert!(!other_workspace.equal_but_accessed(&cached));
    }
}
