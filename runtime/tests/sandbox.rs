//! The transform sandbox, in pairs: each limit obeyed, then violated.
//!
//! The `hostile` guest (tests/guests/hostile) misbehaves on request: its
//! settings, or a record's `mode` attribute, pick what it does. The
//! components of `hostile_wat/` are written by hand, for what Rust cannot express:
//! many memories, many core instances, tables, output handed over many
//! times. Each attack ends in its named error, and the same instance then
//! serves the next record.

mod hostile_wat;
use std::sync::{Arc, Mutex};

use relay::transform::{
    Limits, LoadError, TransformEngine, TransformErrorKind, TransformInstance, TransformModule,
};
use relay_record::{Operation, Record};
use serde_json::json;

fn engine() -> &'static TransformEngine {
    static ENGINE: std::sync::OnceLock<TransformEngine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| TransformEngine::new().expect("engine"))
}

fn hostile() -> Arc<TransformModule> {
    engine()
        .load(&relay_testkit::guest("hostile"))
        .expect("hostile guest loads")
}

fn instance(limits: Limits) -> TransformInstance {
    hostile()
        .instantiate(r#"{"mode":"ok"}"#, limits)
        .expect("hostile guest accepts its settings")
}

fn record(mode: &str) -> Record {
    Record {
        sequence_number: "4200000000000000000001".into(),
        ..relay_record::testing::record(
            Operation::Insert,
            json!({"order_number": "ORD-1"}),
            None,
            Some(json!({"order_number": "ORD-1", "mode": mode})),
        )
    }
}

fn fails_with(instance: &mut TransformInstance, mode: &str) -> TransformErrorKind {
    let err = instance
        .transform(&record(mode))
        .expect_err("the transform must fail");
    assert_eq!(err.module, "hostile");
    assert_eq!(err.sequence_number, "4200000000000000000001");
    assert!(
        err.to_string().contains("hostile") && err.to_string().contains("4200000000000000000001"),
        "the message names module and record: {err}"
    );
    err.kind
}

#[test]
fn well_behaved_record_produces_its_event() {
    let mut instance = instance(Limits::default());
    let events = instance.transform(&record("ok")).expect("ok mode succeeds");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "hostile.ok");
    let body: serde_json::Value = serde_json::from_str(events[0].body.get()).unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(body["metadata"]["eid"], relay_record::eid(&record("ok"), 0));
}

#[test]
fn infinite_loop_stops_at_the_cpu_budget() {
    let limits = Limits {
        cpu_budget_ms: 30,
        ..Limits::default()
    };
    let mut instance = instance(limits);
    // Obeyed: a normal record fits the same small budget.
    instance.transform(&record("ok")).expect("ok within budget");
    // Violated.
    let kind = fails_with(&mut instance, "loop");
    assert_eq!(kind, TransformErrorKind::Timeout { budget_ms: 30 });
    // The trapped instance is rebuilt for the next record.
    instance
        .transform(&record("ok"))
        .expect("the instance recovers after a timeout");
}

#[test]
fn memory_bomb_hits_the_cap() {
    let mut roomy = instance(Limits {
        memory_bytes: 32 << 20,
        ..Limits::default()
    });
    roomy
        .transform(&record("alloc-small"))
        .expect("4 MiB fits a 32 MiB cap");
    let kind = fails_with(&mut roomy, "alloc");
    assert_eq!(
        kind,
        TransformErrorKind::OutOfMemory {
            cap_bytes: 32 << 20
        }
    );

    let mut tight = instance(Limits {
        memory_bytes: 3 << 20,
        ..Limits::default()
    });
    let kind = fails_with(&mut tight, "alloc-small");
    assert_eq!(kind, TransformErrorKind::OutOfMemory { cap_bytes: 3 << 20 });
    tight
        .transform(&record("ok"))
        .expect("the instance recovers after running out of memory");
}

#[test]
fn huge_output_is_rejected() {
    // Building 20 MiB takes a while; this pair is about the output cap.
    let cpu_budget_ms = 20_000;
    let mut generous = instance(Limits {
        cpu_budget_ms,
        memory_bytes: 128 << 20,
        max_output_bytes: 32 << 20,
        ..Limits::default()
    });
    let events = generous
        .transform(&record("huge"))
        .expect("20 MiB passes a 32 MiB output cap");
    assert!(events[0].body.get().len() > 20 << 20);

    let mut capped = instance(Limits {
        cpu_budget_ms,
        memory_bytes: 128 << 20,
        ..Limits::default()
    });
    let kind = fails_with(&mut capped, "huge");
    assert!(
        matches!(kind, TransformErrorKind::OutputTooLarge(ref m) if m.contains("bytes")),
        "{kind:?}"
    );
}

#[test]
fn too_many_events_are_rejected() {
    let cpu_budget_ms = 20_000;
    let mut generous = instance(Limits {
        cpu_budget_ms,
        max_events: 200_000,
        max_output_bytes: 64 << 20,
        ..Limits::default()
    });
    let events = generous.transform(&record("many")).expect("under the cap");
    assert_eq!(events.len(), 100_000);

    let mut capped = instance(Limits {
        cpu_budget_ms,
        ..Limits::default()
    });
    let kind = fails_with(&mut capped, "many");
    assert!(
        // 100,000 events do not even fit what the relay copies out of a
        // guest under a cap of 1,000.
        matches!(kind, TransformErrorKind::OutputTooLarge(ref m) if m.contains("1000 events per record")),
        "{kind:?}"
    );
}

#[test]
fn guest_cannot_read_files_clock_or_environment() {
    let mut instance = instance(Limits::default());
    for mode in ["read-file", "clock", "env"] {
        let kind = fails_with(&mut instance, mode);
        match kind {
            TransformErrorKind::Trap(reason) => assert!(
                reason.contains("granted no files"),
                "{mode}: the trap explains the missing capability: {reason}"
            ),
            other => panic!("{mode}: expected a trap, got {other:?}"),
        }
        // Obeyed: the same instance still maps a plain record.
        instance.transform(&record("ok")).expect("recovers");
    }
}

#[test]
fn guest_panic_is_a_trap_with_its_message() {
    let mut instance = instance(Limits::default());
    match fails_with(&mut instance, "panic") {
        TransformErrorKind::Trap(reason) => {
            assert!(reason.contains("hostile panic"), "{reason}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn malformed_event_body_is_rejected() {
    let mut instance = instance(Limits::default());
    let kind = fails_with(&mut instance, "garbage");
    assert!(
        matches!(kind, TransformErrorKind::BadOutput(ref m) if m.contains("not JSON")),
        "{kind:?}"
    );
}

#[test]
fn guest_error_is_reported_as_such() {
    let mut instance = instance(Limits::default());
    let kind = fails_with(&mut instance, "error");
    assert_eq!(kind, TransformErrorKind::Guest("told to fail".into()));
}

#[test]
fn bad_settings_are_refused_at_start() {
    let err = hostile()
        .instantiate(r#"{"mode": 42}"#, Limits::default())
        .err()
        .expect("a number is not a mode");
    assert!(matches!(err, LoadError::Init { .. }), "{err:?}");
    assert!(err.to_string().contains("hostile"), "{err}");
}

#[test]
fn module_with_wrong_exports_is_refused_at_load() {
    // A valid component that implements nothing of the contract.
    let empty = wat::parse_str("(component)").expect("valid component text");
    let err = engine()
        .load_bytes("empty", &empty)
        .err()
        .expect("must be refused");
    assert!(matches!(err, LoadError::WrongShape { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("empty") && message.contains("relay:transform@0.2.0"),
        "{message}"
    );

    // Not WebAssembly at all.
    let err = engine()
        .load_bytes("text", b"hello")
        .err()
        .expect("must be refused");
    assert!(matches!(err, LoadError::Invalid { .. }), "{err:?}");
}

#[test]
fn precompiled_artifact_loads_and_behaves_like_the_component() {
    let wasm = std::fs::read(relay_testkit::guest("hostile")).unwrap();
    let artifact = engine().precompile("hostile", &wasm).expect("precompiles");
    // SAFETY: compiled just now, by this process.
    let module = Arc::new(unsafe { engine().load_artifact("hostile", &artifact) }.expect("loads"));
    let mut instance = module
        .instantiate(r#"{"mode":"ok"}"#, Limits::default())
        .unwrap();
    assert_eq!(instance.transform(&record("ok")).unwrap().len(), 1);

    // An artifact from another engine configuration is a clean load error.
    let other = wasmtime::Engine::default();
    let foreign = other.precompile_component(&wasm).unwrap();
    // SAFETY: compiled just now, by this process (with another engine).
    let err = unsafe { engine().load_artifact("hostile", &foreign) }
        .err()
        .expect("must be refused");
    assert!(matches!(err, LoadError::Invalid { .. }), "{err:?}");
}

#[test]
fn precompiled_artifacts_load_only_through_the_unsafe_door() {
    let wasm = std::fs::read(relay_testkit::guest("hostile")).unwrap();
    let artifact = engine().precompile("hostile", &wasm).expect("precompiles");
    assert!(TransformEngine::is_artifact(&artifact));
    assert!(!TransformEngine::is_artifact(&wasm));
    let err = engine()
        .load_bytes("hostile", &artifact)
        .err()
        .expect("an artifact is native code, not WebAssembly");
    assert!(matches!(err, LoadError::Precompiled { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("hostile is a precompiled artifact, not WebAssembly"),
        "{err}"
    );
    // The door for what the caller vouches for refuses WebAssembly.
    let err = unsafe { engine().load_artifact("hostile", &wasm) }
        .err()
        .expect("not an artifact");
    assert!(
        err.to_string().contains("not a precompiled artifact"),
        "{err}"
    );
}

// ---- Hand-written hostile components ----------------------------------

const MIB: usize = 1 << 20;

/// A record of `table`, with the usual sequence number.
fn record_of(table: &str) -> Record {
    Record {
        table: table.into(),
        ..record("ok")
    }
}

fn wat_module(name: &str, bytes: &[u8]) -> Arc<TransformModule> {
    Arc::new(
        engine()
            .load_bytes(name, bytes)
            .unwrap_or_else(|e| panic!("{name} loads: {e}")),
    )
}

/// The attack's error on a record of table `orders`; then the instance
/// serves a record of table `ok` again.
fn wat_attack(name: &str, bytes: &[u8], limits: Limits) -> TransformErrorKind {
    let mut instance = wat_module(name, bytes)
        .instantiate("{}", limits)
        .unwrap_or_else(|e| panic!("{name} starts: {e}"));
    let ok = instance.transform(&record_of("ok")).expect("ok before");
    assert_eq!(ok.len(), 1);
    let err = instance
        .transform(&record_of("orders"))
        .expect_err("the attack must fail");
    assert_eq!(err.module, name);
    assert_eq!(err.sequence_number, "4200000000000000000001");
    let events = instance
        .transform(&record_of("ok"))
        .expect("the instance serves the next record");
    assert_eq!(events[0].event_type, "wat.ok");
    err.kind
}

/// The attack succeeds (the instance stays within its limits).
fn wat_obeys(name: &str, bytes: &[u8], limits: Limits) {
    let mut instance = wat_module(name, bytes)
        .instantiate("{}", limits)
        .unwrap_or_else(|e| panic!("{name} starts: {e}"));
    instance
        .transform(&record_of("orders"))
        .unwrap_or_else(|e| panic!("{name} within its limits: {e}"));
}

/// The module cannot even be instantiated.
fn wat_refused(name: &str, bytes: &[u8]) -> TransformErrorKind {
    match wat_module(name, bytes).instantiate("{}", Limits::default()) {
        Err(LoadError::Init { module, reason }) => {
            assert_eq!(module, name);
            reason
        }
        Err(other) => panic!("{name}: expected an init error, got {other}"),
        Ok(_) => panic!("{name}: must be refused"),
    }
}

fn out_of_memory() -> TransformErrorKind {
    TransformErrorKind::OutOfMemory {
        cap_bytes: 32 << 20,
    }
}

#[test]
fn the_memory_cap_holds_across_all_memories_of_an_instance() {
    // Obeyed: 8 memories, 7 of them grown by 3 MiB (22 MiB in all).
    wat_obeys(
        "memories",
        &hostile_wat::many_memories(8, 48),
        Limits::default(),
    );
    // Violated: each of the 7 grown by 30 MiB, each under the cap on its own.
    let kind = wat_attack(
        "memories",
        &hostile_wat::many_memories(8, hostile_wat::PAGES_30_MIB),
        Limits::default(),
    );
    assert_eq!(kind, out_of_memory());
    assert!(
        kind.to_string()
            .contains("memory cap of 33554432 bytes (all its memories and tables together)"),
        "{kind}"
    );
}

#[test]
fn the_memory_cap_holds_across_core_instances() {
    // Obeyed: 7 more core instances, each growing its memory by 3 MiB.
    wat_obeys(
        "instances",
        &hostile_wat::many_instances(7, 48),
        Limits::default(),
    );
    // Violated: by 30 MiB each.
    let kind = wat_attack(
        "instances",
        &hostile_wat::many_instances(7, hostile_wat::PAGES_30_MIB),
        Limits::default(),
    );
    assert_eq!(kind, out_of_memory());
}

#[test]
fn too_many_memories_instances_or_tables_are_refused_when_instantiated() {
    // Obeyed: the most of each.
    wat_obeys(
        "memories",
        &hostile_wat::many_memories(8, 1),
        Limits::default(),
    );
    wat_obeys(
        "instances",
        &hostile_wat::many_empty_instances(31),
        Limits::default(),
    );
    wat_obeys(
        "tables",
        &hostile_wat::many_tables(16, 1),
        Limits::default(),
    );
    // Violated.
    for (name, bytes, says) in [
        (
            "memories",
            hostile_wat::many_memories(20, 1),
            "more than 8 linear memories",
        ),
        (
            "instances",
            hostile_wat::many_instances(20, 1),
            "more than 8 linear memories",
        ),
        (
            "instances",
            hostile_wat::many_empty_instances(40),
            "more than 32 core instances",
        ),
        (
            "tables",
            hostile_wat::many_tables(50, 1),
            "more than 16 tables",
        ),
    ] {
        match wat_refused(name, &bytes) {
            TransformErrorKind::TooManyResources(what) => {
                assert!(what.contains(says), "{name}: {what}")
            }
            other => panic!("{name}: expected too-many-resources, got {other:?}"),
        }
    }
}

#[test]
fn tables_count_against_the_memory_cap() {
    // Obeyed: 4 tables of 500,000 elements (4 MB each on 64-bit).
    wat_obeys(
        "tables",
        &hostile_wat::many_tables(4, 500_000),
        Limits::default(),
    );
    // Violated: 4 tables of 2 million elements (16 MB each).
    let kind = wat_attack(
        "tables",
        &hostile_wat::many_tables(4, 2_000_000),
        Limits::default(),
    );
    assert_eq!(kind, out_of_memory());
}

#[test]
fn a_memory_declared_bigger_than_the_cap_is_refused_when_instantiated() {
    wat_obeys(
        "big",
        &hostile_wat::big_initial_memory(256),
        Limits::default(),
    ); // 16 MiB
    assert_eq!(
        wat_refused("big", &hostile_wat::big_initial_memory(1024)),
        out_of_memory()
    ); // 64 MiB
}

#[test]
fn output_handed_over_many_times_is_refused_before_it_is_copied() {
    // Obeyed: 3 events naming the same 1 KiB body.
    let mut instance = wat_module("aliased", &hostile_wat::aliased_output(3, 1024))
        .instantiate("{}", Limits::default())
        .unwrap();
    let events = instance.transform(&record_of("orders")).unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].body.get().len(), 1024);
    // Violated: 600 events naming the same 1 MiB body, 1 MiB of guest memory
    // for 600 MiB of output: refused while being copied out, not after.
    let kind = wat_attack(
        "aliased",
        &hostile_wat::aliased_output(600, MIB as u32),
        Limits::default(),
    );
    match kind {
        TransformErrorKind::OutputTooLarge(m) => {
            assert!(m.contains("stopped copying it out"), "{m}")
        }
        other => panic!("expected output-too-large, got {other:?}"),
    }
    // A million empty-ish events: refused by count while being copied out.
    let kind = wat_attack(
        "aliased",
        &hostile_wat::aliased_output(1_000_000, 8),
        Limits::default(),
    );
    assert!(
        matches!(kind, TransformErrorKind::OutputTooLarge(_)),
        "{kind:?}"
    );
}

// ---- Event types ------------------------------------------------------

fn named(event_type: &str) -> Record {
    Record {
        sequence_number: "4200000000000000000001".into(),
        ..relay_record::testing::record(
            Operation::Insert,
            json!({"order_number": "ORD-1"}),
            None,
            Some(json!({"order_number": "ORD-1", "mode": "event-type", "event_type": event_type})),
        )
    }
}

#[test]
fn event_types_must_be_nakadi_names() {
    let mut instance = instance(Limits::default());
    // Obeyed.
    let events = instance
        .transform(&named("order.status-changed_v2"))
        .expect("a Nakadi name");
    assert_eq!(events[0].event_type, "order.status-changed_v2");
    // Violated: a path traversal, and other names that are no Nakadi names.
    for bad in [
        "a/../../admin?q=",
        "..",
        "order changed",
        "",
        "ordér.changed",
    ] {
        let err = instance
            .transform(&named(bad))
            .expect_err("refused before it reaches a URL");
        assert_eq!(err.sequence_number, "4200000000000000000001");
        match &err.kind {
            TransformErrorKind::BadOutput(m) => assert!(
                m.contains(&format!("event 0 has the event type {bad:?}")) && m.contains("e.g."),
                "{m}"
            ),
            other => panic!("{bad:?}: expected bad-output, got {other:?}"),
        }
        assert_eq!(err.kind.label(), "bad-output");
        instance
            .transform(&record("ok"))
            .expect("serves the next record");
    }
}

// ---- Guest logging ----------------------------------------------------

/// Log lines written while `f` runs on this thread, as JSON objects.
fn logged(f: impl FnOnce()) -> Vec<serde_json::Value> {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    // The relay's own format: message and fields at the top level.
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).expect("JSON log line"))
        .collect()
}

fn flood(lines: u64) -> Record {
    Record {
        sequence_number: "4200000000000000000001".into(),
        ..relay_record::testing::record(
            Operation::Insert,
            json!({"order_number": "ORD-1"}),
            None,
            Some(json!({"order_number": "ORD-1", "mode": "log-flood", "lines": lines})),
        )
    }
}

fn message(line: &serde_json::Value) -> &str {
    line["message"].as_str().unwrap_or_default()
}

#[test]
fn guest_logging_is_capped_per_record_and_says_what_it_dropped() {
    let limits = Limits {
        cpu_budget_ms: 20_000,
        ..Limits::default()
    };
    let mut instance = instance(limits);
    // Obeyed: a few lines are all written.
    let lines = logged(|| {
        instance.transform(&flood(3)).expect("logs and maps");
    });
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(message(&lines[0]).starts_with("flood flood"));
    assert_eq!(lines[0]["module"], "hostile");
    // Violated: 11,829 lines of 4 KiB (the reported flood) in one record.
    let lines = logged(|| {
        instance.transform(&flood(11_829)).expect("logs and maps");
    });
    let flood_lines = lines
        .iter()
        .filter(|l| message(l).starts_with("flood"))
        .count();
    assert_eq!(flood_lines, 4, "16 KiB per record: four 4 KiB lines");
    let notice = lines.last().unwrap();
    assert!(
        message(notice).contains("logged more than its budget")
            && message(notice).contains("11825 lines"),
        "{notice}"
    );
    assert_eq!(notice["record"], "4200000000000000000001");
    assert_eq!(notice["dropped_lines"], 11_825);
    let bytes: usize = lines.iter().map(|l| l.to_string().len()).sum();
    assert!(bytes < 32 << 10, "{bytes} bytes of log for one record");
}

#[test]
fn guest_logging_is_capped_per_invocation_and_survives_traps() {
    let limits = Limits {
        cpu_budget_ms: 20_000,
        ..Limits::default()
    };
    let mut instance = instance(limits);
    // 100 records of 10 short lines each... 4 KiB lines: 4 per record, so
    // the invocation's 256 KiB end the flood after 64 records.
    let lines = logged(|| {
        for n in 0..100 {
            instance.transform(&flood(10)).expect("logs and maps");
            if n % 10 == 0 {
                // A trap rebuilds the instance; the budget carries on.
                let _ = instance.transform(&record("panic"));
            }
        }
    });
    let flood_lines = lines
        .iter()
        .filter(|l| message(l).starts_with("flood"))
        .count();
    assert_eq!(flood_lines, 64, "256 KiB per invocation");
    let notices = lines
        .iter()
        .filter(|l| message(l).contains("logged more than its budget"))
        .count();
    assert_eq!(
        notices, 1,
        "one at the first drop; the rest is summed up later"
    );
    // The pipeline starts the next invocation: a summary of what the rest
    // of the window dropped, and a new budget.
    let lines = logged(|| {
        instance.reset_log_budget();
        instance.transform(&flood(2)).expect("logs and maps");
    });
    assert!(
        message(&lines[0]).contains("more lines")
            && message(&lines[0]).contains("were dropped in the last invocation"),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| message(l).starts_with("flood"))
            .count(),
        2
    );
}

#[test]
fn sibling_instances_share_one_log_budget() {
    // The mapping threads' instances of a table (`sibling`) draw on the
    // first instance's budget: two instances do not log twice as much.
    let limits = Limits {
        cpu_budget_ms: 20_000,
        ..Limits::default()
    };
    let mut first = instance(limits);
    let mut second = first.sibling().expect("a sibling instance");
    let lines = logged(|| {
        for _ in 0..50 {
            first.transform(&flood(10)).expect("logs and maps");
            second.transform(&flood(10)).expect("logs and maps");
        }
    });
    let flood_lines = lines
        .iter()
        .filter(|l| message(l).starts_with("flood"))
        .count();
    assert_eq!(flood_lines, 64, "256 KiB per invocation, for both together");
}

// ---- CPU budget -------------------------------------------------------

/// Runs `f` while another thread advances `engine`'s epoch as fast as it
/// can: a machine that lets wall time pass while the transform does not run.
fn stalling<T>(engine: &TransformEngine, f: impl FnOnce() -> T) -> T {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for _ in 0..1000 {
                    engine.increment_epoch();
                }
                std::thread::yield_now();
            }
        });
        let out = f();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    })
}

#[test]
fn the_cpu_budget_counts_cpu_time_not_time_the_machine_took_away() {
    // An engine of its own: its epochs race ahead.
    let engine = TransformEngine::new().expect("engine");
    let module = engine.load(&relay_testkit::guest("hostile")).unwrap();
    let limits = Limits {
        cpu_budget_ms: 200,
        ..Limits::default()
    };
    let mut instance = module.instantiate(r#"{"mode":"ok"}"#, limits).unwrap();
    let work = || Record {
        sequence_number: "4200000000000000000001".into(),
        ..record("work")
    };
    // Obeyed: tens of ms of work while thousands of ticks pass.
    let events = stalling(&engine, || instance.transform(&work()))
        .expect("a transform within its CPU budget is not timed out by a busy machine");
    assert_eq!(events.len(), 1);
    // Violated: a loop still stops at its CPU budget, stalled or not.
    let err = stalling(&engine, || instance.transform(&record("loop"))).expect_err("loops");
    assert_eq!(err.kind, TransformErrorKind::Timeout { budget_ms: 200 });
    instance.transform(&record("ok")).expect("recovers");
}

#[test]
fn a_transform_held_up_by_its_host_is_not_charged_for_it() {
    // A real stall: the thread writing the guest's log line is blocked for
    // 300 ms (a slow log sink), three times the CPU budget, while the
    // epoch ticker goes on.
    #[derive(Clone)]
    struct SlowSink(Arc<std::sync::atomic::AtomicBool>);
    impl std::io::Write for SlowSink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if self.0.swap(false, std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = SlowSink(Arc::new(std::sync::atomic::AtomicBool::new(false)));
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let limits = Limits {
            cpu_budget_ms: 100,
            ..Limits::default()
        };
        let mut instance = instance(limits);
        sink.0.store(true, std::sync::atomic::Ordering::Relaxed);
        let events = instance
            .transform(&flood(1))
            .expect("300 ms in a stalled write are not 300 ms of CPU");
        assert_eq!(events.len(), 1);
        // Violated: the same budget still stops a loop.
        let err = instance.transform(&record("loop")).expect_err("loops");
        assert_eq!(err.kind, TransformErrorKind::Timeout { budget_ms: 100 });
    });
}
