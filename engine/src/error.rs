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
    /// The bytes are a precompiled artifact, which is native code: only
    /// `TransformEngine::load_artifact` takes those, for bytes the caller
    /// vouches for.
    #[error(
        "transform module {module} is a precompiled artifact, not WebAssembly: it is native code \
         that would run unchecked with the relay's credentials, so it is not loaded from here; \
         use the .wasm it was compiled from (the relay compiles it and caches the result)"
    )]
    Precompiled {
        /// The module name.
        module: String,
    },
    /// The component does not implement the `relay:transform` world.
    #[error(
        "transform module {module} does not implement the relay:transform@0.2.0 world \
         (or 0.1.0: it must export `init` and `transform`, built with relay-sdk): {reason}"
    )]
    WrongShape {
        /// The module name.
        module: String,
        /// What is missing or mistyped.
        reason: String,
    },
    /// The module could not be instantiated under the sandbox's limits, or
    /// its `init` rejected the table settings or failed.
    #[error(
        "transform module {module} {}: {reason}",
        match reason {
            TransformErrorKind::Guest(_) => "refused its settings",
            _ => "could not be started",
        }
    )]
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
    /// The call got less CPU than its budget but ran past the wall-clock
    /// backstop: the machine stalled it.
    #[error(
        "the transform was stopped after {wall_ms} ms by the wall clock, having run only \
         {cpu_ms} ms of its CPU budget of {budget_ms} ms (the machine was too busy to run it)"
    )]
    Stalled {
        /// The wall-clock backstop in milliseconds.
        wall_ms: u64,
        /// The CPU time it used, in milliseconds.
        cpu_ms: u64,
        /// The CPU budget in milliseconds.
        budget_ms: u64,
    },
    /// The guest tried to grow its memories and tables past the cap.
    #[error(
        "the transform exhausted its memory cap of {cap_bytes} bytes \
         (all its memories and tables together)"
    )]
    OutOfMemory {
        /// The cap in bytes.
        cap_bytes: usize,
    },
    /// The guest trapped (panic, unreachable, forbidden import, ...).
    #[error("the transform trapped: {0}")]
    Trap(String),
    /// The guest creates more core instances, memories or tables than a
    /// transform instance may have.
    #[error("the transform exceeds the sandbox's resource limits: {0}")]
    TooManyResources(String),
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
            TransformErrorKind::Stalled { .. } => "stalled",
            TransformErrorKind::OutOfMemory { .. } => "out-of-memory",
            TransformErrorKind::TooManyResources(_) => "too-many-resources",
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
