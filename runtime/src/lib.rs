//! Relay: DynamoDB Streams records in, published events out, mapped by
//! per-table WebAssembly transforms.
//!
//! # Layout
//!
//! A batch flows one way, and the modules follow it:
//!
//! - [`sources`]: where batches come from: the Lambda runtime
//!   ([`sources::lambda`]) or the DynamoDB Streams API ([`sources::poll`]),
//!   and the relay set up the way they run it;
//! - [`pipeline`]: one batch, stage by stage: [`pipeline::intake`] (split and
//!   decode each record on its own, with `relay_record::dynamodb`, the
//!   decoder transform authors' tests use too) → transform (route by table; the
//!   WebAssembly host is [`transform`], the `relay-engine` crate) → hold
//!   (items with parked changes) → publish (per-item waves,
//!   [`pipeline::order`]) → park → respond (the partial batch response);
//! - [`sinks`]: where events are published, behind the [`sinks::Sink`]
//!   trait: [`sinks::nakadi`], [`sinks::eventbridge`], [`sinks::kinesis`],
//!   [`sinks::sns`], [`sinks::http`] (CloudEvents), all retried by
//!   [`sinks::rounds`];
//! - [`park`]: where what was not published waits, behind the
//!   [`park::ParkingLot`] and [`park::Registry`] traits: SQS (oversized
//!   messages claim-checked in S3) and the DynamoDB parked-items registry;
//! - [`redrive`]: the parking lot back to the sink, in per-item order;
//! - [`modules`]: each table's module from a file or S3, pinned by sha256,
//!   compiled by the relay and cached (given the clients, never building them);
//!
//! and around them:
//!
//! - [`config`]: the TOML file, gathering each component's own config type;
//! - [`validate`]: the error every config check returns;
//! - [`aws`]: the AWS SDK clients (the only place that builds them);
//! - [`dev`]: `relay test`, `relay sample`, `relay bus`, `relay new`,
//!   `relay build`.
//!
//! The `relay` binary (`src/main.rs` and `src/cli/`, one file per
//! subcommand) parses arguments and calls these. Only `aws`, `sources` and
//! the CLI read the environment.

pub mod aws;
pub mod config;
pub mod dev;
pub mod modules;
pub mod park;
pub mod pipeline;
pub mod redrive;
pub mod sinks;
pub mod sources;
pub mod validate;

/// The WebAssembly host, from the engine crate.
pub use relay_engine as transform;

/// Milliseconds since the Unix epoch, by the wall clock.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
