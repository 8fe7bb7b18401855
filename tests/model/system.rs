//! The system under test: the real engine of the library over a real sled store in a
//! temporary directory, paying through the real SDK simulator over HTTP.
//!
//! Operations go through the use cases (`Engine` methods) rather than HTTP: signing in
//! costs two argon2id hashes per user per case, which would dominate a sequence, and
//! every use case is reachable from here, bulk included (the upload is staged in the
//! store's incoming directory exactly as the HTTP layer stages it). The engine is
//! assembled like `app::start` does, except for the reconciliation and sweeper
//! threads: reconciliation runs only when a sequence asks for it (`Op::Reconcile`), so
//! that an IN_DOUBT transfer never settles behind the model's back.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sysgp::accounts::CreateAccount;
use sysgp::auth::{Actor, Role};
use sysgp::bulk::model::{Item, ItemStatus, Job, JobStatus};
use sysgp::bulk::upload::{StagedFile, UploadFields};
use sysgp::config::Config;
use sysgp::engine::{Engine, Limits};
use sysgp::error::Error;
use sysgp::ledger::{Currency, Msisdn};
use sysgp::sdk::simulator::{self, Accept, SimulatorConfig, SimulatorHandle};
use sysgp::sdk::SdkClient;
use sysgp::store::Store;
use sysgp::transfers::adjust::{AdjustmentRequest, AdjustmentStatus, Counter, Direction};
use sysgp::transfers::cash::{CashDirection, CashRequest};
use sysgp::transfers::p2p::P2pRequest;
use sysgp::transfers::resolve::ResolveRequest;
use sysgp::transfers::{Posted, Replay};
use uuid::Uuid;

use crate::obs::{refusal, BulkObs, ItemObs, Obs};
use crate::ops::{wallet_msisdn, Bulk, Decision, How, JobAction, Op};
use crate::reference::{Kind, MTransfer, Model, CASH_APPROVAL_ABOVE};

/// SDK modes with the simulator setting that matches each (SPEC §4).
pub const MODES: [(&str, Accept); 4] = [
    ("auto", Accept::None),
    ("accept_party", Accept::Party),
    ("accept_quote", Accept::Quote),
    ("accept_quote", Accept::Both),
];

/// Cases served by one simulator before it is replaced, so that its list of paid
/// transfers (read after every case) stays short.
const SIM_CASES_MAX: u32 = 200;
/// Longest wait for background work (validation, bulk items): far above the few
/// milliseconds it takes, so only a hang trips it.
const BACKGROUND_DEADLINE: Duration = Duration::from_secs(60);
/// How often background work is looked at while waiting for it.
const POLL_EVERY: Duration = Duration::from_millis(2);

/// What all cases share: a runtime and one simulator per mode.
pub struct Env {
    rt: tokio::runtime::Runtime,
    sims: Mutex<Vec<Option<(SimulatorHandle, u32)>>>,
}

impl Env {
    /// A runtime of two workers (the machine's cores); simulators start on first use.
    pub fn new() -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        Env { rt, sims: Mutex::new(MODES.iter().map(|_| None).collect()) }
    }

    fn sim_url(&self, mode: usize) -> String {
        let mut sims = self.sims.lock().expect("simulators");
        let slot = &mut sims[mode];
        if slot.as_ref().is_none_or(|(_, used)| *used >= SIM_CASES_MAX) {
            *slot = None;
            let config = SimulatorConfig { accept: MODES[mode].1, ..SimulatorConfig::default() };
            let sim = simulator::spawn("127.0.0.1:0".parse().expect("address"), config).expect("simulator starts");
            *slot = Some((sim, 0));
        }
        let (sim, used) = slot.as_mut().expect("simulator");
        *used += 1;
        sim.url()
    }
}

/// One case's system: engine, store, bulk workers.
pub struct Sut<'e> {
    env: &'e Env,
    /// The engine.
    pub engine: Arc<Engine>,
    threads: Vec<JoinHandle<()>>,
    dir: Option<tempfile::TempDir>,
    sim_url: String,
    agent: ureq::Agent,
}

fn msisdn(w: u8) -> Msisdn {
    Msisdn::parse(&wallet_msisdn(w)).expect("wallet msisdn")
}

fn currency(usd: bool) -> Currency {
    Currency::parse(if usd { "USD" } else { "XOF" }).expect("currency")
}

fn user(name: &str) -> Actor {
    Actor::new(name)
}

fn key(k: Option<u8>) -> Option<String> {
    k.map(|k| format!("key-{k}"))
}

fn posted(result: Result<Posted, Error>) -> Obs {
    match result {
        Err(e) => Obs::Refused(refusal(&e)),
        Ok(Posted::Created(t)) => {
            Obs::Transfer { id: t.id, status: t.status, code: t.error.map(|e| e.code), replayed: false }
        }
        Ok(Posted::Replayed(Replay::Transfer(t))) => {
            Obs::Transfer { id: t.id, status: t.status, code: t.error.map(|e| e.code), replayed: true }
        }
        Ok(Posted::Replayed(Replay::Stored(reply))) => {
            let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
            Obs::StoredReplay((reply.status, body["error"]["code"].as_str().unwrap_or("").to_owned()))
        }
    }
}

fn transfer_obs(result: Result<sysgp::ledger::Transfer, Error>) -> Obs {
    match result {
        Err(e) => Obs::Refused(refusal(&e)),
        Ok(t) => Obs::Transfer { id: t.id, status: t.status, code: t.error.map(|e| e.code), replayed: false },
    }
}

fn adjustment_status(text: &str) -> AdjustmentStatus {
    match text {
        "POSTED" => AdjustmentStatus::Posted,
        "REJECTED" => AdjustmentStatus::Rejected,
        _ => AdjustmentStatus::AwaitingApproval,
    }
}

impl<'e> Sut<'e> {
    /// Opens a fresh store and starts an engine in SDK mode `mode`.
    pub fn start(env: &'e Env, mode: usize) -> Sut<'e> {
        let sim_url = env.sim_url(mode);
        let dir = tempfile::tempdir().expect("temp dir");
        let vars: HashMap<String, String> = [
            ("SECRET_KEY", "model-test-secret-key-0123456789-abcdefghijk".to_owned()),
            ("MOJALOOP_SDK_URL", sim_url.clone()),
            ("SYSGP_DATA_DIR", dir.path().display().to_string()),
            ("SYSGP_SDK_MODE", MODES[mode].0.to_owned()),
            ("SYSGP_SDK_TIMEOUT_SECS", "20".to_owned()),
            ("SYSGP_CASH_APPROVAL_ABOVE", CASH_APPROVAL_ABOVE.to_string()),
            ("SYSGP_BULK_WORKERS", "2".to_owned()),
            ("SYSGP_CACHE_MB", "8".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let config = Config::from_vars(&vars).expect("config");
        let store = Store::open(&config.data_dir, config.cache_mb).expect("store opens");
        let sdk = SdkClient::new(&sim_url, config.sdk_mode, config.sdk_timeout);
        let security = sysgp::app::security(&config).expect("security");
        let limits = Limits {
            amount_max: config.amount_max,
            cash_approval_above: config.cash_approval_above,
            bulk: config.bulk,
        };
        let engine = Engine::new(store, sdk, limits, security);
        sysgp::auth::check_audit_key(&engine.store, &engine.audit_key).expect("audit key");
        let report = env.rt.block_on(engine.recover()).expect("recovery");
        assert!(report.violations.is_empty(), "a fresh store has violations: {:?}", report.violations);
        engine.set_ready(true);
        let threads = engine.start_bulk().expect("bulk workers");
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
        Sut { env, engine, threads, dir: Some(dir), sim_url, agent }
    }

    /// Stops the workers, closes the store, removes the directory.
    pub fn stop(mut self) {
        self.engine.stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let closed = self.engine.store.writer.closed_signal();
        let Sut { engine, dir, .. } = self;
        drop(engine);
        assert!(closed.wait(Duration::from_secs(10)), "the store did not close");
        drop(dir);
    }

    fn block<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.env.rt.block_on(f)
    }

    /// Runs one concrete operation (picks resolved through `model`).
    pub fn run(&self, op: &Op, model: &Model) -> Obs {
        let e = &self.engine;
        match op {
            Op::CreateWallet { w, usd } => {
                let req = CreateAccount { msisdn: msisdn(*w), currency: currency(*usd), display_name: None };
                self.block(e.create_account(&user("maker"), req))
                    .map_or_else(|e| Obs::Refused(refusal(&e)), |_| Obs::Done)
            }
            Op::Freeze { w } | Op::Unfreeze { w } => {
                let frozen = matches!(op, Op::Freeze { .. });
                self.block(e.set_frozen(&user("checker"), msisdn(*w), frozen, "model test".into()))
                    .map_or_else(|e| Obs::Refused(refusal(&e)), |_| Obs::Done)
            }
            Op::Cash(c) => {
                let direction = if c.withdraw { CashDirection::Withdraw } else { CashDirection::Deposit };
                let req = CashRequest { amount: c.amount.into(), reference: c.reference.map(Into::into), note: None };
                posted(self.block(e.cash(&user("maker"), key(c.key), msisdn(c.w), direction, req)))
            }
            Op::DecideCash { pick, approve, by_maker, open } => {
                let Some(t) = model.cash_pick(*pick, *open) else { return Obs::Skipped };
                let checker = user(if *by_maker { &t.created_by } else { "checker" });
                transfer_obs(match approve {
                    true => self.block(e.approve_cash(&checker, t.id)),
                    false => self.block(e.reject_cash(&checker, t.id, "model test".into())),
                })
            }
            Op::P2p(p) => {
                let req = P2pRequest {
                    sender: msisdn(p.from),
                    receiver: Msisdn::parse(&p.to.msisdn()).expect("payee msisdn"),
                    amount: p.amount.into(),
                    currency: p.usd.map(currency),
                    note: None,
                    transfer_id: p.tid.map(|i| model.tids[usize::from(i)]),
                };
                posted(self.block(e.create_p2p(&user(if p.maker2 { "maker2" } else { "maker" }), key(p.key), req)))
            }
            Op::Again { .. } => panic!("Again is made concrete by the runner"),
            Op::Resolve { pick, how, via_item, open } => match model.doubt_pick(*pick, *open) {
                None => Obs::Skipped,
                Some(t) => self.resolve(model, t, *how, *via_item),
            },
            Op::Reconcile { pick, open } => match model.doubt_pick(*pick, *open) {
                None => Obs::Skipped,
                Some(t) => e.reconcile_one(t.id).map_or_else(|e| Obs::Refused(refusal(&e)), |()| Obs::Done),
            },
            Op::Adjust(a) => {
                let req = AdjustmentRequest {
                    msisdn: msisdn(a.w),
                    counter: if a.settlement { Counter::Settlement } else { Counter::Cash },
                    direction: if a.credit { Direction::Credit } else { Direction::Debit },
                    amount: a.amount.into(),
                    reason: "model correction".into(),
                    refers_to: model.refers_to(a.refers),
                };
                let maker = user(if a.maker2 { "maker2" } else { "maker" });
                match self.block(e.request_adjustment(&maker, key(a.key), req)) {
                    Err(e) => Obs::Refused(refusal(&e)),
                    Ok((201, body, replayed)) => Obs::Adjustment {
                        id: body["adjustment_id"].as_str().and_then(|s| Uuid::parse_str(s).ok()).unwrap_or_default(),
                        status: adjustment_status(body["status"].as_str().unwrap_or("")),
                        transfer: body["transfer_id"].as_str().and_then(|s| Uuid::parse_str(s).ok()),
                        replayed,
                    },
                    Ok((status, body, _)) => {
                        Obs::StoredReplay((status, body["error"]["code"].as_str().unwrap_or("").to_owned()))
                    }
                }
            }
            Op::DecideAdjustment { pick, approve, by_maker, open } => {
                let Some(adj) = model.adjustment_pick(*pick, *open) else { return Obs::Skipped };
                let checker = user(if *by_maker { &adj.maker } else { "checker" });
                let decided = match approve {
                    true => self.block(e.approve_adjustment(&checker, adj.id)),
                    false => self.block(e.reject_adjustment(&checker, adj.id, "model test".into())),
                };
                match decided {
                    Err(e) => Obs::Refused(refusal(&e)),
                    Ok(a) => Obs::Adjustment { id: a.id, status: a.status, transfer: a.transfer_id, replayed: false },
                }
            }
            Op::Bulk(b) => Obs::Bulk(self.bulk(b, model.bulk_ops)),
            Op::Job { pick, action } => match model.job_pick(*pick, *action) {
                None => Obs::Skipped,
                Some(j) => Obs::Bulk(self.job_action(model.jobs[j].id, *action)),
            },
        }
    }

    fn resolve(&self, model: &Model, t: &MTransfer, how: How, via_item: bool) -> Obs {
        let reason = "model test".to_owned();
        let own_id = self.engine.store.transfer(t.id).ok().flatten().and_then(|r| r.sdk.and_then(|s| s.transfer_id));
        let req = match how {
            How::HubOwnId => {
                ResolveRequest::ByHub { sdk_transfer_id: own_id.unwrap_or_else(|| Uuid::new_v4().to_string()), reason }
            }
            How::HubBogusId => ResolveRequest::ByHub { sdk_transfer_id: Uuid::new_v4().to_string(), reason },
            How::Completed => ResolveRequest::ByOperator { completed: true, reason },
            How::Failed => ResolveRequest::ByOperator { completed: false, reason },
        };
        let checker = user("checker");
        transfer_obs(match t.kind {
            Kind::Item { job, line } if via_item => {
                self.block(self.engine.resolve_item(&checker, model.jobs[job].id, line, req))
            }
            _ => self.block(self.engine.resolve(&checker, t.id, req)),
        })
    }

    /// A bulk job from upload to its last item that can finish.
    fn bulk(&self, b: &Bulk, n: usize) -> BulkObs {
        let mut out = BulkObs::default();
        let mut csv = String::from("msisdn,amount,reference\n");
        for (i, (to, amount)) in b.lines.iter().enumerate() {
            csv.push_str(&format!("{},{amount},job{n}-line{i}\n", to.msisdn()));
        }
        let file = self.stage(csv.as_bytes());
        let fields = UploadFields { source_msisdn: Some(wallet_msisdn(b.source)), ..UploadFields::default() };
        let maker = user("maker");
        let id = match self.block(self.engine.accept_upload(&maker, file, fields)) {
            Ok(job) => job.id,
            Err(e) => {
                out.upload = Some(Err(refusal(&e)));
                return out;
            }
        };
        out.upload = Some(Ok(id));
        let validated = self.wait_job(id, |j| j.status != JobStatus::Pending);
        out.validated = Some(validated.status);
        if validated.status == JobStatus::AwaitingApproval {
            if b.decision == Decision::SelfApproveFirst {
                out.self_approval =
                    Some(self.block(self.engine.approve_job(&maker, id, false)).map(drop).map_err(|e| refusal(&e)));
            }
            let checker = user("checker");
            let decided = match b.decision {
                Decision::Reject => self.block(self.engine.reject_job(&checker, id, "model test".into())),
                _ => self.block(self.engine.approve_job(&checker, id, false)),
            };
            out.decision = Some(decided.map(drop).map_err(|e| refusal(&e)));
        }
        let settled = |j: &Job| {
            let open = j.counts[ItemStatus::Pending.index()] + j.counts[ItemStatus::Processing.index()];
            open == 0 || matches!(j.status, JobStatus::AwaitingApproval | JobStatus::Paused | JobStatus::Failed)
        };
        out.status = Some(self.wait_job(id, settled).status);
        out.items = self.items(id);
        out
    }

    /// `retry` (checker) or `cancel` (the uploader or another maker), then waits until
    /// every item that can finish has finished.
    fn job_action(&self, id: Uuid, action: JobAction) -> BulkObs {
        let e = &self.engine;
        let decided = match action {
            JobAction::Retry => self.block(e.retry_job(&user("checker"), id, false)),
            JobAction::Cancel => self.block(e.cancel_job(&user("maker"), Role::Maker, id)),
            JobAction::CancelByOther => self.block(e.cancel_job(&user("maker2"), Role::Maker, id)),
        };
        let mut out = BulkObs { decision: Some(decided.map(drop).map_err(|e| refusal(&e))), ..BulkObs::default() };
        let job = match out.decision {
            Some(Ok(())) => self.wait_job(id, |j| {
                j.counts[ItemStatus::Pending.index()] + j.counts[ItemStatus::Processing.index()] == 0
                    || j.status == JobStatus::Paused
            }),
            _ => self.engine.job(id).expect("job"),
        };
        out.status = Some(job.status);
        out.items = self.items(id);
        out
    }

    fn items(&self, id: Uuid) -> Vec<ItemObs> {
        let items: Vec<Item> = self.engine.store.items(id, 0, 1000, |_: &Item| true).expect("items");
        items
            .into_iter()
            .map(|i| ItemObs { line: i.line, status: i.status, code: i.error.map(|e| e.code), transfer: i.transfer_id })
            .collect()
    }

    /// Stages an upload as the HTTP layer does: written and fsync'ed in the incoming directory.
    fn stage(&self, bytes: &[u8]) -> StagedFile {
        let dir = sysgp::bulk::files::incoming_dir(&self.engine.store);
        std::fs::create_dir_all(&dir).expect("incoming dir");
        let path = dir.join(format!("{}.csv", Uuid::new_v4()));
        let mut f = std::fs::File::create(&path).expect("staged file");
        f.write_all(bytes).expect("write staged file");
        f.sync_all().expect("sync staged file");
        let sha256: [u8; 32] = Sha256::digest(bytes).into();
        StagedFile { path, sha256, bytes: bytes.len() as u64, file_name: "model.csv".into() }
    }

    /// Polls a job until `done` (the work is on background threads), with a deadline.
    fn wait_job(&self, id: Uuid, done: impl Fn(&Job) -> bool) -> Job {
        let deadline = Instant::now() + BACKGROUND_DEADLINE;
        loop {
            let job = self.engine.job(id).expect("job");
            if done(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} still {:?} after {BACKGROUND_DEADLINE:?}", job.status);
            std::thread::sleep(POLL_EVERY);
        }
    }

    /// How many times the simulator's hub committed each home transaction id.
    pub fn paid(&self) -> HashMap<String, usize> {
        let mut reply = self.agent.get(&format!("{}/__sim/transfers", self.sim_url)).call().expect("simulator list");
        let list: serde_json::Value = serde_json::from_str(&reply.body_mut().read_to_string().unwrap_or_default())
            .expect("simulator list is JSON");
        let mut counts = HashMap::new();
        for t in list.as_array().into_iter().flatten() {
            *counts.entry(t["homeTransactionId"].as_str().unwrap_or("").to_owned()).or_insert(0) += 1;
        }
        counts
    }
}
