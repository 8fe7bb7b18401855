//! The `--state` file: one JSON line per committed transfer, appended and synced before
//! the reply leaves (a payment the simulator admitted is never forgotten), reloaded at
//! start. A dedicated thread writes, so an fsync never blocks an async worker, and it
//! syncs a whole batch of waiting lines at once (group commit).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::time::SystemTime;

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::decor;
use super::state::Paid;

/// Most lines written and synced together: bounds one write's size and the latency
/// the first line in a batch waits for the others.
const BATCH_MAX: usize = 1024;

/// One line to append and who waits for it.
type Append = (String, oneshot::Sender<io::Result<()>>);

/// The open journal: a handle to the writer thread.
#[derive(Debug)]
pub(super) struct Journal {
    // Unbounded because the send happens under the state lock and must not wait; the
    // queue is still bounded in practice: every line has a request waiting for it.
    lines: mpsc::UnboundedSender<Append>,
}

impl Journal {
    /// Reloads `path` (created if missing) and starts the writer. A torn last line, left
    /// by a crash in the middle of a write, is dropped and cut off the file; any other
    /// bad line is an error, since silently forgetting a payment is worse than not starting.
    pub(super) fn open(path: &Path) -> io::Result<(Journal, Vec<Paid>)> {
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
        let text = std::fs::read(path)?;
        let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if complete < text.len() {
            log::warn!(
                "simulator state file {}: dropping a torn last line ({} bytes)",
                path.display(),
                text.len() - complete
            );
            file.set_len(complete as u64)?;
            file.sync_data()?;
        }
        let paid = parse_lines(&text[..complete]).map_err(|(line, why)| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{} line {line}: {why}", path.display()))
        })?;
        let (lines, queue) = mpsc::unbounded_channel();
        std::thread::Builder::new().name("sysgp-sim-journal".into()).spawn(move || write_loop(&mut file, queue))?;
        Ok((Journal { lines }, paid))
    }

    /// Queues `paid` for the file; the receiver resolves once it is on disk.
    pub(super) fn append(&self, paid: &Paid) -> oneshot::Receiver<io::Result<()>> {
        let (done, wait) = oneshot::channel();
        if let Err(mpsc::error::SendError((_, done))) = self.lines.send((line(paid), done)) {
            // The writer thread is gone (it only stops when the journal is dropped).
            let _ = done.send(Err(io::Error::other("simulator state file writer stopped")));
        }
        wait
    }
}

/// The journal line of a payment.
fn line(paid: &Paid) -> String {
    json!({
        "homeTransactionId": paid.home_transaction_id,
        "transferId": paid.transfer_id.to_string(),
        "amount": paid.amount,
        "currency": paid.currency,
        "state": "COMMITTED",
        "initiatedTimestamp": decor::timestamp(paid.initiated),
        "completedTimestamp": decor::timestamp(paid.completed),
    })
    .to_string()
}

/// Parses complete lines; the error is (1-based line number, reason).
fn parse_lines(text: &[u8]) -> Result<Vec<Paid>, (usize, String)> {
    let mut paid = Vec::new();
    for (index, raw) in text.split(|b| *b == b'\n').enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: Value = serde_json::from_slice(raw).map_err(|e| (index + 1, e.to_string()))?;
        paid.push(parse_line(&value).map_err(|why| (index + 1, why))?);
    }
    Ok(paid)
}

fn parse_line(value: &Value) -> Result<Paid, String> {
    let text = |name: &str| value.get(name).and_then(Value::as_str).ok_or_else(|| format!("missing {name}"));
    let time = |name: &str| value.get(name).and_then(Value::as_str).and_then(|t| humantime::parse_rfc3339_weak(t).ok());
    let transfer_id = Uuid::parse_str(text("transferId")?).map_err(|e| format!("transferId: {e}"))?;
    let initiated = time("initiatedTimestamp").unwrap_or_else(SystemTime::now);
    Ok(Paid {
        home_transaction_id: text("homeTransactionId")?.to_owned(),
        transfer_id,
        amount: text("amount")?.to_owned(),
        currency: text("currency")?.to_owned(),
        initiated,
        completed: time("completedTimestamp").unwrap_or(initiated),
    })
}

/// The writer thread: takes every line waiting, writes them in one go, syncs once, and
/// tells each waiter. Ends when the journal (every sender) is dropped.
fn write_loop(file: &mut File, mut queue: mpsc::UnboundedReceiver<Append>) {
    let mut batch: Vec<Append> = Vec::new();
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < BATCH_MAX {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut bytes = Vec::with_capacity(batch.iter().map(|(l, _)| l.len() + 1).sum());
        for (text, _) in &batch {
            bytes.extend_from_slice(text.as_bytes());
            bytes.push(b'\n');
        }
        let result = file.write_all(&bytes).and_then(|()| file.sync_data());
        if let Err(e) = &result {
            log::error!("simulator state file: cannot record {} committed transfers: {e}", batch.len());
        }
        for (_, done) in batch.drain(..) {
            let reply = result.as_ref().map(|_| ()).map_err(|e| io::Error::new(e.kind(), e.to_string()));
            // The request may have gone away (client disconnected): the line is written anyway.
            let _ = done.send(reply);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paid(n: u8) -> Paid {
        let at = humantime::parse_rfc3339("2026-11-25T13:49:58.099Z").expect("time");
        Paid {
            home_transaction_id: format!("h{n}"),
            transfer_id: Uuid::new_v4(),
            amount: "1500".into(),
            currency: "XOF".into(),
            initiated: at,
            completed: at,
        }
    }

    #[test]
    fn lines_round_trip_and_a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sim.jsonl");
        let (first, second) = (paid(1), paid(2));
        let torn = &line(&second)[..20];
        std::fs::write(&path, format!("{}\n{torn}", line(&first))).expect("write");
        let (_journal, reloaded) = Journal::open(&path).expect("open");
        assert_eq!(reloaded, vec![first.clone()]);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), format!("{}\n", line(&first)));
    }

    #[test]
    fn a_corrupt_line_in_the_middle_stops_the_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sim.jsonl");
        std::fs::write(&path, format!("{}\nnot json\n{}\n", line(&paid(1)), line(&paid(2)))).expect("write");
        let err = Journal::open(&path).expect_err("corrupt");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
