//! Load generators: closed loop (each client sends its next request on the previous
//! reply) and open loop (requests at a fixed rate), with latency percentiles and error
//! counts.

use super::{error_code, round, Conn};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When in a run the observer is called (from the main thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Warm-up over, measured window starts.
    MeasureStart,
    /// Measured window over.
    MeasureEnd,
}

/// One kind of failed request.
#[derive(Clone, Debug, Default)]
pub struct ErrorKind {
    /// How many in the measured window.
    pub count: u64,
    /// One body, truncated.
    pub sample: String,
}

/// What a closed-loop run measured (completions inside the measured window).
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Clients.
    pub clients: usize,
    /// The measured window.
    pub measured: Duration,
    /// Successful requests completed in the window.
    pub ok: u64,
    /// Failed requests completed in the window.
    pub errors: u64,
    /// Failures by kind.
    pub error_kinds: BTreeMap<String, ErrorKind>,
    /// Latencies of the successful requests, microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// Connections opened (beyond one per client means the server closed some).
    pub connects: u64,
    /// Requests of the warm-up and window together, any outcome.
    pub total_requests: u64,
}

impl LoadResult {
    /// Successful requests per second.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.measured.as_secs_f64().max(1e-9)
    }

    /// The `p` percentile (0–100) of the successful latencies, in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        percentile(&self.latencies_us, p).map(|us| f64::from(us) / 1000.0)
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

struct ClientOutcome {
    ok: u64,
    errors: BTreeMap<String, ErrorKind>,
    latencies: Vec<u32>,
    connects: u64,
    requests: u64,
}

/// Builds the raw request number `seq` of client `client`.
pub type RequestFn<'a> = dyn Fn(usize, u64) -> Vec<u8> + Sync + 'a;
/// Judges a reply (status, body): `Err(kind)` counts as an error of that kind.
pub type CheckFn<'a> = dyn Fn(u16, &[u8]) -> Result<(), String> + Sync + 'a;

/// Runs `clients` threads, each with its own keep-alive connection, sending
/// `request(client, seq)` back to back for `warmup + measure`; `check` judges each
/// reply. Counts completions inside the measured window; calls `observer` at the
/// window's start and end (for server-side snapshots).
pub fn run_load(
    addr: SocketAddr,
    clients: usize,
    warmup: Duration,
    measure: Duration,
    request: &RequestFn<'_>,
    check: &CheckFn<'_>,
    observer: &mut dyn FnMut(Mark),
) -> LoadResult {
    let started = Instant::now() + Duration::from_millis(50);
    let window_start = started + warmup;
    let window_end = window_start + measure;
    let total = AtomicU64::new(0);
    let outcomes: Vec<ClientOutcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|client| {
                let total = &total;
                std::thread::Builder::new()
                    .name(format!("load-{client}"))
                    .stack_size(256 * 1024)
                    .spawn_scoped(scope, move || {
                        let mut conn = Conn::new(addr);
                        let mut out = ClientOutcome {
                            ok: 0,
                            errors: BTreeMap::new(),
                            latencies: Vec::with_capacity(1 << 14),
                            connects: 0,
                            requests: 0,
                        };
                        sleep_until(started);
                        let mut seq = 0u64;
                        loop {
                            let sent = Instant::now();
                            if sent >= window_end {
                                break;
                            }
                            let raw = request(client, seq);
                            seq += 1;
                            let result = conn.request(&raw);
                            let done = Instant::now();
                            out.requests += 1;
                            let verdict = match &result {
                                Ok(reply) => check(reply.status, &reply.body),
                                Err(e) => Err(format!("io: {e}")),
                            };
                            if done >= window_start && done < window_end {
                                match verdict {
                                    Ok(()) => {
                                        out.ok += 1;
                                        let us = done.duration_since(sent).as_micros();
                                        out.latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
                                    }
                                    Err(kind) => {
                                        let e = out.errors.entry(kind).or_default();
                                        e.count += 1;
                                        if e.sample.is_empty() {
                                            e.sample = match &result {
                                                Ok(r) => String::from_utf8_lossy(&r.body).chars().take(300).collect(),
                                                Err(e) => e.to_string(),
                                            };
                                        }
                                    }
                                }
                            }
                            if result.is_err() {
                                // A dead or refusing server: do not spin.
                                std::thread::sleep(Duration::from_millis(10));
                            }
                        }
                        out.connects = conn.connects;
                        total.fetch_add(out.requests, Ordering::Relaxed);
                        out
                    })
                    .expect("spawn a load thread")
            })
            .collect();
        sleep_until(window_start);
        observer(Mark::MeasureStart);
        sleep_until(window_end);
        observer(Mark::MeasureEnd);
        handles.into_iter().map(|h| h.join().expect("load thread")).collect()
    });
    let mut result = LoadResult { clients, measured: measure, ..LoadResult::default() };
    for o in outcomes {
        result.ok += o.ok;
        result.connects += o.connects;
        result.latencies_us.extend_from_slice(&o.latencies);
        for (kind, e) in o.errors {
            result.errors += e.count;
            let mine = result.error_kinds.entry(kind).or_default();
            mine.count += e.count;
            if mine.sample.is_empty() {
                mine.sample = e.sample;
            }
        }
    }
    result.total_requests = total.load(Ordering::Relaxed);
    result.latencies_us.sort_unstable();
    result
}

/// Sleeps until `t` (returns at once when it has passed).
pub fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

// ---------------------------------------------------------------------------------
// Open-loop load generator
// ---------------------------------------------------------------------------------

/// What an open-loop run saw in one window; a request counts in the window it was due in.
#[derive(Clone, Debug, Default)]
pub struct WindowSeen {
    /// Requests that passed the check.
    pub ok: u64,
    /// The same, by the kind the request function named.
    pub ok_by_kind: BTreeMap<&'static str, u64>,
    /// 422 business refusals, by "kind code".
    pub refused: BTreeMap<String, u64>,
    /// Other failures by kind: count and one body or error, truncated.
    pub errors: BTreeMap<String, (u64, String)>,
    /// Latencies of the passed requests from when they were due, microseconds (sorted
    /// once `run_open_loop` returns).
    pub latencies_us: Vec<u32>,
    /// Longest wait between when a request was due and when a sender sent it.
    pub send_lag_max_us: u32,
}

impl WindowSeen {
    /// Adds `other`'s requests to these.
    pub fn merge(&mut self, other: WindowSeen) {
        self.ok += other.ok;
        for (k, n) in other.ok_by_kind {
            *self.ok_by_kind.entry(k).or_default() += n;
        }
        for (k, n) in other.refused {
            *self.refused.entry(k).or_default() += n;
        }
        for (k, (n, sample)) in other.errors {
            self.errors.entry(k).or_insert((0, sample)).0 += n;
        }
        self.latencies_us.extend(other.latencies_us);
        self.send_lag_max_us = self.send_lag_max_us.max(other.send_lag_max_us);
    }

    /// Failed requests.
    pub fn error_count(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }

    /// The `p` percentile (0–100) of the latencies, milliseconds (sorted latencies only).
    pub fn ms(&self, p: f64) -> Option<f64> {
        percentile(&self.latencies_us, p).map(|us| round(f64::from(us) / 1000.0, 3))
    }
}

/// A fixed-rate schedule: request `k` is due at `start + k ÷ rate`, whatever became of
/// the earlier ones, for `duration`, counted in `windows` equal windows.
#[derive(Clone, Debug)]
pub struct OpenLoop {
    /// Server address.
    pub addr: SocketAddr,
    /// Sender threads, one keep-alive connection each.
    pub senders: usize,
    /// Requests per second.
    pub rate: f64,
    /// How long requests are sent.
    pub duration: Duration,
    /// Windows the duration is cut into.
    pub windows: usize,
    /// When request 0 is due.
    pub start: Instant,
}

/// Request number `k`: its kind (for the report) and its raw bytes.
pub type ScheduledFn<'a> = dyn Fn(u64) -> (&'static str, &'a [u8]) + Sync + 'a;

/// Sends the schedule's requests on `plan.senders` threads while `during` runs on this
/// thread; `check` judges each reply, except that a 422 counts as a business refusal.
/// Latencies count from when each request was due, so a stalled server shows as
/// latency, not as a lower offered rate.
pub fn run_open_loop<T>(
    plan: &OpenLoop,
    request: &ScheduledFn<'_>,
    check: &CheckFn<'_>,
    during: impl FnOnce() -> T,
) -> (Vec<WindowSeen>, T) {
    let next = AtomicU64::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..plan.senders)
            .map(|i| {
                let next = &next;
                std::thread::Builder::new()
                    .name(format!("open-loop-{i}"))
                    .stack_size(256 * 1024)
                    .spawn_scoped(scope, move || open_loop_sender(plan, request, check, next))
                    .expect("spawn a sender thread")
            })
            .collect();
        let t = during();
        let mut seen = vec![WindowSeen::default(); plan.windows];
        for h in handles {
            for (mine, theirs) in seen.iter_mut().zip(h.join().expect("sender thread")) {
                mine.merge(theirs);
            }
        }
        seen.iter_mut().for_each(|s| s.latencies_us.sort_unstable());
        (seen, t)
    })
}

/// One sender: takes the next request number, waits until it is due, sends it.
fn open_loop_sender(
    plan: &OpenLoop,
    request: &ScheduledFn<'_>,
    check: &CheckFn<'_>,
    next: &AtomicU64,
) -> Vec<WindowSeen> {
    let mut conn = Conn::new(plan.addr);
    let mut seen = vec![WindowSeen::default(); plan.windows];
    let micros = |d: Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
    loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        let offset = Duration::from_secs_f64(k as f64 / plan.rate);
        if offset >= plan.duration {
            return seen;
        }
        let due = plan.start + offset;
        sleep_until(due);
        let (kind, raw) = request(k);
        let sent = Instant::now();
        let result = conn.request(raw);
        let done = Instant::now();
        let w = (offset.as_secs_f64() / plan.duration.as_secs_f64() * plan.windows as f64) as usize;
        let s = &mut seen[w.min(plan.windows - 1)];
        s.send_lag_max_us = s.send_lag_max_us.max(micros(sent.saturating_duration_since(due)));
        let failed = match &result {
            Ok(r) if r.status == 422 => {
                *s.refused.entry(format!("{kind} {}", error_code(&r.body).unwrap_or_default())).or_default() += 1;
                continue;
            }
            Ok(r) => check(r.status, &r.body).err().map(|e| (e, String::from_utf8_lossy(&r.body).into_owned())),
            Err(e) => Some((format!("io: {}", e.kind()), e.to_string())),
        };
        match failed {
            None => {
                s.ok += 1;
                *s.ok_by_kind.entry(kind).or_default() += 1;
                s.latencies_us.push(micros(done.duration_since(due)));
            }
            Some((e, sample)) => {
                s.errors.entry(format!("{kind}: {e}")).or_insert((0, sample.chars().take(300).collect())).0 += 1;
                if result.is_err() {
                    // A dead or refusing server: do not spin.
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

/// Runs `work(i)` for `i in 0..n` on up to `threads` threads; the first error wins.
pub fn parallel<T: Send>(
    n: usize,
    threads: usize,
    work: &(dyn Fn(usize) -> Result<T, String> + Sync),
) -> Result<Vec<T>, String> {
    let next = AtomicU64::new(0);
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.clamp(1, n.max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        if i >= n {
                            break;
                        }
                        mine.push((i, work(i)));
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("setup thread")).collect::<Vec<_>>()
    });
    let mut ordered: Vec<(usize, Result<T, String>)> = results;
    ordered.sort_by_key(|(i, _)| *i);
    ordered.into_iter().map(|(_, r)| r).collect()
}

// ---------------------------------------------------------------------------------
// CPU accounting from /proc
// ---------------------------------------------------------------------------------
