//! The transform stage: runs a table's WebAssembly component on each record.
//!
//! [`TransformEngine`] owns the wasmtime engine (one per process) and its
//! epoch ticker; [`TransformModule`] is a component compiled or loaded once;
//! [`TransformInstance`] is one sandboxed instance of a module with a table's
//! settings, reused across records and rebuilt after a trap.

mod error;
mod limits;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use relay_sdk::{Operation, Record};
use serde_json::value::RawValue;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Precompiled, Store, Trap};

pub use error::{LoadError, TransformError, TransformErrorKind};
use limits::MemoryCap;
pub use limits::{Limits, EPOCH_TICK};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../guest-sdk/wit",
        world: "transform",
    });
}

use bindings::relay::transform::types as wit;

/// Longest guest log line kept; longer ones are cut.
const MAX_LOG_LINE: usize = 4096;

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
/// linker that grants guests nothing but the `log` import.
pub struct TransformEngine {
    engine: Engine,
    linker: Linker<GuestState>,
    modules: Mutex<HashMap<PathBuf, Arc<TransformModule>>>,
}

impl TransformEngine {
    /// Creates the engine and starts its epoch ticker thread.
    ///
    /// The configuration is fixed: artifacts precompiled by
    /// [`TransformEngine::precompile`] load only into an engine made here.
    pub fn new() -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // For profiling: `perf report` then names the guest's functions.
        if std::env::var_os("RELAY_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        bindings::Transform::add_to_linker::<GuestState, HasSelf<GuestState>>(&mut linker, |s| s)?;
        start_epoch_ticker(&engine);
        Ok(TransformEngine {
            engine,
            linker,
            modules: Mutex::new(HashMap::new()),
        })
    }

    /// Compiles a component to an artifact that [`TransformEngine::load`]
    /// loads without compiling (for fast Lambda cold starts).
    pub fn precompile(&self, name: &str, wasm: &[u8]) -> Result<Vec<u8>, LoadError> {
        // Refuse what would not load, so a bad artifact never reaches a deploy.
        let component = Component::new(&self.engine, wasm).map_err(|e| LoadError::Invalid {
            module: name.to_owned(),
            reason: format!("{e:#}"),
        })?;
        self.check_shape(name, &component)?;
        self.engine
            .precompile_component(wasm)
            .map_err(|e| LoadError::Invalid {
                module: name.to_owned(),
                reason: format!("{e:#}"),
            })
    }

    /// Loads a module from a `.wasm` component or a precompiled artifact,
    /// once per path for the life of the process.
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

    /// Loads a module from bytes: a component or an artifact of
    /// [`TransformEngine::precompile`].
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<TransformModule, LoadError> {
        let invalid = |e: wasmtime::Error| LoadError::Invalid {
            module: name.to_owned(),
            reason: format!("{e:#}"),
        };
        let component = match Engine::detect_precompiled(bytes) {
            // SAFETY: wasmtime checks that the artifact was made by a
            // compatible engine; its code is trusted as much as the module
            // it was compiled from, and only `relay compile` produces them.
            Some(Precompiled::Component) => {
                unsafe { Component::deserialize(&self.engine, bytes) }.map_err(invalid)?
            }
            Some(Precompiled::Module) => {
                return Err(LoadError::Invalid {
                    module: name.to_owned(),
                    reason: "it is a precompiled core module, not a component".into(),
                })
            }
            None => Component::new(&self.engine, bytes).map_err(invalid)?,
        };
        let pre = self.check_shape(name, &component)?;
        Ok(TransformModule {
            name: name.to_owned(),
            engine: self.engine.clone(),
            pre,
        })
    }

    /// Links a component against the contract: WIT imports other than `log`
    /// (WASI included) become traps, and the exports must match the world.
    fn check_shape(
        &self,
        name: &str,
        component: &Component,
    ) -> Result<bindings::TransformPre<GuestState>, LoadError> {
        let wrong = |e: wasmtime::Error| LoadError::WrongShape {
            module: name.to_owned(),
            reason: format!("{e:#}"),
        };
        let mut linker = self.linker.clone();
        linker
            .define_unknown_imports_as_traps(component)
            .map_err(wrong)?;
        let pre = linker.instantiate_pre(component).map_err(wrong)?;
        bindings::TransformPre::new(pre).map_err(wrong)
    }
}

/// A module's name: the file stem, `_` written as `-`.
pub(crate) fn module_name(path: &Path) -> String {
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
    pre: bindings::TransformPre<GuestState>,
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
        let (store, bindings) = self
            .start(settings, limits)
            .map_err(|reason| LoadError::Init {
                module: self.name.clone(),
                reason,
            })?;
        Ok(TransformInstance {
            module: self.clone(),
            settings: settings.to_owned(),
            limits,
            live: Some((store, bindings)),
        })
    }

    fn start(
        &self,
        settings: &str,
        limits: Limits,
    ) -> Result<(Store<GuestState>, bindings::Transform), TransformErrorKind> {
        let state = GuestState {
            module: self.name.clone(),
            memory: MemoryCap::new(limits.memory_bytes),
            last_error: None,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_epoch_deadline(limits.deadline_ticks());
        let bindings = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| classify_trap(e, &mut store, limits))?;
        store.set_epoch_deadline(limits.deadline_ticks());
        match bindings.call_init(&mut store, settings) {
            Ok(Ok(())) => Ok((store, bindings)),
            Ok(Err(e)) => Err(TransformErrorKind::Guest(guest_error(e))),
            Err(e) => Err(classify_trap(e, &mut store, limits)),
        }
    }
}

/// What a guest's store holds: the module it runs, its memory cap and the
/// last error it logged (to explain a trap that follows).
pub(crate) struct GuestState {
    module: String,
    memory: MemoryCap,
    last_error: Option<String>,
}

impl wit::Host for GuestState {}

impl bindings::TransformImports for GuestState {
    fn log(&mut self, level: bindings::LogLevel, mut message: String) {
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let module = self.module.as_str();
        use bindings::LogLevel as L;
        match level {
            L::Trace => tracing::trace!(module, "{message}"),
            L::Debug => tracing::debug!(module, "{message}"),
            L::Info => tracing::info!(module, "{message}"),
            L::Warn => tracing::warn!(module, "{message}"),
            L::Error => {
                tracing::warn!(module, "transform logged an error: {message}");
                self.last_error = Some(message);
            }
        }
    }
}

/// One sandboxed instance of a module, configured for one table.
pub struct TransformInstance {
    module: Arc<TransformModule>,
    settings: String,
    limits: Limits,
    /// `None` after a trap: the instance cannot be entered again and is
    /// rebuilt before the next record.
    live: Option<(Store<GuestState>, bindings::Transform)>,
}

impl TransformInstance {
    /// The module this instance runs.
    pub fn module(&self) -> &TransformModule {
        &self.module
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
        let (mut store, bindings) = match self.live.take() {
            Some(live) => live,
            None => self.module.start(&self.settings, limits)?,
        };
        store.data_mut().last_error = None;
        store.set_epoch_deadline(limits.deadline_ticks());
        match bindings.call_transform(&mut store, &to_wit(record)) {
            Ok(result) => {
                self.live = Some((store, bindings));
                match result {
                    Ok(events) => validate(events, limits),
                    Err(e) => Err(TransformErrorKind::Guest(guest_error(e))),
                }
            }
            // The store is dropped here: a trapped instance is never re-entered.
            Err(e) => Err(classify_trap(e, &mut store, limits)),
        }
    }
}

fn classify_trap(
    error: wasmtime::Error,
    store: &mut Store<GuestState>,
    limits: Limits,
) -> TransformErrorKind {
    let state = store.data();
    if state.memory.exhausted {
        return TransformErrorKind::OutOfMemory {
            cap_bytes: limits.memory_bytes,
        };
    }
    if let Some(Trap::Interrupt) = error.downcast_ref::<Trap>() {
        return TransformErrorKind::Timeout {
            budget_ms: limits.cpu_budget_ms,
        };
    }
    let mut reason = format!("{error:#}");
    if reason.contains("unknown import") {
        reason.push_str(" (transforms are granted no files, sockets, environment or clock)");
    }
    if let Some(said) = &state.last_error {
        reason.push_str("; the transform logged: ");
        reason.push_str(said);
    }
    TransformErrorKind::Trap(reason)
}

fn guest_error(e: wit::TransformError) -> String {
    match e {
        wit::TransformError::InvalidRecord(m) => format!("invalid record: {m}"),
        wit::TransformError::InvalidSettings(m) => format!("invalid settings: {m}"),
        wit::TransformError::Failed(m) => m,
    }
}

fn validate(events: Vec<wit::Event>, limits: Limits) -> Result<Vec<Event>, TransformErrorKind> {
    if events.len() > limits.max_events {
        return Err(TransformErrorKind::OutputTooLarge(format!(
            "{} events, the cap is {}",
            events.len(),
            limits.max_events
        )));
    }
    let total: usize = events.iter().map(|e| e.body.len()).sum();
    if total > limits.max_output_bytes {
        return Err(TransformErrorKind::OutputTooLarge(format!(
            "{total} bytes of event bodies, the cap is {}",
            limits.max_output_bytes
        )));
    }
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            if e.event_type.trim().is_empty() {
                return Err(TransformErrorKind::BadOutput(format!(
                    "event {i} has an empty event type"
                )));
            }
            if e.key.as_deref().is_some_and(str::is_empty) {
                return Err(TransformErrorKind::BadOutput(format!(
                    "event {i} has an empty key"
                )));
            }
            let body = RawValue::from_string(e.body).map_err(|err| {
                TransformErrorKind::BadOutput(format!("event {i} body is not JSON: {err}"))
            })?;
            if !body.get().starts_with('{') {
                return Err(TransformErrorKind::BadOutput(format!(
                    "event {i} body is not a JSON object"
                )));
            }
            Ok(Event {
                event_type: e.event_type,
                body,
                key: e.key,
            })
        })
        .collect()
}

fn to_wit(record: &Record) -> wit::StreamRecord {
    wit::StreamRecord {
        table: record.table.clone(),
        event_source_arn: record.event_source_arn.clone(),
        operation: match record.operation {
            Operation::Insert => wit::Operation::Insert,
            Operation::Modify => wit::Operation::Modify,
            Operation::Remove => wit::Operation::Remove,
        },
        keys: record.keys.to_string(),
        old_image: record
            .old_image
            .as_ref()
            .map(|image| image.json().to_owned()),
        new_image: record
            .new_image
            .as_ref()
            .map(|image| image.json().to_owned()),
        sequence_number: record.sequence_number.clone(),
        event_id: record.event_id.clone(),
        approximate_creation_time_ms: record.approximate_creation_time_ms,
        ttl_delete: record.ttl_delete,
    }
}
