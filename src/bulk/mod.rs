//! Bulk disbursements (SPEC §5): upload a CSV of payees, validate it as a stream,
//! approve (reserving the total), pay every line through the SDK or on-us in a worker
//! pool, exactly once, with live progress.
pub mod actions;
pub mod breaker;
pub mod cancel;
pub mod csv;
pub mod duplicates;
pub mod files;
pub mod ingest;
pub mod items;
pub mod model;
pub mod read;
pub mod upload;
pub mod worker;
