//! Tools for trying the relay and testing transforms locally:
//!
//! - [`test`]: `relay test`, a transform over sample records;
//! - [`sample`]: `relay sample`, realistic stream events;
//! - [`bus`]: `relay bus`, a local Nakadi-compatible bus that prints events;
//! - [`new`]: `relay new`, a transform crate of its own to start from;
//! - [`build`]: `relay build`, a transform crate to its module and sha256.

pub mod build;
pub mod bus;
pub mod new;
pub mod sample;
pub mod test;
