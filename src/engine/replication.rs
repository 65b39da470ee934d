//! Multi-Region replication inside one workspace, and the cross-account replica operations.
//!
//! A replica is an ordinary secret row in another Region of the same workspace: the same
//! name, its primary's ARN with the Region swapped, the same versions (VersionIds, creation
//! dates, labels) re-sealed under the replica's own secret id, so no ciphertext ever moves
//! between rows, and the same description, tags, resource policy and rotation settings. The
//! replica records its primary's Region (`primary_region`); the primary records its replicas
//! and their status (`replication`).
//!
//! Replication is synchronous: a replica is created, and every later write to its primary is
//! applied to it, in the primary's own transaction. So a replica is `InSync` as soon as the
//! call that made it returns, and a read in its Region never sees an older state afterwards.
//! Replicas are read-only; deleting a primary that still has replicas is refused, as AWS
//! refuses it.
//!
//! Cross-account replication (into another workspace) needs a trust decision this server
//! cannot make yet: the replica's workspace would have to grant
//! `secretsmanager:AcceptCrossAccountReplication` through a resource policy, and policies are
//! stored but not enforced (brief §2.13). Those calls are validated and then refused the way
//! AWS refuses a replica account that has not granted access; nothing is faked.

use super::types::{
    ArnOnly, CrossAccountReplicaInput, RemoveRegionsFromReplicationInput, ReplicaRegion,
    ReplicateSecretToRegionsInput, ReplicationOutput, ReplicationStatusEntry, SecretIdInput,
    Timestamp,
};
use super::{
    Engine, EngineError, EngineResult, PlainVersion, Scope, SecretState, labels::Labels, parse_arn,
    validate,
};
use crate::crypto::VersionAad;
use crate::store::{SecretLookup, SecretRow, SecretWrite, StageRow, VersionRow};
use serde::{Deserialize, Serialize};

/// Replication to the Region succeeded (here: committed with the primary).
pub const IN_SYNC: &str = "InSync";
/// The replica could not be created.
pub const FAILED: &str = "Failed";
/// StatusMessage of a Region where the name is taken (the example the service model gives).
const NAME_TAKEN: &str = "Secret with this name already exists in this region";

/// One replica of a primary, as stored in `secrets.replication`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaLink {
    /// The replica's Region.
    pub region: String,
    /// KmsKeyId asked for the replica (reported, not used: our own keys encrypt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// `InSync` or `Failed`.
    pub status: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
}

impl ReplicaLink {
    /// The `ReplicationStatusType` entry (LastAccessedDate is filled in separately).
    pub fn status(&self) -> ReplicationStatusEntry {
        ReplicationStatusEntry {
            region: self.region.clone(),
            kms_key_id: self.kms_key_id.clone(),
            status: self.status.clone(),
            status_message: self.status_message.clone(),
            last_accessed_date: None,
        }
    }

    fn live(&self) -> bool {
        self.status == IN_SYNC
    }
}

/// A primary's replicas (empty for replicas and standalone secrets).
pub fn links(row: &SecretRow) -> Vec<ReplicaLink> {
    row.replication
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default()
}

/// The `replication` column for `links` (NULL when there are none).
pub fn links_json(links: &[ReplicaLink]) -> Option<String> {
    if links.is_empty() {
        None
    } else {
        serde_json::to_string(links).ok()
    }
}

/// Does a write to this secret have to be applied to replicas too?
pub fn has_live_replicas(row: &SecretRow) -> bool {
    links(row).iter().any(ReplicaLink::live)
}

/// DescribeSecret's `PrimaryRegion`: the primary's Region on a replica, the secret's own on a
/// primary with replicas, absent on a secret that was never replicated (as AWS omits it).
pub fn primary_region(row: &SecretRow) -> Option<String> {
    match &row.primary_region {
        Some(r) => Some(r.clone()),
        None if row.replication.is_some() => Some(row.region.clone()),
        None => None,
    }
}

/// The Region the `primary-region` ListSecrets filter matches: where the secret originated.
pub fn origin_region(row: &SecretRow) -> &str {
    row.primary_region.as_deref().unwrap_or(&row.region)
}

/// AddReplicaRegions checked against the model, without duplicates, none in `own_region`.
pub fn requested_regions(
    list: &[ReplicaRegion],
    own_region: &str,
) -> EngineResult<Vec<(String, Option<String>)>> {
    let mut out: Vec<(String, Option<String>)> = Vec::with_capacity(list.len());
    for r in list {
        let region = validate::required("addReplicaRegions.member.region", &r.region)?;
        validate::region("addReplicaRegions.member.region", region)?;
        validate::opt_length("addReplicaRegions.member.kmsKeyId", &r.kms_key_id, 0, 2048)?;
        if region == own_region {
            return Err(EngineError::InvalidParameter(
                "Invalid replica region.".into(),
            ));
        }
        if !out.iter().any(|(seen, _)| seen == region) {
            out.push((region.clone(), r.kms_key_id.clone()));
        }
    }
    Ok(out)
}

/// The replica's ARN: the primary's, Region swapped (the random suffix is kept, as in AWS).
fn replica_arn(primary: &SecretRow, account_id: &str, region: &str) -> String {
    let tail = parse_arn(&primary.arn)
        .map(|a| a.tail.to_string())
        .unwrap_or_else(|| primary.name.clone());
    format!("arn:aws:secretsmanager:{region}:{account_id}:secret:{tail}")
}

/// A replica's row after a write to its primary: the primary's metadata, the replica's
/// identity (id, Region, ARN, KmsKeyId, creation and access times).
fn mirror(primary: &SecretRow, replica: &SecretRow) -> SecretRow {
    let mut next = replica.clone();
    next.revision += 1;
    next.description = primary.description.clone();
    next.secret_type = primary.secret_type.clone();
    next.tags = primary.tags.clone();
    next.resource_policy = primary.resource_policy.clone();
    next.rotation = primary.rotation.clone();
    next.last_changed_at = primary.last_changed_at;
    next
}

fn restage(stages: &[StageRow], secret_id: &str) -> Vec<StageRow> {
    stages
        .iter()
        .map(|s| StageRow {
            secret_id: secret_id.to_string(),
            ..s.clone()
        })
        .collect()
}

impl Engine {
    fn seal_plain(scope: &Scope, secret_id: &str, v: &PlainVersion) -> VersionRow {
        VersionRow {
            secret_id: secret_id.to_string(),
            version_id: v.version_id.clone(),
            workspace_id: scope.tenant.id.clone(),
            sealed_value: scope
                .tenant
                .key
                .seal(&Self::aad(scope, secret_id, &v.version_id), &v.bytes),
            is_binary: v.is_binary,
            created_at: v.created_at,
            last_accessed_at: None,
        }
    }

    fn open_version(scope: &Scope, v: &VersionRow) -> EngineResult<PlainVersion> {
        let aad = VersionAad {
            workspace_id: &scope.tenant.id,
            secret_id: &v.secret_id,
            version_id: &v.version_id,
        };
        let bytes = scope
            .tenant
            .key
            .open(&aad, &v.sealed_value)
            .map_err(|_| EngineError::Decryption)?;
        Ok(PlainVersion {
            version_id: v.version_id.clone(),
            created_at: v.created_at,
            is_binary: v.is_binary,
            bytes,
        })
    }

    /// Every version of a secret, decrypted, to be sealed again for a new replica.
    async fn plain_versions(
        &self,
        scope: &Scope,
        secret_id: &str,
    ) -> EngineResult<Vec<PlainVersion>> {
        self.db
            .all_versions(&scope.tenant.id, secret_id)
            .await?
            .iter()
            .map(|v| Self::open_version(scope, v))
            .collect()
    }

    /// A new replica of `primary` in `region`, with every version sealed for it.
    fn build_replica(
        scope: &Scope,
        primary: &SecretRow,
        plain: &[PlainVersion],
        labels: &Labels,
        region: &str,
        kms_key_id: Option<String>,
        now: i64,
    ) -> SecretWrite {
        let id = uuid::Uuid::new_v4().to_string();
        let secret = SecretRow {
            id: id.clone(),
            workspace_id: scope.tenant.id.clone(),
            region: region.to_string(),
            name: primary.name.clone(),
            arn: replica_arn(primary, &scope.tenant.account_id, region),
            description: primary.description.clone(),
            kms_key_id,
            secret_type: primary.secret_type.clone(),
            tags: primary.tags.clone(),
            resource_policy: primary.resource_policy.clone(),
            rotation: primary.rotation.clone(),
            created_at: now,
            last_changed_at: now,
            last_accessed_at: None,
            deleted_at: None,
            deletion_date: None,
            revision: 0,
            primary_region: Some(primary.region.clone()),
            replication: None,
        };
        let versions = plain
            .iter()
            .map(|v| Self::seal_plain(scope, &id, v))
            .collect();
        let stages = labels
            .iter()
            .map(|(stage, version_id)| StageRow {
                secret_id: id.clone(),
                stage: stage.clone(),
                version_id: version_id.clone(),
                workspace_id: scope.tenant.id.clone(),
            })
            .collect();
        SecretWrite::Insert {
            secret,
            versions,
            stages,
        }
    }

    /// Decide, Region by Region, how to add replicas of `primary` to `links`: the writes that
    /// create them (and remove a same-named secret when `force` allows), and each Region's
    /// status. A Region already `InSync` is left as it is; a `Failed` one is tried again.
    ///
    /// A same-named secret in the target Region makes that Region `Failed` unless `force`
    /// (ForceOverwriteReplicaSecret) is set; even then a secret that is itself a replica or a
    /// primary with replicas is never overwritten, since that would orphan or steal a link.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn plan_replicas(
        &self,
        scope: &Scope,
        primary: &SecretRow,
        plain: &[PlainVersion],
        labels: &Labels,
        mut links: Vec<ReplicaLink>,
        regions: &[(String, Option<String>)],
        force: bool,
        now: i64,
    ) -> EngineResult<(Vec<ReplicaLink>, Vec<SecretWrite>)> {
        let mut writes = Vec::new();
        for (region, kms_key_id) in regions {
            if links.iter().any(|l| &l.region == region && l.live()) {
                continue;
            }
            let mut link = ReplicaLink {
                region: region.clone(),
                kms_key_id: kms_key_id.clone(),
                status: IN_SYNC.into(),
                status_message: None,
            };
            match self.find_named(scope, region, &primary.name, now).await? {
                Some(taken)
                    if !force || taken.primary_region.is_some() || taken.replication.is_some() =>
                {
                    link.status = FAILED.into();
                    link.status_message = Some(NAME_TAKEN.into());
                }
                Some(taken) => {
                    writes.push(SecretWrite::Purge {
                        secret_id: taken.id.clone(),
                        expected_revision: taken.revision,
                        region: taken.region.clone(),
                        name: taken.name.clone(),
                    });
                    writes.push(Self::build_replica(
                        scope,
                        primary,
                        plain,
                        labels,
                        region,
                        kms_key_id.clone(),
                        now,
                    ));
                }
                None => writes.push(Self::build_replica(
                    scope,
                    primary,
                    plain,
                    labels,
                    region,
                    kms_key_id.clone(),
                    now,
                )),
            }
            links.retain(|l| &l.region != region);
            links.push(link);
        }
        Ok((links, writes))
    }

    /// The replica side of a write to `primary` (already changed): each live replica gets the
    /// same metadata, the new version re-sealed for it, and the same labels.
    pub(super) async fn replica_updates(
        &self,
        scope: &Scope,
        primary: &SecretRow,
        version: Option<&VersionRow>,
        stages: Option<&[StageRow]>,
    ) -> EngineResult<Vec<SecretWrite>> {
        let plain = version.map(|v| Self::open_version(scope, v)).transpose()?;
        let mut writes = Vec::new();
        for link in links(primary).iter().filter(|l| l.live()) {
            let Some(replica) = self.replica_in(scope, primary, &link.region).await? else {
                tracing::warn!(region = %link.region, "replica listed by its primary is missing");
                continue;
            };
            writes.push(SecretWrite::Update {
                expected_revision: replica.revision,
                secret: mirror(primary, &replica),
                versions: plain
                    .iter()
                    .map(|p| Self::seal_plain(scope, &replica.id, p))
                    .collect(),
                stages: stages.map(|s| restage(s, &replica.id)),
            });
        }
        Ok(writes)
    }

    /// `primary`'s replica in `region`, if that Region's secret of the name is one.
    async fn replica_in(
        &self,
        scope: &Scope,
        primary: &SecretRow,
        region: &str,
    ) -> EngineResult<Option<SecretRow>> {
        let row = self
            .db
            .find_secret(&scope.tenant.id, region, &SecretLookup::Name(&primary.name))
            .await?;
        Ok(row.filter(|r| r.primary_region.as_deref() == Some(primary.region.as_str())))
    }

    /// Each live replica's LastAccessedDate (AWS reports it per Region).
    pub(super) async fn fill_replica_access(
        &self,
        scope: &Scope,
        primary: &SecretRow,
        statuses: &mut [ReplicationStatusEntry],
    ) -> EngineResult<()> {
        for s in statuses.iter_mut().filter(|s| s.status == IN_SYNC) {
            if let Some(replica) = self.replica_in(scope, primary, &s.region).await? {
                s.last_accessed_date = replica.last_accessed_at.map(Timestamp);
            }
        }
        Ok(())
    }

    /// Store a primary's new replica list with the replica writes that go with it (in one
    /// transaction, and only if the list changed), and answer with the replicas' status.
    async fn commit_links(
        &self,
        scope: &Scope,
        state: &SecretState,
        links: Vec<ReplicaLink>,
        replica_writes: Vec<SecretWrite>,
        now: i64,
    ) -> EngineResult<ReplicationOutput> {
        let replication = links_json(&links);
        if replication != state.row.replication {
            let mut next = state.next_row(now);
            next.replication = replication;
            let mut writes = vec![SecretWrite::Update {
                expected_revision: state.row.revision,
                secret: next,
                versions: Vec::new(),
                stages: None,
            }];
            writes.extend(replica_writes);
            self.write_all(scope, writes).await?;
        }
        let mut statuses: Vec<ReplicationStatusEntry> =
            links.iter().map(ReplicaLink::status).collect();
        self.fill_replica_access(scope, &state.row, &mut statuses)
            .await?;
        Ok(ReplicationOutput {
            arn: state.row.arn.clone(),
            replication_status: statuses,
        })
    }

    // ------------------------------------------------------------------ operations

    /// ReplicateSecretToRegions: add replicas in other Regions of this workspace.
    pub async fn replicate_secret_to_regions(
        &self,
        scope: &Scope,
        input: &ReplicateSecretToRegionsInput,
        now: i64,
    ) -> EngineResult<ReplicationOutput> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        let list = validate::required("addReplicaRegions", &input.add_replica_regions)?;
        validate::list_len("addReplicaRegions", list.len(), 1, usize::MAX)?;
        let regions = requested_regions(list, &scope.region)?;
        let force = input.force_overwrite_replica_secret.unwrap_or(false);
        self.retrying(|| async {
            let state = self.state(scope, secret_id, now).await?;
            state.refuse_if_replica()?;
            state.refuse_if_deleted()?;
            let current = links(&state.row);
            let needs_values = regions
                .iter()
                .any(|(r, _)| !current.iter().any(|l| &l.region == r && l.live()));
            let plain = if needs_values {
                self.plain_versions(scope, &state.row.id).await?
            } else {
                Vec::new()
            };
            let (links, replicas) = self
                .plan_replicas(
                    scope,
                    &state.row,
                    &plain,
                    &state.labels,
                    current,
                    &regions,
                    force,
                    now,
                )
                .await?;
            self.commit_links(scope, &state, links, replicas, now).await
        })
        .await
    }

    /// RemoveRegionsFromReplication: delete the replicas in the given Regions. A Region
    /// without a replica is not an error.
    pub async fn remove_regions_from_replication(
        &self,
        scope: &Scope,
        input: &RemoveRegionsFromReplicationInput,
        now: i64,
    ) -> EngineResult<ReplicationOutput> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        let regions = validate::required("removeReplicaRegions", &input.remove_replica_regions)?;
        validate::list_len("removeReplicaRegions", regions.len(), 1, usize::MAX)?;
        for r in regions {
            validate::region("removeReplicaRegions.member", r)?;
        }
        self.retrying(|| async {
            let state = self.state(scope, secret_id, now).await?;
            state.refuse_if_replica()?;
            state.refuse_if_deleted()?;
            let mut links = links(&state.row);
            let mut purges = Vec::new();
            for region in regions {
                let Some(pos) = links.iter().position(|l| &l.region == region) else {
                    continue;
                };
                let link = links.remove(pos);
                if link.live()
                    && let Some(replica) = self.replica_in(scope, &state.row, region).await?
                {
                    purges.push(SecretWrite::Purge {
                        secret_id: replica.id.clone(),
                        expected_revision: replica.revision,
                        region: replica.region.clone(),
                        name: replica.name.clone(),
                    });
                }
            }
            self.commit_links(scope, &state, links, purges, now).await
        })
        .await
    }

    /// StopReplicationToReplica, called on the replica in its own Region: promote it to a
    /// standalone secret (same ARN, values and labels) and drop it from its primary.
    pub async fn stop_replication_to_replica(
        &self,
        scope: &Scope,
        input: &SecretIdInput,
        now: i64,
    ) -> EngineResult<ArnOnly> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        self.retrying(|| async {
            let state = self.state(scope, secret_id, now).await?;
            let Some(primary_region) = state.row.primary_region.clone() else {
                return Err(EngineError::InvalidRequest(
                    "StopReplicationToReplica applies only to a replica secret; this secret is not a replica."
                        .into(),
                ));
            };
            let mut promoted = state.next_row(now);
            promoted.primary_region = None;
            let mut writes = vec![SecretWrite::Update {
                expected_revision: state.row.revision,
                secret: promoted,
                versions: Vec::new(),
                stages: None,
            }];
            let primary = self
                .db
                .find_secret(
                    &scope.tenant.id,
                    &primary_region,
                    &SecretLookup::Name(&state.row.name),
                )
                .await?;
            if let Some(primary) = primary.filter(|p| p.primary_region.is_none()) {
                let mut links = links(&primary);
                let before = links.len();
                links.retain(|l| l.region != state.row.region);
                if links.len() != before {
                    let mut next = primary.clone();
                    next.revision += 1;
                    next.last_changed_at = now;
                    next.replication = links_json(&links);
                    writes.push(SecretWrite::Update {
                        expected_revision: primary.revision,
                        secret: next,
                        versions: Vec::new(),
                        stages: None,
                    });
                }
            }
            self.write_all(scope, writes).await?;
            Ok(ArnOnly {
                arn: state.row.arn.clone(),
            })
        })
        .await
    }

    /// Checks shared by the two cross-account operations; returns the primary.
    async fn cross_account_primary(
        &self,
        scope: &Scope,
        input: &CrossAccountReplicaInput,
        now: i64,
    ) -> EngineResult<(SecretState, String)> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        let replica_arn =
            validate::required("crossAccountReplicaARN", &input.cross_account_replica_arn)?;
        validate::length("crossAccountReplicaARN", replica_arn, 20, 2048, false)?;
        if let Some(r) = &input.replica_restriction {
            validate::one_of("replicaRestriction", r, &["SameOrg", "NoRestriction"])?;
        }
        if let Some(role) = &input.replication_role_arn {
            validate::length("replicationRoleARN", role, 20, 2048, false)?;
        }
        let Some(parsed) = parse_arn(replica_arn) else {
            return Err(EngineError::InvalidParameter(format!(
                "{replica_arn} is not a valid secret ARN."
            )));
        };
        if parsed.account == scope.tenant.account_id {
            return Err(EngineError::InvalidParameter(
                "The replica secret must be in a different account than the primary secret.".into(),
            ));
        }
        if parsed.region != scope.region {
            return Err(EngineError::InvalidParameter(
                "The replica secret must be in the same Region as the primary secret.".into(),
            ));
        }
        let state = self.state(scope, secret_id, now).await?;
        state.refuse_if_replica()?;
        state.refuse_if_deleted()?;
        Ok((state, replica_arn.clone()))
    }

    /// AssociateCrossAccountReplica. The replica lives in another workspace, which would have
    /// to grant `secretsmanager:AcceptCrossAccountReplication`; without resource-policy
    /// enforcement (brief §2.13) no workspace can grant it, so after validation the call is
    /// refused with AccessDeniedException, whether or not the replica exists (that must not
    /// leak), and nothing changes.
    pub async fn associate_cross_account_replica(
        &self,
        scope: &Scope,
        input: &CrossAccountReplicaInput,
        now: i64,
    ) -> EngineResult<ArnOnly> {
        let (_, replica_arn) = self.cross_account_primary(scope, input, now).await?;
        Err(EngineError::AccessDenied(format!(
            "The caller is not authorized to perform: secretsmanager:AcceptCrossAccountReplication on resource: {replica_arn} because no resource-based policy allows the secretsmanager:AcceptCrossAccountReplication action"
        )))
    }

    /// DisassociateCrossAccountReplica. No cross-account replica can be associated on this
    /// server (see [`Engine::associate_cross_account_replica`]), so the named replica is never
    /// one of this secret's.
    pub async fn disassociate_cross_account_replica(
        &self,
        scope: &Scope,
        input: &CrossAccountReplicaInput,
        now: i64,
    ) -> EngineResult<ArnOnly> {
        let (state, replica_arn) = self.cross_account_primary(scope, input, now).await?;
        Err(EngineError::InvalidRequest(format!(
            "{replica_arn} is not a cross-account replica of secret {}.",
            state.row.arn
        )))
    }
}
