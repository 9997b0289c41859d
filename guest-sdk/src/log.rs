//! Log lines to the host's structured log.
//!
//! In a WebAssembly component these call the host's `log` import, which tags
//! each line with the module and table. Natively (in `cargo test`) they print
//! to stderr. Write messages as sentences; `error` means a change might be
//! lost or is stuck.

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Details useful while developing a transform.
    Debug,
    /// Normal operation worth noting.
    Info,
    /// Something unexpected that the transform handled.
    Warn,
    /// A change might be lost or is stuck.
    Error,
}

impl Level {
    /// Lower-case name: `trace`, `debug`, `info`, `warn`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Writes `message` at `level`.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::__bindings::LogLevel;
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        crate::__bindings::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[relay {}] {message}", level.as_str());
}

/// Writes `message` at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Writes `message` at info level.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Writes `message` at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Writes `message` at error level.
pub fn error(message: &str) {
    log(Level::Error, message);
}
