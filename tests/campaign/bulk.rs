//! The campaign's bulk jobs: pay files (SDK lines plus some lines to local wallets),
//! upload by the maker, approval by the checker, and the final check of every line:
//! paid once over all its attempts when COMPLETED, never when FAILED.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sysgp::bulk::model::item_transfer_id;
use uuid::Uuid;

use crate::procs::{Cluster, Rng, POLL};

/// Local wallets paid on-us by the jobs (never used by the client load).
pub const LOCAL_WALLETS: [&str; 2] = ["22507300001", "22507300002"];
/// The wallet paying the jobs.
pub const SOURCE: &str = "22507300100";
/// Every this many lines, one goes to a local wallet.
const LOCAL_EVERY: usize = 25;
/// Validation of a small file takes less than this.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(20);

/// One job: its id and its file, one `(payee, amount)` per line (line = index + 2).
pub struct Job {
    /// The job id.
    pub id: String,
    /// The lines, in order.
    pub lines: Vec<(String, i64)>,
}

impl Job {
    /// Ordinary payees (distinct per job, no trigger suffix) and trigger-free amounts,
    /// plus a local wallet every `LOCAL_EVERY` lines.
    pub fn file(rng: &mut Rng, number: usize, sdk_lines: usize) -> Vec<(String, i64)> {
        let mut lines = Vec::with_capacity(sdk_lines + sdk_lines / LOCAL_EVERY + 1);
        for i in 0..sdk_lines {
            if i % LOCAL_EVERY == LOCAL_EVERY / 2 {
                let local = LOCAL_WALLETS[(i / LOCAL_EVERY) % LOCAL_WALLETS.len()];
                lines.push((local.to_owned(), rng.sdk_amount() as i64));
            }
            // Ends in 1: never the simulator's 404 or 408 suffix.
            lines.push((format!("2251{number}{:06}", i * 10 + 1), rng.sdk_amount() as i64));
        }
        lines
    }

    /// Uploads `lines` as the maker (202: the file is stored; validation follows).
    pub fn upload(cluster: &Cluster, maker: &str, name: &str, lines: Vec<(String, i64)>) -> Job {
        let mut csv = String::from("msisdn,amount,reference\n");
        for (i, (msisdn, amount)) in lines.iter().enumerate() {
            csv.push_str(&format!("{msisdn},{amount},{name}-{i}\n"));
        }
        let uploaded = cluster.upload_csv(maker, SOURCE, &csv);
        Job { id: uploaded["job_id"].as_str().expect("job_id").to_owned(), lines }
    }

    /// Waits for validation (run again from the stored file if a kill cut it off),
    /// then approves as the checker: the whole sum is reserved.
    pub fn approve(self, cluster: &Cluster, maker: &str, checker: &str) -> Job {
        let deadline = Instant::now() + VALIDATION_TIMEOUT;
        let job = loop {
            let job = cluster.get(maker, &format!("/api/v1/bulk/jobs/{}/", self.id));
            if job["status"] != "PENDING" {
                break job;
            }
            assert!(Instant::now() < deadline, "validation not done after {VALIDATION_TIMEOUT:?}: {job}");
            std::thread::sleep(POLL);
        };
        assert_eq!(job["status"], "AWAITING_APPROVAL", "{job}");
        assert_eq!(job["total_count"], self.lines.len(), "{job}");
        let approved = cluster.post(checker, &format!("/api/v1/bulk/jobs/{}/approve/", self.id), &json!({}), 200);
        assert_eq!(approved["status"], "PROCESSING", "{approved}");
        let total: i64 = self.lines.iter().map(|(_, a)| a).sum();
        assert_eq!(approved["reserved_remaining"], total.to_string(), "{approved}");
        self
    }

    /// Every item of the job.
    pub fn items(&self, cluster: &Cluster, token: &str) -> Vec<Value> {
        cluster.all_pages(token, &format!("/api/v1/bulk/jobs/{}/items/?limit=500", self.id))
    }

    /// The job COMPLETED, every line final and paid as its item says: an SDK line's
    /// current attempt once (for its amount, under the SDK id the item shows) when
    /// COMPLETED and never when FAILED, no earlier attempt ever; a local line on-us.
    /// FAILED lines are allowed only when `failed_ok` (an operator resolved them).
    /// Returns what the job paid: per local wallet, and lines with more than one attempt.
    pub fn verify(&self, cluster: &Cluster, token: &str, hub: &HashMap<String, Value>, failed_ok: bool) -> Paid {
        let job = cluster.get(token, &format!("/api/v1/bulk/jobs/{}/", self.id));
        assert_eq!(job["status"], "COMPLETED", "{job}");
        assert_eq!(job["reserved_remaining"], "0", "{job}");
        let items = self.items(cluster, token);
        assert_eq!(items.len(), self.lines.len(), "one item per line");
        let job_id = Uuid::parse_str(&self.id).expect("job id");
        let mut paid = Paid::default();
        for item in &items {
            let line = number(&item["line"]);
            let (msisdn, amount) = &self.lines[line as usize - 2];
            assert_eq!(item["amount"], amount.to_string(), "{item}");
            let completed = match item["status"].as_str() {
                Some("COMPLETED") => true,
                Some("FAILED") if failed_ok => false,
                _ => panic!("line {line} is not final as it should be: {item}"),
            };
            if completed {
                paid.completed += amount;
            }
            let tries = number(&item["attempts"]);
            paid.retried += usize::from(tries > 0);
            if LOCAL_WALLETS.contains(&msisdn.as_str()) {
                assert_eq!(item["route"], "ON_US", "{item}");
                assert!(completed, "an on-us line cannot be in doubt: {item}");
                *paid.to_local.entry(msisdn.clone()).or_default() += amount;
                continue;
            }
            assert_eq!(item["route"], "SDK", "{item}");
            let current = item_transfer_id(job_id, line, tries).to_string();
            assert_eq!(item["transfer_id"], current, "the current attempt's id: {item}");
            match (completed, hub.get(&current)) {
                (true, Some(p)) => {
                    assert_eq!((&p["amount"], &p["currency"]), (&json!(amount.to_string()), &json!("XOF")), "{p}");
                    assert_eq!(p["transferId"], item["sdk_transfer_id"], "{p} for {item}");
                }
                (true, None) => panic!("line {line} is COMPLETED but the hub never paid it: {item}"),
                (false, Some(p)) => panic!("line {line} is FAILED but the hub paid it: {p} for {item}"),
                (false, None) => {}
            }
            for earlier in 0..tries {
                let old = item_transfer_id(job_id, line, earlier).to_string();
                assert!(!hub.contains_key(&old), "line {line}: attempt {earlier} ({old}) was paid too: {item}");
            }
        }
        assert_eq!(job["amounts"]["COMPLETED"], paid.completed.to_string(), "{job}");
        paid
    }
}

/// What a job paid, as `verify` found it.
#[derive(Default)]
pub struct Paid {
    /// Sum of the COMPLETED lines.
    pub completed: i64,
    /// Per local wallet, the sum of its lines.
    pub to_local: HashMap<String, i64>,
    /// Lines paid after more than one attempt (a kill before the final call).
    pub retried: usize,
}

/// Whether a job still has lines to work on (PENDING or PROCESSING items).
pub fn busy(job: &Value) -> bool {
    count(job, "PENDING") + count(job, "PROCESSING") > 0
}

/// The job's counter for an item status.
pub fn count(job: &Value, status: &str) -> u64 {
    job["counts"][status].as_u64().unwrap_or_else(|| panic!("counts.{status} in {job}"))
}

/// Items that reached a final status.
pub fn finished(job: &Value) -> u64 {
    count(job, "COMPLETED") + count(job, "FAILED")
}

fn number(v: &Value) -> u32 {
    v.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or_else(|| panic!("a small number: {v}"))
}
