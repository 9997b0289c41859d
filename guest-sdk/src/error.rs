//! The error a transform returns instead of panicking.

/// Why a transform could not map a record. Crosses the WebAssembly boundary
/// as the WIT `transform-error` variant and is reported by the host with the
/// module name and the record's sequence number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// The record lacks something the transform needs or holds a bad value.
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// The per-table settings are not usable by this transform.
    #[error("invalid settings: {0}")]
    InvalidSettings(String),
    /// Any other failure inside the transform.
    #[error("{0}")]
    Failed(String),
}

impl TransformError {
    /// Shorthand for [`TransformError::InvalidRecord`].
    pub fn invalid_record(reason: impl std::fmt::Display) -> Self {
        Self::InvalidRecord(reason.to_string())
    }

    /// Shorthand for [`TransformError::InvalidSettings`].
    pub fn invalid_settings(reason: impl std::fmt::Display) -> Self {
        Self::InvalidSettings(reason.to_string())
    }

    /// Shorthand for [`TransformError::Failed`].
    pub fn failed(reason: impl std::fmt::Display) -> Self {
        Self::Failed(reason.to_string())
    }
}
