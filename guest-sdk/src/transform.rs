//! The trait every transform implements.

use serde::de::DeserializeOwned;

use crate::{Event, Record, TransformError};

/// A table's transform: built once per instance from the table's settings,
/// then called once per stream record.
///
/// Export it with [`export_transform!`](crate::export_transform).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a Relay transform: it does not implement `relay_sdk::Transform`",
    label = "not a `relay_sdk::Transform`",
    note = "implement `relay_sdk::Transform` for `{Self}` (`type Settings`, `fn new`, `fn transform`) to export it with `relay_sdk::export_transform!`"
)]
pub trait Transform: Sized + 'static {
    /// Per-table settings, deserialized from the JSON object the host hands to `init`.
    type Settings: DeserializeOwned;

    /// Builds the transform from its settings; an error rejects the module
    /// for the table (return [`TransformError::InvalidSettings`]).
    fn new(settings: Self::Settings) -> Result<Self, TransformError>;

    /// Maps one stream record to zero or more events.
    fn transform(&self, record: &Record) -> Result<Vec<Event>, TransformError>;
}
