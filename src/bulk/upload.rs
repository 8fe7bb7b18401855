//! Accepting an upload (SPEC §5): the file is already streamed to disk and fsync'ed by
//! the HTTP layer; here the fields are checked, an identical earlier file is refused
//! (`409 DUPLICATE_FILE` naming it), the job is recorded PENDING and validation starts
//! in the background.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::files;
use super::ingest::DUPLICATE_WINDOW_MICROS;
use super::items::{job_details, save_job};
use super::model::{Job, JobOptions, JobStatus};
use crate::auth::audit::{self, Draft};
use crate::auth::Actor;
use crate::engine::Engine;
use crate::error::Error;
use crate::ledger::{AccountKey, Msisdn};
use crate::store::{keys, TreeId};
use crate::transfers::resolve::check_reason;
use crate::transfers::{account_frozen, account_missing, normalize_note};

/// A file received and made durable, not yet a job.
#[derive(Clone, Debug)]
pub struct StagedFile {
    /// Where it is (in the incoming directory).
    pub path: std::path::PathBuf,
    /// SHA-256 of its bytes.
    pub sha256: [u8; 32],
    /// Its size.
    pub bytes: u64,
    /// The name the client gave it.
    pub file_name: String,
}

/// The form fields of an upload.
#[derive(Clone, Debug, Default)]
pub struct UploadFields {
    /// The paying wallet.
    pub source_msisdn: Option<String>,
    /// `skip_invalid`.
    pub skip_invalid: bool,
    /// `allow_duplicate`.
    pub allow_duplicate: bool,
    /// Reason for a duplicate.
    pub reason: Option<String>,
    /// Note.
    pub note: Option<String>,
}

/// Longest file name kept (the rest is cut).
const FILE_NAME_CHARS_MAX: usize = 200;

impl Engine {
    /// Records an upload as a PENDING job and starts its validation.
    pub async fn accept_upload(
        self: &Arc<Self>,
        actor: &Actor,
        file: StagedFile,
        fields: UploadFields,
    ) -> Result<Job, Error> {
        let result = self.record_upload(actor, &file, fields).await;
        if result.is_err() {
            let _ = std::fs::remove_file(&file.path);
        }
        let job = result?;
        self.spawn_ingest(job.id);
        Ok(job)
    }

    async fn record_upload(
        self: &Arc<Self>,
        actor: &Actor,
        file: &StagedFile,
        fields: UploadFields,
    ) -> Result<Job, Error> {
        let source_text = fields.source_msisdn.ok_or_else(|| {
            Error::invalid_field("MISSING_FIELD", "source_msisdn", "source_msisdn (the paying wallet) is required")
        })?;
        let source = Msisdn::parse(&source_text)
            .map_err(|e| Error::invalid_field("MSISDN_FORMAT", "source_msisdn", e.to_string()))?;
        let reason = match (fields.allow_duplicate, fields.reason) {
            (true, Some(r)) => Some(check_reason(&r)?),
            (true, None) => {
                return Err(Error::invalid_field("REASON_REQUIRED", "reason", "allow_duplicate needs a reason"))
            }
            (false, _) => None,
        };
        let options = JobOptions {
            skip_invalid: fields.skip_invalid,
            allow_duplicate: fields.allow_duplicate,
            duplicate_reason: reason,
            note: normalize_note(fields.note)?,
        };
        if file.bytes == 0 {
            return Err(Error::invalid("EMPTY_FILE", "the uploaded file is empty"));
        }
        let id = Uuid::new_v4();
        let staged = file.path.clone();
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || files::adopt_upload(&store, &staged, id))
            .await
            .map_err(Error::internal)??;
        let key = self.audit_key.clone();
        let name = actor.name.clone();
        let file_name: String = file.file_name.chars().filter(|c| !c.is_control()).take(FILE_NAME_CHARS_MAX).collect();
        let sha = file.sha256;
        let recorded = self
            .store
            .writer
            .run(move |tx| {
                let wallet = tx.account(&AccountKey::Wallet(source))?.ok_or_else(|| account_missing(source))?;
                if wallet.is_frozen() {
                    return Err(account_frozen(&wallet));
                }
                let hash_key = keys::job_hash(&source, &sha);
                if let Some(raw) = tx.get_raw(TreeId::JobsByHash, &hash_key)? {
                    let earlier = Uuid::from_slice(&raw).map_err(Error::internal)?;
                    let other: Option<Job> = tx.get(TreeId::Jobs, earlier.as_bytes())?;
                    let live = other.is_some_and(|o| {
                        tx.now().micros_since(o.created_at) < DUPLICATE_WINDOW_MICROS && !matches!(o.status, JobStatus::Failed | JobStatus::Rejected)
                    });
                    if live && !options.allow_duplicate {
                        return Err(Error::conflict("DUPLICATE_FILE", format!("this file was already uploaded for wallet {source} as job {earlier}; send allow_duplicate with a reason to pay it again"))
                            .with_details(json!({ "job_id": earlier.to_string() })));
                    }
                }
                let order = tx.next_order();
                let job = Job {
                    id,
                    seq: order.seq,
                    file_name,
                    source,
                    currency: wallet.currency,
                    status: JobStatus::Pending,
                    created_by: name.clone(),
                    approved_by: None,
                    created_at: order.at,
                    started_at: None,
                    finished_at: None,
                    options,
                    file_sha256: sha,
                    content_hash: None,
                    counts: [0; 7],
                    amounts: [0; 7],
                    rows: 0,
                    columns: Vec::new(),
                    problems: 0,
                    reserved_remaining: 0,
                    reason: None,
                    warnings: Vec::new(),
                    postings: Vec::new(),
                    retries: 0,
                };
                tx.put_raw(TreeId::JobsOrder, &order.to_bytes(), id.as_bytes());
                tx.put_raw(TreeId::JobsByHash, &hash_key, id.as_bytes());
                save_job(tx, &job)?;
                let mut details = job_details(&job);
                details["allow_duplicate"] = json!(job.options.allow_duplicate);
                details["duplicate_reason"] = json!(job.options.duplicate_reason);
                audit::append(tx, &key, Draft { actor: name, action: "JOB_UPLOADED".into(), target: Some(id.to_string()), details })?;
                Ok(job)
            })
            .await;
        if recorded.is_err() {
            let _ = std::fs::remove_dir_all(files::job_dir(&self.store, id));
        }
        recorded
    }

    /// At start: PENDING jobs are validated again from their stored file, and jobs
    /// that are over (cancelled, rejected, failed) or being cancelled finish cancelling
    /// their PENDING items.
    pub fn resume_bulk(self: &Arc<Self>) -> Result<(), Error> {
        let jobs: Vec<Job> = self.store.scan_tree(TreeId::Jobs)?;
        for job in jobs {
            let pending = job.counts[super::model::ItemStatus::Pending.index()] > 0;
            if job.status == JobStatus::Pending {
                self.spawn_ingest(job.id);
            } else if pending && (job.status.is_final() || job.cancel_requested()) {
                self.spawn_cancel_items(job.id);
            }
        }
        Ok(())
    }
}
