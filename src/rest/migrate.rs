//! `POST /workspaces/{id}/migrate/aws`: the AWS importer, run by the server as a job.
//!
//! The request carries the source account's credentials; they live only in the job's
//! memory for its run and are never logged, audited or returned. Jobs are per node: the
//! status URL must reach the node that accepted the job (the response says which id).

use super::rfc3339;
use crate::import::{
    self, ImportOptions, ImportProgress, ImportReport, SecretReport, SourceConfig, TargetWorkspace,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Most finished jobs a node remembers.
const MAX_JOBS: usize = 256;

/// The request body.
#[derive(Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MigrateAwsBody {
    /// Source region (default us-east-1).
    pub from_region: Option<String>,
    /// Source endpoint override (any Secrets Manager-compatible server).
    pub from_endpoint_url: Option<String>,
    /// Source access key id.
    pub access_key_id: String,
    /// Source secret access key.
    pub secret_access_key: String,
    /// Source session token, for temporary credentials.
    pub session_token: Option<String>,
    /// Region the secrets get here (default: the source region).
    pub target_region: Option<String>,
    /// List what would happen and write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// A job as the API shows it.
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// Job id.
    pub id: String,
    /// Target workspace.
    pub workspace_id: String,
    /// `running`, `succeeded`, `completed_with_differences` or `failed`.
    pub status: &'static str,
    /// Secrets found at the source (once listed).
    pub total: Option<usize>,
    /// Secrets processed so far.
    pub done: usize,
    /// Start, RFC 3339.
    pub started_at: String,
    /// End, RFC 3339.
    pub finished_at: Option<String>,
    /// The validation report (hashes only), once finished.
    pub report: Option<ImportReport>,
    /// Why the job failed.
    pub error: Option<String>,
}

struct Job {
    workspace_id: String,
    started_at: String,
    total: Mutex<Option<usize>>,
    done: AtomicUsize,
    outcome: Mutex<Option<Result<ImportReport, String>>>,
    finished_at: Mutex<Option<String>>,
}

impl ImportProgress for Job {
    fn started(&self, total: usize) {
        if let Ok(mut t) = self.total.lock() {
            *t = Some(total);
        }
    }
    fn secret_started(&self, _: usize, _: &str) {}
    fn secret_finished(&self, _: usize, _: &SecretReport) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }
    fn finished(&self) {}
}

/// The node's jobs.
#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

impl Jobs {
    /// Start a job importing into `workspace_id`; returns its first view.
    pub fn start(
        &self,
        db: crate::store::Db,
        master: Arc<crate::crypto::MasterKey>,
        cache: Arc<crate::engine::cache::SecretCache>,
        workspace_id: &str,
        body: MigrateAwsBody,
        now_ms: i64,
    ) -> JobView {
        let id = uuid::Uuid::new_v4().to_string();
        let job = Arc::new(Job {
            workspace_id: workspace_id.to_string(),
            started_at: rfc3339(now_ms),
            total: Mutex::new(None),
            done: AtomicUsize::new(0),
            outcome: Mutex::new(None),
            finished_at: Mutex::new(None),
        });
        if let Ok(mut jobs) = self.jobs.lock() {
            if jobs.len() >= MAX_JOBS {
                // Forget finished jobs first; running ones stay reachable.
                jobs.retain(|_, j| j.outcome.lock().map(|o| o.is_none()).unwrap_or(true));
            }
            jobs.insert(id.clone(), job.clone());
        }
        let source_region = body
            .from_region
            .clone()
            .unwrap_or_else(|| "us-east-1".to_string());
        let credentials = aws_credential_types::Credentials::new(
            body.access_key_id.clone(),
            body.secret_access_key.clone(),
            body.session_token.clone(),
            None,
            "rest-migrate",
        );
        let source = SourceConfig {
            region: Some(source_region.clone()),
            endpoint_url: body.from_endpoint_url.clone(),
            profile: None,
            credentials: Some(credentials),
            max_attempts: 10,
        };
        let options = ImportOptions {
            workspace: TargetWorkspace::Id(workspace_id.to_string()),
            target_region: body
                .target_region
                .clone()
                .unwrap_or_else(|| source_region.clone()),
            source_region,
            source_endpoint: body.from_endpoint_url.clone(),
            dry_run: body.dry_run,
            throttle_retries: 8,
            throttle_backoff: std::time::Duration::from_millis(500),
            now_ms,
            cache: Some(cache),
        };
        let view_id = id.clone();
        let task_job = job.clone();
        tokio::spawn(async move {
            let (client, _) = import::source_client(&source).await;
            let result =
                import::import_aws(&db, &master, &client, &options, task_job.as_ref()).await;
            let outcome = result.map_err(|e| e.to_string());
            if let Ok(mut f) = task_job.finished_at.lock() {
                *f = Some(rfc3339(crate::bootstrap::now_ms()));
            }
            if let Ok(mut o) = task_job.outcome.lock() {
                *o = Some(outcome);
            }
        });
        view(&view_id, &job)
    }

    /// A job of `workspace_id`, if this node has it.
    pub fn get(&self, workspace_id: &str, id: &str) -> Option<JobView> {
        let jobs = self.jobs.lock().ok()?;
        let job = jobs.get(id)?;
        (job.workspace_id == workspace_id).then(|| view(id, job))
    }
}

fn view(id: &str, job: &Job) -> JobView {
    let outcome = job.outcome.lock().ok().and_then(|o| o.clone());
    let (status, report, error) = match outcome {
        None => ("running", None, None),
        Some(Ok(report)) => {
            let status = if report.ok {
                "succeeded"
            } else {
                "completed_with_differences"
            };
            (status, Some(report), None)
        }
        Some(Err(e)) => ("failed", None, Some(e)),
    };
    JobView {
        id: id.to_string(),
        workspace_id: job.workspace_id.clone(),
        status,
        total: job.total.lock().ok().and_then(|t| *t),
        done: job.done.load(Ordering::Relaxed),
        started_at: job.started_at.clone(),
        finished_at: job.finished_at.lock().ok().and_then(|f| f.clone()),
        report,
        error,
    }
}
