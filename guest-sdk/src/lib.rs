//! Relay guest SDK: write the transform that maps a DynamoDB stream record to
//! bus events, build it to a WebAssembly component, test it natively.
//!
//! # Layout
//!
//! In the order a call flows through a transform:
//!
//! 1. [`export_transform!`] exports a type as the component's `init` and
//!    `transform` (through hidden glue and the bindings generated from the
//!    WIT); `init` deserializes the table's settings and calls
//!    [`Transform::new`].
//! 2. [`Transform`], the trait a transform implements, gets each stream
//!    record as a [`Record`], whose images are [`Image`]s: exact JSON text,
//!    parsed to a value only on demand ([`Record::new`] / [`Record::old`],
//!    [`Record::changed`], [`Record::patch`]). In a component, the
//!    `Record::patch` of the record the host handed over (and so the
//!    [`DataChangeEvent`] patch) is the host's: `relay:transform@0.2.0`'s
//!    `record-patch` import, computed natively, the same text the SDK's own
//!    diff gives (used for any other record, when the host has none ready,
//!    and natively).
//! 3. It returns [`Event`]s, built directly or with the Nakadi body builders
//!    [`DataChangeEvent`] and [`BusinessEvent`], which fill in the
//!    deterministic [`eid`] and [`occurred_at`]; or a [`TransformError`]
//!    instead of a panic.
//! 4. [`log`] writes lines to the host's structured log.
//! 5. [`testing`] loads fixtures and builds records for native tests.
//! 6. [`patch`] diffs, applies and merges RFC 6902 patches on any
//!    `serde_json::Value` (the `json-patch` crate).
//! 7. [`alloc`] is the global allocator of `wasm32` builds (feature
//!    `allocator`, on by default): size-class free lists in front of the
//!    system allocator.
//!
//! The record, event and error types, the DynamoDB decoder ([`dynamodb`])
//! and [`testing`] live in `relay-record`, which the host uses too, and are
//! re-exported here: `relay_sdk::Record` is `relay_record::Record`. This
//! crate adds what only a guest needs.
//!
//! Relay reads DynamoDB Streams, decodes each record to plain JSON (numbers
//! keep their exact digits) and hands it to the table's transform, a
//! WebAssembly component implementing the `relay:transform@0.2.0` WIT world
//! (`wit/transform.wit` at the workspace root; the relay still loads
//! components built against 0.1.0). The transform returns zero or
//! more [`Event`]s, which Relay publishes. A transform gets no files, network,
//! environment or clock; everything it needs is in the [`Record`] and its
//! per-table settings.
//!
//! # Example
//!
//! A transform that publishes `order.paid` when an order's status becomes
//! `PAID`, with its settings, export and a native test:
//!
//! ```
//! use relay_sdk::{BusinessEvent, Event, Record, Transform, TransformError};
//! use serde::{Deserialize, Serialize};
//!
//! /// Settings: `{"event_type": "..."}`, all optional.
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! pub struct Settings {
//!     #[serde(default = "default_event_type")]
//!     event_type: String,
//! }
//!
//! fn default_event_type() -> String {
//!     "order.paid".into()
//! }
//!
//! /// The item, as far as this transform cares.
//! #[derive(Deserialize)]
//! struct Order {
//!     order_number: String,
//!     status: String,
//! }
//!
//! /// The event payload; `metadata` is added by [`BusinessEvent`].
//! #[derive(Serialize)]
//! struct Paid<'a> {
//!     order_number: &'a str,
//! }
//!
//! pub struct OrderPaid {
//!     event_type: String,
//! }
//!
//! impl Transform for OrderPaid {
//!     type Settings = Settings;
//!
//!     fn new(settings: Settings) -> Result<Self, TransformError> {
//!         Ok(OrderPaid { event_type: settings.event_type })
//!     }
//!
//!     fn transform(&self, record: &Record) -> Result<Vec<Event>, TransformError> {
//!         let Some(order) = record.new::<Order>()? else {
//!             return Ok(vec![]); // a remove
//!         };
//!         if order.status != "PAID" || !record.changed("status") {
//!             return Ok(vec![]);
//!         }
//!         let payload = Paid { order_number: &order.order_number };
//!         let event = BusinessEvent::new(&self.event_type, &payload)
//!             .key(&order.order_number)
//!             .build(record, 0)?;
//!         Ok(vec![event])
//!     }
//! }
//!
//! // Exports `OrderPaid` as the component's `init`/`transform` on wasm32;
//! // natively it only checks that `OrderPaid` implements `Transform`.
//! relay_sdk::export_transform!(OrderPaid);
//!
//! // A native test (put it in `#[cfg(test)] mod tests`):
//! use relay_sdk::{Image, Operation};
//! use serde_json::json;
//!
//! let transform = OrderPaid::new(Settings { event_type: default_event_type() })?;
//! let record = Record {
//!     table: "orders".into(),
//!     event_source_arn: "arn:aws:dynamodb:eu-central-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000".into(),
//!     operation: Operation::Modify,
//!     keys: json!({"order_number": "A-1"}),
//!     old_image: Some(Image::from_value(json!({"order_number": "A-1", "status": "NEW"}))),
//!     new_image: Some(Image::from_value(json!({"order_number": "A-1", "status": "PAID"}))),
//!     sequence_number: "100".into(),
//!     event_id: "1".into(),
//!     approximate_creation_time_ms: Some(1_709_296_496_789),
//!     ttl_delete: false,
//! };
//! let events = transform.transform(&record)?;
//! assert_eq!(events.len(), 1);
//! assert_eq!(events[0].key.as_deref(), Some("A-1"));
//! let body: serde_json::Value = serde_json::from_str(&events[0].body)?;
//! assert_eq!(body["order_number"], "A-1");
//! assert_eq!(body["metadata"]["eid"], relay_sdk::eid(&record, 0));
//! assert_eq!(body["metadata"]["occurred_at"], "2024-03-01T12:34:56.789Z");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A transform crate is a library with `crate-type = ["cdylib", "rlib"]`
//! depending on `relay-sdk`, `serde` and `serde_json`; `relay new NAME`
//! writes one, with tests and fixtures, outside any workspace.
//!
//! # Building
//!
//! ```sh
//! relay build   # or: cargo build --release --target wasm32-wasip2
//! # → target/wasm32-wasip2/release/my_transform.wasm, a WebAssembly component
//! ```
//!
//! A crate from `relay new` sets `[profile.release]` to what the Relay
//! workspace's `guest` profile has (opt-level 3, LTO, one codegen unit,
//! stripped), which measured fastest per record; in the workspace, build
//! with `cargo build --profile guest --target wasm32-wasip2 -p my-transform`.
//!
//! # Testing natively
//!
//! [`export_transform!`] expands to nothing but a type check off wasm32, so
//! `cargo test -p my-transform` runs the transform as ordinary Rust. Build
//! records in code as above, or load real Lambda DynamoDB Streams event files
//! (`{"Records": [...]}`, or one record) with [`testing::records`]:
//!
//! ```no_run
//! use relay_sdk::Transform;
//!
//! /// Every record of the fixture maps without error to at most one event.
//! fn check_fixture(transform: &impl Transform) {
//!     for record in relay_sdk::testing::records("tests/fixtures/orders.json") {
//!         let events = transform.transform(&record).unwrap();
//!         assert!(events.len() <= 1, "{}: {events:?}", record.sequence_number);
//!     }
//! }
//! ```
//!
//! # Rules for transforms
//!
//! - Return [`TransformError`] rather than panicking. A panic traps the
//!   instance; the SDK's panic hook sends its message to the host log first.
//! - Use [`eid`] (or the builders) for event ids and pass each event's index
//!   in the output, so a re-delivered record yields the same ids.
//! - Carry numbers as [`serde_json::Value`] (or strings) to keep their exact
//!   digits; never convert amounts to `f64`.
#![deny(missing_docs)]

#[doc(hidden)]
#[path = "export.rs"]
pub mod __export;
pub mod alloc;
pub mod log;
pub mod patch;
mod transform;

pub use relay_record::*;
pub use transform::Transform;

/// Bindings generated from the workspace's `wit/transform.wit` (through the
/// symlink `guest-sdk/wit`, so that the packaged crate carries the file);
/// used by [`export_transform!`].
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "transform",
        pub_export_macro: true,
        export_macro_name: "__export_transform_world",
        default_bindings_module: "relay_sdk::__bindings",
    });
}

/// Exports a [`Transform`] as the component's `init` and `transform`.
///
/// Invoke it once, at the top level of the transform crate:
///
/// ```
/// # use relay_sdk::{Event, Record, Transform, TransformError};
/// # pub struct MyTransform;
/// # impl Transform for MyTransform {
/// #     type Settings = ();
/// #     fn new(_: ()) -> Result<Self, TransformError> { Ok(MyTransform) }
/// #     fn transform(&self, _: &Record) -> Result<Vec<Event>, TransformError> { Ok(vec![]) }
/// # }
/// relay_sdk::export_transform!(MyTransform);
/// ```
///
/// On `wasm32` it implements the WIT world's exports for `MyTransform`:
/// `init` deserializes the settings JSON into `MyTransform::Settings`
/// (failure: `invalid-settings` with serde's message), calls
/// [`Transform::new`], keeps the instance and installs a panic hook that logs
/// panics at error level; `transform` parses the record's keys and checks
/// that its image texts are JSON objects, without parsing them into values
/// (failure: `invalid-record`), calls [`Transform::transform`] and returns
/// the events. Natively it only checks that the type implements
/// [`Transform`], so `cargo test` runs the transform as plain Rust.
///
/// It takes exactly one type; anything else is a compile error that shows
/// the expected form (`tests/ui/` holds what the compiler says to misuse).
#[macro_export]
macro_rules! export_transform {
    ($ty:ty $(,)?) => {
        const _: () = {
            const fn __relay_assert_transform<T: $crate::Transform>() {}
            __relay_assert_transform::<$ty>();
        };
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __RelayTransformExport = $crate::__export::Adapter<$ty>;
            $crate::__bindings::__export_transform_world!(
                __RelayTransformExport with_types_in $crate::__bindings
            );
        };
    };
    () => {
        ::core::compile_error!(
            "export_transform! needs the type to export, e.g. `relay_sdk::export_transform!(MyTransform);`"
        );
    };
    ($($input:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "export_transform! takes one type, e.g. `relay_sdk::export_transform!(MyTransform);`, not `",
            ::core::stringify!($($input)*),
            "`"
        ));
    };
}
