//! The SDK simulator: a real HTTP server speaking the Mojaloop SDK Scheme Adapter's
//! outbound API (`sysgp simulator`), for development, demos and tests.
//!
//! It behaves like SDK 18.0.2 in front of a mock hub: it validates requests like the
//! SDK (400s), assigns transfer ids, runs party lookup → quote → transfer, stops for
//! acceptance when asked to ([`Accept`]), fails on deterministic triggers (payee msisdn
//! ending in `404`/`408`, amounts `666`, `13`, `4001`, `408`) and at a seeded random
//! rate, and answers with bodies shaped like the captured responses. It also lists
//! what it committed (`GET /__sim/transfers`) and can keep that list in a file.
//!
//! Codemap: `routes` (HTTP) → `schema` (request validation) → `flow` (the transfer
//! state machine) → `state` (shared memory) and `journal` (`--state` file); `bodies`
//! and `decor` build the reply JSON; `tests` drive it all over HTTP.

mod bodies;
mod decor;
mod flow;
mod journal;
mod routes;
mod schema;
mod state;
#[cfg(test)]
mod tests;
mod timer;

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use flow::Dice;
use journal::Journal;
use state::Ledger;
use timer::Timer;

/// Which acceptances the client must send (mirrors the SDK's `AUTO_ACCEPT_PARTY` /
/// `AUTO_ACCEPT_QUOTES` switches).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Accept {
    /// The SDK accepts both itself: one POST runs to the end (the SDK's default).
    #[default]
    None,
    /// `AUTO_ACCEPT_PARTY=false`: the POST stops at `WAITING_FOR_PARTY_ACCEPTANCE`.
    Party,
    /// `AUTO_ACCEPT_QUOTES=false`: the POST stops at `WAITING_FOR_QUOTE_ACCEPTANCE`.
    Quote,
    /// Both off: stops at the party, then at the quote.
    Both,
}

impl Accept {
    /// Parses `none`, `party`, `quote` or `both`.
    pub fn parse(s: &str) -> Option<Accept> {
        match s {
            "none" => Some(Accept::None),
            "party" => Some(Accept::Party),
            "quote" => Some(Accept::Quote),
            "both" => Some(Accept::Both),
            _ => None,
        }
    }

    /// The name [`Accept::parse`] accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Accept::None => "none",
            Accept::Party => "party",
            Accept::Quote => "quote",
            Accept::Both => "both",
        }
    }
}

/// How the simulator behaves (`sysgp simulator` flags).
#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    /// Which acceptances clients must send (`--accept`).
    pub accept: Accept,
    /// Wait before answering each SDK call, in milliseconds (`--latency-ms`).
    pub latency_ms: u64,
    /// Probability, 0.0 to 1.0, that the transfer stage fails with 5105 (`--fail-rate`).
    pub fail_rate: f64,
    /// Seed of the `--fail-rate` draws (`--seed`).
    pub seed: u64,
    /// Where committed transfers are journaled and reloaded from (`--state`).
    pub state_file: Option<PathBuf>,
}

impl Default for SimulatorConfig {
    fn default() -> SimulatorConfig {
        SimulatorConfig { accept: Accept::None, latency_ms: 0, fail_rate: 0.0, seed: 1, state_file: None }
    }
}

/// Longest `--latency-ms`: ten minutes, well past any client's SDK timeout; more is a typo.
const LATENCY_MS_MAX: u64 = 600_000;

/// How long a stopping [`SimulatorHandle`] waits for open requests before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves until `shutdown` resolves. Loads `state_file` first if given.
///
/// Fails at once on an invalid configuration or an unreadable state file.
pub async fn serve(
    listener: TcpListener,
    config: SimulatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // Loading the state file blocks, once, before anything is served.
    let sim = Arc::new(Sim::open(config)?);
    run(listener, sim, shutdown).await;
    Ok(())
}

async fn run(listener: TcpListener, sim: Arc<Sim>, shutdown: impl Future<Output = ()> + Send + 'static) {
    if let Ok(addr) = listener.local_addr() {
        log::info!("SDK simulator listening on http://{addr} (accept {})", sim.accept.as_str());
    }
    warp::serve(routes::routes(sim)).incoming(listener).graceful(shutdown).run().await;
}

/// Runs the simulator on its own thread with its own tokio runtime (for tests and the
/// demo). `bind` (port 0 allowed) is bound and the state file loaded before returning.
pub fn spawn(bind: SocketAddr, config: SimulatorConfig) -> io::Result<SimulatorHandle> {
    let sim = Arc::new(Sim::open(config)?);
    let listener = std::net::TcpListener::bind(bind)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    // Two workers: plenty for a test's clients, and no more threads than the CI machine has cores.
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("sysgp-sim").enable_all().build()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new().name("sysgp-simulator".into()).spawn(move || {
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener)?;
            // Resolves on `stop` or when the handle is dropped without sending.
            let stopping = stopped.map(|_| ()).shared();
            let cap = stopping.clone().then(|()| tokio::time::sleep(SHUTDOWN_GRACE));
            tokio::select! {
                () = run(listener, sim, stopping) => {}
                () = cap => log::warn!("SDK simulator: requests still open {SHUTDOWN_GRACE:?} after shutdown; dropping them"),
            }
            Ok(())
        })
    })?;
    Ok(SimulatorHandle { addr, stop: Some(stop), thread: Some(thread) })
}

/// A simulator running on its own thread; dropping it stops it too.
#[derive(Debug)]
pub struct SimulatorHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl SimulatorHandle {
    /// The bound address (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://127.0.0.1:PORT` (loopback when bound to all interfaces).
    pub fn url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// Stops serving (open requests get 5 s to finish) and joins the thread.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::error!("SDK simulator stopped with an error: {e}"),
                Err(_) => log::error!("SDK simulator thread panicked"),
            }
        }
    }
}

/// One running simulator: its settings, its dice and its memory.
#[derive(Debug)]
struct Sim {
    accept: Accept,
    latency: Duration,
    timer: Option<Timer>,
    dice: Dice,
    ledger: Ledger,
}

impl Sim {
    /// Checks the configuration and loads the state file.
    fn open(config: SimulatorConfig) -> io::Result<Sim> {
        let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
        if !(0.0..=1.0).contains(&config.fail_rate) {
            return Err(invalid(format!("fail rate must be between 0.0 and 1.0, got {}", config.fail_rate)));
        }
        if config.latency_ms > LATENCY_MS_MAX {
            return Err(invalid(format!("latency must be at most {LATENCY_MS_MAX} ms, got {}", config.latency_ms)));
        }
        let (journal, reloaded) = match &config.state_file {
            Some(path) => {
                let (journal, paid) = Journal::open(path)?;
                log::info!("SDK simulator: {} committed transfers reloaded from {}", paid.len(), path.display());
                (Some(journal), paid)
            }
            None => (None, Vec::new()),
        };
        Ok(Sim {
            accept: config.accept,
            latency: Duration::from_millis(config.latency_ms),
            timer: if config.latency_ms > 0 { Some(Timer::start()?) } else { None },
            dice: Dice::new(config.seed, config.fail_rate),
            ledger: Ledger::new(reloaded, journal),
        })
    }

    /// The `--latency-ms` wait, counted from `arrived`: asynchronous, so concurrent
    /// calls overlap.
    async fn delay(&self, arrived: Instant) {
        if let Some(timer) = &self.timer {
            timer.sleep_until(arrived + self.latency).await;
        }
    }
}
