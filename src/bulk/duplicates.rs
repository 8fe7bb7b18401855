//! Cross-job duplicate warnings (SPEC §5): lines of a job that repeat a payee, amount
//! and reference of another live job of the same wallet in the last 30 days, checked at
//! approval and at retry.

use uuid::Uuid;

use super::files;
use super::ingest::DUPLICATE_WINDOW_MICROS;
use super::model::{Job, JobStatus};
use crate::engine::{now, Engine};
use crate::error::Error;
use crate::store::TreeId;

impl Engine {
    /// Lines of `job` that match lines of other live jobs of the same wallet in the last
    /// 30 days (COMPLETED, PROCESSING or PAUSED jobs), as human-readable warnings.
    pub fn duplicate_lines(&self, job: &Job, lines: &[u64]) -> Result<Vec<String>, Error> {
        let mut warnings = Vec::new();
        if lines.is_empty() {
            return Ok(warnings);
        }
        let since = now().plus_micros(-DUPLICATE_WINDOW_MICROS);
        for raw in self.store.raw_values_back(TreeId::JobsOrder) {
            let other = Uuid::from_slice(&raw?).map_err(Error::internal)?;
            let Some(other) = self.store.record::<Job>(TreeId::Jobs, other.as_bytes())? else { continue };
            if other.created_at < since {
                break;
            }
            let live = matches!(other.status, JobStatus::Completed | JobStatus::Processing | JobStatus::Paused);
            if other.id == job.id || other.source != job.source || !live {
                continue;
            }
            let theirs = files::read_lines(&files::lines_path(&self.store, other.id));
            let common = count_common(lines, &theirs);
            if common > 0 {
                warnings.push(format!(
                    "{common} line(s) repeat a payee, amount and reference of job {} ({})",
                    other.id,
                    other.status.as_str()
                ));
            }
        }
        Ok(warnings)
    }
}

/// Number of values present in both sorted lists.
fn count_common(a: &[u64], b: &[u64]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}
