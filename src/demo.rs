//! `sysgp demo`: a fresh data directory and key of its own, the SDK simulator
//! in-process, wallets with money, serving on 127.0.0.1:8000.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::app::{self, Server};
use crate::auth::{Actor, Role};
use crate::config::Config;
use crate::ledger::{Currency, Msisdn};
use crate::sdk::simulator::{self, SimulatorConfig, SimulatorHandle};
use crate::transfers::cash::{CashDirection, CashRequest};

/// Demo wallets: number, currency, name, opening deposit.
const WALLETS: &[(&str, &str, &str, &str)] = &[
    ("22507000001", "XOF", "Awa Koné", "1000000"),
    ("22507000002", "XOF", "Kouassi Yao", "250000"),
    ("22507000003", "XOF", "Fatou Diallo", "50000"),
    ("15550000001", "USD", "Maria Jones", "2500.75"),
];

/// A running demo.
pub struct Demo {
    users: Vec<(String, String)>,
    server: Server,
    simulator: SimulatorHandle,
    data_dir: PathBuf,
}

fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| format!("no randomness available: {e}"))?;
    Ok(hex::encode(buf))
}

/// Starts the simulator and the service and seeds the wallets.
pub async fn start(bind: SocketAddr, data_dir: Option<PathBuf>) -> Result<Demo, String> {
    let data_dir = match data_dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("sysgp-demo-{}", random_hex(6)?)),
    };
    let simulator = simulator::spawn(SocketAddr::from(([127, 0, 0, 1], 0)), SimulatorConfig::default())
        .map_err(|e| format!("cannot start the SDK simulator: {e}"))?;
    let vars: HashMap<String, String> = [
        ("SECRET_KEY", random_hex(32)?),
        ("MOJALOOP_SDK_URL", simulator.url()),
        ("SYSGP_BIND", bind.to_string()),
        ("SYSGP_DATA_DIR", data_dir.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_vars(&vars).map_err(|e| e.to_string())?;
    let server = app::start(&config).await.map_err(|e| e.to_string())?;
    let users = create_users(&server).await?;
    seed(&server).await?;
    Ok(Demo { users, server, simulator, data_dir })
}

/// An admin, a maker and a checker with random passwords (printed once).
async fn create_users(server: &Server) -> Result<Vec<(String, String)>, String> {
    let actor = Actor::new("demo");
    let mut out = Vec::new();
    for role in [Role::Admin, Role::Maker, Role::Checker] {
        let password = random_hex(9)?;
        server.engine.add_user(&actor, role.as_str(), role, password.clone()).await.map_err(|e| e.to_string())?;
        out.push((role.as_str().to_owned(), password));
    }
    Ok(out)
}

async fn seed(server: &Server) -> Result<(), String> {
    let engine = &server.engine;
    let actor = Actor::new("demo");
    for (msisdn, currency, name, amount) in WALLETS {
        let msisdn = Msisdn::parse(msisdn).map_err(|e| e.to_string())?;
        let currency = Currency::parse(currency).map_err(|e| e.to_string())?;
        let req = crate::accounts::CreateAccount { msisdn, currency, display_name: Some((*name).to_owned()) };
        engine.create_account(&actor, req).await.map_err(|e| e.to_string())?;
        let cash = CashRequest { amount: (*amount).to_owned(), reference: Some("opening balance".into()), note: None };
        engine.cash(&actor, None, msisdn, CashDirection::Deposit, cash).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

impl Demo {
    /// What to print for the person running the demo.
    pub fn banner(&self) -> String {
        let base = format!("http://{}", self.server.addr);
        let mut lines = vec![
            "sysgp demo is running.".to_owned(),
            format!("  admin page:   {base}/"),
            format!("  API:          {base}/api/v1/accounts/"),
            format!("  readiness:    {base}/readyz"),
            format!("  SDK simulator: {} (GET /__sim/transfers lists what it paid)", self.simulator.url()),
            format!("  data:         {}", self.data_dir.display()),
            "  users (name / password):".to_owned(),
        ];
        for (name, password) in &self.users {
            lines.push(format!("    {name:<8} {password}"));
        }
        lines.push("  wallets:".to_owned());
        for (msisdn, currency, name, amount) in WALLETS {
            lines.push(format!("    {msisdn}  {name:<14} {amount} {currency}"));
        }
        let maker = self.users.iter().find(|(n, _)| n == "maker").map(|(_, p)| p.as_str()).unwrap_or("");
        lines.push(format!(
            "  try:  TOKEN=$(curl -s -X POST {base}/api/v1/auth/login -H 'content-type: application/json' \\\n          -d '{{\"username\":\"maker\",\"password\":\"{maker}\"}}' | sed 's/.*\"token\":\"\\([0-9a-f]*\\)\".*/\\1/')\n        curl -s -X POST {base}/api/v1/transfers/ -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' \\\n          -d '{{\"sender_msisdn\":\"22507000001\",\"receiver_msisdn\":\"22500000777\",\"amount\":\"1500\"}}'"
        ));
        lines.push("Press Ctrl-C to stop.".to_owned());
        lines.join("\n")
    }

    /// Stops the service and the simulator.
    pub async fn stop(self) {
        self.server.stop().await;
        self.simulator.shutdown();
    }
}
