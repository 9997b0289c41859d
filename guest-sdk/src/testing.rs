//! Native test helpers: load the same fixture files `relay test` reads.
//!
//! A fixture is a Lambda DynamoDB Streams event (`{"Records": [...]}`) or a
//! single stream record, as JSON. Relative paths are resolved against the
//! current directory, which `cargo test` sets to the crate's root.
//!
//! ```no_run
//! let records = relay_sdk::testing::records("fixtures/order-paid.json");
//! assert_eq!(records[0].table, "orders");
//! ```
//!
//! These helpers panic with a message naming the file and the record, which
//! is what a failing test should do; use [`record_results`] to test how bad
//! records are reported.

use std::path::Path;

use crate::dynamodb::{self, RecordError};
use crate::Record;

/// All records of the fixture file at `path`, decoded.
///
/// # Panics
///
/// When the file cannot be read, is not an event or record, or any record
/// in it cannot be decoded; the message names the file and every bad record.
#[track_caller]
pub fn records(path: impl AsRef<Path>) -> Vec<Record> {
    let path = path.as_ref();
    all_good(record_results(path), &path.display().to_string())
}

/// All records of a fixture given as JSON text, decoded.
///
/// # Panics
///
/// When the text is not an event or record, or any record in it cannot be
/// decoded; the message names every bad record.
#[track_caller]
pub fn records_from_str(json: &str) -> Vec<Record> {
    all_good(record_results_from_str(json), "the JSON text")
}

/// Every record of the fixture file at `path`, each decoded on its own: a bad
/// record is an `Err` at its position, exactly as the host sees it.
///
/// # Panics
///
/// When the file cannot be read or is neither an event nor a single record.
#[track_caller]
pub fn record_results(path: impl AsRef<Path>) -> Vec<Result<Record, RecordError>> {
    let path = path.as_ref();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => panic!("cannot read fixture {}: {e}", path.display()),
    };
    match dynamodb::parse_records(&text) {
        Ok(results) => results,
        Err(e) => panic!("fixture {}: {e}", path.display()),
    }
}

/// Every record of a fixture given as JSON text, each decoded on its own.
///
/// # Panics
///
/// When the text is neither an event nor a single record.
#[track_caller]
pub fn record_results_from_str(json: &str) -> Vec<Result<Record, RecordError>> {
    match dynamodb::parse_records(json) {
        Ok(results) => results,
        Err(e) => panic!("fixture JSON text: {e}"),
    }
}

#[track_caller]
fn all_good(results: Vec<Result<Record, RecordError>>, source: &str) -> Vec<Record> {
    let total = results.len();
    let mut good = Vec::with_capacity(total);
    let mut bad = Vec::new();
    for result in results {
        match result {
            Ok(record) => good.push(record),
            Err(e) => bad.push(format!("  {e}")),
        }
    }
    if !bad.is_empty() {
        panic!(
            "{} of {total} records in {source} cannot be decoded:\n{}",
            bad.len(),
            bad.join("\n")
        );
    }
    good
}
