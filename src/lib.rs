//! sysgp: a mobile-money back office in one binary.
//!
//! A short tour, in dependency order (see `ARCHITECTURE.md`):
//! - [`ledger`]: money, wallets, postings, transfers and the invariants; pure.
//! - [`store`]: sled trees, record codec, the single writer with group commit.
//! - [`sdk`]: the Mojaloop SDK client and simulator.
//! - [`engine`], [`accounts`], [`transfers`]: the use cases.
//! - [`check`]: the invariants over a whole store.
//! - [`http`]: routes, JSON shapes, error statuses (the only code naming warp).
//! - [`app`], [`commands`], [`cli`], [`demo`]: start-up and the commands.
//! - [`config`]: every setting, checked at start-up.
pub mod accounts;
pub mod admin;
pub mod admin_cli;
pub mod app;
pub mod auth;
pub mod backup;
pub mod bulk;
pub mod check;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod engine;
pub mod error;
pub mod http;
pub mod ledger;
pub mod metrics;
pub mod notify;
#[cfg(test)]
mod prng;
pub mod sdk;
pub mod store;
pub mod transfers;
