//! The Mojaloop SDK Scheme Adapter: the only code that names ureq or SDK wire types.
//!
//! - [`client`]: one payment through the SDK's stages, with the mode and phase model.
//! - [`outcome`]: the outcome table of SPEC §4.
//! - [`wire`]: the request we send and the lenient reading of replies (through
//!   `prune`, which parses a reply keeping only the paths an outcome reads).
//! - [`simulator`]: a real HTTP server speaking the SDK's outbound API, for tests and demos.
pub mod client;
pub mod outcome;
mod prune;
pub mod simulator;
pub mod wire;

pub use client::{FinalSent, HubState, PayOutcome, SdkClient, SdkMode, Verdict};
pub use wire::Payment;
