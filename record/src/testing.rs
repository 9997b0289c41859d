//! Native test helpers: load the same fixture files `relay test` reads.
//!
//! Transform authors reach this module as `relay_sdk::testing`; the host's
//! tests use it as `relay_record::testing`.
//!
//! A fixture is a Lambda DynamoDB Streams event (`{"Records": [...]}`) or a
//! single stream record, as JSON. Relative paths are resolved against the
//! current directory, which `cargo test` sets to the crate's root.
//!
//! ```no_run
//! let records = relay_record::testing::records("fixtures/order-paid.json");
//! assert_eq!(records[0].table, "orders");
//! ```
//!
//! These helpers panic with a message naming the file and the record, which
//! is what a failing test should do; use [`record_results`] to test how bad
//! records are reported.

use std::path::Path;

use serde_json::Value;

use crate::dynamodb::{self, RecordError};
use crate::{Event, Image, Operation, Record};

/// The stream ARN of records made by [`record`].
pub const TEST_ARN: &str =
    "arn:aws:dynamodb:eu-central-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000";

/// A record of table `orders` built in code, for unit tests (the images
/// become [`Image`]s): sequence number
/// `1`, created at 2024-03-01T12:34:56.789Z, not a TTL delete. Change any
/// field with struct update syntax:
///
/// ```
/// use relay_record::{testing, Operation, Record};
/// use serde_json::json;
///
/// let record = Record {
///     sequence_number: "42".into(),
///     ..testing::record(Operation::Insert, json!({"id": "a"}), None, Some(json!({"id": "a"})))
/// };
/// assert_eq!(record.table, "orders");
/// ```
pub fn record(operation: Operation, keys: Value, old: Option<Value>, new: Option<Value>) -> Record {
    Record {
        table: "orders".into(),
        event_source_arn: TEST_ARN.into(),
        operation,
        keys,
        old_image: old.map(Image::from_value),
        new_image: new.map(Image::from_value),
        sequence_number: "1".into(),
        event_id: "1".into(),
        approximate_creation_time_ms: Some(1_709_296_496_789),
        ttl_delete: false,
    }
}

/// An event's body as JSON.
///
/// # Panics
///
/// When the body is not JSON.
#[track_caller]
pub fn body(event: &Event) -> Value {
    serde_json::from_str(&event.body)
        .unwrap_or_else(|e| panic!("event body is not JSON ({e}): {}", event.body))
}

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
