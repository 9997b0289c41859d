//! Relay: DynamoDB Streams records in, published events out, mapped by
//! per-table WebAssembly transforms.
//!
//! # Layout
//!
//! A record flows one way through these stages:
//!
//! - decode: DynamoDB AttributeValue JSON to plain JSON, one record at a
//!   time (`relay_record::dynamodb`, shared with transform authors' tests so
//!   that fixtures decode exactly as in production);
//! - [`transform`]: the table's WebAssembly component maps a record to zero or
//!   more events, sandboxed under a CPU budget, a memory cap over the whole
//!   instance, an output cap and a log budget.
//!
//! - [`intake`]: split the Lambda event, decode each record on its own;
//! - [`config`]: routing (table → module, settings, limits), bus, fallback;
//! - [`modules`]: each table's module from a file or S3, checked against its
//!   pinned sha256, compiled by the relay and cached across warm starts
//!   (precompiled artifacts only from folders the deployment ships);
//! - [`publish`]: batches per event type to Nakadi, retries with backoff;
//! - [`park`]: park what was not published in SQS (oversized messages
//!   claim-checked in S3), and the parked-items registry that keeps each
//!   item's events in order across batches and re-drive runs;
//! - [`pipeline`]: the stages in order, and the partial batch response;
//! - [`lambda`]: the Lambda entry point and its metrics;
//! - [`redrive`]: drain the fallback queue back to the bus;
//! - [`poll`]: `relay poll`, the pipeline on streams read through the
//!   DynamoDB Streams API (the local loop, or outside Lambda).
//!
//! Local tooling around the pipeline:
//!
//! - [`local_test`]: `relay test`, run a transform over sample records;
//! - [`sample`]: `relay sample`, generate realistic stream events;
//! - [`devbus`]: `relay bus`, a local Nakadi-compatible bus that prints events;
//! - [`bench`]: `relay bench`, measure the mapping against native Rust and
//!   the Python peer.

pub mod bench;
pub mod config;
pub mod devbus;
pub mod intake;
pub mod lambda;
pub mod local_test;
pub mod modules;
pub mod park;
pub mod pipeline;
pub mod poll;
pub mod publish;
pub mod redrive;
pub mod sample;
pub mod transform;

/// Milliseconds since the Unix epoch, by the wall clock.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
