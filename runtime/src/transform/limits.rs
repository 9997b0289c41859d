//! The sandbox budget every transform call runs under, with defaults.

use std::time::Duration;

use serde::Deserialize;

/// Per-call limits for a transform. Every field has a default; a table's
/// configuration may override any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// CPU budget for one call (`init` or one record), in milliseconds of
    /// wall time measured by the epoch ticker. Default 100.
    pub cpu_budget_ms: u64,
    /// Cap on the guest's linear memory, in bytes. Default 32 MiB.
    pub memory_bytes: usize,
    /// Cap on the total size of the event bodies one record may produce,
    /// in bytes. Default 4 MiB.
    pub max_output_bytes: usize,
    /// Cap on the number of events one record may produce. Default 1,000.
    pub max_events: usize,
}

/// How often the epoch ticker advances the engine's epoch: the granularity of
/// the CPU budget.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_budget_ms: 100,
            memory_bytes: 32 << 20,
            max_output_bytes: 4 << 20,
            max_events: 1_000,
        }
    }
}

impl Limits {
    /// The CPU budget in epoch ticks (at least one).
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let tick = EPOCH_TICK.as_millis() as u64;
        self.cpu_budget_ms.div_ceil(tick).max(1)
    }
}

/// Counts memory growth against [`Limits::memory_bytes`] and remembers whether
/// the guest ran into the cap, so a resulting trap is reported as memory
/// exhaustion rather than a generic crash.
#[derive(Debug)]
pub(crate) struct MemoryCap {
    cap: usize,
    pub(crate) exhausted: bool,
}

impl MemoryCap {
    pub(crate) fn new(cap: usize) -> Self {
        MemoryCap {
            cap,
            exhausted: false,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.exhausted = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}
