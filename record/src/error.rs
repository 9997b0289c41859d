//! The error a transform returns instead of panicking: the contract's
//! `transform-error`.

use std::fmt;

/// Why a transform could not map a record. Crosses the WebAssembly boundary
/// as the WIT `transform-error` variant and is reported by the host with the
/// module name and the record's sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransformError {
    /// The record lacks something the transform needs or holds a bad value.
    InvalidRecord(String),
    /// The per-table settings are not usable by this transform.
    InvalidSettings(String),
    /// Any other failure inside the transform.
    Failed(String),
}

impl TransformError {
    /// Shorthand for [`TransformError::InvalidRecord`].
    pub fn invalid_record(reason: impl fmt::Display) -> Self {
        Self::InvalidRecord(reason.to_string())
    }

    /// Shorthand for [`TransformError::InvalidSettings`].
    pub fn invalid_settings(reason: impl fmt::Display) -> Self {
        Self::InvalidSettings(reason.to_string())
    }

    /// Shorthand for [`TransformError::Failed`].
    pub fn failed(reason: impl fmt::Display) -> Self {
        Self::Failed(reason.to_string())
    }
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRecord(reason) => write!(f, "invalid record: {reason}"),
            Self::InvalidSettings(reason) => write!(f, "invalid settings: {reason}"),
            Self::Failed(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for TransformError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_kind() {
        assert_eq!(
            TransformError::invalid_record("no id").to_string(),
            "invalid record: no id"
        );
        assert_eq!(
            TransformError::invalid_settings("no data_type").to_string(),
            "invalid settings: no data_type"
        );
        assert_eq!(TransformError::failed("boom").to_string(), "boom");
    }
}
