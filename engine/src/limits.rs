//! The sandbox budget every transform call runs under, with defaults, and
//! the two pieces of the store that enforce it: [`Sandbox`], the resource
//! limiter (memory and tables summed over the whole instance, and how many
//! core instances, memories and tables it may create), and [`CpuClock`], which
//! turns epoch ticks into a CPU-time budget.

use std::time::{Duration, Instant};

use serde::Deserialize;

/// Per-call limits for a transform. Every field has a default; a table's
/// configuration may override any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// CPU budget for one call (`init` or one record), in milliseconds of CPU
    /// time of the thread running it, checked every [`EPOCH_TICK`]. Default
    /// 100. A call that the machine stalls (not its own work) is stopped
    /// only after [`Limits::wall_budget`].
    pub cpu_budget_ms: u64,
    /// Cap on everything the instance allocates: the sum over all its linear
    /// memories and tables (a component may hold several of each), in bytes.
    /// Default 32 MiB.
    pub memory_bytes: usize,
    /// Cap on the total size of the events one record may produce (event
    /// types, bodies and keys), in bytes. Default 4 MiB.
    pub max_output_bytes: usize,
    /// Cap on the number of events one record may produce. Default 1,000.
    pub max_events: usize,
}

/// How often the epoch ticker advances the engine's epoch: the granularity of
/// the CPU budget.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Most core module instances one transform instance may create; more is
/// refused when it is instantiated. A Rust transform built for
/// `wasm32-wasip2` creates 3 (its code and two shims), with 1 memory and 2
/// tables; the limits leave room for other toolchains.
pub const MAX_INSTANCES: usize = 32;

/// Most linear memories one transform instance may create.
pub const MAX_MEMORIES: usize = 8;

/// Most tables one transform instance may create.
pub const MAX_TABLES: usize = 16;

/// Bytes a table element costs the host (a pointer), charged against
/// [`Limits::memory_bytes`].
pub const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

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
    /// The CPU budget of one call.
    pub fn cpu_budget(&self) -> Duration {
        Duration::from_millis(self.cpu_budget_ms)
    }

    /// How long a call may take by the wall clock however little CPU it got:
    /// ten times the CPU budget, at least one second. Only a machine that
    /// stalls the relay gets there; a transform that spins runs out of its
    /// CPU budget first.
    pub fn wall_budget(&self) -> Duration {
        (self.cpu_budget() * 10).max(Duration::from_secs(1))
    }
}

/// `duration` in epoch ticks, rounded up, at least one.
fn ticks(duration: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos();
    (duration.as_nanos().div_ceil(tick) as u64).max(1)
}

/// The store's [`wasmtime::ResourceLimiter`]: everything a transform instance
/// allocates, summed over all its memories and tables, against one cap.
///
/// Wasmtime asks it before creating and before growing each memory and
/// table, one at a time and without saying which; the sum of what was granted
/// is therefore the instance's total, since memories and tables never shrink.
/// Growth that wasmtime fails after it was granted is given back.
#[derive(Debug)]
pub(crate) struct Sandbox {
    cap: usize,
    used: usize,
    /// The last grant, given back if the growth then fails.
    pending: usize,
    /// Whether the guest ran into the cap during the current call, so that a
    /// trap that follows is reported as memory exhaustion.
    pub(crate) exhausted: bool,
}

impl Sandbox {
    pub(crate) fn new(cap: usize) -> Self {
        Sandbox {
            cap,
            used: 0,
            pending: 0,
            exhausted: false,
        }
    }

    /// Bytes granted so far to all memories and tables of the instance.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used
    }

    /// Grants `current → desired` if the total stays within the cap.
    fn grow(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> bool {
        self.pending = 0;
        // Past its own maximum the growth fails anyway: no need to count it.
        if maximum.is_some_and(|max| desired > max) {
            return false;
        }
        let more = desired.saturating_sub(current);
        match self.used.checked_add(more) {
            Some(total) if total <= self.cap => {
                self.used = total;
                self.pending = more;
                true
            }
            _ => {
                self.exhausted = true;
                false
            }
        }
    }

    fn give_back(&mut self) {
        self.used -= self.pending;
        self.pending = 0;
    }
}

impl wasmtime::ResourceLimiter for Sandbox {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(current, desired, maximum))
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.give_back();
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let bytes = |elements: usize| elements.saturating_mul(TABLE_ELEMENT_BYTES);
        Ok(self.grow(bytes(current), bytes(desired), maximum.map(bytes)))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.give_back();
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

/// Why a call was stopped before it returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// It used its CPU budget.
    Cpu,
    /// It got less CPU than its budget but ran past [`Limits::wall_budget`]:
    /// the machine, not the transform, held it up.
    Wall {
        /// The CPU time it did use.
        cpu_used: Duration,
    },
}

/// What to do when a call's epoch deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Let it run this many more ticks.
    Continue(u64),
    /// Stop it.
    Stop(Expired),
}

/// The CPU budget of one call, measured on the thread's CPU clock.
///
/// The epoch ticker only says that wall time has passed; when a call's
/// deadline comes, [`CpuClock::check`] asks the thread's CPU clock how much of
/// that time the call actually ran, and lets it go on for the rest of its
/// budget. So a transform is never charged for time in which the machine ran
/// something else, yet one that spins stops within a tick of its budget.
///
/// Reading the CPU clock is a system call (about 0.6 µs here, 1.4% of a
/// typical record), so a call does not read it when it starts: its first
/// deadline is one tick away ([`CpuClock::FIRST_CHECK_TICKS`]), and at that
/// first check the time so far is counted as CPU time, but at most one tick
/// of it; the clock is read from then on. A guest that runs reaches an epoch
/// check within a tick of the deadline, so a first check that comes later
/// means the thread was elsewhere (descheduled, or blocked in the host), not
/// in the guest's code. The error is at most a tick, as the ticks' own, and
/// records that take less than a tick never read the clock.
#[derive(Debug)]
pub(crate) struct CpuClock {
    budget: Duration,
    wall_budget: Duration,
    started: Instant,
    /// At the first check: the thread's CPU clock, and the wall time the
    /// call had run until then.
    first: Option<(Duration, Duration)>,
    /// Set when the call was stopped, and why.
    pub(crate) expired: Option<Expired>,
}

impl CpuClock {
    /// Ticks to a call's first check.
    pub(crate) const FIRST_CHECK_TICKS: u64 = 1;

    /// A clock for calls under `limits`; [`CpuClock::start`] arms it.
    pub(crate) fn new(limits: Limits) -> Self {
        CpuClock {
            budget: limits.cpu_budget(),
            wall_budget: limits.wall_budget(),
            started: Instant::now(),
            first: None,
            expired: None,
        }
    }

    /// Starts the budget of a call on the current thread.
    pub(crate) fn start(&mut self) {
        self.started = Instant::now();
        self.first = None;
        self.expired = None;
    }

    /// The deadline has passed: go on or stop?
    pub(crate) fn check(&mut self) -> Verdict {
        let wall = self.started.elapsed();
        // Without a thread CPU clock the budget is wall time, as the ticks are.
        let cpu = match (self.first, thread_cpu_time()) {
            (Some((at_first, before)), Some(now)) => before + now.saturating_sub(at_first),
            (None, Some(now)) => {
                let before = wall.min(EPOCH_TICK);
                self.first = Some((now, before));
                before
            }
            (_, None) => wall,
        };
        let verdict = judge(self.budget, self.wall_budget, cpu, wall);
        if let Verdict::Stop(why) = verdict {
            self.expired = Some(why);
        }
        verdict
    }
}

/// The decision of [`CpuClock::check`], given the CPU and wall time a call
/// has used so far.
pub(crate) fn judge(
    budget: Duration,
    wall_budget: Duration,
    cpu: Duration,
    wall: Duration,
) -> Verdict {
    if cpu >= budget {
        return Verdict::Stop(Expired::Cpu);
    }
    if wall >= wall_budget {
        return Verdict::Stop(Expired::Wall { cpu_used: cpu });
    }
    let until_cpu = ticks(budget - cpu);
    let until_wall = ticks(wall_budget - wall);
    Verdict::Continue(until_cpu.min(until_wall))
}

/// CPU time the current thread has used, if the platform can tell.
fn thread_cpu_time() -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given, which
    // lives on this stack frame.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    (rc == 0).then(|| Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn the_cap_holds_across_memories_and_tables() {
        let mut sandbox = Sandbox::new(32 * MIB);
        // Twenty memories of 30 MiB each: only the first fits.
        assert!(sandbox.grow(0, 30 * MIB, None));
        for _ in 1..20 {
            assert!(!sandbox.grow(0, 30 * MIB, None));
        }
        assert!(sandbox.exhausted);
        assert_eq!(sandbox.used(), 30 * MIB);
        // The rest is still there for growth that fits.
        assert!(sandbox.grow(30 * MIB, 31 * MIB, None));
        // Tables count too, a pointer per element.
        use wasmtime::ResourceLimiter as _;
        let elements = MIB / TABLE_ELEMENT_BYTES;
        assert!(sandbox.table_growing(0, elements, None).unwrap());
        assert!(!sandbox.table_growing(elements, elements + 1, None).unwrap());
        assert_eq!(sandbox.used(), 32 * MIB);
    }

    #[test]
    fn growth_that_fails_after_the_grant_is_given_back() {
        use wasmtime::ResourceLimiter as _;
        let mut sandbox = Sandbox::new(32 * MIB);
        assert!(sandbox.memory_growing(0, 8 * MIB, None).unwrap());
        assert!(sandbox.memory_growing(8 * MIB, 16 * MIB, None).unwrap());
        sandbox
            .memory_grow_failed(wasmtime::format_err!("mmap failed"))
            .unwrap();
        assert_eq!(sandbox.used(), 8 * MIB);
        // Beyond the memory's own maximum: refused, not counted, not a cap hit.
        assert!(!sandbox
            .memory_growing(8 * MIB, 9 * MIB, Some(8 * MIB))
            .unwrap());
        assert_eq!(sandbox.used(), 8 * MIB);
        assert!(!sandbox.exhausted);
    }

    #[test]
    fn the_budget_is_cpu_time_with_a_wall_clock_backstop() {
        let ms = Duration::from_millis;
        let (budget, wall_budget) = (ms(100), ms(1000));
        // Spinning: the CPU budget ends the call.
        assert_eq!(
            judge(budget, wall_budget, ms(100), ms(100)),
            Verdict::Stop(Expired::Cpu)
        );
        // Stalled by the machine: 100 ms passed, 10 ms of it ran; go on for
        // the 90 ms of CPU left (18 ticks).
        assert_eq!(
            judge(budget, wall_budget, ms(10), ms(100)),
            Verdict::Continue(18)
        );
        // Near the backstop the next check comes no later than it.
        assert_eq!(
            judge(budget, wall_budget, ms(10), ms(990)),
            Verdict::Continue(2)
        );
        // Stalled for ten times the budget: stopped, saying how little it ran.
        assert_eq!(
            judge(budget, wall_budget, ms(10), ms(1000)),
            Verdict::Stop(Expired::Wall { cpu_used: ms(10) })
        );
    }

    #[test]
    fn the_wall_budget_is_ten_times_the_cpu_budget_at_least_a_second() {
        let limits = |cpu_budget_ms| Limits {
            cpu_budget_ms,
            ..Limits::default()
        };
        assert_eq!(limits(100).wall_budget(), Duration::from_secs(1));
        assert_eq!(limits(20).wall_budget(), Duration::from_secs(1));
        assert_eq!(limits(250).wall_budget(), Duration::from_millis(2500));
    }

    #[test]
    fn the_thread_cpu_clock_counts_work_not_sleep() {
        let before = thread_cpu_time().expect("Linux has a thread CPU clock");
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time().unwrap() - before;
        assert!(slept < Duration::from_millis(20), "{slept:?}");
    }
}
