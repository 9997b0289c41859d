//! Typed failures of loading and running transform modules.

use std::path::PathBuf;

/// A module could not be loaded, compiled or instantiated.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read transform module {path}: {source}")]
    Read {
        /// The module path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a valid WebAssembly component or precompiled artifact.
    #[error("transform module {module} is not a usable WebAssembly component: {reason}")]
    Invalid {
        /// The module name.
        module: String,
        /// What wasmtime said.
        reason: String,
    },
    /// The component does not implement the `relay:transform` world.
    #[error(
        "transform module {module} does not implement the relay:transform@0.1.0 world \
         (it must export `init` and `transform`, built with relay-sdk): {reason}"
    )]
    WrongShape {
        /// The module name.
        module: String,
        /// What is missing or mistyped.
        reason: String,
    },
    /// The module's `init` rejected the table settings or failed.
    #[error("transform module {module} refused its settings: {reason}")]
    Init {
        /// The module name.
        module: String,
        /// The failure.
        reason: TransformErrorKind,
    },
}

/// Why one record could not be transformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformErrorKind {
    /// The guest returned an error value.
    #[error("the transform returned an error: {0}")]
    Guest(String),
    /// The guest used up its CPU budget.
    #[error("the transform ran out of its CPU budget of {budget_ms} ms")]
    Timeout {
        /// The budget in milliseconds.
        budget_ms: u64,
    },
    /// The guest tried to grow its memory past the cap.
    #[error("the transform exhausted its memory cap of {cap_bytes} bytes")]
    OutOfMemory {
        /// The cap in bytes.
        cap_bytes: usize,
    },
    /// The guest trapped (panic, unreachable, forbidden import, ...).
    #[error("the transform trapped: {0}")]
    Trap(String),
    /// The guest produced more than the output cap allows.
    #[error("the transform's output is too large: {0}")]
    OutputTooLarge(String),
    /// The guest produced something that is not a valid event.
    #[error("the transform returned a malformed event: {0}")]
    BadOutput(String),
}

impl TransformErrorKind {
    /// A short stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            TransformErrorKind::Guest(_) => "guest-error",
            TransformErrorKind::Timeout { .. } => "timeout",
            TransformErrorKind::OutOfMemory { .. } => "out-of-memory",
            TransformErrorKind::Trap(_) => "trap",
            TransformErrorKind::OutputTooLarge(_) => "output-too-large",
            TransformErrorKind::BadOutput(_) => "bad-output",
        }
    }
}

/// A transform failure for one record, naming the module and the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transform {module} failed on record {sequence_number}: {kind}")]
pub struct TransformError {
    /// The module name.
    pub module: String,
    /// The record's stream sequence number.
    pub sequence_number: String,
    /// What went wrong.
    pub kind: TransformErrorKind,
}
