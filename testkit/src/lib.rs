//! Relay's test kit: the fakes and harnesses the integration tests run the
//! relay against, compiled once for every test binary. It does not depend on
//! the relay itself (the relay depends on it: `relay bus` is its fake Nakadi).
//!
//! # Layout
//!
//! - [`nakadi`]: [`FakeNakadi`], Nakadi's event publishing API with faults a
//!   test can switch on; with [`FakeNakadi::builder`] also a plain loopback
//!   sink that only counts (and shows) what it accepts;
//! - [`runtime_api`]: [`RuntimeApi`], the Lambda Runtime API, so the real
//!   binary runs as a Lambda function;
//! - [`moto`]: [`Moto`], a moto server (in-memory AWS) with SQS helpers;
//!   [`dynamodb`] and [`s3`] ([`MotoS3`]) add DynamoDB and S3 helpers;
//! - [`sinks`]: fakes of the newer sinks' services, with faults and the
//!   real limits: [`FakeEventBridge`], [`FakeKinesis`], [`FakeSns`] and
//!   [`FakeCloudEvents`];
//! - [`moto_sinks`]: [`MotoEventBridge`], [`MotoKinesis`] and [`MotoSns`] set
//!   those services up on moto and read back what was delivered;
//! - [`aws_proxy`]: [`AwsProxy`], a proxy in front of moto that makes AWS
//!   calls fail or hang and enforces SQS's real size rules;
//! - [`workspace`]: the workspace root, its fixtures, and the guest
//!   components built on first use ([`guest`]);
//! - [`serve_each_request`], [`wait_until`] and [`Rng`]: what the fakes (and
//!   tests) share.

pub mod aws_proxy;
pub mod dynamodb;
pub mod moto;
pub mod moto_sinks;
pub mod nakadi;
pub mod runtime_api;
pub mod s3;
pub mod sinks;
pub mod workspace;

mod rng;
mod serve;

pub use aws_proxy::{AwsProxy, ProxyFault};
pub use moto::Moto;
pub use moto_sinks::{MotoEventBridge, MotoKinesis, MotoSns};
pub use nakadi::{FakeNakadi, Fault, RequestLog};
pub use rng::Rng;
pub use runtime_api::{InvocationError, RuntimeApi};
pub use s3::MotoS3;
pub use serve::{serve_each_request, wait_until};
pub use sinks::{FakeCloudEvents, FakeEventBridge, FakeKinesis, FakeSns};
pub use workspace::{fixture, guest, workspace};
