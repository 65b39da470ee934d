//! `ragnos-vault import aws`: copy every secret of an AWS account and region (or of any
//! endpoint that speaks the Secrets Manager API: moto, another RAGnos Vault) into a workspace.
//!
//! # Design
//! - **Source:** the official `aws-sdk-secretsmanager` client, built by [`source_client`] with
//!   the standard credential chain. The SDK's standard retry mode runs with more attempts, and
//!   every call is also wrapped in our own exponential backoff with jitter on throttling codes
//!   (`ThrottlingException`, `TooManyRequestsException`, …), HTTP 429 and 5xx, so a long import
//!   outlasts the SDK's retry token bucket instead of failing half-way.
//! - **Enumeration:** ListSecrets (`IncludePlannedDeletion=true`, paginated) gives the names and
//!   ARNs; then, one secret at a time, DescribeSecret, ListSecretVersionIds
//!   (`IncludeDeprecated=true`, paginated), GetResourcePolicy, and GetSecretValue for every
//!   VersionId, deprecated ones included. Only one secret's plaintext is held at a time, in
//!   [`Zeroizing`] buffers. Versions and labels are the union of the listing and DescribeSecret's
//!   `VersionIdsToStages`, because emulators disagree about which one is complete; pagination
//!   stops on an empty or repeated `NextToken`, because moto returns `""` and ignores MaxResults.
//! - **Target:** written straight through [`Db`], beside a running server on the same database,
//!   in the engine's own data model: the same VersionIds and labels, SecretString vs
//!   SecretBinary, description, tags, KmsKeyId, `Type`, rotation settings, resource policy, and
//!   the creation dates of the secret and of each version. Values are sealed with the workspace
//!   key and AAD (workspace id, secret id, version id) exactly as `Engine::seal` does. A version's
//!   date comes from GetSecretValue's `CreatedDate` (the version's creation time in AWS), else
//!   from the listing: moto's listing reports the time of the call instead.
//! - **ARNs:** when the source ARN's account and region are the target workspace's, the ARN is
//!   kept byte for byte (teams that set `RAGNOS_ROOT_ACCOUNT_ID` to their AWS account id keep
//!   identical ARNs); otherwise the secret gets a new ARN in the workspace's account with a
//!   fresh 6-character suffix, as CreateSecret would.
//! - **Scheduled for deletion:** AWS refuses GetSecretValue on such a secret, so its values
//!   cannot be copied. It is imported *as scheduled* (DeletedDate kept, recovery deadline 30 days
//!   after it, the longest window AWS allows) when every value can be read, which is always the
//!   case for a secret with no versions; otherwise it is skipped with a report line saying to
//!   restore it at the source and re-run. A skip is not a failure: the owner asked for deletion.
//! - **Idempotency and conflicts:** a same-name secret in the target is the earlier import of
//!   this secret only if its ARN equals the source's or its creation date does (imports keep the
//!   source's CreatedDate to the millisecond). Then every target version must exist at the
//!   source with the same value (SHA-256 of the decrypted plaintext, and the same
//!   string/binary kind): identical versions are skipped, missing ones are added, and labels and
//!   metadata are set to the source's, in one transaction guarded by the secret's revision.
//!   Anything else (another secret with the name, a VersionId whose value differs, a version only
//!   the target has, a secret scheduled for deletion on one side only) is a conflict: that secret
//!   is left untouched and the run exits non-zero. An import never deletes or restores.
//! - **Validation:** after writing, every version is read back from the store, decrypted and
//!   hashed; the report lists both SHA-256s per version, and whether the labels read back equal
//!   the source's. Secret values are never logged or printed, only their hashes.
//!
//! The core, [`import_aws`], knows nothing about the command line, so the REST endpoint
//! `POST /api/v1/workspaces/{id}/migrate/aws` can run it as a job with its own [`ImportProgress`].

use crate::crypto::{MasterKey, VersionAad, WorkspaceKey, sha256_hex};
use crate::engine::types::{RotationRules, Tag};
use crate::engine::{Rotation, arn_suffix, parse_arn};
use crate::store::{Db, SecretLookup, SecretRow, StageRow, StoreError, VersionRow, WorkspaceRow};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::primitives::DateTime;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use zeroize::Zeroizing;

const DAY_MS: i64 = 86_400_000;
/// AWS's longest (and default) recovery window: the deadline we assume for a secret
/// scheduled for deletion at the source, since AWS does not expose the real one.
const RECOVERY_WINDOW_MS: i64 = 30 * DAY_MS;
/// How often one secret is re-planned after a concurrent writer changed it in the target.
const MAX_STORE_RACES: usize = 5;
/// Error codes that mean "slow down"; we back off and retry them.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "TooManyRequestsException",
    "Throttling",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "SlowDown",
];

/// Failures that stop the whole import (per-secret problems go into the report instead).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The target workspace does not exist.
    #[error(
        "workspace '{0}' not found (start the server once to create 'default', or use `ragnos-vault admin workspace create`)"
    )]
    WorkspaceNotFound(String),
    /// The workspace key could not be unwrapped with this master key.
    #[error("the key of workspace '{0}' cannot be unwrapped with this master key")]
    WorkspaceKey(String),
    /// An option is invalid.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// Listing the source's secrets failed.
    #[error("listing the source's secrets failed: {0}")]
    Source(String),
    /// The target store failed.
    #[error("target store: {0}")]
    Store(#[from] StoreError),
}

/// Which workspace receives the secrets.
#[derive(Debug, Clone)]
pub enum TargetWorkspace {
    /// By name (the CLI's `--workspace`).
    Name(String),
    /// By internal id (the REST API's path parameter).
    Id(String),
}

/// What to import, where to, and how.
#[derive(Clone)]
pub struct ImportOptions {
    /// The workspace written to.
    pub workspace: TargetWorkspace,
    /// The region the secrets get in the target.
    pub target_region: String,
    /// The source region (for the report; the client already points there).
    pub source_region: String,
    /// The source endpoint override, if any (for the report).
    pub source_endpoint: Option<String>,
    /// List what would happen and write nothing.
    pub dry_run: bool,
    /// Our own retries of a throttled or 5xx call, after the SDK's (0 = none).
    pub throttle_retries: u32,
    /// First delay of that backoff; it doubles per retry up to 20 s, with jitter.
    pub throttle_backoff: Duration,
    /// The time of the run, epoch ms (fallback for dates the source does not give).
    pub now_ms: i64,
    /// The cache whose entries an import write must drop: the server's own engine cache
    /// (REST form), or a Redis-connected one so running servers drop theirs (CLI form).
    pub cache: Option<std::sync::Arc<crate::engine::cache::SecretCache>>,
}

/// How to reach the source account.
#[derive(Clone, Default)]
pub struct SourceConfig {
    /// Region; else the standard chain (env, profile), else `us-east-1`.
    pub region: Option<String>,
    /// Endpoint override for any Secrets Manager-compatible server.
    pub endpoint_url: Option<String>,
    /// Named profile from the shared config files.
    pub profile: Option<String>,
    /// Explicit credentials instead of the standard chain (for the REST form).
    pub credentials: Option<aws_credential_types::Credentials>,
    /// Attempts per call in the SDK's standard retry mode (0 = 10).
    pub max_attempts: u32,
}

/// Build the source client with the standard AWS credential chain; returns it and its region.
pub async fn source_client(source: &SourceConfig) -> (Client, String) {
    let attempts = if source.max_attempts == 0 {
        10
    } else {
        source.max_attempts
    };
    let retry = aws_sdk_secretsmanager::config::retry::RetryConfig::standard()
        .with_max_attempts(attempts)
        .with_initial_backoff(Duration::from_millis(250));
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(retry);
    if let Some(profile) = &source.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &source.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(url) = &source.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(creds) = &source.credentials {
        loader = loader.credentials_provider(creds.clone());
    }
    let shared = loader.load().await;
    let region = shared
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".to_string());
    let config = aws_sdk_secretsmanager::config::Builder::from(&shared)
        .region(aws_config::Region::new(region.clone()))
        .build();
    (Client::from_conf(config), region)
}

/// Check a region name the way the service model does: `^([a-z]+-)+\d+$`.
pub fn valid_region(region: &str) -> bool {
    let Some((head, digits)) = region.rsplit_once('-') else {
        return false;
    };
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && head
            .split('-')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

// ------------------------------------------------------------------ the report

/// What happened to one secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretOutcome {
    /// New in the target.
    Created,
    /// Existed (an earlier import); versions added or labels/metadata brought up to date.
    Updated,
    /// Existed and already equal to the source.
    Unchanged,
    /// Dry run: would be created.
    WouldCreate,
    /// Dry run: would be updated.
    WouldUpdate,
    /// Left untouched because the target holds something different.
    Conflict,
    /// Not imported, deliberately (see the notes).
    Skipped,
    /// Not imported: the source or the target failed for this secret.
    Error,
}

impl SecretOutcome {
    fn as_str(self) -> &'static str {
        match self {
            SecretOutcome::Created => "created",
            SecretOutcome::Updated => "updated",
            SecretOutcome::Unchanged => "unchanged",
            SecretOutcome::WouldCreate => "would-create",
            SecretOutcome::WouldUpdate => "would-update",
            SecretOutcome::Conflict => "CONFLICT",
            SecretOutcome::Skipped => "skipped",
            SecretOutcome::Error => "ERROR",
        }
    }
}

/// What happened to one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionStatus {
    /// Written to the target by this run.
    Copied,
    /// Already in the target with the same value.
    Skipped,
    /// Dry run: would be written.
    WouldCopy,
    /// Same VersionId in the target with a different value (or string vs binary).
    Conflict,
    /// Only the target has this VersionId.
    TargetOnly,
    /// Not written because its secret was not imported.
    NotCopied,
}

impl VersionStatus {
    fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Copied => "copied",
            VersionStatus::Skipped => "skipped",
            VersionStatus::WouldCopy => "would-copy",
            VersionStatus::Conflict => "CONFLICT",
            VersionStatus::TargetOnly => "TARGET-ONLY",
            VersionStatus::NotCopied => "not-copied",
        }
    }
}

/// One version in the validation report.
#[derive(Debug, Clone, Serialize)]
pub struct VersionReport {
    /// The VersionId (kept from the source).
    pub version_id: String,
    /// Its staging labels at the source (empty: deprecated).
    pub stages: Vec<String>,
    /// SecretBinary (true) or SecretString (false), as at the source; `None` if unread.
    pub binary: Option<bool>,
    /// What happened.
    pub status: VersionStatus,
    /// SHA-256 (hex) of the value read from the source.
    pub source_sha256: Option<String>,
    /// SHA-256 (hex) of the value read back from the target store and decrypted.
    pub target_sha256: Option<String>,
    /// Both hashes present and equal (and the same string/binary kind); `None` if not compared.
    pub matches: Option<bool>,
}

/// One secret in the validation report.
#[derive(Debug, Clone, Serialize)]
pub struct SecretReport {
    /// Secret name.
    pub name: String,
    /// ARN at the source.
    pub source_arn: String,
    /// ARN in the target (kept or new), if it exists or would.
    pub target_arn: Option<String>,
    /// What happened.
    pub outcome: SecretOutcome,
    /// The source has it scheduled for deletion.
    pub scheduled_for_deletion: bool,
    /// Versions written by this run (or that would be, in a dry run).
    pub versions_copied: usize,
    /// Versions already present and identical.
    pub versions_skipped: usize,
    /// Versions in conflict (different value, or only in the target).
    pub versions_conflicting: usize,
    /// Labels read back from the target equal the source's (`None`: not checked).
    pub labels_match: Option<bool>,
    /// Per version, source and target hashes.
    pub versions: Vec<VersionReport>,
    /// Human-readable explanations: conflicts, skips, errors, warnings.
    pub notes: Vec<String>,
}

impl SecretReport {
    fn new(name: &str, source_arn: &str) -> Self {
        SecretReport {
            name: name.to_string(),
            source_arn: source_arn.to_string(),
            target_arn: None,
            outcome: SecretOutcome::Error,
            scheduled_for_deletion: false,
            versions_copied: 0,
            versions_skipped: 0,
            versions_conflicting: 0,
            labels_match: None,
            versions: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn count(&mut self) {
        let n = |s: &[VersionStatus]| {
            self.versions
                .iter()
                .filter(|v| s.contains(&v.status))
                .count()
        };
        self.versions_copied = n(&[VersionStatus::Copied, VersionStatus::WouldCopy]);
        self.versions_skipped = n(&[VersionStatus::Skipped]);
        self.versions_conflicting = n(&[VersionStatus::Conflict, VersionStatus::TargetOnly]);
    }

    /// True when this secret leaves nothing to worry about.
    pub fn is_clean(&self) -> bool {
        !matches!(self.outcome, SecretOutcome::Conflict | SecretOutcome::Error)
            && self.versions_conflicting == 0
            && self.labels_match != Some(false)
            && self.versions.iter().all(|v| v.matches != Some(false))
    }
}

/// Counts over the whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportTotals {
    /// Secrets found at the source.
    pub secrets: usize,
    /// Created (or would be).
    pub created: usize,
    /// Updated (or would be).
    pub updated: usize,
    /// Already up to date.
    pub unchanged: usize,
    /// Deliberately skipped.
    pub skipped: usize,
    /// In conflict.
    pub conflicts: usize,
    /// Failed.
    pub errors: usize,
    /// Versions copied (or that would be).
    pub versions_copied: usize,
    /// Versions already present and identical.
    pub versions_skipped: usize,
    /// Versions in conflict.
    pub versions_conflicting: usize,
    /// Versions whose source and target hashes differ after writing.
    pub mismatches: usize,
}

/// The validation report of one run.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// Source region.
    pub source_region: String,
    /// Source endpoint override, if any.
    pub source_endpoint: Option<String>,
    /// Target workspace name.
    pub workspace: String,
    /// Target workspace account id.
    pub account_id: String,
    /// Target region.
    pub target_region: String,
    /// Nothing was written.
    pub dry_run: bool,
    /// When the run started, epoch ms.
    pub started_at: i64,
    /// Counts.
    pub totals: ImportTotals,
    /// Per secret.
    pub secrets: Vec<SecretReport>,
    /// No conflict, no error, every hash and label set equal.
    pub ok: bool,
}

impl ImportReport {
    fn finish(&mut self) {
        let mut t = ImportTotals {
            secrets: self.secrets.len(),
            ..Default::default()
        };
        for s in &self.secrets {
            match s.outcome {
                SecretOutcome::Created | SecretOutcome::WouldCreate => t.created += 1,
                SecretOutcome::Updated | SecretOutcome::WouldUpdate => t.updated += 1,
                SecretOutcome::Unchanged => t.unchanged += 1,
                SecretOutcome::Skipped => t.skipped += 1,
                SecretOutcome::Conflict => t.conflicts += 1,
                SecretOutcome::Error => t.errors += 1,
            }
            t.versions_copied += s.versions_copied;
            t.versions_skipped += s.versions_skipped;
            t.versions_conflicting += s.versions_conflicting;
            t.mismatches += s
                .versions
                .iter()
                .filter(|v| {
                    v.matches == Some(false)
                        && matches!(v.status, VersionStatus::Copied | VersionStatus::Skipped)
                })
                .count();
        }
        self.ok = self.secrets.iter().all(SecretReport::is_clean);
        self.totals = t;
    }

    /// The report as a plain-text table (hash prefixes; the JSON form has them in full).
    pub fn to_table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let endpoint = self
            .source_endpoint
            .as_deref()
            .map(|e| format!(" via {e}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}Import from {}{endpoint} into workspace '{}' (account {}), region {}",
            if self.dry_run {
                "DRY RUN (nothing written): "
            } else {
                ""
            },
            self.source_region,
            self.workspace,
            self.account_id,
            self.target_region
        );
        let width = self
            .secrets
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(6)
            .clamp(6, 60);
        let _ = writeln!(
            out,
            "\n{:<width$}  {:<12}  {:>6}  {:>7}  {:>8}  LABELS",
            "SECRET", "OUTCOME", "COPIED", "SKIPPED", "CONFLICT"
        );
        for s in &self.secrets {
            let labels = match s.labels_match {
                Some(true) => "match",
                Some(false) => "DIFFER",
                None => "-",
            };
            let _ = writeln!(
                out,
                "{:<width$}  {:<12}  {:>6}  {:>7}  {:>8}  {labels}",
                s.name,
                s.outcome.as_str(),
                s.versions_copied,
                s.versions_skipped,
                s.versions_conflicting
            );
            for v in &s.versions {
                let short = |h: &Option<String>| {
                    h.as_deref()
                        .map(|h| h.get(..16).unwrap_or(h).to_string())
                        .unwrap_or_else(|| "-".into())
                };
                let stages = if v.stages.is_empty() {
                    "(deprecated)".to_string()
                } else {
                    v.stages.join(",")
                };
                let matches = match v.matches {
                    Some(true) => "equal",
                    Some(false) => "DIFFERENT",
                    None => "-",
                };
                let _ = writeln!(
                    out,
                    "    {}  {:<11} {:<6} {:<24} source {}  target {}  {matches}",
                    v.version_id,
                    v.status.as_str(),
                    match v.binary {
                        Some(true) => "binary",
                        Some(false) => "string",
                        None => "?",
                    },
                    stages,
                    short(&v.source_sha256),
                    short(&v.target_sha256),
                );
            }
            for n in &s.notes {
                let _ = writeln!(out, "    note: {n}");
            }
        }
        let t = &self.totals;
        let (created, updated, copied) = if self.dry_run {
            ("to create", "to update", "to copy")
        } else {
            ("created", "updated", "copied")
        };
        let _ = writeln!(
            out,
            "\n{} secrets: {} {created}, {} {updated}, {} unchanged, {} skipped, {} conflicts, {} errors",
            t.secrets, t.created, t.updated, t.unchanged, t.skipped, t.conflicts, t.errors
        );
        let _ = writeln!(
            out,
            "versions: {} {copied}, {} skipped (identical), {} conflicting, {} hash mismatches",
            t.versions_copied, t.versions_skipped, t.versions_conflicting, t.mismatches
        );
        let _ = writeln!(
            out,
            "result: {}",
            if self.ok { "OK" } else { "DIFFERENCES FOUND" }
        );
        out
    }
}

// ------------------------------------------------------------------ progress

/// Where [`import_aws`] reports progress: a terminal bar, log lines, or a REST job.
pub trait ImportProgress: Send + Sync {
    /// The source listing is done: `total` secrets will be processed.
    fn started(&self, total: usize);
    /// Secret number `index` (0-based) is being read.
    fn secret_started(&self, index: usize, name: &str);
    /// Secret number `index` is done.
    fn secret_finished(&self, index: usize, report: &SecretReport);
    /// Everything is done.
    fn finished(&self);
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl ImportProgress for NoProgress {
    fn started(&self, _: usize) {}
    fn secret_started(&self, _: usize, _: &str) {}
    fn secret_finished(&self, _: usize, _: &SecretReport) {}
    fn finished(&self) {}
}

fn progress_line(report: &SecretReport) -> String {
    let mut line = format!(
        "{}: {} ({} copied, {} skipped, {} conflicting)",
        report.name,
        report.outcome.as_str(),
        report.versions_copied,
        report.versions_skipped,
        report.versions_conflicting
    );
    if let Some(n) = report.notes.first() {
        line.push_str(" - ");
        line.push_str(n);
    }
    line
}

/// One plain line per secret on stdout (when stdout is not a terminal).
pub struct LineProgress {
    total: std::sync::atomic::AtomicUsize,
}

impl LineProgress {
    /// A new line printer.
    pub fn new() -> Self {
        LineProgress {
            total: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl Default for LineProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl ImportProgress for LineProgress {
    fn started(&self, total: usize) {
        self.total
            .store(total, std::sync::atomic::Ordering::Relaxed);
        println!("found {total} secrets at the source");
    }
    fn secret_started(&self, _: usize, _: &str) {}
    fn secret_finished(&self, index: usize, report: &SecretReport) {
        let total = self.total.load(std::sync::atomic::Ordering::Relaxed);
        println!("[{}/{total}] {}", index + 1, progress_line(report));
    }
    fn finished(&self) {}
}

/// An indicatif progress bar (when stdout is a terminal); problems are printed above it.
pub struct BarProgress {
    bar: indicatif::ProgressBar,
}

impl BarProgress {
    /// A bar drawn on stdout.
    pub fn new() -> Self {
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stdout());
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message("listing secrets at the source");
        bar.enable_steady_tick(Duration::from_millis(120));
        BarProgress { bar }
    }
}

impl Default for BarProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl ImportProgress for BarProgress {
    fn started(&self, total: usize) {
        self.bar.set_length(total as u64);
    }
    fn secret_started(&self, _: usize, name: &str) {
        self.bar.set_message(name.to_string());
    }
    fn secret_finished(&self, _: usize, report: &SecretReport) {
        if !report.is_clean() || report.outcome == SecretOutcome::Skipped {
            self.bar.println(progress_line(report));
        }
        self.bar.inc(1);
    }
    fn finished(&self) {
        self.bar.finish_and_clear();
    }
}

// ------------------------------------------------------------------ calling the source

/// Is this error worth waiting and retrying (throttling, 429, 5xx)?
fn retryable<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    if e.code().is_some_and(|c| THROTTLING_CODES.contains(&c)) {
        return true;
    }
    e.raw_response().is_some_and(|r| {
        let status = r.status().as_u16();
        status == 429 || status >= 500
    })
}

/// Call the source, backing off exponentially (with jitter) on throttling and 5xx.
async fn call<T, E, F, Fut>(
    options: &ImportOptions,
    mut send: F,
) -> Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    let mut delay = options.throttle_backoff;
    let mut retries = 0;
    loop {
        match send().await {
            Err(e) if retries < options.throttle_retries && retryable(&e) => {
                retries += 1;
                // Jitter in [delay/2, delay) keeps parallel importers from retrying in step.
                let [r] = crate::crypto::random_bytes::<1>();
                let wait = delay / 2 + delay.mul_f64(f64::from(r) / 512.0);
                tracing::warn!(
                    code = e.code().unwrap_or("http"),
                    retry = retries,
                    wait_ms = wait.as_millis() as u64,
                    "source throttled or failed; backing off"
                );
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(Duration::from_secs(20));
            }
            other => return other,
        }
    }
}

/// A short description of an SDK error: its code and message, never a request body.
fn describe_error<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match (e.code(), e.message()) {
        // Some servers wrap and indent their messages; one line reads better in a report.
        (Some(code), Some(msg)) => format!(
            "{code}: {}",
            msg.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
        (Some(code), None) => code.to_string(),
        _ => match e {
            // A parser's complaint may quote the body, and a GetSecretValue body is a secret.
            SdkError::ResponseError(_) => "the source's response could not be parsed".to_string(),
            SdkError::ServiceError(s) => {
                format!("HTTP {} without an error code", s.raw().status().as_u16())
            }
            _ => DisplayErrorContext(e).to_string(),
        },
    }
}

/// Epoch milliseconds of a timestamp, rounded to the nearest millisecond: awsJson sends
/// fractional seconds as a float, so `1795993563.123` may parse to 122.99…ms.
fn millis(t: Option<&DateTime>) -> Option<i64> {
    t.map(|t| (t.as_secs_f64() * 1000.0).round() as i64)
}

/// LastAccessedDate has day granularity in AWS (and in the engine); some emulators send the time.
fn day(ms: Option<i64>) -> Option<i64> {
    ms.map(|t| t - t.rem_euclid(DAY_MS))
}

/// A pagination token worth following: present, non-empty, and not seen before.
fn next_token(token: Option<&str>, seen: &mut BTreeSet<String>) -> Option<String> {
    let t = token.filter(|t| !t.is_empty())?;
    seen.insert(t.to_string()).then(|| t.to_string())
}

/// One secret as ListSecrets names it.
struct Listed {
    name: String,
    arn: String,
}

async fn list_source(client: &Client, options: &ImportOptions) -> Result<Vec<Listed>, ImportError> {
    let mut out = Vec::new();
    let mut arns = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut token: Option<String> = None;
    loop {
        let page = call(options, || {
            client
                .list_secrets()
                .include_planned_deletion(true)
                .max_results(100)
                .set_next_token(token.clone())
                .send()
        })
        .await
        .map_err(|e| ImportError::Source(describe_error(&e)))?;
        let mut new = 0;
        for entry in page.secret_list() {
            let (Some(name), Some(arn)) = (entry.name(), entry.arn()) else {
                continue;
            };
            if arns.insert(arn.to_string()) {
                new += 1;
                out.push(Listed {
                    name: name.to_string(),
                    arn: arn.to_string(),
                });
            }
        }
        token = next_token(page.next_token(), &mut seen);
        if token.is_none() || new == 0 {
            return Ok(out);
        }
    }
}

/// A value read from the source, with its hash.
struct SourceValue {
    bytes: Zeroizing<Vec<u8>>,
    is_binary: bool,
    sha256: String,
}

/// One version at the source.
struct SourceVersion {
    id: String,
    created_ms: Option<i64>,
    last_accessed_ms: Option<i64>,
    value: Option<SourceValue>,
}

/// One secret at the source: metadata, versions and labels.
struct SourceSecret {
    name: String,
    arn: String,
    description: Option<String>,
    kms_key_id: Option<String>,
    secret_type: Option<String>,
    tags: Vec<Tag>,
    created_ms: Option<i64>,
    last_changed_ms: Option<i64>,
    last_accessed_ms: Option<i64>,
    deleted_ms: Option<i64>,
    rotation: Option<Rotation>,
    /// `None`: unknown (could not be read), so an existing target's policy is left alone.
    resource_policy: Option<Option<String>>,
    versions: Vec<SourceVersion>,
    /// label → VersionId
    labels: BTreeMap<String, String>,
}

impl SourceSecret {
    fn stages_of(&self, version_id: &str) -> Vec<String> {
        self.labels
            .iter()
            .filter(|(_, v)| *v == version_id)
            .map(|(l, _)| l.clone())
            .collect()
    }

    fn version(&self, id: &str) -> Option<&SourceVersion> {
        self.versions.iter().find(|v| v.id == id)
    }

    fn tags_json(&self) -> String {
        serde_json::to_string(&self.tags).unwrap_or_else(|_| "[]".into())
    }

    fn rotation_json(&self) -> Option<String> {
        self.rotation
            .as_ref()
            .and_then(|r| serde_json::to_string(r).ok())
    }
}

/// The stored form of a resource policy: `{policy name: document}`, as the engine keeps it.
fn policy_json(doc: &Option<String>) -> Option<String> {
    doc.as_ref().and_then(|d| {
        let map: BTreeMap<&str, &str> = [("default", d.as_str())].into_iter().collect();
        serde_json::to_string(&map).ok()
    })
}

/// Record that the source puts `label` on `vid`; a label on two versions is an error.
fn add_label(labels: &mut BTreeMap<String, String>, label: &str, vid: &str) -> Result<(), String> {
    match labels.get(label) {
        Some(other) if other != vid => Err(format!(
            "the source reports staging label {label} on two versions ({other} and {vid})"
        )),
        _ => {
            labels.insert(label.to_string(), vid.to_string());
            Ok(())
        }
    }
}

/// Read a secret's metadata, versions and labels (not yet its values).
/// Why a secret's metadata could not be read.
enum MetadataFailure {
    /// It was deleted at the source after ListSecrets named it.
    Gone,
    /// Anything else.
    Failed(String),
}

impl From<String> for MetadataFailure {
    fn from(why: String) -> Self {
        MetadataFailure::Failed(why)
    }
}

async fn read_metadata(
    client: &Client,
    options: &ImportOptions,
    listed: &Listed,
    notes: &mut Vec<String>,
) -> Result<SourceSecret, MetadataFailure> {
    let d = match call(options, || {
        client.describe_secret().secret_id(&listed.arn).send()
    })
    .await
    {
        Ok(d) => d,
        Err(e) if e.code() == Some("ResourceNotFoundException") => {
            return Err(MetadataFailure::Gone);
        }
        Err(e) => {
            return Err(MetadataFailure::Failed(format!(
                "DescribeSecret failed: {}",
                describe_error(&e)
            )));
        }
    };
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    let mut versions: BTreeMap<String, SourceVersion> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut token: Option<String> = None;
    loop {
        let page = call(options, || {
            client
                .list_secret_version_ids()
                .secret_id(&listed.arn)
                .include_deprecated(true)
                .max_results(100)
                .set_next_token(token.clone())
                .send()
        })
        .await
        .map_err(|e| format!("ListSecretVersionIds failed: {}", describe_error(&e)))?;
        let mut new = 0;
        for v in page.versions() {
            let Some(id) = v.version_id() else { continue };
            for l in v.version_stages() {
                add_label(&mut labels, l, id)?;
            }
            if !versions.contains_key(id) {
                new += 1;
                versions.insert(
                    id.to_string(),
                    SourceVersion {
                        id: id.to_string(),
                        created_ms: millis(v.created_date()),
                        last_accessed_ms: day(millis(v.last_accessed_date())),
                        value: None,
                    },
                );
            }
        }
        token = next_token(page.next_token(), &mut seen);
        if token.is_none() || new == 0 {
            break;
        }
    }
    if let Some(map) = d.version_ids_to_stages() {
        for (vid, stages) in map {
            for l in stages {
                add_label(&mut labels, l, vid)?;
            }
            versions
                .entry(vid.clone())
                .or_insert_with(|| SourceVersion {
                    id: vid.clone(),
                    created_ms: None,
                    last_accessed_ms: None,
                    value: None,
                });
        }
    }
    let rotation = (d.rotation_enabled().is_some()
        || d.rotation_lambda_arn().is_some()
        || d.rotation_rules().is_some())
    .then(|| Rotation {
        enabled: d.rotation_enabled().unwrap_or(false),
        lambda_arn: d.rotation_lambda_arn().map(str::to_string),
        rules: d.rotation_rules().map(|r| RotationRules {
            automatically_after_days: r.automatically_after_days(),
            duration: r.duration().map(str::to_string),
            schedule_expression: r.schedule_expression().map(str::to_string),
        }),
        last_rotated: millis(d.last_rotated_date()),
        next_rotation: millis(d.next_rotation_date()),
        ..Default::default()
    });
    let resource_policy = match call(options, || {
        client.get_resource_policy().secret_id(&listed.arn).send()
    })
    .await
    {
        Ok(p) => Some(p.resource_policy().map(str::to_string)),
        Err(e) => {
            notes.push(format!(
                "resource policy not copied: GetResourcePolicy failed: {}",
                describe_error(&e)
            ));
            None
        }
    };
    let mut versions: Vec<SourceVersion> = versions.into_values().collect();
    versions.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
    Ok(SourceSecret {
        name: d.name().unwrap_or(&listed.name).to_string(),
        arn: d.arn().unwrap_or(&listed.arn).to_string(),
        description: d.description().map(str::to_string),
        kms_key_id: d.kms_key_id().map(str::to_string),
        secret_type: d.r#type().map(str::to_string),
        tags: d
            .tags()
            .iter()
            .filter_map(|t| {
                Some(Tag {
                    key: t.key()?.to_string(),
                    value: t.value().unwrap_or_default().to_string(),
                })
            })
            .collect(),
        created_ms: millis(d.created_date()),
        last_changed_ms: millis(d.last_changed_date()),
        last_accessed_ms: day(millis(d.last_accessed_date())),
        deleted_ms: millis(d.deleted_date()),
        rotation,
        resource_policy,
        versions,
        labels,
    })
}

/// Why the values of a secret could not be read.
enum ValueFailure {
    /// The source refuses reads because the secret is scheduled for deletion.
    ScheduledForDeletion(String),
    /// Anything else.
    Other(String),
}

/// Read every version's value (GetSecretValue by VersionId, deprecated ones included).
async fn read_values(
    client: &Client,
    options: &ImportOptions,
    secret: &mut SourceSecret,
) -> Result<(), ValueFailure> {
    let arn = secret.arn.clone();
    let scheduled = secret.deleted_ms.is_some();
    for v in &mut secret.versions {
        let out = call(options, || {
            client
                .get_secret_value()
                .secret_id(&arn)
                .version_id(&v.id)
                .send()
        })
        .await;
        let mut out = match out {
            Ok(o) => o,
            Err(e) if scheduled && e.code() == Some("InvalidRequestException") => {
                return Err(ValueFailure::ScheduledForDeletion(describe_error(&e)));
            }
            Err(e) => {
                return Err(ValueFailure::Other(format!(
                    "GetSecretValue of version {} failed: {}",
                    v.id,
                    describe_error(&e)
                )));
            }
        };
        // Take the SDK's buffers so that they are wiped when dropped.
        let (bytes, is_binary) = match (out.secret_string.take(), out.secret_binary.take()) {
            (Some(s), None) => (Zeroizing::new(s.into_bytes()), false),
            (None, Some(b)) => (Zeroizing::new(b.into_inner()), true),
            (Some(s), Some(b)) => {
                drop(Zeroizing::new(s.into_bytes()));
                drop(Zeroizing::new(b.into_inner()));
                return Err(ValueFailure::Other(format!(
                    "version {} has both SecretString and SecretBinary",
                    v.id
                )));
            }
            (None, None) => {
                return Err(ValueFailure::Other(format!(
                    "version {} has no value",
                    v.id
                )));
            }
        };
        if let Some(created) = millis(out.created_date()) {
            v.created_ms = Some(created);
        }
        let sha256 = sha256_hex(&bytes);
        v.value = Some(SourceValue {
            bytes,
            is_binary,
            sha256,
        });
    }
    secret
        .versions
        .sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
    Ok(())
}

// ------------------------------------------------------------------ writing the target

/// The target: one workspace and region of the store.
struct Target<'a> {
    db: &'a Db,
    workspace: &'a WorkspaceRow,
    key: &'a WorkspaceKey,
    region: &'a str,
    options: &'a ImportOptions,
}

impl Target<'_> {
    /// Drop cached states of `name` wherever they live (this process, or via Redis).
    async fn invalidate(&self, name: &str) {
        if let Some(cache) = &self.options.cache {
            cache
                .invalidate(&self.workspace.id, self.region, name)
                .await;
        }
    }

    fn aad<'b>(&'b self, secret_id: &'b str, version_id: &'b str) -> VersionAad<'b> {
        VersionAad {
            workspace_id: &self.workspace.id,
            secret_id,
            version_id,
        }
    }

    /// Hash of a stored version, decrypted; `None` if absent or undecryptable.
    async fn stored(
        &self,
        secret_id: &str,
        version_id: &str,
    ) -> Result<Option<(String, bool)>, StoreError> {
        let Some(row) = self
            .db
            .version(&self.workspace.id, secret_id, version_id)
            .await?
        else {
            return Ok(None);
        };
        Ok(
            match self
                .key
                .open(&self.aad(secret_id, version_id), &row.sealed_value)
            {
                Ok(plain) => Some((sha256_hex(&plain), row.is_binary)),
                Err(_) => Some(("undecryptable".to_string(), row.is_binary)),
            },
        )
    }

    /// The ARN the secret gets here: the source's when account and region agree, else new.
    fn arn_for(&self, source: &SourceSecret) -> String {
        if let Some(p) = parse_arn(&source.arn) {
            let suffixed = p
                .tail
                .strip_prefix(source.name.as_str())
                .and_then(|r| r.strip_prefix('-'))
                .is_some_and(|s| s.len() == 6);
            if p.account == self.workspace.account_id && p.region == self.region && suffixed {
                return source.arn.clone();
            }
        }
        format!(
            "arn:aws:secretsmanager:{}:{}:secret:{}-{}",
            self.region,
            self.workspace.account_id,
            source.name,
            arn_suffix()
        )
    }

    fn seal(&self, secret_id: &str, v: &SourceVersion, value: &SourceValue) -> VersionRow {
        VersionRow {
            secret_id: secret_id.to_string(),
            version_id: v.id.clone(),
            workspace_id: self.workspace.id.clone(),
            sealed_value: self.key.seal(&self.aad(secret_id, &v.id), &value.bytes),
            is_binary: value.is_binary,
            created_at: v.created_ms.unwrap_or(self.options.now_ms),
            last_accessed_at: v.last_accessed_ms,
        }
    }

    fn stage_rows(&self, secret_id: &str, source: &SourceSecret) -> Vec<StageRow> {
        source
            .labels
            .iter()
            .map(|(stage, vid)| StageRow {
                secret_id: secret_id.to_string(),
                stage: stage.clone(),
                version_id: vid.clone(),
                workspace_id: self.workspace.id.clone(),
            })
            .collect()
    }

    /// Apply the source's metadata to a row; true if anything changed. The deletion state is
    /// not metadata: an import never schedules or restores an existing target secret.
    fn apply_metadata(&self, row: &mut SecretRow, source: &SourceSecret) -> bool {
        let before = row.clone();
        row.description = source.description.clone();
        row.kms_key_id = source.kms_key_id.clone();
        row.secret_type = source.secret_type.clone();
        row.tags = source.tags_json();
        row.rotation = source.rotation_json();
        if let Some(policy) = &source.resource_policy {
            row.resource_policy = policy_json(policy);
        }
        *row != before
    }

    /// Read labels back and compare them with the source's.
    async fn labels_match(
        &self,
        secret_id: &str,
        source: &SourceSecret,
    ) -> Result<bool, StoreError> {
        let (_, stages) = self
            .db
            .versions_and_stages(&self.workspace.id, secret_id)
            .await?;
        let back: BTreeMap<String, String> = stages
            .into_iter()
            .map(|s| (s.stage, s.version_id))
            .collect();
        Ok(back == source.labels)
    }
}

/// The result of one planning-and-writing attempt.
enum Attempt {
    Done(SecretReport),
    /// Someone wrote the secret in the target meanwhile: plan again.
    Raced,
}

async fn import_one(
    client: &Client,
    target: &Target<'_>,
    listed: &Listed,
) -> Result<SecretReport, ImportError> {
    let mut report = SecretReport::new(&listed.name, &listed.arn);
    let mut source = match read_metadata(client, target.options, listed, &mut report.notes).await {
        Ok(s) => s,
        Err(MetadataFailure::Gone) => {
            report.outcome = SecretOutcome::Skipped;
            report
                .notes
                .push("deleted at the source during the import; not imported".into());
            return Ok(report);
        }
        Err(MetadataFailure::Failed(why)) => {
            report.notes.push(why);
            return Ok(report);
        }
    };
    report.name = source.name.clone();
    report.source_arn = source.arn.clone();
    report.scheduled_for_deletion = source.deleted_ms.is_some();
    let unreadable = match read_values(client, target.options, &mut source).await {
        Ok(()) => None,
        Err(ValueFailure::ScheduledForDeletion(why)) => Some(why),
        Err(ValueFailure::Other(why)) => {
            report.notes.push(why);
            return Ok(report);
        }
    };
    for _ in 0..MAX_STORE_RACES {
        match plan_and_write(target, &source, unreadable.as_deref(), report.clone()).await? {
            Attempt::Done(mut r) => {
                r.count();
                return Ok(r);
            }
            Attempt::Raced => continue,
        }
    }
    report
        .notes
        .push("the secret kept changing in the target during the import; run again".into());
    Ok(report)
}

fn version_report(
    source: &SourceSecret,
    v: &SourceVersion,
    status: VersionStatus,
) -> VersionReport {
    VersionReport {
        version_id: v.id.clone(),
        stages: source.stages_of(&v.id),
        binary: v.value.as_ref().map(|x| x.is_binary),
        status,
        source_sha256: v.value.as_ref().map(|x| x.sha256.clone()),
        target_sha256: None,
        matches: None,
    }
}

async fn plan_and_write(
    target: &Target<'_>,
    source: &SourceSecret,
    unreadable: Option<&str>,
    mut report: SecretReport,
) -> Result<Attempt, ImportError> {
    let db = target.db;
    let now = target.options.now_ms;
    let dry_run = target.options.dry_run;
    let mut existing = db
        .find_secret(
            &target.workspace.id,
            target.region,
            &SecretLookup::Name(&source.name),
        )
        .await?;
    // A target secret whose recovery window ended is gone for the server too.
    if let Some(row) = existing
        .as_ref()
        .filter(|r| r.deletion_date.is_some_and(|d| d <= now))
    {
        if !dry_run {
            db.purge_secret(&target.workspace.id, &row.id, None).await?;
        }
        existing = None;
    }

    if let Some(why) = unreadable {
        report.outcome = if existing.is_some() {
            SecretOutcome::Unchanged
        } else {
            SecretOutcome::Skipped
        };
        report.target_arn = existing.as_ref().map(|r| r.arn.clone());
        report.versions = source
            .versions
            .iter()
            .map(|v| version_report(source, v, VersionStatus::NotCopied))
            .collect();
        report.notes.push(format!(
            "scheduled for deletion at the source, which refuses to read its values ({why}); {}. \
             To import it, RestoreSecret at the source and run again",
            if existing.is_some() {
                "the target's copy was left unchanged"
            } else {
                "not imported"
            }
        ));
        return Ok(Attempt::Done(report));
    }

    let Some(existing) = existing else {
        return create_new(target, source, report).await;
    };
    // A replicated target changes only through the AWS API: a replica never (it follows its
    // primary), a primary only together with its replicas. The importer leaves both alone.
    if let Some(primary_region) = &existing.primary_region {
        report.outcome = SecretOutcome::Conflict;
        report.target_arn = Some(existing.arn.clone());
        report.notes.push(format!(
            "the target secret of this name is a replica of the one in {primary_region}; not changed"
        ));
        return Ok(Attempt::Done(report));
    }
    if existing.replication.is_some() {
        report.outcome = SecretOutcome::Conflict;
        report.target_arn = Some(existing.arn.clone());
        report.notes.push(
            "the target secret of this name has replicas in other Regions; not changed (remove them with RemoveRegionsFromReplication to import into it)"
                .into(),
        );
        return Ok(Attempt::Done(report));
    }

    // ----- the name exists in the target: is it this secret, and does it agree?
    report.target_arn = Some(existing.arn.clone());
    let mut conflict = false;
    if existing.arn != source.arn && source.created_ms.is_some_and(|c| c != existing.created_at) {
        conflict = true;
        report.notes.push(format!(
            "a different secret named {} already exists in the target ({}); it was not overwritten",
            source.name, existing.arn
        ));
    }
    if existing.deleted_at.is_some() != source.deleted_ms.is_some() {
        conflict = true;
        report.notes.push(if existing.deleted_at.is_some() {
            "scheduled for deletion in the target but not at the source; RestoreSecret in the target to import it again".to_string()
        } else {
            "scheduled for deletion at the source but not in the target; delete it in the target yourself".to_string()
        });
    }
    let (target_versions, _) = db
        .versions_and_stages(&target.workspace.id, &existing.id)
        .await?;
    let mut versions = Vec::new();
    let mut missing = Vec::new();
    for v in &source.versions {
        let Some(value) = &v.value else { continue };
        let mut vr = version_report(source, v, VersionStatus::Skipped);
        match target.stored(&existing.id, &v.id).await? {
            Some((sha, is_binary)) => {
                let same = sha == value.sha256 && is_binary == value.is_binary;
                vr.target_sha256 = Some(sha);
                vr.matches = Some(same);
                if !same {
                    vr.status = VersionStatus::Conflict;
                    conflict = true;
                    report.notes.push(format!(
                        "version {} has a different value in the target; it was not overwritten",
                        v.id
                    ));
                }
            }
            None => {
                vr.status = VersionStatus::NotCopied;
                missing.push(v);
            }
        }
        versions.push(vr);
    }
    for t in target_versions
        .iter()
        .filter(|t| source.version(&t.version_id).is_none())
    {
        conflict = true;
        let stored = target.stored(&existing.id, &t.version_id).await?;
        report.notes.push(format!(
            "version {} exists only in the target",
            t.version_id
        ));
        versions.push(VersionReport {
            version_id: t.version_id.clone(),
            stages: Vec::new(),
            binary: stored.as_ref().map(|s| s.1),
            status: VersionStatus::TargetOnly,
            source_sha256: None,
            target_sha256: stored.map(|s| s.0),
            matches: None,
        });
    }
    if conflict {
        report.outcome = SecretOutcome::Conflict;
        report.versions = versions;
        return Ok(Attempt::Done(report));
    }

    let mut next = existing.clone();
    let metadata_changed = target.apply_metadata(&mut next, source);
    let labels_changed = !target.labels_match(&existing.id, source).await?;
    if missing.is_empty() && !metadata_changed && !labels_changed {
        report.outcome = SecretOutcome::Unchanged;
        report.labels_match = Some(true);
        report.versions = versions;
        return Ok(Attempt::Done(report));
    }
    if metadata_changed {
        report
            .notes
            .push("description, tags or other metadata brought up to date with the source".into());
    }
    if labels_changed {
        report
            .notes
            .push("staging labels brought up to date with the source".into());
    }
    if dry_run {
        for vr in versions
            .iter_mut()
            .filter(|v| v.status == VersionStatus::NotCopied)
        {
            vr.status = VersionStatus::WouldCopy;
        }
        report.outcome = SecretOutcome::WouldUpdate;
        report.versions = versions;
        return Ok(Attempt::Done(report));
    }
    next.revision = existing.revision + 1;
    if let Some(changed) = source.last_changed_ms {
        next.last_changed_at = changed;
    }
    let rows: Vec<VersionRow> = missing
        .iter()
        .filter_map(|v| {
            v.value
                .as_ref()
                .map(|value| target.seal(&existing.id, v, value))
        })
        .collect();
    match db
        .import_into_secret(
            existing.revision,
            &next,
            &rows,
            &target.stage_rows(&existing.id, source),
        )
        .await
    {
        Ok(()) => target.invalidate(&next.name).await,
        Err(StoreError::Conflict) => return Ok(Attempt::Raced),
        Err(e) => return Err(e.into()),
    }
    for vr in versions
        .iter_mut()
        .filter(|v| v.status == VersionStatus::NotCopied)
    {
        vr.status = VersionStatus::Copied;
    }
    validate(target, &existing.id, source, &mut versions).await?;
    report.labels_match = Some(target.labels_match(&existing.id, source).await?);
    report.outcome = SecretOutcome::Updated;
    report.versions = versions;
    Ok(Attempt::Done(report))
}

/// Re-read every copied or skipped version from the store and compare hashes.
async fn validate(
    target: &Target<'_>,
    secret_id: &str,
    source: &SourceSecret,
    versions: &mut [VersionReport],
) -> Result<(), StoreError> {
    for vr in versions
        .iter_mut()
        .filter(|v| matches!(v.status, VersionStatus::Copied | VersionStatus::Skipped))
    {
        let stored = target.stored(secret_id, &vr.version_id).await?;
        let expected = source
            .version(&vr.version_id)
            .and_then(|v| v.value.as_ref());
        vr.matches = Some(match (&stored, expected) {
            (Some((sha, is_binary)), Some(value)) => {
                *sha == value.sha256 && *is_binary == value.is_binary
            }
            _ => false,
        });
        vr.target_sha256 = stored.map(|s| s.0);
    }
    Ok(())
}

async fn create_new(
    target: &Target<'_>,
    source: &SourceSecret,
    mut report: SecretReport,
) -> Result<Attempt, ImportError> {
    let now = target.options.now_ms;
    let deletion_date = source.deleted_ms.map(|d| d + RECOVERY_WINDOW_MS);
    if deletion_date.is_some_and(|d| d <= now) {
        report.outcome = SecretOutcome::Skipped;
        report.versions = source
            .versions
            .iter()
            .map(|v| version_report(source, v, VersionStatus::NotCopied))
            .collect();
        report.notes.push(
            "scheduled for deletion at the source more than 30 days ago; not imported".into(),
        );
        return Ok(Attempt::Done(report));
    }
    if source.deleted_ms.is_some() {
        let verb = if target.options.dry_run {
            "would be imported"
        } else {
            "imported"
        };
        report.notes.push(format!(
            "{verb} as scheduled for deletion (recovery deadline 30 days after its DeletedDate)"
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let arn = target.arn_for(source);
    report.target_arn = Some(arn.clone());
    let status = if target.options.dry_run {
        VersionStatus::WouldCopy
    } else {
        VersionStatus::Copied
    };
    let mut versions: Vec<VersionReport> = source
        .versions
        .iter()
        .map(|v| version_report(source, v, status))
        .collect();
    if target.options.dry_run {
        report.outcome = SecretOutcome::WouldCreate;
        report.versions = versions;
        return Ok(Attempt::Done(report));
    }
    let created = source.created_ms.unwrap_or(now);
    let mut row = SecretRow {
        id: id.clone(),
        workspace_id: target.workspace.id.clone(),
        region: target.region.to_string(),
        name: source.name.clone(),
        arn,
        description: None,
        kms_key_id: None,
        secret_type: None,
        tags: "[]".into(),
        resource_policy: None,
        rotation: None,
        created_at: created,
        last_changed_at: source.last_changed_ms.unwrap_or(created),
        last_accessed_at: source.last_accessed_ms,
        deleted_at: source.deleted_ms,
        deletion_date,
        revision: 0,
        primary_region: None,
        replication: None,
    };
    target.apply_metadata(&mut row, source);
    let rows: Vec<VersionRow> = source
        .versions
        .iter()
        .filter_map(|v| v.value.as_ref().map(|value| target.seal(&id, v, value)))
        .collect();
    match target
        .db
        .import_new_secret(&row, &rows, &target.stage_rows(&id, source))
        .await
    {
        Ok(()) => target.invalidate(&row.name).await,
        Err(StoreError::Conflict) => return Ok(Attempt::Raced),
        Err(e) => return Err(e.into()),
    }
    validate(target, &id, source, &mut versions).await?;
    report.labels_match = Some(target.labels_match(&id, source).await?);
    report.outcome = SecretOutcome::Created;
    report.versions = versions;
    Ok(Attempt::Done(report))
}

// ------------------------------------------------------------------ the entry point

/// Copy every secret of the source into the target workspace and return the validation report.
///
/// Per-secret problems (a conflict, a source error) are recorded in the report and the run
/// goes on; only a failure to list the source, a missing workspace or a store error stops it.
pub async fn import_aws(
    db: &Db,
    master: &MasterKey,
    client: &Client,
    options: &ImportOptions,
    progress: &dyn ImportProgress,
) -> Result<ImportReport, ImportError> {
    if !valid_region(&options.target_region) {
        return Err(ImportError::InvalidOption(format!(
            "'{}' is not a region name",
            options.target_region
        )));
    }
    let workspace = match &options.workspace {
        TargetWorkspace::Name(name) => db
            .workspace_by_name(name)
            .await?
            .ok_or_else(|| ImportError::WorkspaceNotFound(name.clone()))?,
        TargetWorkspace::Id(id) => db
            .workspace(id)
            .await?
            .ok_or_else(|| ImportError::WorkspaceNotFound(id.clone()))?,
    };
    let key = master
        .unwrap_workspace_key(&workspace.id, &workspace.wrapped_key)
        .map_err(|_| ImportError::WorkspaceKey(workspace.name.clone()))?;
    let target = Target {
        db,
        workspace: &workspace,
        key: &key,
        region: &options.target_region,
        options,
    };
    let listed = list_source(client, options).await?;
    progress.started(listed.len());
    let mut report = ImportReport {
        source_region: options.source_region.clone(),
        source_endpoint: options.source_endpoint.clone(),
        workspace: workspace.name.clone(),
        account_id: workspace.account_id.clone(),
        target_region: options.target_region.clone(),
        dry_run: options.dry_run,
        started_at: options.now_ms,
        totals: ImportTotals::default(),
        secrets: Vec::with_capacity(listed.len()),
        ok: false,
    };
    for (index, entry) in listed.iter().enumerate() {
        progress.secret_started(index, &entry.name);
        let secret = import_one(client, &target, entry).await?;
        tracing::info!(
            secret = %secret.name,
            outcome = secret.outcome.as_str(),
            copied = secret.versions_copied,
            skipped = secret.versions_skipped,
            conflicting = secret.versions_conflicting,
            "imported"
        );
        progress.secret_finished(index, &secret);
        report.secrets.push(secret);
    }
    progress.finished();
    report.finish();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-10",
        ] {
            assert!(valid_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us",
            "us-east",
            "US-east-1",
            "us--1",
            "-1",
            "us-east-1a",
            "us-east-",
        ] {
            assert!(!valid_region(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_stop_when_empty_or_repeated() {
        let mut seen = BTreeSet::new();
        assert_eq!(next_token(Some("a"), &mut seen), Some("a".into()));
        assert_eq!(next_token(Some("a"), &mut seen), None);
        assert_eq!(next_token(Some(""), &mut seen), None);
        assert_eq!(next_token(None, &mut seen), None);
    }

    #[test]
    fn throttling_is_retryable() {
        use aws_sdk_secretsmanager::error::ErrorMetadata;
        use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
        use aws_smithy_runtime_api::http::StatusCode;
        let make = |code: &str, status: u16| {
            let err = GetSecretValueError::generic(ErrorMetadata::builder().code(code).build());
            let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), "".into());
            SdkError::service_error(err, raw)
        };
        assert!(retryable(&make("ThrottlingException", 400)));
        assert!(retryable(&make("TooManyRequestsException", 400)));
        assert!(retryable(&make("InternalServiceError", 500)));
        assert!(retryable(&make("Whatever", 503)));
        assert!(retryable(&make("Whatever", 429)));
        assert!(!retryable(&make("ResourceNotFoundException", 400)));
        assert!(!retryable(&make("InvalidRequestException", 400)));
    }

    /// The REST endpoint runs the import as a spawned job: its future must be `Send`.
    #[allow(dead_code)]
    fn import_future_is_send(
        db: &Db,
        master: &MasterKey,
        client: &Client,
        options: &ImportOptions,
        progress: &dyn ImportProgress,
    ) {
        fn is_send<T: Send>(_: &T) {}
        is_send(&import_aws(db, master, client, options, progress));
    }

    #[test]
    fn policy_is_stored_under_default() {
        assert_eq!(
            policy_json(&Some("{}".into())).as_deref(),
            Some(r#"{"default":"{}"}"#)
        );
        assert_eq!(policy_json(&None), None);
    }
}
