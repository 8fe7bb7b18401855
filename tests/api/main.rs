//! Integration tests: the real server on a free port, a temporary data directory,
//! and the real SDK simulator over HTTP.

mod accounts;
mod bad_input;
mod bulk;
mod bulk_crash;
mod bulk_files;
mod bulk_flows;
mod cli;
mod contract;
mod crash;
mod fault_proxy;
mod faults;
mod graceful;
mod idempotency;
mod metrics;
mod ops;
mod procs;
mod sdk_outcomes;
mod security;
mod support;
mod transfers;
