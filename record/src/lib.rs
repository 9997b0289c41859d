//! Relay's record model, shared by the host and every transform: DynamoDB
//! stream records decoded to exact JSON, the events a transform returns, and
//! the error the contract carries.
//!
//! Transform authors use all of this through `relay-sdk`, which re-exports
//! it (`relay_sdk::Record` is [`Record`], `relay_sdk::dynamodb` is
//! [`dynamodb`]). The host uses it directly, without the guest SDK. Its only
//! dependencies are serde, serde_json and uuid.
//!
//! # Layout
//!
//! In the order a change flows through it:
//!
//! 1. [`dynamodb`]: a Lambda DynamoDB Streams batch (or a single record)
//!    split into raw records, each decoded on its own into a [`Record`];
//!    attribute values become plain JSON with every digit of a number kept.
//! 2. [`Record`], with its [`Operation`] and its old and new [`Image`]s
//!    (exact JSON text, parsed to a value only on demand): what a transform
//!    receives.
//! 3. `patch`: the RFC 6902 JSON Patch from the old image to the new one
//!    ([`json_patch`] on values, [`Record::patch`] on a record's images).
//! 4. [`Event`], what a transform returns, and the Nakadi body builders
//!    [`DataChangeEvent`] and [`BusinessEvent`], which fill in the
//!    deterministic [`eid`] and [`occurred_at`] ([`format_rfc3339_millis`]).
//! 5. [`TransformError`]: why a transform could not map a record, the WIT
//!    `transform-error`.
//! 6. [`testing`]: fixture files and records built in code, for native tests
//!    of transforms and of the host.
#![deny(missing_docs)]

pub mod dynamodb;
mod error;
mod event;
#[doc(hidden)]
pub mod host_patch;
mod patch;
mod record;
mod scan;
pub mod testing;

pub use error::TransformError;
pub use event::{
    eid, format_rfc3339_millis, occurred_at, BusinessEvent, DataChangeEvent, Event, EID_NAMESPACE,
};
pub use patch::json_patch;
pub use record::{image_patch, Image, ImageError, Operation, Record};
