//! Relay's WebAssembly host (the transform stage): runs a table's component
//! on each record.
//!
//! # Layout
//!
//! - [`TransformEngine`] (here): the wasmtime engine, its linker granting
//!   nothing but the contract's `log` and `record-patch`, compiling and
//!   loading components;
//! - [`TransformModule`], [`TransformInstance`] (here): a compiled component
//!   and one sandboxed instance of it per table;
//! - `limits`: [`Limits`] and the sandbox that enforces them (CPU, memory,
//!   counts);
//! - [`log`]: the guests' log budget;
//! - `output`: checking what a transform returns ([`check_event_type`]);
//! - `error`: [`LoadError`], [`TransformError`].
//!
//! [`TransformEngine`] owns the wasmtime engine (one per process) and its
//! epoch ticker; [`TransformModule`] is a component compiled or loaded once;
//! [`TransformInstance`] is one sandboxed instance of a module with a table's
//! settings, reused across records and rebuilt after a trap.
//!
//! # The sandbox
//!
//! A transform is code a team ships without a redeploy, run next to the bus
//! token and the AWS credentials. What it gets:
//!
//! - no capabilities: every import but the contract's `log` and
//!   `record-patch` (the patch of the record being transformed, computed
//!   by the host for a guest that asked before, handed over once) traps;
//! - per call (`init` or one record) a CPU budget: epoch ticks say when to
//!   look, the thread's CPU clock says how much the call ran
//!   ([`Limits::cpu_budget_ms`], backstopped by [`Limits::wall_budget`]);
//! - per instance one memory cap over all its memories and tables together
//!   ([`Limits::memory_bytes`]), and at most [`MAX_INSTANCES`] core
//!   instances, [`MAX_MEMORIES`] memories and [`MAX_TABLES`] tables;
//! - per record an output cap ([`Limits::max_output_bytes`],
//!   [`Limits::max_events`]), which also bounds what wasmtime copies out of
//!   the guest at all (`output`), and event types that Nakadi accepts
//!   ([`check_event_type`]);
//! - a log budget per record and per invocation or 10 s ([`log`]).
//!
//! Only WebAssembly is compiled here ([`TransformEngine::load_bytes`]).
//! Precompiled artifacts are native code and load only through the `unsafe`
//! [`TransformEngine::load_artifact`], whose callers answer for where the
//! bytes came from (see `modules`).

mod error;
mod limits;
pub mod log;
mod output;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use relay_record::{Operation, Record};
use serde_json::value::RawValue;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Precompiled, Store, Trap, UpdateDeadline};

pub use error::{LoadError, TransformError, TransformErrorKind};
use limits::{CpuClock, Expired, Sandbox, Verdict};
pub use limits::{Limits, EPOCH_TICK, MAX_INSTANCES, MAX_MEMORIES, MAX_TABLES};
use log::{LogBudget, Notice};
pub use output::{check_event_type, MAX_EVENT_TYPE_LEN};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "transform",
        // The record is lowered straight from the host's `Record`.
        ownership: Borrowing {
            duplicate_if_necessary: true
        },
    });
}

use bindings::relay::transform::types as wit;

/// One event produced by a transform, validated: the body is a JSON object.
#[derive(Debug, Clone)]
pub struct Event {
    /// The bus event type to publish to.
    pub event_type: String,
    /// The event exactly as it is published.
    pub body: Box<RawValue>,
    /// Partition/ordering key, if the transform set one.
    pub key: Option<String>,
}

/// The wasmtime engine shared by every module in the process, with the
/// linker that grants guests nothing but the contract's `log` and
/// `record-patch` imports. It takes components of `relay:transform@0.2.0`
/// and of 0.1.0, which has the same exports and imports only `log`.
pub struct TransformEngine {
    engine: Engine,
    /// For an engine that compiles for another machine: one for this
    /// machine, to check modules before compiling them.
    host: Option<Box<TransformEngine>>,
    linker: Linker<GuestState>,
    modules: Mutex<HashMap<PathBuf, Arc<TransformModule>>>,
}

/// Whether engines made from now on write a perf map of the guests' code.
static PERF_MAP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes engines created from now on write a perf map (`/tmp/perf-<pid>.map`)
/// of the guests' compiled code, so `perf report` names their functions.
pub fn enable_perf_map() {
    PERF_MAP.store(true, std::sync::atomic::Ordering::Relaxed);
}

impl TransformEngine {
    /// Creates the engine and starts its epoch ticker thread.
    ///
    /// The configuration is fixed: artifacts precompiled by
    /// [`TransformEngine::precompile`] load only into an engine made here.
    pub fn new() -> wasmtime::Result<Self> {
        Self::build(None)
    }

    /// An engine that compiles for another machine (`aarch64-unknown-linux-gnu`
    /// for Lambda on Graviton): its [`TransformEngine::precompile`] writes
    /// artifacts that a relay of the same build loads on that machine. It
    /// cannot run what it compiles. The host's own target and
    /// `aarch64`/`x86_64` Linux are built in.
    pub fn for_target(triple: &str) -> wasmtime::Result<Self> {
        Self::build(Some(triple))
    }

    fn build(target: Option<&str>) -> wasmtime::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        if let Some(triple) = target {
            config.target(triple)?;
        }
        // For profiling: `perf report` then names the guest's functions.
        if PERF_MAP.load(std::sync::atomic::Ordering::Relaxed) {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        bindings::Transform::add_to_linker::<GuestState, HasSelf<GuestState>>(&mut linker, |s| s)?;
        let host = match target {
            None => {
                start_epoch_ticker(&engine);
                None
            }
            Some(_) => Some(Box::new(Self::build(None)?)),
        };
        Ok(TransformEngine {
            host,
            engine,
            linker,
            modules: Mutex::new(HashMap::new()),
        })
    }

    /// A short name for this engine's artifact format (16 hex digits of
    /// wasmtime's compatibility hash): artifacts made by engines with the same
    /// key load into each other, others do not. Part of the module cache's
    /// file names.
    pub fn compatibility_key(&self) -> String {
        use sha2::Digest as _;
        use std::hash::Hash as _;
        struct Sha(sha2::Sha256);
        impl std::hash::Hasher for Sha {
            fn write(&mut self, bytes: &[u8]) {
                self.0.update(bytes);
            }
            fn finish(&self) -> u64 {
                unreachable!("only the digest is read")
            }
        }
        let mut hasher = Sha(sha2::Sha256::new());
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        let digest = hasher.0.finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Compiles a component to an artifact that
    /// [`TransformEngine::load_artifact`] loads without compiling (for fast
    /// cold starts of deployments that ship artifacts).
    pub fn precompile(&self, name: &str, wasm: &[u8]) -> Result<Vec<u8>, LoadError> {
        let Some(host) = &self.host else {
            return self.compile(name, wasm).map(|(_, artifact)| artifact);
        };
        // Compiled for another machine: checked on this one first (it must
        // be a component of the contract), then compiled for the target.
        host.load_bytes(name, wasm)?;
        self.engine
            .precompile_component(wasm)
            .map_err(|e| LoadError::Invalid {
                module: name.to_owned(),
                reason: format!("{e:#}"),
            })
    }

    /// Compiles a component once, giving the loaded module and its artifact
    /// (for the module cache). Refuses what would not load, so a bad artifact
    /// never reaches a deploy or a cache.
    pub fn compile(
        &self,
        name: &str,
        wasm: &[u8],
    ) -> Result<(TransformModule, Vec<u8>), LoadError> {
        let module = self.load_bytes(name, wasm)?;
        let artifact = module
            .component
            .serialize()
            .map_err(|e| LoadError::Invalid {
                module: name.to_owned(),
                reason: format!("{e:#}"),
            })?;
        Ok((module, artifact))
    }

    /// Loads a `.wasm` component from a file, once per path for the life of
    /// the process. A precompiled artifact is refused
    /// ([`LoadError::Precompiled`]).
    pub fn load(&self, path: &Path) -> Result<Arc<TransformModule>, LoadError> {
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if let Some(module) = self.modules.lock().expect("module cache").get(&key) {
            return Ok(module.clone());
        }
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let name = module_name(path);
        let module = Arc::new(self.load_bytes(&name, &bytes)?);
        self.modules
            .lock()
            .expect("module cache")
            .insert(key, module.clone());
        Ok(module)
    }

    /// Whether `bytes` are a precompiled wasmtime artifact (native code)
    /// rather than WebAssembly.
    pub fn is_artifact(bytes: &[u8]) -> bool {
        Engine::detect_precompiled(bytes).is_some()
    }

    /// Compiles a `.wasm` component from bytes. Precompiled artifacts are
    /// refused ([`LoadError::Precompiled`]): they are native code, and only
    /// [`TransformEngine::load_artifact`] takes them.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<TransformModule, LoadError> {
        if Self::is_artifact(bytes) {
            return Err(LoadError::Precompiled {
                module: name.to_owned(),
            });
        }
        if let Some(reason) = not_a_component(bytes) {
            return Err(LoadError::Invalid {
                module: name.to_owned(),
                reason,
            });
        }
        let component = Component::new(&self.engine, bytes).map_err(|e| LoadError::Invalid {
            module: name.to_owned(),
            reason: format!("{e:#}"),
        })?;
        self.module(name, component)
    }

    /// Loads a precompiled artifact of [`TransformEngine::precompile`] (or
    /// [`TransformEngine::compile`]) without compiling it.
    ///
    /// # Safety
    ///
    /// An artifact is native machine code that wasmtime maps and runs without
    /// verifying it; whoever wrote its bytes runs code with the relay's
    /// credentials. Call this only for bytes that this relay (or its
    /// deployment) produced and that nobody else could write since: the
    /// relay's own module cache, a folder the deployment ships read-only, or
    /// a file the caller explicitly vouches for. Never for anything a team
    /// can replace without a redeploy, such as an S3 object.
    pub unsafe fn load_artifact(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<TransformModule, LoadError> {
        let invalid = |reason: String| LoadError::Invalid {
            module: name.to_owned(),
            reason,
        };
        match Engine::detect_precompiled(bytes) {
            Some(Precompiled::Component) => {}
            Some(Precompiled::Module) => {
                return Err(invalid(
                    "it is a precompiled core module, not a component".into(),
                ))
            }
            None => return Err(invalid("it is not a precompiled artifact".into())),
        }
        // SAFETY: the caller vouches for the bytes (see above); wasmtime
        // itself checks that they were made by a compatible engine.
        let component = unsafe { Component::deserialize(&self.engine, bytes) }
            .map_err(|e| invalid(format!("{e:#}")))?;
        self.module(name, component)
    }

    /// Advances the engine's epoch by one tick, as the ticker thread does
    /// every [`EPOCH_TICK`] (tests use it to play a machine that stalls the
    /// relay: epochs pass, the transform does not run).
    pub fn increment_epoch(&self) {
        self.engine.increment_epoch();
    }

    fn module(&self, name: &str, component: Component) -> Result<TransformModule, LoadError> {
        let (pre, indices) = self.check_shape(name, &component)?;
        Ok(TransformModule {
            name: name.to_owned(),
            engine: self.engine.clone(),
            component,
            pre,
            indices,
        })
    }

    /// Links a component against the contract: WIT imports other than `log`
    /// (WASI included) become traps, and the exports must match the world.
    fn check_shape(
        &self,
        name: &str,
        component: &Component,
    ) -> Result<
        (
            wasmtime::component::InstancePre<GuestState>,
            bindings::TransformIndices,
        ),
        LoadError,
    > {
        let wrong = |e: wasmtime::Error| LoadError::WrongShape {
            module: name.to_owned(),
            reason: format!("{e:#}"),
        };
        let mut linker = self.linker.clone();
        linker
            .define_unknown_imports_as_traps(component)
            .map_err(wrong)?;
        let pre = linker.instantiate_pre(component).map_err(wrong)?;
        let indices = bindings::TransformIndices::new(&pre).map_err(wrong)?;
        Ok((pre, indices))
    }
}

/// Why `bytes` cannot be a WebAssembly component, told from its header, with
/// how to make one; `None` when the header is a component's (the rest is
/// for wasmtime to judge).
fn not_a_component(bytes: &[u8]) -> Option<String> {
    const BUILD: &str = "build the transform with `cargo build --release --target wasm32-wasip2` \
                         (or `relay build`)";
    if !bytes.starts_with(b"\0asm") {
        let what = match std::str::from_utf8(&bytes[..bytes.len().min(64)]) {
            Ok(_) if !bytes.is_empty() => "text",
            _ if bytes.is_empty() => "an empty file",
            _ => "some other file",
        };
        return Some(format!(
            "it is {what}, not WebAssembly (a module starts with the bytes \\0asm); {BUILD}"
        ));
    }
    match bytes.get(4..8) {
        // A core module (version 1), as wasm32-unknown-unknown or wasm32-wasip1 builds make.
        Some([1, 0, 0, 0]) => Some(format!(
            "it is a core WebAssembly module, not a component; {BUILD}, or wrap it with \
             `wasm-tools component new`"
        )),
        _ => None,
    }
}

/// A module's name: the file stem, `_` written as `-`.
pub fn module_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().replace('_', "-"))
        .unwrap_or_else(|| path.display().to_string())
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is gone.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("relay-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .expect("spawn epoch ticker thread");
}

/// A compiled transform component, ready to instantiate.
pub struct TransformModule {
    name: String,
    engine: Engine,
    component: Component,
    pre: wasmtime::component::InstancePre<GuestState>,
    indices: bindings::TransformIndices,
}

/// A running instance: its store and its exports.
struct Live {
    store: Store<GuestState>,
    exports: bindings::Transform,
}

impl TransformModule {
    /// The module's name (its file stem), used in errors and logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates a sandboxed instance and hands it the table's settings (a JSON
    /// object text).
    pub fn instantiate(
        self: &Arc<Self>,
        settings: &str,
        limits: Limits,
    ) -> Result<TransformInstance, LoadError> {
        let log = Arc::new(Mutex::new(LogBudget::new()));
        let live = self
            .start(settings, limits, &log)
            .map_err(|reason| LoadError::Init {
                module: self.name.clone(),
                reason,
            })?;
        Ok(TransformInstance {
            module: self.clone(),
            settings: settings.to_owned(),
            limits,
            log,
            live: Some(live),
        })
    }

    /// A new store with the sandbox's limits, the instance in it, `init` run.
    fn start(
        &self,
        settings: &str,
        limits: Limits,
        log: &Arc<Mutex<LogBudget>>,
    ) -> Result<Live, TransformErrorKind> {
        let state = GuestState {
            module: self.name.clone(),
            sandbox: Sandbox::new(limits.memory_bytes),
            clock: CpuClock::new(limits),
            log: log.clone(),
            last_error: None,
            patch: None,
            asks_for_patch: false,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.sandbox);
        store.set_hostcall_fuel(output::lift_budget(limits));
        store.epoch_deadline_callback(|mut store| {
            Ok(match store.data_mut().clock.check() {
                Verdict::Continue(ticks) => UpdateDeadline::Continue(ticks),
                Verdict::Stop(_) => UpdateDeadline::Interrupt,
            })
        });
        begin_call(&mut store);
        let instantiated = self.pre.instantiate(&mut store);
        let instance = end_call(&mut store, None, instantiated, limits)?;
        let exports = self
            .indices
            .load(&mut store, &instance)
            .map_err(|e| TransformErrorKind::Trap(format!("{e:#}")))?;
        begin_call(&mut store);
        let result = exports.call_init(&mut store, settings);
        match end_call(&mut store, None, result, limits) {
            Ok(Ok(())) => Ok(Live { store, exports }),
            Ok(Err(e)) => Err(TransformErrorKind::Guest(guest_error(e))),
            Err(kind) => Err(kind),
        }
    }
}

/// What a guest's store holds: the module it runs, its resource limiter, its
/// CPU clock, its log budget (shared with the [`TransformInstance`], so that
/// a rebuilt store does not start a fresh one) and the last error it logged
/// (to explain a trap that follows).
pub(crate) struct GuestState {
    module: String,
    sandbox: Sandbox,
    clock: CpuClock,
    log: Arc<Mutex<LogBudget>>,
    last_error: Option<String>,
    /// The patch of the record in the current `transform` call, prepared
    /// before the call and handed over by the first `record-patch`.
    patch: Option<String>,
    /// Whether the guest has ever asked for a patch: only then is one
    /// prepared, so transforms that never ask cost nothing.
    asks_for_patch: bool,
}

impl GuestState {
    fn log_budget(&self) -> std::sync::MutexGuard<'_, LogBudget> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Arms the budgets of one call (instantiation, `init` or one record).
fn begin_call(store: &mut Store<GuestState>) {
    let state = store.data_mut();
    state.sandbox.exhausted = false;
    state.clock.start();
    state.last_error = None;
    let notice = state.log_budget().start_call();
    if let Some(notice) = notice {
        say(&state.module, None, notice);
    }
    store.set_epoch_deadline(CpuClock::FIRST_CHECK_TICKS);
}

/// Ends one call: reports dropped log lines, and turns a trap into its kind.
fn end_call<R>(
    store: &mut Store<GuestState>,
    record: Option<&str>,
    result: wasmtime::Result<R>,
    limits: Limits,
) -> Result<R, TransformErrorKind> {
    let notice = store.data().log_budget().end_call();
    if let Some(notice) = notice {
        say(&store.data().module, record, notice);
    }
    result.map_err(|e| classify_trap(e, store, limits))
}

/// Writes the notice about dropped guest log lines.
fn say(module: &str, record: Option<&str>, notice: Notice) {
    let caps = log::CAPS;
    match notice {
        Notice::Call(d) => tracing::warn!(
            module,
            record = record.unwrap_or("(init)"),
            dropped_lines = d.lines,
            dropped_bytes = d.bytes,
            "the transform logged more than its budget ({caps}): {} lines ({} bytes) were \
             dropped; lines dropped later in this invocation are counted in one line after it",
            d.lines,
            d.bytes
        ),
        Notice::Window(d) => tracing::warn!(
            module,
            dropped_lines = d.lines,
            dropped_bytes = d.bytes,
            "the transform logged more than its budget ({caps}): {} more lines ({} bytes) \
             were dropped in the last invocation (or 10 s)",
            d.lines,
            d.bytes
        ),
    }
}

impl wit::Host for GuestState {}

impl bindings::TransformImports for GuestState {
    fn log(&mut self, level: bindings::LogLevel, mut message: String) {
        use bindings::LogLevel as L;
        use tracing::Level;
        if matches!(level, L::Error) {
            let mut said = message.clone();
            log::cut(&mut said);
            self.last_error = Some(said);
        }
        let shown = match level {
            L::Trace => tracing::enabled!(Level::TRACE),
            L::Debug => tracing::enabled!(Level::DEBUG),
            L::Info => tracing::enabled!(Level::INFO),
            L::Warn | L::Error => tracing::enabled!(Level::WARN),
        };
        if !shown {
            return;
        }
        log::cut(&mut message);
        if !self.log_budget().admit(message.len()) {
            return;
        }
        let module = self.module.as_str();
        match level {
            L::Trace => tracing::trace!(module, "{message}"),
            L::Debug => tracing::debug!(module, "{message}"),
            L::Info => tracing::info!(module, "{message}"),
            L::Warn => tracing::warn!(module, "{message}"),
            L::Error => tracing::warn!(module, "transform logged an error: {message}"),
        }
    }

    /// `none` when nothing is prepared: outside a call, once taken, and on
    /// the guest's first ask (the SDK then diffs the texts itself).
    fn record_patch(&mut self) -> Option<String> {
        self.asks_for_patch = true;
        self.patch.take()
    }
}

/// One sandboxed instance of a module, configured for one table.
pub struct TransformInstance {
    module: Arc<TransformModule>,
    settings: String,
    limits: Limits,
    log: Arc<Mutex<LogBudget>>,
    /// `None` after a trap: the instance cannot be entered again and is
    /// rebuilt before the next record.
    live: Option<Live>,
}

impl TransformInstance {
    /// The module this instance runs.
    pub fn module(&self) -> &TransformModule {
        &self.module
    }

    /// Another instance of the same module with the same settings and
    /// limits, sharing this one's log budget: a pool of them maps the
    /// records of one batch on several threads.
    pub fn sibling(&self) -> Result<TransformInstance, LoadError> {
        let live = self
            .module
            .start(&self.settings, self.limits, &self.log)
            .map_err(|reason| LoadError::Init {
                module: self.module.name.clone(),
                reason,
            })?;
        Ok(TransformInstance {
            module: self.module.clone(),
            settings: self.settings.clone(),
            limits: self.limits,
            log: self.log.clone(),
            live: Some(live),
        })
    }

    /// Starts a new log budget window. Meant to be called at the start of
    /// each invocation, so that a transform may write
    /// [`log::PER_WINDOW_LINES`] lines per invocation; an instance nobody
    /// resets gets a new window every [`log::MAX_WINDOW`]. Reports the lines
    /// the last window dropped, if any were not reported yet.
    pub fn reset_log_budget(&mut self) {
        let notice = self.log.lock().unwrap_or_else(|e| e.into_inner()).reset();
        if let Some(notice) = notice {
            say(&self.module.name, None, notice);
        }
    }

    /// Maps one record to its events under the instance's limits.
    pub fn transform(&mut self, record: &Record) -> Result<Vec<Event>, TransformError> {
        self.run(record).map_err(|kind| TransformError {
            module: self.module.name.clone(),
            sequence_number: record.sequence_number.clone(),
            kind,
        })
    }

    fn run(&mut self, record: &Record) -> Result<Vec<Event>, TransformErrorKind> {
        let limits = self.limits;
        let mut live = match self.live.take() {
            Some(live) => live,
            None => self.module.start(&self.settings, limits, &self.log)?,
        };
        begin_call(&mut live.store);
        let state = live.store.data_mut();
        state.patch = state.asks_for_patch.then(|| {
            relay_record::image_patch(record.old_image.as_ref(), record.new_image.as_ref())
        });
        let keys = record.keys_json();
        let result = live
            .exports
            .call_transform(&mut live.store, to_wit(record, &keys));
        live.store.data_mut().patch = None;
        // On a trap the store is dropped here: it is never re-entered.
        let result = end_call(
            &mut live.store,
            Some(&record.sequence_number),
            result,
            limits,
        )?;
        self.live = Some(live);
        match result {
            Ok(events) => output::validate(events, limits),
            Err(e) => Err(TransformErrorKind::Guest(guest_error(e))),
        }
    }
}

fn classify_trap(
    error: wasmtime::Error,
    store: &mut Store<GuestState>,
    limits: Limits,
) -> TransformErrorKind {
    let state = store.data();
    if state.sandbox.exhausted {
        return TransformErrorKind::OutOfMemory {
            cap_bytes: limits.memory_bytes,
        };
    }
    match state.clock.expired {
        Some(Expired::Cpu) => {
            return TransformErrorKind::Timeout {
                budget_ms: limits.cpu_budget_ms,
            }
        }
        Some(Expired::Wall { cpu_used }) => {
            return TransformErrorKind::Stalled {
                wall_ms: limits.wall_budget().as_millis() as u64,
                cpu_ms: cpu_used.as_millis() as u64,
                budget_ms: limits.cpu_budget_ms,
            }
        }
        None => {}
    }
    if let Some(Trap::Interrupt) = error.downcast_ref::<Trap>() {
        return TransformErrorKind::Timeout {
            budget_ms: limits.cpu_budget_ms,
        };
    }
    let mut reason = format!("{error:#}");
    if let Some(what) = resource_count(&reason) {
        return TransformErrorKind::TooManyResources(what);
    }
    if reason.contains("too much data is being copied between the host and the guest") {
        return TransformErrorKind::OutputTooLarge(format!(
            "its result is larger than the output caps allow ({} bytes and {} events per \
             record): the relay stopped copying it out after {} bytes",
            limits.max_output_bytes,
            limits.max_events,
            output::lift_budget(limits)
        ));
    }
    if reason.contains("unknown import") {
        reason.push_str(" (transforms are granted no files, sockets, environment or clock)");
    }
    if let Some(said) = &state.last_error {
        reason.push_str("; the transform logged: ");
        reason.push_str(said);
    }
    TransformErrorKind::Trap(reason)
}

/// Wasmtime's "resource limit exceeded: instance count too high at 33", said
/// with the sandbox's limit.
fn resource_count(reason: &str) -> Option<String> {
    let rest = reason.split("resource limit exceeded: ").nth(1)?;
    let (what, max) = match rest.split(" count too high").next()? {
        "instance" => ("core instances", MAX_INSTANCES),
        "memory" => ("linear memories", MAX_MEMORIES),
        "table" => ("tables", MAX_TABLES),
        _ => return None,
    };
    Some(format!(
        "it creates more than {max} {what}, the most a transform instance may have"
    ))
}

fn guest_error(e: wit::TransformError) -> String {
    match e {
        wit::TransformError::InvalidRecord(m) => format!("invalid record: {m}"),
        wit::TransformError::InvalidSettings(m) => format!("invalid settings: {m}"),
        wit::TransformError::Failed(m) => m,
    }
}

fn to_wit<'a>(record: &'a Record, keys: &'a str) -> wit::StreamRecord<'a> {
    wit::StreamRecord {
        table: &record.table,
        event_source_arn: &record.event_source_arn,
        operation: match record.operation {
            Operation::Insert => wit::Operation::Insert,
            Operation::Modify => wit::Operation::Modify,
            Operation::Remove => wit::Operation::Remove,
        },
        keys,
        old_image: record.old_image.as_ref().map(relay_record::Image::json),
        new_image: record.new_image.as_ref().map(relay_record::Image::json),
        sequence_number: &record.sequence_number,
        event_id: &record.event_id,
        approximate_creation_time_ms: record.approximate_creation_time_ms,
        ttl_delete: record.ttl_delete,
    }
}
