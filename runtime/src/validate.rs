//! What every component's configuration check returns when a value cannot
//! be used: the key, what is wrong, and a valid example.

/// A configuration value that cannot be used, with what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}; for example: {example}")]
pub struct Invalid {
    /// The dotted key, e.g. `bus.url`.
    pub field: String,
    /// What is wrong.
    pub problem: String,
    /// A valid example.
    pub example: &'static str,
}

impl Invalid {
    /// `field` is unusable because of `problem`; `example` shows a good one.
    pub fn new(
        field: impl Into<String>,
        problem: impl Into<String>,
        example: &'static str,
    ) -> Self {
        Invalid {
            field: field.into(),
            problem: problem.into(),
            example,
        }
    }
}
