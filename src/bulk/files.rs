//! Where a job's files live (`<data dir>/bulk/<job id>/`), written and fsync'ed like
//! the store: the upload, the validation report, the sorted line hashes.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::error::Error;
use crate::store::{sync_dir, Store};

/// `<data dir>/bulk`.
pub fn bulk_dir(store: &Store) -> PathBuf {
    store.dir().join("bulk")
}

/// `<data dir>/bulk/incoming`: uploads being received.
pub fn incoming_dir(store: &Store) -> PathBuf {
    bulk_dir(store).join("incoming")
}

/// A job's directory.
pub fn job_dir(store: &Store, job: Uuid) -> PathBuf {
    bulk_dir(store).join(job.to_string())
}

/// The uploaded file, as received.
pub fn upload_path(store: &Store, job: Uuid) -> PathBuf {
    job_dir(store, job).join("upload.csv")
}

/// The validation report (JSON lines, one problem each).
pub fn report_path(store: &Store, job: Uuid) -> PathBuf {
    job_dir(store, job).join("report.jsonl")
}

/// Sorted 64-bit hashes of the job's valid lines (cross-job duplicate warnings).
pub fn lines_path(store: &Store, job: Uuid) -> PathBuf {
    job_dir(store, job).join("lines.bin")
}

/// Creates a directory and makes its entry durable in its parent.
pub fn create_dir_synced(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(Error::internal)?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Moves a received upload into its job directory durably (file data, then both
/// directory entries).
pub fn adopt_upload(store: &Store, staged: &Path, job: Uuid) -> Result<PathBuf, Error> {
    let dir = job_dir(store, job);
    create_dir_synced(&dir)?;
    let target = upload_path(store, job);
    fs::rename(staged, &target).map_err(Error::internal)?;
    sync_dir(&dir)?;
    if let Some(from) = staged.parent() {
        sync_dir(from)?;
    }
    Ok(target)
}

/// Writes `bytes` to `path` and fsyncs file and directory.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut f = File::create(path).map_err(Error::internal)?;
    f.write_all(bytes).map_err(Error::internal)?;
    f.sync_all().map_err(Error::internal)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Writes sorted line hashes.
pub fn write_lines(path: &Path, hashes: &[u64]) -> Result<(), Error> {
    let mut bytes = Vec::with_capacity(hashes.len() * 8);
    for h in hashes {
        bytes.extend_from_slice(&h.to_be_bytes());
    }
    write_synced(path, &bytes)
}

/// Reads sorted line hashes (empty when the file is missing).
pub fn read_lines(path: &Path) -> Vec<u64> {
    let Ok(bytes) = fs::read(path) else { return Vec::new() };
    bytes.chunks_exact(8).filter_map(|c| c.try_into().ok().map(u64::from_be_bytes)).collect()
}
