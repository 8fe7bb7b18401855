//! Integration tests: the real server on a free port, a temporary data directory,
//! and the real SDK simulator over HTTP.

mod accounts;
mod bad_input;
mod bulk;
mod bulk_controls;
mod bulk_downloads;
mod bulk_files;
mod bulk_flows;
mod cli;
mod contract;
mod cors;
mod fault_proxy;
mod faults;
mod graceful;
mod idempotency;
mod metrics;
mod ops;
// Shared with the crash campaign (tests/campaign): not every helper is used here.
#[allow(dead_code)]
mod procs;
#[path = "../common/report.rs"]
mod report;
mod sdk_outcomes;
mod security;
mod support;
mod transfers;
