//! `sysgp backup FILE` and `sysgp restore FILE` (SPEC §9): every tree and every bulk
//! file streamed into one file ending with a SHA-256 trailer; taken online by pausing
//! the writer (requests queue, none is refused) and reporting the pause; restored only
//! into an empty directory, then checked.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::store::{PauseGuard, Store, StoreError, TreeId};

const MAGIC: &[u8] = b"SYSGP-BACKUP-1\n";
const ENTRY: u8 = 1;
const FILE: u8 = 2;
const END: u8 = 3;
const INFO: u8 = 4;
/// Keys and values are small (SPEC §2); anything bigger means a corrupt backup.
const FIELD_BYTES_MAX: u32 = 64 * 1024 * 1024;

/// What a backup contained and how long the writer was paused.
#[derive(Clone, Debug, Default)]
pub struct BackupReport {
    /// Store entries.
    pub entries: u64,
    /// Bulk files.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// How long writes waited (zero for an offline backup).
    pub pause: Duration,
}

/// A failed backup or restore.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The backup is not one, is truncated, or its checksum does not match.
    #[error("not a valid sysgp backup: {0}")]
    Corrupt(String),
    /// The target directory is not empty.
    #[error("{0} is not empty: restore only fills an empty directory")]
    NotEmpty(PathBuf),
    /// The backup file exists already.
    #[error("{0} already exists: a backup never overwrites a file; choose a new name or remove it first")]
    Exists(PathBuf),
}

/// Mode of a backup file: it holds password hashes and session MACs, so only its owner
/// may read it (a umask can only narrow this).
pub const FILE_MODE: u32 = 0o600;

/// Creates the file a backup is written to: a new file of mode [`FILE_MODE`], never an
/// existing one (an earlier backup, or anything else, is left alone), as `restore` only
/// fills an empty directory.
pub fn create_file(path: &Path) -> Result<File, BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            BackupError::Exists(path.to_path_buf())
        } else {
            BackupError::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        }
    })
}

struct Hashing<W: Write> {
    inner: W,
    sha: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn put_bytes(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(&(bytes.len() as u32).to_be_bytes())?;
    w.write_all(bytes)
}

/// Files of `<data dir>/bulk` (uploads, reports, line hashes), relative paths.
fn bulk_files(store: &Store) -> std::io::Result<Vec<PathBuf>> {
    let root = store.dir().join("bulk");
    let mut out = Vec::new();
    let Ok(jobs) = fs::read_dir(&root) else { return Ok(out) };
    for job in jobs {
        let job = job?.path();
        if !job.is_dir() || job.file_name().is_some_and(|n| n == "incoming") {
            continue;
        }
        for file in fs::read_dir(&job)? {
            let file = file?.path();
            if file.is_file() {
                if let Ok(rel) = file.strip_prefix(store.dir()) {
                    out.push(rel.to_path_buf());
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Streams a backup of `store` into `out`. `pause` is called first and its guard held
/// until everything is copied (online: pauses the writer; offline: nothing).
pub fn write_backup(
    store: &Store,
    out: impl Write,
    pause: impl FnOnce() -> Result<Option<PauseGuard>, StoreError>,
) -> Result<BackupReport, BackupError> {
    let mut w = Hashing { inner: BufWriter::new(out), sha: Sha256::new(), bytes: 0 };
    w.write_all(MAGIC)?;
    let started = Instant::now();
    let guard = pause()?;
    let paused_at = Instant::now();
    let entries = store.for_each_entry(|tree, k, v| {
        w.write_all(&[ENTRY])?;
        put_bytes(&mut w, tree.name().as_bytes())?;
        put_bytes(&mut w, k)?;
        put_bytes(&mut w, v)
    })?;
    let mut files: u64 = 0;
    for rel in bulk_files(store)? {
        let mut f = File::open(store.dir().join(&rel))?;
        let size = f.metadata()?.len();
        w.write_all(&[FILE])?;
        put_bytes(&mut w, rel.to_string_lossy().as_bytes())?;
        w.write_all(&size.to_be_bytes())?;
        let copied = std::io::copy(&mut (&mut f).take(size), &mut w)?;
        if copied != size {
            return Err(BackupError::Corrupt(format!("{} changed size while copied", rel.display())));
        }
        files += 1;
    }
    let pause_took =
        if guard.is_some() { paused_at.elapsed() + paused_at.duration_since(started) } else { Duration::ZERO };
    drop(guard);
    w.write_all(&[END])?;
    w.write_all(&entries.to_be_bytes())?;
    w.write_all(&files.to_be_bytes())?;
    let digest: [u8; 32] = w.sha.clone().finalize().into();
    let mut inner = w.inner;
    inner.write_all(&digest)?;
    inner.write_all(&[INFO])?;
    inner.write_all(&(pause_took.as_micros() as u64).to_be_bytes())?;
    inner.flush()?;
    Ok(BackupReport { entries, files, bytes: w.bytes + 32 + 9, pause: pause_took })
}

/// Reads the pause a backup file reports (its last 8 bytes).
pub fn reported_pause(path: &Path) -> Option<Duration> {
    let bytes = fs::read(path).ok()?;
    let tail = bytes.get(bytes.len().checked_sub(9)?..)?;
    if tail[0] != INFO {
        return None;
    }
    Some(Duration::from_micros(u64::from_be_bytes(tail[1..].try_into().ok()?)))
}

struct Hashed<R: Read> {
    inner: R,
    sha: Sha256,
}

impl<R: Read> Hashed<R> {
    fn exact(&mut self, buf: &mut [u8]) -> Result<(), BackupError> {
        self.inner.read_exact(buf).map_err(|_| BackupError::Corrupt("truncated".into()))?;
        self.sha.update(&*buf);
        Ok(())
    }

    fn u32(&mut self) -> Result<u32, BackupError> {
        let mut b = [0u8; 4];
        self.exact(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, BackupError> {
        let mut b = [0u8; 8];
        self.exact(&mut b)?;
        Ok(u64::from_be_bytes(b))
    }

    fn field(&mut self) -> Result<Vec<u8>, BackupError> {
        let len = self.u32()?;
        if len > FIELD_BYTES_MAX {
            return Err(BackupError::Corrupt(format!("a field of {len} bytes")));
        }
        let mut v = vec![0u8; len as usize];
        self.exact(&mut v)?;
        Ok(v)
    }
}

/// Restores a backup into `dir`, which must be empty or missing, and returns the
/// entry count. On any error what was written is removed.
pub fn restore(backup: &Path, dir: &Path, cache_mb: u64) -> Result<u64, BackupError> {
    if dir.exists() && fs::read_dir(dir)?.next().is_some() {
        return Err(BackupError::NotEmpty(dir.to_path_buf()));
    }
    fs::create_dir_all(dir)?;
    let result = restore_into(backup, dir, cache_mb);
    if result.is_err() {
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
            }
        }
    }
    result
}

fn restore_into(backup: &Path, dir: &Path, cache_mb: u64) -> Result<u64, BackupError> {
    let mut r = Hashed { inner: BufReader::new(File::open(backup)?), sha: Sha256::new() };
    let mut magic = vec![0u8; MAGIC.len()];
    r.exact(&mut magic)?;
    if magic != MAGIC {
        return Err(BackupError::Corrupt("wrong magic".into()));
    }
    let store = Store::open(dir, cache_mb)?;
    let mut entries = 0;
    loop {
        let mut kind = [0u8; 1];
        r.exact(&mut kind)?;
        match kind[0] {
            ENTRY => {
                let name = String::from_utf8(r.field()?).map_err(|_| BackupError::Corrupt("tree name".into()))?;
                let tree = TreeId::ALL
                    .into_iter()
                    .find(|t| t.name() == name)
                    .ok_or_else(|| BackupError::Corrupt(format!("unknown tree {name}")))?;
                let (k, v) = (r.field()?, r.field()?);
                store.restore_entry(tree, &k, &v)?;
                entries += 1;
            }
            FILE => restore_file(&mut r, dir)?,
            END => break,
            other => return Err(BackupError::Corrupt(format!("record kind {other}"))),
        }
    }
    let (want_entries, _files) = (r.u64()?, r.u64()?);
    let digest: [u8; 32] = r.sha.clone().finalize().into();
    let mut trailer = [0u8; 32];
    r.inner.read_exact(&mut trailer).map_err(|_| BackupError::Corrupt("no SHA-256 trailer".into()))?;
    if trailer != digest {
        return Err(BackupError::Corrupt("the SHA-256 trailer does not match".into()));
    }
    if want_entries != entries {
        return Err(BackupError::Corrupt(format!("{entries} entries, the trailer says {want_entries}")));
    }
    store.sync_now()?;
    if !store.close(Duration::from_secs(10)) {
        return Err(BackupError::Io(std::io::Error::other("the restored store did not close within 10 s")));
    }
    Ok(entries)
}

fn restore_file(r: &mut Hashed<impl Read>, dir: &Path) -> Result<(), BackupError> {
    let rel = PathBuf::from(String::from_utf8(r.field()?).map_err(|_| BackupError::Corrupt("file name".into()))?);
    if rel.is_absolute()
        || rel.components().any(|c| matches!(c, std::path::Component::ParentDir))
        || !rel.starts_with("bulk")
    {
        return Err(BackupError::Corrupt(format!("unexpected file path {}", rel.display())));
    }
    let size = r.u64()?;
    let target = dir.join(&rel);
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut out = File::create(&target)?;
    let mut left = size;
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        r.exact(&mut buf[..n])?;
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    out.sync_all()?;
    Ok(())
}
